"""scenarios.clients.pipeline against a real broker: producer and consumer processes at an
offered rate, every record delivered and every measured record timed. Counts, not timing."""

import pytest

from scenarios.clients import pipeline
from scenarios.clients.loadgen import BatchProducer


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
