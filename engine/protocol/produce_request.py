"""ProduceRequest v3-v9 bodies decoded with the records left in place, as views of the frame.

The schema-generated decoder copies every partition's records into a new `bytes`; the log then
needs them writable to patch offsets, a second copy. Measured on this machine, those two fresh
megabytes per 1 MiB request cost ~50,000 page faults per 110 MB produced and a visible share of
the broker's CPU. Here the records stay a memoryview of the (writable) receive buffer, patched
and written from where they arrived.

Layout, big-endian, as ProduceRequest.json; v9 is flexible (compact lengths as unsigned varint
length + 1 with 0 for null, and a tagged-field section after each struct):

    transactional_id nullable string · acks int16 · timeout_ms int32
    topic_data array of: name string · partition_data array of: index int32 · records nullable bytes
"""

import struct
from dataclasses import dataclass

FIRST_FLEXIBLE_VERSION = 9
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_ACKS_TIMEOUT = struct.Struct(">hi")


class ProduceDecodeError(Exception):
    pass


@dataclass(slots=True)
class PartitionProduceData:
    index: int
    records: memoryview | None


@dataclass(slots=True)
class TopicProduceData:
    name: str
    partition_data: list[PartitionProduceData]


@dataclass(slots=True)
class ProduceRequestData:
    """The fields KafkaApis reads, named as kafka-python's ProduceRequest names them."""

    transactional_id: str | None
    acks: int
    timeout_ms: int
    topic_data: list[TopicProduceData]


class _Reader:
    __slots__ = ("position", "view")

    def __init__(self, view: memoryview, position: int) -> None:
        self.view = view
        self.position = position

    def unpack(self, fmt: struct.Struct) -> tuple:
        values = fmt.unpack_from(self.view, self.position)
        self.position += fmt.size
        return values

    def uvarint(self) -> int:
        result = shift = 0
        while True:
            byte = self.view[self.position]
            self.position += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift > 28:
                raise ProduceDecodeError("unsigned varint longer than 5 bytes")

    def length(self, flexible: bool, wide: bool) -> int:
        """A length prefix: compact (uvarint n+1, 0 = null -> -1) or int16/int32."""
        if flexible:
            return self.uvarint() - 1
        return self.unpack(_INT32 if wide else _INT16)[0]

    def take(self, count: int) -> memoryview:
        end = self.position + count
        if count < 0 or end > len(self.view):
            raise ProduceDecodeError(f"field of {count} bytes runs past the end of the frame")
        data = self.view[self.position : end]
        self.position = end
        return data

    def string(self, flexible: bool) -> str | None:
        length = self.length(flexible, wide=False)
        return None if length < 0 else str(self.take(length), "utf-8")

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())


def _array_length(length: int, name: str) -> int:
    if length < 0:  # as Kafka's generated reader: these arrays are not nullable
        raise ProduceDecodeError(f"non-nullable field {name} was serialized as null")
    return length


def decode_produce_request(
    view: memoryview, position: int, version: int
) -> tuple[ProduceRequestData, int]:
    """Decode the body starting at position; returns the request and where it ended."""
    flexible = version >= FIRST_FLEXIBLE_VERSION
    reader = _Reader(view, position)
    try:
        transactional_id = reader.string(flexible)
        acks, timeout_ms = reader.unpack(_ACKS_TIMEOUT)
        topics = []
        for _ in range(_array_length(reader.length(flexible, wide=True), "topic_data")):
            name = reader.string(flexible)
            if name is None:
                raise ProduceDecodeError("null topic name")
            partitions = []
            for _ in range(_array_length(reader.length(flexible, wide=True), "partition_data")):
                (index,) = reader.unpack(_INT32)
                size = reader.length(flexible, wide=True)
                records = None if size < 0 else reader.take(size)
                partitions.append(PartitionProduceData(index, records))
                if flexible:
                    reader.skip_tagged_fields()
            topics.append(TopicProduceData(name, partitions))
            if flexible:
                reader.skip_tagged_fields()
        if flexible:
            reader.skip_tagged_fields()
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ProduceDecodeError(f"ProduceRequest v{version} does not parse: {exc}") from exc
    return ProduceRequestData(transactional_id, acks, timeout_ms, topics), reader.position
