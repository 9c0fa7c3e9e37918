"""Several load processes in one measurement: a many-producer (and consumer) throughput load.

One Python load generator is one core: BatchProducer (loadgen.py) offers a few million 100-byte
records a second from one process, and FetchClient reads about as fast. A load above that, or a
producer load beside a consumer load, needs several processes. LoadProcesses starts
`producers` processes, each with its own BatchProducer connection, and `consumers` processes,
each with its own FetchClient, once (multiprocessing's `spawn`: the parent may run client
threads, librdkafka's say, that fork would copy in an unknown state), keeps them and their
connections for many steps, and runs one step at a time on them:

- produce(): every producer process at the same time, on one schedule on CLOCK_MONOTONIC
  (time.perf_counter_ns(), which every process on the machine shares). Open loop (rate_per_s
  records/s in total): the requests (~64 KiB batches of `records_per_batch` records) are due at
  `rate_per_s / records_per_batch` a second, dealt round robin to the processes (process k sends
  requests k, k + N, k + 2N, ...: one even schedule, not N requests due at once), from a start
  shared by all to `seconds` later. A request due in the step may still go out up to `grace_s`
  after its end (the producer ran late; its latency counts from its due time), but nothing is
  sent after that deadline, so a rate the broker cannot keep ends on time, what was not sent
  counted as offered and not acknowledged (and not in the latency histogram: the achieved
  fraction tells of it). Each request's latency runs from its due time to its acknowledgement
  (coordinated omission, see loadgen.py). Closed loop
  (rate None): as fast as each process's window allows, for `seconds` or, with seconds None,
  until stop().
- consume(): every consumer process reads its share of the partitions (round robin), one Fetch
  in flight each: a backlog from the given offsets up to the high watermark its first fetch
  sees, as fast as it can; or, tailing, with long polls from the given offsets for `seconds`.

Each process reports what it did (records offered and acknowledged, or read; bytes; the time
from the shared start to its last request sent and to its last acknowledgement or fetch; a
latency HdrHistogram in ns, acknowledgements or fetch round trips; an error as text) and the
parent merges them into one ProduceResult or ConsumeResult: records offered and achieved, rates,
the achieved fraction of the offered rate, latency percentiles of every request of every
process. The achieved rate of an open-loop step is the records acknowledged over the time the
processes took to send them (the step's length, or longer when they fell behind: the window
was full), so a stall that only delays the last acknowledgements shows in the latency, not as
a lower rate. `acknowledged` counts
acknowledged records live (shared memory, updated as each process's requests are answered: per
chunk of `chunk_bytes` in closed loop, at the end of an open-loop step), for a caller that samples
a long closed-loop run.

Neither LoadProcesses nor its results are thread-safe: each process's orders and reports are
matched by order on its pipe, so one thread at a time drives a LoadProcesses.
"""

import contextlib
import math
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from hdrh.histogram import HdrHistogram
from kafka.errors import for_code
from kafka.protocol.consumer.offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from scenarios.clients.cluster import KafkaConnection
from scenarios.clients.fetch_client import FetchClient, whole_batches
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.pipeline import histogram
from scenarios.harness.saturation import SATURATED_BELOW

_LATEST = -1  # ListOffsets: the log end (high watermark, read uncommitted)
_LIST_OFFSETS_VERSION = 2
_METADATA_VERSION = 4
_START_LEAD_S = 0.05  # every process has its order before the shared start
_READY_TIMEOUT_S = 120.0
_REPORT_GRACE_S = 120.0  # after a step's planned end, for its last responses


@dataclass(frozen=True)
class _ProduceOrder:
    topic: str
    partitions: tuple[int, ...]
    window: int
    start_ns: int
    deadline_ns: int | None  # None: until stop()
    requests_per_s: float | None  # this process's; None: closed loop
    requests: int  # open loop: how many are due in the step
    first_due_ns: int  # open loop: this process's first request
    chunk_bytes: int
    acks: int = 1


@dataclass(frozen=True)
class _ConsumeOrder:
    topic: str
    offsets: tuple[tuple[int, int], ...]  # (partition, offset) to read from
    max_bytes: int
    start_ns: int
    tail_until_ns: int | None  # None: read the backlog to the high watermark
    max_wait_ms: int


@dataclass
class _Report:
    records: int = 0  # acknowledged (producer) or read (consumer)
    offered: int = 0  # records due in the step (open loop) or sent (closed loop)
    batch_bytes: int = 0  # record batch bytes acknowledged or read
    requests: int = 0
    last_ns: int = 0  # the last acknowledgement or fetch response
    last_sent_ns: int = 0  # producers: the last request's send
    latency: bytes = b""  # an encoded HdrHistogram, ns
    error: str | None = None


@dataclass
class ProduceResult:
    """One produce step of every producer process, merged."""

    processes: int
    offered_per_s: float | None  # records/s offered in total; None in closed loop
    records_offered: int  # due within the step (open loop), or sent (closed loop)
    records_acknowledged: int
    bytes: int  # acknowledged record batch bytes
    seconds: float  # the shared start to the last acknowledgement of any process
    latency: HdrHistogram = field(repr=False)  # ns, from due time (open) or send (closed)
    errors: list[str] = field(default_factory=list)
    step_seconds: float | None = None  # open loop: how long the rate was offered
    sending_seconds: float = 0.0  # the shared start to the last request sent by any process

    @property
    def achieved_per_s(self) -> float:
        """Open loop: records acknowledged over the time the producers took to send them (the
        step's length, longer when they fell behind the schedule; requests left unsent count
        as not acknowledged), so one late acknowledgement at the end, a stall the latency
        shows, does not read as a lower rate. Closed loop: over start to last acknowledgement."""
        if self.offered_per_s and self.step_seconds:
            return self.records_acknowledged / max(self.sending_seconds, self.step_seconds)
        return self.records_acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def achieved_fraction(self) -> float:
        """Records/s acknowledged over records/s offered (1 in closed loop)."""
        if not self.offered_per_s:
            return 1.0
        return self.achieved_per_s / self.offered_per_s

    @property
    def saturated(self) -> bool:
        """Whether the step could not keep its offered rate (scenarios/harness/saturation.py)."""
        return self.achieved_fraction < SATURATED_BELOW

    def latency_us(self, percentile: float) -> float:
        return self.latency.get_value_at_percentile(percentile) / 1000


@dataclass
class ConsumeResult:
    """One consume step of every consumer process, merged."""

    processes: int
    records: int
    bytes: int  # record batch bytes read
    requests: int  # Fetch requests
    seconds: float  # the shared start to the last fetch response of any process
    latency: HdrHistogram = field(repr=False)  # ns per Fetch round trip
    errors: list[str] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class LoadProcesses:
    """`producers` BatchProducer processes and `consumers` FetchClient processes against one
    broker (`bootstrap`: the leader of the partitions they are given); see the module's doc.
    Use as a context manager, or start() and close()."""

    def __init__(
        self,
        bootstrap: str,
        producers: int,
        consumers: int = 0,
        *,
        record_size: int = 100,
        records_per_batch: int = 600,
    ) -> None:
        if producers < 0 or consumers < 0 or producers + consumers == 0:
            raise ValueError(f"no load processes: {producers} producers, {consumers} consumers")
        self.bootstrap = bootstrap
        self.records_per_batch = records_per_batch
        self._record_size = record_size
        self._counts = (producers, consumers)
        self._context = multiprocessing.get_context("spawn")
        self._acknowledged: Synchronized = self._context.Value("q", 0)
        self._stop: Event = self._context.Event()
        self._producers: list[tuple[Any, Connection]] = []
        self._consumers: list[tuple[Any, Connection]] = []
        self.batch_bytes = 0  # one request's record batch, known once started

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "LoadProcesses":
        producers, consumers = self._counts
        try:
            for role, count, into in (
                ("producer", producers, self._producers),
                ("consumer", consumers, self._consumers),
            ):
                for _ in range(count):
                    parent, child = self._context.Pipe()
                    process = self._context.Process(
                        target=_serve,
                        args=(role, self.bootstrap, self._record_size, self.records_per_batch),
                        kwargs={"orders": child, "stop": self._stop, "acked": self._acknowledged},
                        daemon=True,
                    )
                    process.start()
                    child.close()
                    into.append((process, parent))
            for process, pipe in self._producers + self._consumers:  # spawned together, awaited
                reply = _receive(pipe, process, _READY_TIMEOUT_S)
                if isinstance(reply, str):
                    raise RuntimeError(f"a load process did not start: {reply}")
                self.batch_bytes = reply or self.batch_bytes
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self._stop.set()
        for _, pipe in self._producers + self._consumers:
            with contextlib.suppress(OSError):  # it is gone already
                pipe.send(None)
            pipe.close()
        for process, _ in self._producers + self._consumers:
            process.join(timeout=30)
            if process.exitcode is None:
                process.kill()
                process.join()
        self._producers.clear()
        self._consumers.clear()

    def __enter__(self) -> "LoadProcesses":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def pids(self) -> dict[str, list[int]]:
        """The processes' ids by role ("producers", "consumers"), for CPU meters."""
        return {
            "producers": [p.pid for p, _ in self._producers],
            "consumers": [p.pid for p, _ in self._consumers],
        }

    @property
    def acknowledged(self) -> int:
        """Records acknowledged by every producer process since start (live)."""
        return int(self._acknowledged.value)

    def stop(self) -> None:
        """End a closed-loop step started with seconds=None (begin_produce)."""
        self._stop.set()

    # -- producing --------------------------------------------------------------------------------
    def produce(
        self,
        topic: str,
        partitions: int | Sequence[int],
        rate_per_s: float | None,
        seconds: float,
        *,
        window: int = 16,
        chunk_bytes: int = 16 << 20,
        processes: int | None = None,
        grace_s: float = 0.1,
        acks: int = 1,
    ) -> ProduceResult:
        """One step: `rate_per_s` records/s offered in total for `seconds` (open loop), or as
        fast as the windows allow for `seconds` (rate None), by the first `processes` producer
        processes (default: all), requests due in the step sent up to grace_s after its end,
        with `acks` (0: a request counts once written, see loadgen.py); returns when every
        process has its last response."""
        self.begin_produce(
            topic, partitions, rate_per_s, seconds, window, chunk_bytes, processes, grace_s, acks
        )
        return self.end_produce()

    def begin_produce(
        self,
        topic: str,
        partitions: int | Sequence[int],
        rate_per_s: float | None,
        seconds: float | None,
        window: int = 16,
        chunk_bytes: int = 16 << 20,
        processes: int | None = None,
        grace_s: float = 0.1,
        acks: int = 1,
    ) -> None:
        """Start a produce step and return at once; end_produce() waits for it. seconds None
        (closed loop only): until stop()."""
        producers = self._producers[: processes or len(self._producers)]
        if not producers or (processes or 0) > len(self._producers):
            raise ValueError(f"{processes} producer processes asked, {len(self._producers)} run")
        if seconds is None and rate_per_s is not None:
            raise ValueError("an open-loop step needs its length (seconds)")
        if rate_per_s is not None and not rate_per_s > 0:
            raise ValueError(f"offered rate must be positive, got {rate_per_s}")
        ids = tuple(range(partitions)) if isinstance(partitions, int) else tuple(partitions)
        self._stop.clear()
        n = len(producers)
        start_ns = time.perf_counter_ns() + round(_START_LEAD_S * 1e9)
        deadline_ns = None  # closed loop: the step's end; open loop: and the grace after it
        if seconds is not None:
            deadline_ns = start_ns + round((seconds + (grace_s if rate_per_s else 0)) * 1e9)
        self._step = (rate_per_s, seconds, start_ns, producers)
        for k, (_, pipe) in enumerate(producers):
            requests, per_s, first_due = 0, None, start_ns
            if rate_per_s is not None and seconds is not None:
                total_per_s = rate_per_s / self.records_per_batch  # requests/s, every process
                # process k sends requests k, k + n, ...: those due before the step's end
                requests = max(math.ceil((seconds * total_per_s - k) / n), 0)
                per_s = total_per_s / n
                first_due = start_ns + round(k * 1e9 / total_per_s)
            pipe.send(
                _ProduceOrder(
                    topic,
                    ids,
                    window,
                    start_ns,
                    deadline_ns,
                    per_s,
                    requests,
                    first_due,
                    chunk_bytes,
                    acks,
                )
            )

    def end_produce(self) -> ProduceResult:
        rate_per_s, seconds, start_ns, producers = self._step
        timeout = None if seconds is None else _REPORT_GRACE_S + 2 * seconds
        reports = [_report(pipe, process, timeout) for process, pipe in producers]
        merged = histogram()
        for report in reports:
            if report.latency:
                merged.add(HdrHistogram.decode(report.latency))
        last_ns = max((r.last_ns for r in reports), default=start_ns)
        last_sent_ns = max((r.last_sent_ns for r in reports), default=start_ns)
        return ProduceResult(
            processes=len(reports),
            offered_per_s=rate_per_s,
            records_offered=sum(r.offered for r in reports),
            records_acknowledged=sum(r.records for r in reports),
            bytes=sum(r.batch_bytes for r in reports),
            seconds=max(last_ns - start_ns, 0) / 1e9,
            latency=merged,
            errors=[r.error for r in reports if r.error],
            step_seconds=seconds,
            sending_seconds=max(last_sent_ns - start_ns, 0) / 1e9,
        )

    # -- consuming --------------------------------------------------------------------------------
    def consume(
        self,
        topic: str,
        offsets: dict[int, int],
        *,
        max_bytes: int = 1 << 20,
        tail_seconds: float | None = None,
        max_wait_ms: int = 500,
    ) -> ConsumeResult:
        """One step: read from `offsets` (partition -> offset), the partitions dealt round
        robin to the consumer processes: the backlog up to the high watermark as fast as each
        can (tail_seconds None), or tailing with long polls (fetch.max.wait.ms = max_wait_ms)
        for tail_seconds."""
        self.begin_consume(topic, offsets, max_bytes, tail_seconds, max_wait_ms)
        return self.end_consume()

    def begin_consume(
        self,
        topic: str,
        offsets: dict[int, int],
        max_bytes: int = 1 << 20,
        tail_seconds: float | None = None,
        max_wait_ms: int = 500,
    ) -> None:
        if not self._consumers:
            raise RuntimeError("no consumer processes")
        start_ns = time.perf_counter_ns() + round(_START_LEAD_S * 1e9)
        until = None if tail_seconds is None else start_ns + round(tail_seconds * 1e9)
        self._consume_step = (tail_seconds, start_ns)
        shares: list[list[tuple[int, int]]] = [[] for _ in self._consumers]
        for i, (partition, offset) in enumerate(sorted(offsets.items())):
            shares[i % len(shares)].append((partition, offset))
        if tail_seconds is not None and max(map(len, shares)) > 1:  # one Fetch, one partition
            raise ValueError("tailing: one partition per consumer process at most")
        for share, (_, pipe) in zip(shares, self._consumers, strict=True):
            pipe.send(_ConsumeOrder(topic, tuple(share), max_bytes, start_ns, until, max_wait_ms))

    def end_consume(self) -> ConsumeResult:
        tail_seconds, start_ns = self._consume_step
        timeout = _REPORT_GRACE_S + (tail_seconds or 0.0) * 2
        reports = [_report(pipe, process, timeout) for process, pipe in self._consumers]
        merged = histogram()
        for report in reports:
            if report.latency:
                merged.add(HdrHistogram.decode(report.latency))
        last_ns = max((r.last_ns for r in reports), default=start_ns)
        return ConsumeResult(
            processes=len(reports),
            records=sum(r.records for r in reports),
            bytes=sum(r.batch_bytes for r in reports),
            requests=sum(r.requests for r in reports),
            seconds=max(last_ns - start_ns, 0) / 1e9,
            latency=merged,
            errors=[r.error for r in reports if r.error],
        )


# -- the broker's side of things ------------------------------------------------------------------
def leaders(bootstrap: str, topic: str) -> tuple[dict[int, int], dict[int, str]]:
    """(partition -> leader's node id, node id -> host:port) of the topic (Metadata)."""
    response, found = _topic_metadata(bootstrap, topic)
    return (
        {p.partition_index: p.leader_id for p in found.partitions},
        {b.node_id: f"{b.host}:{b.port}" for b in response.brokers},
    )


def in_sync_replicas(bootstrap: str, topic: str) -> dict[int, list[int]]:
    """partition -> its ISR (node ids), as the cluster's metadata has it now."""
    _, found = _topic_metadata(bootstrap, topic)
    return {p.partition_index: list(p.isr_nodes) for p in found.partitions}


def _topic_metadata(bootstrap: str, topic: str) -> tuple[Any, Any]:
    cls = MetadataRequest[_METADATA_VERSION]
    with KafkaConnection(bootstrap, timeout_s=30, client_id="kbench-load") as connection:
        response = connection.request(
            cls(topics=[cls.MetadataRequestTopic(name=topic)], allow_auto_topic_creation=False),
            MetadataResponse,
        )
    (found,) = response.topics
    if found.error_code:
        raise RuntimeError(f"metadata of {topic}: {for_code(found.error_code).__name__}")
    return response, found


def log_end_offsets(bootstrap: str, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """Each partition's high watermark (ListOffsets, latest, read uncommitted), asked of
    `bootstrap`, their leader."""
    cls = ListOffsetsRequest[_LIST_OFFSETS_VERSION]
    request = cls(
        replica_id=-1,
        isolation_level=0,
        topics=[
            cls.ListOffsetsTopic(
                name=topic,
                partitions=[
                    cls.ListOffsetsTopic.ListOffsetsPartition(partition_index=p, timestamp=_LATEST)
                    for p in partitions
                ],
            )
        ],
    )
    with KafkaConnection(bootstrap, timeout_s=30, client_id="kbench-load") as connection:
        response = connection.request(request, ListOffsetsResponse)
    offsets = {}
    for p in response.topics[0].partitions:
        if p.error_code:
            raise RuntimeError(
                f"ListOffsets of {topic}-{p.partition_index}: {for_code(p.error_code).__name__}"
            )
        offsets[p.partition_index] = p.offset
    return offsets


# -- inside a load process ------------------------------------------------------------------------
def _receive(pipe: Connection, process: Any, timeout_s: float | None) -> Any:
    """The next message from a load process, waited for up to timeout_s (None: for ever)."""
    if not pipe.poll(timeout_s):
        raise RuntimeError(f"load process {process.pid} sent nothing in {timeout_s:g} s")
    try:
        return pipe.recv()
    except EOFError:
        raise RuntimeError(
            f"load process {process.pid} ended (exit status {process.exitcode})"
        ) from None


def _report(pipe: Connection, process: Any, timeout_s: float | None) -> _Report:
    report = _receive(pipe, process, timeout_s)
    if not isinstance(report, _Report):
        raise RuntimeError(f"load process {process.pid} answered {report!r}")
    return report


def _serve(
    role: str,
    bootstrap: str,
    record_size: int,
    records_per_batch: int,
    *,
    orders: Connection,
    stop: Event,
    acked: Synchronized,
) -> None:
    """A load process: connect, say ready (a producer: with its batch's size), then carry out
    orders until told to end (None)."""
    try:
        if role == "producer":
            client: Any = BatchProducer(
                bootstrap, record_size=record_size, records_per_batch=records_per_batch
            )
            orders.send(len(client.batch))
        else:
            client = FetchClient(bootstrap, client_id="kbench-load")
            orders.send(0)
    except Exception as error:  # the parent raises it
        orders.send(f"{type(error).__name__}: {error}")
        return
    try:
        while (order := orders.recv()) is not None:
            report = _Report()
            try:
                if isinstance(order, _ProduceOrder):
                    _produce(client, order, report, stop, acked, records_per_batch)
                else:
                    _consume(client, order, report)
            except Exception as error:  # reported with what was done before it
                report.error = f"{type(error).__name__}: {error}"
            orders.send(report)
    except (EOFError, KeyboardInterrupt):  # the parent went away, or Ctrl-C reached the group
        pass
    finally:
        client.close()


def _produce(
    producer: BatchProducer,
    order: _ProduceOrder,
    report: _Report,
    stop: Event,
    acked: Synchronized,
    records_per_batch: int,
) -> None:
    latency = histogram()
    batch = len(producer.batch)
    try:
        if order.requests_per_s is not None:  # open loop: one schedule for the step
            report.offered = order.requests * records_per_batch
            if order.requests:
                stats = producer.produce(
                    order.topic,
                    order.partitions,
                    order.requests * batch,
                    window=order.window,
                    rate_per_s=order.requests_per_s,
                    start_ns=order.first_due_ns,
                    deadline_ns=order.deadline_ns,
                    acks=order.acks,
                )
                _count(report, stats.requests, batch, records_per_batch, acked)
                report.last_sent_ns = order.first_due_ns + round(stats.sending_seconds * 1e9)
                latency.add(stats.latency)
            return
        while not stop.is_set():  # closed loop: chunks until the deadline or stop()
            if order.deadline_ns is not None and time.perf_counter_ns() >= order.deadline_ns:
                break
            stats = producer.produce(
                order.topic,
                order.partitions,
                order.chunk_bytes,
                window=order.window,
                acks=order.acks,
                deadline_ns=order.deadline_ns,
            )
            report.offered += stats.requests * records_per_batch
            _count(report, stats.requests, batch, records_per_batch, acked)
            latency.add(stats.latency)
    finally:
        report.last_ns = report.last_ns or time.perf_counter_ns()
        report.latency = latency.encode()


def _count(report: _Report, requests: int, batch: int, per_batch: int, acked: Synchronized) -> None:
    report.last_ns = time.perf_counter_ns()
    report.requests += requests
    report.records += requests * per_batch
    report.batch_bytes += requests * batch
    with acked.get_lock():
        acked.value += requests * per_batch


def _consume(consumer: FetchClient, order: _ConsumeOrder, report: _Report) -> None:
    latency = histogram()
    until = order.tail_until_ns  # None: read the backlog
    try:
        time.sleep(max(order.start_ns - time.perf_counter_ns(), 0) / 1e9)
        for partition, offset in order.offsets:
            end: int | None = None  # backlog: the high watermark of the first response
            while True:
                if until is None and end is not None and offset >= end:
                    break
                if until is not None and time.perf_counter_ns() >= until:
                    break
                before = time.perf_counter_ns()
                high_watermark, view = consumer.fetch(
                    order.topic,
                    partition,
                    offset,
                    order.max_bytes,
                    0 if until is None else order.max_wait_ms,
                )
                report.last_ns = time.perf_counter_ns()
                latency.record_value(max(report.last_ns - before, 1))
                report.requests += 1
                end = high_watermark if end is None else end
                position = 0  # after the last whole batch: a partial one comes again
                for batch in whole_batches(view):
                    report.records += batch.records
                    offset = batch.next_offset
                    position = batch.end
                report.batch_bytes += position
                if until is None and position == 0 and offset < end:
                    where = f"{order.topic}-{partition}"
                    raise RuntimeError(f"no whole batch at offset {offset} of {where}")
    finally:
        report.latency = latency.encode()
