"""CreateTopics and CreatePartitions with explicit replica assignments and validate_only, through
kafka-python's and confluent-kafka's admin clients, on a single `kbench broker` and on a
3-broker cluster: replicas land where asked, and a wrong assignment is Kafka's
INVALID_REPLICA_ASSIGNMENT (a count not above the current one INVALID_PARTITIONS)."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions as KafkaNewPartitions
from kafka.admin import NewTopic as KafkaNewTopic
from kafka.errors import InvalidPartitionsError, InvalidReplicationAssignmentError

from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS
from tests.conftest import broker_process


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("assign") / "data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(str(tmp_path_factory.mktemp("c")), 3, CLUSTER_SETTINGS).start()
    yield running
    running.stop()


def _replicas(admin: AdminClient, topic: str) -> dict[int, list[int]]:
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    return {index: list(p.replicas) for index, p in partitions.items()}


def _create(admin: AdminClient, topic: NewTopic, validate_only: bool = False) -> None:
    admin.create_topics([topic], validate_only=validate_only)[topic.topic].result(timeout=30)


def _add(admin: AdminClient, partitions: NewPartitions) -> None:
    admin.create_partitions([partitions])[partitions.topic].result(timeout=30)


def test_a_single_broker_takes_assignments_that_name_it(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    _create(admin, NewTopic("checked", 2, replica_assignment=[[0], [0]]), validate_only=True)
    assert "checked" not in admin.list_topics(timeout=30).topics
    _create(admin, NewTopic("assigned", 2, replica_assignment=[[0], [0]]))
    with pytest.raises(KafkaException, match="INVALID_REPLICA_ASSIGNMENT"):
        _create(admin, NewTopic("elsewhere", 2, replica_assignment=[[0], [1]]))
    _add(admin, NewPartitions("assigned", 3, replica_assignment=[[0]]))
    assert _replicas(admin, "assigned") == {0: [0], 1: [0], 2: [0]}
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        with pytest.raises(InvalidReplicationAssignmentError):  # 2 new partitions, 1 assignment
            client.create_partitions({"assigned": KafkaNewPartitions(5, [[0]])})
        with pytest.raises(InvalidPartitionsError):
            client.create_partitions({"assigned": KafkaNewPartitions(3, [])})
        with pytest.raises(InvalidPartitionsError):  # a count as well as an assignment
            client.create_topics([KafkaNewTopic("counted", 1, replica_assignments={0: [0]})])
    finally:
        client.close()


def test_a_cluster_places_replicas_as_assigned(cluster):
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        topic = KafkaNewTopic("placed", replica_assignments={0: [1, 2], 1: [2, 3]})
        client.create_topics([topic], validate_only=True)
        client.create_topics([topic])
    finally:
        client.close()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    _add(admin, NewPartitions("placed", 3, replica_assignment=[[3, 1]]))
    assert _replicas(admin, "placed") == {0: [1, 2], 1: [2, 3], 2: [3, 1]}
    for wrong in ([[1, 1]], [[1, 9]], [[1]]):  # a broker twice, unknown, another count
        with pytest.raises(KafkaException, match="INVALID_REPLICA_ASSIGNMENT"):
            _add(admin, NewPartitions("placed", 4, replica_assignment=wrong))
    with pytest.raises(KafkaException, match="INVALID_REPLICA_ASSIGNMENT"):
        _create(admin, NewTopic("unplaced", 2, replica_assignment=[[1, 2], [3]]))
