"""scenarios.clients.pipeline against a real broker: producer and consumer processes at an
offered rate, every record delivered and every measured record timed. Counts, not timing."""

import time

import pytest

from scenarios.clients import pipeline
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.topics import TopicAdmin


@pytest.mark.parametrize(
    ("clients", "layout", "per_request"),
    [("confluent", "split", 1), ("loadgen", "shared", 10)],
)
def test_every_record_is_delivered_and_each_measured_one_timed(
    broker, clients, layout, per_request
):
    admin = BatchProducer(broker.bootstrap)
    admin.create_topic("e2e", 1)
    admin.close()
    load = pipeline.Load("e2e", rate=2000, count=600, warmup=200, per_request=per_request)
    result = pipeline.run(
        broker.bootstrap, load, clients=clients, layout=layout, probe=True, broker_pid=broker.pid
    )
    # the warm-up records are offered, delivered and not recorded
    assert result.histogram.get_total_count() == load.count - load.warmup
    assert result.offered == 2000 and result.delivered > 0
    assert result.fetches >= 1  # the consumer's fetch requests while the load ran
    assert result.cpu_s["broker"] > 0 and result.cpu_s["clients"] > 0
    assert result.probe is not None and result.probe["probes"] > 0
    assert 0 < result.percentile_ms(50) <= result.percentile_ms(99)


def test_publish_latency_times_each_measured_acknowledgement(broker):
    """With publish_latency the producer times every measured record's acknowledgement (its
    delivery report), beside the consumer's end-to-end times; without it, nothing is timed."""
    TopicAdmin(broker.bootstrap).create_all(["acked", "unacked"])
    load = pipeline.Load("acked", rate=2000, count=600, warmup=200, publish_latency=True)
    result = pipeline.run(broker.bootstrap, load)
    assert result.publish is not None
    assert result.publish.get_total_count() == result.histogram.get_total_count() == 400
    assert 0 < result.percentile_ms(50, "publish") <= result.percentile_ms(99, "publish")
    plain = pipeline.Load("unacked", rate=2000, count=300, warmup=100)
    unpublished = pipeline.run(broker.bootstrap, plain)
    assert unpublished.publish is None
    with pytest.raises(ValueError, match="publish latency was not measured"):
        unpublished.percentile_ms(99, "publish")
    with pytest.raises(ValueError, match="timed by the confluent producer only"):
        pipeline.run(broker.bootstrap, load, clients="loadgen")


def test_a_load_names_its_clients_and_layout(broker):
    with pytest.raises(ValueError, match="clients must be one of"):
        pipeline.run(broker.bootstrap, pipeline.Load("t", 1, 1, 0), clients="java")


def test_a_consumer_of_another_client_than_the_producer(broker):
    """A loadgen producer feeding kafka-python's consumer: every record delivered and timed,
    its fetches counted over a span, and the broker's CPU from the scheduler."""
    admin = BatchProducer(broker.bootstrap)
    admin.create_topic("mixed", 1)
    admin.close()
    load = pipeline.Load("mixed", rate=2000, count=400, warmup=100)
    result = pipeline.run(
        broker.bootstrap,
        load,
        clients="loadgen",
        consumer_clients="kafka-python",
        broker_pid=broker.pid,
    )
    assert result.histogram.get_total_count() == load.count - load.warmup
    assert result.fetches >= 1 and result.fetch_seconds > 0
    assert result.fetches_per_s == result.fetches / result.fetch_seconds
    assert result.wall_s > 0 and result.broker_cpu_s is not None and result.broker_cpu_s > 0
    with pytest.raises(ValueError, match="consumer_clients must be one of"):
        pipeline.run(broker.bootstrap, load, consumer_clients="java")


def test_a_consumer_that_fails_ends_its_process_instead_of_hanging_it(broker):
    """Producer and consumer share a process (layout shared): the consumer's thread failing
    before the start (no such topic) must not leave the producer waiting at the gate."""
    load = pipeline.Load("no-such-topic", rate=1000, count=100, warmup=0, per_request=10)
    with pytest.raises(RuntimeError, match="did not get ready"):
        pipeline.run(broker.bootstrap, load, clients="loadgen", layout="shared")


def read_back(bootstrap: str, topic: str, partitions: int, count: int) -> dict[int, list[bytes]]:
    """Each partition's values of the load's `count` records (their indexes not negative: not
    the producers' marks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-back"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    got, deadline = 0, time.monotonic() + 30
    while got < count and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.1):
            if int.from_bytes(message.value()[: pipeline.INDEX_BYTES], "big", signed=True) >= 0:
                values[message.partition()].append(message.value())
                got += 1
    consumer.close()
    return values


def test_a_workload_shape_delivers_every_record_to_each_subscription(broker, tmp_path):
    """4 partitions, 2 producers, 2 subscriptions of 2 consumers: run() checks each
    subscription got every record once; keyed by OMB's KEY_ROUND_ROBIN the partitions share
    them evenly (as the client's hash spreads OMB's keys), each of messageSize bytes, the
    payload file's after the index."""
    payload = bytes(range(256)) * 4  # 1 KiB
    (tmp_path / "payload.data").write_bytes(payload)
    TopicAdmin(broker.bootstrap).create("shaped", partitions=4)
    load = pipeline.Load(
        "shaped",
        rate=2000,
        count=800,
        warmup=200,
        partitions=4,
        producers=2,
        subscriptions=2,
        consumers=2,
        message_size=1024,
        payload_file=str(tmp_path / "payload.data"),
        key_distributor="KEY_ROUND_ROBIN",
    )
    result = pipeline.run(broker.bootstrap, load, broker_pid=broker.pid)
    # merged over both subscriptions: every measured record twice
    assert result.histogram.get_total_count() == 2 * (load.count - load.warmup)
    assert result.producer["produce_seconds"] > 0 and result.fetches >= 4
    values = read_back(broker.bootstrap, "shaped", 4, load.count)
    indexes = sorted(
        int.from_bytes(v[: pipeline.INDEX_BYTES], "big") for vs in values.values() for v in vs
    )
    assert indexes == list(range(load.count))
    assert all(len(v) == 1024 and v[8:] == payload[8:] for vs in values.values() for v in vs)
    assert all(0.6 * 200 <= len(vs) <= 1.4 * 200 for vs in values.values()), values.keys()


def test_topics_and_random_payloads_of_a_workload(broker):
    """2 topics of 2 partitions, a producer and a consumer each, OMB's randomized payloads:
    each topic gets its producer's half of the records, of messageSize bytes."""
    admin = TopicAdmin(broker.bootstrap)
    load = pipeline.Load(
        "two",
        rate=2000,
        count=400,
        warmup=100,
        topics=2,
        partitions=2,
        message_size=64,
        random_bytes_ratio=0.5,
        payload_pool=10,
        key_distributor="RANDOM_NANO",
    )
    admin.create_all(load.topic_names, partitions=2)
    result = pipeline.run(broker.bootstrap, load)
    assert result.histogram.get_total_count() == load.count - load.warmup
    for t, topic in enumerate(load.topic_names):
        values = [v for vs in read_back(broker.bootstrap, topic, 2, 200).values() for v in vs]
        assert sorted(int.from_bytes(v[:8], "big") for v in values) == list(range(t, 400, 2))
        # OMB's randomized values: the first half random (the index's 8 bytes over its start)
        assert all(len(v) == 64 and v[32:] == bytes(32) for v in values)
        assert len({v[8:32] for v in values}) > 1


def test_the_other_clients_refuse_a_workload_shape():
    """Refused before any process starts: no broker needed."""
    load = pipeline.Load("t", rate=1000, count=100, warmup=0, partitions=2)
    for clients, consumer, layout in [
        ("loadgen", None, "split"),
        ("confluent", "kafka-python", "split"),
        ("confluent", None, "shared"),
    ]:
        with pytest.raises(ValueError, match="needs the confluent clients"):
            pipeline.run(
                "127.0.0.1:1", load, clients=clients, consumer_clients=consumer, layout=layout
            )
