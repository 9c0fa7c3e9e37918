"""FileRecords: a segment's .log file, the record batches laid end to end exactly as received.

Layout: batch after batch (record batch v2, see engine.records.batch), no file header, no padding.
Writes go through a descriptor opened O_APPEND, one write call per append; `size` counts only
bytes whose write completed. The descriptor is opened on first use and may be closed again by the
FileHandleCache when many files are open (see file_handles.py); it is reopened by path on the next
use, so `fd` is only valid until the next file is opened. A new log's first segment has no file
until its first append.

Crash behaviour: a crash can leave a torn batch at the tail, which LogSegment.recover finds by
framing and CRC and truncates. A failed write (ENOSPC, EIO, EFBIG) is truncated back at once, so
the file never holds a partial append while the broker runs.
"""

import contextlib
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from engine.errors import CorruptRecordError, KafkaStorageError
from engine.records.batch import HEADER_SIZE, LOG_OVERHEAD, MAGIC, RecordBatch, read_batch_prefix
from engine.storage.file_handles import FileHandleCache, default_file_handles

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

    It holds the FileRecords, not a number: the descriptor is looked up when the bytes are sent
    (reopened if the FileHandleCache closed it), and a segment deleted by retention stays
    readable until its files are closed after file.delete.delay.ms.
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


_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


class FileRecords:
    """A segment's .log file: appends, reads and slices for sendfile. Not thread-safe: the event
    loop's thread alone uses it."""

    def __init__(
        self, path: str, handles: FileHandleCache | None = None, *, create: bool = True
    ) -> None:
        """The file at path; create=False leaves a missing file to the first append."""
        self.path = path
        self.handles = handles if handles is not None else default_file_handles()
        self.pins = 0  # > 0 while a reader holds the descriptor number (see pinned)
        self._fd = -1
        self._closed = False
        self.failure: str | None = None  # set when a failed write could not be undone
        self.exists = True  # False until a file that create=False found missing is written
        if create:
            self.size = os.fstat(self.fd).st_size
        else:
            try:
                self.size = os.stat(path).st_size
            except FileNotFoundError:
                self.size, self.exists = 0, False

    @property
    def fd(self) -> int:
        """The open descriptor, opened (or reopened) now if the cache had closed it. Valid until
        another file is opened: read it again rather than keep it (or hold `pinned()`)."""
        if self._fd >= 0:
            self.handles.touch(self)
            return self._fd
        if self._closed:
            raise OSError(errno.EBADF, f"{self.path} is closed")
        self._fd = self.handles.open(self, self.path, _OPEN_FLAGS)
        self.exists = True
        return self._fd

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def release_handle(self) -> None:
        """The cache evicts this file: close the descriptor; the next use reopens it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @contextlib.contextmanager
    def pinned(self) -> Iterator[int]:
        """The descriptor, kept open (never evicted) until the block ends."""
        fd = self.fd
        self.pins += 1
        try:
            yield fd
        finally:
            self.pins -= 1

    def append(self, data: memoryview | bytes) -> None:
        """Write data at the end; on any error truncate the partial write and raise."""
        if self.failure is not None:
            raise KafkaStorageError(f"{self.path} is offline until recovered: {self.failure}")
        start = self.size
        written = 0
        try:
            fd = self.fd
        except OSError as exc:  # nothing was written
            raise KafkaStorageError(f"cannot open {self.path}: {exc.strerror}") from exc
        try:
            while written < len(data):  # a regular file writes short only when it is failing
                written += os.write(fd, data[written:])
        except OSError as exc:
            self._truncate_after_failure(fd, start, written, exc)
        self.size = start + written

    def _truncate_after_failure(self, fd: int, start: int, written: int, exc: OSError) -> None:
        try:
            os.ftruncate(fd, start)
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
        """fsync the file (through a reopened descriptor if the cache closed it: fsync flushes
        the file's dirty pages whichever descriptor wrote them)."""
        if self.exists:
            os.fsync(self.fd)

    def truncate_to(self, size: int) -> int:
        """Cut the file to size bytes; returns how many bytes were removed."""
        removed = self.size - size
        if removed > 0:
            os.ftruncate(self.fd, size)
            self.size = size
        return max(removed, 0)

    def rename(self, path: str) -> None:
        if self.exists:
            os.rename(self.path, path)
        self.path = path

    def close(self) -> None:
        """Close the descriptor for good (a closed FileRecords is not reopened)."""
        self._closed = True
        if self._fd >= 0:
            self.handles.forget(self)
            self.release_handle()

    def delete(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
