"""kbench broker next to librdkafka's mock cluster, with the same confluent-kafka clients: issue
11's target "median of 8 alternating rounds >= 1.0 for produce and for consume".

    python3 -m tests.benchmarks.broker_vs_mock [--rounds 8] [--processes 2] [--records 3200000]

One confluent-kafka process tops out near the Python client's own ceiling (about 1 µs of client
CPU per record), so the client side is --processes processes, each with its own Producer, then
its own Consumer, on its share of the topic's 4 partitions (the mock gives an auto-created topic
4, kbench is started with num.partitions=4 to match). Both brokers run in their own process: the
mock cluster in a child of this module (--serve-mock), kbench as `kbench broker` with its log on
--data-dir (default /dev/shm: the mock keeps its log in memory too).

Produce: every process sends its share of --records 100-byte records with produce_batch, 8,000
records a call to one partition, so every batch on both brokers holds exactly 8,000 records
(batch.num.messages=8000, about 870 KB, under message.max.bytes); acks=1, linger.ms=5, no
idempotence, delivery reports only for errors. Timed from a common start to the last flush().

Consume: every process reads the last --tail records of each of its partitions (the mock keeps
at most 5 MiB of a partition: the last 5 such batches, 40,000 records), --passes times, seeking
back between passes, with consume(num_messages=10000). Each pass is timed from its first record
to its last (the seek, and the wait for the fetch that was parked at the log's end,
fetch.wait.max.ms=10, are left out); a round's figure is all the records read over the sum of
the passes' spans.
The mock answers a fetch with one batch per partition; with 870 KB batches and the default
max.partition.fetch.bytes (1 MiB) kbench does too.

Rounds alternate the order of the brokers. Prints every round's records/s and each broker's
CPU per record (its process's user + system time over the phase, microseconds per record), then
the medians with 95 % intervals and kbench/mock as the median of the per-round ratios with its
interval (scenarios.harness.stats). On this 2-core machine the client processes and the broker
share the CPU, so once the clients keep both cores busy the broker that spends less CPU per
record leaves more to them: the throughput ratio then follows the brokers' CPU per record.
"""

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from scenarios.clients.cluster import delete_topics
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.resources import cpu_seconds
from scenarios.harness.stats import compare, summarize

PARTITIONS = 4  # what the mock gives an auto-created topic; it has no CreateTopics
BATCH_RECORDS = 8000
MOCK_KEEPS_BYTES = 5 << 20  # librdkafka's mock partition keeps at most 5 MiB of batches
PRODUCER = {
    "acks": 1,
    "linger.ms": 5,
    "enable.idempotence": False,
    "batch.num.messages": BATCH_RECORDS,
    "batch.size": 1_000_000,
    "delivery.report.only.error": True,  # no per-record report to serve in Python
}
CONSUMER = {
    "group.id": "bench",
    "enable.auto.commit": False,
    "fetch.wait.max.ms": 10,  # the fetch parked at the log's end delays the next pass's seek
    # by default librdkafka, after a seek, may stop fetching for 1 s (fetch.queue.backoff.ms)
    # while what it read before the seek still counts against queued.min.messages: passes of
    # 0.13 s then took 1.6 s, at random, against either broker
    "fetch.queue.backoff.ms": 0,
}
_QUEUE_LIMIT = 100_000 - BATCH_RECORDS  # queue.buffering.max.messages, less one call's room


def serve_mock() -> None:
    """The mock cluster in this process (librdkafka's threads) until stdin closes."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"test.mock.num.brokers": "1"})
    brokers = admin.list_topics(timeout=10).brokers.values()
    print("mock listening on " + ",".join(f"{b.host}:{b.port}" for b in brokers), flush=True)
    sys.stdin.read()


def produce_worker(
    bootstrap: str,
    topic: str,
    partitions: list[int],
    records: int,
    start: Barrier,
    results: "multiprocessing.Queue[tuple[float, float, float, int]]",
) -> None:
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            **PRODUCER,
            "on_delivery": lambda error, _: errors.append(error),
        }
    )
    producer.list_topics(topic, timeout=10)  # connection and metadata before the clock
    messages = [{"value": os.urandom(100)}] * BATCH_RECORDS
    calls = records // BATCH_RECORDS
    start.wait()
    cpu = time.process_time()
    started = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
    for call in range(calls):
        while len(producer) > _QUEUE_LIMIT:
            producer.poll(0.001)
        queued = producer.produce_batch(
            topic, messages, partition=partitions[call % len(partitions)]
        )
        if queued != BATCH_RECORDS:
            raise RuntimeError(f"{bootstrap}: {BATCH_RECORDS - queued} records not queued")
        producer.poll(0)
    left = producer.flush(120)
    ended = time.monotonic()
    if left or errors:
        raise RuntimeError(f"{bootstrap}: {left} records undelivered, errors {errors[:3]}")
    results.put((started, ended, time.process_time() - cpu, calls * BATCH_RECORDS))


def consume_worker(
    bootstrap: str,
    topic: str,
    partitions: list[int],
    tail: int,
    passes: int,
    start: Barrier,
    results: "multiprocessing.Queue[tuple[list[tuple[float, float]], float, int]]",
) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, **CONSUMER})
    first: list[TopicPartition] = []
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high - tail < low:
            raise RuntimeError(f"{bootstrap} holds {high - low} records of {topic}-{partition}")
        first.append(TopicPartition(topic, partition, high - tail))
    consumer.assign(first)
    wanted = tail * len(partitions)
    spans: list[tuple[float, float]] = []
    cpu = 0.0
    for pass_ in range(passes):
        start.wait()
        before = time.process_time()
        if pass_:
            for position in first:
                consumer.seek(position)
        seen = 0
        began = 0.0
        deadline = time.monotonic() + 60
        while seen < wanted and time.monotonic() < deadline:
            batch: list[Message] = consumer.consume(10_000, 0.5)
            if batch and not seen:
                began = time.monotonic()  # the first records of the pass are in hand
            seen += sum(1 for message in batch if message.error() is None)
        ended = time.monotonic()
        cpu += time.process_time() - before
        if seen < wanted:
            raise RuntimeError(f"read {seen} of {wanted} records from {bootstrap}")
        spans.append((began, ended))
    consumer.close()
    results.put((spans, cpu, wanted * passes))


def run_phase(
    context: multiprocessing.context.SpawnContext,
    target: Callable[..., None],
    bootstrap: str,
    topic: str,
    broker_pid: int,
    processes: int,
    extra: tuple,
    passes: int = 1,
) -> tuple[list, float]:
    """Start `processes` workers, target(bootstrap, topic, partitions, *extra, start, results),
    each on its share of the partitions; release them together (`passes` times); return their
    results and the broker's CPU seconds meanwhile."""
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=target,
            args=(bootstrap, topic, list(range(i, PARTITIONS, processes)), *extra, start, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        broker_cpu = cpu_seconds(broker_pid) or 0.0
        for _ in range(passes):
            start.wait(timeout=120)
        collected = [results.get(timeout=300) for _ in workers]
        broker_cpu = (cpu_seconds(broker_pid) or 0.0) - broker_cpu
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.exitcode is None:
                worker.kill()
    if any(worker.exitcode for worker in workers):
        raise RuntimeError(f"a {target.__name__} process failed")
    return collected, broker_cpu


def measure_round(
    context: multiprocessing.context.SpawnContext,
    args: argparse.Namespace,
    bootstrap: str,
    broker_pid: int,
    topic: str,
    records: int,
) -> dict[str, tuple[float, float, float]]:
    """Produce, then consume, on one broker; per phase records/s and broker and client CPU
    microseconds per record."""
    creator = Producer({"bootstrap.servers": bootstrap})  # auto-creates the topic
    found = creator.list_topics(topic, timeout=10).topics[topic].partitions
    if len(found) != PARTITIONS:
        raise RuntimeError(f"{bootstrap} created {topic} with {len(found)} partitions")
    share = records // (args.processes * BATCH_RECORDS) * BATCH_RECORDS
    produced, broker_cpu = run_phase(
        context, produce_worker, bootstrap, topic, broker_pid, args.processes, (share,)
    )
    records = sum(r[3] for r in produced)
    seconds = max(r[1] for r in produced) - min(r[0] for r in produced)
    figures = {
        "produce": (
            records / seconds,
            broker_cpu / records * 1e6,
            sum(r[2] for r in produced) / records * 1e6,
        )
    }
    consumed, broker_cpu = run_phase(
        context,
        consume_worker,
        bootstrap,
        topic,
        broker_pid,
        args.processes,
        (args.tail, args.passes),
        passes=args.passes,
    )
    records = sum(r[2] for r in consumed)
    seconds = sum(  # each pass from the first process's first record to the last's last
        max(spans[p][1] for spans, _, _ in consumed) - min(spans[p][0] for spans, _, _ in consumed)
        for p in range(args.passes)
    )
    figures["consume"] = (
        records / seconds,
        broker_cpu / records * 1e6,
        sum(r[1] for r in consumed) / records * 1e6,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--records", type=int, default=3_200_000, help="produced per round")
    parser.add_argument("--tail", type=int, default=5 * BATCH_RECORDS, help="read per partition")
    parser.add_argument("--passes", type=int, default=10, help="reads of the tail per round")
    parser.add_argument("--data-dir", default="/dev/shm", help="where kbench keeps its log")
    parser.add_argument("--serve-mock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock:
        serve_mock()
        return
    if not 1 <= args.processes <= PARTITIONS:
        parser.error(f"--processes must be 1-{PARTITIONS}: each process owns whole partitions")
    if args.tail % BATCH_RECORDS or args.tail * 110 > MOCK_KEEPS_BYTES:  # ~109 B a record
        parser.error(f"--tail must be whole batches of {BATCH_RECORDS} the mock keeps (5 MiB)")

    context = multiprocessing.get_context("spawn")  # no fork of a process with librdkafka
    directory = tempfile.mkdtemp(prefix="kbench-vs-mock-", dir=args.data_dir)
    mock_process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.broker_vs_mock", "--serve-mock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its banner: "Mock cluster enabled ..."
        text=True,
    )
    kbench = LocalBroker(
        os.path.join(directory, "kbench"),
        {"num.partitions": str(PARTITIONS)},
        log_path=os.path.join(directory, "broker.log"),
    )
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        "produce": {"kbench": [], "mock": []},
        "consume": {"kbench": [], "mock": []},
    }
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    try:
        kbench.start()
        assert mock_process.stdout is not None
        brokers = {
            "kbench": (kbench.bootstrap, kbench.pid),
            "mock": (mock_process.stdout.readline().rsplit(" ", 1)[1].strip(), mock_process.pid),
        }
        for bootstrap, pid in brokers.values():  # warm-up: imports, connections, cache
            measure_round(context, args, bootstrap, pid, "warm-up", args.records // 4)
        for round_ in range(args.rounds):
            order = list(brokers) if round_ % 2 == 0 else list(reversed(brokers))
            for name in order:
                bootstrap, pid = brokers[name]
                figures = measure_round(
                    context, args, bootstrap, pid, f"bench-{round_}", args.records
                )
                for phase, values in figures.items():
                    results[phase][name].append(values)
                    rate, broker_us, client_us = values
                    print(
                        f"round {round_ + 1} {name:6} {phase:7} {rate:11,.0f} records/s  "
                        f"broker {broker_us:.3f} µs/record  clients {client_us:.3f} µs/record",
                        flush=True,
                    )
            delete_topics(kbench.bootstrap, "bench-")  # tmpfs is memory; the mock keeps 5 MiB
    finally:
        kbench.stop()
        if mock_process.stdin is not None:
            mock_process.stdin.close()
        mock_process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for phase, by_broker in results.items():
        for name, values in by_broker.items():
            rate = summarize([v[0] for v in values])
            broker_us = summarize([v[1] for v in values])
            print(
                f"{phase:7} {name:6} median {rate.median:11,.0f} records/s "
                f"(CI {rate.ci_low:,.0f}-{rate.ci_high:,.0f}); broker {broker_us.median:.3f} "
                f"µs/record (CI {broker_us.ci_low:.3f}-{broker_us.ci_high:.3f})"
            )
        kbench_values, mock_values = by_broker["kbench"], by_broker["mock"]
        rate = compare([v[0] for v in kbench_values], [v[0] for v in mock_values])
        cost = compare([v[1] for v in kbench_values], [v[1] for v in mock_values])
        print(
            f"{phase:7} kbench/mock records/s {rate.ratio:.2f} (CI {rate.ci_low:.2f}-"
            f"{rate.ci_high:.2f}, {rate.n} rounds; issue 11's target: median >= 1.0); "
            f"broker CPU per record {cost.ratio:.2f} (CI {cost.ci_low:.2f}-{cost.ci_high:.2f})"
        )


if __name__ == "__main__":
    main()
