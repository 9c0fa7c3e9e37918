"""Records inside a v2 batch: decode for tools and consumers, encode for building batches.

Each record, after the batch header (or after decompressing the records section):

    length varint · attributes int8 · timestampDelta varlong · offsetDelta varint
    keyLength varint (-1 = null) · key · valueLength varint (-1 = null) · value
    headerCount varint · [headerKeyLength varint · headerKey utf-8 · valueLength varint · value]

Varints are zigzag-encoded base-128, as in protobuf. The broker's produce path never decodes
records; only tools, consumers and load generators do.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from engine.errors import CorruptRecordError
from engine.records.batch import (
    CONTROL_FLAG,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    MAGIC,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    TIMESTAMP_TYPE_FLAG,
    TRANSACTIONAL_FLAG,
    RecordBatch,
    TimestampType,
)
from engine.records.compression import CompressionType, compress, decompress

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class SimpleRecord:
    """A record to put in a batch: what a producer hands over (Kafka's SimpleRecord)."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back from a batch, with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    size_in_bytes: int


def read_varint(buffer: bytes | memoryview, position: int) -> tuple[int, int]:
    """Decode a zigzag varint at position; return (value, position after it)."""
    raw = 0
    shift = 0
    while True:
        try:
            byte = buffer[position]
        except IndexError:
            raise CorruptRecordError("record ends inside a varint") from None
        position += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), position
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes")


def write_varint(value: int, out: bytearray) -> None:
    """Append value as a zigzag varint (64-bit)."""
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def _read_bytes(buffer: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = read_varint(buffer, position)
    if length < 0:
        return None, position
    end = position + length
    if end > len(buffer):
        raise CorruptRecordError("record field runs past the end of the batch")
    return buffer[position:end], end


def decode_records(batch: RecordBatch) -> Iterator[Record]:
    """Yield the records of a batch (decompressing it first if needed)."""
    data = decompress(batch.compression, batch.records_view())
    position = 0
    for _ in range(batch.record_count):
        record_start = position
        length, position = read_varint(data, position)
        start = position
        end = start + length
        if length < 0 or end > len(data):
            raise CorruptRecordError(
                f"record of length {length} runs past the end of batch {batch.base_offset}"
            )
        position += 1  # record attributes: unused since Kafka 0.11
        timestamp_delta, position = read_varint(data, position)
        offset_delta, position = read_varint(data, position)
        key, position = _read_bytes(data, position)
        value, position = _read_bytes(data, position)
        header_count, position = read_varint(data, position)
        if header_count < 0:
            raise CorruptRecordError(f"record with {header_count} headers")
        headers = []
        for _ in range(header_count):
            header_key, position = _read_bytes(data, position)
            header_value, position = _read_bytes(data, position)
            if header_key is None:
                raise CorruptRecordError("record header with a null key")
            # Java's String(bytes, UTF_8) replaces malformed bytes rather than failing
            headers.append((header_key.decode("utf-8", "replace"), header_value))
        if position != end:
            raise CorruptRecordError(
                f"record at offset delta {offset_delta} has length {length} "
                f"but its fields span {position - start} bytes"
            )
        timestamp = (
            batch.max_timestamp
            if batch.timestamp_type == TimestampType.LOG_APPEND_TIME
            else batch.base_timestamp + timestamp_delta
        )
        yield Record(
            offset=batch.base_offset + offset_delta,
            timestamp=timestamp,
            key=key,
            value=value,
            headers=tuple(headers),
            size_in_bytes=end - record_start,
        )
    if position != len(data):
        raise CorruptRecordError(
            f"batch {batch.base_offset} declares {batch.record_count} records "
            f"but {len(data) - position} bytes follow them"
        )


def _write_bytes(value: bytes | None, out: bytearray) -> None:
    if value is None:
        write_varint(-1, out)
    else:
        write_varint(len(value), out)
        out += value


def _encode_record(
    offset_delta: int, timestamp_delta: int, record: SimpleRecord, out: bytearray
) -> None:
    body = bytearray(b"\x00")  # attributes
    write_varint(timestamp_delta, body)
    write_varint(offset_delta, body)
    _write_bytes(record.key, body)
    _write_bytes(record.value, body)
    write_varint(len(record.headers), body)
    for header_key, header_value in record.headers:
        _write_bytes(header_key.encode(), body)
        _write_bytes(header_value, body)
    write_varint(len(body), out)
    out += body


def build_batch(
    records: Iterable[SimpleRecord],
    *,
    compression: CompressionType = CompressionType.NONE,
    base_offset: int = 0,
    timestamp: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    timestamp_type: int = TimestampType.CREATE_TIME,
) -> bytearray:
    """Encode records as one v2 batch; `timestamp` stands in for records that carry none."""
    records = list(records)
    if not records:
        raise ValueError("a record batch holds at least one record")
    timestamps = [timestamp if r.timestamp is None else r.timestamp for r in records]
    base_timestamp = timestamps[0]
    body = bytearray()
    for offset_delta, (record, ts) in enumerate(zip(records, timestamps, strict=True)):
        _encode_record(offset_delta, ts - base_timestamp, record, body)
    payload = compress(compression, bytes(body))
    attributes = int(compression)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_FLAG
    if is_transactional:
        attributes |= TRANSACTIONAL_FLAG
    if is_control:
        attributes |= CONTROL_FLAG
    out = bytearray(HEADER_SIZE)
    out += payload
    HEADER_STRUCT.pack_into(
        out,
        0,
        base_offset,
        len(out) - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC,
        0,  # crc, filled below
        attributes,
        len(records) - 1,
        base_timestamp,
        max(timestamps),
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    RecordBatch(memoryview(out)).update_crc()
    return out
