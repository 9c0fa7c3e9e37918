"""The fast load generator against the real broker, closed and open loop."""

from scenarios.clients.loadgen import BatchProducer, OpenLoopSchedule


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
