"""ReplicaManager: produce and fetch across partitions, with fetches that wait (long poll).

Sans-I/O: results go to a `respond` callback, maybe later. A fetch that finds fewer than
fetch.min.bytes waits in the purgatory until an append to one of its partitions gives it enough,
or its fetch.max.wait.ms passes (Kafka's DelayedFetch); the owner calls tick() to expire them.
"""

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.broker.partition import Partition
from engine.broker.topics import TopicManager
from engine.common import TopicPartition
from engine.errors import (
    FENCED_LEADER_EPOCH,
    INVALID_REQUIRED_ACKS,
    INVALID_TOPIC_EXCEPTION,
    NONE,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError,
)
from engine.storage import FetchIsolation, FileSlice
from engine.storage.leader_epoch_cache import UNDEFINED


@dataclass(slots=True)
class ProduceResult:
    error_code: int = NONE
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    error_message: str | None = None


@dataclass(slots=True)
class FetchPartition:
    tp: TopicPartition
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1


@dataclass(slots=True)
class FetchParams:
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation: FetchIsolation = FetchIsolation.HIGH_WATERMARK


@dataclass(slots=True)
class FetchPartitionData:
    tp: TopicPartition
    error_code: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: list[FileSlice] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.length for s in self.records)


FetchCallback = Callable[[list[FetchPartitionData]], None]


@dataclass(eq=False)
class DelayedFetch:
    deadline_ms: int
    params: FetchParams
    partitions: list[FetchPartition]
    respond: FetchCallback
    done: bool = False


class ReplicaManager:
    """Produce and fetch over the partitions, and the fetches waiting for data. Not thread-safe: the
    event loop's thread alone uses it."""

    def __init__(
        self, topics: TopicManager, time_ms: Callable[[], int], min_insync_replicas: int = 1
    ):
        self.topics = topics
        self._time_ms = time_ms
        self.min_insync_replicas = min_insync_replicas
        self._waiting: dict[TopicPartition, set[DelayedFetch]] = {}
        self._deadlines: list[tuple[int, int, DelayedFetch]] = []
        self._sequence = itertools.count()

    # -- produce --------------------------------------------------------------------------------
    def append_records(
        self, required_acks: int, entries: dict[TopicPartition, bytes | memoryview | None]
    ) -> dict[TopicPartition, ProduceResult]:
        results = {}
        if required_acks not in (-1, 0, 1):
            return {
                tp: ProduceResult(INVALID_REQUIRED_ACKS, error_message=f"acks={required_acks}")
                for tp in entries
            }
        for tp, records in entries.items():
            results[tp] = self._append(tp, records, required_acks)
            if results[tp].error_code == NONE:
                self._wake(tp)
        return results

    def _append(
        self, tp: TopicPartition, records: bytes | memoryview | None, required_acks: int
    ) -> ProduceResult:
        partition = self.topics.partition(tp)
        if partition is None:
            return ProduceResult(UNKNOWN_TOPIC_OR_PARTITION, error_message=f"{tp} does not exist")
        if tp.topic in ("__consumer_offsets",):
            return ProduceResult(INVALID_TOPIC_EXCEPTION, error_message="internal topic")
        try:
            info = partition.append_records_to_leader(
                records or b"", required_acks, self.min_insync_replicas
            )
        except KafkaError as exc:
            return ProduceResult(exc.error_code, error_message=str(exc))
        return ProduceResult(
            NONE, info.first_offset, info.log_append_time, info.log_start_offset, None
        )

    # -- fetch ----------------------------------------------------------------------------------
    def fetch_messages(
        self, params: FetchParams, partitions: list[FetchPartition], respond: FetchCallback
    ) -> None:
        """Read now; answer now if there is enough (or an error, or no wait), else wait."""
        results = self._read(params, partitions)
        ready = (
            params.max_wait_ms <= 0
            or not partitions
            or sum(r.size for r in results) >= params.min_bytes
            or any(r.error_code != NONE for r in results)
        )
        if ready:
            respond(results)
            return
        delayed = DelayedFetch(self._time_ms() + params.max_wait_ms, params, partitions, respond)
        for p in partitions:
            self._waiting.setdefault(p.tp, set()).add(delayed)
        heapq.heappush(self._deadlines, (delayed.deadline_ms, next(self._sequence), delayed))

    def _read(
        self, params: FetchParams, partitions: list[FetchPartition]
    ) -> list[FetchPartitionData]:
        """Kafka's readFromLog: the response byte limit is shared across partitions in order,
        and the first batch found is returned even when it is larger than the limit."""
        remaining = params.max_bytes
        results = []
        for request in partitions:
            partition = self.topics.partition(request.tp)
            if partition is None:
                results.append(FetchPartitionData(request.tp, UNKNOWN_TOPIC_OR_PARTITION))
                continue
            error = _epoch_error(partition, request.current_leader_epoch)
            if error != NONE:
                results.append(FetchPartitionData(request.tp, error))
                continue
            log = partition.log
            data = FetchPartitionData(
                request.tp,
                NONE,
                high_watermark=log.high_watermark,
                last_stable_offset=log.high_watermark,  # no transactions: LSO is the HW
                log_start_offset=log.log_start_offset,
            )
            try:
                fetched = log.read(
                    request.fetch_offset,
                    min(request.partition_max_bytes, max(remaining, 0)),
                    params.isolation,
                    min_one_message=remaining == params.max_bytes,
                )
            except KafkaError as exc:
                data.error_code = exc.error_code
            else:
                data.records = fetched.slices
                remaining -= fetched.size
            results.append(data)
        return results

    def _wake(self, tp: TopicPartition) -> None:
        waiting = self._waiting.get(tp)
        if not waiting:
            return
        for delayed in list(waiting):
            results = self._read(delayed.params, delayed.partitions)
            if sum(r.size for r in results) >= delayed.params.min_bytes:
                self._complete(delayed, results)

    def _complete(
        self, delayed: DelayedFetch, results: list[FetchPartitionData] | None = None
    ) -> None:
        if delayed.done:
            return
        delayed.done = True
        for p in delayed.partitions:
            waiting = self._waiting.get(p.tp)
            if waiting is not None:
                waiting.discard(delayed)
                if not waiting:
                    del self._waiting[p.tp]
        if results is None:
            results = self._read(delayed.params, delayed.partitions)
        delayed.respond(results)

    def tick(self) -> None:
        """Answer the waiting fetches whose fetch.max.wait.ms has passed."""
        now = self._time_ms()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, delayed = heapq.heappop(self._deadlines)
            self._complete(delayed)

    def complete_all(self) -> None:
        """Shutdown: answer every waiting fetch with what it can have now."""
        while self._deadlines:
            self._complete(heapq.heappop(self._deadlines)[2])

    def last_offset_for_leader_epoch(
        self, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int
    ) -> tuple[int, int, int]:
        """OffsetForLeaderEpoch for one partition: (error, epoch, end offset), the largest epoch
        at or below leader_epoch this leader has and where it ended (UNDEFINED: unknown)."""
        partition = self.topics.partition(tp)
        if partition is None:
            return UNKNOWN_TOPIC_OR_PARTITION, UNDEFINED, UNDEFINED
        error = _epoch_error(partition, current_leader_epoch)
        if error:
            return error, UNDEFINED, UNDEFINED
        log = partition.log
        epoch, end = log.leader_epoch_cache.end_offset_for(leader_epoch, log.log_end_offset)
        return NONE, epoch, end

    def next_deadline_ms(self) -> int | None:
        while self._deadlines and self._deadlines[0][2].done:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None


def _epoch_error(partition: Partition, current_leader_epoch: int) -> int:
    if current_leader_epoch < 0 or current_leader_epoch == partition.leader_epoch:
        return NONE
    if current_leader_epoch < partition.leader_epoch:
        return FENCED_LEADER_EPOCH
    return UNKNOWN_LEADER_EPOCH
