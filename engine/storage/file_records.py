"""FileRecords: a segment's .log file, the record batches laid end to end exactly as received.

Layout: batch after batch (record batch v2, see engine.records.batch), no file header, no padding.
The file is opened O_APPEND and written with one write call per append; `size` counts only bytes
whose write completed. Crash behaviour: a crash can leave a torn batch at the tail, which
LogSegment.recover finds by framing and CRC and truncates. A failed write (ENOSPC, EIO, EFBIG) is
truncated back at once, so the file never holds a partial append while the broker runs.
"""

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from engine.errors import CorruptRecordError, KafkaStorageError
from engine.records.batch import HEADER_SIZE, LOG_OVERHEAD, MAGIC, RecordBatch, read_batch_prefix

_SCAN_CHUNK = 16 * 1024  # headers are read this many bytes at a time when batches are small
_READ_CHUNK = 8 * 1024 * 1024  # whole batches are read this many bytes at a time
# baseOffset, length, magic, lastOffsetDelta, maxTimestamp, producerId, producerEpoch, baseSequence
_SCAN_FIELDS = struct.Struct(">qi4xb4x2xi8xqqhi4x")
_SCAN_SIZE = HEADER_SIZE

assert _SCAN_FIELDS.size == _SCAN_SIZE


class BatchHeader(NamedTuple):
    """What a scan of headers learns about one batch in a file."""

    position: int
    size: int
    base_offset: int
    last_offset: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int


@dataclass(frozen=True, slots=True)
class FileSlice:
    """Whole batches in a file, ready for os.sendfile(out, slice.file.fd, position, length).

    It holds the FileRecords, not a number, so a segment deleted by retention stays readable
    until its files are closed after file.delete.delay.ms.
    """

    file: "FileRecords"
    position: int
    length: int

    def read(self) -> bytes:
        """The slice's bytes, for copy-mode serving and for tools and tests."""
        return self.file.read(self.position, self.length)


def read_batches(fd: int, size: int, start: int = 0) -> Iterator[tuple[int, RecordBatch]]:
    """Yield (file position, batch) for the whole batches from start to size, read in chunks.

    Each batch is a view over the chunk it was read in. Framing is checked: a torn or impossible
    batch raises CorruptRecordError naming its position. Magic and CRC are left to the caller.
    """
    position = start
    chunk, chunk_start = b"", start
    while position < size:
        if size - position < HEADER_SIZE:
            raise CorruptRecordError(
                f"{size - position} bytes at position {position}, too few for a batch header"
            )
        if position + HEADER_SIZE > chunk_start + len(chunk):
            chunk, chunk_start = os.pread(fd, _READ_CHUNK, position), position
        _, batch_size = read_batch_prefix(chunk, position - chunk_start)
        if batch_size < HEADER_SIZE or position + batch_size > size:
            raise CorruptRecordError(
                f"batch at position {position} claims {batch_size} bytes; "
                f"{size - position} remain in the file"
            )
        if position + batch_size > chunk_start + len(chunk):
            chunk, chunk_start = os.pread(fd, max(_READ_CHUNK, batch_size), position), position
        yield position, RecordBatch(memoryview(chunk), position - chunk_start)
        position += batch_size


class FileRecords:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.failure: str | None = None  # set when a failed write could not be undone

    def append(self, data: memoryview | bytes) -> None:
        """Write data at the end; on any error truncate the partial write and raise."""
        if self.failure is not None:
            raise KafkaStorageError(f"{self.path} is offline until recovered: {self.failure}")
        start = self.size
        written = 0
        try:
            while written < len(data):  # a regular file writes short only when it is failing
                written += os.write(self.fd, data[written:])
        except OSError as exc:
            self._truncate_after_failure(start, written, exc)
        self.size = start + written

    def _truncate_after_failure(self, start: int, written: int, exc: OSError) -> None:
        try:
            os.ftruncate(self.fd, start)
        except OSError as truncate_exc:
            # The file now holds bytes the log does not account for: refuse further appends;
            # recovery on the next open truncates them.
            self.failure = (
                f"write at position {start} failed ({exc.strerror}) and the partial write "
                f"could not be truncated ({truncate_exc.strerror})"
            )
            raise KafkaStorageError(f"{self.path}: {self.failure}") from exc
        raise KafkaStorageError(
            f"write to {self.path} at position {start} failed ({exc.strerror}); "
            f"{written} partially written bytes truncated, the log is unchanged"
        ) from exc

    def read(self, position: int, length: int) -> bytes:
        data = os.pread(self.fd, length, position)
        if len(data) != length:
            raise CorruptRecordError(
                f"{self.path}: read of {length} bytes at {position} returned {len(data)}"
            )
        return data

    def slice(self, position: int, length: int) -> FileSlice:
        return FileSlice(self, position, length)

    def batch_headers(self, start: int = 0, end: int | None = None) -> Iterator[BatchHeader]:
        """Scan batch headers from start, a batch boundary, up to end; CRCs are not checked.

        Reads _SCAN_CHUNK bytes at a time and parses every header inside, so small batches cost
        one pread per chunk and large ones one pread each. Stops at a header that does not fit
        before end; raises CorruptRecordError on an impossible length or magic.
        """
        end = self.size if end is None else end
        position = start
        chunk = b""
        chunk_start = start
        while position + HEADER_SIZE <= end:
            rel = position - chunk_start
            if rel + _SCAN_SIZE > len(chunk):
                chunk = os.pread(self.fd, min(_SCAN_CHUNK, end - position), position)
                chunk_start = position
                rel = 0
                if len(chunk) < _SCAN_SIZE:
                    return
            fields = _SCAN_FIELDS.unpack_from(chunk, rel)
            base_offset, length, magic, last_delta, max_timestamp, producer_id, epoch, seq = fields
            size = length + LOG_OVERHEAD
            if magic != MAGIC or size < HEADER_SIZE:
                raise CorruptRecordError(
                    f"{self.path}: batch at position {position} has magic {magic} and size {size}"
                )
            if position + size > end:
                return
            yield BatchHeader(
                position,
                size,
                base_offset,
                base_offset + last_delta,
                max_timestamp,
                producer_id,
                epoch,
                seq,
            )
            position += size

    def flush(self) -> None:
        os.fsync(self.fd)

    def truncate_to(self, size: int) -> int:
        """Cut the file to size bytes; returns how many bytes were removed."""
        removed = self.size - size
        if removed > 0:
            os.ftruncate(self.fd, size)
            self.size = size
        return max(removed, 0)

    def rename(self, path: str) -> None:
        os.rename(self.path, path)
        self.path = path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def delete(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
