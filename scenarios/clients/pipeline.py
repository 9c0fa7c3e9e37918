"""Records through a broker at an offered rate, timed from each record's intended send time to
its delivery to a tailing consumer: end-to-end latency without coordinated omission.

A producer offers `count` records (100 bytes each, by default) to one partition, open loop:
record i is due at start + i/rate (scenarios.clients.schedule.OpenLoopSchedule, on
CLOCK_MONOTONIC, which every process on the machine shares), and its latency runs from that due
time to the moment the consumer has it, so a record the producer sent late carries its lag too.
The first `warmup` records are offered but not recorded. Latencies go into an HdrHistogram,
merged over every consumer. With `publish_latency` the confluent producer also times each
record's acknowledgement from its due time (OMB's publish latency), at the cost of a delivery
report, a Python call, per record.

A Load's shape (kbench tune's OpenMessaging Benchmark workloads) can spread the records:
- `topics` topics of `partitions` partitions each; `producers` producer processes per topic
  (one process each: two producers' loops in one process would share its GIL, one's records
  waiting on the other's, where OMB's producers are Java threads that need no such lock).
  With N producers over all topics, producer k offers records k, k+N, k+2N, ... to its topic
  (k // producers): each keeps its own open-loop schedule, and together the records stay evenly
  spaced at the total rate, as OMB's producerRate is the total over all producers.
- `subscriptions` per topic, each of `consumers` consumer processes that split the topic's
  partitions (consumer c takes those whose number is c modulo `consumers`, as Kafka's
  round-robin assignor would). Every subscription must get every record of its topic exactly:
  the count of records and the sum of their indexes are checked per subscription.
  Consumers are assigned their partitions, not joined to a group (subscribe). The engine's
  group join is quick (two members of a 4-partition topic assigned in 0.1 s here), but a member
  cannot tell from its own assignment that the group is complete (a later member takes some of
  its partitions), a rebalance after the start would re-deliver records from the last committed
  offsets and be measured as latency the group protocol caused, not the settings, and a Kafka
  cluster delays a new group's first rebalance by group.initial.rebalance.delay.ms (3 s). With
  assign() each consumer knows its partitions, so the start gate opens once each is tailing;
  fetching is the same either way.
- The confluent producer writes each record's index in the first INDEX_BYTES bytes of its value
  (big-endian), the rest `message_size` bytes from the payload (a payload file, OMB's randomized
  pool, or zeros: scenarios.clients.payloads.omb_values), and gives it a key as OMB's
  `key_distributor` does (none: the client's partitioner spreads the records; KEY_ROUND_ROBIN,
  RANDOM_NANO: OMB's keys, hashed by the client). The consumer reads the index back, so offsets
  need not be indexes. Before the start each producer sends a warm-up mark to every partition of
  its topic (a consumer is tailing once it has one on each of its partitions), after its last
  record an end mark (a consumer stops once every producer's has come on each of its partitions).
- The other clients (BatchProducer's prebuilt records, the FetchClient and kafka-python
  consumers) take a record's index from its offset less the warm-up's, so they measure the plain
  shape only: one topic, partition, producer and consumer, 100-byte records (run refuses more).

Clients (`clients`):
- confluent: the real client. confluent-kafka's Producer (acks=1, no idempotence, linger.ms=1
  unless Load.producer says otherwise), one produce() per record as each comes due; and
  confluent-kafka's Consumer assigned to the partition (fetch.min.bytes=1, fetch.wait.max.ms=500
  unless Load.consumer says otherwise: librdkafka's property names), which reports how many
  fetch requests it sent (librdkafka's statistics).
- loadgen: the lightest clients, so the figure is the broker's. BatchProducer sends one
  prebuilt batch of `per_request` records per due time, its records due with the request (as a
  client that lingered and sent); FetchClient long-polls (fetch.min.bytes, fetch.wait.max.ms and
  max.partition.fetch.bytes from Load.consumer) and records each batch's latency once per record
  it holds.
- kafka-python (consumer only): kafka-python's KafkaConsumer assigned to the partition
  (fetch_min_bytes, fetch_max_wait_ms, max_partition_fetch_bytes and max_poll_records from
  Load.consumer under librdkafka's names and max.poll.records), counting the fetch responses it
  handles.

The producer's client and the consumer's may differ (run's consumer_clients): a loadgen producer
feeding a real consumer keeps the producer from being what is measured.

Layouts: `split` runs producer and consumer in two processes, `shared` in one (the consumer on
a second thread, the two Python loops sharing one GIL). A third process can probe the machine
(probe_machine). The parent (run) starts them, opens a StartGate when every role is ready (the
consumer tailing the partition), meters the broker's CPU and the rest of the machine's, and
gathers one Round. Each role runs in its own process or thread with its own clients; the gate
(a threading.Barrier) is all that threads share.

Run as `python -m scenarios.clients.pipeline --role ...` by run() only.
"""

import argparse
import array
import gc
import json
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from scenarios.clients import payloads
from scenarios.clients.schedule import OpenLoopSchedule
from scenarios.harness.resources import ResourceMeter, cpu_seconds

RECORD_SIZE = 100
INDEX_BYTES = 8  # a record's index at the start of its value (the confluent producer's)
_INDEX = struct.Struct(">q")
_WARMUP_MARK, _END_MARK = -1, -2  # indexes of the records around the load, not part of it
CLIENTS = ("confluent", "loadgen")  # producers, and consumers
CONSUMER_CLIENTS = (*CLIENTS, "kafka-python")  # consumers: those, and kafka-python
LAYOUTS = ("split", "shared")
_FETCH_MAX_BYTES = 1 << 20


def histogram() -> HdrHistogram:
    """An empty latency histogram: 1 ns to 60 s, 3 significant digits."""
    return HdrHistogram(1, 60_000_000_000, 3)


@dataclass(frozen=True)
class Load:
    """What one run offers: `count` records at `rate` per second after a warm-up request,
    `per_request` records sharing a due time (1: each record its own); the first `warmup`
    records are offered but not recorded. `producer` and `consumer`: client properties that
    replace the defaults (librdkafka's names; the loadgen clients read acks,
    fetch.min.bytes, fetch.wait.max.ms and max.partition.fetch.bytes; the kafka-python consumer
    those three and max.poll.records; the confluent consumer takes max.poll.records, no
    librdkafka property, as its consume() batch). The rest is the load's shape (the module's
    docstring); the defaults are the plain shape, which every client measures."""

    topic: str  # the topic; with several, the prefix of their names (topic_names)
    rate: float  # records/s, over all producers
    count: int
    warmup: int
    per_request: int = 1
    producer: dict[str, Any] = field(default_factory=dict)
    consumer: dict[str, Any] = field(default_factory=dict)
    topics: int = 1
    partitions: int = 1  # per topic
    producers: int = 1  # per topic
    subscriptions: int = 1  # per topic
    consumers: int = 1  # per subscription
    message_size: int = RECORD_SIZE  # bytes of each value
    payload_file: str | None = None  # the values' bytes (message_size of them)
    random_bytes_ratio: float | None = None  # OMB's useRandomizedPayloads: this fraction random
    payload_pool: int = 1  # OMB's randomizedPayloadPoolSize
    key_distributor: str = "NO_KEY"  # OMB's: NO_KEY, KEY_ROUND_ROBIN, RANDOM_NANO
    # the confluent producer times each record's acknowledgement from its due time (publish
    # latency, OMB's other figure); it costs a delivery report, a Python call, per record
    publish_latency: bool = False

    def due_ns(self, schedule: OpenLoopSchedule, index: int) -> int:
        return schedule.due_ns(index - index % self.per_request)

    @property
    def topic_names(self) -> list[str]:
        if self.topics == 1:
            return [self.topic]
        return [f"{self.topic}-{t}" for t in range(self.topics)]

    @property
    def plain(self) -> bool:
        """The shape every client measures (records' indexes are their offsets)."""
        return (
            self.topics * self.partitions * self.producers * self.subscriptions * self.consumers
            == 1
            and self.message_size == RECORD_SIZE
            and self.payload_file is None
            and self.random_bytes_ratio is None
            and self.key_distributor == "NO_KEY"
        )

    def records_of(self, producer: int) -> range:
        """The indexes producer number `producer` (of all topics') offers."""
        return range(producer, self.count, self.topics * self.producers)

    def expected(self, topic: int) -> tuple[int, int]:
        """How many records a subscription of topic number `topic` gets, and their indexes' sum."""
        mine = [self.records_of(topic * self.producers + k) for k in range(self.producers)]
        return sum(len(r) for r in mine), sum(sum(r) for r in mine)

    @property
    def seconds(self) -> float:
        """How long the offered load lasts."""
        return self.count / self.rate


class StartGate:
    """The roles of one client process say "ready" on stdout together, then all start at the
    time the parent sends back (one line on stdin, perf_counter_ns)."""

    def __init__(self, roles: int) -> None:
        self.start_ns = 0
        self.cpu_at_start = 0.0  # the process's CPU seconds when the gate opened
        self._barrier = threading.Barrier(roles, action=self._ready)

    def _ready(self) -> None:
        print("ready", flush=True)
        self.start_ns = int(sys.stdin.readline())
        self.cpu_at_start = time.process_time()

    def wait(self) -> int:
        self._barrier.wait()
        return self.start_ns

    def abort(self) -> None:
        """A role failed: the others waiting at the gate stop waiting (BrokenBarrierError)."""
        self._barrier.abort()


# -- producers -----------------------------------------------------------------------------------
def confluent_produce(bootstrap: str, load: Load, gate: StartGate, member: int = 0) -> dict:
    """Producer number `member` (of all topics'): one produce() per record as it comes due;
    what the loop did."""
    from confluent_kafka import Producer

    errors: list[str] = []
    acked = histogram()  # publish latency, when load.publish_latency
    due_of: list[Callable[[int], int]] = []  # the schedule's, once the gate opens
    unpack, measured = _INDEX.unpack_from, range(load.warmup, load.count)

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(str(error))
        elif due_of and (index := unpack(message.value())[0]) in measured:
            acked.record_value(max(time.perf_counter_ns() - due_of[0](index), 1))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "enable.idempotence": False,
            "linger.ms": 1,
            **load.producer,
            # without publish latency, no Python call per record: reports of errors only
            "delivery.report.only.error": not load.publish_latency,
            "on_delivery": delivered,
        }
    )
    topic = load.topic_names[member // load.producers]
    # each value: the record's index, then the payload's bytes after as many as the index took
    tails = [
        value[INDEX_BYTES:]
        for value in payloads.omb_values(
            load.message_size, load.payload_file, load.random_bytes_ratio, load.payload_pool
        )
    ]
    pack = _INDEX.pack

    def marks(index: int) -> None:
        """A mark on every partition of the topic: the consumers look for one on each."""
        for partition in range(load.partitions):
            producer.produce(topic, pack(index) + tails[0], partition=partition)

    marks(_WARMUP_MARK)  # the warm-up: metadata, connections, and the consumers' start
    if producer.flush(30):
        raise RuntimeError(f"the warm-up records were not delivered to {bootstrap}")
    key = _key_distributor(load.key_distributor)
    start_ns = gate.wait()
    schedule = OpenLoopSchedule(start_ns, load.rate)
    due_of.append(schedule.due_ns)
    indexes = load.records_of(member)
    count, pool = len(indexes), len(tails)
    produce, poll, clock, sleep = producer.produce, producer.poll, time.perf_counter_ns, time.sleep
    due = schedule.due_ns
    # How late produce() ran after the due time, one entry per burst of records sent together,
    # counted for each record of the burst at its first (latest) record's lag: an upper bound,
    # for a fraction of the cost of one histogram entry per record.
    lag = histogram()
    gc.disable()  # as timeit does: no collector pauses inside the timed loop
    j = 0  # the position in this producer's records
    while j < count:
        now = clock()
        wait = due(indexes[j]) - now
        if wait > 1_500_000:
            poll((wait - 1_000_000) / 1e9)  # serves reports; whole milliseconds
            continue
        if wait > 0:
            sleep(wait / 1e9)
            now = clock()
        first = j
        first_lag = now - due(indexes[j])
        while j < count and due(index := indexes[j]) <= now:
            try:
                produce(topic, pack(index) + tails[j % pool], key(j))
            except BufferError:  # the client's queue is full: this record waits, its lag counts
                poll(0.001)
                break
            j += 1
        if j > first:
            lag.record_value(max(first_lag, 1), j - first)
        poll(0)
    gc.enable()
    produced_ns = clock()
    marks(_END_MARK)
    left = producer.flush(60)
    if left or errors:
        raise RuntimeError(f"{left} records not delivered, errors: {errors[:5]}")
    said: dict[str, Any] = {
        "produce_seconds": (produced_ns - start_ns) / 1e9,
        "lag_p99_ms": lag.get_value_at_percentile(99) / 1e6,
    }
    if load.publish_latency:
        said["publish_histogram"] = acked.encode().decode()
    return said


def _key_distributor(name: str) -> Callable[[int], bytes | None]:
    """The key of a producer's j-th record, as OMB's KeyDistributor gives it: NO_KEY none (the
    client's partitioner chooses), KEY_ROUND_ROBIN the next of its keys each time (OMB's starts
    at its second), RANDOM_NANO the one the clock's nanoseconds pick."""
    if name == "NO_KEY":
        return lambda _j: None
    keys = payloads.omb_keys()
    if name == "KEY_ROUND_ROBIN":
        return lambda j: keys[(j + 1) % len(keys)]
    if name == "RANDOM_NANO":
        return lambda _j: keys[time.perf_counter_ns() % len(keys)]
    raise ValueError(f"key_distributor must be NO_KEY, KEY_ROUND_ROBIN or RANDOM_NANO, got {name}")


def loadgen_produce(bootstrap: str, load: Load, gate: StartGate, member: int = 0) -> dict:
    """BatchProducer, open loop: a batch of per_request records at each due time."""
    from scenarios.clients.loadgen import BatchProducer  # kafka-python: loaded where used

    producer = BatchProducer(bootstrap, record_size=RECORD_SIZE, records_per_batch=load.per_request)
    batch = len(producer.batch)
    acks = int(load.producer.get("acks", 1))
    producer.produce(load.topic, 1, batch, acks=acks)  # the warm-up request
    start_ns = gate.wait()
    stats = producer.produce(
        load.topic,
        1,
        load.count // load.per_request * batch,
        rate_per_s=load.rate / load.per_request,
        acks=acks,
        start_ns=start_ns,
    )
    producer.close()
    return {
        "produce_seconds": stats.seconds,
        # from the due time to the ProduceResponse: the acks latency, lateness included
        "ack_p99_ms": stats.p99_latency_us / 1e3,
    }


# -- consumers -----------------------------------------------------------------------------------
@dataclass
class Consumed:
    latencies: HdrHistogram
    delivered: int  # records, the warm-up's included
    last_ns: int  # when the last record came
    fetches: int  # fetch requests sent while the load ran
    fetch_seconds: float = 0.0  # the span over which `fetches` were counted
    index_sum: int = 0  # of the records delivered, read from their values (tagged only)

    def as_dict(self) -> dict:
        return {
            "histogram": self.latencies.encode().decode("ascii"),
            "delivered": self.delivered,
            "last_ns": self.last_ns,
            "fetches": self.fetches,
            "fetch_seconds": self.fetch_seconds,
            "index_sum": self.index_sum,
        }


def confluent_consume(
    bootstrap: str,
    load: Load,
    gate: StartGate,
    timeout_s: float,
    member: int = 0,
    tagged: bool = False,
) -> Consumed:
    """Consumer number `member` (of all subscriptions') tails its partitions from offset 0 with
    confluent-kafka's Consumer. tagged: the records carry their indexes (the confluent
    producer's); else a record's index is its offset less the warm-up's, and `delivered` the
    offset reached (the plain shape)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    # the broker's FetchRequests so far, from librdkafka's statistics, and the report's time
    # (librdkafka's monotonic clock, µs): the span the counts cover
    fetches = [0]
    fetches_ts = [0]

    def statistics(report: str) -> None:
        stats = json.loads(report)
        brokers = stats.get("brokers", {}).values()
        fetches[0] = sum(b.get("req", {}).get("Fetch", 0) for b in brokers)
        fetches_ts[0] = int(stats.get("ts", 0))

    topic, subscription = divmod(member // load.consumers, load.subscriptions)
    # max.poll.records, the Java consumer's, is no librdkafka property: consume()'s batch
    properties = dict(load.consumer)
    batch = int(properties.pop("max.poll.records", 1000))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"kbench-e2e-{subscription}",  # required; assign() uses no group
            "enable.auto.commit": False,
            "fetch.min.bytes": 1,
            "fetch.wait.max.ms": 500,
            **properties,
            "statistics.interval.ms": 100,
            "stats_cb": statistics,
        }
    )
    name = load.topic_names[topic]
    partitions = range(member % load.consumers, load.partitions, load.consumers)
    consumer.assign([TopicPartition(name, p, 0) for p in partitions])
    first_offset = 0
    waiting = set(partitions)
    while waiting:  # the warm-up: tailing each partition once a mark (a record) came from it
        if (message := consumer.poll(1.0)) is not None and message.error() is None:
            waiting.discard(message.partition())
            first_offset = (message.offset() or 0) + 1
    while not fetches_ts[0]:  # a first report: where the count of fetches starts from
        consumer.poll(0.05)
    start_ns = gate.wait()
    fetches_before, ts_before = fetches[0], fetches_ts[0]
    schedule = OpenLoopSchedule(start_ns, load.rate)
    latencies = array.array("q")  # into the histogram afterwards: a fraction of the cost
    consume, poll, clock, append = (
        consumer.consume,
        consumer.poll,
        time.perf_counter_ns,
        latencies.append,
    )
    unpack, warmup = _INDEX.unpack_from, load.warmup
    # tagged: the end marks still to come; plain: offsets, the last one's and the one before
    ends = len(partitions) * load.producers if tagged else 0
    end, offset_warmup = first_offset + load.count, first_offset + load.warmup
    offset = last_ns = delivered = index_sum = 0
    deadline = time.monotonic() + timeout_s
    gc.disable()
    while (ends if tagged else offset < end - 1) and time.monotonic() < deadline:
        # what has arrived, without waiting: consume(n, timeout) waits for n records or the
        # timeout, which would add up to n/rate to every latency; poll() returns on the first
        messages = consume(batch, 0) or [m for m in (poll(0.1),) if m is not None]
        now = clock()
        for message in messages:
            if message.error() is not None:
                raise KafkaException(message.error())
            if tagged:
                (index,) = unpack(message.value())  # type: ignore[arg-type]  # never None here
                if index >= 0:
                    delivered += 1
                    index_sum += index
                    if index >= warmup:
                        append(now - load.due_ns(schedule, index))
                elif index == _END_MARK:
                    ends -= 1
            else:
                offset = message.offset() or 0  # set on every record (None on errors only)
                if offset >= offset_warmup:
                    append(now - load.due_ns(schedule, offset - first_offset))
        if messages:
            last_ns = now
    gc.enable()
    poll(0.2)  # one more statistics report, covering the last fetches
    consumer.close()
    latency = histogram()
    for value in latencies:
        latency.record_value(max(value, 1))
    return Consumed(
        latency,
        delivered if tagged else offset + 1,
        last_ns,
        fetches[0] - fetches_before,
        (fetches_ts[0] - ts_before) / 1e6,
        index_sum,
    )


def fetch_consume(bootstrap: str, load: Load, gate: StartGate, timeout_s: float) -> Consumed:
    """Tail the partition from offset 0 with FetchClient's long-poll fetches."""
    from scenarios.clients.fetch_client import FetchClient, whole_batches  # as BatchProducer

    min_bytes = int(load.consumer.get("fetch.min.bytes", 1))
    max_wait_ms = int(load.consumer.get("fetch.wait.max.ms", 500))
    max_bytes = int(load.consumer.get("max.partition.fetch.bytes", _FETCH_MAX_BYTES))
    client = FetchClient(bootstrap, "kbench-e2e")
    offset = 0
    while offset == 0:  # the warm-up request's records
        _, view = client.fetch(load.topic, 0, 0, max_bytes, max_wait_ms=500)
        for batch in whole_batches(view):
            offset = batch.next_offset
    first_offset = offset
    start_ns = gate.wait()
    counting_from = time.perf_counter_ns()
    schedule = OpenLoopSchedule(start_ns, load.rate)
    latency = histogram()
    end, warmup = first_offset + load.count, first_offset + load.warmup
    last_ns = fetches = 0
    deadline = time.monotonic() + timeout_s
    while offset < end and time.monotonic() < deadline:
        _, view = client.fetch(
            load.topic, 0, offset, max_bytes, max_wait_ms=max_wait_ms, min_bytes=min_bytes
        )
        fetches += 1
        now = time.perf_counter_ns()
        for batch in whole_batches(view):
            # a BatchProducer request's records share their due time (per_request of them)
            if batch.base_offset >= warmup:
                due = load.due_ns(schedule, batch.base_offset - first_offset)
                latency.record_value(max(now - due, 1), batch.records)
            offset = batch.next_offset
            last_ns = now
    fetch_seconds = (time.perf_counter_ns() - counting_from) / 1e9
    client.close()
    return Consumed(latency, offset, last_ns, fetches, fetch_seconds)


def count_kafka_python_fetches(consumer: Any) -> list[int]:
    """A one-element list that counts the fetch responses a KafkaConsumer handles from now on,
    where it handles each one (its I/O thread): kafka-python's metrics give only a windowed
    rate. Wraps a private method (kafka-python is pinned to 3.0)."""
    fetches = [0]
    fetcher = consumer._fetcher
    handle = fetcher._handle_fetch_response

    def counted(*args: Any, **kwargs: Any) -> Any:
        fetches[0] += 1
        return handle(*args, **kwargs)

    fetcher._handle_fetch_response = counted
    return fetches


def kafka_python_consume(bootstrap: str, load: Load, gate: StartGate, timeout_s: float) -> Consumed:
    """Tail the partition from offset 0 with kafka-python's KafkaConsumer."""
    from kafka import KafkaConsumer, TopicPartition

    settings = load.consumer
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kbench-e2e",
        group_id=None,  # assign() only
        enable_auto_commit=False,
        fetch_min_bytes=int(settings.get("fetch.min.bytes", 1)),
        fetch_max_wait_ms=int(settings.get("fetch.wait.max.ms", 500)),
        max_partition_fetch_bytes=int(settings.get("max.partition.fetch.bytes", _FETCH_MAX_BYTES)),
        max_poll_records=int(settings.get("max.poll.records", 500)),
    )
    fetches = count_kafka_python_fetches(consumer)
    partition = TopicPartition(load.topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    first_offset = 0
    while not first_offset:  # the warm-up: tailing the partition now
        for records in consumer.poll(timeout_ms=1000).values():
            first_offset = records[-1].offset + 1
    start_ns = gate.wait()
    counting_from, fetches_before = time.perf_counter_ns(), fetches[0]
    schedule = OpenLoopSchedule(start_ns, load.rate)
    latencies = array.array("q")
    poll, clock, append = consumer.poll, time.perf_counter_ns, latencies.append
    end, warmup = first_offset + load.count, first_offset + load.warmup
    offset = last_ns = 0
    deadline = time.monotonic() + timeout_s
    gc.disable()
    while offset < end - 1 and time.monotonic() < deadline:
        batches = poll(timeout_ms=100)  # returns as soon as a fetch brought records
        now = clock()
        for records in batches.values():
            for record in records:
                offset = record.offset
                if offset >= warmup:
                    append(now - load.due_ns(schedule, offset - first_offset))
        if batches:
            last_ns = now
    gc.enable()
    fetch_seconds = (clock() - counting_from) / 1e9
    counted_fetches = fetches[0] - fetches_before
    consumer.close()
    latency = histogram()
    for value in latencies:
        latency.record_value(max(value, 1))
    return Consumed(latency, offset + 1, last_ns, counted_fetches, fetch_seconds)


# -- the machine ---------------------------------------------------------------------------------
_PROBE_INTERVAL_S = 0.01  # ~1.5 % of a core
PROBE_SLOW = 3  # a probe this many times its round's median counts as a stall


def _probe_unit() -> int:
    total = 0
    for i in range(2000):  # ~150 us of Python on this machine when it is not disturbed
        total += i * i
    return total


def probe_machine(load: Load, gate: StartGate) -> dict:
    """A fixed unit of Python work every 10 ms through the run, timed by the wall clock and
    by this thread's CPU clock. Units PROBE_SLOW times slower than the run's median: by CPU
    time, the virtual CPU itself ran slow (neighbours on the host, the hypervisor; this guest
    sees no steal for it), for everything on it, the broker and clients included; by wall time,
    that or waiting for a CPU here."""
    start_ns = gate.wait()
    end_ns = start_ns + round(load.seconds * 1e9)
    wall, cpu = [], []
    while time.perf_counter_ns() < end_ns:
        wall_before, cpu_before = time.perf_counter_ns(), time.thread_time_ns()
        _probe_unit()
        wall.append(time.perf_counter_ns() - wall_before)
        cpu.append(time.thread_time_ns() - cpu_before)
        time.sleep(_PROBE_INTERVAL_S)
    result: dict[str, float] = {"probes": len(wall)}
    for clock, durations in (("cpu", cpu), ("wall", wall)):
        durations.sort()
        median = durations[len(durations) // 2]
        result[f"{clock}_median_us"] = median / 1e3
        result[f"{clock}_stalled"] = sum(d > PROBE_SLOW * median for d in durations) / len(
            durations
        )
        result[f"{clock}_max_us"] = durations[-1] / 1e3
    return result


PRODUCERS = {"confluent": confluent_produce, "loadgen": loadgen_produce}
CONSUMERS = {
    "confluent": confluent_consume,
    "loadgen": fetch_consume,
    "kafka-python": kafka_python_consume,
}


def _client_process(args: argparse.Namespace) -> None:
    """A client process: --role producer, consumer, or both (the consumer on a second thread),
    or the machine's probe; prints one line of JSON."""
    roles = ["producer", "consumer"] if args.role == "both" else [args.role]
    load = Load(**json.loads(args.load))
    gate = StartGate(len(roles))
    result: dict = {}
    if args.role == "probe":
        print(json.dumps({"probe": probe_machine(load, gate)}), flush=True)
        return
    timeout_s = load.seconds * 4 + 60
    consumer_clients = args.consumer_clients or args.clients
    failed: list[BaseException] = []

    def consume() -> None:
        try:
            if consumer_clients == "confluent":
                tagged = args.clients == "confluent"  # the producer that writes indexes
                consumed = confluent_consume(
                    args.bootstrap, load, gate, timeout_s, args.member, tagged
                )
            else:
                consumed = CONSUMERS[consumer_clients](args.bootstrap, load, gate, timeout_s)
        except BaseException as error:  # said in one line when the process ends, below
            failed.append(error)
            gate.abort()  # the producer must not wait at the gate for a consumer that is gone
            return
        result["consumer"] = consumed.as_dict()

    thread = None
    if "consumer" in roles:
        if "producer" in roles:
            if {args.clients, consumer_clients} & {"loadgen", "kafka-python"}:
                # kafka-python's package is not safe to import from two threads at once (one
                # can see the other's modules half initialised): load it before the second
                import kafka  # noqa: F401
            thread = threading.Thread(target=consume, daemon=True)
            thread.start()
        else:
            consume()
    if "producer" in roles:
        try:
            result["producer"] = PRODUCERS[args.clients](args.bootstrap, load, gate, args.member)
        except threading.BrokenBarrierError:
            if not failed:  # else the consumer failed before the start: its error ends it below
                raise
        except Exception as error:
            gate.abort()  # the consumer must not wait at the gate for a producer that is gone
            raise SystemExit(f"the pipeline's producer failed: {error!r}") from None
    if thread is not None:
        thread.join()
    if failed:
        raise SystemExit(f"the pipeline's consumer failed: {failed[0]!r}")
    result[f"cpu_s_{args.role}"] = time.process_time() - gate.cpu_at_start
    print(json.dumps(result), flush=True)


# -- the parent ----------------------------------------------------------------------------------
@dataclass
class Round:
    """What one run measured."""

    histogram: HdrHistogram  # latency from due time to delivery, ns, the measured records
    offered: float  # records/s
    delivered: float  # records/s over the measured part
    producer: dict  # what the producer's loop reports (produce_seconds, its lateness)
    fetches: int  # the consumer's fetch requests while the load ran
    cpu_s: dict[str, float]  # broker, clients, others (the rest of the machine), steal
    probe: dict | None  # probe_machine's, when asked for
    fetch_seconds: float = 0.0  # the span over which the consumer counted its fetches
    wall_s: float = 0.0  # the span over which cpu_s was metered (gate open to the roles' end)
    # the broker's CPU over the same span from the scheduler's run time (to the nanosecond, where
    # cpu_s has clock ticks of 10 ms); None without broker_pid or where Linux has no schedstat
    broker_cpu_s: float | None = None
    # latency from due time to the producer's acknowledgement, ns (Load.publish_latency)
    publish: HdrHistogram | None = None

    @property
    def fetches_per_s(self) -> float:
        """The consumer's fetch requests per second while it tailed the partition."""
        return self.fetches / self.fetch_seconds if self.fetch_seconds > 0 else 0.0

    @property
    def achieved_fraction(self) -> float:
        """Delivered over offered: below scenarios.harness.saturation.SATURATED_BELOW the run
        measured saturation, not the load it names."""
        return self.delivered / self.offered

    def percentile_ms(self, p: float, latency: str = "e2e") -> float:
        """A percentile of end-to-end latency, or of publish latency (`latency` "publish")."""
        measured = self.histogram if latency == "e2e" else self.publish
        if measured is None:
            raise ValueError("publish latency was not measured (Load.publish_latency)")
        return measured.get_value_at_percentile(p) / 1e6


def run(
    bootstrap: str,
    load: Load,
    *,
    clients: str = "confluent",
    layout: str = "split",
    probe: bool = False,
    broker_pid: int | None = None,
    consumer_clients: str | None = None,
) -> Round:
    """Offer `load` to its topics (which must exist, with load.partitions each, on
    `bootstrap`'s cluster) and measure it; broker_pid: the broker whose CPU the Round reports;
    consumer_clients: the consumer's client when it is not the producer's (`clients`)."""
    if clients not in CLIENTS or layout not in LAYOUTS:
        raise ValueError(f"clients must be one of {CLIENTS} and layout one of {LAYOUTS}")
    if consumer_clients is not None and consumer_clients not in CONSUMER_CLIENTS:
        raise ValueError(f"consumer_clients must be one of {CONSUMER_CLIENTS}")
    if not load.plain and (clients, consumer_clients or clients, layout) != (
        "confluent",
        "confluent",
        "split",
    ):
        raise ValueError(
            "a load of more than one topic, partition, producer or consumer, or other than "
            f"{RECORD_SIZE}-byte zero records without keys, needs the confluent clients "
            "(offsets are the other clients' indexes) and layout split"
        )
    if load.publish_latency and clients != "confluent":
        raise ValueError("publish latency is timed by the confluent producer only")
    # (role, member): every consumer of every subscription, then every producer
    roles: list[tuple[str, int]] = [("both", 0)]
    if layout == "split":
        consumers = load.topics * load.subscriptions * load.consumers
        producers = load.topics * load.producers
        roles = [("consumer", m) for m in range(consumers)]
        roles += [("producer", k) for k in range(producers)]
    if probe:
        roles.append(("probe", 0))
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "scenarios.clients.pipeline", "--role", role),
                *("--clients", clients, "--bootstrap", bootstrap, "--member", str(member)),
                *(("--consumer-clients", consumer_clients) if consumer_clients else ()),
                *("--load", json.dumps(asdict(load))),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for role, member in roles
    ]
    try:
        for (role, member), process in zip(roles, processes, strict=True):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":  # the consumers are tailing
                raise RuntimeError(f"the pipeline's {role} process {member} did not get ready")
        start_ns = time.perf_counter_ns() + 100_000_000
        busy_before, steal_before = _machine_s()
        metered = {"broker": broker_pid} if broker_pid is not None else {}
        with ResourceMeter(metered, interval_s=None) as meter:
            broker_before = cpu_seconds(broker_pid) if broker_pid is not None else None
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(f"{start_ns}\n")
                process.stdin.flush()
            results: list[dict] = []
            for (role, member), process in zip(roles, processes, strict=True):
                output, _ = process.communicate(timeout=load.seconds * 4 + 120)
                if process.returncode:
                    raise RuntimeError(
                        f"the pipeline's {role} process {member} failed (exit {process.returncode})"
                    )
                results.append(json.loads(output))
            broker_after = cpu_seconds(broker_pid) if broker_pid is not None else None
        busy_after, steal_after = _machine_s()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):  # communicate() closed them, or not
                if pipe is not None:
                    pipe.close()
    consumed = [r["consumer"] for r in results if "consumer" in r]  # in the order of members
    tagged = (clients, consumer_clients or clients) == ("confluent", "confluent")
    _check_delivery(load, consumed, tagged)
    producers_said = [r["producer"] for r in results if "producer" in r]
    publish = None
    if load.publish_latency:
        publish = histogram()
        for said in producers_said:
            publish.add(HdrHistogram.decode(said.pop("publish_histogram")))
    broker = meter.usage.processes.get("broker")
    cpu_s = {
        "broker": broker.user_s + broker.system_s if broker else 0.0,
        # the client processes', not the probe's
        "clients": sum(v for r in results for k, v in r.items() if k.startswith("cpu_s_")),
    }
    cpu_s["others"] = max(busy_after - busy_before - cpu_s["broker"] - cpu_s["clients"], 0.0)
    cpu_s["steal"] = steal_after - steal_before
    latency = histogram()
    for consumer in consumed:
        latency.add(HdrHistogram.decode(consumer["histogram"]))
    measured_from = start_ns + load.warmup / load.rate * 1e9
    last_ns = max(consumer["last_ns"] for consumer in consumed)
    return Round(
        latency,
        load.rate,
        # each subscription gets every record: delivered counts each record once
        latency.get_total_count() / load.subscriptions / max((last_ns - measured_from) / 1e9, 1e-9),
        # the slowest producer's: the last to finish, the latest
        {key: max(p[key] for p in producers_said) for key in producers_said[0]},
        sum(consumer["fetches"] for consumer in consumed),
        cpu_s,
        next((r["probe"] for r in results if "probe" in r), None),
        max(consumer["fetch_seconds"] for consumer in consumed),
        meter.usage.wall_s,
        None if broker_before is None or broker_after is None else broker_after - broker_before,
        publish,
    )


def _check_delivery(load: Load, consumed: list[dict], tagged: bool) -> None:
    """Every subscription got every record of its topic exactly once (tagged: the count and
    the indexes' sum, over its consumers), or the plain consumer reached the last offset."""
    if not tagged:
        reached, end = consumed[0]["delivered"], load.count + load.per_request
        if reached != end:  # offsets are records' indexes
            raise RuntimeError(f"{load.topic}: the consumer reached offset {reached} of {end}")
        return
    per_subscription = load.consumers
    for first in range(0, len(consumed), per_subscription):
        members = consumed[first : first + per_subscription]
        topic, subscription = divmod(first // per_subscription, load.subscriptions)
        count, index_sum = load.expected(topic)
        got = sum(m["delivered"] for m in members)
        if (got, sum(m["index_sum"] for m in members)) != (count, index_sum):
            raise RuntimeError(
                f"{load.topic_names[topic]}: subscription {subscription} got {got} records of "
                f"{count}" + (", some twice and some not" if got == count else "")
            )


def _machine_s() -> tuple[float, float]:
    """CPU seconds, so far, that the machine's processes and kernel ran (guest time is counted
    in user already), and that the hypervisor took from its virtual CPUs (steal)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq, getattr(t, "steal", 0.0)


def main() -> None:
    # Ctrl-C reaches the whole process group; the parent (run) ends its client processes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(description="a client process of pipeline.run")
    parser.add_argument("--role", choices=("producer", "consumer", "both", "probe"), required=True)
    parser.add_argument("--clients", choices=CLIENTS, required=True)
    parser.add_argument(
        "--consumer-clients", choices=CONSUMER_CLIENTS, help="the consumer's, if not --clients"
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--member", type=int, default=0, help="which producer or consumer")
    parser.add_argument("--load", required=True, help="a Load as JSON")
    _client_process(parser.parse_args())


if __name__ == "__main__":
    main()
