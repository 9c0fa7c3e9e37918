"""kill -9 in a replicated cluster under load: no acknowledged record is lost or duplicated.

A 3-broker kbench cluster (and its controller) holds a topic of 4 partitions, replication
factor 3, min.insync.replicas=2. An idempotent confluent-kafka producer (acks=all) writes
numbered records while a random broker is SIGKILLed, left dead for a moment, and restarted,
`--cycles` times; each restart waits until the ISR is whole again, so a kill never takes two
replicas of a partition at once. Every record whose delivery report said "written" is
remembered; at the end a consumer reads every partition from the start, and each acknowledged
record must be there exactly once, in the order it was produced within its partition, and every
replica's log must be byte for byte the leader's.

    python3 -m tests.soak.cluster_kill9 --cycles 10
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from scenarios.clients.cluster import ClusterError, KafkaConnection
from scenarios.clients.local_broker import LocalCluster
from tests.cluster_support import CLUSTER_SETTINGS, wait_until

TOPIC = "soak"
PARTITIONS = 4


def isr_whole(cluster: LocalCluster) -> bool:
    for broker in cluster.brokers.values():
        if broker.process is None or broker.process.poll() is not None:
            continue
        try:
            with KafkaConnection(broker.bootstrap, timeout_s=5) as connection:
                cls = MetadataRequest[12]
                response = connection.request(
                    cls(
                        topics=[cls.MetadataRequestTopic(name=TOPIC)],
                        allow_auto_topic_creation=False,
                    ),
                    MetadataResponse,
                )
        except ClusterError:
            continue
        partitions = response.topics[0].partitions
        return len(partitions) == PARTITIONS and all(len(p.isr_nodes) == 3 for p in partitions)
    return False


def segment_bytes(directory: str) -> bytes:
    data = b""
    for name in sorted(n for n in os.listdir(directory) if n.endswith(".log")):
        with open(os.path.join(directory, name), "rb") as f:
            data += f.read()
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    cluster = LocalCluster(tempfile.mkdtemp(prefix="kbench-cluster-kill9-"), 3, CLUSTER_SETTINGS)
    cluster.start()
    acked: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    errors: list[str] = []
    stop = threading.Event()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(30)
        wait_until(lambda: isr_whole(cluster), what="the topic's ISR filling")

        def produce() -> None:
            producer = Producer(
                {
                    "bootstrap.servers": cluster.bootstrap,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                    "message.timeout.ms": 300_000,
                }
            )

            def delivered(err: object, message: object) -> None:
                if err is None:
                    acked[message.partition()].append(int(message.value()))  # type: ignore[attr-defined]
                else:
                    errors.append(str(err))

            i = 0
            while not stop.is_set():
                producer.produce(
                    TOPIC, str(i).encode(), partition=i % PARTITIONS, on_delivery=delivered
                )
                producer.poll(0)
                i += 1
                time.sleep(0.0005)
            producer.flush(300)

        thread = threading.Thread(target=produce)
        thread.start()
        for cycle in range(args.cycles):
            time.sleep(rng.uniform(0.5, 3))
            victim = rng.choice(sorted(cluster.brokers))
            cluster.kill(victim)
            time.sleep(rng.uniform(0, 3))
            cluster.restart(victim)
            wait_until(lambda: isr_whole(cluster), timeout_s=120, what="the ISR refilling")
            print(
                f"cycle {cycle + 1}: killed broker {victim}; "
                f"{sum(len(v) for v in acked.values())} acknowledged so far",
                flush=True,
            )
        stop.set()
        thread.join()
        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "group.id": "soak-check",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        seen: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
        total = sum(len(v) for v in acked.values())
        deadline = time.monotonic() + 120
        while sum(len(v) for v in seen.values()) < total and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen[message.partition()].append(int(message.value()))
        consumer.close()
        lost = duplicated = misordered = 0
        for p in range(PARTITIONS):
            wanted = set(acked[p])
            lost += len(wanted - set(seen[p]))
            duplicated += len(seen[p]) - len(set(seen[p]))
            mine = [v for v in seen[p] if v in wanted]
            misordered += int(mine != sorted(mine))
        identical = all(
            len(
                {
                    segment_bytes(os.path.join(b.data_dir, f"{TOPIC}-{p}"))
                    for b in cluster.brokers.values()
                }
            )
            == 1
            for p in range(PARTITIONS)
        )
    finally:
        stop.set()
        cluster.stop()
    print(
        f"{args.cycles} kills: {total} acknowledged, {lost} lost, {duplicated} duplicated, "
        f"{misordered} partitions out of order, {len(errors)} delivery errors; replicas "
        f"{'identical' if identical else 'DIFFER'}"
    )
    return 0 if lost == duplicated == misordered == 0 and not errors and identical else 1


if __name__ == "__main__":
    sys.exit(main())
