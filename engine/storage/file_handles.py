"""FileHandleCache: a bounded number of open segment files, the least recently used closed first.

A broker with many partitions has more segment files than it may hold open descriptors
(RLIMIT_NOFILE), as Kafka's file-handle guidance warns. So a FileRecords opens its file on first
use and registers it here; once more than `capacity` files are open, the least recently used one
is closed, and it is reopened by path on its next use. Closing loses nothing: written bytes are
in the page cache whichever descriptor wrote them, and fsync on a reopened descriptor flushes
them. A file read in several steps under one descriptor number (recovery's scan) is pinned for
that time and never closed under its reader.

Used by the event loop only, as every storage class: not thread-safe (it does not lock). A use
of an open file costs one OrderedDict.move_to_end.
"""

import contextlib
import errno
import os
import resource
from collections import OrderedDict
from typing import Protocol

# Descriptors the broker keeps for itself besides segment files: sockets, the listener, the
# selector, the directory lock, and files opened for a moment (checkpoints, snapshots, indexes).
_MIN_CAPACITY = 16


class CachedFile(Protocol):
    pins: int

    def release_handle(self) -> None:
        """Close the descriptor (the cache is evicting it); the next use reopens it."""


class FileHandleCache:
    """Open .log descriptors, least recently used closed first. Not thread-safe: the event loop's
    thread alone uses it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._open: OrderedDict[CachedFile, None] = OrderedDict()
        self.opens = 0  # descriptors opened, including reopens of evicted files
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._open)

    def open(self, f: CachedFile, path: str, flags: int) -> int:
        """Open path for f, making room first; one retry after EMFILE/ENFILE with fewer open."""
        self._evict(self.capacity - 1)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self._open:
                raise
            self._evict(len(self._open) // 2)  # the process is out: give back half of ours
            fd = os.open(path, flags, 0o644)
        self._open[f] = None
        self.opens += 1
        return fd

    def touch(self, f: CachedFile) -> None:
        self._open.move_to_end(f)

    def forget(self, f: CachedFile) -> None:
        """f closed its descriptor itself."""
        self._open.pop(f, None)

    def _evict(self, keep: int) -> None:
        """Close least recently used, unpinned files until at most keep stay open."""
        if len(self._open) <= keep:
            return
        for f in list(self._open):
            if len(self._open) <= keep:
                return
            if f.pins:
                continue
            del self._open[f]
            f.release_handle()
            self.evictions += 1


def open_files_limit() -> tuple[int, int]:
    """RLIMIT_NOFILE as (soft, hard)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as Kafka's docs advise for brokers);
    returns the (soft, hard) in force afterwards. The kernel's fs.nr_open caps an unlimited hard
    limit."""
    soft, hard = open_files_limit()
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # keep the soft limit we have
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_files_limit()


def segment_files_budget(soft_limit: int | None = None) -> int:
    """How many segment files to keep open under an RLIMIT_NOFILE soft limit: half of it, the
    other half left to connections and to files opened for a moment."""
    soft = open_files_limit()[0] if soft_limit is None else soft_limit
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(_MIN_CAPACITY, soft // 2)


_default: FileHandleCache | None = None


def default_file_handles() -> FileHandleCache:
    """The process's cache, for logs opened without a LogManager (tools, tests); descriptors are
    a per-process resource, so logs share it unless given their own."""
    global _default
    if _default is None:
        _default = FileHandleCache(segment_files_budget())
    return _default
