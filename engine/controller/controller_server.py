"""ControllerServer: a controller process's services (Kafka's ControllerServer): the metadata log
in its log directory, the QuorumController over it, the handlers, and the periodic work (fencing
brokers whose session ran out). The event loop (engine/server/socket_server.py) serves it as it
serves a BrokerServer.

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import selectors
from collections.abc import Callable
from typing import Any

from engine.broker.config import KafkaConfig
from engine.broker.scheduler import Scheduler
from engine.controller.controller_apis import ControllerApis
from engine.controller.metadata_log import MetadataLog
from engine.controller.quorum_controller import ControllerSettings, QuorumController
from engine.storage.log import wall_clock_ms
from engine.storage.meta_properties import format_log_dir

# How often sessions are checked (Kafka's controller checks every 100 ms or so, when idle).
_FENCE_CHECK_MS = 100


class ControllerServer:
    def __init__(self, config: KafkaConfig, time_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.time_ms = time_ms
        cluster_id = format_log_dir(config.log_dir, config.node_id)
        self.metadata_log = MetadataLog(config.log_dir, config.node_id, time_ms)
        self.controller = QuorumController(
            self.metadata_log,
            cluster_id,
            config.node_id,
            ControllerSettings(
                num_partitions=config.num_partitions,
                default_replication_factor=config.default_replication_factor,
                offsets_topic_replication_factor=config.offsets_topic_replication_factor,
                broker_session_timeout_ms=config.broker_session_timeout_ms,
                log=config.log,
            ),
            time_ms,
        )
        self.apis = ControllerApis(self.controller, self.metadata_log, time_ms, config)
        self.scheduler = Scheduler(time_ms)
        self.scheduler.schedule("fence-stale-brokers", _FENCE_CHECK_MS, self._fence_stale_brokers)

    def _fence_stale_brokers(self) -> None:
        if self.controller.fence_stale_brokers():
            self.apis.complete_all()  # brokers long-polling the log learn it now

    def advertise(self, host: str, port: int) -> None:
        self.config = dataclasses.replace(self.config, listen_host=host, listen_port=port)

    def attach(self, selector: selectors.BaseSelector) -> None:
        """A controller makes no outbound connections (one voter, no Raft peers yet)."""

    def tick(self) -> None:
        self.apis.tick()
        self.scheduler.run_due()

    def next_deadline_ms(self) -> int | None:
        deadlines = (self.apis.next_deadline_ms(), self.scheduler.next_deadline_ms())
        return min((d for d in deadlines if d is not None), default=None)

    def complete_all(self) -> None:
        self.apis.complete_all()

    def status(self) -> dict[str, Any]:
        """For GET /stats: the metadata log and the brokers as the controller sees them."""
        image = self.controller.image
        return {
            "node_id": self.config.node_id,
            "metadata_log_end_offset": self.metadata_log.end_offset,
            "metadata_epoch": self.metadata_log.epoch,
            "brokers": {
                str(b.node_id): {
                    "address": b.address,
                    "rack": b.rack,
                    "epoch": b.epoch,
                    "fenced": b.fenced,
                    "in_controlled_shutdown": b.in_controlled_shutdown,
                    "metadata_offset": self.controller.broker_offsets.get(b.node_id),
                }
                for b in image.brokers.values()
            },
            "topics": len(image.topics),
        }

    def begin_shutdown(self) -> None:
        """Nothing to hand over: brokers find the controller again when it is back."""

    def ready_to_stop(self) -> bool:
        return True

    failed: str | None = None  # a controller has no failure that stops it short of the loop
    accepting = True

    def shutdown(self) -> None:
        self.metadata_log.close()

    def close_unclean(self) -> None:
        self.metadata_log.log.close_handlers()
