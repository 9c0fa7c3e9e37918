"""kbench broker next to librdkafka's mock cluster, with the same confluent-kafka client.

    python3 -m tests.benchmarks.broker_vs_mock [--rounds 8] [--records 1000000]

Each round produces the same records (100-byte values, linger.ms=5, acks=1) to a fresh topic on
each broker, the order alternating between rounds so drift hits both, then reads the last
--consume-records of it back with a consumer, --consume-passes times (the mock cluster keeps
only about the last 40,000 such records of a partition, so the consumer reads a tail both hold).
Prints every round's records/s, and the median of the per-round ratios kbench/mock with a
bootstrap 95 % interval. The mock cluster runs inside this process (librdkafka threads); kbench
runs as `kbench broker` in a subprocess on a free loopback port.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.conftest import KBENCH


def produce(bootstrap: str, topic: str, count: int, value: bytes) -> float:
    # Partition 0 only: auto-creation gives the mock's topics 4 partitions and kbench's 1.
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1, "enable.idempotence": False}
    )
    producer.produce(topic, value, partition=0)  # metadata and connection before the clock
    producer.flush(30)
    started = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, partition=0)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.001)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining:
        raise RuntimeError(f"{remaining} records not delivered to {bootstrap}")
    return count / elapsed


def consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False}
    )
    _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, end - count)])
    started = time.perf_counter()
    seen = 0
    deadline = started + 120
    while seen < count and time.perf_counter() < deadline:
        for message in consumer.consume(10_000, 0.5):
            if message.error() is None:
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen < count:
        raise RuntimeError(f"read {seen} of {count} records from {bootstrap}")
    return count / elapsed


def bootstrap_interval(ratios: list[float], resamples: int = 5000) -> tuple[float, float]:
    rng = random.Random(7)
    medians = sorted(
        statistics.median(rng.choice(ratios) for _ in ratios) for _ in range(resamples)
    )
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--consume-records", type=int, default=30_000)
    parser.add_argument("--consume-passes", type=int, default=5)
    parser.add_argument(
        "--data-dir", help="where kbench keeps its log (default: a new temporary directory)"
    )
    args = parser.parse_args()

    mock_admin = AdminClient({"test.mock.num.brokers": "1"})
    mock = ",".join(
        f"{b.host}:{b.port}" for b in mock_admin.list_topics(timeout=10).brokers.values()
    )
    data_dir = tempfile.mkdtemp(prefix="kbench-bench-", dir=args.data_dir)
    process = subprocess.Popen(
        [KBENCH, "broker", "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    kbench = process.stdout.readline().rsplit(" ", 1)[1].strip()
    value = os.urandom(100)
    results: dict[str, dict[str, list[float]]] = {
        "produce": {"kbench": [], "mock": []},
        "consume": {"kbench": [], "mock": []},
    }
    try:
        for round_number in range(args.rounds):
            order = [("kbench", kbench), ("mock", mock)]
            if round_number % 2:
                order.reverse()
            for name, address in order:
                topic = f"bench-{round_number}"
                results["produce"][name].append(produce(address, topic, args.records, value))
                passes = [
                    consume(address, topic, args.consume_records)
                    for _ in range(args.consume_passes)
                ]
                results["consume"][name].append(len(passes) / sum(1 / rate for rate in passes))
            print(
                f"round {round_number + 1}: "
                + "  ".join(
                    f"{phase} kbench {results[phase]['kbench'][-1]:,.0f} "
                    f"mock {results[phase]['mock'][-1]:,.0f} rec/s"
                    for phase in results
                ),
                flush=True,
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
    for phase, by_broker in results.items():
        ratios = [k / m for k, m in zip(by_broker["kbench"], by_broker["mock"], strict=True)]
        low, high = bootstrap_interval(ratios)
        print(
            f"{phase}: kbench median {statistics.median(by_broker['kbench']):,.0f} rec/s, "
            f"mock median {statistics.median(by_broker['mock']):,.0f} rec/s, "
            f"kbench/mock median ratio {statistics.median(ratios):.2f} "
            f"(95% CI {low:.2f}-{high:.2f}; per round {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    sys.exit(main())
