"""Transactions and exactly-once through real clients (KIP-98, issue 15), against a real broker.

The partition side first: transactional batches produced with the wire protocol and their
outcome written with WriteTxnMarkers, as a coordinator does; confluent-kafka's read_committed
consumer stops at the last stable offset and drops what the `.txnindex` files name as aborted
(checked byte for byte in Kafka's layout). Then the coordinator: confluent-kafka's and
kafka-python's transactional producers commit and abort; read_committed consumers see exactly
the committed records, read_uncommitted ones everything; a producer killed mid-transaction is
aborted once its transaction.timeout.ms passes, and the last stable offset moves on; a zombie
with an old epoch is fenced; consume-transform-produce commits the consumer's offsets with the
transaction (or not at all). Last, a restart: the coordinator's state and the `.txnindex` files
survive it, and a torn `.txnindex` tail is rebuilt from the log.
"""

import glob
import os
import struct
import subprocess
import sys
import textwrap

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import TransactionState
from kafka.errors import (
    InvalidTransactionTimeoutError,
    TransactionalIdNotFoundError,
    UnstableOffsetCommitError,
)
from kafka.protocol.consumer.group import OffsetFetchRequest, OffsetFetchResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse
from kafka.protocol.producer.transaction import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

from engine.errors import NONE
from engine.records import SimpleRecord, build_batch
from scenarios.clients.cluster import KafkaConnection
from tests.cluster_support import wait_until
from tests.conftest import broker_process

# expired transactions are looked for every 200 ms, not Kafka's 10 s
SETTINGS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}
_ENTRY = struct.Struct(">hqqqq")  # Kafka's AbortedTxn
HAND_WRITTEN = "by-hand"  # the topic of the partition-side test


@pytest.fixture(scope="module")
def eos_broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("eos") / "data"), **SETTINGS).start()
    yield running
    running.stop()


def new_topic(broker, name: str, partitions: int = 2, replication_factor: int = 1) -> str:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, replication_factor)]).values():
        future.result()
    return name


def transactional(broker, transactional_id: str, **extra: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id, **extra}
    )
    producer.init_transactions(30)
    return producer


def consume(broker, topic: str, isolation: str, partitions: int = 2) -> list[str]:
    """Every record a consumer with this isolation level reads from the topic's start."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"reader-{topic}-{isolation}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, ended = [], set()
    try:
        while len(ended) < partitions:
            message = consumer.poll(10)
            assert message is not None, "the consumer got nothing within 10 s"
            if message.error():
                ended.add(message.partition())
                continue
            values.append(message.value().decode())
    finally:
        consumer.close()
    return sorted(values)


def stable_end(broker, topic: str, partition: int = 0) -> tuple[int, int]:
    """(last stable offset, high watermark) as ListOffsets gives them."""
    ends = []
    for isolation in ("read_committed", "read_uncommitted"):
        settings = {"bootstrap.servers": broker.bootstrap, "isolation.level": isolation}
        consumer = Consumer({**settings, "group.id": "ends"})
        try:
            ends.append(consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1])
        finally:
            consumer.close()
    return ends[0], ends[1]


# -- the partition side: batches and markers by hand ---------------------------------------------
def init_producer_id(connection: KafkaConnection, transactional_id: str | None) -> tuple[int, int]:
    request = InitProducerIdRequest[4](
        transactional_id=transactional_id,
        transaction_timeout_ms=60_000,
        producer_id=-1,
        producer_epoch=-1,
    )
    response = connection.request(request, InitProducerIdResponse)
    assert response.error_code == NONE
    return response.producer_id, response.producer_epoch


def produce_raw(
    connection: KafkaConnection, partition: int, values: list[str], pid: int, seq: int
) -> int:
    """Records of producer pid (epoch 0) from sequence seq, transactional unless pid is -1;
    the base offset."""
    batch = build_batch(
        [SimpleRecord(v.encode()) for v in values],
        producer_id=pid,
        producer_epoch=0,
        base_sequence=seq,
        is_transactional=pid >= 0,
    )
    cls = ProduceRequest[9]
    data = cls.TopicProduceData.PartitionProduceData(index=partition, records=bytes(batch))
    request = cls(
        transactional_id="t" if pid >= 0 else None,
        acks=-1,
        timeout_ms=5000,
        topic_data=[cls.TopicProduceData(name=HAND_WRITTEN, partition_data=[data])],
    )
    response = connection.request(request, ProduceResponse)
    answer = response.responses[0].partition_responses[0]
    assert answer.error_code == NONE
    return answer.base_offset


def write_marker(connection: KafkaConnection, pid: int, commit: bool) -> set[int]:
    cls = WriteTxnMarkersRequest[1]
    topic = cls.WritableTxnMarker.WritableTxnMarkerTopic(
        name=HAND_WRITTEN, partition_indexes=[0, 1]
    )
    marker = cls.WritableTxnMarker(
        producer_id=pid,
        producer_epoch=0,
        transaction_result=commit,
        topics=[topic],
        coordinator_epoch=0,
    )
    response = connection.request(cls(markers=[marker]), WriteTxnMarkersResponse)
    return {p.error_code for m in response.markers for t in m.topics for p in t.partitions}


def txn_index_entries(broker, partition: int) -> list[tuple[int, ...]]:
    found = []
    pattern = os.path.join(broker.data_dir, f"{HAND_WRITTEN}-{partition}", "*.txnindex")
    for path in sorted(glob.glob(pattern)):
        with open(path, "rb") as f:
            found += list(_ENTRY.iter_unpack(f.read()))
    return found


HAND_COMMITTED = ["c-0", "c-1", "c-2", "plain-0", "plain-1", "plain-2"]


def test_read_committed_stops_at_the_lso_and_drops_aborted_records(eos_broker):
    new_topic(eos_broker, HAND_WRITTEN)
    with KafkaConnection(eos_broker.bootstrap) as connection:
        committer, _ = init_producer_id(connection, None)
        aborter, _ = init_producer_id(connection, None)
        produce_raw(connection, 0, ["plain-0"], -1, -1)
        first_ongoing = produce_raw(connection, 0, ["c-0", "c-1"], committer, 0)
        produce_raw(connection, 0, ["a-0"], aborter, 0)
        produce_raw(connection, 1, ["a-1"], aborter, 1)
        produce_raw(connection, 1, ["c-2"], committer, 2)
        produce_raw(connection, 0, ["plain-1"], -1, -1)
        # both transactions open: read_committed stops at the first ongoing one's first offset
        assert stable_end(eos_broker, HAND_WRITTEN) == (first_ongoing, 5)
        assert consume(eos_broker, HAND_WRITTEN, "read_committed") == ["plain-0"]
        assert write_marker(connection, aborter, commit=False) == {NONE}
        assert write_marker(connection, committer, commit=True) == {NONE}
        produce_raw(connection, 1, ["plain-2"], -1, -1)
    assert consume(eos_broker, HAND_WRITTEN, "read_committed") == HAND_COMMITTED
    assert consume(eos_broker, HAND_WRITTEN, "read_uncommitted") == sorted(
        [*HAND_COMMITTED, "a-0", "a-1"]
    )
    # the LSO reached the high watermark (the markers are offsets 5 and 6)
    assert stable_end(eos_broker, HAND_WRITTEN) == (7, 7)
    # partition 0: plain-0 @0, c-0 c-1 @1-2, a-0 @3, plain-1 @4, markers: abort @5, commit @6;
    # the abort's LSO is the committer's still ongoing transaction's first offset, 1
    assert txn_index_entries(eos_broker, 0) == [(0, aborter, 3, 5, 1)]
    # partition 1: a-1 @0, c-2 @1, abort @2, commit @3
    assert txn_index_entries(eos_broker, 1) == [(0, aborter, 0, 2, 1)]


# -- the coordinator, through real clients ---------------------------------------------------------
def test_commit_and_abort_interleaved_across_two_partitions(eos_broker):
    topic = new_topic(eos_broker, "interleaved")
    producer = transactional(eos_broker, "interleaver")
    committed, everything = [], []
    for round_ in range(4):
        producer.begin_transaction()
        for partition in (0, 1):
            value = f"{round_}-{partition}"
            producer.produce(topic, value.encode(), partition=partition)
            everything.append(value)
        producer.flush(10)  # in the log before the outcome, so read_uncommitted sees them
        if round_ % 2 == 0:
            producer.commit_transaction(30)
            committed += everything[-2:]
        else:
            producer.abort_transaction(30)
    assert consume(eos_broker, topic, "read_committed") == sorted(committed)
    assert consume(eos_broker, topic, "read_uncommitted") == sorted(everything)


def test_kafka_python_transactional_producer(eos_broker):
    topic = new_topic(eos_broker, "kafka-python-txn")
    producer = KafkaProducer(bootstrap_servers=eos_broker.bootstrap, transactional_id="kp")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"kept", partition=0)
    producer.send(topic, b"kept-too", partition=1)
    producer.commit_transaction()
    producer.begin_transaction()
    producer.send(topic, b"dropped", partition=1)
    producer.flush()
    producer.abort_transaction()
    producer.close()
    assert consume(eos_broker, topic, "read_committed") == ["kept", "kept-too"]
    assert consume(eos_broker, topic, "read_uncommitted") == ["dropped", "kept", "kept-too"]
    # kafka-python's consumer drops the aborted record too
    consumer = KafkaConsumer(
        bootstrap_servers=eos_broker.bootstrap, isolation_level="read_committed"
    )
    partitions = [KafkaTopicPartition(topic, p) for p in (0, 1)]
    ends = {tp: stable_end(eos_broker, topic, tp.partition)[0] for tp in partitions}
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    values: list[bytes] = []

    def read_to_the_end() -> bool:
        for records in consumer.poll(timeout_ms=200).values():
            values.extend(r.value for r in records)
        return all(consumer.position(tp) >= end for tp, end in ends.items())

    try:
        wait_until(read_to_the_end, what="kafka-python's read_committed consumer at the end")
    finally:
        consumer.close()
    assert sorted(values) == [b"kept", b"kept-too"]


def test_a_zombie_with_an_old_epoch_is_fenced(eos_broker):
    topic = new_topic(eos_broker, "zombies")
    zombie = transactional(eos_broker, "twin")
    zombie.begin_transaction()
    zombie.produce(topic, b"from the zombie", partition=0)
    zombie.flush(10)
    # a new instance of the same transactional id: the zombie's transaction is aborted and its
    # epoch is older than the new one's
    successor = transactional(eos_broker, "twin")
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    assert raised.value.args[0].fatal()
    successor.begin_transaction()
    successor.produce(topic, b"from the successor", partition=1)
    successor.commit_transaction(30)
    assert consume(eos_broker, topic, "read_committed") == ["from the successor"]
    assert consume(eos_broker, topic, "read_uncommitted") == [
        "from the successor",
        "from the zombie",
    ]


_DOOMED = """
import sys, time
from confluent_kafka import Producer
producer = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": "doomed",
                     "transaction.timeout.ms": 1000})
producer.init_transactions(30)
producer.begin_transaction()
producer.produce(sys.argv[2], b"doomed", partition=0)
producer.flush(10)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_producer_killed_mid_transaction_is_aborted_by_its_timeout(eos_broker):
    topic = new_topic(eos_broker, "killed", partitions=1)
    plain = Producer({"bootstrap.servers": eos_broker.bootstrap})
    plain.produce(topic, b"before", partition=0)
    plain.flush(10)
    doomed = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_DOOMED), eos_broker.bootstrap, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == "ready"
        doomed.kill()  # SIGKILL: no abort from the client
        doomed.wait()
        plain.produce(topic, b"after", partition=0)
        plain.flush(10)
        # the open transaction holds the last stable offset at its first record...
        assert stable_end(eos_broker, topic)[0] <= 1
        # ...until the coordinator aborts it; then the LSO is the high watermark again
        wait_until(
            lambda: len(set(stable_end(eos_broker, topic))) == 1,
            what="the abort of the expired transaction",
        )
    finally:
        doomed.kill()
        doomed.wait()
        assert doomed.stdout is not None
        doomed.stdout.close()
    assert consume(eos_broker, topic, "read_committed", 1) == ["after", "before"]
    assert consume(eos_broker, topic, "read_uncommitted", 1) == ["after", "before", "doomed"]


UNSTABLE = UnstableOffsetCommitError.errno


def stable_offset_fetch(broker, group_id: str, topic: str) -> tuple[int, int]:
    """(error, committed offset) of partition 0 by OffsetFetch v7 with require_stable."""
    cls = OffsetFetchRequest[7]
    request = cls(
        group_id=group_id,
        topics=[cls.OffsetFetchRequestTopic(name=topic, partition_indexes=[0])],
        require_stable=True,
    )
    with KafkaConnection(broker.bootstrap) as connection:
        response = connection.request(request, OffsetFetchResponse)
    [partition] = response.topics[0].partitions
    return partition.error_code, partition.committed_offset


def test_consume_transform_produce_commits_offsets_with_the_transaction(eos_broker):
    source, sink = new_topic(eos_broker, "ctp-in", 1), new_topic(eos_broker, "ctp-out", 1)
    plain = Producer({"bootstrap.servers": eos_broker.bootstrap})
    for i in range(10):
        plain.produce(source, f"{i}".encode(), partition=0)
    plain.flush(10)
    consumer = Consumer(
        {
            "bootstrap.servers": eos_broker.bootstrap,
            "group.id": "transformer",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(source, 0, 0)])
    producer = transactional(eos_broker, "transformer")

    def transform(count: int, commit: bool) -> None:
        producer.begin_transaction()
        for _ in range(count):
            message = consumer.poll(10)
            assert message is not None and not message.error()
            producer.produce(sink, message.value() * 2, partition=0)
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
        )
        # until the marker, the offsets are unstable to readers that ask for stable ones
        assert stable_offset_fetch(eos_broker, "transformer", source) == (UNSTABLE, -1)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(10)
            producer.abort_transaction(30)
        assert stable_offset_fetch(eos_broker, "transformer", source) == (NONE, 6)

    try:
        transform(6, commit=True)
        transform(4, commit=False)
        committed = consumer.committed([TopicPartition(source, 0)], 10)
    finally:
        consumer.close()
    assert committed[0].offset == 6  # the aborted transaction's offsets never counted
    assert consume(eos_broker, sink, "read_committed", 1) == sorted(f"{i}{i}" for i in range(6))


def test_admin_clients_describe_and_list_transactions_and_producers(eos_broker):
    topic = new_topic(eos_broker, "described", 1)
    producer = transactional(eos_broker, "described", **{"transaction.timeout.ms": 45_000})
    producer.begin_transaction()
    producer.produce(topic, b"open", partition=0)
    producer.flush(10)
    admin = KafkaAdminClient(bootstrap_servers=eos_broker.bootstrap)
    try:
        ongoing = admin.describe_transactions(["described"])["described"]
        assert ongoing.state == TransactionState.ONGOING
        assert ongoing.topic_partitions == {KafkaTopicPartition(topic, 0)}
        assert ongoing.transaction_timeout_ms == 45_000
        listed = [
            t.transactional_id
            for listings in admin.list_transactions(state_filters=["Ongoing"]).values()
            for t in listings
        ]
        assert "described" in listed
        [state] = admin.describe_producers([KafkaTopicPartition(topic, 0)]).values()
        [active] = state.active_producers
        assert (active.producer_id, active.producer_epoch) == (
            ongoing.producer_id,
            ongoing.producer_epoch,
        )
        assert active.current_transaction_start_offset == 0
        producer.commit_transaction(30)
        done = admin.describe_transactions(["described"])["described"]
        assert done.state == TransactionState.COMPLETE_COMMIT
        assert done.topic_partitions == set()
        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions(["never-used"])
    finally:
        admin.close()


def test_a_transaction_timeout_above_transaction_max_timeout_ms_is_refused(eos_broker):
    request = InitProducerIdRequest[4](
        transactional_id="patient",
        transaction_timeout_ms=900_001,  # transaction.max.timeout.ms is 900000
        producer_id=-1,
        producer_epoch=-1,
    )
    with KafkaConnection(eos_broker.bootstrap) as connection:
        response = connection.request(request, InitProducerIdResponse)
    assert response.error_code == InvalidTransactionTimeoutError.errno


def test_state_outlives_a_restart_and_a_torn_txnindex_is_rebuilt(eos_broker):
    """Last: it restarts the broker, with a torn write at the end of a `.txnindex`."""
    with KafkaConnection(eos_broker.bootstrap) as connection:
        producer_id, epoch = init_producer_id(connection, "durable")
    entries = txn_index_entries(eos_broker, 0)
    eos_broker.stop()
    [path] = glob.glob(os.path.join(eos_broker.data_dir, f"{HAND_WRITTEN}-0", "*.txnindex"))
    with open(path, "r+b") as f:
        f.truncate(_ENTRY.size - 5)
    eos_broker.start(eos_broker.port)
    with KafkaConnection(eos_broker.bootstrap) as connection:
        # the same id, fenced by a newer epoch: the coordinator read __transaction_state back
        assert init_producer_id(connection, "durable") == (producer_id, epoch + 1)
    # the index was rebuilt from the log: the aborted records stay hidden
    assert consume(eos_broker, HAND_WRITTEN, "read_committed") == HAND_COMMITTED
    assert txn_index_entries(eos_broker, 0) == entries
