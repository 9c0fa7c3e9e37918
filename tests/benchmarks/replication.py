"""What replication costs a producer on a kbench cluster, and how long a leader's death stops it.

    python3 -m tests.benchmarks.replication throughput [--rounds 8] [--mib 64]
    python3 -m tests.benchmarks.replication failover [--kills 10]

throughput: one cluster (a controller and three brokers, data on --data-dir), three topics of one
partition: RF=1 written with acks=1, RF=3 with acks=1, RF=3 with acks=all (min.insync.replicas=2).
Each round sends --mib MiB of prebuilt 64 KiB batches of 100-byte records
(scenarios.clients.loadgen, window 8, one connection to the partition's leader) to each topic, in
an order shuffled per round, so drift and noise hit every variant alike. Prints every round's MB/s,
each variant's median, and the median of the per-round ratios to RF=1 acks=1 with a bootstrap 95 %
interval, "inconclusive" when that interval holds 1 (scenarios.harness.stats: the paired,
order-statistic interval of the median ratio). While acks=all runs, the leader's view of its
followers (GET /stats) is sampled every 50 ms: the follower lag in offsets, p50 and max.

failover: a topic of RF=3, min.insync.replicas=2, written by an idempotent confluent-kafka
producer (acks=all, a process of its own) at a fixed 2,000 records/s; its leader is SIGKILLed
--kills times (restarted and back in the ISR before the next kill; scenarios/clients/failover.py,
as the failover scenario does). Unavailability per kill: the longest pause in acknowledgements
from the last one before the kill to the first of a record sent after it. Prints each, the
median and the max, and the broker settings that bound it (broker.session.timeout.ms: the
controller notices the death then).
"""

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
import urllib.request

from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.failover import FailoverClients, in_sync, kill_leader, quiet_admin
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalCluster
from scenarios.harness.stats import compare, summarize

SETTINGS = {
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    "replica.lag.time.max.ms": "10000",
    "group.initial.rebalance.delay.ms": "0",
}
VARIANTS = {  # name: (replication factor, acks)
    "RF=1 acks=1": (1, 1),
    "RF=3 acks=1": (3, 1),
    "RF=3 acks=all": (3, -1),
}


def leader_of(cluster: LocalCluster, topic: str) -> int:
    bootstrap = next(iter(cluster.brokers.values())).bootstrap
    with KafkaConnection(bootstrap) as connection:
        cls = MetadataRequest[12]
        response = connection.request(
            cls(topics=[cls.MetadataRequestTopic(name=topic)], allow_auto_topic_creation=False),
            MetadataResponse,
        )
    return response.topics[0].partitions[0].leader_id


def follower_lags(cluster: LocalCluster, leader: int, partition: str) -> list[int]:
    address = cluster.brokers[leader].bootstrap
    with urllib.request.urlopen(f"http://{address}/stats", timeout=5) as f:
        view = json.loads(f.read())["partitions"].get(partition, {})
    return [f["lag"] for f in view.get("followers", {}).values() if f["lag"] is not None]


def throughput(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.data_dir) as directory:
        cluster = LocalCluster(directory, 3, SETTINGS).start()
        try:
            producers = {}
            first = next(iter(cluster.brokers.values())).bootstrap
            setup = BatchProducer(first)
            for name, (rf, _) in VARIANTS.items():
                topic = "bench-" + name.replace("=", "").replace(" ", "-")
                setup.create_topic(topic, 1, rf, {"min.insync.replicas": "1" if rf == 1 else "2"})
                leader = leader_of(cluster, topic)
                producers[name] = (topic, leader, BatchProducer(cluster.brokers[leader].bootstrap))
            setup.close()
            results: dict[str, list[float]] = {name: [] for name in VARIANTS}
            lags: list[int] = []
            for round_ in range(args.rounds):
                order = list(VARIANTS)
                random.shuffle(order)
                for name in order:
                    topic, leader, producer = producers[name]
                    stop = threading.Event()
                    sampler = None
                    if VARIANTS[name][0] == 3:

                        def sample(
                            t: str = topic, lead: int = leader, done: threading.Event = stop
                        ) -> None:
                            while not done.wait(0.05):
                                lags.extend(follower_lags(cluster, lead, f"{t}-0"))

                        sampler = threading.Thread(target=sample)
                        sampler.start()
                    stats = producer.produce(
                        topic, 1, args.mib << 20, window=8, acks=VARIANTS[name][1]
                    )
                    stop.set()
                    if sampler is not None:
                        sampler.join()
                    results[name].append(stats.bytes / stats.seconds / 1e6)
                    print(f"round {round_ + 1} {name:14} {results[name][-1]:8.1f} MB/s", flush=True)
            for _, _, producer in producers.values():
                producer.close()
        finally:
            cluster.stop()
    base = results["RF=1 acks=1"]
    print()
    for name, values in results.items():
        median = summarize(values)
        line = (
            f"{name:14} median {median.median:8.1f} MB/s "
            f"(CI {median.ci_low:.1f}-{median.ci_high:.1f})"
        )
        if name != "RF=1 acks=1":
            ratio = compare(values, base)
            line += (
                f"   ratio to RF=1 acks=1 {ratio.ratio:.2f} "
                f"(CI {ratio.ci_low:.2f}-{ratio.ci_high:.2f}, coverage {ratio.confidence:.3f})"
                + ("" if ratio.significant else " inconclusive")
            )
        print(line)
    if lags:
        lags.sort()
        print(
            f"follower lag under load (RF=3, {len(lags)} samples): "
            f"p50 {lags[len(lags) // 2]} offsets, max {lags[-1]}"
        )


def failover(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.data_dir) as directory:
        settings = {**SETTINGS, "min.insync.replicas": "2", "default.replication.factor": "3"}
        cluster = LocalCluster(directory, 3, settings).start()
        try:
            admin = quiet_admin(cluster.bootstrap)
            admin.create("failover", 1, replication_factor=3, configs={"min.insync.replicas": "2"})
            in_sync(admin, "failover")
            with FailoverClients(cluster.bootstrap) as clients:
                clients.begin("failover", 2000, {"enable.idempotence": True})
                kills = []
                for _ in range(args.kills):
                    time.sleep(2)  # steady state
                    kills.append(kill_leader(cluster, admin, clients, "failover"))
                produced = clients.end()
        finally:
            cluster.stop()
    gaps = [kill.unavailable_s(produced) * 1000 for kill in kills]
    for number, (kill, gap) in enumerate(zip(kills, gaps, strict=True), 1):
        print(
            f"kill {number}: broker {kill.leader}; longest pause in acknowledgements {gap:.0f} ms"
        )
    session = SETTINGS["broker.session.timeout.ms"]
    heartbeat = SETTINGS["broker.heartbeat.interval.ms"]
    print(
        f"over {len(gaps)} kills: longest pause in acknowledgements median "
        f"{statistics.median(gaps):.0f} ms, max {max(gaps):.0f} ms "
        f"(broker.session.timeout.ms={session}, heartbeat {heartbeat} ms); "
        f"delivery errors: {len(produced.errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="where the cluster's logs go (a tmp dir)")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("throughput")
    bench.add_argument("--rounds", type=int, default=8)
    bench.add_argument("--mib", type=int, default=64)
    kills = commands.add_parser("failover")
    kills.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    throughput(args) if args.command == "throughput" else failover(args)


if __name__ == "__main__":
    main()
