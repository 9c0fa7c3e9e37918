"""OffsetIndex: the sparse map from offset to file position of one segment (`.index` file).

Layout: 8-byte entries, big-endian: relative offset int32 (offset - segment base offset), then
physical position int32 in the segment's .log file. An entry is made for a batch once more than
index.interval.bytes have been appended since the previous entry; it maps the batch's LAST offset
to the batch's position, as Kafka's LogSegment does. Offsets and positions strictly increase.

Crash behaviour: the file may lack recent entries or be missing (entries reach it on flush and
close). Segments after the recovery point are rebuilt from the log after an unclean shutdown;
an index that fails its sanity check on open is rebuilt too.
"""

import sys
from array import array
from bisect import bisect_right

from engine.storage.index import AbstractIndex, IndexCorruptError

_INT_MAX = (1 << 31) - 1


class OffsetIndex(AbstractIndex):
    entry_size = 8

    def _clear(self) -> None:
        self._offsets = array("i")  # relative offsets
        self._positions = array("i")

    def _load(self, data: bytes) -> None:
        pairs = array("i", data)
        if sys.byteorder == "little":
            pairs.byteswap()
        self._offsets = pairs[0::2]
        self._positions = pairs[1::2]
        for i in range(1, len(self._offsets)):
            if (
                self._offsets[i] <= self._offsets[i - 1]
                or self._positions[i] <= self._positions[i - 1]
            ):
                raise IndexCorruptError(
                    f"{self.path}: entry {i} ({self.base_offset + self._offsets[i]}, "
                    f"{self._positions[i]}) does not follow the entry before it"
                )
        if self._offsets and self._offsets[0] < 0:
            raise IndexCorruptError(f"{self.path}: negative relative offset")

    @property
    def entries(self) -> int:
        return len(self._offsets)

    def _encode_from(self, start: int) -> bytes:
        pairs = array("i", bytes(8 * (len(self._offsets) - start)))
        pairs[0::2] = self._offsets[start:]
        pairs[1::2] = self._positions[start:]
        if sys.byteorder == "little":
            pairs.byteswap()
        return pairs.tobytes()

    def _truncate_entries(self, count: int) -> None:
        del self._offsets[count:]
        del self._positions[count:]

    def append(self, offset: int, position: int) -> None:
        relative = offset - self.base_offset
        if self._offsets and (relative <= self._offsets[-1] or position <= self._positions[-1]):
            raise ValueError(
                f"index entry ({offset}, {position}) does not follow the last entry "
                f"({self.base_offset + self._offsets[-1]}, {self._positions[-1]})"
            )
        if not (0 <= relative <= _INT_MAX and 0 <= position <= _INT_MAX):
            raise ValueError(f"index entry ({offset}, {position}) is out of int32 range")
        self._offsets.append(relative)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The last entry at or below offset as (offset, position); (base offset, 0) if none."""
        i = bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def floor_position(self, position: int) -> int:
        """The largest indexed batch position at or below position (0 if none): a batch start."""
        i = bisect_right(self._positions, position) - 1
        return self._positions[i] if i >= 0 else 0

    def entry(self, i: int) -> tuple[int, int]:
        return self.base_offset + self._offsets[i], self._positions[i]

    @property
    def last_entry(self) -> tuple[int, int]:
        return self.entry(self.entries - 1) if self._offsets else (self.base_offset, 0)

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for offsets at or beyond offset."""
        self.truncate_to_entries(bisect_right(self._offsets, offset - self.base_offset - 1))
