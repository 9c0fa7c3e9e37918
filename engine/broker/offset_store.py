"""LogOffsetStore: committed consumer offsets kept in the `__consumer_offsets` partition log.

One record per committed partition, Kafka's layout (big-endian, strings as int16 length + UTF-8):
    key   version int16 (1) · group string · topic string · partition int32
    value version int16 (3) · offset int64 · leader epoch int32 · metadata string ·
          commit timestamp int64
Deleting offsets (OffsetDelete) appends a null value (a tombstone) for each of their keys;
deleting a group (DeleteGroups) one for each of its keys and one for its group metadata key
(version 2 · group string), as Kafka's cleanupGroupMetadata writes them. kbench keeps no group
metadata records (see group_coordinator.py), so replay skips keys of version 2 and above.
Replaying the log from its start rebuilds the latest commit per key, which is how a restart
restores offsets, and forgets what was deleted. The log's own recovery covers crashes: a commit
or a deletion is durable as far as its append is.
"""

import struct
from collections.abc import Iterable, Iterator

from engine.broker.group_coordinator import CommittedOffset
from engine.broker.partition import Partition
from engine.records import SimpleRecord, build_batch, decode_records, iter_batches
from engine.storage import FetchIsolation

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

    def store(self, group_id: str, offsets: list[CommittedOffset]) -> None:
        if not offsets:
            return
        records = [
            SimpleRecord(
                encode_value(o),
                key=encode_key(group_id, o.topic, o.partition),
                timestamp=o.commit_timestamp_ms,
            )
            for o in offsets
        ]
        self.partition.append_records_to_leader(build_batch(records), -1)
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
        for record in self._records():
            if _INT16.unpack_from(record.key)[0] >= _GROUP_KEY_VERSION:
                continue  # group metadata (a deleted group's tombstone)
            group_id, topic, partition = decode_key(record.key)
            if record.value is None:
                latest[group_id, topic, partition] = None
            else:
                latest[group_id, topic, partition] = decode_value(topic, partition, record.value)
        for (group_id, topic, partition), committed in latest.items():
            if committed is not None:
                self._keys.setdefault(group_id, set()).add((topic, partition))
                yield group_id, committed

    def _records(self) -> Iterator:
        log = self.partition.log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, _READ_BYTES, FetchIsolation.LOG_END).read()
            for batch in iter_batches(data):
                for record in decode_records(batch):
                    if record.key is not None:
                        yield record
                offset = batch.next_offset
