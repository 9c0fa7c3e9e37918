"""BrokerServer: one broker's services, wired in the order they depend on each other, and the
Scheduler that runs their periodic work.

The log directory (LogManager, with its recovery) comes first, then the topics and partitions
over it, the replica manager (produce, fetch, waiting fetches), producer ids, the group
coordinator over `__consumer_offsets`, and the request handlers (KafkaApis) last. The event loop
asks it when anything is next due and calls tick() then; a clean stop is shutdown(), a failed one
close_unclean(). Cluster metadata, replica fetchers and the broker's lifecycle with a controller
join here (issue 10).

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import selectors
from collections.abc import Callable

from engine.broker.config import KafkaConfig
from engine.broker.group_coordinator import GroupConfig, GroupCoordinator
from engine.broker.kafka_apis import KafkaApis
from engine.broker.offset_store import LogOffsetStore
from engine.broker.producer_ids import ProducerIdManager
from engine.broker.replica_manager import ReplicaManager
from engine.broker.scheduler import Scheduler
from engine.broker.topics import TopicManager
from engine.common import TopicPartition
from engine.metadata import (
    BrokerRegistration,
    ClusterImage,
    MetadataCache,
    PartitionRegistration,
    TopicImage,
)
from engine.metadata.image import CONSUMER_OFFSETS
from engine.storage import LogManager
from engine.storage.log import wall_clock_ms

_CONSUMER_OFFSETS_SEGMENT_BYTES = 100 << 20  # offsets.topic.segment.bytes' default


class BrokerServer:
    def __init__(self, config: KafkaConfig, time_ms: Callable[[], int] = wall_clock_ms) -> None:
        """Open the log directory (recovering it after a crash) and wire every service."""
        self.config = config
        self.time_ms = time_ms
        self.log_manager = LogManager(config.log_dir, config.log, time_ms=time_ms)
        self.topics = TopicManager(config, self.log_manager)
        self.replica_manager = ReplicaManager(self.topics, time_ms)
        self.producer_ids = ProducerIdManager(config.log_dir)
        if CONSUMER_OFFSETS not in self.topics.topics:
            self.topics.create_topic(
                CONSUMER_OFFSETS, 1, 1, {"segment.bytes": str(_CONSUMER_OFFSETS_SEGMENT_BYTES)}
            )
        offsets_partition = self.topics.partition(TopicPartition(CONSUMER_OFFSETS, 0))
        assert offsets_partition is not None  # loaded or created just above
        self.group_coordinator = GroupCoordinator(
            GroupConfig(
                group_min_session_timeout_ms=config.group_min_session_timeout_ms,
                group_max_session_timeout_ms=config.group_max_session_timeout_ms,
                group_initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
            ),
            LogOffsetStore(offsets_partition),
            time_ms,
        )
        self.scheduler = Scheduler(time_ms)
        self.scheduler.schedule(
            "retention", config.log_retention_check_interval_ms, self.log_manager.cleanup_logs
        )
        self.scheduler.schedule(
            "flush", config.log_flush_scheduler_interval_ms, self.log_manager.flush_dirty_logs
        )
        self.scheduler.schedule(
            "checkpoint",
            config.log_flush_offset_checkpoint_interval_ms,
            self.log_manager.checkpoint,
        )
        self.metadata_cache = MetadataCache(self._local_image())
        self.topics.on_change = self._publish_local_image
        self.apis = KafkaApis(self)

    def advertise(self, host: str, port: int) -> None:
        """The address clients are told to use (the bound one, when port 0 picked it)."""
        self.config = dataclasses.replace(self.config, listen_host=host, listen_port=port)
        self._publish_local_image()

    def _local_image(self) -> ClusterImage:
        """The cluster as this broker alone makes it: itself, the controller too, and the topics
        on its disk (until a controller's metadata log takes over, issue 10)."""
        c = self.config
        topics = {
            name: TopicImage(
                name,
                topic.topic_id,
                {
                    index: PartitionRegistration(
                        tuple(p.replicas), tuple(p.isr), p.leader_id, p.leader_epoch
                    )
                    for index, p in topic.partitions.items()
                },
                topic.is_internal,
            )
            for name, topic in self.topics.topics.items()
        }
        me = BrokerRegistration(c.node_id, c.listen_host, c.listen_port)
        return ClusterImage(self.topics.cluster_id, c.node_id, {c.node_id: me}, topics)

    def _publish_local_image(self) -> None:
        self.metadata_cache.publish(self._local_image())

    def tick(self) -> None:
        """Run what is due: waiting fetches, group timers, the scheduler's periodic work."""
        self.replica_manager.tick()
        self.group_coordinator.tick()
        self.scheduler.run_due()

    def next_deadline_ms(self) -> int | None:
        """The earliest time anything is due, so the event loop sleeps until then: a waiting
        fetch, a group timer (session, join, sync) or a periodic task."""
        deadlines = (
            self.replica_manager.next_deadline_ms(),
            self.group_coordinator.next_deadline_ms(),
            self.scheduler.next_deadline_ms(),
        )
        return min((d for d in deadlines if d is not None), default=None)

    def attach(self, selector: selectors.BaseSelector) -> None:
        """The event loop's selector, for outbound connections (none without a controller)."""

    def complete_all(self) -> None:
        """Stopping: answer every waiting request with what it has now."""
        self.replica_manager.complete_all()

    def begin_shutdown(self) -> None:
        """A stop was asked for."""

    def ready_to_stop(self) -> bool:
        return True

    def shutdown(self) -> None:
        """A clean stop: flush and close every log, checkpoint, mark the shutdown clean."""
        self.log_manager.shutdown()

    def close_unclean(self) -> None:
        """Leave the logs as a crash would, for the next start to recover."""
        self.log_manager.close_unclean()
