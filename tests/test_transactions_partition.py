"""Transactions on the partition side (KIP-98, issue 15), against a real broker.

Transactional batches are produced with the wire protocol and their outcome written with
WriteTxnMarkers, as a transaction coordinator does; then real consumers read: confluent-kafka's
read_committed consumer sees exactly the committed records (the broker bounds it by the last
stable offset and names the aborted transactions from the `.txnindex` files), read_uncommitted
sees them all. The `.txnindex` file is checked byte for byte in Kafka's layout, and survives a
restart and a torn tail.
"""

import os
import struct

import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
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
from tests.conftest import broker_process

TOPIC = "txn-events"
_ENTRY = struct.Struct(">hqqqq")  # Kafka's AbortedTxn


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    running = broker_process(str(tmp_path_factory.mktemp("txn") / "data")).start()
    admin = KafkaAdminClient(bootstrap_servers=running.bootstrap)
    admin.create_topics([NewTopic(TOPIC, 2, 1)])
    admin.close()
    yield running
    running.stop()


def producer_id(connection: KafkaConnection) -> int:
    request = InitProducerIdRequest[4](
        transactional_id=None, transaction_timeout_ms=60_000, producer_id=-1, producer_epoch=-1
    )
    response = connection.request(request, InitProducerIdResponse)
    assert response.error_code == NONE
    return response.producer_id


def produce(
    connection: KafkaConnection, partition: int, values: list[str], pid: int, seq: int
) -> int:
    """Transactional records of producer pid (epoch 0) from sequence seq; the base offset."""
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
        topic_data=[cls.TopicProduceData(name=TOPIC, partition_data=[data])],
    )
    response = connection.request(request, ProduceResponse)
    answer = response.responses[0].partition_responses[0]
    assert answer.error_code == NONE
    return answer.base_offset


def write_marker(connection: KafkaConnection, pid: int, commit: bool) -> set[int]:
    cls = WriteTxnMarkersRequest[1]
    topic = cls.WritableTxnMarker.WritableTxnMarkerTopic(name=TOPIC, partition_indexes=[0, 1])
    marker = cls.WritableTxnMarker(
        producer_id=pid,
        producer_epoch=0,
        transaction_result=commit,
        topics=[topic],
        coordinator_epoch=0,
    )
    response = connection.request(cls(markers=[marker]), WriteTxnMarkersResponse)
    return {p.error_code for m in response.markers for t in m.topics for p in t.partitions}


def consume(bootstrap: str, isolation: str) -> list[str]:
    """Every record of both partitions a consumer with this isolation level reads."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{isolation}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in (0, 1)])
    values, ended = [], set()
    try:
        while len(ended) < 2:
            message = consumer.poll(10)
            assert message is not None, "the consumer got nothing within 10 s"
            if message.error():
                ended.add(message.partition())
                continue
            values.append(message.value().decode())
    finally:
        consumer.close()
    return sorted(values)


def end_offsets(bootstrap: str, isolation: str) -> list[int]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "ends", "isolation.level": isolation}
    )
    try:
        return [consumer.get_watermark_offsets(TopicPartition(TOPIC, p), 10)[1] for p in (0, 1)]
    finally:
        consumer.close()


def txn_index_entries(broker, partition: int) -> list[tuple[int, ...]]:
    directory = os.path.join(broker.data_dir, f"{TOPIC}-{partition}")
    found = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".txnindex"):
            with open(os.path.join(directory, name), "rb") as f:
                found += list(_ENTRY.iter_unpack(f.read()))
    return found


def test_read_committed_sees_exactly_the_committed_records(txn_broker):
    with KafkaConnection(txn_broker.bootstrap) as connection:
        committer, aborter = producer_id(connection), producer_id(connection)
        produce(connection, 0, ["plain-0"], -1, -1)
        first_ongoing = produce(connection, 0, ["c-0", "c-1"], committer, 0)
        produce(connection, 0, ["a-0"], aborter, 0)
        produce(connection, 1, ["a-1"], aborter, 1)
        produce(connection, 1, ["c-2"], committer, 2)
        produce(connection, 0, ["plain-1"], -1, -1)
        # both transactions open: read_committed stops at the first ongoing one's first offset
        assert end_offsets(txn_broker.bootstrap, "read_committed")[0] == first_ongoing
        assert consume(txn_broker.bootstrap, "read_committed") == ["plain-0"]
        assert write_marker(connection, aborter, commit=False) == {NONE}
        assert write_marker(connection, committer, commit=True) == {NONE}
        produce(connection, 1, ["plain-2"], -1, -1)
    committed = ["c-0", "c-1", "c-2", "plain-0", "plain-1", "plain-2"]
    assert consume(txn_broker.bootstrap, "read_committed") == committed
    assert consume(txn_broker.bootstrap, "read_uncommitted") == sorted([*committed, "a-0", "a-1"])
    # the LSO reached the high watermark: both isolation levels end at the same offsets
    ends = end_offsets(txn_broker.bootstrap, "read_committed")
    assert ends == end_offsets(txn_broker.bootstrap, "read_uncommitted")

    # partition 0: plain-0 @0, c-0 c-1 @1-2, a-0 @3, plain-1 @4, markers: abort @5, commit @6;
    # the abort's LSO is the committer's still ongoing transaction's first offset, 1
    assert txn_index_entries(txn_broker, 0) == [(0, aborter, 3, 5, 1)]
    # partition 1: a-1 @0, c-2 @1, abort @2, commit @3
    assert txn_index_entries(txn_broker, 1) == [(0, aborter, 0, 2, 1)]

    # a clean restart, then a torn tail: the index is read back, or rebuilt from the log
    txn_broker.restart()
    assert consume(txn_broker.bootstrap, "read_committed") == committed
    txn_broker.stop()
    # (records of timestamp 0 are older than segment.ms: the marker's append rolled a segment)
    directory = os.path.join(txn_broker.data_dir, f"{TOPIC}-0")
    [name] = [n for n in os.listdir(directory) if n.endswith(".txnindex")]
    with open(os.path.join(directory, name), "r+b") as f:
        f.truncate(_ENTRY.size - 5)
    txn_broker.start(txn_broker.port)
    assert consume(txn_broker.bootstrap, "read_committed") == committed
    assert txn_index_entries(txn_broker, 0) == [(0, aborter, 3, 5, 1)]
