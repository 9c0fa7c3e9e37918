"""An idempotent or transactional producer and two tailing consumers (read_committed and
read_uncommitted), each a process of its own, for the exactly-once scenario.

EosClients keeps three processes (multiprocessing's `spawn`: the parent may run librdkafka's
threads, which fork would copy in an unknown state) across measurements:
- the producer: confluent-kafka's Producer, acks=all and enable.idempotence on, plus the given
  properties (linger.ms); with a commit interval N > 0 it is transactional (a transactional.id
  of its own per run, init_transactions() before the start) and commits every N records, the
  last transaction holding the remainder. It writes RECORD_SIZE-byte values to partition 0,
  each starting with its index and its due time (CLOCK_MONOTONIC ns, which every process on the
  machine shares), either as fast as it can for `seconds` (closed loop: a record is due when it
  is produced) or at `rate` records/s (open loop: record i due at start + i/rate, so a record
  held up behind a blocking commit_transaction() carries its wait). Before the start it writes
  a warm-up mark (index WARMUP_MARK, committed), after the last record an end mark (END_MARK,
  in the last transaction). It hands back the records it had acknowledged (idempotent) or
  committed (transactional): their count and the sum of their indexes, the transactions, the
  time from the start to the last acknowledgement or commit, and every record's acknowledgement
  latency from its due time.
- two consumers, read_committed and read_uncommitted: confluent-kafka's Consumer assigned to
  partition 0 from the earliest offset, reading until the end mark. Each says "tailing" once it
  has the warm-up mark (so the parent starts the load only when both are fetching at the log's
  end), and hands back the count and index sum of the records it got and each one's time of
  delivery (CLOCK_MONOTONIC ns, by index). A read_committed consumer gets a transaction's
  records only once its COMMIT marker is written (the last stable offset passes them): the
  difference between the two consumers' delivery times of a record is the LSO lag.

One thread at a time drives an EosClients: orders and replies are matched by order on each pipe.
"""

import array
import contextlib
import multiprocessing
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

RECORD_SIZE = 100
WARMUP_MARK, END_MARK = -1, -2  # indexes of the records around the load
_HEADER = struct.Struct(">qq")  # index, due time (CLOCK_MONOTONIC ns)
_READY_TIMEOUT_S = 60.0
_RUN_TIMEOUT_S = 180.0
_ISOLATIONS = ("read_committed", "read_uncommitted")
# a child process's clients, kept across runs (one process, one thread: not shared)
_cached: dict[tuple, Any] = {}


@dataclass
class Produced:
    """What one producer run wrote and had acknowledged (idempotent) or committed."""

    records: int  # acknowledged (idempotent) or committed (transactional), marks left out
    id_sum: int
    transactions: int  # committed transactions, the warm-up mark's left out
    seconds: float  # start to the last acknowledgement or commit
    sending_seconds: float  # start to the last record produced (before its commit)
    latency_ns: array.array = field(default_factory=lambda: array.array("q"))  # acks, from due
    # when each transaction's commit_transaction() was called (CLOCK_MONOTONIC ns): record i is
    # in transaction i // interval, and no read_committed consumer may have it before then
    commit_ns: array.array = field(default_factory=lambda: array.array("q"))
    errors: list[str] = field(default_factory=list)


@dataclass
class Consumed:
    """What one consumer got: count and index sum of the records, and when each arrived."""

    isolation: str
    records: int
    id_sum: int
    delivered_ns: dict[int, int] = field(default_factory=dict)  # index: CLOCK_MONOTONIC ns
    due_ns: dict[int, int] = field(default_factory=dict)  # index: its due time


def value(index: int, due_ns: int) -> bytes:
    return _HEADER.pack(index, due_ns) + b"." * (RECORD_SIZE - _HEADER.size)


def _produce(
    bootstrap: str,
    orders: Connection,
    topic: str,
    interval: int,
    rate: float | None,
    seconds: float,
    properties: Mapping[str, Any],
) -> Produced:
    from confluent_kafka import Producer

    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "log_level": 2,
        **properties,
    }
    key = ("producer", interval > 0, tuple(sorted(properties.items())))
    producer = _cached.get(key)
    if producer is None:  # kept for later runs: a new one costs a connection and, with
        # transactions, init_transactions()
        if interval > 0:
            config["transactional.id"] = f"kbench-eos-{os.getpid()}"
        producer = _cached[key] = Producer(config)
        if interval > 0:
            producer.init_transactions()
    result = Produced(records=0, id_sum=0, transactions=0, seconds=0.0, sending_seconds=0.0)
    pending: list[int] = []  # indexes in the open transaction
    last_ack = [0]

    def delivered(err: Any, message: Any) -> None:
        now = time.monotonic_ns()
        if err is not None:
            result.errors.append(str(err))
            return
        index, due = _HEADER.unpack_from(message.value())
        if index >= 0:
            result.latency_ns.append(now - due)
            last_ack[0] = now
            if interval == 0:
                result.records += 1
                result.id_sum += index

    def send(index: int, due: int) -> None:
        while True:
            try:
                producer.produce(topic, value(index, due), partition=0, on_delivery=delivered)
                return
            except BufferError:  # the client's queue is full
                producer.poll(0.001)

    def commit() -> None:
        result.commit_ns.append(time.monotonic_ns())
        producer.commit_transaction()
        result.records += len(pending)
        result.id_sum += sum(pending)
        result.transactions += 1
        pending.clear()

    if interval > 0:
        producer.begin_transaction()
    send(WARMUP_MARK, time.monotonic_ns())
    if interval > 0:
        producer.commit_transaction()
    producer.flush(60)
    orders.send("ready")
    start_ns = orders.recv()
    while time.monotonic_ns() < start_ns:
        time.sleep(0.0005)
    end_ns = start_ns + int(seconds * 1e9)
    count = int(rate * seconds) if rate else None
    index, last_sent = 0, start_ns
    while (index < count) if count is not None else (time.monotonic_ns() < end_ns):
        if rate:
            due = start_ns + int(index * 1e9 / rate)
            now = time.monotonic_ns()
            if due > now:
                producer.poll((due - now) / 1e9)
                continue
        else:
            due = time.monotonic_ns()
        if interval > 0 and not pending:
            producer.begin_transaction()
        send(index, due)
        last_sent = time.monotonic_ns()
        producer.poll(0)
        if interval > 0:
            pending.append(index)
            if len(pending) == interval:
                commit()
        index += 1
    result.sending_seconds = (last_sent - start_ns) / 1e9
    if interval > 0 and not pending:
        producer.begin_transaction()
    send(END_MARK, time.monotonic_ns())
    if interval > 0:
        commit()
    left = producer.flush(60)
    if left:
        result.errors.append(f"{left} records unacknowledged after 60 s")
    done = time.monotonic_ns() if interval > 0 else max(last_ack[0], start_ns)
    result.seconds = (done - start_ns) / 1e9
    return result


def _read(
    bootstrap: str, orders: Connection, topic: str, isolation: str, timeout_s: float, timed: bool
) -> Consumed:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = _cached.get(("consumer", isolation))
    if consumer is None:  # kept for later runs, assigned each run's topic
        consumer = _cached["consumer", isolation] = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"kbench-eos-{isolation}",
                "isolation.level": isolation,
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
                "topic.metadata.refresh.fast.interval.ms": 10,
                "log_level": 2,
            }
        )
    result = Consumed(isolation, 0, 0)
    try:
        # a topic the consumer has no metadata of yet would be fetched from only after its
        # next metadata refresh (0.5-1 s here): ask for it first
        consumer.list_topics(topic, timeout=30)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} ({isolation}): no end mark in {timeout_s:g} s")
            # poll returns at the first record; consume(n, timeout) would wait for n of them
            first = consumer.poll(0.05)
            if first is None:
                continue
            for message in [first, *consumer.consume(10_000, timeout=0)]:
                now = time.monotonic_ns()
                payload = message.value()
                if message.error() is not None or payload is None:
                    continue
                index, due = _HEADER.unpack_from(payload)
                if index == WARMUP_MARK:
                    orders.send("tailing")
                elif index == END_MARK:
                    return result
                else:
                    result.records += 1
                    result.id_sum += index
                    if timed:
                        result.delivered_ns[index] = now
                        result.due_ns[index] = due
    finally:
        consumer.unassign()


def _serve(bootstrap: str, orders: Connection) -> None:  # pragma: no cover - a child process
    orders.send("ready")
    while (order := orders.recv()) is not None:
        try:
            if order[0] == "produce":
                orders.send(_produce(bootstrap, orders, *order[1:]))
            else:
                orders.send(_read(bootstrap, orders, *order[1:]))
        except Exception as error:
            for client in _cached.values():  # a client in an unknown state is not reused
                with contextlib.suppress(Exception):
                    client.close() if hasattr(client, "close") else client.flush(1)
            _cached.clear()
            orders.send(f"{type(error).__name__}: {error}")
    for client in _cached.values():
        if hasattr(client, "close"):  # consumers leave; producers have nothing pending
            client.close()


@dataclass
class Run:
    """One producer run and what each consumer that tailed it got."""

    produced: Produced
    consumed: dict[str, Consumed]  # by isolation level


class EosClients:
    """The producer and the two consumer processes, started once, used for any number of runs."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._context = multiprocessing.get_context("spawn")
        self._roles: dict[str, tuple[Any, Connection]] = {}

    def start(self) -> "EosClients":
        try:
            for role in ("producer", *_ISOLATIONS):
                parent, child = self._context.Pipe()
                process = self._context.Process(
                    target=_serve, args=(self.bootstrap, child), daemon=True
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
        """Roles as the scenario meters them: producer, consumer-read_committed, ..."""
        return {
            role if role == "producer" else f"consumer-{role}": process.pid
            for role, (process, _) in self._roles.items()
        }

    def _reply(self, role: str, timeout_s: float, expect: str | None = "ready") -> Any:
        process, pipe = self._roles[role]
        deadline = time.monotonic() + timeout_s
        while not pipe.poll(0.05):
            if not process.is_alive():
                raise RuntimeError(f"the {role} process exited ({process.exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {role} process gave no answer in {timeout_s:g} s")
        reply = pipe.recv()
        if isinstance(reply, str) and reply != expect:
            raise RuntimeError(f"the {role} process failed: {reply}")
        return reply

    def run(
        self,
        topic: str,
        interval: int,
        rate: float | None,
        seconds: float,
        properties: Mapping[str, Any],
        tail: bool,
    ) -> Run:
        """One producer run on `topic` (a fresh one of one partition): commit every `interval`
        records (0: idempotent, no transactions), at `rate` records/s or as fast as it can
        (None) for `seconds`. With `tail` both consumers tail it from before the start; without,
        the read_committed one reads it back afterwards."""
        readers = list(_ISOLATIONS) if tail else ["read_committed"]
        producer = self._roles["producer"][1]
        producer.send(("produce", topic, interval, rate, seconds, dict(properties)))
        self._reply("producer", _READY_TIMEOUT_S)  # the warm-up mark is committed
        if tail:
            for role in readers:
                self._roles[role][1].send(("read", topic, role, _RUN_TIMEOUT_S, True))
            for role in readers:
                self._reply(role, _READY_TIMEOUT_S, expect="tailing")
        producer.send(time.monotonic_ns() + 20_000_000)  # a start every process has ahead
        produced: Produced = self._reply("producer", seconds + _RUN_TIMEOUT_S)
        if not tail:
            self._roles["read_committed"][1].send(("read", topic, "read_committed", 120.0, False))
            self._reply("read_committed", _READY_TIMEOUT_S, expect="tailing")
        consumed = {role: self._reply(role, _RUN_TIMEOUT_S) for role in readers}
        return Run(produced, consumed)

    def close(self) -> None:
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

    def __enter__(self) -> "EosClients":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
