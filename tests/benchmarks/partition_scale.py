"""What partitions and connections cost kbench: issue 11's "throughput with 1,000 partitions
(round robin) >= 0.5 of one partition's; broker RSS under 300 MB at 1,000 partitions and 1,000
idle connections".

    python3 -m tests.benchmarks.partition_scale [--rounds 8] [--mib 128] [--partitions 1000]
        [--connections 1000] [--dir /dev/shm]

`kbench broker` (LocalBroker) on a free loopback port, its log in --dir (tmpfs by default, so the
figure is the software path). Each round creates two topics, one with a single partition and one
with --partitions, writes one batch to every partition of both (so every segment file is open,
as in a broker that has been serving them), then produces --mib to each, the order alternating
between rounds, and deletes them (so tmpfs holds about 2 x --mib at a time). One load generator
(scenarios.clients.loadgen.BatchProducer: prebuilt ~64 KiB batches of 600 100-byte records,
ProduceRequest v7, acks=1, window 16, one connection, one partition per request, round robin over
the topic's partitions) drives both. Prints each round's MB/s, the medians, and many/one as the
median of per-round ratios with its 95 % interval (scenarios.harness.stats).

Memory: the broker's RSS (psutil) at start, after the first round's topics are created and
written, after the rounds (the last round's topics kept), with --connections idle client
connections open (each sent one ApiVersions request,
as a client does on connecting, then nothing), and again once the broker's idle-buffer sweep
(1 s) has run. The broker raises its soft RLIMIT_NOFILE to the hard limit at start
(engine/storage/file_handles.py); this process does the same for its own sockets.
"""

import argparse
import os
import tempfile
import time

import psutil
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from engine.storage.file_handles import raise_open_files_limit
from scenarios.clients.cluster import KafkaConnection, delete_topics
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.stats import compare, summarize

_WINDOW = 16
_TARGET_RATIO = 0.5
_TARGET_RSS_MB = 300
_BUFFER_SWEEP_S = 1.0  # socket_server's _BUFFER_KEEP_SECONDS: idle receive buffers are dropped


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 1e6


def open_idle_connections(bootstrap: str, count: int) -> list[KafkaConnection]:
    """count connections, each after one ApiVersions round trip (so the broker has accepted it
    and served a request on it), then left idle."""
    connections = []
    try:
        for _ in range(count):
            connection = KafkaConnection(bootstrap, timeout_s=30, client_id="kbench-idle")
            connections.append(connection)
            connection.request(ApiVersionsRequest[0](), ApiVersionsResponse)
    except BaseException:
        for connection in connections:
            connection.close()
        raise
    return connections


def measure(args: argparse.Namespace) -> None:
    soft, _ = raise_open_files_limit()
    if soft < args.connections + 100:
        raise SystemExit(
            f"RLIMIT_NOFILE is {soft} even raised to its hard limit: too few descriptors for "
            f"{args.connections} connections (ulimit -n)"
        )
    partitions = {"one": 1, "many": args.partitions}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        broker = LocalBroker(
            os.path.join(directory, "kbench"), log_path=os.path.join(directory, "broker.log")
        ).start()
        process = psutil.Process(broker.pid)
        memory = {"at start": rss_mb(process)}
        producer = BatchProducer(broker.bootstrap)
        try:
            print(f"broker pid {broker.pid} on {broker.bootstrap} (py-spy can attach)", flush=True)
            results: dict[str, list[float]] = {kind: [] for kind in partitions}
            for round_ in range(args.rounds):
                if round_:  # the previous round's topics go (the last round's stay, measured)
                    delete_topics(broker.bootstrap, f"r{round_ - 1}-")
                for kind, count in partitions.items():  # every partition's file opened
                    producer.create_topic(f"r{round_}-{kind}", count)
                    producer.produce(f"r{round_}-{kind}", count, count * len(producer.batch))
                if round_ == 0:
                    memory[f"{args.partitions} partitions created and written"] = rss_mb(process)
                order = list(partitions) if round_ % 2 == 0 else list(reversed(partitions))
                for kind in order:
                    stats = producer.produce(
                        f"r{round_}-{kind}", partitions[kind], args.mib << 20, _WINDOW
                    )
                    results[kind].append(stats.bytes / stats.seconds / 1e6)
                    print(
                        f"round {round_ + 1} {kind:4} ({partitions[kind]:5} partitions) "
                        f"{results[kind][-1]:7.0f} MB/s, p99 {stats.p99_latency_us / 1e3:.1f} "
                        "ms per request",
                        flush=True,
                    )
            memory["after the rounds"] = rss_mb(process)
            started = time.perf_counter()
            connections = open_idle_connections(broker.bootstrap, args.connections)
            try:
                opened_s = time.perf_counter() - started
                memory[f"{args.connections} connections just opened"] = rss_mb(process)
                time.sleep(_BUFFER_SWEEP_S * 2)
                memory[f"{args.connections} connections idle {_BUFFER_SWEEP_S * 2:g} s"] = rss_mb(
                    process
                )
                descriptors = process.num_fds()
            finally:
                for connection in connections:
                    connection.close()
        finally:
            producer.close()
            broker.stop()
    for kind, values in results.items():
        summary = summarize(values)
        print(
            f"{kind:4} ({partitions[kind]:5} partitions) median {summary.median:7.0f} MB/s "
            f"(CI {summary.ci_low:.0f}-{summary.ci_high:.0f})"
        )
    ratio = compare(results["many"], results["one"])
    print(
        f"{args.partitions} partitions / 1 partition: {ratio.ratio:.2f} (CI {ratio.ci_low:.2f}-"
        f"{ratio.ci_high:.2f}, {ratio.n} rounds); target >= {_TARGET_RATIO}: "
        f"{verdict(ratio.ci_low >= _TARGET_RATIO, ratio.ci_high < _TARGET_RATIO)}"
    )
    for stage, mb in memory.items():
        print(f"broker RSS {mb:6.1f} MB  {stage}")
    peak = max(memory.values())
    print(
        f"{args.connections} connections opened in {opened_s:.1f} s; broker descriptors open: "
        f"{descriptors}; peak RSS {peak:.1f} MB, target < {_TARGET_RSS_MB} MB: "
        f"{verdict(peak < _TARGET_RSS_MB, peak >= _TARGET_RSS_MB)}"
    )


def verdict(met: bool, missed: bool) -> str:
    return "met" if met else "missed" if missed else "inconclusive"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mib", type=int, default=512, help="MiB per topic per round")
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--dir", default="/dev/shm", help="the broker's log (default tmpfs)")
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
