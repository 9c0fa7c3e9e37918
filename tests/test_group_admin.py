"""The group admin APIs (issue 15) against a `kbench broker` process, through kafka-python's
KafkaAdminClient and confluent-kafka's AdminClient: DeleteGroups and OffsetDelete, durable
through `__consumer_offsets`; ListGroups with states and types, DescribeGroups."""

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupType, KafkaException
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import GroupIdNotFoundError, GroupSubscribedToTopicError, NoError
from kafka.structs import OffsetAndMetadata

from engine.errors import GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP
from tests.cluster_support import wait_until
from tests.conftest import broker_process

TOPIC, OTHER = "groups-a", "groups-b"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("group-admin") / "data")).start()
    admin = KafkaAdminClient(bootstrap_servers=running.bootstrap)
    admin.create_topics([NewTopic(TOPIC, 2, 1), NewTopic(OTHER, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=running.bootstrap)
    for i in range(4):
        producer.send(TOPIC, b"x", partition=i % 2)
    producer.close()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def busy(broker):
    """A consumer group with a live member subscribed to TOPIC."""
    member = KafkaConsumer(
        TOPIC,
        bootstrap_servers=broker.bootstrap,
        group_id="busy",
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
    )
    wait_until(lambda: member.poll(timeout_ms=200) is not None and member.assignment(), 30)
    # explicit offsets: what a poll has consumed by now varies
    member.commit({tp: OffsetAndMetadata(1, "", -1) for tp in member.assignment()})
    yield member
    member.close()


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    yield client
    client.close()


def commit(admin: KafkaAdminClient, group_id: str, *tps: TopicPartition) -> None:
    """Offsets committed without group management: a group with no members (Empty)."""
    errors = admin.alter_group_offsets(group_id, {tp: OffsetAndMetadata(3, "") for tp in tps})
    assert set(errors.values()) == {NoError}


def test_delete_groups(admin, broker, busy):
    commit(admin, "idle", TopicPartition(TOPIC, 0))
    assert admin.delete_groups(["busy", "idle", "never"]) == {
        "busy": "NonEmptyGroupError",
        "idle": "OK",
        "never": "GroupIdNotFoundError",
    }
    assert admin.list_group_offsets({"idle": None}) == {"idle": {}}
    # confluent-kafka's
    commit(admin, "idle-too", TopicPartition(OTHER, 0))
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = client.delete_consumer_groups(["idle-too", "busy", "never"], request_timeout=10)
    assert futures["idle-too"].result() is None
    for group_id, code in (("busy", NON_EMPTY_GROUP), ("never", GROUP_ID_NOT_FOUND)):
        with pytest.raises(KafkaException) as raised:
            futures[group_id].result()
        assert raised.value.args[0].code() == code


def test_delete_group_offsets(admin, busy):
    a0, a1, b0 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1), TopicPartition(OTHER, 0)
    commit(admin, "parted", a0, a1, b0)
    assert admin.delete_group_offsets("parted", [a1, b0]) == {a1: NoError, b0: NoError}
    assert admin.list_group_offsets({"parted": None})["parted"] == {
        a0: OffsetAndMetadata(3, "", -1)
    }
    # a group whose members subscribe to a topic keeps that topic's offsets
    assert admin.delete_group_offsets("busy", [a0, b0]) == {
        a0: GroupSubscribedToTopicError,
        b0: NoError,
    }
    assert a0 in admin.list_group_offsets({"busy": None})["busy"]
    with pytest.raises(GroupIdNotFoundError):
        admin.delete_group_offsets("never", [a0])


def test_list_groups_by_state_and_type(admin, broker, busy):
    commit(admin, "listed-empty", TopicPartition(OTHER, 0))
    everything = {g["group_id"]: g for g in admin.list_groups()}
    assert everything["busy"]["group_state"] == "Stable"
    assert everything["busy"]["group_type"] == "classic"
    assert everything["busy"]["protocol_type"] == "consumer"
    assert everything["listed-empty"]["group_state"] == "Empty"
    stable = {g["group_id"] for g in admin.list_groups(states_filter=["stable"])}
    assert "busy" in stable and "listed-empty" not in stable
    assert admin.list_groups(types_filter=["consumer"]) == []  # KIP-848 groups: none here
    # confluent-kafka's, ListGroups v5 with both filters
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = client.list_consumer_groups(
        states={ConsumerGroupState.EMPTY}, types={ConsumerGroupType.CLASSIC}, request_timeout=10
    ).result()
    assert not listed.errors
    assert {(g.group_id, g.state, g.type) for g in listed.valid} >= {
        ("listed-empty", ConsumerGroupState.EMPTY, ConsumerGroupType.CLASSIC)
    }
    assert "busy" not in {g.group_id for g in listed.valid}


def test_describe_groups(admin, broker, busy):
    described = admin.describe_groups(["busy"])["busy"]
    assert (described["group_state"], described["protocol_type"], described["protocol_data"]) == (
        "Stable",
        "consumer",
        "range",
    )
    # asked for, as kafka-python asks: all a group has, as Kafka grants without an authorizer
    assert set(described["authorized_operations"]) == {
        "READ",
        "DESCRIBE",
        "DELETE",
        "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS",
    }
    [member] = described["members"]
    assert member["member_metadata"]["topics"] == [TOPIC]  # decoded by kafka-python
    assert member["member_assignment"]["assigned_partitions"] == [
        {"topic": TOPIC, "partitions": [0, 1]}
    ]
    # DescribeGroups v6 (KIP-1043): a group that does not exist is GROUP_ID_NOT_FOUND
    never = admin.describe_groups(["never"])["never"]
    assert never["group_state"] == "Dead"
    assert never["error"].startswith("[Error 69] GroupIdNotFoundError: Group never not found.")
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = client.describe_consumer_groups(["busy", "never"], request_timeout=10)
    busy_group = futures["busy"].result()
    assert (busy_group.state, busy_group.type, busy_group.partition_assignor) == (
        ConsumerGroupState.STABLE,
        ConsumerGroupType.CLASSIC,
        "range",
    )
    assert {
        (tp.topic, tp.partition) for tp in busy_group.members[0].assignment.topic_partitions
    } == {
        (TOPIC, 0),
        (TOPIC, 1),
    }
    # librdkafka asks with a DescribeGroups version below 6: a Dead group, no error
    assert futures["never"].result().state == ConsumerGroupState.DEAD


# last: it closes the busy group's member and restarts the broker
def test_deletions_survive_a_restart(broker, busy):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    a0, a1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    commit(admin, "gone", a0)
    commit(admin, "kept", a0, a1)
    assert admin.delete_groups(["gone"]) == {"gone": "OK"}
    assert admin.delete_group_offsets("kept", [a1]) == {a1: NoError}
    admin.close()
    busy.close()  # its group stays, Empty, with its offsets
    broker.restart()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listed = {g["group_id"] for g in admin.list_groups()}
        assert "gone" not in listed and {"kept", "busy"} <= listed
        assert admin.list_group_offsets({"kept": None})["kept"] == {
            a0: OffsetAndMetadata(3, "", -1)
        }
    finally:
        admin.close()
