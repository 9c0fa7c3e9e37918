"""KRaft metadata records: the ApiMessageAndVersion framing, Kafka's bytes, metadata batches."""

import struct
import uuid

import pytest

from engine.errors import CorruptRecordError
from engine.metadata.records import (
    METADATA_RECORD_TYPES,
    METADATA_VERSION,
    AccessControlEntryRecord,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    FenceBrokerRecord,
    LeaderChangeMessage,
    MetadataRecordError,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    build_leader_change_batch,
    build_metadata_batch,
    decode_record,
    encode_record,
    read_metadata_records,
    record_version,
)
from engine.records import (
    CompressionType,
    SimpleRecord,
    TimestampType,
    build_batch,
    decode_records,
    iter_batches,
)

TOPIC_ID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
INCARNATION_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
DIRECTORY = uuid.UUID("99999999-8888-7777-6666-555555555555")


def _register_broker(**fields) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id=1,
        incarnation_id=INCARNATION_ID,
        broker_epoch=42,
        end_points=[
            RegisterBrokerRecord.BrokerEndpoint(
                name="PLAINTEXT", host="broker-1", port=65535, security_protocol=0
            )
        ],
        features=[
            RegisterBrokerRecord.BrokerFeature(
                name="metadata.version", min_supported_version=1, max_supported_version=12
            )
        ],
        rack="rack-a",
        fenced=True,
        **fields,
    )


# The records kbench writes at METADATA_VERSION, built without a version: encode_record picks it.
WRITTEN = [
    pytest.param(_register_broker(in_controlled_shutdown=False), 2, id="RegisterBroker"),
    pytest.param(UnregisterBrokerRecord(broker_id=1, broker_epoch=42), 0, id="UnregisterBroker"),
    pytest.param(TopicRecord(name="orders", topic_id=TOPIC_ID), 0, id="Topic"),
    pytest.param(
        PartitionRecord(
            partition_id=3,
            topic_id=TOPIC_ID,
            replicas=[1, 2, 3],
            isr=[1, 2],
            removing_replicas=[],
            adding_replicas=[3],
            leader=1,
            leader_recovery_state=1,  # a tagged field, written because it is not the default 0
            leader_epoch=5,
            partition_epoch=9,
        ),
        0,
        id="Partition",
    ),
    pytest.param(
        ConfigRecord(resource_type=2, resource_name="orders", name="retention.ms", value=None),
        0,
        id="Config",
    ),
    pytest.param(
        PartitionChangeRecord(partition_id=3, topic_id=TOPIC_ID, isr=[1], leader=1),
        0,
        id="PartitionChange",
    ),
    pytest.param(FenceBrokerRecord(id=2, epoch=7), 0, id="FenceBroker"),
    pytest.param(UnfenceBrokerRecord(id=2, epoch=7), 0, id="UnfenceBroker"),
    pytest.param(RemoveTopicRecord(topic_id=TOPIC_ID), 0, id="RemoveTopic"),
    pytest.param(
        FeatureLevelRecord(name="metadata.version", feature_level=METADATA_VERSION),
        0,
        id="FeatureLevel",
    ),
    pytest.param(
        ProducerIdsRecord(broker_id=1, broker_epoch=42, next_producer_id=2000),
        0,
        id="ProducerIds",
    ),
    pytest.param(
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=42, fenced=-1),
        0,
        id="BrokerRegistrationChange-unfence",
    ),
    pytest.param(
        BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=42, in_controlled_shutdown=1),
        1,
        id="BrokerRegistrationChange-shutdown",
    ),
    pytest.param(NoOpRecord(), 0, id="NoOp"),
    pytest.param(
        AccessControlEntryRecord(
            id=uuid.UUID(int=7),
            resource_type=2,
            resource_name="orders-",
            pattern_type=4,
            principal="User:alice",
            host="*",
            operation=3,
            permission_type=3,
        ),
        0,
        id="AccessControlEntry",
    ),
    pytest.param(
        RemoveAccessControlEntryRecord(id=uuid.UUID(int=7)), 0, id="RemoveAccessControlEntry"
    ),
]


@pytest.mark.parametrize(("record", "version"), WRITTEN)
def test_every_written_record_round_trips_at_its_version(record, version):
    assert record_version(record) == version
    frame = encode_record(record)
    assert frame[:3] == bytes([1, type(record).json["apiKey"], version])
    decoded = decode_record(frame)
    assert type(decoded) is type(record)
    assert decoded.version == version
    assert decoded == record
    assert encode_record(decoded) == frame


def test_every_record_class_is_registered_by_its_kafka_api_key():
    assert {key: cls.__name__ for key, cls in METADATA_RECORD_TYPES.items()} == {
        0: "RegisterBrokerRecord",
        1: "UnregisterBrokerRecord",
        2: "TopicRecord",
        3: "PartitionRecord",
        4: "ConfigRecord",
        5: "PartitionChangeRecord",
        7: "FenceBrokerRecord",
        8: "UnfenceBrokerRecord",
        9: "RemoveTopicRecord",
        12: "FeatureLevelRecord",
        14: "ClientQuotaRecord",
        15: "ProducerIdsRecord",
        17: "BrokerRegistrationChangeRecord",
        18: "AccessControlEntryRecord",
        19: "RemoveAccessControlEntryRecord",
        20: "NoOpRecord",
    }


# Versions kbench does not write but reads, as a newer Kafka controller writes them.
NEWER = [
    pytest.param(
        _register_broker(version=3, in_controlled_shutdown=True, log_dirs=[DIRECTORY]),
        id="RegisterBroker-v3",
    ),
    pytest.param(
        PartitionRecord(
            version=2,
            partition_id=0,
            topic_id=TOPIC_ID,
            replicas=[1],
            isr=[1],
            removing_replicas=[],
            adding_replicas=[],
            leader=1,
            leader_epoch=0,
            partition_epoch=0,
            directories=[DIRECTORY],
            eligible_leader_replicas=[2],
            last_known_elr=[3],
        ),
        id="Partition-v2",
    ),
    pytest.param(
        PartitionChangeRecord(
            version=2,
            partition_id=0,
            topic_id=TOPIC_ID,
            directories=[DIRECTORY],
            eligible_leader_replicas=[2],
            last_known_elr=[],
        ),
        id="PartitionChange-v2",
    ),
    pytest.param(
        BrokerRegistrationChangeRecord(
            version=2, broker_id=1, broker_epoch=42, fenced=1, log_dirs=[DIRECTORY]
        ),
        id="BrokerRegistrationChange-v2",
    ),
]


@pytest.mark.parametrize("record", NEWER)
def test_newer_versions_round_trip(record):
    decoded = decode_record(encode_record(record))
    assert decoded.version == record.version
    assert decoded == record


def test_record_versions_at_metadata_version_3_6_iv0():
    assert METADATA_VERSION == 12
    assert record_version(_register_broker()) == 2  # IsMigratingZkBroker, no LogDirs (3.7)
    assert record_version(PartitionRecord()) == 0  # Directories came with 3.7
    assert record_version(PartitionChangeRecord()) == 0
    assert record_version(BrokerRegistrationChangeRecord(fenced=1)) == 0


def test_topic_record_frame_is_kafkas_bytes():
    frame = encode_record(TopicRecord(name="orders", topic_id=TOPIC_ID))
    expected = (
        bytes([1, 2, 0])  # frame version 1, api key 2, version 0 (unsigned varints)
        + bytes([len("orders") + 1])  # compact string: length + 1
        + b"orders"
        + TOPIC_ID.bytes
        + bytes([0])  # no tagged fields
    )
    assert frame == expected


def test_tagged_fields_are_written_in_ascending_tag_order():
    # Kafka's schema lists Directories (tag 8) before EligibleLeaderReplicas (6); Kafka writes
    # tags in ascending order whatever the field order, and so must we.
    record = PartitionChangeRecord(
        version=2,
        partition_id=1,
        topic_id=TOPIC_ID,
        leader=4,
        directories=[DIRECTORY],
        eligible_leader_replicas=[2],
    )
    expected = (
        bytes([1, 5, 2])
        + struct.pack(">i", 1)
        + TOPIC_ID.bytes
        + bytes([3])  # three tagged fields
        + bytes([1, 4]) + struct.pack(">i", 4)  # tag 1 Leader: 4 bytes
        + bytes([6, 5, 2]) + struct.pack(">i", 2)  # tag 6 ELR: compact array of one
        + bytes([8, 17, 2]) + DIRECTORY.bytes  # tag 8 Directories
    )  # fmt: skip
    assert encode_record(record) == expected


def test_registered_port_is_an_unsigned_int16():
    frame = encode_record(_register_broker())
    endpoint = bytes([10]) + b"PLAINTEXT" + bytes([9]) + b"broker-1"
    at = frame.index(endpoint) + len(endpoint)
    assert frame[at : at + 2] == b"\xff\xff"
    [end_point] = decode_record(frame).end_points
    assert end_point.port == 65535


def _partition_change_without_tags() -> bytes:
    return bytes([1, 5, 0]) + struct.pack(">i", 7) + TOPIC_ID.bytes + bytes([0])


def test_partition_change_fields_take_their_defaults_when_their_tags_are_absent():
    record = decode_record(_partition_change_without_tags())
    assert (record.partition_id, record.topic_id) == (7, TOPIC_ID)
    assert record.leader == -2  # no change
    assert record.isr is None
    assert record.replicas is None
    assert record.removing_replicas is None
    assert record.adding_replicas is None
    assert record.leader_recovery_state == -1


def test_unknown_tagged_fields_are_skipped():
    frame = (
        bytes([1, 5, 0])
        + struct.pack(">i", 7)
        + TOPIC_ID.bytes
        + bytes([2])
        + bytes([1, 4]) + struct.pack(">i", 3)  # Leader = 3
        + bytes([42, 3]) + b"\x01\x02\x03"  # a tag from a newer version
    )  # fmt: skip
    record = decode_record(frame)
    assert record.leader == 3
    assert record.isr is None


def test_a_value_that_is_not_a_metadata_record_is_refused():
    with pytest.raises(MetadataRecordError, match="frame version 0"):
        decode_record(b"\x00" + _partition_change_without_tags()[1:])
    with pytest.raises(MetadataRecordError, match="frame version 2"):
        decode_record(b"\x02" + _partition_change_without_tags()[1:])
    with pytest.raises(MetadataRecordError, match="1 byte"):
        decode_record(_partition_change_without_tags() + b"\x00")
    with pytest.raises(MetadataRecordError, match="unknown metadata record api key 99"):
        decode_record(bytes([1, 99, 0, 0]))
    with pytest.raises(MetadataRecordError, match="TopicRecord v1 is not supported"):
        decode_record(bytes([1, 2, 1, 0]))
    with pytest.raises(MetadataRecordError, match="PartitionChangeRecord v0 does not parse"):
        decode_record(_partition_change_without_tags()[:-5])
    with pytest.raises(MetadataRecordError, match="ends inside its api key"):
        decode_record(b"\x01\x80")
    with pytest.raises(MetadataRecordError, match="non-nullable field name"):
        decode_record(bytes([1, 2, 0, 0]) + TOPIC_ID.bytes + bytes([0]))


def test_a_record_its_version_cannot_carry_is_not_written():
    with pytest.raises(MetadataRecordError, match="cannot carry in_controlled_shutdown"):
        encode_record(BrokerRegistrationChangeRecord(version=0, in_controlled_shutdown=1))
    with pytest.raises(MetadataRecordError, match="non-nullable field name"):
        encode_record(TopicRecord(name=None, topic_id=TOPIC_ID))
    with pytest.raises(MetadataRecordError, match="not a metadata record"):
        encode_record(LeaderChangeMessage(version=0))


def _metadata_records():
    return [
        FeatureLevelRecord(name="metadata.version", feature_level=METADATA_VERSION),
        TopicRecord(name="orders", topic_id=TOPIC_ID),
        PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, leader=2),
    ]


def test_a_metadata_batch_is_what_rafts_batch_builder_writes():
    records = _metadata_records()
    data = build_metadata_batch(records, base_offset=100, leader_epoch=7, timestamp_ms=1_234)
    [batch] = iter_batches(data)
    assert batch.is_valid()
    assert batch.partition_leader_epoch == 7
    assert (batch.base_offset, batch.record_count) == (100, 3)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    assert not batch.is_transactional and not batch.is_control
    assert batch.compression == CompressionType.NONE
    assert batch.timestamp_type == TimestampType.CREATE_TIME
    assert (batch.base_timestamp, batch.max_timestamp) == (1_234, 1_234)
    # first record: length, attributes 0, timestamp delta 0, offset delta 0, key length -1
    assert data[62:66] == bytes([0, 0, 0, 1])
    stored = list(decode_records(batch))
    assert [r.key for r in stored] == [None] * 3
    assert [r.headers for r in stored] == [()] * 3
    assert [bytes(r.value) for r in stored] == [encode_record(r) for r in records]
    assert list(read_metadata_records(data)) == [(100 + i, r) for i, r in enumerate(records)]


def test_the_leader_change_control_batch():
    data = build_leader_change_batch(
        base_offset=0,
        leader_epoch=3,
        leader_id=1,
        voters=[1, 2, 3],
        timestamp_ms=50,
        granting_voters=[1, 3],
    )
    [batch] = iter_batches(data)
    assert batch.is_valid() and batch.is_control
    assert (batch.partition_leader_epoch, batch.base_timestamp) == (3, 50)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    [record] = decode_records(batch)
    assert record.key == struct.pack(">hh", 0, 2)  # control key v0, LEADER_CHANGE
    voter = bytes([0])  # a Voter's empty tagged fields
    assert bytes(record.value) == (
        struct.pack(">hi", 0, 1)  # Version 0, LeaderId 1
        + bytes([4]) + struct.pack(">i", 1) + voter + struct.pack(">i", 2) + voter
        + struct.pack(">i", 3) + voter
        + bytes([3]) + struct.pack(">i", 1) + voter + struct.pack(">i", 3) + voter
        + bytes([0])
    )  # fmt: skip
    message = LeaderChangeMessage.decode(bytes(record.value), version=0, header=False)
    assert (message.message_version, message.leader_id) == (0, 1)
    assert [v.voter_id for v in message.voters] == [1, 2, 3]
    assert [v.voter_id for v in message.granting_voters] == [1, 3]


def test_control_batches_are_skipped():
    records = _metadata_records()
    data = (
        build_leader_change_batch(
            base_offset=0, leader_epoch=1, leader_id=1, voters=[1], timestamp_ms=10
        )
        + build_metadata_batch(records[:1], base_offset=1, leader_epoch=1, timestamp_ms=10)
        + build_leader_change_batch(
            base_offset=2, leader_epoch=2, leader_id=1, voters=[1], timestamp_ms=20
        )
        + build_metadata_batch(records[1:], base_offset=3, leader_epoch=2, timestamp_ms=20)
    )
    assert [offset for offset, _ in read_metadata_records(data)] == [1, 3, 4]
    assert [record for _, record in read_metadata_records(data)] == records


def test_compressed_metadata_batches_are_read():
    records = _metadata_records()
    data = build_batch(
        [SimpleRecord(encode_record(r)) for r in records],
        compression=CompressionType.LZ4,
        base_offset=10,
    )
    assert list(read_metadata_records(data)) == [(10 + i, r) for i, r in enumerate(records)]


def test_a_corrupt_metadata_batch_is_refused():
    data = build_metadata_batch(_metadata_records(), base_offset=0, leader_epoch=0, timestamp_ms=0)
    data[-3] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="CRC"):
        list(read_metadata_records(data))


def test_a_bad_record_in_a_batch_names_its_offset():
    data = build_batch([SimpleRecord(b"\x01\x63\x00\x00")], base_offset=5)
    with pytest.raises(MetadataRecordError, match="offset 5: unknown metadata record api key 99"):
        list(read_metadata_records(data))
