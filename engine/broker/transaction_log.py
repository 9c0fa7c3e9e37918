"""The transaction coordinator's log: `__transaction_state`, Kafka's TransactionLog records.

One record per state change of a transactional id, keyed by the id, so the compacted log keeps
each id's latest state (big-endian, strings int16 length + UTF-8):
    key   version int16 (0) · transactionalId string                     (TransactionLogKey v0)
    value version int16 (0) · producerId int64 · producerEpoch int16 · transactionTimeoutMs int32 ·
          transactionStatus int8 · transactionPartitions nullable array (int32 count) of
          (topic string, partitionIds int32 count + int32s) · transactionLastUpdateTimestampMs
          int64 · transactionStartTimestampMs int64                     (TransactionLogValue v0)
A null value (a tombstone) forgets an id (transactional.id.expiration.ms). transactionStatus is
Kafka's TransactionState id: Empty 0, Ongoing 1, PrepareCommit 2, PrepareAbort 3,
CompleteCommit 4, CompleteAbort 5, Dead 6, PrepareEpochFence 7.

Replaying the log from its start gives every id's latest state: how a new coordinator (a restart,
or another broker leading the partition) recovers, then finishes the transactions it finds in
PrepareCommit or PrepareAbort. A state change counts once its append is on the partition's ISR
(acks=all), and the log's own recovery covers crashes.

Not thread-safe: the event loop's thread alone uses it.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from engine.broker.partition import Partition
from engine.common import TopicPartition
from engine.records import SimpleRecord, build_batch, decode_records, iter_batches
from engine.storage import FetchIsolation

TRANSACTION_STATE = "__transaction_state"
# as Kafka creates it, transaction.state.log.segment.bytes' default (Kafka compacts it too;
# kbench has no log cleaner, so every state change stays until retention)
TRANSACTION_STATE_CONFIGS = {"segment.bytes": str(100 << 20)}

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_VALUE_HEAD = struct.Struct(">hqhib")  # version, producer id, epoch, timeout, status
_VALUE_TAIL = struct.Struct(">qq")  # last update, start
_READ_BYTES = 1 << 20


class TransactionState(IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display_name(self) -> str:
        """As DescribeTransactions/ListTransactions name it (Kafka's TransactionState.stateName)."""
        return "".join(word.capitalize() for word in self.name.split("_"))


@dataclass
class TransactionMetadata:
    """One transactional id's state, as the log records it."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TransactionState = TransactionState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    last_update_ms: int = -1
    start_ms: int = -1


def _string(value: str) -> bytes:
    data = value.encode()
    return _INT16.pack(len(data)) + data


def _read_string(data: bytes, position: int) -> tuple[str, int]:
    (length,) = _INT16.unpack_from(data, position)
    position += 2
    return data[position : position + length].decode(), position + length


def encode_key(transactional_id: str) -> bytes:
    return _INT16.pack(0) + _string(transactional_id)


def decode_key(data: bytes) -> str:
    return _read_string(data, 2)[0]


def encode_value(m: TransactionMetadata) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(m.partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    out = bytearray(
        _VALUE_HEAD.pack(0, m.producer_id, m.producer_epoch, m.timeout_ms, int(m.state))
    )
    out += _INT32.pack(len(by_topic))
    for topic, indexes in by_topic.items():
        out += _string(topic) + _INT32.pack(len(indexes))
        out += b"".join(_INT32.pack(i) for i in indexes)
    out += _VALUE_TAIL.pack(m.last_update_ms, m.start_ms)
    return bytes(out)


def decode_value(transactional_id: str, data: bytes) -> TransactionMetadata:
    """A v0 value (v1 is read the same up to its tagged fields, which are skipped)."""
    version, producer_id, epoch, timeout_ms, status = _VALUE_HEAD.unpack_from(data)
    if version != 0:  # v1 (flexible: compact arrays and strings) is Kafka 4's transactions v2
        raise ValueError(f"TransactionLogValue v{version}: kbench writes and reads v0")
    position = _VALUE_HEAD.size
    partitions = set()
    (count,) = _INT32.unpack_from(data, position)
    position += 4
    for _ in range(max(count, 0)):
        topic, position = _read_string(data, position)
        (n,) = _INT32.unpack_from(data, position)
        position += 4
        for index in struct.unpack_from(f">{n}i", data, position):
            partitions.add(TopicPartition(topic, index))
        position += 4 * n
    last_update, start = _VALUE_TAIL.unpack_from(data, position)
    return TransactionMetadata(
        transactional_id,
        producer_id,
        epoch,
        timeout_ms,
        TransactionState(status),
        partitions,
        last_update,
        start,
    )


class TransactionLog:
    """The coordinator's state changes in one `__transaction_state` partition it leads."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition

    def append(self, metadata: TransactionMetadata, now_ms: int) -> int:
        """Append a state change; the offset after it (the coordinator waits for the ISR to
        reach it). Raises KafkaError when the partition refuses it."""
        record = SimpleRecord(
            encode_value(metadata), key=encode_key(metadata.transactional_id), timestamp=now_ms
        )
        info = self.partition.append_records_to_leader(build_batch([record]), -1, now_ms)
        return info.last_offset + 1

    def load(self) -> dict[str, TransactionMetadata]:
        """Every id's latest state, from the log's start."""
        latest: dict[str, TransactionMetadata | None] = {}
        for key, value in self._records():
            transactional_id = decode_key(key)
            latest[transactional_id] = (
                None if value is None else decode_value(transactional_id, value)
            )
        return {k: v for k, v in latest.items() if v is not None}

    def _records(self) -> Iterator[tuple[bytes, bytes | None]]:
        log = self.partition.log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = log.read(offset, _READ_BYTES, FetchIsolation.LOG_END).read()
            for batch in iter_batches(data):
                if not batch.is_control:
                    for record in decode_records(batch):
                        if record.key is not None:
                            yield record.key, record.value
                offset = batch.next_offset
