"""ReplicaManager: produce and fetch across partitions, with the requests that wait.

Sans-I/O: results go to a `respond` callback, maybe later. Two purgatories, as Kafka's:
- a fetch that finds fewer than fetch.min.bytes waits until an append (for followers) or a high
  watermark move (for consumers) gives it enough, or its fetch.max.wait.ms passes (DelayedFetch);
- an acks=all produce waits until the high watermark of each of its partitions passes what it
  appended, or its timeout passes, answered REQUEST_TIMED_OUT (DelayedProduce); a DeleteRecords
  waits the same way until every live replica's log start offset has reached the offset asked
  for (Kafka's DelayedDeleteRecords).
A fetch from a follower (replica id >= 0) reads to the log end and tells the partition how far the
follower has got, which may move the high watermark and complete both kinds of waiting request.
The owner calls tick() to expire them.
"""

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.broker.partition import Partition
from engine.broker.replica_fetcher import ReplicaFetcherManager
from engine.broker.topics import TopicManager
from engine.common import TopicPartition
from engine.errors import (
    FENCED_LEADER_EPOCH,
    INVALID_REQUIRED_ACKS,
    INVALID_TOPIC_EXCEPTION,
    NONE,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    REQUEST_TIMED_OUT,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_TOPIC_OR_PARTITION,
    KafkaError,
)
from engine.metadata.image import CONSUMER_OFFSETS, BrokerRegistration, PartitionRegistration
from engine.storage import FetchIsolation, FileSlice
from engine.storage.leader_epoch_cache import UNDEFINED

log = logging.getLogger(__name__)

HIGH_WATERMARK = -1  # DeleteRecords' offset meaning "up to the high watermark"


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
    log_start_offset: int = -1  # a follower's, as it reports it


@dataclass(slots=True)
class FetchParams:
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation: FetchIsolation = FetchIsolation.HIGH_WATERMARK
    replica_id: int = -1  # >= 0: a follower broker fetching (reads to the log end)
    # a consumer's rack (Fetch v11+, "" when it has none); None: an older consumer, which may
    # read from the leader only (Kafka's ClientMetadata, KIP-392)
    client_rack: str | None = None

    @property
    def is_from_follower(self) -> bool:
        return self.replica_id >= 0


@dataclass(slots=True)
class FetchPartitionData:
    tp: TopicPartition
    error_code: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: list[FileSlice] = field(default_factory=list)
    preferred_read_replica: int = -1  # KIP-392: the replica this consumer should fetch from

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


ProduceCallback = Callable[[dict[TopicPartition, ProduceResult]], None]


@dataclass(eq=False)
class DelayedProduce:
    """An acks=all produce waiting for its partitions' high watermarks (Kafka's DelayedProduce):
    required_offsets holds the partitions still waiting, each with the offset after its append.
    With check=Partition.check_low_watermark_reaches_offset, a DeleteRecords waiting for its
    partitions' low watermarks (Kafka's DelayedDeleteRecords)."""

    deadline_ms: int
    results: dict[TopicPartition, ProduceResult]
    required_offsets: dict[TopicPartition, int]
    respond: ProduceCallback
    done: bool = False
    check: Callable[[Partition, int], tuple[bool, int]] = (
        Partition.check_enough_replicas_reach_offset
    )


class ReplicaManager:
    """Produce and fetch over the partitions, and the requests waiting on them. Not thread-safe:
    the event loop's thread alone uses it."""

    def __init__(self, topics: TopicManager, time_ms: Callable[[], int]) -> None:
        self.topics = topics
        self._time_ms = time_ms
        self._waiting: dict[TopicPartition, set[DelayedFetch]] = {}
        self._deadlines: list[tuple[int, int, DelayedFetch]] = []
        self._waiting_produce: dict[TopicPartition, set[DelayedProduce]] = {}
        self._produce_deadlines: list[tuple[int, int, DelayedProduce]] = []
        self._sequence = itertools.count()
        # set by the broker: propose an ISR change for a partition this broker leads
        self.alter_isr: Callable[[Partition, list[int]], None] = lambda partition, isr: None
        # a cluster member's replica fetchers (set by the broker; None alone)
        self.fetchers: ReplicaFetcherManager | None = None
        # set by a broker with replica.selector.class = RackAwareReplicaSelector: the rack of
        # a broker (None: unknown); consumers then read from a replica in their rack
        self.rack_of: Callable[[int], str | None] | None = None

    # -- produce --------------------------------------------------------------------------------
    def append_records(
        self,
        required_acks: int,
        entries: dict[TopicPartition, bytes | memoryview | None],
        respond: ProduceCallback,
        timeout_ms: int = 30_000,
    ) -> None:
        """Append to each partition; answer at once for acks 0 and 1, and for acks=all once every
        partition that took the records has them on its whole ISR (or timeout_ms passes)."""
        if required_acks not in (-1, 0, 1):
            respond(
                {
                    tp: ProduceResult(INVALID_REQUIRED_ACKS, error_message=f"acks={required_acks}")
                    for tp in entries
                }
            )
            return
        results = {}
        required: dict[TopicPartition, int] = {}
        for tp, records in entries.items():
            result, next_offset = self._append(tp, records, required_acks)
            results[tp] = result
            if result.error_code == NONE:
                self._wake(tp)
                if required_acks == -1:
                    required[tp] = next_offset
        if not required:  # acks 0 or 1, or nothing appended: answered now
            respond(results)
            return
        self._try_complete_else_watch(
            DelayedProduce(self._time_ms() + timeout_ms, results, required, respond)
        )

    def _try_complete_else_watch(self, delayed: DelayedProduce) -> None:
        """Answer now if every partition is settled, else wait for them or the deadline."""
        if self._try_complete_produce(delayed):
            delayed.respond(delayed.results)
            return
        for tp in delayed.required_offsets:
            self._waiting_produce.setdefault(tp, set()).add(delayed)
        heapq.heappush(
            self._produce_deadlines, (delayed.deadline_ms, next(self._sequence), delayed)
        )

    def _append(
        self, tp: TopicPartition, records: bytes | memoryview | None, required_acks: int
    ) -> tuple[ProduceResult, int]:
        partition = self.topics.partition(tp)
        if partition is None:
            return (
                ProduceResult(UNKNOWN_TOPIC_OR_PARTITION, error_message=f"{tp} does not exist"),
                -1,
            )
        if tp.topic == CONSUMER_OFFSETS:
            return ProduceResult(INVALID_TOPIC_EXCEPTION, error_message="internal topic"), -1
        try:
            info = partition.append_records_to_leader(
                records or b"", required_acks, self._time_ms()
            )
        except KafkaError as exc:
            return ProduceResult(exc.error_code, error_message=str(exc)), -1
        return (
            ProduceResult(
                NONE, info.first_offset, info.log_append_time, info.log_start_offset, None
            ),
            info.last_offset + 1,
        )

    def _try_complete_produce(self, delayed: DelayedProduce) -> bool:
        """Settle the partitions whose high watermark passed their offset (or that lost their
        leadership); True when none is left waiting."""
        for tp, required_offset in list(delayed.required_offsets.items()):
            partition = self.topics.partition(tp)
            if partition is None:
                done, error = True, NOT_LEADER_OR_FOLLOWER
            else:
                done, error = delayed.check(partition, required_offset)
            if done:
                del delayed.required_offsets[tp]
                if error != NONE:
                    result = delayed.results[tp]
                    result.error_code, result.base_offset = error, -1
                    result.error_message = None
        return not delayed.required_offsets

    def _complete_produce(self, delayed: DelayedProduce) -> None:
        if delayed.done:
            return
        delayed.done = True
        for tp, waiting in list(self._waiting_produce.items()):
            waiting.discard(delayed)
            if not waiting:
                del self._waiting_produce[tp]
        for tp in delayed.required_offsets:  # still waiting at the deadline: timed out
            result = delayed.results[tp]
            result.error_code, result.base_offset = REQUEST_TIMED_OUT, -1
        delayed.respond(delayed.results)

    def await_replication(
        self,
        tp: TopicPartition,
        required_offset: int,
        timeout_ms: int,
        respond: Callable[[int], None],
    ) -> None:
        """Call respond(error) once tp's high watermark reaches required_offset, as an acks=all
        produce waits (the group coordinator's commits): NONE, REQUEST_TIMED_OUT, or why not."""
        self._try_complete_else_watch(
            DelayedProduce(
                self._time_ms() + timeout_ms,
                {tp: ProduceResult()},
                {tp: required_offset},
                lambda results: respond(results[tp].error_code),
            )
        )

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        """A partition's high watermark (or leadership) changed: acks=all produces waiting on it
        may be done, and consumers waiting for records may have some."""
        self._try_complete_waiting(tp)
        self._wake(tp)

    def _try_complete_waiting(self, tp: TopicPartition) -> None:
        for delayed in list(self._waiting_produce.get(tp, ())):
            if self._try_complete_produce(delayed):
                self._complete_produce(delayed)

    # -- DeleteRecords --------------------------------------------------------------------------
    def delete_records(
        self,
        offsets: dict[TopicPartition, int],
        timeout_ms: int,
        respond: Callable[[dict[TopicPartition, int]], None],
    ) -> None:
        """Kafka's deleteRecords: move each partition's log start offset on this leader (-1: to
        the high watermark), then answer once every live replica has moved its own, the
        followers learning it from their fetches, or at timeout_ms with REQUEST_TIMED_OUT.
        respond gets each partition's error; the caller reads the low watermarks then."""
        results, required = {}, {}
        for tp, offset in offsets.items():
            error, offset = self._delete_records_on_leader(tp, offset)
            results[tp] = ProduceResult(error)
            if error == NONE:
                required[tp] = offset
        self._try_complete_else_watch(
            DelayedProduce(
                self._time_ms() + timeout_ms,
                results,
                required,
                lambda settled: respond({tp: r.error_code for tp, r in settled.items()}),
                check=Partition.check_low_watermark_reaches_offset,
            )
        )

    def _delete_records_on_leader(self, tp: TopicPartition, offset: int) -> tuple[int, int]:
        """(error, the new log start offset): Kafka's deleteRecordsOnLocalLog and
        Partition.deleteRecordsOnLeader."""
        if tp.topic == CONSUMER_OFFSETS:
            return INVALID_TOPIC_EXCEPTION, -1
        partition = self.topics.partition(tp)
        if partition is None or not partition.is_leader:
            return NOT_LEADER_OR_FOLLOWER, -1
        partition_log = partition.log
        offset = partition_log.high_watermark if offset == HIGH_WATERMARK else offset
        if offset < 0:
            return OFFSET_OUT_OF_RANGE, -1
        try:
            partition_log.maybe_increment_log_start_offset(offset)
        except KafkaError as exc:
            return exc.error_code, -1
        return NONE, offset

    # -- fetch ----------------------------------------------------------------------------------
    def fetch_messages(
        self, params: FetchParams, partitions: list[FetchPartition], respond: FetchCallback
    ) -> None:
        """Read now; answer now if there is enough (or an error, or no wait), else wait."""
        results = self._read(params, partitions)
        if params.is_from_follower:
            self._update_followers(params.replica_id, partitions, results)
        ready = (
            params.max_wait_ms <= 0
            or not partitions
            or sum(r.size for r in results) >= params.min_bytes
            or any(r.error_code != NONE for r in results)
            # a consumer sent elsewhere (KIP-392) is told at once, as Kafka's fetchMessages does:
            # waiting would hold it fetch.max.wait.ms from the replica it should read
            or any(r.preferred_read_replica >= 0 for r in results)
        )
        if ready:
            respond(results)
            return
        delayed = DelayedFetch(self._time_ms() + params.max_wait_ms, params, partitions, respond)
        for p in partitions:
            self._waiting.setdefault(p.tp, set()).add(delayed)
        heapq.heappush(self._deadlines, (delayed.deadline_ms, next(self._sequence), delayed))

    def _update_followers(
        self, replica_id: int, partitions: list[FetchPartition], results: list[FetchPartitionData]
    ) -> None:
        """What a follower's fetch says it has (Kafka's updateFollowerFetchState): its log end
        offset may move the high watermark, and bring it back into the ISR."""
        now = self._time_ms()
        for request, result in zip(partitions, results, strict=True):
            if result.error_code != NONE:
                continue
            partition = self.topics.partition(request.tp)
            if partition is None:
                continue
            moved = partition.update_follower_fetch_state(
                replica_id, request.fetch_offset, request.log_start_offset, now
            )
            expanded = partition.isr_to_expand(replica_id)
            if expanded is not None:
                partition.pending_isr = expanded
                self.alter_isr(partition, expanded)
            if moved:
                self.high_watermark_moved(request.tp)
            else:  # its log start offset may settle a DeleteRecords
                self._try_complete_waiting(request.tp)

    def _read(
        self, params: FetchParams, partitions: list[FetchPartition]
    ) -> list[FetchPartitionData]:
        """Kafka's readFromLog: the response byte limit is shared across partitions in order,
        and the first batch found is returned even when it is larger than the limit."""
        remaining = params.max_bytes
        results = []
        isolation = FetchIsolation.LOG_END if params.is_from_follower else params.isolation
        for request in partitions:
            partition = self.topics.partition(request.tp)
            if partition is None:
                results.append(FetchPartitionData(request.tp, UNKNOWN_TOPIC_OR_PARTITION))
                continue
            # a consumer with client metadata may read from a follower (KIP-392)
            from_follower_replica = params.client_rack is not None and not partition.is_leader
            error = _epoch_error(partition, request.current_leader_epoch)
            if error == NONE and not partition.is_leader and not from_follower_replica:
                error = NOT_LEADER_OR_FOLLOWER
            if error == NONE and from_follower_replica and partition.leader_id < 0:
                error = NOT_LEADER_OR_FOLLOWER
            if error != NONE:
                results.append(FetchPartitionData(request.tp, error))
                continue
            log = partition.log
            data = FetchPartitionData(
                request.tp,
                NONE,
                high_watermark=log.high_watermark,
                last_stable_offset=log.last_stable_offset,
                log_start_offset=log.log_start_offset,
            )
            preferred = self._preferred_read_replica(partition, params, request.fetch_offset)
            if preferred >= 0:  # no records: the consumer goes to that replica
                data.preferred_read_replica = preferred
                results.append(data)
                continue
            try:
                fetched = log.read(
                    request.fetch_offset,
                    min(request.partition_max_bytes, max(remaining, 0)),
                    isolation,
                    min_one_message=remaining == params.max_bytes,
                )
            except KafkaError as exc:
                data.error_code = exc.error_code
            else:
                data.records = fetched.slices
                remaining -= fetched.size
            results.append(data)
        return results

    def _preferred_read_replica(
        self, partition: Partition, params: FetchParams, fetch_offset: int
    ) -> int:
        """Kafka's RackAwareReplicaSelector, on the leader: for a consumer in a rack, a replica in
        that rack which has the offset (the leader itself if it is there, else the in-sync
        follower furthest ahead); -1 to read here."""
        rack = params.client_rack
        if self.rack_of is None or not rack or not partition.is_leader:
            return -1
        if self.rack_of(partition.local_id) == rack:
            return -1
        candidates = [
            (state.log_end_offset, replica_id)
            for replica_id, state in partition.remote_replicas.items()
            if replica_id in partition.isr
            and self.rack_of(replica_id) == rack
            and state.log_end_offset >= fetch_offset
            and state.log_start_offset <= fetch_offset
        ]
        return max(candidates)[1] if candidates else -1

    def _wake(self, tp: TopicPartition) -> None:
        """Fetches waiting on tp that may now have enough (after an append, or a move of the
        high watermark)."""
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
        if delayed.params.is_from_follower:
            self._update_followers(delayed.params.replica_id, delayed.partitions, results)
        delayed.respond(results)

    def tick(self) -> None:
        """Answer the waiting fetches and produces whose time has passed."""
        now = self._time_ms()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, delayed = heapq.heappop(self._deadlines)
            self._complete(delayed)
        while self._produce_deadlines and self._produce_deadlines[0][0] <= now:
            _, _, produce = heapq.heappop(self._produce_deadlines)
            if not produce.done:
                self._try_complete_produce(produce)  # what reached the ISR is not timed out
            self._complete_produce(produce)

    def complete_all(self) -> None:
        """Shutdown: answer every waiting fetch with what it can have now, and every waiting
        produce with what it has reached (REQUEST_TIMED_OUT for what it has not)."""
        while self._deadlines:
            self._complete(heapq.heappop(self._deadlines)[2])
        while self._produce_deadlines:
            produce = heapq.heappop(self._produce_deadlines)[2]
            if not produce.done:
                self._try_complete_produce(produce)
            self._complete_produce(produce)

    # -- leadership, from the controller's metadata (Kafka's applyDelta) ------------------------
    def make_leader(self, partition: Partition, registration: PartitionRegistration) -> None:
        """Lead partition: its fetcher lets it go, the new leader epoch starts at the log end,
        and requests waiting on it settle."""
        if self.fetchers is not None:
            self.fetchers.remove_partition(partition.tp)
        if partition.make_leader(registration, self._time_ms()):
            log.info(
                "%s: leader in epoch %d, ISR %s",
                partition.tp,
                registration.leader_epoch,
                list(registration.isr),
            )
            self.leadership_changed(partition.tp)

    def make_follower(
        self,
        partition: Partition,
        registration: PartitionRegistration,
        leader: BrokerRegistration | None,
    ) -> None:
        """Follow partition's leader (None: it has none alive, so nothing is fetched): from
        truncation on when the leader epoch changed, else as the fetcher already does."""
        new_epoch = registration.leader_epoch != partition.leader_epoch or partition.is_leader
        if not partition.make_follower(registration):
            return
        self.leadership_changed(partition.tp)
        if self.fetchers is None:
            return
        if leader is None:
            self.fetchers.remove_partition(partition.tp)
        elif new_epoch or self.fetchers.fetching(partition.tp) is None:
            self.fetchers.add_partition(partition, leader.node_id, leader.address)

    def stop_replica(self, tp: TopicPartition) -> None:
        """This broker no longer holds tp: stop fetching it and delete it."""
        if self.fetchers is not None:
            self.fetchers.remove_partition(tp)
        if self.topics.partition(tp) is not None:
            self.topics.remove_partition(tp)
            self.leadership_changed(tp)

    def leadership_changed(self, tp: TopicPartition) -> None:
        """A partition was made leader or follower: waiting requests on it settle now (acks=all
        produces end NOT_LEADER_OR_FOLLOWER, fetches answer with the new state's error)."""
        self.high_watermark_moved(tp)
        for delayed in list(self._waiting.get(tp, ())):
            self._complete(delayed)

    def maybe_shrink_isr(self) -> None:
        """The isr-expiration task: propose removing followers that fell behind."""
        now = self._time_ms()
        for topic in list(self.topics.topics.values()):
            for partition in topic.partitions.values():
                shrunk = partition.isr_to_shrink(now)
                if shrunk is not None:
                    partition.pending_isr = shrunk
                    self.alter_isr(partition, shrunk)

    def last_offset_for_leader_epoch(
        self, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int
    ) -> tuple[int, int, int]:
        """OffsetForLeaderEpoch for one partition: (error, epoch, end offset), the largest epoch
        at or below leader_epoch this leader has and where it ended (UNDEFINED: unknown)."""
        partition = self.topics.partition(tp)
        if partition is None:
            return UNKNOWN_TOPIC_OR_PARTITION, UNDEFINED, UNDEFINED
        error = _leader_error(partition, current_leader_epoch)
        if error:
            return error, UNDEFINED, UNDEFINED
        log = partition.log
        epoch, end = log.leader_epoch_cache.end_offset_for(leader_epoch, log.log_end_offset)
        return NONE, epoch, end

    def next_deadline_ms(self) -> int | None:
        while self._deadlines and self._deadlines[0][2].done:
            heapq.heappop(self._deadlines)
        while self._produce_deadlines and self._produce_deadlines[0][2].done:
            heapq.heappop(self._produce_deadlines)
        deadlines = [q[0][0] for q in (self._deadlines, self._produce_deadlines) if q]
        return min(deadlines) if deadlines else None


def _epoch_error(partition: Partition, current_leader_epoch: int) -> int:
    """The epoch the client thinks the leader is in, against this broker's: older is
    FENCED_LEADER_EPOCH (the client refreshes), newer UNKNOWN_LEADER_EPOCH (this broker is
    behind)."""
    if current_leader_epoch >= 0 and current_leader_epoch < partition.leader_epoch:
        return FENCED_LEADER_EPOCH
    if current_leader_epoch > partition.leader_epoch:
        return UNKNOWN_LEADER_EPOCH
    return NONE


def _leader_error(partition: Partition, current_leader_epoch: int) -> int:
    """Kafka's checks before a read that only the leader serves."""
    error = _epoch_error(partition, current_leader_epoch)
    if error == NONE and not partition.is_leader:
        return NOT_LEADER_OR_FOLLOWER
    return error
