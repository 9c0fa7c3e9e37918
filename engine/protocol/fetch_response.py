"""FetchResponse v4-v17 framed around records the caller writes itself, for os.sendfile.

A schema-driven codec needs the records as bytes to write their length; here they stay slices of
a file. The frame comes back as parts: `bytes` for everything FetchResponse.json puts around the
records, and the records items untouched, each one written by the server (sendfile or read+send).

Layout, big-endian, as in Kafka's FetchResponse.json; [vN+] marks the version a field starts in.
Flexible versions (v12) write array, string and records lengths as an unsigned varint of
length + 1 (0 for null) instead of int32 (int16 for strings), and end every struct marked "tags"
with an empty tagged-field section, an unsigned varint count 0:

    size int32                          bytes after this field, records included
    correlation_id int32, tags [v12]    response header v0; v1 in v12
    throttle_time_ms int32
    error_code int16 [v7+]
    session_id int32 [v7+]
    responses array of
        topic string [v4-v12], topic_id uuid [v13+] (16 bytes)
        partitions array of
            partition_index int32, error_code int16, high_watermark int64
            last_stable_offset int64
            log_start_offset int64 [v5+]
            aborted_transactions nullable array of (producer_id int64, first_offset int64, tags)
            preferred_read_replica int32 [v11+]
            records length, never null, then the records items' bytes
            tags                        diverging_epoch, current_leader, snapshot_id: never sent
        tags
    tags                                node_endpoints [v16+]: never sent

v13-v17 differ from v12 only in naming topics by id (and in tagged fields). An incremental
fetch's response (a fetch session, engine/broker/fetch_session.py) is the same frame carrying
fewer partitions: the caller passes only those that changed.
"""

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MIN_VERSION = 4  # the baseline since Kafka 4.0; record batch v2 needs Fetch v4+
MAX_VERSION = 17  # Kafka 4.0's
FIRST_FLEXIBLE_VERSION = 12
FIRST_TOPIC_ID_VERSION = 13

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_THROTTLE_ERROR_SESSION = struct.Struct(">ihi")  # v7+: throttle_time_ms, error_code, session_id
_PARTITION_HEADER = struct.Struct(">ihqq")  # index, error_code, high watermark, last stable offset
_ABORTED_TRANSACTION = struct.Struct(">qq")  # producer_id, first_offset
_NO_TAGGED_FIELDS = 0  # one byte: the unsigned varint count of an empty tagged-field section


class RecordsSlice(Protocol):
    """Whole record batches the caller writes itself, e.g. engine.storage.FileSlice."""

    @property
    def length(self) -> int: ...


@dataclass(slots=True)
class FetchPartitionResponse:
    """One partition's PartitionData; `records` are written in order, none of them is read."""

    partition_index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: Sequence[RecordsSlice]  # empty: zero-length records
    aborted_transactions: list[tuple[int, int]] | None = None  # (producer_id, first_offset)
    preferred_read_replica: int = -1


@dataclass(slots=True)
class FetchTopicResponse:
    """One topic's FetchableTopicResponse: named by `topic` up to v12, by `topic_id` from v13."""

    topic: str
    partitions: list[FetchPartitionResponse]
    topic_id: uuid.UUID | None = None


def encode_fetch_response(
    version: int,
    correlation_id: int,
    throttle_time_ms: int,
    error_code: int,
    session_id: int,
    topics: list[FetchTopicResponse],
) -> list[bytes | RecordsSlice]:
    """The whole response frame as parts in order: `bytes` and the records items, untouched.

    The int32 size prefix counts every byte after it, the records items' lengths included. Bytes
    are joined between records items, so each partition with records adds at most one part.
    """
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"FetchResponse v{version} is outside v{MIN_VERSION}-v{MAX_VERSION}")
    flexible = version >= FIRST_FLEXIBLE_VERSION
    by_id = version >= FIRST_TOPIC_ID_VERSION
    parts: list[bytes | bytearray | RecordsSlice] = []
    frame_size = -_INT32.size  # the size prefix does not count itself
    out = bytearray(_INT32.size)  # the size prefix, packed once the frame is complete
    first = out  # parts[0], once the frame is complete
    out += _INT32.pack(correlation_id)
    if flexible:
        out.append(_NO_TAGGED_FIELDS)
    if version >= 7:
        out += _THROTTLE_ERROR_SESSION.pack(throttle_time_ms, error_code, session_id)
    else:
        out += _INT32.pack(throttle_time_ms)
    _write_length(out, len(topics), flexible)
    for topic in topics:
        if by_id:
            if topic.topic_id is None:
                raise ValueError(f"FetchResponse v{version} names topics by id: {topic.topic!r}")
            out += topic.topic_id.bytes
        else:
            _write_string(out, topic.topic, flexible)
        _write_length(out, len(topic.partitions), flexible)
        for partition in topic.partitions:
            out += _PARTITION_HEADER.pack(
                partition.partition_index,
                partition.error_code,
                partition.high_watermark,
                partition.last_stable_offset,
            )
            if version >= 5:
                out += _INT64.pack(partition.log_start_offset)
            aborted_transactions = partition.aborted_transactions
            if aborted_transactions is None:
                _write_length(out, None, flexible)
            else:
                _write_length(out, len(aborted_transactions), flexible)
                for producer_id, first_offset in aborted_transactions:
                    out += _ABORTED_TRANSACTION.pack(producer_id, first_offset)
                    if flexible:
                        out.append(_NO_TAGGED_FIELDS)
            if version >= 11:
                out += _INT32.pack(partition.preferred_read_replica)
            records = partition.records
            records_size = sum(item.length for item in records)
            _write_length(out, records_size, flexible)
            if records:
                parts.append(out)
                parts += records
                frame_size += len(out) + records_size
                out = bytearray()
            if flexible:
                out.append(_NO_TAGGED_FIELDS)
        if flexible:
            out.append(_NO_TAGGED_FIELDS)
    if flexible:
        out.append(_NO_TAGGED_FIELDS)
    if out:
        parts.append(out)
        frame_size += len(out)
    _INT32.pack_into(first, 0, frame_size)
    return [bytes(part) if isinstance(part, bytearray) else part for part in parts]


def _write_length(out: bytearray, length: int | None, flexible: bool) -> None:
    """An array or bytes length: int32, -1 for null; flexible: unsigned varint length + 1, 0."""
    if flexible:
        _write_unsigned_varint(out, 0 if length is None else length + 1)
    else:
        out += _INT32.pack(-1 if length is None else length)


def _write_string(out: bytearray, value: str, flexible: bool) -> None:
    """A non-null string: int16 length, or in flexible versions unsigned varint length + 1."""
    encoded = value.encode()
    if flexible:
        _write_unsigned_varint(out, len(encoded) + 1)
    else:
        out += _INT16.pack(len(encoded))
    out += encoded


def _write_unsigned_varint(out: bytearray, value: int) -> None:
    """Append value as an unsigned varint: 7 bits per byte, low bits first, high bit = more."""
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
