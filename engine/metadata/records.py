"""KRaft metadata records: Kafka's schemas, their framing in the metadata log, metadata batches.

A metadata record is the value of one record in __cluster_metadata, framed as Kafka's
ApiMessageAndVersion (AbstractApiMessageSerde):

    frameVersion uvarint (1) · apiKey uvarint · version uvarint · body

The body is the record's schema in flexible encoding (compact strings and arrays, a tagged-field
section closing every struct). Records go into magic-2 batches as Raft's BatchBuilder writes them:
key null, no headers, no producer id. A leader opens its epoch with a control batch whose one
record has key `version int16 (0) · type int16 (2, LEADER_CHANGE)` and the bare
LeaderChangeMessage body as its value.

The classes are kafka-python ApiData built from engine/metadata/schemas, which match Kafka's
schemas field for field, so the bytes are Kafka's.
"""

import io
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kafka.protocol.api_data import ApiData

from engine.records import SimpleRecord, build_batch, decode_records, iter_batches

METADATA_VERSION = 12  # the metadata.version feature level of 3.6-IV0
_FRAME_VERSION = 1  # AbstractApiMessageSerde.DEFAULT_FRAME_VERSION; 0 was the 2.8 preview's
_CONTROL_KEY = struct.Struct(">hh")  # ControlRecordType's key: version, type
_CONTROL_KEY_VERSION = 0
_LEADER_CHANGE = 2  # ControlRecordType.LEADER_CHANGE
_LEADER_CHANGE_VERSION = 0  # ControlRecordUtils.LEADER_CHANGE_CURRENT_VERSION
# kafka-python's metaclass keyword naming the package of the schemas: `class X(ApiData,
# load_json=...)` spelled as a spread, or mypy, which sees ApiData as Any, checks the keyword
# against object.__init_subclass__
_LOAD_JSON: dict[str, Any] = {"load_json": "engine.metadata.schemas"}


class MetadataRecordError(ValueError):
    """Bytes that are not a metadata record this codec reads (Kafka's MetadataParseException)."""


def _kraft_schema(cls: type, json: dict[str, Any]) -> dict[str, Any]:
    # The schema files say "metadata", as Kafka's do; kafka-python's ApiData accepts only "data".
    json["type"] = "data"
    # kafka-python writes tagged fields in field order, Kafka in ascending tag order, and
    # PartitionChangeRecord lists tag 8 before 6 and 7: sort them, untagged fields stay put.
    fields = json["fields"]
    by_tag = iter(sorted((f for f in fields if "tag" in f), key=lambda f: int(f["tag"])))
    json["fields"] = [next(by_tag) if "tag" in f else f for f in fields]
    if not fields:
        # kafka-python cannot build a struct with no fields (NoOpRecord); one that is in no
        # version stands in, so the body stays the empty tagged-field section alone.
        json["fields"] = [{"name": "Absent", "type": "int8", "versions": "none"}]
    return json


_KRAFT_SCHEMA: Any = classmethod(_kraft_schema)


class RegisterBrokerRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class UnregisterBrokerRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class TopicRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class PartitionRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class ConfigRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class ClientQuotaRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class PartitionChangeRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class FenceBrokerRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class UnfenceBrokerRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class RemoveTopicRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class FeatureLevelRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class ProducerIdsRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class BrokerRegistrationChangeRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class NoOpRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class AccessControlEntryRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class RemoveAccessControlEntryRecord(ApiData, **_LOAD_JSON):
    json_patch = _KRAFT_SCHEMA


class LeaderChangeMessage(ApiData, **_LOAD_JSON):
    """The value of a LEADER_CHANGE control record."""

    @classmethod
    def json_patch(cls, json: dict[str, Any]) -> dict[str, Any]:
        # kafka-python would name the field Version `version`, the keyword that already carries
        # the schema version (decode fails with "multiple values for 'version'"); names are not
        # on the wire, so it is `message_version` here.
        [field] = [f for f in json["fields"] if f["name"] == "Version"]
        field["name"] = "MessageVersion"
        return json


# apiKey -> class: Kafka's MetadataRecordType, for the records kbench reads and writes
METADATA_RECORD_TYPES: dict[int, type[ApiData]] = {
    cls.json["apiKey"]: cls
    for cls in (
        RegisterBrokerRecord,
        UnregisterBrokerRecord,
        TopicRecord,
        PartitionRecord,
        ConfigRecord,
        ClientQuotaRecord,
        PartitionChangeRecord,
        FenceBrokerRecord,
        UnfenceBrokerRecord,
        RemoveTopicRecord,
        FeatureLevelRecord,
        ProducerIdsRecord,
        BrokerRegistrationChangeRecord,
        NoOpRecord,
        AccessControlEntryRecord,
        RemoveAccessControlEntryRecord,
    )
}
_API_KEYS = {cls: api_key for api_key, cls in METADATA_RECORD_TYPES.items()}
# MetadataVersion.registerBrokerRecordVersion() etc. at 3.6-IV0; the rest are v0 at every level
_WRITE_VERSIONS = {RegisterBrokerRecord: 2, PartitionRecord: 0, PartitionChangeRecord: 0}


def record_version(record: ApiData) -> int:
    """The version of `record` that a METADATA_VERSION controller writes."""
    if isinstance(record, BrokerRegistrationChangeRecord):
        # v1 added InControlledShutdown; fencing changes stay v0 (ReplicationControlManager)
        return 1 if record.in_controlled_shutdown else 0
    return _WRITE_VERSIONS.get(type(record), 0)


def encode_record(record: ApiData) -> bytes:
    """The record framed as ApiMessageAndVersion, at its own version if it has one (a decoded
    record, or one built with version=) and otherwise at record_version(record)."""
    cls = type(record)
    api_key = _API_KEYS.get(cls)
    if api_key is None:
        raise MetadataRecordError(f"{cls.__name__} is not a metadata record")
    version = record.version if record.version is not None else record_version(record)
    if not 0 <= version <= cls.max_version:
        raise MetadataRecordError(f"{cls.__name__} has no version {version}")
    # Kafka refuses to write what its reader would refuse, or a value the version cannot carry
    for field in cls.fields.values():
        value = getattr(record, field.name)
        if not field.for_version_q(version) and value != field.default:
            raise MetadataRecordError(
                f"{cls.__name__} v{version} cannot carry {field.name}={value!r}"
            )
    null = _null_field(record, cls.fields, version)
    if null is not None:
        raise MetadataRecordError(f"{cls.__name__} v{version}: non-nullable field {null} is null")
    frame = bytearray()
    for number in (_FRAME_VERSION, api_key, version):
        _write_unsigned_varint(number, frame)
    frame += record.encode(version=version, header=False)
    return bytes(frame)


def decode_record(value: bytes | bytearray | memoryview) -> ApiData:
    """The metadata record framed in `value`; MetadataRecordError if it is not one."""
    view = memoryview(value)
    frame_version, position = _read_unsigned_varint(view, 0, "frame version")
    if frame_version != _FRAME_VERSION:
        preview = " (KRaft's 2.8 preview, not readable since 3.0)" if frame_version == 0 else ""
        raise MetadataRecordError(
            f"metadata record frame version {frame_version}{preview}: only version 1 is supported"
        )
    api_key, position = _read_unsigned_varint(view, position, "api key")
    version, position = _read_unsigned_varint(view, position, "version")
    cls = METADATA_RECORD_TYPES.get(api_key)
    if cls is None:
        raise MetadataRecordError(f"unknown metadata record api key {api_key}")
    if version > cls.max_version:
        raise MetadataRecordError(
            f"{cls.__name__} v{version} is not supported (v0 to v{cls.max_version})"
        )
    body = io.BytesIO(view[position:])
    try:
        record = cls.decode(body, version=version, header=False)
    except Exception as exc:  # the decoders raise whatever a bad byte provokes
        raise MetadataRecordError(f"{cls.__name__} v{version} does not parse: {exc!r}") from None
    garbage = len(view) - position - body.tell()
    if garbage:
        raise MetadataRecordError(f"{garbage} byte(s) of garbage after {cls.__name__} v{version}")
    null = _null_field(record, cls.fields, version)
    if null is not None:
        raise MetadataRecordError(
            f"{cls.__name__} v{version}: non-nullable field {null} was serialized as null"
        )
    return record


def build_metadata_batch(
    records: Iterable[ApiData], *, base_offset: int, leader_epoch: int, timestamp_ms: int
) -> bytearray:
    """One uncompressed batch of metadata records, as Raft's BatchBuilder writes it: CreateTime
    `timestamp_ms`, no producer id, epoch or sequence, partition leader epoch `leader_epoch`."""
    return build_batch(
        [SimpleRecord(encode_record(record)) for record in records],
        base_offset=base_offset,
        timestamp=timestamp_ms,
        partition_leader_epoch=leader_epoch,
    )


def build_leader_change_batch(
    *,
    base_offset: int,
    leader_epoch: int,
    leader_id: int,
    voters: Sequence[int],
    timestamp_ms: int,
    granting_voters: Sequence[int] | None = None,
) -> bytearray:
    """The control batch a new Raft leader writes first in its epoch. `granting_voters` are the
    voters that voted for it, by default all of them (a single-voter quorum)."""
    granted = voters if granting_voters is None else granting_voters
    message = LeaderChangeMessage(
        version=_LEADER_CHANGE_VERSION,
        message_version=_LEADER_CHANGE_VERSION,
        leader_id=leader_id,
        voters=[{"voter_id": voter} for voter in voters],
        granting_voters=[{"voter_id": voter} for voter in granted],
    )
    record = SimpleRecord(
        value=bytes(message.encode(version=_LEADER_CHANGE_VERSION, header=False)),
        key=_CONTROL_KEY.pack(_CONTROL_KEY_VERSION, _LEADER_CHANGE),
    )
    return build_batch(
        [record],
        base_offset=base_offset,
        timestamp=timestamp_ms,
        partition_leader_epoch=leader_epoch,
        is_control=True,
    )


def read_metadata_records(
    data: bytes | bytearray | memoryview,
) -> Iterator[tuple[int, ApiData]]:
    """(offset, record) for every metadata record in a buffer of whole batches, control batches
    skipped. CRCs are checked, as Kafka's Raft client does when it reads committed batches
    back from its log: a corrupt metadata log must not become the cluster's state."""
    for batch in iter_batches(data):
        batch.ensure_valid()
        if batch.is_control:
            continue
        for record in decode_records(batch):
            if record.value is None:
                raise MetadataRecordError(f"offset {record.offset}: a null metadata record")
            try:
                decoded = decode_record(record.value)
            except MetadataRecordError as exc:
                raise MetadataRecordError(f"offset {record.offset}: {exc}") from None
            yield record.offset, decoded


def _null_field(container: Any, fields: dict[str, Any], version: int) -> str | None:
    """The first string, array or struct that is null where the schema does not allow it: Kafka's
    readers refuse those, kafka-python's accept them. (A null uuid is the zero uuid, not null.)"""
    for field in fields.values():
        if (
            not field.for_version_q(version)
            or field.tagged_field_q(version)
            or not (field.is_array() or field.is_struct() or field.type_str in ("string", "bytes"))
        ):
            continue
        value = getattr(container, field.name)
        if value is None:
            if field.nullable_for_version_q(version):
                continue
            return field.name
        if field.is_struct_array():
            items = value
        elif field.is_struct():
            items = [value]
        else:
            continue
        for item in items:
            nested = _null_field(item, field.fields, version)
            if nested is not None:
                return f"{field.name}.{nested}"
    return None


def _write_unsigned_varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _read_unsigned_varint(view: memoryview, position: int, what: str) -> tuple[int, int]:
    """Kafka's readUnsignedVarint (at most 5 bytes), then its unsignedIntToShort bound."""
    value = 0
    for shift in range(0, 35, 7):
        if position >= len(view):
            raise MetadataRecordError(f"metadata record ends inside its {what}")
        byte = view[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > 0x7FFF:
                raise MetadataRecordError(f"metadata record {what} {value} is too large")
            return value, position
    raise MetadataRecordError(f"metadata record {what} is a varint longer than 5 bytes")
