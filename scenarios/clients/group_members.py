"""GroupMembers: the members of one consumer group, each a process of its own running
confluent-kafka's Consumer (librdkafka's classic group protocol: JoinGroup, SyncGroup,
heartbeats), reading a backlog of records whose values start with their ids.

The processes (multiprocessing's `spawn`, as load_processes.py starts its own) are started once
and kept; each consume() is one measurement by the first `members` of them:

1. join: each builds a Consumer of a fresh group (group.id given), subscribes to the topic and
   polls. Its on_assign takes note of what the group gave it and tells the parent (and every
   revocation), but assigns nothing to the client yet, so nothing is fetched before the start.
2. The parent waits until the group is stable: every member holds an assignment (an empty one
   for a member the assignor left without a partition) and together they cover the topic's
   partitions exactly once, unchanged for `_SETTLE_S`.
3. go: at one shared start (time.perf_counter_ns(), CLOCK_MONOTONIC, which every process on the
   machine shares) every member assigns its partitions to the client at the given start offsets
   (0 by default: an offset, not auto.offset.reset, so no lookup delays the first fetch; pausing
   partitions and resuming them instead costs up to a second before librdkafka fetches again)
   and reads until its position in each reaches the end it was given (the backlog's log end
   offsets); a member without partitions is done at once, and stays in the group, polling,
   until step 4. Each reports the records it read, the sum of their ids (RECORD_ID leading
   digits of each value), the partitions it held, its CPU over the read and when it read its
   last record; a rebalance during the read is an error (the group was to be stable).
4. leave: every member closes its Consumer (LeaveGroup).

The group's records/s is the records read over the shared start to the last member's last
record. Offsets are never committed: each measurement's group is new.

Not thread-safe: orders and reports are matched by order on each process's pipe, so one thread
at a time drives a GroupMembers.
"""

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

RECORD_ID = 12  # digits of the id at the start of every value
_READY_TIMEOUT_S = 60.0
_SETTLE_S = 0.05  # a stable assignment must stay so this long before the start
_START_LEAD_S = 0.02
_POLL_S = 0.02
# the group's members heartbeat often, so a rebalance (a member joining late) ends quickly
_MEMBER_PROPERTIES = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,  # Kafka's and the engine's group.min.session.timeout.ms
    "heartbeat.interval.ms": 200,
    # connected to every broker from the join on: no connection set up inside the read
    "enable.sparse.connections": False,
    "log_level": 3,
}


def record_value(record_id: int, size: int) -> bytes:
    """A value of `size` bytes starting with the record's id, as members read it back."""
    return f"{record_id:0{RECORD_ID}d}".encode().ljust(size, b".")


@dataclass(frozen=True)
class _Join:
    bootstrap: str
    topic: str
    group: str
    properties: Mapping[str, Any]
    starts: Mapping[int, int]  # partition -> the offset to read from


@dataclass(frozen=True)
class _Go:
    start_ns: int
    ends: Mapping[int, int]  # partition -> its log end offset: read up to it


@dataclass
class MemberReport:
    """What one member read in one measurement."""

    partitions: tuple[int, ...] = ()
    records: int = 0
    id_sum: int = 0
    last_ns: int = 0  # its last record read (0: none)
    cpu_s: float = 0.0  # the process's CPU (every thread) over its read
    error: str | None = None


@dataclass
class GroupResult:
    """One measurement of the whole group."""

    members: list[MemberReport]
    seconds: float  # the shared start to the last record any member read
    join_seconds: float  # from the join order to the stable assignment
    errors: list[str] = field(default_factory=list)
    # what the caller's meter counted from the start to the last report, reading by reading
    metered: tuple[float, ...] = ()

    @property
    def cpu_s(self) -> float:
        return sum(m.cpu_s for m in self.members)

    @property
    def records(self) -> int:
        return sum(m.records for m in self.members)

    @property
    def id_sum(self) -> int:
        return sum(m.id_sum for m in self.members)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def idle(self) -> list[MemberReport]:
        """The members the assignor gave no partition."""
        return [m for m in self.members if not m.partitions]


class GroupMembers:
    """Up to `members` consumer processes against `bootstrap`; see the module's doc. Use as a
    context manager, or start() and close()."""

    def __init__(self, bootstrap: str, members: int) -> None:
        if members < 1:
            raise ValueError(f"a group needs at least one member, got {members}")
        self.bootstrap = bootstrap
        self._count = members
        self._context = multiprocessing.get_context("spawn")
        self._members: list[tuple[Any, Connection]] = []

    def start(self) -> "GroupMembers":
        try:
            for _ in range(self._count):
                parent, child = self._context.Pipe()
                process = self._context.Process(target=_serve, args=(child,), daemon=True)
                process.start()
                child.close()
                self._members.append((process, parent))
            for process, pipe in self._members:
                reply = _receive(pipe, process, _READY_TIMEOUT_S)
                if reply != ("ready",):
                    raise RuntimeError(f"a group member did not start: {reply}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for _, pipe in self._members:
            with contextlib.suppress(OSError):  # it is gone already
                pipe.send(None)
            pipe.close()
        for process, _ in self._members:
            process.join(timeout=30)
            if process.exitcode is None:
                process.kill()
                process.join()
        self._members.clear()

    def __enter__(self) -> "GroupMembers":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._members]

    def consume(
        self,
        topic: str,
        group: str,
        members: int,
        ends: Mapping[int, int],
        *,
        timeout_s: float = 60.0,
        properties: Mapping[str, Any] | None = None,
        meter: Callable[[], tuple[float, ...]] | None = None,
        starts: Mapping[int, int] | None = None,
    ) -> GroupResult:
        """One measurement: the first `members` processes join `group` (new) on `topic`, wait
        for a stable assignment, then read the backlog up to `ends` (partition -> log end
        offset) from the earliest offset, and leave. `meter` (e.g. the brokers' CPU-seconds)
        is read at the start and once every member has reported: GroupResult.metered."""
        starts = dict(starts or {})
        if not 1 <= members <= len(self._members):
            raise ValueError(f"{members} members asked, {len(self._members)} run")
        group_members = self._members[:members]
        joined_at = time.monotonic()
        for _, pipe in group_members:
            pipe.send(_Join(self.bootstrap, topic, group, dict(properties or {}), starts))
        try:
            self._await_stable(group_members, set(ends), joined_at + timeout_s)
            stable_at = time.monotonic()
            start_ns = time.perf_counter_ns() + round(_START_LEAD_S * 1e9)
            metered = meter() if meter is not None else ()
            for _, pipe in group_members:
                pipe.send(_Go(start_ns, dict(ends)))
            reports = []
            deadline = time.monotonic() + timeout_s
            for process, pipe in group_members:
                reports.append(_report(pipe, process, deadline))
            if meter is not None:
                metered = tuple(b - a for a, b in zip(metered, meter(), strict=True))
        finally:
            for _, pipe in group_members:  # leave, even after a failure: the next group is new
                with contextlib.suppress(OSError):
                    pipe.send("leave")
            for process, pipe in group_members:
                with contextlib.suppress(RuntimeError):
                    _until(pipe, process, ("left",), time.monotonic() + 30)
        last_ns = max((r.last_ns for r in reports), default=0)
        return GroupResult(
            members=reports,
            seconds=max(last_ns - start_ns, 0) / 1e9,
            join_seconds=stable_at - joined_at,
            errors=[r.error for r in reports if r.error],
            metered=metered,
        )

    def _await_stable(
        self, group_members: list[tuple[Any, Connection]], partitions: set[int], deadline: float
    ) -> None:
        """Until every member's latest assignment is known and together they hold each of
        `partitions` once, unchanged for _SETTLE_S."""
        held: dict[int, tuple[int, ...] | None] = {i: None for i in range(len(group_members))}
        pipes = {pipe: i for i, (_, pipe) in enumerate(group_members)}
        stable_since: float | None = None
        while True:
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"the group's assignment was not stable in time: {held}")
            for pipe in wait(list(pipes), timeout=_POLL_S):
                assert isinstance(pipe, Connection)
                message = pipe.recv()
                index = pipes[pipe]
                if message[0] == "assigned":
                    held[index] = message[1]
                elif message[0] == "revoked":
                    held[index] = None
                else:  # an error while joining
                    raise RuntimeError(f"group member {index}: {message}")
                stable_since = None
            assigned = [p for parts in held.values() if parts is not None for p in parts]
            whole = None not in held.values() and sorted(assigned) == sorted(partitions)
            if not whole:
                stable_since = None
            elif stable_since is None:
                stable_since = time.monotonic()
            elif time.monotonic() - stable_since >= _SETTLE_S:
                return


def _receive(pipe: Connection, process: Any, timeout_s: float) -> Any:
    if not pipe.poll(timeout_s):
        raise RuntimeError(f"group member {process.pid} sent nothing in {timeout_s:g} s")
    try:
        return pipe.recv()
    except EOFError:
        raise RuntimeError(
            f"group member {process.pid} ended (exit status {process.exitcode})"
        ) from None


def _until(pipe: Connection, process: Any, wanted: tuple, deadline: float) -> None:
    """Skip messages (late assignment news) until `wanted`."""
    while _receive(pipe, process, max(deadline - time.monotonic(), 0.0)) != wanted:
        pass


def _report(pipe: Connection, process: Any, deadline: float) -> MemberReport:
    while True:
        message = _receive(pipe, process, max(deadline - time.monotonic(), 0.0))
        if isinstance(message, MemberReport):
            return message
        if message[0] == "error":
            return MemberReport(error=message[1])


# -- inside a member process ----------------------------------------------------------------------
def _serve(pipe: Connection) -> None:
    """A member process: say ready, then carry out join orders until told to end (None)."""
    try:
        import confluent_kafka  # noqa: F401 - loaded before "ready", not during a measurement
    except ImportError as error:
        pipe.send(("error", f"{type(error).__name__}: {error}"))
        return
    pipe.send(("ready",))
    try:
        while (order := pipe.recv()) is not None:
            if isinstance(order, _Join):
                try:
                    _member(pipe, order)
                except Exception as error:  # the parent raises it
                    pipe.send(("error", f"{type(error).__name__}: {error}"))
                    _drain_until_leave(pipe)
                pipe.send(("left",))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):  # the parent went away, or Ctrl-C
        pass


def _drain_until_leave(pipe: Connection) -> None:
    while (order := pipe.recv()) != "leave":
        if order is None:
            raise EOFError


def _member(pipe: Connection, order: _Join) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": order.bootstrap,
            "group.id": order.group,
            **_MEMBER_PROPERTIES,
            **order.properties,
        }
    )
    assignment: list[Any] = []
    report = MemberReport()
    reading = [False]

    def on_assign(c: Any, partitions: list[Any]) -> None:
        # the group gave them; nothing is fetched before the shared start (assign() then)
        c.assign([])
        assignment[:] = partitions
        if reading[0]:
            report.error = report.error or "the group rebalanced during the read"
        else:
            pipe.send(("assigned", tuple(sorted(p.partition for p in partitions))))

    def on_revoke(c: Any, partitions: list[Any]) -> None:
        c.unassign()
        assignment.clear()
        if reading[0]:
            report.error = report.error or "the group rebalanced during the read"
        else:
            pipe.send(("revoked",))

    try:
        consumer.subscribe([order.topic], on_assign=on_assign, on_revoke=on_revoke)
        while not pipe.poll():  # until the start (or a leave, after a failed join)
            consumer.poll(_POLL_S)
        go = pipe.recv()
        if not isinstance(go, _Go):
            return
        reading[0] = True
        report.partitions = tuple(sorted(p.partition for p in assignment))
        time.sleep(max(go.start_ns - time.perf_counter_ns(), 0) / 1e9)
        cpu = time.process_time()
        _read(consumer, list(assignment), order.starts, go.ends, report)
        report.cpu_s = time.process_time() - cpu
        pipe.send(report)
        while not pipe.poll():  # a member, polled, until every one has read its share
            consumer.poll(_POLL_S)
        pipe.recv()  # "leave"
    finally:
        consumer.close()


def _read(
    consumer: Any,
    assignment: list[Any],
    starts: Mapping[int, int],
    ends: Mapping[int, int],
    report: MemberReport,
) -> None:
    """Read the assigned partitions up to their ends, counting records and summing ids."""
    if not assignment:
        return
    for p in assignment:  # an offset, not "earliest": no lookup after the start
        p.offset = starts.get(p.partition, 0)
    consumer.assign(assignment)
    left = {p.partition for p in assignment if ends.get(p.partition, 0) > 0}
    due = sum(max(ends.get(p.partition, 0) - p.offset, 0) for p in assignment)
    while left:
        # no more than are left: consume() waits out its timeout for a batch it cannot fill
        wanted = min(max(due - report.records, 1), 10_000)
        messages = consumer.consume(num_messages=wanted, timeout=0.1)
        for message in messages:
            if message.error() is not None:
                report.error = report.error or str(message.error())
                continue
            report.records += 1
            report.id_sum += int(message.value()[:RECORD_ID])
        if messages:
            report.last_ns = time.perf_counter_ns()
            for position in consumer.position([p for p in assignment if p.partition in left]):
                if position.offset >= ends[position.partition]:
                    left.discard(position.partition)
        if report.error is not None:
            return
