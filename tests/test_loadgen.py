"""The fast load generator against the real broker, closed and open loop."""

import time

from engine.records import SimpleRecord, build_batch
from scenarios.clients.fetch_client import BatchHeader, whole_batches
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.schedule import OpenLoopSchedule


def test_open_loop_latency_counts_from_the_intended_send_time():
    schedule = OpenLoopSchedule(start_ns=0, rate_per_s=1000)  # one request per millisecond
    assert [schedule.due_ns(i) for i in range(3)] == [0, 1_000_000, 2_000_000]
    # the broker stalled: request 10 was due at 10 ms, could only be sent at 45 ms and was
    # answered at 50 ms; its latency is 40 ms, not the 5 ms a closed-loop client would report
    assert schedule.latency_ns(10, completed_ns=50_000_000) == 40_000_000


def test_produces_every_batch_closed_and_open_loop(broker):
    producer = BatchProducer(broker.bootstrap)
    try:
        _exercise(producer)
    finally:
        producer.close()


def _exercise(producer: BatchProducer) -> None:
    producer.create_topic("load", 4)
    producer.create_topic("load", 4)  # exists already: fine
    closed = producer.produce("load", 4, 1 << 20)
    assert closed.requests == (1 << 20) // len(producer.batch)
    assert closed.bytes == closed.requests * len(producer.batch)
    assert 0 < closed.p50_latency_us <= closed.p99_latency_us
    opened = producer.produce("load", 4, 8 * len(producer.batch), rate_per_s=2000)
    assert opened.requests == 8
    assert 0 < opened.p50_latency_us <= opened.p99_latency_us


def test_open_loop_from_a_given_start_time(broker):
    """start_ns lets processes share one schedule (CLOCK_MONOTONIC): nothing is sent before it,
    and latency runs from it."""
    producer = BatchProducer(broker.bootstrap, records_per_batch=10)
    try:
        producer.create_topic("scheduled", 1)
        start_ns = time.perf_counter_ns() + 200_000_000
        stats = producer.produce(
            "scheduled", 1, 4 * len(producer.batch), rate_per_s=1000, start_ns=start_ns
        )
        assert time.perf_counter_ns() >= start_ns + 3_000_000  # request 3 was due at 3 ms
        assert stats.requests == 4
    finally:
        producer.close()


def test_whole_batches_leaves_a_partial_batch_for_the_next_fetch():
    first = bytearray(build_batch([SimpleRecord(b"a"), SimpleRecord(b"b")]))
    second = bytearray(build_batch([SimpleRecord(b"c")]))
    second[:8] = (2).to_bytes(8, "big")  # baseOffset 2
    view = memoryview(bytes(first + second[:-1]))
    assert list(whole_batches(view)) == [BatchHeader(0, 2, 2, len(first))]
    view = memoryview(bytes(first + second))
    assert [b.next_offset for b in whole_batches(view)] == [2, 3]
    assert list(whole_batches(memoryview(b""))) == []
