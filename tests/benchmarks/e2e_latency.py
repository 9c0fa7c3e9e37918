"""End-to-end latency through kbench at a fixed offered rate: issue 11's "p99 <= 5 ms at 10 MB/s
offered (open loop) with acks=1".

    python3 -m tests.benchmarks.e2e_latency [--rounds 4] [--seconds 10] [--mb-per-s 10]
        [--variants confluent/split,confluent/shared,loadgen/split,loadgen/shared]
        [--linger-ms 1] [--dir /dev/shm]

`kbench broker` (LocalBroker) on a free loopback port, its log in --dir (tmpfs by default). Each
round and variant produces 100-byte records to a fresh one-partition topic, deleted afterwards,
through scenarios.clients.pipeline (open loop: each record's latency runs from its intended send
time to its delivery; see there for the clients and layouts), with the machine's probe running.
A variant is clients/layout: confluent (the real clients, acks=1, linger.ms=1: not librdkafka's
and Kafka 4's default of 5, whose lingering alone would use the whole 5 ms budget) or loadgen
(BatchProducer, 100 records per request, and FetchClient: the broker's figure), split (two
processes) or shared (one). Variants alternate between rounds (the order reversed every other
round). Per round: p50/p99/p99.9/max, records/s delivered against offered, the producer's
lateness, and CPU: the broker's, the clients', and the rest of the machine's (other work sharing
the 2 cores); the probe's share of slow units says how often the virtual machine itself ran slow.
Then per variant the median of the rounds' p99 with its 95 % interval (scenarios.harness.stats)
and the verdict against 5 ms, the percentiles of all rounds merged, and shared/split as the
median of per-round p99 ratios. --mb-per-s lower shows how the tail follows the broker's load.
"""

import argparse
import os
import tempfile

from scenarios.clients import pipeline
from scenarios.clients.cluster import delete_topics
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.stats import Summary, compare, summarize

LOADGEN_RECORDS_PER_REQUEST = 100
_TARGET_P99_MS = 5.0
_VARIANTS = ("confluent/split", "confluent/shared", "loadgen/split", "loadgen/shared")
_TOPIC_PREFIX = "e2e-"


def measure_round(
    args: argparse.Namespace, broker: LocalBroker, admin: BatchProducer, variant: str, topic: str
) -> pipeline.Round:
    clients, layout = variant.split("/")
    rate = args.mb_per_s * 1e6 / pipeline.RECORD_SIZE
    per_request = LOADGEN_RECORDS_PER_REQUEST if clients == "loadgen" else 1
    load = pipeline.Load(
        topic,
        rate,
        round(rate * (args.warmup_seconds + args.seconds) / per_request) * per_request,
        round(rate * args.warmup_seconds / per_request) * per_request,
        per_request,
        producer={"linger.ms": args.linger_ms},
    )
    admin.create_topic(topic, 1)
    try:
        return pipeline.run(
            broker.bootstrap,
            load,
            clients=clients,
            layout=layout,
            probe=True,
            broker_pid=broker.pid,
        )
    finally:
        delete_topics(broker.bootstrap, topic)


def verdict(p99: Summary) -> str:
    """Met when the whole interval of the median p99 lies within the target."""
    if p99.ci_high <= _TARGET_P99_MS:
        return "met"
    return "missed" if p99.ci_low > _TARGET_P99_MS else "inconclusive"


def measure(args: argparse.Namespace) -> None:
    variants = args.variants.split(",")
    rounds: dict[str, list[pipeline.Round]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        broker = LocalBroker(
            os.path.join(directory, "kbench"), log_path=os.path.join(directory, "broker.log")
        ).start()
        admin = BatchProducer(broker.bootstrap)
        try:
            size = pipeline.RECORD_SIZE
            print(f"broker pid {broker.pid} on {broker.bootstrap} (py-spy can attach)", flush=True)
            print(
                f"offered {args.mb_per_s:g} MB/s = {args.mb_per_s * 1e6 / size:,.0f} "
                f"records/s of {size} B, acks=1, confluent linger.ms={args.linger_ms:g}; "
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
                        + f"; probes > {pipeline.PROBE_SLOW}x median: CPU time "
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
        merged = pipeline.histogram()
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
            f"{stalled.median:.1%} of probes > {pipeline.PROBE_SLOW}x slow by CPU time, other "
            f"processes used {others.median:.1f} CPU s"
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
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
