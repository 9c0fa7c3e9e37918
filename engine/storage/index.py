"""What the offset and time indexes share: fixed-size entries, kept in memory, written in bulk.

Entries live in arrays (bisect runs in C over them) and reach the file only on flush and close:
an index after the recovery point is rebuilt from the log after a crash anyway, so writing each
entry as it is made would buy nothing. The file holds exactly the written entries, no
preallocated tail, which is what Kafka leaves behind after trimming an index on close.

No descriptor is kept: the file is read once when the segment is opened and opened again only
for the moment of a write (flush, close, roll), so an index costs no file handle while the broker
serves (see file_handles.py for the .log files).
"""

import contextlib
import os
from abc import ABC, abstractmethod

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


class IndexCorruptError(Exception):
    """An index file contradicts itself or its segment; the segment rebuilds it from the log."""


class AbstractIndex(ABC):
    """Fixed-size entries in memory, written to their file in whole runs. Not thread-safe: the event
    loop's thread alone uses it."""

    entry_size = 0

    def __init__(
        self, path: str, base_offset: int, max_index_size: int, *, load: bool = True
    ) -> None:
        """Load the file at path if it exists (it is created by the first write otherwise);
        load=False: the caller knows there is none (a segment whose .log does not exist)."""
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_index_size // self.entry_size
        self._written_entries = 0
        self._dirty = False  # written or truncated since the last fsync
        self._closed = False  # after close or close_handler nothing more is written
        self._clear()
        data, self.exists = b"", False
        if load:
            try:
                with open(path, "rb") as f:
                    data = f.read()
                self.exists = True
            except FileNotFoundError:
                pass
        if len(data) % self.entry_size:
            raise IndexCorruptError(
                f"{path}: size {len(data)} is not a multiple of {self.entry_size} bytes"
            )
        self._load(data)
        self._written_entries = self.entries
        self._dirty = self.exists  # what a previous process wrote may not be on disk yet

    # -- implemented by each index ------------------------------------------------------------
    @abstractmethod
    def _clear(self) -> None: ...

    @abstractmethod
    def _load(self, data: bytes) -> None:
        """Fill the entries from the file's bytes; raise IndexCorruptError if they are not sane."""

    @property
    @abstractmethod
    def entries(self) -> int: ...

    @abstractmethod
    def _encode_from(self, start: int) -> bytes:
        """The file bytes of entries [start, entries)."""

    @abstractmethod
    def _truncate_entries(self, count: int) -> None: ...

    # -- shared ---------------------------------------------------------------------------------
    @property
    def is_full(self) -> bool:
        return self.entries >= self.max_entries

    @property
    def size_in_bytes(self) -> int:
        return self.entries * self.entry_size

    def _relative(self, offset: int) -> int:
        relative = offset - self.base_offset
        if not 0 <= relative <= 0x7FFFFFFF:
            raise ValueError(f"offset {offset} is out of range for index base {self.base_offset}")
        return relative

    def write(self, sync: bool = False) -> None:
        """Write the entries made since the last write (one write call), creating the file if it
        is missing; with sync, fsync it unless nothing changed since the last fsync."""
        pending = self._written_entries < self.entries
        if self._closed or not (pending or not self.exists or (sync and self._dirty)):
            return
        fd = os.open(self.path, _WRITE_FLAGS, 0o644)
        try:
            self.exists = True
            if pending:
                data = self._encode_from(self._written_entries)
                try:
                    written = os.write(fd, data)
                except OSError:
                    os.ftruncate(fd, self._written_entries * self.entry_size)
                    raise
                if written != len(data):
                    os.ftruncate(fd, self._written_entries * self.entry_size)
                    raise OSError(f"short write to {self.path}")
                self._written_entries = self.entries
                self._dirty = True
            if sync:
                os.fsync(fd)
                self._dirty = False
        finally:
            os.close(fd)

    def flush(self) -> None:
        self.write(sync=True)

    def truncate_to_entries(self, count: int) -> None:
        """Keep the first count entries, in memory and on disk."""
        self._truncate_entries(count)
        if count < self._written_entries:
            os.truncate(self.path, count * self.entry_size)
            self._written_entries = count
            self._dirty = True

    def reset(self) -> None:
        """Drop every entry (before a rebuild from the log)."""
        self.truncate_to_entries(0)

    def rename(self, path: str) -> None:
        if self.exists:
            os.rename(self.path, path)
        self.path = path

    def close_handler(self) -> None:
        """Stop writing, leaving pending entries unwritten (an offline directory, a crash test)."""
        self._closed = True

    def close(self) -> None:
        """Write pending entries (fsynced), making sure the file exists; then stop writing."""
        if not self._closed:
            if self._written_entries < self.entries:
                self.flush()
            else:
                self.write()
        self._closed = True

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.exists = False
