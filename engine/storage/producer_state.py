"""ProducerStateManager: per-partition state of idempotent and transactional producers, and its
snapshot files.

For every producer id the log remembers its epoch and its last few batches (first and last
sequence, last offset), so a retried batch is answered with its original offset instead of being
appended twice, and a gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER).

Transactions (KIP-98): a producer's first transactional batch opens its ongoing transaction at
that batch's offset; a control batch (a COMMIT or ABORT marker, written by the transaction
coordinator with WriteTxnMarkers) completes it. The first offset of the earliest transaction not
yet complete, or complete but whose marker is not yet under the high watermark, bounds the last
stable offset (LSO): read_committed consumers read below it only. A marker's epoch may not be
older than the producer's (INVALID_PRODUCER_EPOCH), nor its coordinator epoch older than the
last marker's (a fenced coordinator); a newer epoch is the producer's from then on (a fenced
zombie's later batches are refused).

Snapshot file `<20-digit offset>.snapshot` in the partition directory, Kafka's version-1 layout,
big-endian: version int16 (1), crc uint32 (CRC-32C of everything after it), entry count int32,
then per producer: producerId int64, producerEpoch int16, lastSequence int32, lastOffset int64,
offsetDelta int32 (lastOffset - firstOffset of its last batch), timestamp int64,
coordinatorEpoch int32, currentTxnFirstOffset int64 (-1: no ongoing transaction). A producer
known only from a marker has lastSequence -1 and lastOffset -1.
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
from kafka.errors import TransactionCoordinatorFencedError

from engine.errors import InvalidProducerEpochError, KafkaError, OutOfOrderSequenceError
from engine.records.batch import RecordBatch
from engine.records.record import decode_records
from engine.records.validator import CONTROL_TYPE_ABORT, control_record_problem

SNAPSHOT_SUFFIX = ".snapshot"
_VERSION = 1
_HEADER = struct.Struct(">hIi")  # version, crc, entry count
_ENTRY = struct.Struct(">qhiqiqiq")
_BATCHES_KEPT = 5  # Kafka's NUM_BATCHES_TO_RETAIN: at most 5 requests in flight per producer
_SEQUENCE_LIMIT = 1 << 31


class CoordinatorFencedError(KafkaError):
    error_code = TransactionCoordinatorFencedError.errno


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction a marker ended: its records span [first_offset, last_offset], the marker
    being last_offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


@dataclass(frozen=True, slots=True)
class EndTxnMarker:
    """A control batch's record: ABORT or COMMIT, and the coordinator epoch that wrote it."""

    is_abort: bool
    coordinator_epoch: int


def read_marker(batch: RecordBatch) -> EndTxnMarker | None:
    """The transaction marker a control batch holds, or None when it holds none."""
    for record in decode_records(batch):
        if control_record_problem(record.key, record.value) is not None:
            return None
        assert record.key is not None and record.value is not None  # checked just above
        control_type = struct.unpack_from(">h", record.key, 2)[0]
        (coordinator_epoch,) = struct.unpack_from(">i", record.value, 2)
        return EndTxnMarker(control_type == CONTROL_TYPE_ABORT, coordinator_epoch)
    return None


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


_NO_BATCH = BatchMetadata(-1, -1, -1, 0, -1)  # a snapshot's entry of a producer seen by a marker


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=_BATCHES_KEPT))
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1  # -1: no ongoing transaction

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
        self.ongoing_txns: dict[int, int] = {}  # producer id -> first offset of its transaction
        # transactions complete, until the high watermark passes their markers
        self._unreplicated_txns: list[CompletedTxn] = []
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
        entry = self._entry(producer_id, epoch)
        entry.batches.append(
            BatchMetadata(first_sequence, last_sequence, last_offset, offset_delta, timestamp)
        )

    def _entry(self, producer_id: int, epoch: int) -> ProducerStateEntry:
        """The producer's entry in epoch: a new epoch starts its sequences again (an ongoing
        transaction stays until its marker)."""
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.producer_epoch:
            new = ProducerStateEntry(producer_id, epoch)
            if entry is not None:
                new.coordinator_epoch = entry.coordinator_epoch
                new.current_txn_first_offset = entry.current_txn_first_offset
            entry = self.producers[producer_id] = new
        return entry

    # -- transactions ---------------------------------------------------------------------------
    def check_marker(self, producer_id: int, epoch: int, marker: EndTxnMarker | None) -> None:
        """Kafka's appendEndTxnMarker checks: the producer's epoch and the coordinator's."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if epoch < entry.producer_epoch:
            raise InvalidProducerEpochError(
                f"marker of producer {producer_id} in epoch {epoch}, older than "
                f"{entry.producer_epoch}"
            )
        # -1: an admin's abort (Admin.abortTransaction), which no coordinator wrote
        if marker is not None and 0 <= marker.coordinator_epoch < entry.coordinator_epoch:
            raise CoordinatorFencedError(
                f"marker of producer {producer_id} from coordinator epoch "
                f"{marker.coordinator_epoch}, older than {entry.coordinator_epoch}"
            )

    def update_batch(self, batch: RecordBatch) -> CompletedTxn | None:
        """Record an appended batch of a producer (offsets assigned); a marker returns the
        transaction it completed (None if that producer had none ongoing here)."""
        producer_id = batch.producer_id
        if batch.is_control:
            marker = read_marker(batch)
            entry = self._entry(producer_id, batch.producer_epoch)
            if marker is None:
                return None
            if marker.coordinator_epoch >= 0:  # not an admin's abort
                entry.coordinator_epoch = marker.coordinator_epoch
            first = entry.current_txn_first_offset
            entry.current_txn_first_offset = -1
            self.ongoing_txns.pop(producer_id, None)
            if first < 0:
                return None
            return CompletedTxn(producer_id, first, batch.base_offset, marker.is_abort)
        self.update(
            producer_id,
            batch.producer_epoch,
            batch.base_sequence,
            batch.last_sequence,
            batch.last_offset,
            batch.last_offset - batch.base_offset,
            batch.max_timestamp,
        )
        if batch.is_transactional:
            entry = self.producers[producer_id]
            if entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = batch.base_offset
                self.ongoing_txns[producer_id] = batch.base_offset
        return None

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The LSO once completed is done (the aborted transactions index records it): the
        first offset of the earliest other ongoing transaction, else past the marker."""
        others = (o for p, o in self.ongoing_txns.items() if p != completed.producer_id)
        return min(others, default=completed.last_offset + 1)

    def complete_txn(self, completed: CompletedTxn, high_watermark: int) -> None:
        """A marker was appended: its transaction holds the LSO back until replicated."""
        if completed.last_offset >= high_watermark:
            self._unreplicated_txns.append(completed)

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """The first offset of the earliest transaction not stable under high_watermark, or
        None (then the high watermark is the LSO)."""
        if self._unreplicated_txns:
            self._unreplicated_txns = [
                t for t in self._unreplicated_txns if t.last_offset >= high_watermark
            ]
        first = min(self.ongoing_txns.values(), default=None)
        for txn in self._unreplicated_txns:
            if first is None or txn.first_offset < first:
                first = txn.first_offset
        return first

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
                e.coordinator_epoch,
                e.current_txn_first_offset,
            )
            for e in self.producers.values()
            for last in (e.batches[-1] if e.batches else _NO_BATCH,)
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
        self._clear()
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
            for producer_id, epoch, last_seq, last_offset, delta, timestamp, coord, txn in entries:
                entry = self._entry(producer_id, epoch)
                if last_offset >= 0:
                    first_seq = max(last_seq - delta, 0)
                    self.update(
                        producer_id, epoch, first_seq, last_seq, last_offset, delta, timestamp
                    )
                entry.coordinator_epoch, entry.current_txn_first_offset = coord, txn
                if txn >= 0:
                    self.ongoing_txns[producer_id] = txn
            self.map_end_offset = self._last_snapshot_offset = offset
            return

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """The log was emptied to start again at offset: no producer and no snapshot stays."""
        for old in self.snapshot_offsets():
            os.unlink(self._snapshot_path(old))
        self._clear()
        self.map_end_offset = offset
        self._last_snapshot_offset = None

    def _clear(self) -> None:
        self.producers.clear()
        self.ongoing_txns.clear()
        self._unreplicated_txns.clear()

    def delete_snapshots_below(self, offset: int) -> None:
        """Retention: snapshots below the log start describe deleted segments (keep the newest)."""
        offsets = self.snapshot_offsets()
        for old in offsets[:-1]:
            if old < offset:
                os.unlink(self._snapshot_path(old))


def _read_snapshot(
    path: str,
) -> Iterable[tuple[int, int, int, int, int, int, int, int]] | None:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _HEADER.size:
        return None
    version, crc, count = _HEADER.unpack_from(data)
    body = memoryview(data)[6:]
    if version != _VERSION or crc32c(body) != crc or len(body) != 4 + count * _ENTRY.size:
        return None
    return list(_ENTRY.iter_unpack(body[4:]))
