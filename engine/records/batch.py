"""RecordBatch v2 (magic 2): a header view over a buffer, never a copy.

Layout, big-endian, byte offsets from the start of the batch:

    0 baseOffset int64          8 batchLength int32 (bytes after this field)
    12 partitionLeaderEpoch int32   16 magic int8   17 crc uint32
    21 attributes int16         23 lastOffsetDelta int32
    27 baseTimestamp int64      35 maxTimestamp int64
    43 producerId int64         51 producerEpoch int16
    53 baseSequence int32       57 recordCount int32   61 records...

The CRC-32C covers bytes 21 to the end of the batch. baseOffset and partitionLeaderEpoch lie
outside it, so a broker assigns offsets by patching them in place without touching the CRC.
Magic 0 and 1 message sets keep magic at byte 16 too, which is how they are recognised and refused.
"""

import struct
from collections.abc import Iterator

from crc32c import crc32c

from engine.errors import CorruptRecordError, UnsupportedForMessageFormatError

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes that precede what batchLength counts
MAGIC = 2
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
NO_PRODUCER_ID = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

_MAGIC_OFFSET = 16
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21
_MAX_TIMESTAMP_OFFSET = 35

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_FLAG = 0x08  # set: LogAppendTime, clear: CreateTime
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
_PREFIX = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")

assert HEADER_STRUCT.size == HEADER_SIZE


class TimestampType:
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class RecordBatch:
    """The header fields of one batch, parsed once, and the buffer region it occupies."""

    __slots__ = (
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "batch_length",
        "buffer",
        "crc",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "position",
        "producer_epoch",
        "producer_id",
        "record_count",
    )

    def __init__(self, buffer: memoryview, position: int = 0) -> None:
        self.buffer = buffer
        self.position = position
        (
            self.base_offset,
            self.batch_length,
            self.partition_leader_epoch,
            self.magic,
            self.crc,
            self.attributes,
            self.last_offset_delta,
            self.base_timestamp,
            self.max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self.record_count,
        ) = HEADER_STRUCT.unpack_from(buffer, position)

    @property
    def size_in_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return TimestampType.LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_FLAG else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_FLAG)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_FLAG)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id > NO_PRODUCER_ID

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        # Sequences wrap at Int32.MAX_VALUE, as in Kafka's DefaultRecordBatch.
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)

    def view(self) -> memoryview:
        """The whole batch, as a view into the buffer."""
        return self.buffer[self.position : self.position + self.size_in_bytes]

    def records_view(self) -> memoryview:
        """The records section (compressed when the batch is), as a view into the buffer."""
        return self.buffer[self.position + HEADER_SIZE : self.position + self.size_in_bytes]

    def compute_crc(self) -> int:
        position = self.position
        return crc32c(
            self.buffer[position + _ATTRIBUTES_OFFSET : position + 12 + self.batch_length]
        )

    def is_valid(self) -> bool:
        return self.compute_crc() == self.crc

    def ensure_valid(self) -> None:
        """Raise CorruptRecordError unless the stored CRC matches the batch's bytes."""
        computed = self.compute_crc()
        if computed != self.crc:
            raise CorruptRecordError(
                f"batch at offset {self.base_offset} (position {self.position}) has CRC "
                f"{self.crc:#010x}, computed {computed:#010x}"
            )

    def set_offsets(self, base_offset: int, partition_leader_epoch: int) -> None:
        """Patch baseOffset and partitionLeaderEpoch in place; both are outside the CRC."""
        _INT64.pack_into(self.buffer, self.position, base_offset)
        _INT32.pack_into(self.buffer, self.position + 12, partition_leader_epoch)
        self.base_offset = base_offset
        self.partition_leader_epoch = partition_leader_epoch

    def set_log_append_time(self, timestamp: int) -> None:
        """Stamp the batch with the broker's clock (message.timestamp.type=LogAppendTime).

        attributes and maxTimestamp are inside the CRC, so it is recomputed, as Kafka does.
        """
        self.attributes |= TIMESTAMP_TYPE_FLAG
        self.max_timestamp = timestamp
        _INT16.pack_into(self.buffer, self.position + _ATTRIBUTES_OFFSET, self.attributes)
        _INT64.pack_into(self.buffer, self.position + _MAX_TIMESTAMP_OFFSET, timestamp)
        self.update_crc()

    def update_crc(self) -> None:
        """Recompute the CRC over the batch's bytes and store it in the header."""
        self.crc = self.compute_crc()
        _UINT32.pack_into(self.buffer, self.position + _CRC_OFFSET, self.crc)

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, last_offset={self.last_offset}, "
            f"count={self.record_count}, size={self.size_in_bytes}, position={self.position})"
        )


def read_batch_prefix(buffer: memoryview | bytes, position: int) -> tuple[int, int]:
    """(baseOffset, size in bytes) of the batch at position; the 12 bytes must be present."""
    base_offset, batch_length = _PREFIX.unpack_from(buffer, position)
    return base_offset, batch_length + LOG_OVERHEAD


def iter_batches(buffer: bytes | bytearray | memoryview, start: int = 0) -> Iterator[RecordBatch]:
    """Yield the batches laid end to end in buffer, checking framing but not CRCs.

    Raises CorruptRecordError for a truncated or impossible batch and
    UnsupportedForMessageFormatError for a magic 0/1 message set; every batch yielded before the
    error is whole.
    """
    view = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
    end = len(view)
    position = start
    while position < end:
        remaining = end - position
        if remaining < HEADER_SIZE:
            _check_short_tail(view, position, remaining)
        batch = RecordBatch(view, position)  # one unpack of the 61-byte header
        if batch.magic != MAGIC:
            raise UnsupportedForMessageFormatError(
                f"message format magic {batch.magic} at position {position}: "
                "only record batch v2 (magic 2) is supported"
            )
        size = batch.batch_length + LOG_OVERHEAD
        if size > remaining:
            raise CorruptRecordError(
                f"truncated batch at position {position}: length field says {size} bytes, "
                f"{remaining} present"
            )
        if size < HEADER_SIZE:
            raise CorruptRecordError(
                f"batch at position {position} has length {size - LOG_OVERHEAD}, "
                f"below the minimum {MIN_BATCH_LENGTH}"
            )
        yield batch
        position += size


def _check_short_tail(view: memoryview, position: int, remaining: int) -> None:
    """Explain why fewer bytes than a batch header remain: an old format, or a torn batch."""
    if remaining > _MAGIC_OFFSET and view[position + _MAGIC_OFFSET] != MAGIC:
        raise UnsupportedForMessageFormatError(
            f"message format magic {view[position + _MAGIC_OFFSET]} at position {position}: "
            "only record batch v2 (magic 2) is supported"
        )
    raise CorruptRecordError(
        f"truncated batch at position {position}: {remaining} bytes, "
        f"fewer than the {HEADER_SIZE}-byte header"
    )
