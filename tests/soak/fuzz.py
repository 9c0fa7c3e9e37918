"""Mutated request frames: no frame takes the broker down or is answered with an internal error.

Valid requests of every API the broker serves (at its lowest and highest version) are encoded,
then mutated: bytes flipped, ranges zeroed or set to 0xff, cut short or extended, length
prefixes and counts rewritten. Each mutant is sent on a connection, which is reused until the
broker closes it. Every `--check-every` frames a real client (kafka-python) must still produce
and read back a record. At the end the broker must be alive and its log free of tracebacks.

    python3 -m tests.soak.fuzz --frames 100000
"""

import argparse
import os
import random
import select
import socket
import struct
import sys
import tempfile

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from engine.protocol.apis import APIS, ApiKeys
from engine.records import SimpleRecord, build_batch
from tests.conftest import broker_process

TOPIC = "fuzz"


def seeds() -> list[bytes]:
    """One valid request body (header included) per API and version end."""
    bodies = []
    for key, (request_class, _, low, high) in sorted(APIS.items()):
        for version in sorted({low, high}):
            request = request_class[version]()
            if key == ApiKeys.PRODUCE:
                partition = request_class[version].TopicProduceData.PartitionProduceData(
                    index=0, records=bytes(build_batch([SimpleRecord(b"v" * 50)] * 3))
                )
                request.topic_data = [
                    request_class[version].TopicProduceData(name=TOPIC, partition_data=[partition])
                ]
                request.acks = 1
            if key == ApiKeys.FETCH:
                request.max_wait_ms = 0
            request.with_header(correlation_id=1, client_id="fuzz")
            try:
                bodies.append(bytes(request.encode(header=True)))
            except Exception:  # a version whose defaults do not encode: the other end covers it
                continue
    return bodies


def mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(len(data)) if data else 0
        if kind == 0 and data:  # flip bits
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:  # a run of 0x00 or 0xff (null lengths, huge counts)
            run = rng.randint(1, 8)
            data[at : at + run] = bytes([rng.choice((0, 0xFF))]) * run
        elif kind == 2:  # cut short
            del data[at:]
        elif kind == 3:  # extend
            data += os.urandom(rng.randint(1, 64))
        elif kind == 4 and len(data) >= 4:  # a plausible length or count rewritten
            at = rng.randrange(len(data) - 3)
            data[at : at + 4] = struct.pack(">i", rng.choice((-1, 0, 1, 0x7FFFFFFF, 1 << 20)))
        elif kind == 5 and len(data) >= 2:  # a small varint-ish value rewritten
            data[at] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
    return bytes(data)


def frame(body: bytes, rng: random.Random) -> bytes:
    size = len(body)
    if rng.random() < 0.02:  # a lying size prefix
        size = rng.choice((-1, 0, size + 1, 1 << 30))
    return struct.pack(">i", size) + body


def check_client(bootstrap: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)
    metadata = producer.send(TOPIC, value, partition=0).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=10_000)
    partition = TopicPartition(TOPIC, 0)
    consumer.assign([partition])
    consumer.seek(partition, metadata.offset)
    record = next(iter(consumer))
    consumer.close()
    assert record.value == value, (record.value, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--check-every", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    bodies = seeds()
    broker = broker_process(os.path.join(tempfile.mkdtemp(prefix="kbench-fuzz-"), "data"))
    broker.start()
    check_client(broker.bootstrap, b"before")
    sock: socket.socket | None = None
    closed = 0
    try:
        for sent in range(1, args.frames + 1):
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
            try:
                sock.sendall(frame(mutate(rng.choice(bodies), rng), rng))
                answered, _, _ = select.select([sock], [], [], 0.005)
                # an answer keeps the connection; none yet means the broker waits for bytes
                # that will never come: hang up, which ends that frame
                if not answered or not sock.recv(1 << 16):
                    sock.close()
                    sock = None
                    closed += bool(answered)
            except OSError:  # reset or broken pipe: the broker closed it
                sock.close()
                sock, closed = None, closed + 1
            if sent % args.check_every == 0:
                assert broker.process.poll() is None, "the broker exited"
                check_client(broker.bootstrap, b"after %d" % sent)
                print(f"{sent} frames, {closed} connections closed by the broker", flush=True)
    finally:
        if sock is not None:
            sock.close()
    alive = broker.process.poll() is None
    check_client(broker.bootstrap, b"at the end")
    broker.stop()
    with open(broker.log_path) as log:
        text = log.read()
    tracebacks = text.count("Traceback")
    internal = text.count("internal error")
    print(
        f"{args.frames} mutated frames: broker alive {alive}, {closed} connections closed by it "
        "(the others answered or left waiting for bytes that never came), "
        f"{tracebacks} tracebacks and {internal} internal errors in its log"
    )
    return 0 if alive and not tracebacks and not internal else 1


if __name__ == "__main__":
    sys.exit(main())
