"""TimeIndex: the sparse map from timestamp to offset of one segment (`.timeindex` file).

Layout: 12-byte entries, big-endian: timestamp int64 (the largest timestamp seen so far in the
segment), then relative offset int32 of the batch that carried it. An entry is added with each
offset index entry when the segment's largest timestamp has grown, and once more when the segment
is closed or rolled, so its last entry is the segment's largest timestamp. Timestamps strictly
increase, offsets never decrease.

Crash behaviour: as the offset index: it may lack recent entries or be missing, and is rebuilt
from the log for segments after the recovery point or when it fails its sanity check on open.
"""

import struct
from array import array
from bisect import bisect_right

from engine.storage.index import AbstractIndex, IndexCorruptError

_ENTRY = struct.Struct(">qi")
NO_TIMESTAMP = -1


class TimeIndex(AbstractIndex):
    entry_size = 12

    def _clear(self) -> None:
        self._timestamps = array("q")
        self._offsets = array("i")  # relative offsets

    def _load(self, data: bytes) -> None:
        for timestamp, relative in _ENTRY.iter_unpack(data):
            if self._timestamps and (
                timestamp <= self._timestamps[-1] or relative < self._offsets[-1]
            ):
                raise IndexCorruptError(
                    f"{self.path}: entry ({timestamp}, {self.base_offset + relative}) does not "
                    f"follow the entry before it"
                )
            if relative < 0:
                raise IndexCorruptError(f"{self.path}: negative relative offset")
            self._timestamps.append(timestamp)
            self._offsets.append(relative)

    @property
    def entries(self) -> int:
        return len(self._timestamps)

    def _encode_from(self, start: int) -> bytes:
        return b"".join(
            _ENTRY.pack(self._timestamps[i], self._offsets[i]) for i in range(start, self.entries)
        )

    def _truncate_entries(self, count: int) -> None:
        del self._timestamps[count:]
        del self._offsets[count:]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add (timestamp, offset) if timestamp is larger than the last entry's."""
        last = self._timestamps[-1] if self._timestamps else NO_TIMESTAMP
        if timestamp <= last:  # an empty index acts as if it held (NO_TIMESTAMP, base), as Kafka
            return
        relative = self._relative(offset)
        if self._offsets and relative < self._offsets[-1]:
            raise ValueError(f"time index offset {offset} goes backwards")
        self._timestamps.append(timestamp)
        self._offsets.append(relative)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The last entry with timestamp at or below the target as (timestamp, offset).

        (NO_TIMESTAMP, base offset) when every entry is later, or there is none.
        """
        i = bisect_right(self._timestamps, timestamp) - 1
        if i < 0:
            return NO_TIMESTAMP, self.base_offset
        return self._timestamps[i], self.base_offset + self._offsets[i]

    def entry(self, i: int) -> tuple[int, int]:
        return self._timestamps[i], self.base_offset + self._offsets[i]

    @property
    def last_entry(self) -> tuple[int, int]:
        return (
            self.entry(self.entries - 1) if self._timestamps else (NO_TIMESTAMP, self.base_offset)
        )

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries whose offset is at or beyond offset."""
        self.truncate_to_entries(bisect_right(self._offsets, offset - self.base_offset - 1))
