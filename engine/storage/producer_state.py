"""ProducerStateManager: per-partition state of idempotent producers, and its snapshot files.

For every producer id the log remembers its epoch and its last few batches (first and last
sequence, last offset), so a retried batch is answered with its original offset instead of being
appended twice, and a gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER).

Snapshot file `<20-digit offset>.snapshot` in the partition directory, Kafka's version-1 layout,
big-endian: version int16 (1), crc uint32 (CRC-32C of everything after it), entry count int32,
then per producer: producerId int64, producerEpoch int16, lastSequence int32, lastOffset int64,
offsetDelta int32 (lastOffset - firstOffset of its last batch), timestamp int64,
coordinatorEpoch int32, currentTxnFirstOffset int64 (-1).
The state holds every batch below the offset in the file name.

A snapshot is written only when the state has moved past the newest one (as Kafka's
takeSnapshot), so closing a partition nobody wrote to writes nothing.

Crash behaviour: snapshots are written to a .tmp file, fsynced and renamed, so a reader sees a
whole one or none; a roll's snapshot is fsynced after the rename, in the background, as Kafka
does, so a crash can leave it torn. A snapshot whose CRC fails is deleted and the state rebuilt
from the log (from an older snapshot, or from the log start).
"""

import os
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from crc32c import crc32c

from engine.errors import InvalidProducerEpochError, OutOfOrderSequenceError

SNAPSHOT_SUFFIX = ".snapshot"
_VERSION = 1
_HEADER = struct.Struct(">hIi")  # version, crc, entry count
_ENTRY = struct.Struct(">qhiqiqiq")
_BATCHES_KEPT = 5  # Kafka's NUM_BATCHES_TO_RETAIN: at most 5 requests in flight per producer
_SEQUENCE_LIMIT = 1 << 31


@dataclass(slots=True)
class BatchMetadata:
    first_sequence: int
    last_sequence: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=_BATCHES_KEPT))

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else -1

    def find_duplicate(self, first_sequence: int, last_sequence: int) -> BatchMetadata | None:
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None


class ProducerStateManager:
    """One partition's idempotent-producer state and snapshots. Not thread-safe: the event loop's
    thread alone uses it."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerStateEntry] = {}
        self.map_end_offset = 0  # every batch below this offset is reflected in the state
        self._last_snapshot_offset: int | None = None  # None: not known to be on disk

    # -- the produce path ---------------------------------------------------------------------
    def check(
        self, producer_id: int, epoch: int, first_sequence: int, last_sequence: int
    ) -> BatchMetadata | None:
        """Validate a batch against the producer's state; return the original if it is a retry.

        Raises InvalidProducerEpochError for a fenced epoch and OutOfOrderSequenceError for a gap,
        as Kafka's ProducerAppendInfo.checkSequence does.
        """
        entry = self.producers.get(producer_id)
        if entry is None:
            return None  # a producer this log has not seen (or whose state expired): accept
        if epoch < entry.producer_epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id} epoch {epoch} is older than {entry.producer_epoch}"
            )
        if epoch > entry.producer_epoch:
            if first_sequence != 0:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} new epoch {epoch} starts at sequence "
                    f"{first_sequence}, expected 0"
                )
            return None
        duplicate = entry.find_duplicate(first_sequence, last_sequence)
        if duplicate is not None:
            return duplicate
        expected = (entry.last_sequence + 1) % _SEQUENCE_LIMIT
        if entry.batches and first_sequence != expected:
            raise OutOfOrderSequenceError(
                f"producer {producer_id} epoch {epoch}: sequence {first_sequence}, "
                f"expected {expected}"
            )
        return None

    def update(
        self,
        producer_id: int,
        epoch: int,
        first_sequence: int,
        last_sequence: int,
        last_offset: int,
        offset_delta: int,
        timestamp: int,
    ) -> None:
        """Record an appended batch (offsets assigned)."""
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.producer_epoch:
            entry = self.producers[producer_id] = ProducerStateEntry(producer_id, epoch)
        entry.batches.append(
            BatchMetadata(first_sequence, last_sequence, last_offset, offset_delta, timestamp)
        )

    # -- snapshots ----------------------------------------------------------------------------
    def snapshot_offsets(self) -> list[int]:
        return sorted(
            int(name[: -len(SNAPSHOT_SUFFIX)])
            for name in os.listdir(self.directory)
            if name.endswith(SNAPSHOT_SUFFIX) and name[: -len(SNAPSHOT_SUFFIX)].isdigit()
        )

    def _snapshot_path(self, offset: int) -> str:
        return os.path.join(self.directory, f"{offset:020d}{SNAPSHOT_SUFFIX}")

    def take_snapshot(self, sync: bool = True) -> str | None:
        """Write the state as of map_end_offset (atomically replaced; fsynced unless sync is
        False, when the caller fsyncs the returned path later, as Kafka's roll does), unless the
        newest snapshot already holds it, or there is nothing to hold (no producer, offset 0).
        Returns the snapshot's path, or None when nothing was written."""
        if self.map_end_offset == self._last_snapshot_offset or (
            self.map_end_offset == 0 and not self.producers
        ):
            return None
        entries = b"".join(
            _ENTRY.pack(
                e.producer_id,
                e.producer_epoch,
                last.last_sequence,
                last.last_offset,
                last.offset_delta,
                last.timestamp,
                -1,
                -1,
            )
            for e in self.producers.values()
            if e.batches
            for last in (e.batches[-1],)
        )
        body = struct.pack(">i", len(entries) // _ENTRY.size) + entries
        data = struct.pack(">hI", _VERSION, crc32c(body)) + body
        path = self._snapshot_path(self.map_end_offset)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        self._last_snapshot_offset = self.map_end_offset
        return path

    def load_latest_snapshot(self, max_offset: int) -> None:
        """Load the newest readable snapshot at or below max_offset; drop newer ones (they
        describe offsets the log no longer has) and corrupt ones."""
        self.producers.clear()
        self.map_end_offset = 0
        self._last_snapshot_offset = None
        for offset in reversed(self.snapshot_offsets()):
            path = self._snapshot_path(offset)
            if offset > max_offset:
                os.unlink(path)
                continue
            entries = _read_snapshot(path)
            if entries is None:
                os.unlink(path)
                continue
            for producer_id, epoch, last_seq, last_offset, delta, timestamp in entries:
                first_seq = max(last_seq - delta, 0)
                self.update(producer_id, epoch, first_seq, last_seq, last_offset, delta, timestamp)
            self.map_end_offset = self._last_snapshot_offset = offset
            return

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """The log was emptied to start again at offset: no producer and no snapshot stays."""
        for old in self.snapshot_offsets():
            os.unlink(self._snapshot_path(old))
        self.producers.clear()
        self.map_end_offset = offset
        self._last_snapshot_offset = None

    def delete_snapshots_below(self, offset: int) -> None:
        """Retention: snapshots below the log start describe deleted segments (keep the newest)."""
        offsets = self.snapshot_offsets()
        for old in offsets[:-1]:
            if old < offset:
                os.unlink(self._snapshot_path(old))


def _read_snapshot(path: str) -> Iterable[tuple[int, int, int, int, int, int]] | None:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _HEADER.size:
        return None
    version, crc, count = _HEADER.unpack_from(data)
    body = memoryview(data)[6:]
    if version != _VERSION or crc32c(body) != crc or len(body) != 4 + count * _ENTRY.size:
        return None
    return [entry[:6] for entry in _ENTRY.iter_unpack(body[4:])]
