"""AlterPartitionManager: ISR changes a leader proposes, sent to the controller (Kafka's
AlterPartitionManager).

A leader proposes one change per partition at a time (Partition.pending_isr holds it); the
proposals gathered in a turn of the loop go in one AlterPartition request (v2: topics by id). The
controller's answer commits the ISR it recorded, with the new partition epoch, unless leadership
moved on meanwhile (the metadata then brings the new state). A failed call clears the proposals,
which the leader makes again when the follower next fetches or at the next ISR expiry check.

Not thread-safe: the event loop's thread alone uses it.
"""

import logging
import uuid
from collections.abc import Callable
from typing import Any

from engine.broker.partition import Partition
from engine.common import TopicPartition
from engine.errors import NONE
from engine.protocol.kraft_messages import AlterPartitionRequest, AlterPartitionResponse
from engine.protocol.network_client import NetworkClient

log = logging.getLogger(__name__)

_VERSION = 2  # topic ids, the ISR as broker ids (v3 adds their broker epochs)


class AlterPartitionManager:
    def __init__(
        self,
        client: NetworkClient,
        controller: str,
        node_id: int,
        broker_epoch: Callable[[], int],
        topic_id: Callable[[str], uuid.UUID | None],
        on_committed: Callable[[TopicPartition], None],
    ) -> None:
        self.client = client
        self.controller = controller
        self.node_id = node_id
        self._broker_epoch = broker_epoch
        self._topic_id = topic_id
        self._on_committed = on_committed
        self._queued: dict[TopicPartition, tuple[Partition, list[int]]] = {}
        self._sent: dict[TopicPartition, Partition] = {}

    def submit(self, partition: Partition, isr: list[int]) -> None:
        """Propose isr for partition (its pending_isr is already set)."""
        self._queued[partition.tp] = (partition, isr)

    def tick(self) -> None:
        if not self._queued or self._sent:
            return
        queued, self._queued = self._queued, {}
        topics: dict[uuid.UUID, list[Any]] = {}
        for tp, (partition, isr) in queued.items():
            topic_id = self._topic_id(tp.topic)
            if topic_id is None:
                partition.pending_isr = None
                continue
            topics.setdefault(topic_id, []).append(
                AlterPartitionRequest.TopicData.PartitionData(
                    partition_index=tp.partition,
                    leader_epoch=partition.leader_epoch,
                    new_isr=isr,
                    leader_recovery_state=0,
                    partition_epoch=partition.partition_epoch,
                )
            )
            self._sent[tp] = partition
        if not topics:
            return
        request = AlterPartitionRequest(
            version=_VERSION,
            broker_id=self.node_id,
            broker_epoch=self._broker_epoch(),
            topics=[
                AlterPartitionRequest.TopicData(topic_id=topic_id, partitions=partitions)
                for topic_id, partitions in topics.items()
            ],
        )
        self.client.send(self.controller, request, AlterPartitionResponse, self._on_response)

    def _on_response(self, response: Any, error: Exception | None) -> None:
        sent, self._sent = self._sent, {}
        if error is not None or response.error_code != NONE:
            log.info("AlterPartition failed: %s", error or response.error_code)
            for partition in sent.values():
                partition.pending_isr = None
            return
        by_id: dict[uuid.UUID, dict[int, Any]] = {
            t.topic_id: {p.partition_index: p for p in t.partitions} for t in response.topics
        }
        for tp, partition in sent.items():
            result = by_id.get(self._topic_id(tp.topic) or uuid.UUID(int=0), {}).get(tp.partition)
            if result is None or result.error_code != NONE:
                partition.pending_isr = None
                if result is not None:
                    log.info("%s: AlterPartition refused: error %d", tp, result.error_code)
                continue
            if partition.alter_isr_committed(
                result.leader_epoch, result.partition_epoch, list(result.isr)
            ):
                self._on_committed(tp)
