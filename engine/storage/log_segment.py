"""LogSegment: one .log file and its two sparse indexes, named by the segment's base offset.

Files in the partition directory, the base offset zero-padded to 20 digits:
    00000000000000000000.log        batches (see file_records.py)
    00000000000000000000.index      offset -> position (see offset_index.py)
    00000000000000000000.timeindex  timestamp -> offset (see time_index.py)
A segment being deleted carries a `.deleted` suffix on all three until its files are closed.
A rolled segment creates its three files at once; the first segment of a new log creates its
.log on the first append and its indexes on the first flush or close, so an unused partition
costs no files. The indexes hold no descriptor, and the .log's comes from the FileHandleCache.

Crash behaviour: `recover` re-reads the .log from position 0, validates every batch (framing,
magic 2, CRC-32C, offsets contiguous from the base offset), rebuilds both indexes exactly as
appends would have built them, and truncates the file at the first invalid batch; what it cut
(bytes, and the batches and offsets their headers claim) is kept in `last_recovery`.
"""

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from engine.errors import CorruptRecordError, UnsupportedForMessageFormatError
from engine.records.batch import LOG_OVERHEAD, MAGIC, RecordBatch
from engine.records.record import decode_records
from engine.storage.config import LogConfig
from engine.storage.file_handles import FileHandleCache
from engine.storage.file_records import BatchHeader, FileRecords, FileSlice, read_batches
from engine.storage.index import IndexCorruptError
from engine.storage.offset_index import OffsetIndex
from engine.storage.time_index import NO_TIMESTAMP, TimeIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
_MAX_RELATIVE_OFFSET = 0x7FFFFFFF
_LENGTH = struct.Struct(">i")  # batchLength, bytes 8-11
_DELTA = struct.Struct(">i")  # lastOffsetDelta, bytes 23-26
_LAST_OFFSET_DELTA_END = 27
_Index = TypeVar("_Index", OffsetIndex, TimeIndex)


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


@dataclass(frozen=True, slots=True)
class SegmentRecovery:
    """What LogSegment.recover cut from the end of a .log file."""

    path: str
    position: int  # where the file now ends
    next_offset: int  # the offset after the last valid batch
    bytes_truncated: int
    batches: int  # batches whose headers framed in the cut bytes (torn or invalid)
    offsets: int  # offsets those headers claimed
    reason: str


class LogSegment:
    """One segment: its .log file and its two indexes. Not thread-safe: the event loop's thread
    alone uses it; the LogFlusher fsyncs its files by path, never through it."""

    def __init__(
        self,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_size: int,
        created_ms: int,
        handles: FileHandleCache | None = None,
        create: bool = True,
    ) -> None:
        """The segment's files; create=False opens existing ones (a missing .log is created by
        the first append)."""
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        self.log = FileRecords(self._path(LOG_SUFFIX), handles, create=create)
        try:
            self.offset_index, index_ok = self._open_index(
                OffsetIndex, INDEX_SUFFIX, max_index_size
            )
            self.time_index, time_ok = self._open_index(
                TimeIndex, TIME_INDEX_SUFFIX, max_index_size
            )
            if create:
                self.offset_index.write()  # creates the empty files
                self.time_index.write()
        except OSError:
            self.log.close()
            raise
        # Indexes that were missing or corrupt are rebuilt by recover(); Log calls it.
        self.needs_recovery = not (index_ok and time_ok) or not self._indexes_match_log()
        self.bytes_since_last_index_entry = 0
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry
        self.rolling_based_timestamp: int | None = None
        self._next_offset: int | None = None
        self.recovery_error: Exception | None = None
        self.last_recovery: SegmentRecovery | None = None  # set by recover() when it cut bytes

    def _path(self, suffix: str) -> str:
        return os.path.join(self.directory, segment_file_name(self.base_offset, suffix))

    def _open_index(
        self, cls: type[_Index], suffix: str, max_index_size: int
    ) -> tuple[_Index, bool]:
        path = self._path(suffix)
        try:
            # Log._load deleted indexes without a .log: a missing .log has none to read
            index = cls(path, self.base_offset, max_index_size, load=self.log.exists)
            return index, index.exists or self.log.size == 0
        except IndexCorruptError:
            os.unlink(path)
            return cls(path, self.base_offset, max_index_size), False

    def _indexes_match_log(self) -> bool:
        """Kafka's sanity check: the last entries point inside this segment's data."""
        offset, position = self.offset_index.last_entry
        if self.offset_index.entries and position >= self.log.size:
            return False
        _, time_offset = self.time_index.last_entry
        return offset >= self.base_offset and time_offset >= self.base_offset

    # -- size and offsets -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.log.size

    @property
    def next_offset(self) -> int:
        """The offset after the last batch in this segment (its base offset when empty)."""
        if self._next_offset is None and not self.tail_is_sound():
            raise CorruptRecordError(f"{self.log.path} ends in a partial or corrupt batch")
        assert self._next_offset is not None  # tail_is_sound() learned it
        return self._next_offset

    def tail_is_sound(self) -> bool:
        """Scan the headers after the last index entry: do they end exactly at the file's end?

        The cheap check for a segment trusted without recovery; it also learns the next offset.
        """
        next_offset, end = self.base_offset, self.offset_index.last_entry[1]
        try:
            for header in self.log.batch_headers(end):
                next_offset, end = header.last_offset + 1, header.position + header.size
        except CorruptRecordError:
            return False
        if end != self.log.size:
            return False
        self._next_offset = next_offset
        return True

    def largest_timestamp(self) -> int:
        """The segment's largest record timestamp; the file's mtime if it holds none (as Kafka)."""
        if self.max_timestamp != NO_TIMESTAMP:
            return self.max_timestamp
        try:
            return int(os.stat(self.log.path).st_mtime * 1000)
        except FileNotFoundError:  # a new log's first segment before its first append
            return self.created_ms

    def should_roll(
        self, append_size: int, max_timestamp: int, last_offset: int, config: LogConfig, now_ms: int
    ) -> bool:
        if self.size == 0:
            return False
        if self.size > config.segment_bytes - append_size:
            return True
        if self.rolling_based_timestamp is None:  # a reopened segment: its first batch's time
            self.rolling_based_timestamp = next(self.log.batch_headers()).max_timestamp
        if self.rolling_based_timestamp >= 0:
            waited = max_timestamp - self.rolling_based_timestamp
        else:
            waited = now_ms - self.created_ms
        return (
            waited > config.segment_ms
            or self.offset_index.is_full
            or self.time_index.is_full
            or last_offset - self.base_offset > _MAX_RELATIVE_OFFSET
        )

    # -- append ---------------------------------------------------------------------------------
    def append(self, data: memoryview, batches: list[RecordBatch]) -> None:
        """Write batches (laid end to end in data, offsets assigned) with one write call."""
        position = self.log.size
        self.log.append(data)
        self._index_batches(batches, position)
        self._next_offset = batches[-1].next_offset

    def _index_batches(self, batches: list[RecordBatch], position: int) -> None:
        """Track the largest timestamp and add index entries for batches written at position.

        On the produce hot path: state is kept in locals for the loop and stored once.
        """
        if self.rolling_based_timestamp is None:
            self.rolling_based_timestamp = batches[0].max_timestamp
        interval = self.index_interval_bytes
        since_last_entry = self.bytes_since_last_index_entry
        max_timestamp, offset_of_max = self.max_timestamp, self.offset_of_max_timestamp
        for batch in batches:
            last_offset = batch.base_offset + batch.last_offset_delta
            if batch.max_timestamp > max_timestamp:
                max_timestamp, offset_of_max = batch.max_timestamp, last_offset
            if since_last_entry > interval:
                self.offset_index.append(last_offset, position)
                self.time_index.maybe_append(max_timestamp, offset_of_max)
                since_last_entry = 0
            # Counted after the check, as in Kafka: a segment's first batch gets no entry (a
            # lookup falls back to position 0 for it).
            size = batch.batch_length + LOG_OVERHEAD
            since_last_entry += size
            position += size
        self.bytes_since_last_index_entry = since_last_entry
        self.max_timestamp, self.offset_of_max_timestamp = max_timestamp, offset_of_max

    def on_become_inactive(self) -> None:
        """Before a roll or close: record the largest timestamp as the time index's last entry."""
        if self.max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)

    def flush(self) -> None:
        self.log.flush()
        self.offset_index.flush()
        self.time_index.flush()

    def write_files(self) -> list[str]:
        """Write pending index entries (no fsync) and return the paths an fsync of the segment
        covers, for a flush done elsewhere (LogFlusher)."""
        self.offset_index.write()
        self.time_index.write()
        return [self.log.path, self.offset_index.path, self.time_index.path]

    def close(self) -> None:
        self.on_become_inactive()
        if self.log.exists:
            self.offset_index.close()
            self.time_index.close()
        else:  # never written: leave no files behind
            self.offset_index.close_handler()
            self.time_index.close_handler()
        self.log.close()

    def close_handlers(self) -> None:
        """Close the files without writing anything (as Kafka's closeHandlers)."""
        self.offset_index.close_handler()
        self.time_index.close_handler()
        self.log.close()

    def mark_deleted(self) -> None:
        """Rename the files to *.deleted; open readers keep working until delete()."""
        for f in (self.log, self.offset_index, self.time_index):
            if not f.path.endswith(DELETED_SUFFIX):
                f.rename(f.path + DELETED_SUFFIX)

    def delete(self) -> None:
        self.log.delete()
        self.offset_index.delete()
        self.time_index.delete()

    # -- lookups --------------------------------------------------------------------------------
    def translate_offset(self, offset: int) -> BatchHeader | None:
        """The first batch whose last offset is at or beyond offset, or None past the end."""
        _, position = self.offset_index.lookup(offset)
        for header in self.log.batch_headers(position):
            if header.last_offset >= offset:
                return header
        return None

    def read(
        self, offset: int, max_bytes: int, max_position: int, min_one_batch: bool
    ) -> FileSlice | None:
        """Whole batches from the one holding offset, at most max_bytes (but at least one batch
        if min_one_batch) and ending at or before max_position. None if offset is past the end."""
        start = self.translate_offset(offset)
        if start is None or start.position >= max_position:
            return None
        limit = min(max_position, start.position + max_bytes)
        if limit >= max_position:
            end = max_position
        else:
            # Every indexed position is a batch start: jump to the last one below the limit and
            # scan the few headers after it, instead of every header from the start.
            end = start.position
            scan_from = max(start.position, self.offset_index.floor_position(limit))
            if scan_from > start.position:
                end = scan_from
            for header in self.log.batch_headers(scan_from, max_position):
                if header.position + header.size > limit:
                    break
                end = header.position + header.size
            if end == start.position and min_one_batch:
                end = start.position + start.size
        if end == start.position:
            return None
        return self.log.slice(start.position, end - start.position)

    def find_offset_by_timestamp(
        self, timestamp: int, starting_offset: int
    ) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record at or after timestamp with offset at or beyond
        starting_offset, or None when the segment holds no such record."""
        _, indexed_offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(indexed_offset, starting_offset))
        for header in self.log.batch_headers(position):
            if header.max_timestamp < timestamp or header.last_offset < starting_offset:
                continue
            data = memoryview(bytearray(self.log.read(header.position, header.size)))
            for record in decode_records(RecordBatch(data)):
                if record.timestamp >= timestamp and record.offset >= starting_offset:
                    return record.timestamp, record.offset
        return None

    def batches(self, start_position: int = 0) -> Iterator[BatchHeader]:
        return self.log.batch_headers(start_position)

    # -- recovery -------------------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuild the indexes from the log, truncating at the first invalid batch.

        Returns the number of bytes truncated; `recovery_error` says why, when any were.
        """
        self.offset_index.reset()
        self.time_index.reset()
        self.max_timestamp, self.offset_of_max_timestamp = NO_TIMESTAMP, self.base_offset
        self.bytes_since_last_index_entry = 0
        self.rolling_based_timestamp = None
        self.recovery_error = None
        self.last_recovery = None
        expected_offset = self.base_offset
        valid = 0
        if self.log.size:
            with self.log.pinned() as fd:  # read_batches holds the number between reads
                try:
                    for position, batch in read_batches(fd, self.log.size):
                        validate_stored_batch(batch, position, expected_offset)
                        self._index_batches([batch], position)
                        expected_offset = batch.next_offset
                        valid = position + batch.size_in_bytes
                except (CorruptRecordError, UnsupportedForMessageFormatError) as exc:
                    self.recovery_error = exc
        if valid < self.log.size:
            batches, offsets = self._claimed_by_headers(valid)
            self.last_recovery = SegmentRecovery(
                self.log.path,
                valid,
                expected_offset,
                self.log.size - valid,
                batches,
                offsets,
                str(self.recovery_error),
            )
        truncated = self.log.truncate_to(valid)
        self._next_offset = expected_offset
        self.needs_recovery = False
        return truncated

    def truncate_to(self, offset: int) -> int:
        """Cut every batch holding offsets at or beyond offset (a whole batch: offsets a batch
        shares are never split); returns the bytes removed. The indexes are rebuilt from what
        stays, by recover(): truncation is rare (a follower whose log diverged from its new
        leader), so a re-read of one segment is cheaper than a second way to keep them right."""
        header = self.translate_offset(offset)
        if header is None:
            return 0
        removed = self.log.truncate_to(header.position)
        self.recover()
        return removed

    def _claimed_by_headers(self, start: int) -> tuple[int, int]:
        """(batches, offsets) that the headers after start claim, as far as their lengths frame
        them: what a truncation there cuts, for the recovery log. A header cut short counts
        when its lastOffsetDelta (bytes 23-26) is there."""
        batches = offsets = 0
        position, end = start, self.log.size
        while position < end:
            head = os.pread(self.log.fd, _LAST_OFFSET_DELTA_END, position)
            if len(head) < _LAST_OFFSET_DELTA_END:
                break
            length, delta = _LENGTH.unpack_from(head, 8)[0], _DELTA.unpack_from(head, 23)[0]
            if delta < 0 or length + LOG_OVERHEAD < _LAST_OFFSET_DELTA_END:
                break
            batches += 1
            offsets += delta + 1
            position += length + LOG_OVERHEAD
        return batches, offsets


def validate_stored_batch(batch: RecordBatch, position: int, expected_offset: int) -> None:
    """What recovery and `dump-log --verify` demand of each batch in a segment."""
    if batch.magic != MAGIC:
        raise UnsupportedForMessageFormatError(
            f"batch at position {position} has magic {batch.magic}"
        )
    # Without compaction offsets are contiguous, so a gap means a damaged baseOffset, the one
    # header field besides the leader epoch that the CRC does not cover.
    if batch.base_offset != expected_offset:
        raise CorruptRecordError(
            f"batch at position {position} has base offset {batch.base_offset}, "
            f"expected {expected_offset}"
        )
    if batch.record_count <= 0 or batch.record_count != batch.last_offset_delta + 1:
        raise CorruptRecordError(
            f"batch at position {position} has {batch.record_count} records "
            f"but last offset delta {batch.last_offset_delta}"
        )
    if not batch.is_valid():
        raise CorruptRecordError(
            f"batch at offset {batch.base_offset} (position {position}) fails its CRC-32C check"
        )
