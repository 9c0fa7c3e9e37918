"""End-to-end latency through kbench at a fixed offered rate: issue 11's "p99 <= 5 ms at 10 MB/s
offered (open loop) with acks=1".

    python3 -m tests.benchmarks.e2e_latency [--rounds 4] [--seconds 10] [--mb-per-s 10]
        [--variants confluent/split,confluent/shared,loadgen/split,loadgen/shared]
        [--linger-ms 1] [--dir /dev/shm]

`kbench broker` (LocalBroker) on a free loopback port, its log in --dir (tmpfs by default). Each
round and variant produces 100-byte records to a fresh one-partition topic, deleted afterwards,
open loop: record i is due at start + i/rate (scenarios.clients.loadgen.OpenLoopSchedule, on
CLOCK_MONOTONIC, which every process on the machine shares), and its latency runs from that due
time to the moment the consumer has it, so a record the producer sent late carries its lag too
(no coordinated omission). A record's index is its offset less the warm-up's, so records carry
nothing but their 100 bytes. Latencies go into an HdrHistogram; the first --warmup-seconds of
records are offered but not recorded.

Clients (the part before the slash):
- confluent: the real client. confluent-kafka's Producer (acks=1, no idempotence, linger.ms=1:
  not librdkafka's and Kafka 4's default of 5, whose lingering alone would use the whole 5 ms
  budget; at 100,000 records/s 1 ms still fills ~10 KiB batches, ~1,000 ProduceRequests/s),
  one produce() per record as each comes due; and confluent-kafka's Consumer, assigned to the
  partition (fetch.min.bytes=1, so the broker answers its long-poll fetch on the append).
  Latency includes the lingering and both clients' per-record Python loops (together about one
  core at 100,000 records/s here, next to the broker's half core).
- loadgen: the lightest clients, so the figure is the broker's. scenarios.clients.loadgen.
  BatchProducer sends one prebuilt batch of 100 records (~10 KiB, ProduceRequest v7, acks=1) per
  due time, 1,000 requests/s at 10 MB/s, its records due with the request (as a client that
  lingered and sent); scenarios.clients.fetch_client.FetchClient long-polls (max_wait 500 ms,
  min_bytes 1) and records each batch's latency once per record it holds.

Layouts (after the slash): `split` runs producer and consumer in two processes; `shared` in one,
the consumer on a second thread, where the two Python loops share one GIL. Variants alternate
between rounds (the order reversed every other round). Per round: p50/p99/p99.9/max, records/s
delivered against offered, the producer's lateness, and CPU: the broker's, the clients', and the
rest of the machine's (other work sharing the 2 cores). A probe process (probe_machine) times a
fixed unit of Python work every 10 ms through each round: the share of units that took 3x their
median CPU time says how often the virtual machine itself ran slow, which no broker escapes.
Then per variant the median of the rounds' p99 with its 95 % interval (scenarios.harness.stats)
and the verdict against 5 ms, the percentiles of all rounds merged, and shared/split as the
median of per-round p99 ratios. --mb-per-s lower shows how the tail follows the broker's load.
"""

import argparse
import array
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import psutil
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from hdrh.histogram import HdrHistogram

from scenarios.clients.cluster import delete_topics
from scenarios.clients.fetch_client import FetchClient, whole_batches
from scenarios.clients.loadgen import BatchProducer, OpenLoopSchedule
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import ResourceMeter
from scenarios.harness.stats import Summary, compare, summarize

RECORD_SIZE = 100
LOADGEN_RECORDS_PER_REQUEST = 100
_VALUE = bytes(RECORD_SIZE)
_TARGET_P99_MS = 5.0
_VARIANTS = ("confluent/split", "confluent/shared", "loadgen/split", "loadgen/shared")
_TOPIC_PREFIX = "e2e-"
_FETCH_MAX_BYTES = 1 << 20


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000_000, 3)  # 1 ns to 60 s, 3 significant digits


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


@dataclass(frozen=True)
class Load:
    """What one round offers: `count` records at `rate` per second after a warm-up request,
    `per_request` records sharing a due time (1: each record its own)."""

    topic: str
    rate: float  # records/s
    count: int
    warmup: int  # the first records, offered but not recorded
    per_request: int
    linger_ms: float

    def due_ns(self, schedule: OpenLoopSchedule, index: int) -> int:
        return schedule.due_ns(index - index % self.per_request)


# -- producers -----------------------------------------------------------------------------------
def confluent_produce(bootstrap: str, load: Load, gate: StartGate) -> dict:
    """One produce() per record as it comes due; what the loop did."""
    errors: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": 1,
            "enable.idempotence": False,
            "linger.ms": load.linger_ms,
            "delivery.report.only.error": True,  # no Python callback per record
            "on_delivery": lambda error, _message: errors.append(str(error)),
        }
    )
    producer.produce(load.topic, _VALUE, partition=0)  # the warm-up: metadata, connection
    if producer.flush(30):
        raise RuntimeError(f"the warm-up record was not delivered to {bootstrap}")
    start_ns = gate.wait()
    schedule = OpenLoopSchedule(start_ns, load.rate)
    topic, count = load.topic, load.count
    produce, poll, clock, sleep = producer.produce, producer.poll, time.perf_counter_ns, time.sleep
    # How late produce() ran after the due time, one entry per burst of records sent together,
    # counted for each record of the burst at its first (latest) record's lag: an upper bound,
    # for a fraction of the cost of one histogram entry per record.
    lag = _histogram()
    gc.disable()  # as timeit does: no collector pauses inside the timed loop
    i = 0
    while i < count:
        now = clock()
        wait = schedule.due_ns(i) - now
        if wait > 1_500_000:
            poll((wait - 1_000_000) / 1e9)  # serves reports; whole milliseconds
            continue
        if wait > 0:
            sleep(wait / 1e9)
            now = clock()
        first = i
        first_lag = now - schedule.due_ns(i)
        while i < count and schedule.due_ns(i) <= now:
            try:
                produce(topic, _VALUE, partition=0)
            except BufferError:  # the client's queue is full: this record waits, its lag counts
                poll(0.001)
                break
            i += 1
        if i > first:
            lag.record_value(max(first_lag, 1), i - first)
        poll(0)
    gc.enable()
    produced_ns = clock()
    left = producer.flush(60)
    if left or errors:
        raise RuntimeError(f"{left} records not delivered, errors: {errors[:5]}")
    return {
        "produce_seconds": (produced_ns - start_ns) / 1e9,
        "lag_p99_ms": lag.get_value_at_percentile(99) / 1e6,
    }


def loadgen_produce(bootstrap: str, load: Load, gate: StartGate) -> dict:
    """BatchProducer, open loop: a batch of per_request records at each due time."""
    producer = BatchProducer(bootstrap, record_size=RECORD_SIZE, records_per_batch=load.per_request)
    batch = len(producer.batch)
    producer.produce(load.topic, 1, batch)  # the warm-up request
    start_ns = gate.wait()
    stats = producer.produce(
        load.topic,
        1,
        load.count // load.per_request * batch,
        rate_per_s=load.rate / load.per_request,
        start_ns=start_ns,
    )
    producer.close()
    return {
        "produce_seconds": stats.seconds,
        # from the due time to the ProduceResponse: the acks=1 latency, lateness included
        "ack_p99_ms": stats.p99_latency_us / 1e3,
    }


# -- consumers -----------------------------------------------------------------------------------
@dataclass
class Consumed:
    latencies: HdrHistogram
    delivered: int  # records, the warm-up's included
    last_ns: int  # when the last record came

    def as_dict(self) -> dict:
        return {
            "histogram": self.latencies.encode().decode("ascii"),
            "delivered": self.delivered,
            "last_ns": self.last_ns,
        }


def confluent_consume(bootstrap: str, load: Load, gate: StartGate, timeout_s: float) -> Consumed:
    """Tail the partition from offset 0 with confluent-kafka's Consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "kbench-e2e",  # required; assign() uses no group
            "enable.auto.commit": False,
            "fetch.min.bytes": 1,
            "fetch.wait.max.ms": 500,
        }
    )
    consumer.assign([TopicPartition(load.topic, 0, 0)])
    while (message := consumer.poll(1.0)) is None:  # the warm-up: tailing the partition now
        pass
    first_offset = (message.offset() or 0) + 1
    start_ns = gate.wait()
    schedule = OpenLoopSchedule(start_ns, load.rate)
    latencies = array.array("q")  # into the histogram afterwards: a fraction of the cost
    consume, poll, clock, append = (
        consumer.consume,
        consumer.poll,
        time.perf_counter_ns,
        latencies.append,
    )
    end, warmup = first_offset + load.count, first_offset + load.warmup
    offset = last_ns = 0
    deadline = time.monotonic() + timeout_s
    gc.disable()
    while offset < end - 1 and time.monotonic() < deadline:
        # what has arrived, without waiting: consume(n, timeout) waits for n records or the
        # timeout, which would add up to n/rate to every latency; poll() returns on the first
        messages = consume(1000, 0) or [m for m in (poll(0.1),) if m is not None]
        now = clock()
        for message in messages:
            if message.error() is not None:
                raise KafkaException(message.error())
            offset = message.offset() or 0  # set on every record (None on errors only)
            if offset >= warmup:
                append(now - load.due_ns(schedule, offset - first_offset))
        if messages:
            last_ns = now
    gc.enable()
    consumer.close()
    histogram = _histogram()
    for value in latencies:
        histogram.record_value(max(value, 1))
    return Consumed(histogram, offset + 1, last_ns)


def fetch_consume(bootstrap: str, load: Load, gate: StartGate, timeout_s: float) -> Consumed:
    """Tail the partition from offset 0 with FetchClient's long-poll fetches."""
    client = FetchClient(bootstrap, "kbench-e2e")
    offset = 0
    while offset == 0:  # the warm-up request's records
        _, view = client.fetch(load.topic, 0, 0, _FETCH_MAX_BYTES, max_wait_ms=500)
        for batch in whole_batches(view):
            offset = batch.next_offset
    first_offset = offset
    start_ns = gate.wait()
    schedule = OpenLoopSchedule(start_ns, load.rate)
    histogram = _histogram()
    end, warmup = first_offset + load.count, first_offset + load.warmup
    last_ns = 0
    deadline = time.monotonic() + timeout_s
    while offset < end and time.monotonic() < deadline:
        _, view = client.fetch(load.topic, 0, offset, _FETCH_MAX_BYTES, max_wait_ms=500)
        now = time.perf_counter_ns()
        for batch in whole_batches(view):
            # a BatchProducer request's records share their due time (per_request of them)
            if batch.base_offset >= warmup:
                due = load.due_ns(schedule, batch.base_offset - first_offset)
                histogram.record_value(max(now - due, 1), batch.records)
            offset = batch.next_offset
            last_ns = now
    client.close()
    return Consumed(histogram, offset, last_ns)


# -- the machine ---------------------------------------------------------------------------------
_PROBE_INTERVAL_S = 0.01  # ~1.5 % of a core
_PROBE_SLOW = 3  # a probe this many times its round's median counts as a stall


def _probe_unit() -> int:
    total = 0
    for i in range(2000):  # ~150 us of Python on this machine when it is not disturbed
        total += i * i
    return total


def probe_machine(load: Load, gate: StartGate) -> dict:
    """A fixed unit of Python work every 10 ms through the round, timed by the wall clock and
    by this thread's CPU clock. Units _PROBE_SLOW times slower than the round's median: by CPU
    time, the virtual CPU itself ran slow (neighbours on the host, the hypervisor; this guest
    sees no steal for it), for everything on it, the broker and clients included; by wall time,
    that or waiting for a CPU here."""
    start_ns = gate.wait()
    end_ns = start_ns + round(load.count / load.rate * 1e9)
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
        result[f"{clock}_stalled"] = sum(d > _PROBE_SLOW * median for d in durations) / len(
            durations
        )
        result[f"{clock}_max_us"] = durations[-1] / 1e3
    return result


PRODUCERS = {"confluent": confluent_produce, "loadgen": loadgen_produce}
CONSUMERS = {"confluent": confluent_consume, "loadgen": fetch_consume}


def run_clients(args: argparse.Namespace) -> None:
    """A client process: --role producer, consumer, or both (the consumer on a second thread),
    or the machine's probe; prints one line of JSON."""
    roles = ["producer", "consumer"] if args.role == "both" else [args.role]
    load = Load(**json.loads(args.load))
    gate = StartGate(len(roles))
    result: dict = {}
    if args.role == "probe":
        print(json.dumps({"probe": probe_machine(load, gate)}), flush=True)
        return
    timeout_s = load.count / load.rate * 4 + 60

    def consume() -> None:
        consumed = CONSUMERS[args.clients](args.bootstrap, load, gate, timeout_s)
        result["consumer"] = consumed.as_dict()

    thread = None
    if "consumer" in roles:
        if "producer" in roles:
            thread = threading.Thread(target=consume)
            thread.start()
        else:
            consume()
    if "producer" in roles:
        result["producer"] = PRODUCERS[args.clients](args.bootstrap, load, gate)
    if thread is not None:
        thread.join()
    result[f"cpu_s_{args.role}"] = time.process_time() - gate.cpu_at_start
    print(json.dumps(result), flush=True)


# -- the measurement -----------------------------------------------------------------------------
@dataclass
class Round:
    variant: str
    histogram: HdrHistogram
    offered: float  # records/s
    delivered: float  # records/s over the measured part
    producer: dict
    cpu_s: dict[str, float]  # broker, clients, others (the rest of the machine), steal
    probe: dict  # probe_machine's

    def percentile_ms(self, p: float) -> float:
        return self.histogram.get_value_at_percentile(p) / 1e6


def measure_round(
    args: argparse.Namespace, broker: LocalBroker, admin: BatchProducer, variant: str, topic: str
) -> Round:
    clients, layout = variant.split("/")
    rate = args.mb_per_s * 1e6 / RECORD_SIZE
    per_request = LOADGEN_RECORDS_PER_REQUEST if clients == "loadgen" else 1
    load = Load(
        topic,
        rate,
        round(rate * (args.warmup_seconds + args.seconds) / per_request) * per_request,
        round(rate * args.warmup_seconds / per_request) * per_request,
        per_request,
        args.linger_ms,
    )
    admin.create_topic(topic, 1)
    roles = ["consumer", "producer"] if layout == "split" else ["both"]
    roles.append("probe")
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.benchmarks.e2e_latency", "--role", role),
                *("--clients", clients, "--bootstrap", broker.bootstrap),
                *("--load", json.dumps(load.__dict__)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for role in roles
    ]
    try:
        for role, process in zip(roles, processes, strict=True):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":  # the consumer is tailing
                raise RuntimeError(f"the {role} process did not get ready")
        start_ns = time.perf_counter_ns() + 100_000_000
        busy_before, steal_before = _machine_s()
        with ResourceMeter({"broker": broker.pid}, interval_s=None) as meter:
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(f"{start_ns}\n")
                process.stdin.flush()
            result: dict = {}
            for process in processes:
                output, _ = process.communicate(timeout=args.seconds * 4 + 120)
                if process.returncode:
                    raise RuntimeError(f"a client process failed (exit {process.returncode})")
                result.update(json.loads(output))
        busy_after, steal_after = _machine_s()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    delete_topics(broker.bootstrap, topic)
    consumer = result["consumer"]
    if consumer["delivered"] != load.count + per_request:  # offsets are the records' indexes
        raise RuntimeError(
            f"{variant}: offsets up to {consumer['delivered']} for {load.count} records"
        )
    broker_usage = meter.usage.processes["broker"]
    cpu_s = {
        "broker": broker_usage.user_s + broker_usage.system_s,
        "clients": sum(v for k, v in result.items() if k.startswith("cpu_s_")),  # not the probe
    }
    cpu_s["others"] = max(busy_after - busy_before - cpu_s["broker"] - cpu_s["clients"], 0.0)
    cpu_s["steal"] = steal_after - steal_before
    histogram = HdrHistogram.decode(consumer["histogram"])
    measured_from = start_ns + load.warmup / rate * 1e9
    return Round(
        variant,
        histogram,
        rate,
        histogram.get_total_count() / ((consumer["last_ns"] - measured_from) / 1e9),
        result["producer"],
        cpu_s,
        result["probe"],
    )


def _machine_s() -> tuple[float, float]:
    """CPU seconds, so far, that the machine's processes and kernel ran (guest time is counted
    in user already), and that the hypervisor took from its virtual CPUs (steal)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq, getattr(t, "steal", 0.0)


def verdict(p99: Summary) -> str:
    """Met when the whole interval of the median p99 lies within the target."""
    if p99.ci_high <= _TARGET_P99_MS:
        return "met"
    return "missed" if p99.ci_low > _TARGET_P99_MS else "inconclusive"


def measure(args: argparse.Namespace) -> None:
    variants = args.variants.split(",")
    rounds: dict[str, list[Round]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        broker = LocalBroker(
            os.path.join(directory, "kbench"), log_path=os.path.join(directory, "broker.log")
        ).start()
        admin = BatchProducer(broker.bootstrap)
        try:
            print(f"broker pid {broker.pid} on {broker.bootstrap} (py-spy can attach)", flush=True)
            print(
                f"offered {args.mb_per_s:g} MB/s = {args.mb_per_s * 1e6 / RECORD_SIZE:,.0f} "
                f"records/s of {RECORD_SIZE} B, acks=1, confluent linger.ms={args.linger_ms:g}; "
                f"{args.seconds:g} s measured per round after {args.warmup_seconds:g} s warm-up",
                flush=True,
            )
            for variant in variants:  # warm-up: the broker's code paths, page cache, processes
                topic = f"{_TOPIC_PREFIX}warm-up-{variant.replace('/', '-')}"
                measure_round(args, broker, admin, variant, topic)
            for round_ in range(args.rounds):
                order = variants if round_ % 2 == 0 else list(reversed(variants))
                for variant in order:
                    topic = f"{_TOPIC_PREFIX}{round_}-{variant.replace('/', '-')}"
                    r = measure_round(args, broker, admin, variant, topic)
                    rounds[variant].append(r)
                    producer = ", ".join(
                        f"{key} {value:.2f}"
                        for key, value in r.producer.items()
                        if key.endswith("_ms")
                    )
                    print(
                        f"round {round_ + 1} {variant:16} p50 {r.percentile_ms(50):6.2f} "
                        f"p99 {r.percentile_ms(99):6.2f} p99.9 {r.percentile_ms(99.9):6.2f} "
                        f"max {r.histogram.get_max_value() / 1e6:7.2f} ms; "
                        f"{r.delivered / r.offered:.3f} of offered; producer {producer}; "
                        "CPU s "
                        + " ".join(f"{role} {seconds:.1f}" for role, seconds in r.cpu_s.items())
                        + f"; probes > {_PROBE_SLOW}x median: CPU time "
                        f"{r.probe['cpu_stalled']:.1%} (median {r.probe['cpu_median_us']:.0f} us,"
                        f" max {r.probe['cpu_max_us'] / 1e3:.1f} ms), wall "
                        f"{r.probe['wall_stalled']:.1%} (max {r.probe['wall_max_us'] / 1e3:.1f}"
                        " ms)",
                        flush=True,
                    )
        finally:
            admin.close()
            broker.stop()
    for variant, results in rounds.items():
        merged = _histogram()
        for r in results:
            merged.add(r.histogram)
        p99 = summarize([r.percentile_ms(99) for r in results])
        p50 = summarize([r.percentile_ms(50) for r in results])
        achieved = summarize([r.delivered / r.offered for r in results])
        stalled = summarize([r.probe["cpu_stalled"] for r in results])
        others = summarize([r.cpu_s["others"] for r in results])
        print(
            f"{variant:16} p99 median {p99.median:.2f} ms (CI {p99.ci_low:.2f}-{p99.ci_high:.2f})"
            f", p50 {p50.median:.2f} ms (CI {p50.ci_low:.2f}-{p50.ci_high:.2f}); merged: p50 "
            f"{merged.get_value_at_percentile(50) / 1e6:.2f} "
            f"p95 {merged.get_value_at_percentile(95) / 1e6:.2f} "
            f"p99 {merged.get_value_at_percentile(99) / 1e6:.2f} "
            f"p99.9 {merged.get_value_at_percentile(99.9) / 1e6:.2f} "
            f"max {merged.get_max_value() / 1e6:.2f} ms; delivered/offered {achieved.median:.3f}"
            f"; p99 <= {_TARGET_P99_MS:g} ms: {verdict(p99)}; medians per round: the machine ran "
            f"{stalled.median:.1%} of probes > {_PROBE_SLOW}x slow by CPU time, other processes "
            f"used {others.median:.1f} CPU s"
        )
    for clients in ("confluent", "loadgen"):
        split, shared = rounds.get(f"{clients}/split"), rounds.get(f"{clients}/shared")
        if split and shared:
            ratio = compare(
                [r.percentile_ms(99) for r in shared], [r.percentile_ms(99) for r in split]
            )
            print(
                f"{clients} p99 shared/split {ratio.ratio:.2f} "
                f"(CI {ratio.ci_low:.2f}-{ratio.ci_high:.2f}, {ratio.n} rounds)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10, help="measured per round")
    parser.add_argument("--warmup-seconds", type=float, default=2, help="offered, not recorded")
    parser.add_argument("--mb-per-s", type=float, default=10, help="offered MB/s of records")
    parser.add_argument("--linger-ms", type=float, default=1, help="the confluent producer's")
    parser.add_argument("--variants", default=",".join(_VARIANTS), help="comma-separated")
    parser.add_argument("--dir", default="/dev/shm", help="the broker's log (default tmpfs)")
    parser.add_argument(
        "--role", choices=("producer", "consumer", "both", "probe"), help=argparse.SUPPRESS
    )
    parser.add_argument("--clients", choices=tuple(PRODUCERS), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)  # a Load as JSON
    args = parser.parse_args()
    if args.role:
        run_clients(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
