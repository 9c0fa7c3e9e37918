"""kill -9 under load: no acknowledged record is ever lost.

A confluent-kafka producer (acks=all, idempotence off) writes numbered records to a 4-partition
topic of a `kbench broker` while the broker is SIGKILLed at random moments and restarted on the
same data directory, `--cycles` times. Every record whose delivery report said "written" is
remembered with its partition and offset; at the end one consumer reads every partition from
the start and each acknowledged record must be there, at its offset, with its value.

    python3 -m tests.soak.kill9 --cycles 30
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import broker_process

TOPIC = "soak"
PARTITIONS = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    data_dir = os.path.join(tempfile.mkdtemp(prefix="kbench-kill9-"), "data")
    acked: dict[tuple[int, int], bytes] = {}
    failed = 0
    broker = broker_process(data_dir).start()
    port = broker.port
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
    del admin
    sequence = 0

    def delivered(error, message) -> None:
        nonlocal failed
        if error is None:
            acked[message.partition(), message.offset()] = message.value()
        else:
            failed += 1

    for cycle in range(args.cycles):
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "acks": "all",
                "linger.ms": 1,
                "message.timeout.ms": 5000,
                "on_delivery": delivered,
            }
        )
        kill_at = time.monotonic() + rng.uniform(0.3, 1.5)
        while time.monotonic() < kill_at:
            try:
                producer.produce(TOPIC, b"record %d" % sequence, partition=sequence % PARTITIONS)
                sequence += 1
            except BufferError:
                pass
            producer.poll(0)
        os.kill(broker.pid, signal.SIGKILL)
        broker.process.wait()
        producer.flush(10)  # what was in flight fails (timeout) or was acknowledged before
        del producer
        broker = broker_process(data_dir).start(port=port)
        print(f"cycle {cycle + 1}: {len(acked)} acknowledged, {failed} failed", flush=True)

    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "soak", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    found: dict[tuple[int, int], bytes] = {}
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
        for p in range(PARTITIONS)
    }
    positions = dict.fromkeys(ends, 0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(positions[p] < ends[p] for p in ends):
        for message in consumer.consume(10_000, 1.0):
            if message.error() is None:
                found[message.partition(), message.offset()] = message.value()
                positions[message.partition()] = message.offset() + 1
    consumer.close()
    broker.stop()
    lost = [key for key, value in acked.items() if found.get(key) != value]
    print(
        f"{args.cycles} kill -9 cycles: {len(acked)} records acknowledged, {failed} not, "
        f"{len(found)} read back; acknowledged records lost or changed: {len(lost)}"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
