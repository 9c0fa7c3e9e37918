"""Failover: an acks=all producer and a reader, each a process of its own, and the kills of a
partition's leader on a LocalCluster, timed from the producer's acknowledgements.

FailoverClients keeps two processes (multiprocessing's `spawn`) across measurements:
- the producer: confluent-kafka's Producer (acks=all, the given properties, e.g.
  enable.idempotence) offers 100-byte records to one partition at a fixed rate, open loop
  (record i due at start + i/rate), each value starting with its id (RECORD_ID digits), until
  told to stop; then it flushes and hands back every acknowledged id with the monotonic times
  it was sent and acknowledged, and every delivery error. While it runs it publishes the send
  time of the newest record acknowledged, so the parent sees when the partition takes writes
  again after a kill (a record sent after the kill can only be acknowledged by a new leader).
- the reader: confluent-kafka's Consumer assigned to every partition of a topic from the
  earliest offset, reading up to the high watermark: how many times each id is there.

Kills (kill_leader, kill_isr_of_one) SIGKILL brokers of a LocalCluster while the producer runs,
bring them back and wait until the partition's ISR holds every replica again, so the next kill
starts from a whole cluster. A Kill's unavailability is the longest pause between consecutive
acknowledgements from the last one at or before the kill to the first of a record sent after it.

Used by the failover scenario (scenarios/catalog/failover.py) and the replication benchmark's
failover command (tests/benchmarks/replication.py).
"""

import array
import contextlib
import itertools
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin

RECORD_SIZE = 100
RECORD_ID = 12  # digits of the id at the start of every value
_READY_TIMEOUT_S = 60.0
_FLUSH_TIMEOUT_S = 120.0


@dataclass
class Produced:
    """What one producer run sent: ids acknowledged with their send and acknowledgement times
    (time.monotonic(), which every process on the machine shares), delivery errors."""

    sent: int
    seconds: float  # from the first record's due time to the stop
    acked: array.array = field(default_factory=lambda: array.array("q"))
    sent_at: array.array = field(default_factory=lambda: array.array("d"))
    acked_at: array.array = field(default_factory=lambda: array.array("d"))
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Kill:
    """One failover: the brokers killed (the leader last) and when the leader was."""

    killed: tuple[int, ...]
    leader: int
    killed_at: float  # time.monotonic()

    def unavailable_s(self, produced: Produced) -> float:
        """The longest pause between acknowledgements, from the last at or before the kill to
        the first of a record sent after it (which only a new leader can acknowledge)."""
        back = min(
            (
                a
                for s, a in zip(produced.sent_at, produced.acked_at, strict=True)
                if s > self.killed_at
            ),
            default=None,
        )
        if back is None:
            raise ValueError("no record sent after the kill was acknowledged")
        times = sorted(produced.acked_at)
        start = max((t for t in times if t <= self.killed_at), default=self.killed_at)
        window = [start, *(t for t in times if start < t <= back)]
        return max(b - a for a, b in itertools.pairwise(window)) if len(window) > 1 else 0.0


def _produce(
    bootstrap: str,
    topic: str,
    rate: float,
    properties: Mapping[str, Any],
    stop: Event,
    newest: Synchronized,
) -> Produced:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "message.timeout.ms": 120_000,  # no record expires while a leader is elected
            "log_level": 2,  # a killed broker's refused connections are expected, not news
            **properties,
        }
    )
    padding = b"." * (RECORD_SIZE - RECORD_ID)
    sent_at: dict[int, float] = {}
    result = Produced(sent=0, seconds=0.0)

    def delivered(err: Any, message: Any) -> None:
        if err is not None:
            result.errors.append(str(err))
            return
        now = time.monotonic()
        record = int(message.value()[:RECORD_ID])
        result.acked.append(record)
        result.sent_at.append(sent_at[record])
        result.acked_at.append(now)
        if sent_at[record] > newest.value:
            newest.value = sent_at[record]

    start = time.monotonic()
    while not stop.is_set():
        due = start + result.sent / rate
        now = time.monotonic()
        if due > now:
            producer.poll(due - now)
            continue
        sent_at[result.sent] = now
        while True:
            try:
                producer.produce(
                    topic, b"%0*d" % (RECORD_ID, result.sent) + padding, on_delivery=delivered
                )
                break
            except BufferError:  # the client's queue is full: the partition takes nothing
                producer.poll(0.01)
        result.sent += 1
        producer.poll(0)
    result.seconds = time.monotonic() - start
    left = producer.flush(_FLUSH_TIMEOUT_S)
    if left:
        result.errors.append(f"{left} records still unacknowledged after {_FLUSH_TIMEOUT_S:g} s")
    return result


def _read(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "kbench-failover-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 2,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        counts: Counter[int] = Counter()
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(pending)} not read to the end")
            for message in consumer.consume(10_000, timeout=0.1):
                value, offset = message.value(), message.offset()
                if message.error() is None and value is not None and offset is not None:
                    counts[int(value[:RECORD_ID])] += 1
                    if offset + 1 >= ends[message.partition()]:
                        pending.discard(message.partition())
        return dict(counts)
    finally:
        consumer.close()


def _serve(
    bootstrap: str, orders: Connection, stop: Event, newest: Synchronized
) -> None:  # pragma: no cover - runs in a child process
    orders.send("ready")
    while (order := orders.recv()) is not None:
        try:
            if order[0] == "produce":
                _, topic, rate, properties = order
                orders.send(_produce(bootstrap, topic, rate, properties, stop, newest))
            else:
                orders.send(_read(bootstrap, order[1]))
        except Exception as error:
            orders.send(f"{type(error).__name__}: {error}")


class FailoverClients:
    """The producer and the reader processes, started once, used for any number of runs."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._context = multiprocessing.get_context("spawn")
        self._stop: Event = self._context.Event()
        self._newest: Synchronized = self._context.Value("d", 0.0)
        self._roles: dict[str, tuple[Any, Connection]] = {}

    def start(self) -> "FailoverClients":
        try:
            for role in ("producer", "consumer"):
                parent, child = self._context.Pipe()
                process = self._context.Process(
                    target=_serve,
                    args=(self.bootstrap, child, self._stop, self._newest),
                    daemon=True,
                )
                process.start()
                child.close()
                self._roles[role] = (process, parent)
            for role in self._roles:
                self._reply(role, _READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {role: process.pid for role, (process, _) in self._roles.items()}

    def _reply(self, role: str, timeout_s: float) -> Any:
        process, pipe = self._roles[role]
        deadline = time.monotonic() + timeout_s
        while not pipe.poll(0.1):
            if not process.is_alive():
                raise RuntimeError(f"the {role} process exited ({process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {role} process gave no answer in {timeout_s:g} s")
        reply = pipe.recv()
        if isinstance(reply, str) and reply != "ready":
            raise RuntimeError(f"the {role} process failed: {reply}")
        return reply

    def begin(self, topic: str, rate: float, properties: Mapping[str, Any]) -> None:
        """Start producing to `topic` at `rate` records/s until end()."""
        self._stop.clear()
        self._newest.value = 0.0
        self._roles["producer"][1].send(("produce", topic, rate, dict(properties)))

    @property
    def newest_acked(self) -> float:
        """The send time (time.monotonic()) of the newest record acknowledged so far."""
        return float(self._newest.value)

    def wait_acked_after(self, moment: float, timeout_s: float) -> float:
        """Until a record sent after `moment` is acknowledged; when that was seen."""
        deadline = time.monotonic() + timeout_s
        while self.newest_acked <= moment:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record acknowledged in {timeout_s:g} s")
            time.sleep(0.005)
        return time.monotonic()

    def end(self) -> Produced:
        self._stop.set()
        produced: Produced = self._reply("producer", _FLUSH_TIMEOUT_S + 30)
        return produced

    def read(self, topic: str) -> Counter[int]:
        """How many times each record id is in `topic`, read from the earliest offset."""
        self._roles["consumer"][1].send(("read", topic))
        return Counter(self._reply("consumer", 180))

    def close(self) -> None:
        self._stop.set()
        for _, pipe in self._roles.values():
            with contextlib.suppress(OSError):  # it is gone already
                pipe.send(None)
            pipe.close()
        for process, _ in self._roles.values():
            process.join(timeout=30)
            if process.exitcode is None:
                process.kill()
                process.join()
        self._roles.clear()

    def __enter__(self) -> "FailoverClients":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


# -- the partition, and kills -------------------------------------------------------------------
def quiet_admin(bootstrap: str) -> TopicAdmin:
    """A TopicAdmin whose librdkafka logs only what is critical: the refused connections of the
    brokers killed here are expected, not news."""
    from confluent_kafka.admin import AdminClient

    admin = TopicAdmin(bootstrap)
    admin.client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    return admin


def partition_state(admin: TopicAdmin, topic: str) -> tuple[int, list[int], list[int]]:
    """(leader, replicas, ISR) of the topic's partition 0, from Metadata; leader -1 when none."""
    metadata = admin.client.list_topics(topic, timeout=10)
    partition = metadata.topics[topic].partitions[0]
    return partition.leader, list(partition.replicas), list(partition.isrs)


def wait_for(
    admin: TopicAdmin,
    topic: str,
    done: Callable[[int, list[int], list[int]], bool],
    what: str,
    timeout_s: float = 60,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):  # a broker just killed may answer nothing
            if done(*partition_state(admin, topic)):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: {what} did not happen in {timeout_s:g} s")
        time.sleep(0.05)


def in_sync(admin: TopicAdmin, topic: str, timeout_s: float = 60) -> None:
    """Until the partition has a leader and every replica is in its ISR."""
    wait_for(
        admin,
        topic,
        lambda leader, replicas, isr: leader >= 0 and set(isr) == set(replicas),
        "every replica back in the ISR",
        timeout_s,
    )


def kill_leader(
    cluster: LocalCluster,
    admin: TopicAdmin,
    clients: FailoverClients,
    topic: str,
    timeout_s: float = 60,
) -> Kill:
    """SIGKILL the partition's leader; once a record sent after it is acknowledged (a new leader
    elected from the ISR), restart it and wait until it is back in the ISR."""
    leader, _, _ = partition_state(admin, topic)
    killed_at = time.monotonic()
    cluster.kill(leader)
    clients.wait_acked_after(killed_at, timeout_s)
    cluster.restart(leader)
    in_sync(admin, topic, timeout_s)
    return Kill((leader,), leader, killed_at)


def kill_isr_of_one(
    cluster: LocalCluster,
    admin: TopicAdmin,
    clients: FailoverClients,
    topic: str,
    alone_s: float,
    hold_s: float | None,
    timeout_s: float = 60,
) -> Kill:
    """Leave the ISR without a live member, then bring back replicas that are behind: SIGKILL
    every follower; once the controller has fenced them (broker.session.timeout.ms) the ISR is
    the leader alone, and with min.insync.replicas=1 acks=all is acknowledged by it alone for
    `alone_s`; SIGKILL the leader; restart the followers, which lack those records. With
    unclean.leader.election.enable=true the first of them to return is elected (its ISR itself,
    RECOVERING) and the records only the dead leader had are gone; without it the partition has
    no leader until the dead one returns. The dead leader is restarted after `hold_s`, or, with
    hold_s None (for unclean election), once a record sent after the kill is acknowledged, so
    the stale replica surely leads first. Then every replica is waited for back in the ISR (the
    old leader, under an unclean leader, truncates what the new one never had)."""
    leader, replicas, _ = partition_state(admin, topic)
    followers = [r for r in replicas if r != leader]
    for follower in followers:
        cluster.kill(follower)
    wait_for(admin, topic, lambda _, __, isr: isr == [leader], "the ISR shrinking to the leader")
    clients.wait_acked_after(time.monotonic(), timeout_s)
    time.sleep(alone_s)
    killed_at = time.monotonic()
    cluster.kill(leader)
    for follower in followers:
        cluster.restart(follower)
    if hold_s is None:
        clients.wait_acked_after(killed_at, timeout_s)
    else:
        time.sleep(max(killed_at + hold_s - time.monotonic(), 0))
    cluster.restart(leader)
    clients.wait_acked_after(killed_at, timeout_s)
    in_sync(admin, topic, timeout_s)
    return Kill((*followers, leader), leader, killed_at)
