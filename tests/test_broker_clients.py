"""Real clients against `kbench broker` on loopback: kafka-python, confluent-kafka (librdkafka),
aiokafka and kcat, as their users run them."""

import asyncio
import shutil
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic as KafkaPythonNewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition

FAST_GROUP = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 500}


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([KafkaPythonNewTopic(name, partitions, 1)])
    admin.close()


def consume(consumer, count: int, timeout_s: float = 60) -> list:
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got += records
    return got


def test_kafka_python_group_resumes_after_a_restart_without_loss_or_repeats(broker):
    create_topic(broker.bootstrap, "orders", 3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)  # idempotent, acks=all
    assert producer.config["enable_idempotence"] and producer.config["acks"] == -1
    futures = [producer.send("orders", key=b"%d" % i, value=b"order-%d" % i) for i in range(10_000)]
    producer.flush()
    assert {f.get(timeout=10).partition for f in futures} == {0, 1, 2}
    producer.close()

    first = KafkaConsumer(
        "orders",
        bootstrap_servers=broker.bootstrap,
        group_id="billing",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP,
    )
    part_one = consume(first, 6_000)[:6_000]
    assert len(part_one) == 6_000
    # commit exactly what was consumed, partition by partition
    ends = {}
    for record in part_one:
        ends[TopicPartition(record.topic, record.partition)] = record.offset + 1
    first.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
    first.close()

    broker.restart()

    second = KafkaConsumer(
        "orders",
        bootstrap_servers=broker.bootstrap,
        group_id="billing",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP,
    )
    part_two = consume(second, 4_000)
    assert consume(second, 1, timeout_s=2) == []  # and nothing more
    second.close()
    values = [r.value for r in part_one] + [r.value for r in part_two]
    positions = [(r.partition, r.offset) for r in part_one] + [
        (r.partition, r.offset) for r in part_two
    ]
    assert len(positions) == len(set(positions)), "a record was read twice"
    assert sorted(values) == sorted(b"order-%d" % i for i in range(10_000)), "records were lost"


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_confluent_kafka_compressed_producer_and_a_rebalancing_group(broker, codec):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic("clicks", 4, 1)]).values():
        future.result(timeout=30)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 5}
    )
    failures = []
    for i in range(4_000):
        producer.produce(
            "clicks",
            key=b"%d" % i,
            value=b"click-%d" % i,
            on_delivery=lambda err, _: err and failures.append(err),
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    settings = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"reporting-{codec}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6_000,
        "heartbeat.interval.ms": 500,
    }
    first, second = Consumer(settings), Consumer(settings)
    first.subscribe(["clicks"])
    second.subscribe(["clicks"])
    seen: list[bytes] = []

    def drain(consumers, until: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(seen) < until and time.monotonic() < deadline:
            for consumer in consumers:
                message = consumer.poll(0.1)
                if message is not None and message.error() is None:
                    seen.append(message.value())
                    consumer.commit(message=message, asynchronous=False)

    drain([first, second], until=2_000)
    assert first.assignment() and second.assignment()  # the group split the partitions
    second.close()  # leaves: its partitions move to the first consumer
    drain([first], until=4_000)
    assert len({p.partition for p in first.assignment()}) == 4
    first.close()
    assert sorted(seen) == sorted(b"click-%d" % i for i in range(4_000)), "not every record once"


def test_confluent_kafka_admin_lists_every_topic(broker):
    """librdkafka asks for all topics with Metadata v12 and three bytes after the body (a null
    array written into room for a longer count), which Kafka ignores: so must kbench."""
    create_topic(broker.bootstrap, "listed", 2)
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30)
    assert sorted(metadata.topics["listed"].partitions) == [0, 1]
    assert list(metadata.brokers) == [metadata.controller_id]


def test_aiokafka_producer_and_consumer(broker):
    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        await producer.start()
        for i in range(300):
            await producer.send("audit", b"entry-%d" % i)
        await producer.flush()
        await producer.stop()
        consumer = AIOKafkaConsumer(
            "audit",
            bootstrap_servers=broker.bootstrap,
            group_id="auditors",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        values = []
        async for message in consumer:
            values.append(message.value)
            if len(values) == 300:
                break
        await consumer.commit()
        await consumer.stop()
        return values

    assert asyncio.run(asyncio.wait_for(run(), 60)) == [b"entry-%d" % i for i in range(300)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (.ci/run installs it)")
def test_kcat_lists_produces_and_consumes(broker):
    subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", "lines", "-P"],
        input=b"alpha\nbeta\ngamma\n",
        check=True,
        timeout=30,
    )
    listing = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-L"], capture_output=True, text=True, timeout=30
    ).stdout
    assert 'topic "lines" with 1 partitions' in listing
    assert "leader 0, replicas: 0, isrs: 0" in listing
    consumed = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-t", "lines", "-C", "-o", "beginning", "-e", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert consumed.split() == ["alpha", "beta", "gamma"]
