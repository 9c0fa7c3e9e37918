"""The real clients' producers: one driver per client library, with a variant's batch.size,
linger.ms, compression.type and acks, timing a produce loop closed (as fast as the client takes
the records), open (record i offered at start + i/rate, latency from that intended time) or
synchronous (one record at a time, each waited for before the next is sent).

confluent-kafka's Producer (librdkafka: batches built, compressed and sent on its own C threads)
and kafka-python's KafkaProducer (pure Python, one sender thread). Both set alike what the
clients' defaults would make differ: acks=all (unless a scenario asks for acks=0), no
idempotence, and a request size that a full batch always fits. batch-compression measures them,
async-send their synchronous and fire-and-forget sends; any scenario that needs a real producer
uses them.
"""

import contextlib
import gc
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from hdrh.histogram import HdrHistogram

from scenarios.clients.schedule import OpenLoopSchedule

_MIB = 1 << 20
CONFLUENT = "confluent-kafka"  # the default client: its variants' names carry no client
KAFKA_PYTHON = "kafka-python"
_ACKS = "all"  # both clients alike: librdkafka's default, and kafka-python's


@dataclass
class ProduceRun:
    """What one timed produce loop did."""

    seconds: float  # first produce()/send() (or the schedule's start) to the end of flush()
    cpu_s: float  # CPU time of this process (every thread) over the same interval
    library_cpu_s: float  # of it, the client library's own threads' (not the calling thread's)
    delivered: int
    left: int  # records neither delivered nor failed when flush() gave up
    errors: list[str] = field(default_factory=list)
    # produce()/send() to its report; open loop: from the record's due time to its report
    latencies_s: list[float] = field(default_factory=list)
    # open loop: from the first record's delivery to the last's, in seconds
    delivered_span_s: float | None = None
    # delivery reports without an offset (acks=0: the broker sends no acknowledgement, so the
    # client reports the record sent, with no offset (confluent-kafka: None, kafka-python: -1),
    # as soon as its request is written)
    unacknowledged: int = 0
    # synchronous sends only: the most records ever sent and not yet reported (1 when each is
    # waited for before the next); None for the other loops, which do not count it
    max_in_flight: int | None = None


class ProducerDriver(ABC):
    """One real client's producer with a variant's batch.size, linger.ms and compression.type.

    warm_up() sends one record and waits for it; produce() times sending `values` as fast as the
    client takes them (closed loop), or record i at start + i/rate (open loop, where the client
    can: `open_loop`), one delivery callback per record, and flush(); or, with sync=True, one
    record at a time, each waited for (confluent-kafka: produce() then flush(); kafka-python:
    send().get()) before the next is sent, latency the round trip. close() ends the client.
    A subclass sends (_send_all, _send_all_at, _send_each) and flushes (_flush); delivery
    callbacks append to self.latencies and self.errors (list.append is atomic, so a callback
    may run on the client's own thread) and count reports without an offset in
    self.unacknowledged (only the client's one callback thread writes it)."""

    client: ClassVar[str]
    open_loop: ClassVar[bool] = False  # whether _send_all_at is implemented
    flush_timeout_s = 120

    def __init__(
        self, bootstrap: str, batch_size: int, linger_ms: int, codec: str, acks: str = _ACKS
    ) -> None:
        self.latencies: list[float] = []  # seconds, one per delivered record that has one
        self.errors: list[str] = []
        self.unacknowledged = 0  # delivery reports without an offset (acks=0)
        self.max_in_flight = 0  # synchronous sends: most records sent and not yet reported

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the client cannot run here, or None."""
        return None

    @abstractmethod
    def warm_up(self, topic: str, value: bytes) -> None: ...

    @abstractmethod
    def _send_all(self, topic: str, values: list[bytes]) -> None: ...

    def _send_all_at(self, topic: str, values: list[bytes], schedule: OpenLoopSchedule) -> None:
        """Send value i when schedule.due_ns(i) comes; latency runs from that due time."""
        raise NotImplementedError(f"{self.client}: no open-loop driver")

    @abstractmethod
    def _send_each(self, topic: str, values: list[bytes]) -> None:
        """Send one record and wait for its report before the next; append each round trip
        to self.latencies; count in self.max_in_flight the most records sent and unreported."""

    @abstractmethod
    def _flush(self) -> int:
        """Flush; the records still pending afterwards."""

    def _delivered(self) -> int:
        return len(self.latencies)

    def close(self) -> None:  # noqa: B027 - optional: a client with nothing to close
        pass

    def produce(
        self, topic: str, values: list[bytes], rate: float | None = None, sync: bool = False
    ) -> ProduceRun:
        """Closed loop (rate None), open loop at `rate` records/s, or synchronous (sync: one
        record at a time, each waited for)."""
        if sync and rate is not None:
            raise ValueError("a synchronous loop has no offered rate")
        self.latencies.clear()
        self.errors.clear()
        self.unacknowledged = 0
        self.max_in_flight = 0
        gc.disable()  # as timeit does: no collector pauses inside the timed loop
        try:
            cpu_before = time.process_time()  # all threads of this process, the client's too
            loop_before = time.thread_time()  # this thread's: produce()/send(), callbacks
            started = time.perf_counter_ns()
            if sync:
                self._send_each(topic, values)
            elif rate is None:
                self._send_all(topic, values)
            else:
                self._send_all_at(topic, values, OpenLoopSchedule(started, rate))
            left = self._flush()
            seconds = (time.perf_counter_ns() - started) / 1e9
            cpu_s = time.process_time() - cpu_before
            loop_s = time.thread_time() - loop_before
        finally:
            gc.enable()
        return ProduceRun(
            seconds,
            cpu_s,
            max(cpu_s - loop_s, 0.0),
            self._delivered(),
            left,
            list(self.errors),
            list(self.latencies),
            self._delivered_span_s(),
            self.unacknowledged,
            self.max_in_flight if sync else None,
        )

    def _delivered_span_s(self) -> float | None:
        """Open loop: first delivery to last, in seconds (None in closed loop)."""
        return None


class ConfluentKafkaDriver(ProducerDriver):
    """confluent-kafka's Producer: librdkafka batches, compresses and sends on its own threads;
    delivery reports are served by poll() in this thread, latency is librdkafka's own clock."""

    client = CONFLUENT
    open_loop = True

    def __init__(
        self,
        bootstrap: str,
        batch_size: int,
        linger_ms: int,
        codec: str,
        acks: str = _ACKS,
        properties: Mapping[str, str | int] | None = None,  # librdkafka's, over the above
    ) -> None:
        from confluent_kafka import Producer

        super().__init__(bootstrap, batch_size, linger_ms, codec, acks)
        self.delivered = 0
        self.round_trips = False  # synchronous: latency is the loop's round trip, not librdkafka's
        self.next_offset = 0  # the offset the first timed record gets (after the warm-up's)
        self.lags_s: list[float] | None = None  # open loop: record i's due time to produce()
        self.interval_s = 0.0  # open loop: 1 / rate
        self.done_s: list[float] = []  # open loop: when each report came, from the start
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "batch.size": batch_size,
                "linger.ms": linger_ms,
                "compression.type": codec,
                "acks": acks,  # "all" unless asked: its default
                # librdkafka also caps a batch at 10,000 records and message.max.bytes
                # (1,000,000); lifted so that batch.size alone decides, as in Kafka's client
                "batch.num.messages": 1_000_000,
                "message.max.bytes": max(1_000_000, batch_size),
                "on_delivery": self._on_delivery,
                **(properties or {}),
            }
        )

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        self.delivered += 1
        offset = message.offset()
        if offset is None or offset < 0:  # acks=0: sent, never acknowledged (no offset)
            self.unacknowledged += 1
        latency = message.latency()  # librdkafka's clock: produce() to this report
        if latency is None or self.round_trips:
            return
        if self.lags_s is not None:  # open loop: from the due time (one partition, fresh
            # topic: the i-th timed record is at offset next_offset + i)
            i = message.offset() - self.next_offset
            latency += self.lags_s[i]
            self.done_s.append(i * self.interval_s + latency)  # due time + latency
        self.latencies.append(latency)

    def _delivered(self) -> int:
        return self.delivered

    def _delivered_span_s(self) -> float | None:
        if self.lags_s is None or not self.done_s:
            return None
        return max(self.done_s) - min(self.done_s)

    def warm_up(self, topic: str, value: bytes) -> None:
        offsets: list[int] = []

        def delivered(error, message) -> None:
            if error is None:
                offsets.append(message.offset())
            else:
                self.errors.append(str(error))

        self.producer.produce(topic, value, on_delivery=delivered)
        if self.producer.flush(30) or self.errors or not offsets:
            raise RuntimeError(f"{self.client}: warm-up record not delivered {self.errors}")
        # acks=0 reports no offset (None); next_offset serves the open loop, acks=all only
        self.next_offset = offsets[0] + 1 if offsets[0] is not None else 0

    def produce(
        self, topic: str, values: list[bytes], rate: float | None = None, sync: bool = False
    ) -> ProduceRun:
        self.delivered = 0
        self.lags_s = None
        return super().produce(topic, values, rate, sync)

    def _send_all(self, topic: str, values: list[bytes]) -> None:
        produce, poll = self._produce, self.producer.poll
        for value in values:
            produce(topic, value, 0.005)
            poll(0)  # serve delivery reports as they come

    def _send_each(self, topic: str, values: list[bytes]) -> None:
        """produce() then flush() for every record: flush() serves its delivery report and
        returns when nothing is pending."""
        produce, flush, clock = self.producer.produce, self.producer.flush, time.perf_counter
        latencies, errors = self.latencies, self.errors
        self.round_trips = True
        try:
            for sent, value in enumerate(values):
                started = clock()
                produce(topic, value)
                in_flight = sent + 1 - self.delivered - len(errors)
                self.max_in_flight = max(self.max_in_flight, in_flight)
                if flush(self.flush_timeout_s):
                    errors.append(f"record {sent} not delivered in {self.flush_timeout_s} s")
                    return
                latencies.append(clock() - started)
        finally:
            self.round_trips = False

    def _produce(self, topic: str, value: bytes, wait_s: float) -> None:
        while True:
            try:
                self.producer.produce(topic, value)
                return
            except BufferError:  # the client's queue is full: serve it, then retry
                self.producer.poll(wait_s)

    def _send_all_at(self, topic: str, values: list[bytes], schedule: OpenLoopSchedule) -> None:
        """Record i is due at schedule.due_ns(i): wait for it serving delivery reports (poll()
        waits in whole milliseconds, so the last one is slept), then produce(). A record that
        comes late (the loop fell behind, or the queue was full) carries its lag into its
        latency, so a stall shows in every record it held up (coordinated omission)."""
        produce, poll, clock, sleep = (
            self._produce,
            self.producer.poll,
            time.perf_counter_ns,
            time.sleep,
        )
        lags = self.lags_s = [0.0] * len(values)
        self.interval_s = 1 / schedule.rate_per_s
        self.done_s = []
        for i, value in enumerate(values):
            due = schedule.due_ns(i)
            while (wait := due - clock()) > 2_000_000:
                poll((wait - 1_000_000) / 1e9)
            if wait > 0:
                sleep(wait / 1e9)
            produce(topic, value, 0.001)
            lags[i] = (clock() - due) / 1e9  # before any report of it: poll() serves those
            poll(0)

    def _flush(self) -> int:
        return self.producer.flush(self.flush_timeout_s)

    def close(self) -> None:
        del self.producer  # its threads end with it


class KafkaPythonDriver(ProducerDriver):
    """kafka-python's KafkaProducer: send() appends the record to a batch in Python and returns
    a future; one sender thread builds, compresses and sends the batches and completes the
    futures, running their callbacks. Latency is perf_counter() from just before send() to the
    callback."""

    client = KAFKA_PYTHON

    def __init__(
        self, bootstrap: str, batch_size: int, linger_ms: int, codec: str, acks: str = _ACKS
    ) -> None:
        from kafka import KafkaProducer

        super().__init__(bootstrap, batch_size, linger_ms, codec, acks)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="kbench-batch-compression",
            batch_size=batch_size,
            linger_ms=linger_ms,
            compression_type=None if codec == "none" else codec,
            acks=int(acks) if acks.isdigit() else acks,  # 0, 1 or "all"
            enable_idempotence=False,  # on by default in kafka-python 3; off in librdkafka
            # a request holds at least one full batch (default 1 MiB); kafka-python 3 has no
            # buffer_memory: its queue is unbounded
            max_request_size=max(_MIB, 2 * batch_size),
        )
        self.sent = 0

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            from kafka import KafkaProducer
        except ImportError as error:
            return f"kafka-python cannot be imported: {error}"
        if "enable_idempotence" not in KafkaProducer.DEFAULT_CONFIG:
            return "kafka-python is older than 3.0 (no enable_idempotence)"
        return None

    def warm_up(self, topic: str, value: bytes) -> None:
        self.producer.send(topic, value).get(timeout=30)

    def _send_all(self, topic: str, values: list[bytes]) -> None:
        send, clock = self.producer.send, time.perf_counter
        latencies, errors = self.latencies, self.errors

        def delivered(sent: float, metadata) -> None:
            latencies.append(clock() - sent)
            if metadata.offset is None or metadata.offset < 0:  # acks=0: never acknowledged
                self.unacknowledged += 1

        def failed(error: Exception) -> None:
            errors.append(repr(error))

        for value in values:
            sent = clock()
            send(topic, value).add_callback(delivered, sent).add_errback(failed)
        self.sent = len(values)

    def _send_each(self, topic: str, values: list[bytes]) -> None:
        """send().get() for every record: the future completes when the record's
        acknowledgement (or, with acks=0, its request's write) comes back."""
        send, clock = self.producer.send, time.perf_counter
        latencies, errors = self.latencies, self.errors
        for sent, value in enumerate(values):
            started = clock()
            future = send(topic, value)
            self.max_in_flight = max(self.max_in_flight, sent + 1 - len(latencies) - len(errors))
            try:
                metadata = future.get(timeout=self.flush_timeout_s)
            except Exception as error:  # a failed or timed-out record: counted, loop ends
                errors.append(repr(error))
                return
            latencies.append(clock() - started)
            if metadata.offset is None or metadata.offset < 0:
                self.unacknowledged += 1
        self.sent = len(values)

    def _flush(self) -> int:
        from kafka.errors import KafkaTimeoutError

        with contextlib.suppress(KafkaTimeoutError):  # what is left is counted below
            self.producer.flush(self.flush_timeout_s)
        return self.sent - len(self.latencies) - len(self.errors)

    def close(self) -> None:
        self.producer.close(timeout=30)


def latency_histogram_us(latencies_s: list[float]) -> HdrHistogram:
    """An HdrHistogram (3 significant digits) of latencies given in seconds, in µs.

    hdrh records one value in ~4 µs of Python; each value is first cut to the histogram's own
    resolution (its top 11 bits: what the histogram keeps anyway) and equal ones recorded once
    with their count, which gives the same histogram a hundred times faster."""
    histogram = HdrHistogram(1, 600_000_000, 3)  # 1 µs to 10 min
    counts: Counter[int] = Counter()
    for latency in latencies_s:
        value = max(round(latency * 1e6), 1)
        shift = value.bit_length() - 11
        counts[value if shift <= 0 else (value >> shift) << shift] += 1
    for value, count in counts.items():
        histogram.record_value(value, count)
    return histogram


DRIVERS: dict[str, type[ProducerDriver]] = {
    driver.client: driver for driver in (ConfluentKafkaDriver, KafkaPythonDriver)
}
