"""A replicated kbench cluster (a controller and three brokers, each a process) with real clients:
replication byte for byte, acks=all under min.insync.replicas, leader failover with an idempotent
producer, and a broker that comes back truncating and rejoining the ISR."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import KafkaError as ConfluentError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, KafkaTimeoutError, NotEnoughReplicasError
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import (
    CLUSTER_SETTINGS,
    restart_stopped,
    wait_until,
)
from tests.conftest import KBENCH


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(str(tmp_path_factory.mktemp("cluster")), 3, CLUSTER_SETTINGS).start()
    yield running
    running.stop()


@pytest.fixture
def whole(cluster):
    """The cluster, with every broker running again after the test."""
    yield cluster
    restart_stopped(cluster)


def metadata(cluster: LocalCluster, topic: str) -> MetadataResponse:
    for broker in cluster.brokers.values():
        if broker.process.poll() is None:
            with KafkaConnection(broker.bootstrap) as connection:
                return connection.request(
                    MetadataRequest[12](
                        topics=[MetadataRequest[12].MetadataRequestTopic(name=topic)],
                        allow_auto_topic_creation=False,
                    ),
                    MetadataResponse,
                )
    raise AssertionError("no broker is running")


def partition_state(cluster: LocalCluster, topic: str, index: int = 0):
    [t] = metadata(cluster, topic).topics
    assert t.error_code == 0, f"{topic}: error {t.error_code}"
    return next(p for p in t.partitions if p.partition_index == index)


def create_topic(cluster: LocalCluster, name: str, partitions: int = 1, **configs: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 3, topic_configs=configs)])
    finally:
        admin.close()
    wait_until(
        lambda: all(
            len(p.isr_nodes) == 3 for t in metadata(cluster, name).topics for p in t.partitions
        ),
        what=f"{name}'s ISR filling",
    )


def segment_bytes(directory: str) -> bytes:
    """The partition's records, all segments in order."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".log"))
    data = b""
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            data += f.read()
    return data


def replica_dir(cluster: LocalCluster, node_id: int, topic: str, index: int = 0) -> str:
    return os.path.join(cluster.brokers[node_id].data_dir, f"{topic}-{index}")


def test_three_brokers_replicate_byte_for_byte(whole):
    cluster = whole
    create_topic(cluster, "replicated")
    state = partition_state(cluster, "replicated")
    assert sorted(state.replica_nodes) == [1, 2, 3]
    assert sorted(state.isr_nodes) == [1, 2, 3]
    assert state.leader_id in (1, 2, 3)
    assert sorted(b.node_id for b in metadata(cluster, "replicated").brokers) == [1, 2, 3]

    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", linger_ms=5)
    for i in range(500):
        producer.send("replicated", f"record {i}".encode())
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        "replicated",
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    assert [m.value for m in consumer] == [f"record {i}".encode() for i in range(500)]
    consumer.close()

    def caught_up() -> dict | None:  # the leader's view, as `kbench broker-stats` shows it
        view = broker_stats(cluster, state.leader_id)["partitions"]["replicated-0"]
        return view if all(f["lag"] == 0 for f in view["followers"].values()) else None

    view = wait_until(caught_up, what="the followers catching up")
    assert (view["role"], sorted(view["isr"]), view["log_end_offset"]) == ("leader", [1, 2, 3], 500)
    assert sorted(view["followers"]) == sorted(str(n) for n in (1, 2, 3) if n != state.leader_id)

    leader = replica_dir(cluster, state.leader_id, "replicated")
    expected = segment_bytes(leader)
    for node_id in (1, 2, 3):
        wait_until(
            lambda n=node_id: segment_bytes(replica_dir(cluster, n, "replicated")) == expected,
            what=f"broker {node_id}'s copy matching the leader's",
        )


def test_acks_all_needs_min_insync_replicas(whole):
    cluster = whole
    create_topic(cluster, "durable")
    state = partition_state(cluster, "durable")
    followers = [n for n in state.replica_nodes if n != state.leader_id]

    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", retries=0, request_timeout_ms=5000
    )
    cluster.kill(followers[0])  # one down: two in sync, min.insync.replicas=2 still holds
    wait_until(
        lambda: len(partition_state(cluster, "durable").isr_nodes) == 2, what="the ISR shrinking"
    )
    producer.send("durable", b"with two").get(timeout=30)

    cluster.kill(followers[1])  # two down: the leader alone may not acknowledge acks=all
    wait_until(
        lambda: partition_state(cluster, "durable").isr_nodes == [state.leader_id],
        what="the ISR shrinking to the leader",
    )
    with pytest.raises((NotEnoughReplicasError, KafkaTimeoutError)):
        producer.send("durable", b"with one").get(timeout=30)
    producer.close()

    for node_id in followers:
        cluster.restart(node_id)
    wait_until(
        lambda: len(partition_state(cluster, "durable").isr_nodes) == 3, what="the ISR refilling"
    )
    consumer = KafkaConsumer(
        "durable",
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    assert [m.value for m in consumer] == [b"with two"]  # nothing unacknowledged is readable
    consumer.close()


def produce_with_confluent_kafka(
    bootstrap: str, topic: str, stop: threading.Event, acked: list[int], errors: list[str]
) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60_000,
        }
    )

    def delivered(err: ConfluentError | None, message) -> None:
        if err is None:
            acked.append(int(message.value()))
        else:
            errors.append(str(err))

    i = 0
    while not stop.is_set():
        producer.produce(topic, str(i).encode(), on_delivery=delivered)
        producer.poll(0)
        i += 1
        time.sleep(0.001)
    producer.flush(60)


def produce_with_kafka_python(
    bootstrap: str, topic: str, stop: threading.Event, acked: list[int], errors: list[str]
) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        delivery_timeout_ms=60_000,
    )
    i = 0
    while not stop.is_set():
        future = producer.send(topic, str(i).encode())
        future.add_callback(lambda metadata, value=i: acked.append(value))
        future.add_errback(lambda exc: errors.append(str(exc)))
        i += 1
        time.sleep(0.001)
    producer.flush(60)
    producer.close()


@pytest.mark.parametrize("client", [produce_with_confluent_kafka, produce_with_kafka_python])
def test_an_idempotent_producer_survives_its_leader_being_killed(whole, client):
    """Every acknowledged record is read back exactly once, in order; the killed broker comes
    back, rejoins the ISR, and its copy is the new leader's, byte for byte (and sound, as
    `kbench dump-log --verify` checks a log)."""
    cluster = whole
    topic = f"failover-{client.__name__.rsplit('_', 1)[-1]}"
    create_topic(cluster, topic)
    old_leader = partition_state(cluster, topic).leader_id
    acked: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        client(cluster.bootstrap, topic, stop, acked, errors)

    thread = threading.Thread(target=produce)
    thread.start()
    wait_until(lambda: len(acked) > 200, what="acknowledgements before the kill")
    cluster.kill(old_leader)
    before = len(acked)
    wait_until(lambda: len(acked) > before + 200, what="acknowledgements after the kill")
    stop.set()
    thread.join()
    assert not errors
    new_leader = partition_state(cluster, topic).leader_id
    assert new_leader != old_leader

    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": f"{topic}-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while len(seen) < len(acked) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(int(message.value()))
    consumer.close()
    assert seen == sorted(acked)  # all of them, once each, in the order produced

    cluster.restart(old_leader)
    wait_until(
        lambda: len(partition_state(cluster, topic).isr_nodes) == 3,
        what="the old leader rejoining the ISR",
    )
    expected = segment_bytes(replica_dir(cluster, new_leader, topic))
    wait_until(
        lambda: segment_bytes(replica_dir(cluster, old_leader, topic)) == expected,
        what="the old leader's copy matching the new leader's",
    )
    for node_id in (1, 2, 3):
        verified = subprocess.run(
            [KBENCH, "dump-log", "--verify", replica_dir(cluster, node_id, topic)],
            capture_output=True,
            text=True,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_consumer_group_outlives_its_coordinator(whole):
    """The coordinator (the leader of __consumer_offsets) is killed mid-consumption: the group
    finds the new one, which loaded the committed offsets from the replicated log, so no commit
    is lost and no record skipped."""
    cluster = whole
    create_topic(cluster, "orders", partitions=2)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(400):
        producer.send("orders", str(i).encode(), partition=i % 2)
    producer.flush()
    consumer = KafkaConsumer(
        "orders",
        bootstrap_servers=cluster.bootstrap,
        group_id="survivors",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=50,
    )
    seen: set[int] = set()
    while len(seen) < 200:
        for records in consumer.poll(timeout_ms=1000).values():
            seen.update(int(r.value) for r in records)
    consumer.commit()
    committed = {tp: consumer.committed(tp) for tp in consumer.assignment()}
    coordinator = partition_state(cluster, "__consumer_offsets").leader_id
    cluster.kill(coordinator)
    wait_until(
        lambda: partition_state(cluster, "__consumer_offsets").leader_id not in (coordinator, -1),
        what="a new coordinator",
    )
    while len(seen) < 400:
        for records in consumer.poll(timeout_ms=1000).values():
            seen.update(int(r.value) for r in records)
        try:
            consumer.commit()
        except CommitFailedError:
            # the new coordinator knows the group's offsets, not its members (kbench keeps no
            # group metadata in the log): the member rejoins, as after any rebalance
            continue
    consumer.commit()
    assert seen == set(range(400))
    for tp, offset in committed.items():
        assert consumer.committed(tp) >= offset
    consumer.close()
    check = KafkaConsumer(
        bootstrap_servers=cluster.bootstrap, group_id="survivors", enable_auto_commit=False
    )
    assert sum(check.committed(KafkaTopicPartition("orders", p)) or 0 for p in (0, 1)) == 400
    check.close()


def test_unclean_election_elects_a_stale_replica_and_the_loss_is_counted(whole):
    """unclean.leader.election.enable=true: when the only in-sync replica dies, a replica that
    fell behind leads; what only the dead leader had is gone, and counted here."""
    cluster = whole
    create_topic(
        cluster, "unclean", **{"unclean.leader.election.enable": "true", "min.insync.replicas": "1"}
    )
    state = partition_state(cluster, "unclean")
    leader = state.leader_id
    stale, other = [n for n in state.replica_nodes if n != leader]
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(100):
        producer.send("unclean", f"replicated {i}".encode())
    producer.flush()
    producer.close()
    cluster.kill(stale)
    cluster.kill(other)
    wait_until(
        lambda: partition_state(cluster, "unclean").isr_nodes == [leader],
        what="the ISR shrinking to the leader",
    )
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=1)
    for i in range(50):  # acknowledged by the leader alone
        producer.send("unclean", f"leader only {i}".encode()).get(timeout=30)
    producer.close()
    cluster.kill(leader)
    cluster.restart(stale)
    wait_until(
        lambda: partition_state(cluster, "unclean").leader_id == stale,
        what="the stale replica's unclean election",
    )
    consumer = KafkaConsumer(
        "unclean",
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    values = [m.value for m in consumer]
    consumer.close()
    lost = [
        f"leader only {i}".encode() for i in range(50) if f"leader only {i}".encode() not in values
    ]
    assert values == [f"replicated {i}".encode() for i in range(100)]
    assert len(lost) == 50  # every record only the dead leader had: acknowledged, and lost

    cluster.restart(leader)  # the old leader comes back a follower and cuts its divergent tail
    cluster.restart(other)
    wait_until(
        lambda: len(partition_state(cluster, "unclean").isr_nodes) == 3, what="the ISR refilling"
    )
    expected = segment_bytes(replica_dir(cluster, stale, "unclean"))
    wait_until(
        lambda: segment_bytes(replica_dir(cluster, leader, "unclean")) == expected,
        what="the old leader truncating to the new leader's log",
    )


def broker_stats(cluster: LocalCluster, node_id: int) -> dict:
    with urllib.request.urlopen(f"http://{cluster.brokers[node_id].bootstrap}/stats") as f:
        return json.loads(f.read())


def test_a_consumer_reads_from_the_follower_in_its_rack(tmp_path):
    """KIP-392: with broker.rack and RackAwareReplicaSelector, the leader points a consumer with
    client.rack at the replica in its rack, which serves the records."""
    settings = {
        **CLUSTER_SETTINGS,
        "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector",
    }
    with LocalCluster(str(tmp_path / "racks"), 3, settings, racks=["a", "b", "c"]) as cluster:
        create_topic(cluster, "nearby")
        state = partition_state(cluster, "nearby")
        follower = next(n for n in state.replica_nodes if n != state.leader_id)
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        payload = b"x" * 1000
        for _ in range(2000):
            producer.send("nearby", payload)
        producer.flush()
        producer.close()
        before = broker_stats(cluster, follower)["bytes_sendfile"]
        consumer = KafkaConsumer(
            "nearby",
            bootstrap_servers=cluster.bootstrap,
            auto_offset_reset="earliest",
            client_rack="abc"[follower - 1],
            consumer_timeout_ms=5000,
        )
        assert sum(1 for _ in consumer) == 2000
        consumer.close()
        served = broker_stats(cluster, follower)["bytes_sendfile"] - before
        assert served >= 2000 * len(payload)  # the follower in its rack sent the records


def test_a_restarted_controller_resumes_from_its_metadata_log(whole):
    """The controller is SIGKILLed: the brokers keep serving what they lead; started again on
    its log, it knows every broker and topic, and the cluster takes new topics."""
    cluster = whole
    create_topic(cluster, "before-restart")
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    producer.send("before-restart", b"with the controller").get(timeout=30)  # its producer id
    cluster.controller.stop(signal.SIGKILL)
    producer.send("before-restart", b"while the controller is down").get(timeout=30)
    cluster.controller.start(cluster.controller.port)
    create_topic(cluster, "after-restart")
    producer.send("after-restart", b"after").get(timeout=30)
    producer.close()
    assert sorted(b.node_id for b in metadata(cluster, "after-restart").brokers) == [1, 2, 3]
    state = json.loads(
        urllib.request.urlopen(f"http://{cluster.controller.bootstrap}/stats").read()
    )
    assert state["metadata_epoch"] == 2  # a new epoch of the same log
    assert sorted(state["brokers"]) == ["1", "2", "3"]
    assert not any(b["fenced"] for b in state["brokers"].values())
