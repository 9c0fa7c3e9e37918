"""How long a leader's death stops an acks=all producer on a kbench cluster.

    python3 -m tests.benchmarks.replication failover [--kills 10]

A topic of RF=3, min.insync.replicas=2, written by an idempotent confluent-kafka producer
(acks=all) at a fixed 2,000 records/s; its leader is SIGKILLed --kills times (restarted and back
in the ISR before the next kill). Unavailability per kill: the last acknowledgement before the
kill to the first after it. Prints each, the median and the max, and the broker settings that
bound it (broker.session.timeout.ms: the controller notices the death then).

What acks and the replication factor cost in throughput and latency, and what a stopped
follower does to acks=all, is the `replication` scenario's (`kbench run replication`).
"""

import argparse
import itertools
import statistics
import tempfile
import threading
import time

from confluent_kafka import Producer

from scenarios.clients.load_processes import leaders
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalCluster

SETTINGS = {
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    "replica.lag.time.max.ms": "10000",
    "group.initial.rebalance.delay.ms": "0",
}


def leader_of(cluster: LocalCluster, topic: str) -> int:
    return leaders(next(iter(cluster.brokers.values())).bootstrap, topic)[0][0]


def failover(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.data_dir) as directory:
        settings = {**SETTINGS, "min.insync.replicas": "2", "default.replication.factor": "3"}
        cluster = LocalCluster(directory, 3, settings).start()
        acks: list[tuple[float, float]] = []  # (sent, acknowledged), time.monotonic()
        errors: list[str] = []
        stop = threading.Event()

        def produce() -> None:
            producer = Producer(
                {
                    "bootstrap.servers": cluster.bootstrap,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 0,
                    "message.timeout.ms": 120_000,
                }
            )
            next_at = time.monotonic()
            while not stop.is_set():
                sent = time.monotonic()

                def delivered(err: object, _: object, sent: float = sent) -> None:
                    if err is None:
                        acks.append((sent, time.monotonic()))
                    else:
                        errors.append(str(err))

                producer.produce("failover", b"x" * 100, on_delivery=delivered)
                producer.poll(0)
                next_at += 1 / 2000
                time.sleep(max(next_at - time.monotonic(), 0))
            producer.flush(120)

        gaps: list[float] = []
        recoveries: list[float] = []
        try:
            BatchProducer(cluster.bootstrap.split(",")[0]).create_topic(
                "failover", 1, 3, {"min.insync.replicas": "2"}
            )
            thread = threading.Thread(target=produce)
            thread.start()
            for kill in range(args.kills):
                time.sleep(2)  # steady state
                leader = leader_of(cluster, "failover")
                killed_at = time.monotonic()
                cluster.kill(leader)
                # the cluster acknowledges again: a record sent after the kill is acknowledged
                while not any(sent > killed_at for sent, _ in acks[-100:]):
                    time.sleep(0.01)
                back = min(done for sent, done in acks if sent > killed_at)
                times = sorted(done for _, done in acks if killed_at - 1 <= done <= back)
                gaps.append(max(b - a for a, b in itertools.pairwise(times)) * 1000)
                recoveries.append((back - killed_at) * 1000)
                print(
                    f"kill {kill + 1}: broker {leader}; longest pause in acknowledgements "
                    f"{gaps[-1]:.0f} ms, kill to the first acknowledged new record "
                    f"{recoveries[-1]:.0f} ms",
                    flush=True,
                )
                cluster.restart(leader)
                cluster.wait_for_brokers(set(cluster.brokers))
            stop.set()
            thread.join()
        finally:
            stop.set()
            cluster.stop()
    session = SETTINGS["broker.session.timeout.ms"]
    heartbeat = SETTINGS["broker.heartbeat.interval.ms"]
    print(
        f"over {len(gaps)} kills: longest pause in acknowledgements median "
        f"{statistics.median(gaps):.0f} ms, max {max(gaps):.0f} ms; kill to the first "
        f"acknowledged new record median {statistics.median(recoveries):.0f} ms, max "
        f"{max(recoveries):.0f} ms (broker.session.timeout.ms={session}, heartbeat "
        f"{heartbeat} ms); delivery errors: {len(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="where the cluster's logs go (a tmp dir)")
    commands = parser.add_subparsers(dest="command", required=True)
    kills = commands.add_parser("failover")
    kills.add_argument("--kills", type=int, default=10)
    failover(parser.parse_args())


if __name__ == "__main__":
    main()
