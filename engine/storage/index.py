"""What the offset and time indexes share: fixed-size entries, kept in memory, written in bulk.

Entries live in arrays (bisect runs in C over them) and reach the file only on flush and close:
an index after the recovery point is rebuilt from the log after a crash anyway, so writing each
entry as it is made would buy nothing. The file holds exactly the written entries, no
preallocated tail, which is what Kafka leaves behind after trimming an index on close.
"""

import contextlib
import os
from abc import ABC, abstractmethod


class IndexCorruptError(Exception):
    """An index file contradicts itself or its segment; the segment rebuilds it from the log."""


class AbstractIndex(ABC):
    entry_size = 0

    def __init__(self, path: str, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_index_size // self.entry_size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._written_entries = 0
        self._clear()
        data = b""
        size = os.fstat(self._fd).st_size
        if size:
            data = os.pread(self._fd, size, 0)
        try:
            if len(data) % self.entry_size:
                raise IndexCorruptError(
                    f"{path}: size {len(data)} is not a multiple of {self.entry_size} bytes"
                )
            self._load(data)
        except IndexCorruptError:
            os.close(self._fd)
            raise
        self._written_entries = self.entries

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

    def write(self) -> None:
        """Write the entries made since the last write (one write call)."""
        if self._written_entries < self.entries:
            data = self._encode_from(self._written_entries)
            try:
                written = os.write(self._fd, data)
            except OSError:
                os.ftruncate(self._fd, self._written_entries * self.entry_size)
                raise
            if written != len(data):
                os.ftruncate(self._fd, self._written_entries * self.entry_size)
                raise OSError(f"short write to {self.path}")
            self._written_entries = self.entries

    def flush(self) -> None:
        self.write()
        os.fsync(self._fd)

    def truncate_to_entries(self, count: int) -> None:
        """Keep the first count entries, in memory and on disk."""
        self._truncate_entries(count)
        if count < self._written_entries:
            os.ftruncate(self._fd, count * self.entry_size)
            self._written_entries = count

    def reset(self) -> None:
        """Drop every entry (before a rebuild from the log)."""
        self.truncate_to_entries(0)

    def rename(self, path: str) -> None:
        os.rename(self.path, path)
        self.path = path

    def close_handler(self) -> None:
        """Close the file without writing pending entries (an offline directory, a crash test)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            if self._written_entries < self.entries:
                self.flush()
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
