"""Log: one partition's ordered segments, its offsets, appends, reads, roll, retention and flush.

Offsets kept apart, as in Kafka's UnifiedLog:
- log start offset: the first offset a reader may ask for (moves when retention deletes segments);
- log end offset (LEO): the offset the next appended record gets;
- high watermark: the last offset + 1 that is committed; readers with HIGH_WATERMARK isolation
  see nothing beyond it. The broker advances it (with replication, to what the ISR has);
- recovery point: everything below it has been fsynced; after an unclean shutdown only segments
  from the recovery point onwards are re-validated.

A roll makes the closed segment durable in the background when the log has a LogFlusher (the
LogManager's): its recovery point moves only once the fsyncs are done, so a crash before then
recovers that segment too. A Log is not thread-safe: the event loop alone uses it; the flusher
works on file paths, and its completions are applied on the loop thread.

What recovery cuts (bytes, offsets, later segments) is logged as a warning with the partition's
directory, and kept in `recoveries`. A failed write or roll (ENOSPC, EIO, EMFILE) is logged once
per partition until a write succeeds again, not once per request.
"""

import logging
import os
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from engine.errors import (
    InvalidRecordError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from engine.records.batch import LOG_OVERHEAD, NO_SEQUENCE, RecordBatch, iter_batches
from engine.storage.config import LogConfig
from engine.storage.file_handles import FileHandleCache
from engine.storage.file_records import FileSlice, read_batches
from engine.storage.leader_epoch_cache import LeaderEpochFileCache
from engine.storage.log_flusher import LogFlusher
from engine.storage.log_segment import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    SegmentRecovery,
)
from engine.storage.producer_state import BatchMetadata, ProducerStateManager, read_marker
from engine.storage.transaction_index import AbortedTxn, TransactionIndexes

_TEMPORARY_SUFFIXES = (DELETED_SUFFIX, ".cleaned", ".swap", ".tmp")

log = logging.getLogger(__name__)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class FetchIsolation(Enum):
    LOG_END = "log_end"  # followers and tools: everything appended
    HIGH_WATERMARK = "high_watermark"  # consumers: only what is committed
    TXN_COMMITTED = "txn_committed"  # read_committed consumers: below the last stable offset


@dataclass(slots=True)
class LogAppendInfo:
    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int  # -1 unless message.timestamp.type=LogAppendTime
    log_start_offset: int
    record_count: int
    valid_bytes: int
    batches: list[RecordBatch] = field(repr=False)
    duplicate: bool = False  # a producer's retry, answered with the original offsets


@dataclass(slots=True)
class FetchDataInfo:
    fetch_offset: int
    slices: list[FileSlice]

    @property
    def size(self) -> int:
        return sum(s.length for s in self.slices)

    def read(self) -> bytes:
        return b"".join(s.read() for s in self.slices)


class Log:
    def __init__(
        self,
        directory: str,
        config: LogConfig | None = None,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        high_watermark: int = 0,
        had_clean_shutdown: bool = False,
        time_ms: Callable[[], int] = wall_clock_ms,
        file_handles: FileHandleCache | None = None,
        flusher: LogFlusher | None = None,
        new: bool = False,
    ) -> None:
        """Open (creating if needed) the partition directory and load its segments.

        After an unclean shutdown every segment from the recovery point on is re-validated and
        its indexes rebuilt; a torn or corrupt tail is truncated and later segments deleted.
        Segment files are opened when used, under file_handles (the process's default cache
        when None). flusher: where a rolled segment is fsynced (here, in the caller's thread,
        when None). new: the caller has just made the empty directory, so there is nothing to
        list or load (creating many partitions stays cheap).
        """
        self.directory = directory
        self.config = config or LogConfig()
        self._time_ms = time_ms
        self._file_handles = file_handles
        self._flusher = flusher
        if not new:
            os.makedirs(directory, exist_ok=True)
        self._segments: list[LogSegment] = []
        self._base_offsets: list[int] = []
        self._pending_deletes: list[tuple[int, LogSegment]] = []
        self.recovered_bytes_truncated = 0
        self.recoveries: list[SegmentRecovery] = []  # what recovery cut, segment by segment
        self.storage_error: str | None = None  # the failure last logged, until a write succeeds
        if new:
            self._add_segment(self._new_segment(log_start_offset, self._time_ms(), create=False))
        else:
            self._load(recovery_point, log_start_offset, had_clean_shutdown)
        self.log_end_offset = self.active_segment.next_offset
        self.log_start_offset = min(
            max(log_start_offset, self._segments[0].base_offset), self.log_end_offset
        )
        self.recovery_point = (
            self.log_end_offset if had_clean_shutdown else min(recovery_point, self.log_end_offset)
        )
        self._high_watermark = self.log_start_offset
        self._high_watermark_position: tuple[LogSegment, int] | None = None
        self.update_high_watermark(high_watermark)
        self._unflushed_messages = 0
        self._last_flush_ms = self._time_ms()
        self.producer_state = ProducerStateManager(directory)
        # aborted transactions (.txnindex), kept with the producer state they come from
        self.txn_indexes = TransactionIndexes(directory, None if new else self._base_offsets)
        if not new:
            self._rebuild_producer_state()
        self.leader_epoch_cache = LeaderEpochFileCache(directory)
        if not new:  # what recovery cut, or retention removed, no longer begins an epoch
            self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
            self.leader_epoch_cache.truncate_from_start(self.log_start_offset)

    # -- loading --------------------------------------------------------------------------------
    def _load(self, recovery_point: int, log_start_offset: int, had_clean_shutdown: bool) -> None:
        names = os.listdir(self.directory)
        for name in names:  # leftovers of deletes and swaps interrupted by a crash
            if name.endswith(_TEMPORARY_SUFFIXES):
                os.unlink(os.path.join(self.directory, name))
        base_offsets = sorted(
            int(name[: -len(LOG_SUFFIX)])
            for name in names
            if name.endswith(LOG_SUFFIX) and name[: -len(LOG_SUFFIX)].isdigit()
        )
        for name in names:  # an index without its log is an orphan
            stem, _, suffix = name.partition(".")
            if (
                "." + suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX)
                and stem.isdigit()
                and int(stem) not in base_offsets
            ):
                os.unlink(os.path.join(self.directory, name))
        now = self._time_ms()
        for base_offset in base_offsets:
            self._add_segment(self._new_segment(base_offset, now, create=False))
        if not self._segments:  # a new log, or one whose segments were all deleted
            # A log past offset 0 keeps its end offset in a file at once; a new one's first
            # segment waits for its first append (a partition nobody writes costs no file).
            self._add_segment(self._new_segment(log_start_offset, now, create=log_start_offset > 0))
            return
        first_unflushed = (
            len(base_offsets) if had_clean_shutdown else self._segment_index(recovery_point)
        )
        i = 0
        while i < len(self._segments):
            segment = self._segments[i]
            last = i == len(self._segments) - 1
            if (
                segment.needs_recovery
                or i >= first_unflushed
                or (last and not segment.tail_is_sound())
            ):
                truncated = segment.recover()
                if truncated:
                    self.recovered_bytes_truncated += truncated
                    self._truncated_in_recovery(segment)
            i += 1

    def _truncated_in_recovery(self, segment: LogSegment) -> None:
        """A segment lost its tail: later segments cannot follow it, so they go (as in Kafka)."""
        cut = segment.last_recovery
        assert cut is not None  # recover() cut bytes
        self.recoveries.append(cut)
        log.warning(
            "recovery of %s: truncated %d bytes of %s at position %d (%s claiming %s by their "
            "headers); the log now ends at offset %d: %s",
            self.directory,
            cut.bytes_truncated,
            os.path.basename(cut.path),
            cut.position,
            _count(cut.batches, "batch", "batches"),
            _count(cut.offsets, "offset", "offsets"),
            cut.next_offset,
            cut.reason,
        )
        while self._segments[-1] is not segment:
            later = self._segments.pop()
            self._base_offsets.pop()
            log.warning(
                "recovery of %s: deleted segment %s (%d bytes, offsets from %d) after the "
                "truncation",
                self.directory,
                os.path.basename(later.log.path),
                later.size,
                later.base_offset,
            )
            self.recovered_bytes_truncated += later.size
            later.delete()

    def _new_segment(self, base_offset: int, now: int, create: bool = True) -> LogSegment:
        return LogSegment(
            self.directory,
            base_offset,
            index_interval_bytes=self.config.index_interval_bytes,
            max_index_size=self.config.segment_index_bytes,
            created_ms=now,
            handles=self._file_handles,
            create=create,
        )

    def _add_segment(self, segment: LogSegment) -> None:
        self._segments.append(segment)
        self._base_offsets.append(segment.base_offset)

    def _segment_index(self, offset: int) -> int:
        """Index of the segment that holds offset (the last with base offset <= offset)."""
        return max(bisect_right(self._base_offsets, offset) - 1, 0)

    # -- state ----------------------------------------------------------------------------------
    @property
    def segments(self) -> tuple[LogSegment, ...]:
        return tuple(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the earliest transaction not yet complete and replicated, at most
        the high watermark: what read_committed consumers may read below (Kafka's LSO)."""
        first = self.producer_state.first_unstable_offset(self._high_watermark)
        return self._high_watermark if first is None else min(first, self._high_watermark)

    def collect_aborted_transactions(self, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions with records in [fetch_offset, upper_bound), for a
        read_committed fetch (from the .txnindex files)."""
        from_base = self._segments[self._segment_index(fetch_offset)].base_offset
        return self.txn_indexes.collect(from_base, fetch_offset, upper_bound)

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log start offset, log end offset]."""
        offset = min(max(offset, self.log_start_offset), self.log_end_offset)
        if offset != self._high_watermark:
            self._high_watermark = offset
            self._high_watermark_position = None
        return offset

    # -- append ---------------------------------------------------------------------------------
    def append_as_leader(
        self, records: bytes | bytearray | memoryview, leader_epoch: int = 0
    ) -> LogAppendInfo:
        """Validate, assign offsets to and append the batches in records, all or nothing.

        The batches' baseOffset and partitionLeaderEpoch are patched in place (records is copied
        first only if it is read-only), then written with one write call.
        """
        view = memoryview(records)
        if view.readonly:
            view = memoryview(bytearray(view))
        batches, record_count = self._analyze_and_validate(view)
        duplicate = self._check_producer_state(batches)
        if duplicate is not None:  # a retry of a batch already in the log: nothing to append
            return LogAppendInfo(
                first_offset=duplicate.first_offset,
                last_offset=duplicate.last_offset,
                max_timestamp=duplicate.timestamp,
                offset_of_max_timestamp=duplicate.last_offset,
                log_append_time=-1,
                log_start_offset=self.log_start_offset,
                record_count=0,
                valid_bytes=0,
                batches=[],
                duplicate=True,
            )
        now = self._time_ms()
        log_append_time = now if self.config.message_timestamp_type == "LogAppendTime" else -1
        first_offset = next_offset = self.log_end_offset
        max_timestamp, offset_of_max_timestamp = -1, first_offset
        for batch in batches:
            batch.set_offsets(next_offset, leader_epoch)
            if log_append_time >= 0:
                batch.set_log_append_time(log_append_time)
            next_offset += batch.last_offset_delta + 1
            if batch.max_timestamp > max_timestamp:
                max_timestamp, offset_of_max_timestamp = batch.max_timestamp, next_offset - 1
        self._append_run(view, batches, max_timestamp, now)
        self.log_end_offset = next_offset
        self.leader_epoch_cache.assign(leader_epoch, first_offset)  # a no-op in the same epoch
        self._appended(batches, record_count)
        return LogAppendInfo(
            first_offset=first_offset,
            last_offset=next_offset - 1,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max_timestamp,
            log_append_time=log_append_time,
            log_start_offset=self.log_start_offset,
            record_count=record_count,
            valid_bytes=len(view),
            batches=batches,
        )

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> LogAppendInfo:
        """Append a leader's batches verbatim (Kafka's appendAsFollower): offsets and leader
        epochs as the leader assigned them, so the follower's log is byte for byte the leader's.
        Framing and CRCs are checked; sizes are not (the leader accepted the batches under its
        settings), and a fetch larger than segment.bytes is written in runs that each fit a
        segment. The first batch must begin at this log's end: a gap or an overlap is refused
        whole."""
        view = memoryview(records)
        batches = list(iter_batches(view))
        if not batches:
            raise InvalidRecordError(f"{self.directory}: a follower append holds no batch")
        next_offset = first_offset = self.log_end_offset
        record_count = 0
        for batch in batches:
            if batch.base_offset != next_offset:
                raise InvalidRecordError(
                    f"{self.directory}: a follower append of offset {batch.base_offset}, the "
                    f"log ends at {next_offset}"
                )
            if batch.compute_crc() != batch.crc:
                batch.ensure_valid()  # raises, with the offset and both CRCs
            next_offset = batch.next_offset
            record_count += batch.record_count
        max_timestamp, offset_of_max_timestamp = -1, first_offset
        start = 0
        while start < len(batches):  # runs of batches that each fit in one segment
            end, size = start + 1, batches[start].size_in_bytes
            while end < len(batches) and size + batches[end].size_in_bytes <= (
                self.config.segment_bytes
            ):
                size += batches[end].size_in_bytes
                end += 1
            run = batches[start:end]
            run_max = max(b.max_timestamp for b in run)
            position = run[0].position
            self._append_run(view[position : position + size], run, run_max)
            if run_max > max_timestamp:
                max_timestamp = run_max
                offset_of_max_timestamp = next(
                    b.last_offset for b in run if b.max_timestamp == run_max
                )
            start = end
            self.log_end_offset = run[-1].next_offset
            for batch in run:  # the leader's epochs, where each began
                self.leader_epoch_cache.assign(batch.partition_leader_epoch, batch.base_offset)
        self._appended(batches, record_count)
        return LogAppendInfo(
            first_offset=first_offset,
            last_offset=next_offset - 1,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max_timestamp,
            log_append_time=-1,
            log_start_offset=self.log_start_offset,
            record_count=record_count,
            valid_bytes=len(view),
            batches=batches,
        )

    def _append_run(
        self, view: memoryview, run: list[RecordBatch], max_timestamp: int, now: int | None = None
    ) -> None:
        """Write batches (offsets assigned, laid end to end in view) to the active segment,
        rolling first if they do not fit; a failure is logged once and raised as
        KafkaStorageError."""
        try:
            now = self._time_ms() if now is None else now
            segment = self._maybe_roll(len(view), max_timestamp, run[-1].last_offset, now)
            segment.append(view, run)
        except KafkaStorageError as exc:
            self.report_storage_error("append", exc)
            raise
        except OSError as exc:  # a roll could not create or fsync files
            error = KafkaStorageError(f"{self.directory}: roll failed: {exc}")
            self.report_storage_error("roll", error)
            raise error from exc
        if self.storage_error is not None:
            self.storage_recovered()

    def _appended(self, batches: list[RecordBatch], record_count: int) -> None:
        """After an append: the producers' state, and flush.messages."""
        self._update_producer_state(batches)
        self._unflushed_messages += record_count
        if self._unflushed_messages >= self.config.flush_messages:
            self.flush()

    def truncate_to(self, offset: int) -> bool:
        """Remove every batch at or beyond offset (a follower cutting the tail its new leader
        never had, KIP-101): segments wholly beyond it go (their files after
        file.delete.delay.ms, so reads in flight finish), the one holding it is cut, and the
        producer state, epoch cache, recovery point and high watermark follow. Returns whether
        anything was removed."""
        if offset >= self.log_end_offset:
            return False
        if offset <= self.log_start_offset:
            self.truncate_fully_and_start_at(offset)
            return True
        while len(self._segments) > 1 and self._segments[-1].base_offset >= offset:
            self._retire(self._segments.pop())
            self._base_offsets.pop()
        self.active_segment.truncate_to(offset)
        self._after_truncation()
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment and start an empty log at offset (a follower far behind a leader
        whose log now starts past this one's end)."""
        retired, self._segments, self._base_offsets = self._segments, [], []
        for segment in retired:
            self._retire(segment)
        self._add_segment(self._new_segment(offset, self._time_ms()))
        self.log_start_offset = offset
        self.leader_epoch_cache.clear()
        self.producer_state.truncate_fully_and_start_at(offset)
        self.txn_indexes.clear()
        self._after_truncation()

    def _retire(self, segment: LogSegment) -> None:
        segment.mark_deleted()
        self._pending_deletes.append((self._time_ms() + self.config.file_delete_delay_ms, segment))

    def _after_truncation(self) -> None:
        self.log_end_offset = self.active_segment.next_offset
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self._high_watermark = min(
            max(self._high_watermark, self.log_start_offset), self.log_end_offset
        )
        self._high_watermark_position = None
        self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
        self._rebuild_producer_state()
        self.active_segment.flush()  # the cut is durable before anything is fetched over it

    def _check_producer_state(self, batches: list[RecordBatch]) -> BatchMetadata | None:
        """Sequence checks of idempotent producers; the original batch if this is a retry."""
        in_request: dict[int, tuple[int, int]] = {}  # producer id -> (epoch, last sequence)
        for batch in batches:
            producer_id = batch.producer_id
            if producer_id < 0:
                continue
            if batch.is_control:  # a transaction marker: no sequence, epochs checked
                self.producer_state.check_marker(
                    producer_id, batch.producer_epoch, read_marker(batch)
                )
                continue
            if batch.base_sequence == NO_SEQUENCE:  # a coordinator's (a client's has one)
                self.producer_state.check_marker(producer_id, batch.producer_epoch, None)
                continue
            earlier = in_request.get(producer_id)
            if earlier is None:
                duplicate = self.producer_state.check(
                    producer_id, batch.producer_epoch, batch.base_sequence, batch.last_sequence
                )
                if duplicate is not None:
                    return duplicate
            elif earlier != (batch.producer_epoch, (batch.base_sequence - 1) % (1 << 31)):
                raise OutOfOrderSequenceError(
                    f"producer {producer_id}: batches in one request do not follow each other"
                )
            in_request[producer_id] = (batch.producer_epoch, batch.last_sequence)
        return None

    def _update_producer_state(self, batches: list[RecordBatch]) -> None:
        for batch in batches:
            if batch.producer_id >= 0:
                segment = self._segments[self._segment_index(batch.base_offset)]
                self._update_producer_batch(batch, segment.base_offset)
        self.producer_state.map_end_offset = self.log_end_offset

    def _update_producer_batch(self, batch: RecordBatch, segment_base: int) -> None:
        """One producer's batch into the producer state; an aborted transaction's marker adds
        its entry to the .txnindex of the segment holding the marker."""
        state = self.producer_state
        completed = state.update_batch(batch)
        if completed is None:
            return
        if completed.is_aborted:
            self.txn_indexes.append(
                segment_base,
                AbortedTxn(
                    completed.producer_id,
                    completed.first_offset,
                    completed.last_offset,
                    state.last_stable_offset_after(completed),
                ),
            )
        state.complete_txn(completed, self._high_watermark)

    def _rebuild_producer_state(self) -> None:
        """From the newest snapshot at or below the log end, then the batches after it."""
        state = self.producer_state
        # a torn .txnindex is rebuilt from the snapshot at or below its segment
        torn = self.txn_indexes.first_torn_base
        state.load_latest_snapshot(self.log_end_offset if torn is None else torn)
        start = max(state.map_end_offset, self.log_start_offset)
        self.txn_indexes.truncate_to(start)  # the replay writes these entries again
        for segment in self._segments[self._segment_index(start) :]:
            header = segment.translate_offset(start)
            if header is None:
                continue
            with segment.log.pinned() as fd:  # whole batches: markers are read, too
                for _, batch in read_batches(fd, segment.log.size, header.position):
                    if batch.producer_id >= 0:
                        self._update_producer_batch(batch, segment.base_offset)
        state.map_end_offset = self.log_end_offset

    def _analyze_and_validate(self, view: memoryview) -> tuple[list[RecordBatch], int]:
        batches = list(iter_batches(view))
        if not batches:
            raise InvalidRecordError("produce request holds no record batch")
        if len(view) > self.config.segment_bytes:
            raise RecordListTooLargeError(
                f"{len(view)} bytes of batches in one append exceed segment.bytes "
                f"{self.config.segment_bytes}"
            )
        record_count = 0
        max_batch_length = self.config.max_message_bytes - LOG_OVERHEAD
        for batch in batches:
            count = batch.record_count
            if batch.batch_length > max_batch_length:
                raise RecordTooLargeError(
                    f"batch of {batch.size_in_bytes} bytes exceeds max.message.bytes "
                    f"{self.config.max_message_bytes}"
                )
            if count <= 0 or count != batch.last_offset_delta + 1:
                raise InvalidRecordError(
                    f"batch holds {count} records but its last offset delta is "
                    f"{batch.last_offset_delta}"
                )
            if batch.compute_crc() != batch.crc:
                batch.ensure_valid()  # raises, with the offset and both CRCs
            record_count += count
        return batches, record_count

    def _maybe_roll(self, size: int, max_timestamp: int, last_offset: int, now: int) -> LogSegment:
        segment = self.active_segment
        if segment.should_roll(size, max_timestamp, last_offset, self.config, now):
            return self.roll()
        return segment

    def roll(self) -> LogSegment:
        """Close the active segment and start a new one. What the closed segment holds is made
        durable as Kafka makes it after a roll: in the background (the flusher), advancing the
        recovery point when done; in this thread when the log has no flusher."""
        active = self.active_segment
        if active.size == 0:
            return active
        active.on_become_inactive()
        segment = self._new_segment(self.log_end_offset, self._time_ms())
        self._add_segment(segment)
        # As Kafka: a snapshot per segment bounds the rebuild after a crash to the active one.
        if self._flusher is None:
            self.flush(segment.base_offset)
            self.producer_state.take_snapshot()
        else:
            snapshot = self.producer_state.take_snapshot(sync=False)
            txn_index = self.txn_indexes.path(active.base_offset)
            paths = [p for p in (snapshot, txn_index) if p is not None]
            self._flush_in_background(segment.base_offset, paths)
        return segment

    def report_storage_error(self, action: str, exc: Exception) -> None:
        """Log a failed append or roll with its path, once until a write succeeds again."""
        if self.storage_error is None:
            log.error(
                "%s of %s failed: %s; produce requests are answered KAFKA_STORAGE_ERROR while "
                "this lasts, and further failures are not logged until a write succeeds",
                action,
                self.directory,
                exc,
            )
        self.storage_error = str(exc)

    def storage_recovered(self) -> None:
        log.warning("writes to %s succeed again", self.directory)
        self.storage_error = None

    # -- read -----------------------------------------------------------------------------------
    def read(
        self,
        offset: int,
        max_bytes: int,
        isolation: FetchIsolation = FetchIsolation.LOG_END,
        min_one_message: bool = True,
    ) -> FetchDataInfo:
        """File slices of whole batches from the batch holding offset, up to max_bytes.

        With min_one_message the first batch is returned even when larger than max_bytes, so a
        consumer always progresses. An offset between the bound (LEO or high watermark) and the
        LEO reads nothing; below the log start or above the LEO is OffsetOutOfRangeError.
        """
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}] "
                f"of {self.directory}"
            )
        if isolation is FetchIsolation.HIGH_WATERMARK:
            end_offset = self._high_watermark
            end_segment, end_position = self._high_watermark_metadata()
        elif isolation is FetchIsolation.TXN_COMMITTED:
            end_offset = self.last_stable_offset
            end_segment = self._segments[self._segment_index(end_offset)]
            header = end_segment.translate_offset(end_offset)
            end_position = end_segment.size if header is None else header.position
        else:
            end_offset = self.log_end_offset
            end_segment, end_position = self.active_segment, self.active_segment.size
        slices: list[FileSlice] = []
        if offset >= end_offset:
            return FetchDataInfo(offset, slices)
        remaining = max_bytes
        for segment in self._segments[self._segment_index(offset) :]:
            last = segment is end_segment
            max_position = end_position if last else segment.size
            file_slice = segment.read(
                max(offset, segment.base_offset),
                remaining,
                max_position,
                min_one_batch=min_one_message and not slices,
            )
            if file_slice is None:
                if offset < segment.next_offset:
                    break  # the next batch is larger than the budget: never skip past it
            else:
                slices.append(file_slice)
                remaining -= file_slice.length
                if file_slice.position + file_slice.length < max_position:
                    break  # the byte budget ran out inside this segment
            if last or remaining <= 0:
                break
        return FetchDataInfo(offset, slices)

    def _high_watermark_metadata(self) -> tuple[LogSegment, int]:
        """(segment, position) where the high watermark's batch starts, cached per value."""
        if self._high_watermark_position is None:
            segment = self._segments[self._segment_index(self._high_watermark)]
            header = segment.translate_offset(self._high_watermark)
            position = segment.size if header is None else header.position
            self._high_watermark_position = (segment, position)
        return self._high_watermark_position

    def fetch_offset_by_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record whose timestamp is at or after timestamp."""
        for segment in self._segments:
            if segment.size and segment.largest_timestamp() >= timestamp:
                found = segment.find_offset_by_timestamp(timestamp, self.log_start_offset)
                if found is not None:
                    return found
        return None

    # -- flush ----------------------------------------------------------------------------------
    def flush(self, offset: int | None = None) -> None:
        """fsync every segment holding offsets in [recovery point, offset) and advance the
        recovery point to offset (default: the log end offset)."""
        offset = self.log_end_offset if offset is None else offset
        if offset > self.recovery_point:
            start = self._segment_index(self.recovery_point)
            for segment in self._segments[start:]:
                if segment.base_offset >= offset:
                    break
                segment.flush()
            self.recovery_point = offset
        self._unflushed_messages = 0
        self._last_flush_ms = self._time_ms()

    def _flush_in_background(self, offset: int, paths: list[str]) -> None:
        """Hand `paths` and the files of every segment below offset, from the recovery point
        on, to the flusher; the recovery point moves to offset when they are all synced."""
        for segment in self._segments[self._segment_index(self.recovery_point) :]:
            if segment.base_offset >= offset:
                break
            paths += segment.write_files()
        assert self._flusher is not None
        self._flusher.submit(paths, lambda ok: self._flushed_in_background(offset, ok))

    def _flushed_in_background(self, offset: int, ok: bool) -> None:
        # On the loop thread (LogManager drains the flusher): a failed fsync leaves the
        # recovery point where it was, so recovery re-reads those segments after a crash.
        if ok:  # (a truncation since may have cut the log below offset)
            self.recovery_point = min(max(self.recovery_point, offset), self.log_end_offset)

    def maybe_flush(self) -> bool:
        """Flush if flush.ms has passed since the last flush and there is unflushed data."""
        if (
            self.log_end_offset > self.recovery_point
            and self._time_ms() - self._last_flush_ms >= self.config.flush_ms
        ):
            self.flush()
            return True
        return False

    # -- retention ------------------------------------------------------------------------------
    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        """Move the log start offset up to offset (Kafka's maybeIncrementLogStartOffset: a
        DeleteRecords on the leader, the leader's log start offset on a follower). Reads below
        it are out of range at once; the segments wholly below it go in the next retention
        pass; the LogManager's log-start-offset-checkpoint keeps it across restarts. Beyond the
        high watermark is OffsetOutOfRangeError. Returns whether it moved."""
        if offset > self._high_watermark:
            raise OffsetOutOfRangeError(
                f"cannot move the log start offset of {self.directory} to {offset}: the high "
                f"watermark is {self._high_watermark}"
            )
        if offset <= self.log_start_offset:
            return False
        self.log_start_offset = offset
        self.leader_epoch_cache.truncate_from_start(offset)
        return True

    def delete_old_segments(self) -> int:
        """Delete the closed segments wholly below the log start offset, then apply retention.ms
        and retention.bytes to the others; returns how many went.

        Segments are deleted oldest first, never the active one, and never one holding offsets
        at or beyond the high watermark. Their files are renamed *.deleted and closed after
        file.delete.delay.ms, so reads already handed out stay valid.
        """
        now = self._time_ms()
        # the first segment is wholly below the log start offset when another one holds it
        deleted = self._delete_segments(
            lambda segment: self._segment_index(self.log_start_offset) > 0
        )
        if self.config.retention_ms >= 0:
            deleted += self._delete_segments(
                lambda segment: now - segment.largest_timestamp() > self.config.retention_ms
            )
        if self.config.retention_bytes >= 0:
            excess = self.size - self.config.retention_bytes

            def over_size(segment: LogSegment) -> bool:
                nonlocal excess
                if excess - segment.size >= 0:
                    excess -= segment.size
                    return True
                return False

            deleted += self._delete_segments(over_size)
        self.delete_pending_segments(now)
        return deleted

    def _delete_segments(self, predicate: Callable[[LogSegment], bool]) -> int:
        count = 0
        while len(self._segments) > 1:
            segment, following = self._segments[0], self._segments[1]
            if following.base_offset > self._high_watermark or not predicate(segment):
                break
            self._segments.pop(0)
            self._base_offsets.pop(0)
            segment.mark_deleted()
            self.txn_indexes.delete(segment.base_offset)
            self._pending_deletes.append(
                (self._time_ms() + self.config.file_delete_delay_ms, segment)
            )
            count += 1
        if count:
            self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
            self.recovery_point = max(self.recovery_point, self.log_start_offset)
            self.producer_state.delete_snapshots_below(self.log_start_offset)
            self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        return count

    def delete_pending_segments(self, now: int | None = None) -> None:
        """Close and unlink deleted segments whose file.delete.delay.ms has passed."""
        now = self._time_ms() if now is None else now
        due = [entry for entry in self._pending_deletes if entry[0] <= now]
        for entry in due:
            self._pending_deletes.remove(entry)
            entry[1].delete()

    # -- close ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush everything, write the indexes and close the files (a clean shutdown)."""
        self.active_segment.on_become_inactive()
        self.flush()
        self.producer_state.take_snapshot()
        self.delete_pending_segments(now=(1 << 63) - 1)
        for segment in self._segments:
            segment.close()

    def close_handlers(self) -> None:
        """Close every file without flushing or writing indexes: what a crash leaves behind."""
        for _, segment in self._pending_deletes:
            segment.close_handlers()
        for segment in self._segments:
            segment.close_handlers()

    def __repr__(self) -> str:
        return (
            f"Log({self.directory!r}, start={self.log_start_offset}, "
            f"hw={self._high_watermark}, end={self.log_end_offset}, segments={len(self._segments)})"
        )
