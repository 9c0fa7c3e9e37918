"""DescribeCluster, DescribeLogDirs, DescribeTopicPartitions and AlterReplicaLogDirs on a single
`kbench broker` and on a 3-broker cluster, through real clients (kafka-python's and
confluent-kafka's admin clients) and raw requests for what the clients do not send."""

import json
import os
import urllib.request
import uuid

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    InvalidRequestError,
    InvalidTopicError,
    LogDirNotFoundError,
    MismatchedEndpointTypeError,
    NoError,
    ReplicaNotAvailableError,
    UnknownTopicOrPartitionError,
    UnsupportedEndpointTypeError,
)
from kafka.protocol.admin.cluster import (
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirsResponse,
    DescribeClusterRequest,
    DescribeClusterResponse,
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)
from kafka.protocol.admin.topics import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.structs import TopicPartitionReplica

from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until

CLUSTER_SETTINGS = {**CLUSTER_SETTINGS, "min.insync.replicas": "1"}
RACKS = {1: "rack-a", 2: "rack-b", 3: "rack-c"}
# what Kafka without an authorizer grants on the cluster (AclEntry.supportedOperations)
CLUSTER_OPERATIONS = {
    "CREATE",
    "ALTER",
    "DESCRIBE",
    "CLUSTER_ACTION",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
}
# ... and on a topic: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS
TOPIC_OPERATIONS_BITS = sum(1 << bit for bit in (3, 4, 5, 6, 7, 8, 10, 11))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(
        str(tmp_path_factory.mktemp("c")), 3, CLUSTER_SETTINGS, racks=[RACKS[n] for n in (1, 2, 3)]
    ).start()
    yield running
    running.stop()


# -- helpers --------------------------------------------------------------------------------------
def send(address: str, request, response_class):
    with KafkaConnection(address) as connection:
        return connection.request(request, response_class)


def metadata(address: str, topics: list[str] | None = None) -> MetadataResponse:
    cls = MetadataRequest[12]
    return send(
        address,
        cls(
            topics=None if topics is None else [cls.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=False,
        ),
        MetadataResponse,
    )


def describe_cluster(address: str, version: int = 1, **fields) -> DescribeClusterResponse:
    fields.setdefault("include_cluster_authorized_operations", False)
    return send(address, DescribeClusterRequest[version](**fields), DescribeClusterResponse)


def describe_log_dirs(address: str, version: int = 4, topics=None) -> DescribeLogDirsResponse:
    cls = DescribeLogDirsRequest[version]
    wanted = (
        None
        if topics is None
        else [cls.DescribableLogDirTopic(topic=t, partitions=ps) for t, ps in topics.items()]
    )
    return send(address, cls(topics=wanted), DescribeLogDirsResponse)


def describe_topic_partitions(
    address: str, topics: list[str], limit: int = 2000, cursor: tuple[str, int] | None = None
) -> DescribeTopicPartitionsResponse:
    cls = DescribeTopicPartitionsRequest[0]
    return send(
        address,
        cls(
            topics=[cls.TopicRequest(name=t) for t in topics],
            response_partition_limit=limit,
            cursor=None
            if cursor is None
            else cls.Cursor(topic_name=cursor[0], partition_index=cursor[1]),
        ),
        DescribeTopicPartitionsResponse,
    )


def alter_replica_log_dirs(
    address: str, moves: dict[str, dict[str, list[int]]], version: int = 2
) -> dict[tuple[str, int], int]:
    """path -> {topic: partitions} sent; (topic, partition) -> error code answered."""
    cls = AlterReplicaLogDirsRequest[version]
    request = cls(
        dirs=[
            cls.AlterReplicaLogDir(
                path=path,
                topics=[
                    cls.AlterReplicaLogDir.AlterReplicaLogDirTopic(name=t, partitions=ps)
                    for t, ps in topics.items()
                ],
            )
            for path, topics in moves.items()
        ]
    )
    response = send(address, request, AlterReplicaLogDirsResponse)
    return {
        (t.topic_name, p.partition_index): p.error_code
        for t in response.results
        for p in t.partitions
    }


def api_requests(address: str, api: str) -> int:
    with urllib.request.urlopen(f"http://{address}/stats") as f:
        return json.load(f)["apis"].get(api, {}).get("requests", 0)


def disk_bytes(data_dir: str, topic: str, partition: int) -> int:
    """The bytes of the replica's .log files (its segments), as `du` of them would say."""
    directory = os.path.join(data_dir, f"{topic}-{partition}")
    return sum(
        os.path.getsize(os.path.join(directory, name))
        for name in os.listdir(directory)
        if name.endswith(".log")
    )


def create_topic(bootstrap: str, name: str, partitions: int, replication: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, replication)])
    finally:
        admin.close()


def create_replicated(cluster: LocalCluster, name: str, partitions: int, replication: int) -> None:
    """Create the topic and wait until every broker's metadata shows every ISR full."""
    create_topic(cluster.bootstrap, name, partitions, replication)

    def settled() -> bool:
        for broker in cluster.brokers.values():
            [topic] = metadata(broker.bootstrap, [name]).topics
            if topic.error_code or len(topic.partitions) != partitions:
                return False
            if any(len(p.isr_nodes) != replication for p in topic.partitions):
                return False
        return True

    wait_until(settled, what=f"{name}'s ISR filling on every broker")


def produce(bootstrap: str, topic: str, counts: dict[int, int], acks: int | str = "all") -> None:
    """counts[p] records of different sizes into partition p."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, linger_ms=5)
    try:
        for partition, count in counts.items():
            for i in range(count):
                producer.send(topic, b"v" * (10 + 7 * i), key=b"%d" % i, partition=partition)
        producer.flush()
    finally:
        producer.close()


def log_dir_listing(result) -> dict[tuple[str, int], tuple[int, int, bool]]:
    """(topic, partition) -> (size, offset lag, is future) of one DescribeLogDirs result."""
    return {
        (t.name, p.partition_index): (p.partition_size, p.offset_lag, p.is_future_key)
        for t in result.topics
        for p in t.partitions
    }


def confluent_uuid(value) -> uuid.UUID:
    """confluent-kafka's Uuid (two signed 64-bit halves) as a uuid.UUID."""
    mask = (1 << 64) - 1
    return uuid.UUID(
        int=(value.get_most_significant_bits() & mask) << 64
        | (value.get_least_significant_bits() & mask)
    )


def partition_state(p) -> tuple:
    """What DescribeTopicPartitions and Metadata both say of a partition."""
    return (
        p.partition_index,
        p.leader_id,
        p.leader_epoch,
        list(p.replica_nodes),
        list(p.isr_nodes),
        list(p.offline_replicas),
    )


# -- a single broker ------------------------------------------------------------------------------
def test_describe_cluster_on_a_single_broker(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        before = api_requests(broker.bootstrap, "DESCRIBE_CLUSTER")
        described = admin.describe_cluster()
        assert api_requests(broker.bootstrap, "DESCRIBE_CLUSTER") == before + 1  # no fallback
    finally:
        admin.close()
    meta = metadata(broker.bootstrap, [])
    [node] = meta.brokers
    assert described["cluster_id"] == meta.cluster_id
    assert described["controller_id"] == node.node_id == meta.controller_id
    assert described["brokers"] == [
        {"broker_id": node.node_id, "host": "127.0.0.1", "port": broker.port, "rack": None}
    ]
    # kafka-python asks for the cluster's authorized operations: all of them (no authorizer)
    assert set(described["authorized_operations"]) == CLUSTER_OPERATIONS

    for version in (0, 1):
        response = describe_cluster(broker.bootstrap, version)
        assert response.error_code == 0
        assert response.cluster_id == meta.cluster_id
        assert response.controller_id == node.node_id
        assert [(b.broker_id, b.port) for b in response.brokers] == [(node.node_id, broker.port)]
        # not asked for: the schema's default, -2147483648, which kafka-python reads as None
        assert response.authorized_operations is None
    assert describe_cluster(broker.bootstrap, 1).endpoint_type == 1  # BROKER


def test_describe_cluster_refuses_other_endpoint_types(broker):
    to_controllers = describe_cluster(broker.bootstrap, 1, endpoint_type=2)
    assert to_controllers.error_code == MismatchedEndpointTypeError.errno
    assert to_controllers.brokers == []
    assert "CONTROLLER" in to_controllers.error_message
    unknown = describe_cluster(broker.bootstrap, 1, endpoint_type=7)
    assert unknown.error_code == UnsupportedEndpointTypeError.errno
    assert unknown.error_message == "Unsupported endpoint type 7"


def test_describe_log_dirs_on_a_single_broker(broker):
    create_topic(broker.bootstrap, "sized", 3, 1)
    produce(broker.bootstrap, "sized", {0: 5, 1: 40, 2: 0}, acks=1)
    data_dir = os.path.abspath(broker.data_dir)

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        [answer] = admin.describe_log_dirs()
    finally:
        admin.close()
    [result] = answer["log_dirs"]
    assert result["error_code"] == 0
    assert result["log_dir"] == data_dir
    sizes = {
        (t["name"], p["partition_index"]): p["partition_size"]
        for t in result["topics"]
        for p in t["partitions"]
    }
    local = {
        (name[: name.rindex("-")], int(name[name.rindex("-") + 1 :]))
        for name in os.listdir(data_dir)
        if os.path.isdir(os.path.join(data_dir, name))
    }
    assert set(sizes) == local  # every replica here, __consumer_offsets if it was made
    for (topic, partition), size in sizes.items():
        assert size == disk_bytes(data_dir, topic, partition)
    assert sizes[("sized", 1)] > sizes[("sized", 0)] > sizes[("sized", 2)] == 0

    for version in (1, 2, 3, 4):
        response = describe_log_dirs(broker.bootstrap, version)  # topics null: all of them
        [everything] = response.results
        assert everything.error_code == 0
        assert everything.log_dir == data_dir
        listing = log_dir_listing(everything)
        assert {tp: size for tp, (size, _, _) in listing.items()} == sizes
        assert {(lag, future) for _, lag, future in listing.values()} == {(0, False)}
    stat = os.statvfs(data_dir)
    [v4] = describe_log_dirs(broker.bootstrap, 4).results
    assert v4.total_bytes == stat.f_blocks * stat.f_frsize
    assert 0 < v4.usable_bytes <= v4.total_bytes

    # only the replicas asked for that are here; a partition or topic it lacks is left out
    [some] = describe_log_dirs(broker.bootstrap, 4, {"sized": [0, 2, 99], "absent": [0]}).results
    assert log_dir_listing(some) == {
        ("sized", 0): (sizes[("sized", 0)], 0, False),
        ("sized", 2): (0, 0, False),
    }
    [none] = describe_log_dirs(broker.bootstrap, 4, {}).results
    assert none.error_code == 0 and none.topics == []


def test_alter_replica_log_dirs_on_a_single_broker(broker, tmp_path):
    create_topic(broker.bootstrap, "kept", 2, 1)
    produce(broker.bootstrap, "kept", {0: 3, 1: 3}, acks=1)
    own = os.path.abspath(broker.data_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = log_dir_listing(describe_log_dirs(broker.bootstrap).results[0])
    long_name = "l" * 240

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        answered = admin.alter_replica_log_dirs(
            {
                TopicPartitionReplica("kept", 0, 0): own,
                TopicPartitionReplica("kept", 1, 0): str(elsewhere),
                TopicPartitionReplica("unknown", 0, 0): own,
                TopicPartitionReplica(long_name, 0, 0): own,
            }
        )
    finally:
        admin.close()
    assert answered == {
        TopicPartitionReplica("kept", 0, 0): NoError,  # already there: nothing to move
        TopicPartitionReplica("kept", 1, 0): LogDirNotFoundError,  # not a log.dirs entry
        TopicPartitionReplica("unknown", 0, 0): UnknownTopicOrPartitionError,
        TopicPartitionReplica(long_name, 0, 0): InvalidTopicError,  # no "-future" dir name
    }
    for version in (1, 2):
        assert alter_replica_log_dirs(
            broker.bootstrap,
            {own: {"kept": [1, 7]}, own + "/": {"kept": [0]}, "relative": {"other": [0]}},
            version,
        ) == {
            ("kept", 1): NoError.errno,
            ("kept", 7): UnknownTopicOrPartitionError.errno,
            ("kept", 0): LogDirNotFoundError.errno,  # the path as sent, not normalised
            ("other", 0): LogDirNotFoundError.errno,
        }
    # nothing moved
    assert log_dir_listing(describe_log_dirs(broker.bootstrap).results[0]) == before
    assert os.listdir(elsewhere) == []


def test_describe_topic_partitions_pages_through_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics(
            [NewTopic("alpha", 5, 1), NewTopic("beta", 3, 1), NewTopic("gamma", 1, 1)]
        )
        pages = []
        cursor = None
        while True:
            page = admin.describe_topic_partitions(
                ["gamma", "missing", "beta", "alpha"], response_partition_limit=3, cursor=cursor
            )
            pages.append(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        admin.close()
    assert [p["next_cursor"] for p in pages] == [
        {"topic_name": "alpha", "partition_index": 3},
        {"topic_name": "beta", "partition_index": 1},
        {"topic_name": "missing", "partition_index": 0},  # the limit reached at a topic's start
        None,
    ]
    seen = [
        (t["name"], p["partition_index"])
        for page in pages
        for t in page["topics"]
        for p in t["partitions"]
    ]
    assert seen == [("alpha", i) for i in range(5)] + [("beta", i) for i in range(3)] + [
        ("gamma", 0)
    ]
    assert all(sum(len(t["partitions"]) for t in page["topics"]) <= 3 for page in pages)
    [missing] = pages[-1]["topics"]
    assert missing["name"] == "missing"
    assert missing["error_code"] == UnknownTopicOrPartitionError.errno
    assert missing["topic_id"] is None  # the zero uuid, as kafka-python reads it
    assert missing["partitions"] == []

    meta = {t.name: t for t in metadata(broker.bootstrap, ["alpha", "beta", "gamma"]).topics}
    for page in pages[:-1]:
        for topic in page["topics"]:
            assert topic["error_code"] == 0
            assert topic["topic_id"] == meta[topic["name"]].topic_id
            assert topic["is_internal"] is False
            assert topic["topic_authorized_operations"] == TOPIC_OPERATIONS_BITS
            by_index = {p.partition_index: p for p in meta[topic["name"]].partitions}
            for p in topic["partitions"]:
                m = by_index[p["partition_index"]]
                assert p["leader_id"] == m.leader_id == 0
                assert p["leader_epoch"] == m.leader_epoch
                assert p["replica_nodes"] == m.replica_nodes == [0]
                assert p["isr_nodes"] == m.isr_nodes == [0]
                assert p["offline_replicas"] == []
                assert p["eligible_leader_replicas"] is None  # kafka-python: [] read as None
                assert p["last_known_elr"] is None

    # no names: every topic there is, by name, unknown ones never
    everything = describe_topic_partitions(broker.bootstrap, [])
    assert [t.name for t in everything.topics] == sorted(
        t.name for t in metadata(broker.bootstrap).topics
    )
    assert all(t.error_code == 0 for t in everything.topics)
    [p] = next(t for t in everything.topics if t.name == "gamma").partitions
    assert p.eligible_leader_replicas == [] and p.last_known_elr == []
    # a limit below 1 is 1; the cursor starts inside a topic
    one = describe_topic_partitions(broker.bootstrap, ["beta"], limit=0, cursor=("beta", 2))
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in one.topics] == [
        ("beta", [2])
    ]
    assert one.next_cursor is None
    # an illegal name is INVALID_TOPIC_EXCEPTION, not unknown
    [bad] = describe_topic_partitions(broker.bootstrap, ["no/slashes"]).topics
    assert bad.error_code == InvalidTopicError.errno


def test_describe_topic_partitions_refuses_a_bad_cursor(broker):
    create_topic(broker.bootstrap, "cursored", 2, 1)
    # the cursor's topic must be among those asked for
    outside = describe_topic_partitions(broker.bootstrap, ["cursored", "zz"], cursor=("other", 0))
    assert [(t.name, t.error_code, t.partitions) for t in outside.topics] == [
        ("cursored", InvalidRequestError.errno, []),
        ("zz", InvalidRequestError.errno, []),
    ]
    negative = describe_topic_partitions(broker.bootstrap, ["cursored"], cursor=("cursored", -1))
    assert [t.error_code for t in negative.topics] == [InvalidRequestError.errno]


# -- a cluster ------------------------------------------------------------------------------------
def test_describe_cluster_lists_every_live_broker_with_its_rack(cluster):
    ports = {node_id: broker.port for node_id, broker in cluster.brokers.items()}
    cluster_ids = set()
    for broker in cluster.brokers.values():
        response = describe_cluster(broker.bootstrap)
        meta = metadata(broker.bootstrap, [])
        assert response.error_code == 0
        assert {b.broker_id: (b.port, b.rack) for b in response.brokers} == {
            n: (ports[n], RACKS[n]) for n in (1, 2, 3)
        }
        assert response.controller_id in ports  # a live broker, as Metadata names it
        assert response.controller_id == meta.controller_id
        assert response.cluster_id == meta.cluster_id
        cluster_ids.add(response.cluster_id)
    assert len(cluster_ids) == 1

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        described = admin.describe_cluster()
    finally:
        admin.close()
    assert described["cluster_id"] in cluster_ids
    assert {b["broker_id"]: b["rack"] for b in described["brokers"]} == RACKS
    assert set(described["authorized_operations"]) == CLUSTER_OPERATIONS

    # confluent-kafka (librdkafka) describes the cluster with Metadata: the same brokers
    confluent = AdminClient({"bootstrap.servers": cluster.bootstrap})
    seen = confluent.describe_cluster(request_timeout=10).result(timeout=15)
    assert seen.cluster_id in cluster_ids
    assert {n.id: (n.port, n.rack) for n in seen.nodes} == {
        n: (ports[n], RACKS[n]) for n in (1, 2, 3)
    }
    assert seen.controller.id in ports


def test_describe_log_dirs_lists_the_replicas_placed_on_each_broker(cluster):
    create_replicated(cluster, "placed", 6, 2)
    produce(cluster.bootstrap, "placed", {p: 3 + 9 * p for p in range(6)})

    def placement(node_id: int) -> set[tuple[str, int]]:
        return {
            (t.name, p.partition_index)
            for t in metadata(cluster.brokers[node_id].bootstrap).topics
            for p in t.partitions
            if node_id in p.replica_nodes
        }

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        sizes_by_partition: dict[tuple[str, int], set[int]] = {}
        for node_id, broker in cluster.brokers.items():
            data_dir = os.path.abspath(broker.data_dir)
            expected = placement(node_id)
            assert 0 < len({tp for tp in expected if tp[0] == "placed"}) < 6
            # what the broker holds catches up with the metadata it learns placements from
            wait_until(
                lambda b=broker, e=expected: (
                    set(log_dir_listing(describe_log_dirs(b.bootstrap).results[0])) == e
                ),
                what=f"broker {node_id}'s replicas matching its placement",
            )
            [result] = describe_log_dirs(broker.bootstrap).results
            assert result.log_dir == data_dir
            listing = log_dir_listing(result)
            [answer] = admin.describe_log_dirs(brokers=[node_id])
            [client_view] = answer["log_dirs"]
            assert client_view["log_dir"] == data_dir
            assert {
                (t["name"], p["partition_index"]): p["partition_size"]
                for t in client_view["topics"]
                for p in t["partitions"]
            } == {tp: size for tp, (size, _, _) in listing.items()}
            for (topic, partition), (size, lag, future) in listing.items():
                assert size == disk_bytes(data_dir, topic, partition)
                assert lag == 0  # Kafka's max(0, hw - leo): never positive on a replica
                assert future is False
                sizes_by_partition.setdefault((topic, partition), set()).add(size)
    finally:
        admin.close()
    # replicated byte for byte: every replica of a partition is as large as the others
    placed = {tp: s for tp, s in sizes_by_partition.items() if tp[0] == "placed"}
    assert sorted(placed) == [("placed", p) for p in range(6)]
    assert all(len(s) == 1 for s in placed.values())
    assert len({next(iter(s)) for s in placed.values()}) == 6  # and the partitions differ


def test_describe_topic_partitions_matches_metadata(cluster):
    create_replicated(cluster, "described", 4, 3)
    confluent = AdminClient({"bootstrap.servers": cluster.bootstrap})
    [future] = confluent.describe_topics(TopicCollection(["described"])).values()
    description = future.result(timeout=15)
    for broker in cluster.brokers.values():
        response = describe_topic_partitions(broker.bootstrap, ["described", "nowhere"])
        [meta] = metadata(broker.bootstrap, ["described"]).topics
        described, nowhere = response.topics
        assert response.next_cursor is None
        assert (described.name, described.error_code) == ("described", 0)
        assert described.topic_id == meta.topic_id
        assert described.is_internal is False
        assert [partition_state(p) for p in described.partitions] == [
            partition_state(p) for p in sorted(meta.partitions, key=lambda p: p.partition_index)
        ]
        assert all(
            p.eligible_leader_replicas == [] and p.last_known_elr == []
            for p in described.partitions
        )
        assert {p.leader_id for p in described.partitions} <= {1, 2, 3}
        assert (nowhere.name, nowhere.error_code, nowhere.topic_id, nowhere.partitions) == (
            "nowhere",
            UnknownTopicOrPartitionError.errno,
            None,  # the zero uuid, as kafka-python reads it
            [],
        )
        # as confluent-kafka sees the topic (librdkafka asks Metadata)
        assert confluent_uuid(description.topic_id) == described.topic_id
        assert [
            (p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr])
            for p in description.partitions
        ] == [
            (p.partition_index, p.leader_id, list(p.replica_nodes), list(p.isr_nodes))
            for p in described.partitions
        ]


def test_alter_replica_log_dirs_in_a_cluster(cluster):
    create_replicated(cluster, "moved", 1, 2)
    [meta] = metadata(cluster.bootstrap.split(",")[0], ["moved"]).topics
    [partition] = meta.partitions
    holders = list(partition.replica_nodes)
    [other] = [n for n in cluster.brokers if n not in holders]
    dirs = {n: os.path.abspath(b.data_dir) for n, b in cluster.brokers.items()}
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        answered = admin.alter_replica_log_dirs(
            {
                TopicPartitionReplica("moved", 0, holders[0]): dirs[holders[0]],
                # another broker's directory is not this broker's: not found
                TopicPartitionReplica("moved", 0, holders[1]): dirs[other],
                # the partition is in the cluster, but no replica of it here
                TopicPartitionReplica("moved", 0, other): dirs[other],
                TopicPartitionReplica("moved", 5, other): dirs[other],
            }
        )
    finally:
        admin.close()
    assert answered == {
        TopicPartitionReplica("moved", 0, holders[0]): NoError,
        TopicPartitionReplica("moved", 0, holders[1]): LogDirNotFoundError,
        TopicPartitionReplica("moved", 0, other): ReplicaNotAvailableError,
        TopicPartitionReplica("moved", 5, other): UnknownTopicOrPartitionError,
    }
    for node_id in holders:
        [result] = describe_log_dirs(cluster.brokers[node_id].bootstrap, 4, {"moved": [0]}).results
        assert set(log_dir_listing(result)) == {("moved", 0)}
    [result] = describe_log_dirs(cluster.brokers[other].bootstrap, 4, {"moved": [0]}).results
    assert result.topics == []


def test_a_killed_broker_leaves_describe_cluster_and_returns(cluster):
    create_replicated(cluster, "survivor", 3, 3)
    watcher = cluster.brokers[1].bootstrap

    def alive() -> set[int]:
        return {b.broker_id for b in describe_cluster(watcher).brokers}

    cluster.kill(3)
    try:
        wait_until(lambda: alive() == {1, 2}, what="broker 3 being fenced")
        response = describe_cluster(watcher)
        assert response.controller_id in (1, 2)
        assert {b.broker_id: b.rack for b in response.brokers} == {1: RACKS[1], 2: RACKS[2]}

        def offline_in_both() -> bool:
            [meta] = metadata(watcher, ["survivor"]).topics
            [described] = describe_topic_partitions(watcher, ["survivor"]).topics
            return [partition_state(p) for p in described.partitions] == [
                partition_state(p) for p in sorted(meta.partitions, key=lambda p: p.partition_index)
            ] and all(list(p.offline_replicas) == [3] for p in described.partitions)

        wait_until(offline_in_both, what="broker 3's replicas shown offline")
        [described] = describe_topic_partitions(watcher, ["survivor"]).topics
        assert all(p.leader_id in (1, 2) for p in described.partitions)
        assert all(3 in p.replica_nodes for p in described.partitions)
    finally:
        cluster.restart(3)
    wait_until(lambda: alive() == {1, 2, 3}, what="broker 3 rejoining")
    rejoined = {b.broker_id: (b.port, b.rack) for b in describe_cluster(watcher).brokers}
    assert rejoined[3] == (cluster.brokers[3].port, RACKS[3])
    cluster.wait_for_brokers({1, 2, 3})


def test_every_broker_answers_the_four_apis_itself(cluster):
    """Answered by the broker asked, not forwarded to the controller: its stats count them."""
    apis = (
        "DESCRIBE_CLUSTER",
        "DESCRIBE_LOG_DIRS",
        "DESCRIBE_TOPIC_PARTITIONS",
        "ALTER_REPLICA_LOG_DIRS",
    )
    for broker in cluster.brokers.values():
        counts = {api: api_requests(broker.bootstrap, api) for api in apis}
        assert describe_cluster(broker.bootstrap).error_code == 0
        assert describe_log_dirs(broker.bootstrap).results[0].error_code == 0
        assert describe_topic_partitions(broker.bootstrap, []).topics
        own = os.path.abspath(broker.data_dir)
        assert alter_replica_log_dirs(broker.bootstrap, {own: {"nothing": [0]}}) == {
            ("nothing", 0): UnknownTopicOrPartitionError.errno
        }
        assert {api: api_requests(broker.bootstrap, api) for api in counts} == {
            api: n + 1 for api, n in counts.items()
        }
