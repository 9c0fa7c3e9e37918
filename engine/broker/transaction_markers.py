"""Transaction markers on the partition side (KIP-98): what WriteTxnMarkers appends, and what a
read_committed fetch is told.

A marker is a control batch (attributes transactional + control) of one record: key version
int16 (0) · type int16 (0 ABORT, 1 COMMIT), value Kafka's EndTransactionMarker, version int16 (0)
· coordinatorEpoch int32; the batch carries the producer's id and epoch and no sequence. The
leader appends it as Kafka's ReplicaManager does for the coordinator (no client validation: a
client may not write control batches), with acks=all: a partition's marker is acknowledged once
its ISR has it. Followers copy it like any batch, and their producer state and `.txnindex` follow
from it (engine/storage/log.py).

Not thread-safe: the event loop's thread alone uses it.
"""

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.common import TopicPartition
from engine.errors import NONE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, KafkaError
from engine.records.batch import NO_SEQUENCE
from engine.records.record import SimpleRecord, build_batch
from engine.records.validator import CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT
from engine.storage import FetchIsolation, FileSlice

if TYPE_CHECKING:
    from engine.broker.replica_manager import ReplicaManager

READ_COMMITTED = 1  # Fetch's and ListOffsets' isolation_level

MarkersCallback = Callable[[dict[TopicPartition, int]], None]
# what a marker's partition does once it is written (the group coordinator's pending offsets)
MarkerListener = Callable[[TopicPartition, int, bool], None]


def fetch_isolation(isolation_level: int) -> FetchIsolation:
    return (
        FetchIsolation.TXN_COMMITTED
        if isolation_level == READ_COMMITTED
        else FetchIsolation.HIGH_WATERMARK
    )


def build_marker(
    producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp: int
) -> bytearray:
    key = (CONTROL_TYPE_COMMIT if commit else CONTROL_TYPE_ABORT).to_bytes(4, "big")
    value = (0).to_bytes(2, "big") + coordinator_epoch.to_bytes(4, "big", signed=True)
    return build_batch(
        [SimpleRecord(value, key=key, timestamp=timestamp)],
        timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=NO_SEQUENCE,
        is_transactional=True,
        is_control=True,
    )


def aborted_transactions(
    replica_manager: "ReplicaManager",
    tp: TopicPartition,
    fetch_offset: int,
    isolation: FetchIsolation,
    records: list[FileSlice],
) -> list[tuple[int, int]] | None:
    """Fetch's aborted_transactions for one partition: None unless read_committed, then the
    (producer id, first offset) of each aborted transaction in what is returned (bounded by the
    last stable offset, which every returned batch is below)."""
    if isolation is not FetchIsolation.TXN_COMMITTED:
        return None
    partition = replica_manager.topics.partition(tp)
    if partition is None or not records:
        return []
    log = partition.log
    found = log.collect_aborted_transactions(fetch_offset, log.last_stable_offset)
    return [(a.producer_id, a.first_offset) for a in found]


class MarkerWriter:
    """Appends markers to the partitions this broker leads and answers once they are on their
    ISRs. Not thread-safe: the event loop's thread alone uses it."""

    def __init__(self, replica_manager: "ReplicaManager", time_ms: Callable[[], int]) -> None:
        self.replica_manager = replica_manager
        self._time_ms = time_ms
        self.listeners: list[MarkerListener] = []

    def append_as_coordinator(self, tp: TopicPartition, records: bytearray) -> tuple[int, int]:
        """(error, the offset after them): batches a coordinator writes, appended on this
        leader without a client's checks (markers, a transaction's offset commits)."""
        partition = self.replica_manager.topics.partition(tp)
        if partition is None:
            return UNKNOWN_TOPIC_OR_PARTITION, -1
        if not partition.is_leader:
            return NOT_LEADER_OR_FOLLOWER, -1
        try:
            info = partition.log.append_as_leader(records, partition.leader_epoch)
        except KafkaError as exc:
            return exc.error_code, -1
        partition.maybe_increment_leader_high_watermark(self._time_ms())
        self.replica_manager.high_watermark_moved(tp)  # read_committed fetches may go on
        return NONE, info.last_offset + 1

    def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        partitions: list[TopicPartition],
        timeout_ms: int,
        respond: MarkersCallback,
    ) -> None:
        """Append one marker to each partition; respond(error per partition) once every
        appended marker is replicated (or timeout_ms passes: REQUEST_TIMED_OUT)."""
        errors: dict[TopicPartition, int] = {}
        waiting: dict[TopicPartition, int] = {}
        now = self._time_ms()
        for tp in partitions:
            marker = build_marker(producer_id, producer_epoch, commit, coordinator_epoch, now)
            error, next_offset = self.append_as_coordinator(tp, marker)
            if error != NONE:
                errors[tp] = error
                continue
            for listener in self.listeners:  # the group coordinator's pending offsets
                listener(tp, producer_id, commit)
            waiting[tp] = next_offset
        if not waiting:
            respond(errors)
            return

        def replicated(tp: TopicPartition, error: int) -> None:
            errors[tp] = error
            del waiting[tp]
            if not waiting:
                respond(errors)

        for tp, offset in list(waiting.items()):
            self.replica_manager.await_replication(
                tp, offset, timeout_ms, functools.partial(replicated, tp)
            )
