"""Several load processes against a real broker: producers on one open-loop schedule, closed
loop until stopped, and consumers reading a backlog or tailing.

Behaviour, not timing: every acknowledged record is stored (the high watermark is what the
processes acknowledged), a load offered far above what any machine takes (10^9 records/s) is
saturated with what was not sent counted, every consumer reads what was stored. Loads the test
asserts to be kept get a grace long enough for any machine to send them.
"""

import time

import pytest

from scenarios.clients.load_processes import LoadProcesses, leaders, log_end_offsets
from scenarios.clients.loadgen import BatchProducer
from scenarios.harness.saturation import SATURATED_BELOW

PER_BATCH = 100  # records per request: small batches keep the test's log small


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A broker, three topics and two producer processes and one consumer process on it."""
    from tests.conftest import broker_process

    broker = broker_process(str(tmp_path_factory.mktemp("load") / "data")).start()
    try:
        creator = BatchProducer(broker.bootstrap)
        for topic, partitions in (("open", 2), ("closed", 1), ("tail", 1)):
            creator.create_topic(topic, partitions)
        creator.close()
        with LoadProcesses(broker.bootstrap, 2, 1, records_per_batch=PER_BATCH) as load:
            yield broker, load
    finally:
        broker.stop()


def _stored(broker, topic: str, partitions: int) -> int:
    return sum(log_end_offsets(broker.bootstrap, topic, list(range(partitions))).values())


def test_an_open_loop_step_is_stored_whole_and_the_backlog_read_back(node):
    broker, load = node
    before = load.acknowledged
    # 200 requests over 0.5 s; the grace lets any machine send every one of them
    result = load.produce("open", 2, 40_000, 0.5, grace_s=60)
    assert result.errors == []
    assert result.processes == 2
    assert result.records_offered == 200 * PER_BATCH  # due within the step, both processes
    assert result.records_acknowledged == result.records_offered
    assert result.bytes == 200 * load.batch_bytes
    assert result.latency.get_total_count() == 200  # one latency per request
    assert load.acknowledged - before == result.records_acknowledged
    assert _stored(broker, "open", 2) == load.acknowledged - before
    assert result.offered_per_s == 40_000 and result.achieved_per_s > 0
    read = load.consume("open", {0: 0, 1: 0})
    assert read.errors == [] and read.processes == 1
    assert read.records == result.records_acknowledged
    assert read.bytes == result.bytes


def test_a_rate_no_machine_takes_is_saturated_and_ends_on_time(node):
    broker, load = node
    before = _stored(broker, "open", 2)
    result = load.produce("open", [0, 1], 1e9, 0.2, grace_s=0)
    assert result.errors == []
    assert result.records_offered == pytest.approx(2e8, rel=0.01)
    assert 0 < result.records_acknowledged < result.records_offered  # the rest never went out
    assert result.achieved_fraction < SATURATED_BELOW and result.saturated
    assert _stored(broker, "open", 2) - before == result.records_acknowledged


def test_closed_loop_until_stopped_counts_live(node):
    broker, load = node
    before, stored = load.acknowledged, _stored(broker, "closed", 1)
    load.begin_produce("closed", 1, None, None, chunk_bytes=1 << 20, processes=1)
    deadline = time.monotonic() + 60
    while load.acknowledged == before and time.monotonic() < deadline:
        time.sleep(0.01)
    load.stop()
    result = load.end_produce()
    assert result.errors == [] and result.processes == 1
    assert result.offered_per_s is None and result.achieved_fraction == 1.0
    assert result.records_acknowledged == load.acknowledged - before > 0
    assert _stored(broker, "closed", 1) - stored == result.records_acknowledged


def test_a_tailing_consumer_gets_what_is_produced_while_it_tails(node):
    broker, load = node
    end = log_end_offsets(broker.bootstrap, "tail", [0])
    load.begin_consume("tail", end, tail_seconds=3.0, max_wait_ms=100)
    produced = load.produce("tail", 1, 20_000, 0.2, grace_s=60)
    read = load.end_consume()
    assert produced.errors == [] and read.errors == []
    assert read.records == produced.records_acknowledged > 0
    assert read.requests >= 1


def test_errors_come_back_as_text_and_the_processes_serve_on(node):
    _, load = node
    result = load.produce("no-such-topic", 1, 10_000, 0.1, grace_s=60)
    assert len(result.errors) == 2 and result.records_acknowledged == 0
    assert "UnknownTopicOrPartition" in result.errors[0] or "NotLeader" in result.errors[0]
    again = load.produce("open", 2, 10_000, 0.1, grace_s=60)
    assert again.errors == [] and again.records_acknowledged == again.records_offered


def test_leaders_and_orders_that_cannot_be_carried_out(node):
    broker, load = node
    by_partition, brokers = leaders(broker.bootstrap, "open")
    assert set(by_partition) == {0, 1} and set(by_partition.values()) <= set(brokers)
    with pytest.raises(ValueError):
        load.produce("open", 2, 1000, 0.1, processes=3)  # two run
    with pytest.raises(ValueError):
        load.begin_produce("open", 2, 1000, None)  # an open loop needs its length
    with pytest.raises(ValueError):
        LoadProcesses(broker.bootstrap, 0, 0)
    assert len(load.pids["producers"]) == 2 and len(load.pids["consumers"]) == 1
