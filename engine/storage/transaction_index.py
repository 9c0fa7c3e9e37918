"""TransactionIndex: the aborted transactions of one segment, Kafka's `.txnindex` file.

File `<20-digit base offset>.txnindex` beside the segment's `.log`, no header, entries of 34 bytes,
big-endian, as Kafka's AbortedTxn:
    version int16 (0) · producerId int64 · firstOffset int64 · lastOffset int64 ·
    lastStableOffset int64
One entry per aborted transaction, in the segment that holds its abort marker (lastOffset is the
marker's offset), in the order the markers were appended; lastStableOffset is the log's last
stable offset once that transaction completed. A read_committed fetch gets the entries whose
range meets what it reads, so the consumer drops the aborted records (Kafka's
collectAbortedTxns). A segment with no aborted transaction has no file.

Crash behaviour: an entry is appended with one write when its marker is appended, fsynced when
the segment is (a roll's background flush, or a clean close). On load a file whose size is not a
whole number of entries, or holding an entry of an unknown version, is torn: it is cut to its
whole entries and reported by `first_torn_base`, and the Log rebuilds the entries from the
producer-state snapshot at or below that segment, replaying the batches after it (the entries
of every marker at or after the replay's start are rewritten, so they are never doubled). A file
whose segment is gone is deleted.

Not thread-safe: the event loop's thread alone uses it (the flusher gets only paths).
"""

import os
import struct
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

TXN_INDEX_SUFFIX = ".txnindex"
_VERSION = 0
_ENTRY = struct.Struct(">hqqqq")


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return _ENTRY.pack(
            _VERSION, self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset
        )


def _path(directory: str, base_offset: int) -> str:
    return os.path.join(directory, f"{base_offset:020d}{TXN_INDEX_SUFFIX}")


def read_txn_index(path: str) -> tuple[list[AbortedTxn], bool]:
    """(the whole entries of a .txnindex file, whether it was torn): entries stop at the first
    partial or unknown-version one."""
    with open(path, "rb") as f:
        data = f.read()
    entries: list[AbortedTxn] = []
    for position in range(0, len(data) - _ENTRY.size + 1, _ENTRY.size):
        version, *fields = _ENTRY.unpack_from(data, position)
        if version != _VERSION:
            return entries, True
        entries.append(AbortedTxn(*fields))
    return entries, len(data) != len(entries) * _ENTRY.size


class TransactionIndexes:
    """The `.txnindex` files of one partition directory, by segment base offset, held in memory
    (they are small: one entry per aborted transaction)."""

    def __init__(self, directory: str, segment_bases: Iterable[int] | None) -> None:
        """segment_bases: the log's segments, whose files are loaded (others deleted); None for a
        new log, which has none."""
        self.directory = directory
        self._entries: dict[int, list[AbortedTxn]] = {}
        self._torn: list[int] = []
        if segment_bases is None:
            return
        bases = set(segment_bases)
        for name in os.listdir(directory):
            stem = name[: -len(TXN_INDEX_SUFFIX)]
            if not name.endswith(TXN_INDEX_SUFFIX) or not stem.isdigit():
                continue
            path = os.path.join(directory, name)
            if int(stem) not in bases:  # its segment went (retention, recovery) before a crash
                os.unlink(path)
                continue
            entries, torn = read_txn_index(path)
            if torn:
                self._torn.append(int(stem))
                self._rewrite(int(stem), entries)
            if entries:
                self._entries[int(stem)] = entries

    @property
    def first_torn_base(self) -> int | None:
        """The first segment whose file was torn when loaded (its entries need rebuilding)."""
        return min(self._torn, default=None)

    def path(self, base_offset: int) -> str | None:
        """The file of a segment, if it has one (for a flush)."""
        return _path(self.directory, base_offset) if base_offset in self._entries else None

    def append(self, base_offset: int, aborted: AbortedTxn) -> None:
        with open(_path(self.directory, base_offset), "ab") as f:
            f.write(aborted.encode())
        self._entries.setdefault(base_offset, []).append(aborted)

    def collect(self, from_base: int, fetch_offset: int, upper_bound: int) -> list[AbortedTxn]:
        """The aborted transactions with records in [fetch_offset, upper_bound), looking from the
        segment at from_base on (a marker is never before its records): Kafka's rule, including
        its stop once an entry's last stable offset reaches the upper bound (no transaction
        aborted later began below it)."""
        found = []
        for base in sorted(self._entries):
            if base < from_base:
                continue
            for aborted in self._entries[base]:
                if aborted.last_offset >= fetch_offset and aborted.first_offset < upper_bound:
                    found.append(aborted)
                if aborted.last_stable_offset >= upper_bound:
                    return found
        return found

    def truncate_to(self, offset: int) -> None:
        """Drop the entries of markers at or after offset (a truncated log, or a replay from
        offset that writes them again)."""
        for base in sorted(self._entries):
            entries = self._entries[base]
            if entries[-1].last_offset < offset:
                continue
            kept = entries[: bisect_right([e.last_offset for e in entries], offset - 1)]
            self._rewrite(base, kept)
        self._torn.clear()

    def delete(self, base_offset: int) -> None:
        """The segment was deleted (retention): its file goes too."""
        if self._entries.pop(base_offset, None) is not None:
            os.unlink(_path(self.directory, base_offset))

    def clear(self) -> None:
        for base in list(self._entries):
            self.delete(base)

    def all_entries(self) -> list[AbortedTxn]:
        return [e for base in sorted(self._entries) for e in self._entries[base]]

    def _rewrite(self, base_offset: int, entries: list[AbortedTxn]) -> None:
        """Replace a segment's file by entries (none: no file), atomically."""
        path = _path(self.directory, base_offset)
        if not entries:
            self._entries.pop(base_offset, None)
            if os.path.exists(path):
                os.unlink(path)
            return
        with open(path + ".tmp", "wb") as f:
            f.write(b"".join(e.encode() for e in entries))
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        self._entries[base_offset] = list(entries)
