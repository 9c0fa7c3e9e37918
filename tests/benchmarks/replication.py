"""How long a leader's death stops an acks=all producer on a kbench cluster.

    python3 -m tests.benchmarks.replication failover [--kills 10]

A topic of RF=3, min.insync.replicas=2, written by an idempotent confluent-kafka producer
(acks=all, a process of its own) at a fixed 2,000 records/s; its leader is SIGKILLed --kills
times (restarted and back in the ISR before the next kill; scenarios/clients/failover.py, as the
failover scenario does). Unavailability per kill: the longest pause in acknowledgements from the
last one before the kill to the first of a record sent after it. Prints each, the median and the
max, and the broker settings that bound it (broker.session.timeout.ms: the controller notices the
death then).

What acks and the replication factor cost in throughput and latency, and what a stopped
follower does to acks=all, is the `replication` scenario's (`kbench run replication`); leader
failover under each setting is the `failover` scenario's.
"""

import argparse
import statistics
import tempfile
import time

from scenarios.clients.failover import FailoverClients, in_sync, kill_leader, quiet_admin
from scenarios.clients.local_broker import LocalCluster

SETTINGS = {
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    "replica.lag.time.max.ms": "10000",
    "group.initial.rebalance.delay.ms": "0",
}


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
    kills = commands.add_parser("failover")
    kills.add_argument("--kills", type=int, default=10)
    failover(parser.parse_args())


if __name__ == "__main__":
    main()
