"""Partition: one topic partition's log and its replication state, as Kafka's Partition.

A leader knows what each follower has (Kafka's Replica: its log end offset, from the offset it
fetches at, and when it last caught up). The high watermark is the smallest log end offset among
the in-sync replicas (and followers caught up but not yet added), never moving back, and frozen
while fewer than min.insync.replicas are in sync (Kafka 3.7+, KAFKA-15583). The ISR grows when a
follower reaches the high watermark and the start of the current epoch, and shrinks when a
follower has not caught up for replica.lag.time.max.ms; each change is proposed to the
controller (AlterPartition), one at a time, and counts only once committed, except that a
pending expansion already holds the high watermark back (the maximal ISR). A follower appends
the leader's batches verbatim and takes the leader's high watermark, capped at its own end.

State changes come from the controller's metadata (make_leader, make_follower), ignored when
their partition epoch is older than the one applied. A single broker with no controller makes
itself leader of everything with an ISR of itself.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.common import TopicPartition
from engine.errors import (
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
    KafkaError,
)
from engine.metadata.image import PartitionRegistration
from engine.records.batch import LOG_OVERHEAD, RecordBatch, iter_batches
from engine.records.validator import validate_client_batches
from engine.storage import Log, LogAppendInfo


class NotEnoughReplicasError(KafkaError):
    error_code = NOT_ENOUGH_REPLICAS


class NotLeaderOrFollowerError(KafkaError):
    error_code = NOT_LEADER_OR_FOLLOWER


@dataclass(slots=True)
class ReplicaState:
    """What the leader knows of one follower (Kafka's Replica). Its log end offset is the offset
    it last fetched at (-1: not known since this broker became leader)."""

    log_end_offset: int = -1
    log_start_offset: int = -1
    last_fetch_leader_log_end_offset: int = 0
    last_fetch_time_ms: int = 0
    last_caught_up_time_ms: int = 0

    def update_fetch_state(
        self, fetch_offset: int, log_start_offset: int, now_ms: int, leader_log_end_offset: int
    ) -> None:
        """Kafka's rule: caught up now if it fetched at the leader's end; caught up as of its
        previous fetch if it has everything the leader had then."""
        if fetch_offset >= leader_log_end_offset:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, now_ms)
        elif fetch_offset >= self.last_fetch_leader_log_end_offset:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, self.last_fetch_time_ms)
        self.log_end_offset = fetch_offset
        self.log_start_offset = log_start_offset
        self.last_fetch_leader_log_end_offset = max(
            leader_log_end_offset, self.last_fetch_leader_log_end_offset
        )
        self.last_fetch_time_ms = now_ms

    def is_caught_up(self, leader_log_end_offset: int, now_ms: int, max_lag_ms: int) -> bool:
        return (
            self.log_end_offset == leader_log_end_offset
            or now_ms - self.last_caught_up_time_ms <= max_lag_ms
        )


@dataclass(eq=False)
class Partition:
    """A partition this broker holds: its log, leadership, ISR and what the leader knows of each
    follower. Not thread-safe: the event loop's thread alone uses it."""

    tp: TopicPartition
    log: Log
    leader_id: int
    leader_epoch: int = 0
    replicas: list[int] = field(default_factory=list)
    isr: list[int] = field(default_factory=list)
    local_id: int = -1  # this broker (-1: the leader, as a single broker is)
    partition_epoch: int = -1  # -1: no registration applied yet
    replica_lag_time_max_ms: int = 30_000
    pending_isr: list[int] | None = None  # an AlterPartition in flight: the ISR it proposes
    remote_replicas: dict[int, ReplicaState] = field(default_factory=dict)
    leader_epoch_start_offset: int = 0
    # whether a broker may be in an ISR: registered, unfenced, not shutting down (the metadata)
    isr_eligible: Callable[[int], bool] = field(default=lambda replica_id: True, repr=False)

    def __post_init__(self) -> None:
        if self.local_id < 0:
            self.local_id = self.leader_id

    # -- state from the controller --------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.local_id

    @property
    def maximal_isr(self) -> list[int]:
        """The ISR the high watermark waits for: a pending expansion counts already."""
        if self.pending_isr is not None and len(self.pending_isr) > len(self.isr):
            return self.pending_isr
        return self.isr

    def make_leader(self, registration: PartitionRegistration, now_ms: int) -> bool:
        """Lead with this registration. False when it is older than the one applied. A new
        leader epoch starts at the log end; what followers have is unknown until they fetch."""
        if registration.partition_epoch < self.partition_epoch:
            return False
        new_epoch = registration.leader_epoch != self.leader_epoch or not self.is_leader
        self._apply(registration)
        if new_epoch:
            self.log.leader_epoch_cache.assign(registration.leader_epoch, self.log.log_end_offset)
            self.leader_epoch_start_offset = self.log.log_end_offset
            self.remote_replicas = {
                r: ReplicaState(last_caught_up_time_ms=now_ms if r in self.isr else 0)
                for r in self.replicas
                if r != self.local_id
            }
        else:  # an ISR or replica change in the same epoch: keep what is known
            for r in self.replicas:
                if r != self.local_id and r not in self.remote_replicas:
                    self.remote_replicas[r] = ReplicaState()
            for r in list(self.remote_replicas):
                if r not in self.replicas:
                    del self.remote_replicas[r]
        self.maybe_increment_leader_high_watermark(now_ms)
        return True

    def make_follower(self, registration: PartitionRegistration) -> bool:
        """Follow registration's leader. False when it is older than the one applied."""
        if registration.partition_epoch < self.partition_epoch:
            return False
        self._apply(registration)
        self.remote_replicas = {}
        return True

    def _apply(self, registration: PartitionRegistration) -> None:
        self.leader_id = registration.leader
        self.leader_epoch = registration.leader_epoch
        self.partition_epoch = registration.partition_epoch
        self.replicas = list(registration.replicas)
        self.isr = list(registration.isr)
        self.pending_isr = None

    @property
    def effective_min_isr(self) -> int:
        """min.insync.replicas, but never more than there are replicas (Kafka's rule)."""
        return min(self.log.config.min_insync_replicas, max(len(self.replicas), 1))

    # -- the leader's appends -------------------------------------------------------------------
    def append_records_to_leader(
        self, records: bytes | bytearray | memoryview, required_acks: int, now_ms: int = 0
    ) -> LogAppendInfo:
        if not self.is_leader:
            raise NotLeaderOrFollowerError(
                f"broker {self.local_id} is not the leader of {self.tp} (broker {self.leader_id} "
                f"is, in epoch {self.leader_epoch})"
            )
        if required_acks == -1 and len(self.isr) < self.effective_min_isr:
            raise NotEnoughReplicasError(
                f"{self.tp}: {len(self.isr)} in-sync replicas {self.isr}, min.insync.replicas "
                f"is {self.log.config.min_insync_replicas}"
            )
        self._validate(records)
        info = self.log.append_as_leader(records, self.leader_epoch)
        self.maybe_increment_leader_high_watermark(now_ms)
        return info

    def _validate(self, records: bytes | bytearray | memoryview) -> None:
        """A client's batches: their headers and every record in them (Kafka's LogValidator).

        Kafka checks framing, sizes and CRCs first (UnifiedLog.analyzeAndValidateRecords); the
        Log does those here, so when the contents fail and one of those fails too, the Log is
        left to answer with its error. Sound batches pay for no second CRC.
        """
        try:
            batches = list(iter_batches(records))
        except KafkaError:
            return  # malformed framing: the Log refuses it
        try:
            validate_client_batches(batches, self.tp)
        except KafkaError:
            if not _refused_before_contents(self.log, records, batches):
                raise

    # -- what the leader learns from followers --------------------------------------------------
    def update_follower_fetch_state(
        self, replica_id: int, fetch_offset: int, log_start_offset: int, now_ms: int
    ) -> bool:
        """A follower fetched at fetch_offset, so it has everything below it. Returns whether
        the high watermark moved. Not a replica of this partition: nothing is recorded."""
        state = self.remote_replicas.get(replica_id)
        if state is None:
            return False
        state.update_fetch_state(fetch_offset, log_start_offset, now_ms, self.log.log_end_offset)
        return self.maybe_increment_leader_high_watermark(now_ms)

    def maybe_increment_leader_high_watermark(self, now_ms: int = 0) -> bool:
        """Move the high watermark to the smallest log end offset of the maximal ISR and of the
        caught-up followers that may join it (a fenced broker's may not); never back, and not
        at all while the ISR is below min ISR."""
        if not self.is_leader or len(self.isr) < self.effective_min_isr:
            return False
        log = self.log
        new = log.log_end_offset
        for replica_id, state in self.remote_replicas.items():
            if state.log_end_offset < new and (
                replica_id in self.maximal_isr
                or (
                    state.is_caught_up(log.log_end_offset, now_ms, self.replica_lag_time_max_ms)
                    and self.isr_eligible(replica_id)
                )
            ):
                new = state.log_end_offset
        if new > log.high_watermark:
            log.update_high_watermark(new)
            return True
        return False

    def isr_to_expand(self, replica_id: int) -> list[int] | None:
        """The ISR with replica_id added, when it has reached both the high watermark and the
        start of this leader's epoch and no change is in flight; else None."""
        state = self.remote_replicas.get(replica_id)
        if (
            state is None
            or self.pending_isr is not None
            or replica_id in self.isr
            or not self.isr_eligible(replica_id)
            or state.log_end_offset < self.log.high_watermark
            or state.log_end_offset < self.leader_epoch_start_offset
        ):
            return None
        return sorted([*self.isr, replica_id], key=self.replicas.index)

    def isr_to_shrink(self, now_ms: int) -> list[int] | None:
        """The ISR without the followers that have not caught up for replica.lag.time.max.ms,
        when there are any and no change is in flight; else None."""
        if not self.is_leader or self.pending_isr is not None:
            return None
        leo = self.log.log_end_offset
        lagging = {
            r
            for r in self.isr
            if r != self.local_id
            and r in self.remote_replicas
            and not self.remote_replicas[r].is_caught_up(leo, now_ms, self.replica_lag_time_max_ms)
        }
        return [r for r in self.isr if r not in lagging] if lagging else None

    def alter_isr_committed(self, leader_epoch: int, partition_epoch: int, isr: list[int]) -> bool:
        """The controller's answer to our AlterPartition: the ISR it committed. Ignored when
        leadership moved on meanwhile (the metadata brings that). Returns whether it applied."""
        self.pending_isr = None
        if leader_epoch != self.leader_epoch or partition_epoch < self.partition_epoch:
            return False
        self.isr = list(isr)
        self.partition_epoch = partition_epoch
        return True

    def check_enough_replicas_reach_offset(self, required_offset: int) -> tuple[bool, int]:
        """For acks=all: (done, error). Done once the high watermark passes required_offset:
        NONE if the ISR still has min.insync.replicas, else NOT_ENOUGH_REPLICAS_AFTER_APPEND;
        done with NOT_LEADER_OR_FOLLOWER if leadership moved away."""
        if not self.is_leader:
            return True, NOT_LEADER_OR_FOLLOWER
        if self.log.high_watermark >= required_offset:
            if len(self.maximal_isr) >= self.effective_min_isr:
                return True, NONE
            return True, NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return False, NONE

    @property
    def low_watermark(self) -> int:
        """Kafka's lowWatermarkIfLeader: the smallest log start offset of this log and of the
        followers on live brokers (-1 while one of them has not fetched since this broker
        became leader). A DeleteRecords is done when it reaches the offset asked for."""
        low = self.log.log_start_offset
        for replica_id, state in self.remote_replicas.items():
            if self.isr_eligible(replica_id):
                low = min(low, state.log_start_offset)
        return low

    def check_low_watermark_reaches_offset(self, required_offset: int) -> tuple[bool, int]:
        """For DeleteRecords: (done, error), done once the low watermark reaches
        required_offset, or with NOT_LEADER_OR_FOLLOWER if leadership moved away."""
        if not self.is_leader:
            return True, NOT_LEADER_OR_FOLLOWER
        return self.low_watermark >= required_offset, NONE

    # -- the follower's side --------------------------------------------------------------------
    def append_records_as_follower(self, records: bytes | bytearray | memoryview) -> LogAppendInfo:
        return self.log.append_as_follower(records)

    def update_follower_high_watermark(self, leader_high_watermark: int) -> None:
        """The leader's high watermark, capped at what this follower has."""
        self.log.update_high_watermark(min(leader_high_watermark, self.log.log_end_offset))

    def update_follower_log_start_offset(self, leader_log_start_offset: int) -> None:
        """The leader's log start offset (moved by DeleteRecords or retention), capped at this
        follower's high watermark, as Kafka's follower takes it from each fetch response."""
        self.log.maybe_increment_log_start_offset(
            min(leader_log_start_offset, self.log.high_watermark)
        )

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset


def _refused_before_contents(
    log: Log, records: bytes | bytearray | memoryview, batches: list[RecordBatch]
) -> bool:
    """Whether the Log refuses these batches before their contents would be looked at."""
    if not batches or len(records) > log.config.segment_bytes:
        return True
    max_batch_length = log.config.max_message_bytes - LOG_OVERHEAD
    return any(
        batch.batch_length > max_batch_length
        or batch.record_count <= 0
        or batch.record_count != batch.last_offset_delta + 1
        or batch.compute_crc() != batch.crc
        for batch in batches
    )
