"""ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments and DescribeQuorum through
real processes and kafka-python's KafkaAdminClient: a single `kbench broker`, its own controller
and the only replica of everything; and a controller with four brokers, where a partition moves
from brokers {1, 2, 3} to {2, 3, 4} while an acks=all producer writes to it, losing nothing, and
a preferred election gives leadership back to a broker that was killed and came back."""

import os
import threading

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    InvalidReplicationAssignmentError,
    KafkaError,
    NoReassignmentInProgressError,
    UnknownTopicOrPartitionError,
)
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from engine.errors import ELECTION_NOT_NEEDED, NONE, UNKNOWN_TOPIC_OR_PARTITION
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import CONTROLLER_ID, LocalCluster
from tests.cluster_support import (
    CLUSTER_SETTINGS,
    restart_stopped,
    wait_until,
)

PREFERRED = 0


def election_errors(response) -> dict[tuple[str, int], int]:
    return {
        (result.topic, p.partition_id): p.error_code
        for result in response.replica_election_results
        for p in result.partition_result
    }


# -- a single broker ------------------------------------------------------------------------------
def test_a_single_broker_is_the_only_replica_and_its_own_quorum(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic("solo", 2, 1)])
        node_id = admin.describe_cluster()["brokers"][0]["broker_id"]

        response = admin.elect_leaders(PREFERRED, {"solo": [0, 1]})  # not needed: no error
        assert election_errors(response) == {
            ("solo", 0): ELECTION_NOT_NEEDED,
            ("solo", 1): ELECTION_NOT_NEEDED,
        }
        response = admin.elect_leaders(1, {"solo": [0], "absent": [0]}, raise_errors=False)
        assert election_errors(response) == {
            ("solo", 0): ELECTION_NOT_NEEDED,
            ("absent", 0): UNKNOWN_TOPIC_OR_PARTITION,
        }
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.elect_leaders(PREFERRED, {"solo": [5]})

        results = admin.alter_partition_reassignments(
            {
                TopicPartition("solo", 0): [node_id],  # where it is
                TopicPartition("solo", 1): [node_id, node_id + 1],
                TopicPartition("absent", 0): [node_id],
            }
        )
        assert results == {
            TopicPartition("solo", 0): None,
            TopicPartition("solo", 1): InvalidReplicationAssignmentError,
            TopicPartition("absent", 0): UnknownTopicOrPartitionError,
        }
        cancel = admin.alter_partition_reassignments({TopicPartition("solo", 0): None})
        assert cancel == {TopicPartition("solo", 0): NoReassignmentInProgressError}
        assert admin.list_partition_reassignments() == {}
        assert admin.list_partition_reassignments({"solo": [0, 1]}) == {}

        quorum = admin.describe_metadata_quorum()
        [topic] = quorum["topics"]
        [partition] = topic["partitions"]
        assert topic["topic_name"] == "__cluster_metadata"
        assert (partition["error"], partition["leader_id"], partition["observers"]) == (
            None,
            node_id,
            [],
        )
        assert [v["replica_id"] for v in partition["current_voters"]] == [node_id]
        [node] = quorum["nodes"]
        assert node["node_id"] == node_id
        host, port = broker.bootstrap.rsplit(":", 1)
        assert [(lis["host"], lis["port"]) for lis in node["listeners"]] == [(host, int(port))]
    finally:
        admin.close()


# -- a cluster ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(str(tmp_path_factory.mktemp("c")), 4, CLUSTER_SETTINGS).start()
    yield running
    running.stop()


@pytest.fixture
def whole(cluster):
    """The cluster, with every broker running again after the test."""
    yield cluster
    restart_stopped(cluster)


@pytest.fixture
def admin(whole):
    """An admin client that reaches the cluster through any live broker."""
    clients: list[KafkaAdminClient] = []

    def connect() -> KafkaAdminClient:
        live = [b.bootstrap for b in whole.brokers.values() if b.process.poll() is None]
        client = KafkaAdminClient(bootstrap_servers=live, request_timeout_ms=15_000)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def partition_state(cluster: LocalCluster, topic: str, index: int = 0):
    for broker in cluster.brokers.values():
        if broker.process.poll() is None:
            with KafkaConnection(broker.bootstrap) as connection:
                response = connection.request(
                    MetadataRequest[12](
                        topics=[MetadataRequest[12].MetadataRequestTopic(name=topic)],
                        allow_auto_topic_creation=False,
                    ),
                    MetadataResponse,
                )
            [t] = response.topics
            assert t.error_code == 0, f"{topic}: error {t.error_code}"
            return next(p for p in t.partitions if p.partition_index == index)
    raise AssertionError("no broker is running")


class Writer(threading.Thread):
    """An acks=all, idempotent producer sending numbered records one at a time, each waited for:
    `acked` holds those the cluster acknowledged."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10_000,
            max_block_ms=10_000,
        )
        self.topic = topic
        self.acked: list[int] = []
        self.failures: list[Exception] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        sequence = 0
        while not self.stopping.is_set():
            try:
                self.producer.send(self.topic, str(sequence).encode(), partition=0).get(30)
                self.acked.append(sequence)
            except KafkaError as exc:
                self.failures.append(exc)
            sequence += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        self.producer.close(timeout=10)


def read_all(bootstrap: str, topic: str) -> list[int]:
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values: list[int] = []

        def done() -> bool:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(int(r.value) for r in records)
            return consumer.position(tp) >= end

        wait_until(done, what=f"reading {topic} to offset {end}")
        return values
    finally:
        consumer.close()


def test_a_partition_moves_to_other_brokers_under_acks_all_writes(whole, admin):
    cluster = whole
    tp = TopicPartition("moving", 0)
    client = admin()
    client.create_topics([NewTopic("moving", replica_assignments={0: [1, 2, 3]})])
    wait_until(lambda: partition_state(cluster, "moving").leader_id == 1, what="leader 1")
    writer = Writer(cluster.bootstrap, "moving")
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) >= 50, what="50 records acknowledged")
        assert client.alter_partition_reassignments({tp: [2, 3, 4]}) == {tp: None}
        # KIP-455: the target first, then the replica leaving, until broker 4 is in sync
        ongoing = client.list_partition_reassignments()
        if ongoing:  # broker 4 may already have caught up and completed it
            assert ongoing[tp]["adding_replicas"] == [4]
            assert ongoing[tp]["removing_replicas"] == [1]
            assert ongoing[tp]["replicas"] == [2, 3, 4, 1]

        wait_until(
            lambda: client.list_partition_reassignments() == {}, what="the reassignment done"
        )
        state = wait_until(
            lambda: (
                (p := partition_state(cluster, "moving")).replica_nodes == [2, 3, 4]
                and p.leader_id in (2, 3, 4)
                and p
            ),
            what="metadata showing replicas [2, 3, 4]",
        )
        assert sorted(state.isr_nodes) == [2, 3, 4]
        moved_at = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= moved_at + 50, what="writes to the new leader")
    finally:
        writer.stop()
    assert writer.acked, writer.failures
    # broker 1 is no replica any more: its copy is deleted
    wait_until(
        lambda: not os.path.exists(os.path.join(cluster.brokers[1].data_dir, "moving-0")),
        what="broker 1's replica deleted",
    )
    assert os.path.isdir(os.path.join(cluster.brokers[4].data_dir, "moving-0"))
    read = read_all(cluster.bootstrap, "moving")
    assert set(writer.acked) <= set(read), sorted(set(writer.acked) - set(read))[:10]
    assert len(read) == len(set(read))  # idempotent: no record twice
    assert read == sorted(read)  # in the order they were sent
    # nothing left to cancel
    assert client.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}


def test_a_preferred_election_gives_leadership_back_to_a_returning_broker(whole, admin):
    cluster = whole
    admin().create_topics([NewTopic("preferred", replica_assignments={0: [1, 2, 3]})])
    wait_until(lambda: partition_state(cluster, "preferred").leader_id == 1, what="leader 1")
    cluster.kill(1)
    wait_until(
        lambda: partition_state(cluster, "preferred").leader_id == 2, what="leader 2 after 1 died"
    )
    cluster.restart(1)
    cluster.wait_for_brokers(set(cluster.brokers))
    wait_until(
        lambda: 1 in partition_state(cluster, "preferred").isr_nodes, what="broker 1 in sync"
    )
    assert partition_state(cluster, "preferred").leader_id == 2  # it does not lead by itself

    client = admin()
    response = client.elect_leaders(PREFERRED, {"preferred": [0]})
    assert election_errors(response) == {("preferred", 0): NONE}
    state = wait_until(
        lambda: (p := partition_state(cluster, "preferred")).leader_id == 1 and p,
        what="leader 1 again",
    )
    assert sorted(state.isr_nodes) == [1, 2, 3]
    response = client.elect_leaders(PREFERRED, {"preferred": [0]})
    assert election_errors(response) == {("preferred", 0): ELECTION_NOT_NEEDED}
    with pytest.raises(UnknownTopicOrPartitionError):
        client.elect_leaders(PREFERRED, {"preferred": [3]})


def test_the_quorum_is_the_controller_with_the_brokers_as_observers(whole, admin):
    quorum = admin().describe_metadata_quorum()
    [topic] = quorum["topics"]
    [partition] = topic["partitions"]
    assert (topic["topic_name"], partition["error"], partition["leader_id"]) == (
        "__cluster_metadata",
        None,
        CONTROLLER_ID,
    )
    assert partition["leader_epoch"] >= 1
    [voter] = partition["current_voters"]
    assert (voter["replica_id"], voter["log_end_offset"]) == (
        CONTROLLER_ID,
        partition["high_watermark"],
    )
    observers = {o["replica_id"]: o for o in partition["observers"]}
    assert set(observers) == {1, 2, 3, 4}
    for observer in observers.values():
        assert 0 < observer["log_end_offset"] <= partition["high_watermark"]
        assert observer["last_fetch_timestamp"] > 0
    [node] = quorum["nodes"]
    host, port = cluster_controller_address(whole)
    assert node["node_id"] == CONTROLLER_ID
    assert [(lis["name"], lis["host"], lis["port"]) for lis in node["listeners"]] == [
        ("CONTROLLER", host, port)
    ]


def cluster_controller_address(cluster: LocalCluster) -> tuple[str, int]:
    host, port = cluster.controller.bootstrap.rsplit(":", 1)
    return host, int(port)
