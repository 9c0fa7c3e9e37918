"""LogOffsetStore: committed consumer offsets kept in the `__consumer_offsets` partition log.

One record per committed partition, Kafka's layout (big-endian, strings as int16 length + UTF-8):
    key   version int16 (1) · group string · topic string · partition int32
    value version int16 (3) · offset int64 · leader epoch int32 · metadata string ·
          commit timestamp int64
Deleting offsets (OffsetDelete) appends a null value (a tombstone) for each of their keys;
deleting a group (DeleteGroups) one for each of its keys and one for its group metadata key
(version 2 · group string), as Kafka's cleanupGroupMetadata writes them. kbench keeps no group
metadata records (see group_coordinator.py), so replay skips keys of version 2 and above.
A transaction's commits (TxnOffsetCommit, KIP-98) are the same records in a transactional batch
of its producer, which count once that producer's COMMIT marker follows them in this log and
never after an ABORT (engine/broker/transaction_apis.py writes both).
Replaying the log from its start rebuilds the latest commit per key, which is how a restart
restores offsets, and forgets what was deleted; a transaction's commits with no marker yet come
back pending (pending_txn_offsets). The log's own recovery covers crashes: a commit
or a deletion is durable as far as its append is.
"""

import struct
from collections.abc import Iterable, Iterator

from engine.broker.group_coordinator import CommittedOffset
from engine.broker.partition import Partition
from engine.records import SimpleRecord, build_batch, decode_records, iter_batches
from engine.records.batch import RecordBatch
from engine.storage import FetchIsolation
from engine.storage.producer_state import read_marker

# the topic's settings, as Kafka creates it: offsets.topic.segment.bytes' default
OFFSETS_TOPIC_CONFIGS = {"segment.bytes": str(100 << 20)}
_KEY_VERSION = 1
_GROUP_KEY_VERSION = 2  # a group metadata record's key
_VALUE_VERSION = 3
_INT16 = struct.Struct(">h")
_KEY_TAIL = struct.Struct(">i")
_VALUE_HEAD = struct.Struct(">hqi")
_VALUE_TAIL = struct.Struct(">q")
_READ_BYTES = 1 << 20
_KeyValue = tuple[bytes, bytes | None]


def _string(value: str | None) -> bytes:
    if value is None:
        return _INT16.pack(-1)
    data = value.encode()
    return _INT16.pack(len(data)) + data


def _read_string(data: bytes, position: int) -> tuple[str | None, int]:
    (length,) = _INT16.unpack_from(data, position)
    position += 2
    if length < 0:
        return None, position
    return data[position : position + length].decode(), position + length


def encode_key(group_id: str, topic: str, partition: int) -> bytes:
    return (
        _INT16.pack(_KEY_VERSION) + _string(group_id) + _string(topic) + _KEY_TAIL.pack(partition)
    )


def encode_group_key(group_id: str) -> bytes:
    return _INT16.pack(_GROUP_KEY_VERSION) + _string(group_id)


def decode_key(data: bytes) -> tuple[str, str, int]:
    group_id, position = _read_string(data, 2)
    topic, position = _read_string(data, position)
    (partition,) = _KEY_TAIL.unpack_from(data, position)
    return group_id or "", topic or "", partition


def encode_value(offset: CommittedOffset) -> bytes:
    return (
        _VALUE_HEAD.pack(_VALUE_VERSION, offset.offset, offset.leader_epoch)
        + _string(offset.metadata)
        + _VALUE_TAIL.pack(offset.commit_timestamp_ms)
    )


def decode_value(topic: str, partition: int, data: bytes) -> CommittedOffset:
    _, committed, leader_epoch = _VALUE_HEAD.unpack_from(data)
    metadata, position = _read_string(data, _VALUE_HEAD.size)
    (timestamp,) = _VALUE_TAIL.unpack_from(data, position)
    return CommittedOffset(topic, partition, committed, leader_epoch, metadata, timestamp)


class LogOffsetStore:
    """Committed offsets kept in the __consumer_offsets log. Not thread-safe: the event loop's
    thread alone uses it."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self._keys: dict[str, set[tuple[str, int]]] = {}  # group -> committed partitions
        # after load(): producer id -> group -> commits of a transaction with no marker yet
        self.pending_txn_offsets: dict[int, dict[str, list[CommittedOffset]]] = {}

    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        if not offsets:
            return
        self.partition.append_records_to_leader(build_batch(commit_records(group_id, offsets)), -1)
        self._keys.setdefault(group_id, set()).update((o.topic, o.partition) for o in offsets)

    def delete_group(self, group_id: str) -> None:
        keys = sorted(self._keys.get(group_id, ()))
        self._append_tombstones(
            [*(encode_key(group_id, t, p) for t, p in keys), encode_group_key(group_id)]
        )
        self._keys.pop(group_id, None)

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> None:
        committed = self._keys.get(group_id, set())
        deleted = sorted(committed.intersection(partitions))
        if deleted:
            self._append_tombstones([encode_key(group_id, t, p) for t, p in deleted])
            committed.difference_update(deleted)

    def _append_tombstones(self, keys: list[bytes]) -> None:
        tombstones = [SimpleRecord(None, key=key) for key in keys]
        self.partition.append_records_to_leader(build_batch(tombstones), -1)

    def load(self) -> Iterable[tuple[str, CommittedOffset]]:
        latest: dict[tuple[str, str, int], CommittedOffset | None] = {}
        pending: dict[int, list[_KeyValue]] = {}  # producer id -> its open transaction's
        for batch, records in self._batches():
            if batch.is_control:  # a transaction's end: its commits count, or go
                held = pending.pop(batch.producer_id, [])
                marker = read_marker(batch)
                records = held if marker is not None and not marker.is_abort else []
            elif batch.is_transactional:
                pending.setdefault(batch.producer_id, []).extend(records)
                continue
            for record in records:
                self._replay(record, latest)
        self.pending_txn_offsets = {}
        for producer_id, held in pending.items():
            for key, value in held:
                group_id, topic, partition = decode_key(key)
                if value is not None:
                    self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(
                        group_id, []
                    ).append(decode_value(topic, partition, value))
        for (group_id, topic, partition), committed in latest.items():
            if committed is not None:
                self._keys.setdefault(group_id, set()).add((topic, partition))
                yield group_id, committed

    @staticmethod
    def _replay(
        record: _KeyValue, latest: dict[tuple[str, str, int], CommittedOffset | None]
    ) -> None:
        key, value = record
        if _INT16.unpack_from(key)[0] >= _GROUP_KEY_VERSION:
            return  # group metadata (a deleted group's tombstone)
        group_id, topic, partition = decode_key(key)
        if value is None:
            latest[group_id, topic, partition] = None
        else:
            latest[group_id, topic, partition] = decode_value(topic, partition, value)

    def _batches(self) -> Iterator[tuple[RecordBatch, list[_KeyValue]]]:
        log = self.partition.log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, _READ_BYTES, FetchIsolation.LOG_END).read()
            for batch in iter_batches(data):
                yield batch, [(r.key, r.value) for r in decode_records(batch) if r.key is not None]
                offset = batch.next_offset


def commit_records(group_id: str, offsets: list[CommittedOffset]) -> list[SimpleRecord]:
    """One record per committed partition (a commit, or a transaction's)."""
    return [
        SimpleRecord(
            encode_value(o),
            key=encode_key(group_id, o.topic, o.partition),
            timestamp=o.commit_timestamp_ms,
        )
        for o in offsets
    ]
