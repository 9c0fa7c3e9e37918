"""DeleteRecords (issue 15) against `kbench broker` processes, through kafka-python's and
confluent-kafka's admin clients: the log start offset moves, consumers start there, reads below
it are out of range, retention deletes the segments below it, and it survives a restart and a
crash; in a 3-broker cluster the followers follow, and one that was away while records were
deleted starts over at the leader's log start offset."""

import os
import signal

import pytest
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import OffsetOutOfRangeError
from kafka.protocol.admin.topics import DeleteRecordsRequest, DeleteRecordsResponse
from kafka.protocol.consumer import OffsetSpec

from engine import errors
from engine.errors import (
    INVALID_TOPIC_EXCEPTION,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from engine.storage import Log
from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, restart_stopped, wait_until
from tests.conftest import broker_process, make_batch

RECORDS = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = broker_process(
        str(tmp_path_factory.mktemp("delete-records") / "data"),
        **{"log.retention.check.interval.ms": "100", "file.delete.delay.ms": "0"},
    ).start()
    yield running
    running.stop()


@pytest.fixture
def admin(broker):  # one per test: after a restart an old client backs off
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    yield client
    client.close()


def make_topic(
    admin: KafkaAdminClient, bootstrap: str, name: str, replicas: int = 1, **configs: str
) -> None:
    """A topic of one partition holding RECORDS records, one batch each."""
    admin.create_topics([NewTopic(name, 1, replicas, topic_configs=configs)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for i in range(RECORDS):
        producer.send(name, f"v{i}".encode()).get(timeout=10)
    producer.close()


def consumer(broker, **settings) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, **settings)


def delete_records_raw(bootstrap: str, partitions: list[tuple[str, int]], offset: int):
    """DeleteRecords v2 as the protocol carries it, for what the admin clients check first
    (their metadata) or route elsewhere (to the leader)."""
    partition_class = DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition
    request = DeleteRecordsRequest[2](
        topics=[
            DeleteRecordsRequest.DeleteRecordsTopic(
                name=name, partitions=[partition_class(partition_index=index, offset=offset)]
            )
            for name, index in partitions
        ],
        timeout_ms=1000,
    )
    with KafkaConnection(bootstrap) as connection:
        return connection.request(request, DeleteRecordsResponse)


def test_consumers_start_at_the_new_log_start_offset(admin, broker):
    make_topic(admin, broker.bootstrap, "dr-start")
    tp = TopicPartition("dr-start", 0)
    assert admin.delete_records({tp: 10})[tp]["low_watermark"] == 10
    reader = consumer(broker, auto_offset_reset="earliest")
    try:
        assert reader.beginning_offsets([tp])[tp] == 10  # ListOffsets earliest
        reader.assign([tp])
        records: list = []
        for _ in range(30):  # a bound, so a broken broker fails the test instead of hanging it
            for batch in reader.poll(timeout_ms=1000).values():
                records += batch
            if len(records) >= RECORDS - 10:
                break
        assert [r.offset for r in records] == list(range(10, RECORDS))
        assert records[0].value == b"v10"
    finally:
        reader.close()


def test_a_read_below_the_log_start_offset_is_out_of_range(admin, broker):
    make_topic(admin, broker.bootstrap, "dr-below")
    tp = TopicPartition("dr-below", 0)
    admin.delete_records({tp: 12})
    reader = consumer(broker, auto_offset_reset="none")
    try:
        reader.assign([tp])
        reader.seek(tp, 5)
        with pytest.raises(OffsetOutOfRangeError):
            for _ in range(20):
                reader.poll(timeout_ms=500)
        reader.seek(tp, 12)  # at the log start offset: records
        records = wait_until(lambda: reader.poll(timeout_ms=1000).get(tp), 30, "records")
        assert records[0].offset == 12
    finally:
        reader.close()


def test_errors_as_kafka_answers_them(admin, broker):
    make_topic(admin, broker.bootstrap, "dr-errors")
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    # -1: up to the high watermark
    [done] = client.delete_records([ConfluentTopicPartition("dr-errors", 0, -1)]).values()
    assert done.result().low_watermark == RECORDS
    [beyond] = client.delete_records(
        [ConfluentTopicPartition("dr-errors", 0, RECORDS + 1)]
    ).values()
    with pytest.raises(KafkaException) as raised:
        beyond.result()
    assert raised.value.args[0].code() == OFFSET_OUT_OF_RANGE
    # the clients check their metadata first: a partition and a topic that do not exist
    response = delete_records_raw(
        broker.bootstrap, [("dr-errors", 7), ("dr-nowhere", 0), ("__consumer_offsets", 0)], 1
    )
    assert [
        (t.name, [(p.error_code, p.low_watermark) for p in t.partitions]) for t in response.topics
    ] == [
        ("dr-errors", [(UNKNOWN_TOPIC_OR_PARTITION, -1)]),
        ("dr-nowhere", [(UNKNOWN_TOPIC_OR_PARTITION, -1)]),
        ("__consumer_offsets", [(INVALID_TOPIC_EXCEPTION, -1)]),  # internal
    ]
    # an offset below the log start offset changes nothing
    tp = TopicPartition("dr-errors", 0)
    assert admin.delete_records({tp: 3})[tp]["low_watermark"] == RECORDS


def test_retention_deletes_the_segments_below_the_log_start_offset(admin, broker):
    # one batch of ~80 bytes per record: a segment of 200 bytes holds two
    make_topic(admin, broker.bootstrap, "dr-segments", **{"segment.bytes": "200"})
    directory = os.path.join(broker.data_dir, "dr-segments-0")

    def base_offsets() -> list[int]:
        return sorted(int(n[:-4]) for n in os.listdir(directory) if n.endswith(".log"))

    assert base_offsets()[0] == 0
    tp = TopicPartition("dr-segments", 0)
    admin.delete_records({tp: 15})
    kept = wait_until(
        lambda: base_offsets() if base_offsets()[0] > 0 else None, 10, "the retention pass"
    )
    assert kept[0] <= 15 < (kept[1] if len(kept) > 1 else RECORDS + 1)
    reader = consumer(broker, auto_offset_reset="earliest")
    try:
        assert reader.beginning_offsets([tp])[tp] == 15
    finally:
        reader.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "crash"])
def test_the_log_start_offset_survives(admin, broker, how):
    name = f"dr-survives-{how.name.lower()}"
    make_topic(admin, broker.bootstrap, name)
    tp = TopicPartition(name, 0)
    admin.delete_records({tp: 20})
    port = broker.port
    broker.stop(how)
    broker.start(port)
    reader = consumer(broker, auto_offset_reset="earliest")
    try:
        assert reader.beginning_offsets([tp])[tp] == 20
    finally:
        reader.close()


def test_kafka_python_infers_kafka_4_0(admin, broker):
    """ListOffsets v8-10 are served (the tiered-storage timestamps answered as Kafka 4.0 answers
    them without tiered storage), so kafka-python takes the broker for Kafka 4.0."""
    make_topic(admin, broker.bootstrap, "dr-local")
    tp = TopicPartition("dr-local", 0)
    admin.delete_records({tp: 4})
    earliest_local = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST_LOCAL})[tp]
    latest_tiered = admin.list_partition_offsets({tp: OffsetSpec.LATEST_TIERED})[tp]
    assert (earliest_local.offset, latest_tiered.offset) == (4, -1)
    reader = consumer(broker)
    try:
        assert reader.config["api_version"] == (4, 0)
    finally:
        reader.close()


def test_the_log_moves_its_start_offset_up_to_the_high_watermark(tmp_path):
    log = Log(str(tmp_path / "t-0"))
    for tag in range(3):
        log.append_as_leader(make_batch(5, tag=tag))
    log.update_high_watermark(10)
    with pytest.raises(errors.OffsetOutOfRangeError):
        log.maybe_increment_log_start_offset(11)
    assert log.maybe_increment_log_start_offset(7)
    assert not log.maybe_increment_log_start_offset(6)  # never back
    assert log.log_start_offset == 7
    with pytest.raises(errors.OffsetOutOfRangeError):
        log.read(6, 1 << 20)
    assert log.read(7, 1 << 20).slices  # the batch holding 7, from offset 5
    log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = LocalCluster(str(tmp_path_factory.mktemp("cluster")), 3, CLUSTER_SETTINGS).start()
    yield running
    running.stop()


def test_in_a_cluster_the_followers_follow(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    make_topic(admin, cluster.bootstrap, "dr-replicated", replicas=3)
    tp = TopicPartition("dr-replicated", 0)
    # answered once the low watermark, the smallest log start offset of the live replicas,
    # has reached 10: the followers took it from their fetch responses
    assert admin.delete_records({tp: 10}, timeout_ms=20_000)[tp]["low_watermark"] == 10
    [topic] = admin.describe_topics(["dr-replicated"])
    leader = topic["partitions"][0]["leader_id"]
    admin.close()
    follower = next(b for n, b in cluster.brokers.items() if n != leader)
    response = delete_records_raw(follower.bootstrap, [("dr-replicated", 0)], 20)
    assert response.topics[0].partitions[0].error_code == NOT_LEADER_OR_FOLLOWER
    cluster.stop_broker(leader)  # a follower leads now, from its own log start offset
    try:
        reader = KafkaConsumer(bootstrap_servers=cluster.bootstrap)
        try:
            wait_until(
                lambda: reader.beginning_offsets([tp])[tp] == 10, 30, "a new leader at offset 10"
            )
        finally:
            reader.close()
    finally:
        restart_stopped(cluster)


def test_a_follower_that_was_away_starts_over_at_the_leaders_log_start(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    make_topic(admin, cluster.bootstrap, "dr-away", replicas=3)
    tp = TopicPartition("dr-away", 0)
    [partition] = admin.describe_topics(["dr-away"])[0]["partitions"]
    away = next(r for r in partition["replica_nodes"] if r != partition["leader_id"])
    admin.close()
    cluster.stop_broker(away)
    try:
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
        for i in range(RECORDS):
            producer.send("dr-away", f"w{i}".encode()).get(timeout=30)
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        # the live replicas move; the one away is not waited for
        assert admin.delete_records({tp: -1})[tp]["low_watermark"] == 2 * RECORDS
    finally:
        restart_stopped(cluster)
    # its log ends below the leader's start: it starts over there and catches up into the ISR
    wait_until(
        lambda: away in admin.describe_topics(["dr-away"])[0]["partitions"][0]["isr_nodes"],
        30,
        f"broker {away} back in the ISR",
    )
    admin.close()
    directory = os.path.join(cluster.brokers[away].data_dir, "dr-away-0")
    segments = sorted(n for n in os.listdir(directory) if n.endswith(".log"))
    assert segments[0] == f"{2 * RECORDS:020d}.log"
