"""node-peak: the highest produce and consume rate one node sustains for 100-byte records.

Two figures are widely quoted for what one Kafka node does: Kreps' 821,557 records/s (78.3 MiB/s)
from one producer of 100-byte records, no replication, acks=1 (and 940,521 records/s from one
consumer), measured in 2014 on three cheap machines (six 7200 rpm SATA disks each, 32 GB RAM,
1 Gb Ethernet) with Kafka's Java client ("Benchmarking Apache Kafka: 2 Million Writes Per
Second (On Three Cheap Machines)"); and "one well-equipped node handles ~20 million messages/s,
~600 MB/s" (a widely read course; Confluent's 2020 benchmark: 605 MB/s peak on three brokers
with NVMe disks). Here: one node (kbench's engine, or the leader of the partitions on a
`--bootstrap` cluster), on this machine, its producers and consumers on the same machine.

"Sustainable" is found by a rate search, as OpenMessaging Benchmark's rate discovery does (its
RateController raises the offered rate while the publish and receive backlogs stay under 1,000
messages, and optionally p99 latency under a target): each step offers a rate, open loop, for
`step_s` seconds, records the rate offered and the rate achieved (records acknowledged over the
time it took to send them: the step's length, longer when the producers fell behind their
schedule, a window of requests unanswered; what a deadline left unsent counts as not
acknowledged), and the p99 of the acknowledgements' latency from each request's intended send
time (so a stall counts in every request it held up). A step is kept when the achieved fraction
is at least SATURATED_BELOW (0.95: below it the producer fell behind its schedule, a backlog
grew) and p99 is within `p99_bound_ms`; otherwise it is saturated (the first test) or over the
latency bound. The search doubles the offered rate from `start_rate` until a step is not kept
(halving from it instead when the first is not), then bisects (geometric mean) between the
highest kept and the lowest broken rate `refine` times, never offering below `min_rate` or above
`max_rate`. The peak sustainable rate is the highest offered rate kept. The warm-up measurement
of each variant runs this full search; every later round runs a short one around the last
round's peak (factor `track_factor`, squared after each kept step up to `factor`, `track_steps`
steps, one bisection; when a slow spell of the machine breaks all of them, on down by `factor`
as the full search does), so that each round's sample is a peak found again, at a fraction of
the cost (the rounds are not independent: each starts where the last ended). A request due in a
step may still be sent up to the p99 bound after the step's end, not later. Every step of every
round (offered, achieved, p99, kept) goes into the sample's values (`step<i>_...`) and
ctx.state["steps"].

Variants:
- batches-<n>p: n producer processes (scenarios/clients/load_processes.py), each a BatchProducer
  (prebuilt ~64 KiB batches of 600 100-byte records, acks=1, a window of 16 requests), open
  loop at rate/n each on one interleaved schedule: what the broker takes in, with the lightest
  clients. One process is one core of Python, so `producers` counts are run; the node-peak
  claim is decided on `several` (2 on a 2-core machine, where the producers and the broker
  share the cores).
- confluent-kafka-1p: one real producer, as Kreps' was (librdkafka here, Java there): 100-byte
  records, acks=1, batch.size 8196 as Kreps set it, linger.ms 5 (librdkafka's default; Java's
  was 0, with 5 requests in flight, which batches under load all the same), no compression, open
  loop (scenarios/clients/producers.py: record i produce()d at its due time, latency from then to
  its delivery report), one partition. The single-producer claim is decided on it. Python calls
  produce() once per record, about 1-2 µs each, which bounds it below librdkafka's own rate.
- fetch-backlog: one consumer process (FetchClient: raw Fetch v11, 1 MiB per request, one in
  flight, batches counted, records not decoded) reading a backlog of `backlog_bytes` written in
  setup, from offset 0 to the high watermark, as fast as it can (closed loop: no search, the
  rate it reaches is the rate it sustains). The backlog was just written, so it is read from
  the page cache.
- loopback, disk-write: the machine's limits, for scale: MB/s of one TCP connection over
  loopback (1 MiB sendall() against recv_into() on a second thread, `loopback_s` seconds), and
  of a sequential buffered write of `disk_bytes` in 1 MiB blocks to the data directory with a
  final fsync. The environment of a run records neither, so they are measured here.

The high watermark of a loadgen variant's topic is read before and after every step
(ListOffsets): it must have grown by exactly the records acknowledged, or the measurement
fails; the consumer must read exactly the backlog's records.

Metrics: records/s (the peak: the highest kept offered rate; fetch-backlog: records read per
second), MB/s (record values, 100 B each, 10^6 bytes; the log stores ~10 % more: record and
batch framing; loopback and disk-write: bytes moved), and at the peak step its achieved rate,
achieved fraction and p50/p99 acknowledgement latency. A round whose search kept no step
reports its lowest step (saturated, or over the latency bound: `peak_found` 0), and such a
sample decides no claim (`undecided`).

Claims decided (thresholds written before the scenario's first run, not moved after):
- node-peak, in two parts, on batches-<several>p: records/s / 20 M >= 1, and MB/s / 600 >= 1.
  Confirmed would mean this node takes the quoted figure in; not reproduced means the whole
  interval of its peak lies below it, on this machine (the contrasts against loopback and
  disk-write give the scale: a 2-core VM's loopback and disk, the producers sharing its cores
  with the broker, against a well-equipped server with its clients elsewhere).
- single-producer, on confluent-kafka-1p: records/s / 821,557 >= 1. Kreps' client was Java on
  its own machine, sending to three brokers (6 partitions) over 1 GbE; here one Python
  process drives librdkafka to one node on the same 2 cores: not reproduced says that this
  setup does not reach it, not that Kafka's claim is false.
Contrasts without a claim: several/one producer processes; batches-1p and fetch-backlog against
Kreps' producer and consumer figures; the node's MB/s over loopback's and over the disk's.

Works against any Kafka-protocol cluster (`--bootstrap`): the loadgen and the consumer go to the
node leading the backlog topic's first partition, with the partitions of each topic it leads
(topics have `partitions` partitions per broker); the real client finds its leader itself.
Topics are created in setup (np-... behind the run's prefix) and deleted in teardown.
"""

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scenarios.clients.cluster import ClusterError, delete_topics
from scenarios.clients.load_processes import LoadProcesses, leaders, log_end_offsets
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.producers import CONFLUENT, DRIVERS, latency_histogram_us
from scenarios.harness.rate_search import peak, search
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW, saturation_reason
from scenarios.harness.scenario import (
    Bound,
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    SweepChart,
    TopicWrite,
    Variant,
)

RECORD_BYTES = 100
_VALUE = bytes(RECORD_BYTES)
_MIB = 1 << 20
LOADGEN, REAL, CONSUME, LOOPBACK, DISK = "batches", "real", "consume", "loopback", "disk"

# the figures the claims quote, and the thresholds on measured/quoted (chosen before any run)
NODE_RECORDS_PER_S = 20e6  # "~20 million messages/s" on one node
NODE_MB_PER_S = 600.0  # "~600 MB/s" (Confluent 2020: 605 MB/s)
KREPS_PRODUCER = 821_557.0  # records/s, one producer, 100-byte records, no replication
KREPS_CONSUMER = 940_521.0  # records/s, one consumer
AT_LEAST_THE_FIGURE = 1.0  # every check: measured / quoted >= 1
# the real client's settings: Kreps' batch.size, librdkafka's linger.ms default, acks=1
_REAL_BATCH_SIZE = 8196
_REAL_LINGER_MS = 5
_REAL_ACKS = "1"


def _several(params: Mapping[str, Any]) -> str:
    return f"{LOADGEN}-{params['several']}p"


def _real(client: str) -> str:
    return f"{client}-1p"


@dataclass(frozen=True)
class Step:
    """One offered rate of a search, and what the node did with it."""

    offered_per_s: float
    achieved_per_s: float
    p50_latency_us: float
    p99_latency_us: float
    records_offered: int
    records_acknowledged: int
    p99_bound_us: float

    @property
    def achieved_fraction(self) -> float:
        return self.achieved_per_s / self.offered_per_s

    @property
    def saturated(self) -> bool:
        return self.achieved_fraction < SATURATED_BELOW

    @property
    def kept(self) -> bool:
        return not self.saturated and self.p99_latency_us <= self.p99_bound_us


class NodePeak(Scenario):
    name = "node-peak"
    title = "One node's peak sustainable rate"
    question = (
        "What is the highest rate of 100-byte records one node takes in (one producer, several "
        "producer processes, one real client) and serves to one consumer, and how does it "
        "compare with Kreps' 821,557 records/s and the 20 M records/s, 600 MB/s node figure?"
    )
    parameters = {
        "producers": "counts of BatchProducer processes run (batches-<n>p variants)",
        "several": "the count the node-peak claim is decided on",
        "clients": "real clients run as one producer (confluent-kafka)",
        "partitions": "partitions of each topic (per broker of a --bootstrap cluster)",
        "step_s": "seconds each offered rate of a search is held",
        "start_rate": "records/s the warm-up's full search starts from, by kind (batches, real)",
        "min_rate": "records/s no search offers below, by kind",
        "max_rate": "records/s no search offers beyond, by kind",
        "factor": "the full search's multiplier between steps",
        "refine": "bisections after the full search's bracket",
        "max_steps": "steps at most in the full search",
        "track_factor": "each round's short search's multiplier, around the last peak",
        "track_steps": "steps at most in each round's short search (one bisection)",
        "p99_bound_ms": "a step whose p99 acknowledgement latency exceeds it is not kept",
        "window": "requests in flight per BatchProducer connection",
        "backlog_bytes": "the backlog fetch-backlog reads",
        "fetch_max_bytes": "max.partition.fetch.bytes of the consumer",
        "loopback_s": "seconds of the loopback measurement",
        "disk_bytes": "bytes of the disk-write measurement",
        "rounds": "interleaved repeats of every variant",
    }
    _common: Mapping[str, Any] = {
        "several": 2,
        "clients": [CONFLUENT],
        "factor": 2.0,
        "track_factor": 1.25,
        "p99_bound_ms": 100,
        "window": 16,
        "fetch_max_bytes": _MIB,
    }
    quick_seconds = 53  # measured: `kbench run`, 2-core VM, 2026-11-29 (8 min 27 s for all)
    profiles = {
        "smoke": {
            **_common,
            "producers": [1, 2],
            "partitions": 1,
            "step_s": 0.1,
            "start_rate": {LOADGEN: 50_000, REAL: 20_000},
            "min_rate": {LOADGEN: 10_000, REAL: 1_000},
            "max_rate": {LOADGEN: 64e6, REAL: 4e6},
            "refine": 1,
            "max_steps": 3,
            "track_steps": 2,
            "backlog_bytes": 4 * _MIB,
            "loopback_s": 0.05,
            "disk_bytes": 4 * _MIB,
            "rounds": 1,
        },
        "quick": {
            **_common,
            "producers": [1, 2],
            "partitions": 1,
            # ~0.4 s a step, ~3 steps a round after the warm-up's full search (~8 steps):
            # six rounds, the fewest whose median has a 95 % interval, within a minute
            "step_s": 0.4,
            "start_rate": {LOADGEN: 250_000, REAL: 50_000},
            "min_rate": {LOADGEN: 10_000, REAL: 1_000},
            "max_rate": {LOADGEN: 64e6, REAL: 4e6},
            "refine": 2,
            "max_steps": 9,
            "track_steps": 3,
            "backlog_bytes": 256 * _MIB,
            "loopback_s": 0.25,
            "disk_bytes": 128 * _MIB,
            "rounds": 6,
        },
        "full": {
            **_common,
            "producers": [1, 2, 3, 4],
            "partitions": 6,  # as Kreps' topic
            "step_s": 2.0,
            "start_rate": {LOADGEN: 250_000, REAL: 50_000},
            "min_rate": {LOADGEN: 10_000, REAL: 1_000},
            "max_rate": {LOADGEN: 64e6, REAL: 4e6},
            "refine": 3,
            "max_steps": 12,
            "track_steps": 4,
            "backlog_bytes": 1024 * _MIB,
            "loopback_s": 1.0,
            "disk_bytes": 1024 * _MIB,
            "rounds": 10,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "the peak sustainable rate: the highest offered rate a step kept (achieved >= 0.95 "
            "of it, p99 within the bound); fetch-backlog: records read per second",
        ),
        Metric(
            "mb_per_s",
            "MB/s",
            "higher",
            "records/s x 100 B of value, 10^6 bytes; loopback and disk-write: bytes moved",
        ),
        Metric(
            "achieved_per_s",
            "records/s",
            "higher",
            "records acknowledged per second in the peak's step, over the time it took to send "
            "them (at least the step's length)",
        ),
        Metric(
            ACHIEVED_FRACTION,
            "ratio",
            "higher",
            f"achieved / offered in the peak's step; below {SATURATED_BELOW} (a round that "
            "kept no step reports its lowest) the sample is saturated and decides no claim",
        ),
        Metric(
            "p50_latency_us",
            "µs",
            "lower",
            "median acknowledgement latency in the peak's step, from each request's (record's) "
            "intended send time",
        ),
        Metric("p99_latency_us", "µs", "lower", "99th percentile latency, as p50"),
    )
    charts = (
        SweepChart(
            "peak sustainable rate vs producer processes",
            "producers",
            ("records_per_s", "p99_latency_us"),
            xlabel="BatchProducer processes",
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = [
            Variant(f"{LOADGEN}-{n}p", {"kind": LOADGEN, "producers": n})
            for n in params["producers"]
        ]
        variants += [Variant(_real(c), {"kind": REAL, "client": c}) for c in params["clients"]]
        variants += [
            Variant("fetch-backlog", {"kind": CONSUME}),
            Variant("loopback", {"kind": LOOPBACK}),
            Variant("disk-write", {"kind": DISK}),
        ]
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        several = _several(params)
        names = {v.name for v in self.variants(params)}
        contrasts = []
        if several in names:
            contrasts += [
                Contrast(
                    "node-records-vs-20M",
                    "records_per_s",
                    several,
                    Bound(NODE_RECORDS_PER_S, "20 M records/s (the node figure)"),
                    f"peak records/s, {params['several']} producer processes / 20 M",
                ),
                Contrast(
                    "node-mb-vs-600MB",
                    "mb_per_s",
                    several,
                    Bound(NODE_MB_PER_S, "600 MB/s (the node figure)"),
                    f"peak MB/s of values, {params['several']} producer processes / 600 MB/s",
                ),
                Contrast(
                    "node-vs-loopback",
                    "mb_per_s",
                    several,
                    "loopback",
                    "peak MB/s of values, several producers / one loopback TCP connection's MB/s",
                ),
                Contrast(
                    "node-vs-disk",
                    "mb_per_s",
                    several,
                    "disk-write",
                    "peak MB/s of values, several producers / sequential write + fsync MB/s",
                ),
            ]
            if f"{LOADGEN}-1p" in names and several != f"{LOADGEN}-1p":
                contrasts.append(
                    Contrast(
                        "several-vs-one",
                        "records_per_s",
                        several,
                        f"{LOADGEN}-1p",
                        f"peak records/s, {params['several']} producer processes / one",
                    )
                )
        if f"{LOADGEN}-1p" in names:
            contrasts.append(
                Contrast(
                    "batches-1p-vs-kreps",
                    "records_per_s",
                    f"{LOADGEN}-1p",
                    Bound(KREPS_PRODUCER, "821,557 records/s (Kreps 2014)"),
                    "peak records/s, one BatchProducer process / Kreps' one producer",
                )
            )
        for client in params["clients"]:
            contrasts.append(
                Contrast(
                    f"{client}-vs-kreps",
                    "records_per_s",
                    _real(client),
                    Bound(KREPS_PRODUCER, "821,557 records/s (Kreps 2014)"),
                    f"peak records/s, one {client} producer / Kreps' one producer",
                )
            )
        contrasts.append(
            Contrast(
                "consumer-vs-kreps",
                "records_per_s",
                "fetch-backlog",
                Bound(KREPS_CONSUMER, "940,521 records/s (Kreps 2014, one consumer)"),
                "records/s read by one FetchClient / Kreps' one consumer",
            )
        )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        names = {c.name for c in self.contrasts(params)}
        checks = []
        if "node-records-vs-20M" in names:
            checks += [
                ClaimCheck(
                    "node-peak",
                    "node-records-vs-20M",
                    AT_LEAST_THE_FIGURE,
                    part="records/s: the peak of several producer processes / 20 M >= 1",
                ),
                ClaimCheck(
                    "node-peak",
                    "node-mb-vs-600MB",
                    AT_LEAST_THE_FIGURE,
                    part="MB/s: the peak of several producer processes / 600 MB/s >= 1",
                ),
            ]
        if CONFLUENT in params["clients"]:
            checks.append(
                ClaimCheck("single-producer", f"{CONFLUENT}-vs-kreps", AT_LEAST_THE_FIGURE)
            )
        return checks

    def undecided(
        self, check: ClaimCheck, samples: Mapping[str, Sequence[Mapping[str, float]]]
    ) -> str | None:
        """A round whose search kept no step found no sustainable rate: it decides nothing
        (its sample is saturated, or its lowest step was over the latency bound)."""
        reason = saturation_reason(samples)
        lost = sum(1 for values in samples.values() for v in values if not v.get("peak_found", 1))
        if reason is None and lost:
            reason = f"{lost} rounds kept no step (p99 over the bound at every offered rate)"
        return reason

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """About what the searches write at most: every step of every measurement at the
        highest rate the announcement assumes (4 M records/s from the loadgen, 1 M from a real
        client; ~110 B a record in the log), and the backlog."""
        steps = params["max_steps"] + params["rounds"] * params["track_steps"]
        per_step = {LOADGEN: 4e6, REAL: 1e6}
        writes = [
            TopicWrite(
                f"np-{LOADGEN}-{n}p",
                params["partitions"],
                round(steps * params["step_s"] * per_step[LOADGEN] * 110),
            )
            for n in params["producers"]
        ]
        writes += [
            TopicWrite(f"np-{client}", 1, round(steps * params["step_s"] * per_step[REAL] * 110))
            for client in params["clients"]
        ]
        writes.append(TopicWrite("np-backlog", params["partitions"], params["backlog_bytes"]))
        return writes

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        if ctx.bootstrap is None:
            raise Skip("no broker to produce to")
        params = ctx.params
        for client in list(params["clients"]):
            reason = DRIVERS[client].unavailable() if client in DRIVERS else "unknown client"
            if reason is not None:
                params["clients"] = [c for c in params["clients"] if c != client]
                ctx.notes.append(f"{_real(client)} left out: {reason}")
        ctx.state.update(estimate={}, steps=[], checked=[], topics=[], measurements=0)
        try:
            self._setup(ctx)
        except BaseException:
            self.teardown(ctx)
            raise

    def _setup(self, ctx: RunContext) -> None:
        params = ctx.params
        assert ctx.bootstrap is not None
        creator = BatchProducer(ctx.bootstrap)
        try:
            brokers = len(_create(ctx, creator, "np-backlog"))
            topics = {f"{LOADGEN}-{n}p": f"np-{LOADGEN}-{n}p" for n in params["producers"]}
            for topic in topics.values():
                _create(ctx, creator, topic, brokers)
            for client in params["clients"]:
                _create(ctx, creator, f"np-{client}", partitions=1)
        finally:
            creator.close()
        # the node: the leader of the backlog's first partition; each topic's partitions it leads
        backlog = ctx.topic("np-backlog")
        by_partition, addresses = leaders(ctx.bootstrap, backlog)
        node = by_partition[0]
        ctx.state["node"] = addresses.get(node, ctx.bootstrap)
        ctx.state["partitions"] = {}
        for name in [backlog, *(ctx.topic(t) for t in topics.values())]:
            led = sorted(
                p for p, leader in leaders(ctx.bootstrap, name)[0].items() if leader == node
            )
            if not led:
                raise Skip(f"node {node} leads no partition of {name}: cannot load one node")
            ctx.state["partitions"][name] = led
        if brokers > 1:
            ctx.notes.append(
                f"a cluster of {brokers} brokers: the loadgen and the consumer load node {node} "
                f"({ctx.state['node']}), the partitions it leads"
            )
        ctx.state["topic"] = {variant: ctx.topic(t) for variant, t in topics.items()}
        # the backlog, closed loop from this process
        writer = BatchProducer(ctx.state["node"])
        try:
            writer.produce(
                backlog, ctx.state["partitions"][backlog], params["backlog_bytes"], window=16
            )
        finally:
            writer.close()
        ctx.state["backlog"] = log_end_offsets(
            ctx.state["node"], backlog, ctx.state["partitions"][backlog]
        )
        load = LoadProcesses(ctx.state["node"], max(params["producers"], default=0), 1)
        ctx.state["load"] = load.start()
        for role, pids in load.pids.items():
            for i, pid in enumerate(pids):
                ctx.processes[f"{role[:-1]}-{i + 1}"] = pid
        for client in params["clients"]:
            driver = DRIVERS[client](
                ctx.bootstrap,
                batch_size=_REAL_BATCH_SIZE,
                linger_ms=_REAL_LINGER_MS,
                codec="none",
                acks=_REAL_ACKS,
            )
            ctx.state.setdefault("drivers", {})[client] = driver
            driver.warm_up(ctx.topic(f"np-{client}"), _VALUE)

    def teardown(self, ctx: RunContext) -> None:
        for driver in ctx.state.pop("drivers", {}).values():
            driver.close()
        load = ctx.state.pop("load", None)
        if load is not None:
            load.close()
        if ctx.bootstrap is not None and ctx.state.get("topics"):
            with contextlib.suppress(ClusterError):  # the run deletes by prefix too
                delete_topics(ctx.bootstrap, ctx.topic("np-"))

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        kind = variant.params["kind"]
        if kind == LOOPBACK:
            return {"mb_per_s": _loopback_mb_per_s(ctx.params["loopback_s"])}
        if kind == DISK:
            return {"mb_per_s": _disk_write_mb_per_s(ctx.work_dir, ctx.params["disk_bytes"])}
        if kind == CONSUME:
            return self._consume(ctx)
        if kind == LOADGEN:
            step = self._loadgen_step(ctx, variant)
        else:
            step = self._real_step(ctx, variant)
        return self._search(ctx, variant, kind, step)

    def _search(
        self,
        ctx: RunContext,
        variant: Variant,
        kind: str,
        step: Callable[[float], Step],
    ) -> dict[str, float]:
        params = ctx.params
        estimate = ctx.state["estimate"].get(variant.name)
        ctx.state["measurements"] += 1
        within = {"floor": params["min_rate"][kind], "ceiling": params["max_rate"][kind]}
        if estimate is None:  # the variant's first measurement (the warm-up): a full search
            steps = search(
                step,
                params["start_rate"][kind],
                factor=params["factor"],
                refine=params["refine"],
                max_steps=params["max_steps"],
                **within,
            )
        else:
            steps = search(
                step,
                estimate,
                factor=params["track_factor"],
                max_factor=params["factor"],
                refine=1,
                max_steps=params["track_steps"],
                **within,
            )
            lowest = min(s.offered_per_s for s in steps)
            # a slow spell broke every step: on down, as the full search goes
            if peak(steps) is None and lowest / params["factor"] >= within["floor"]:
                steps += search(
                    step,
                    lowest / params["factor"],
                    factor=params["factor"],
                    refine=1,
                    max_steps=max(params["max_steps"] - len(steps), 1),
                    **within,
                )
        found = peak(steps)
        for i, s in enumerate(steps):
            ctx.state["steps"].append(
                {
                    "variant": variant.name,
                    "measurement": ctx.state["measurements"],
                    "step": i + 1,
                    **asdict(s),
                    "achieved_fraction": s.achieved_fraction,
                    "saturated": s.saturated,
                    "kept": s.kept,
                }
            )
        # no kept step: the lowest one, saturated or over the bound, stands for the round
        at = found or min(steps, key=lambda s: s.offered_per_s)
        ctx.state["estimate"][variant.name] = (
            found.offered_per_s
            if found
            else max(at.offered_per_s / params["track_factor"], within["floor"])
        )
        rate = found.offered_per_s if found else at.achieved_per_s
        values = {
            "records_per_s": rate,
            "mb_per_s": rate * RECORD_BYTES / 1e6,
            "achieved_per_s": at.achieved_per_s,
            ACHIEVED_FRACTION: at.achieved_fraction,
            "peak_found": float(found is not None),
            "p50_latency_us": at.p50_latency_us,
            "p99_latency_us": at.p99_latency_us,
        }
        for i, s in enumerate(steps, 1):
            values[f"step{i}_offered_per_s"] = s.offered_per_s
            values[f"step{i}_achieved_per_s"] = s.achieved_per_s
            values[f"step{i}_p99_latency_us"] = s.p99_latency_us
            values[f"step{i}_kept"] = float(s.kept)
        return values

    def _loadgen_step(self, ctx: RunContext, variant: Variant) -> Callable[[float], Step]:
        load: LoadProcesses = ctx.state["load"]
        topic = ctx.state["topic"][variant.name]
        partitions = ctx.state["partitions"][topic]
        processes = variant.params["producers"]
        bound_us = ctx.params["p99_bound_ms"] * 1000.0

        def step(rate: float) -> Step:
            before = sum(log_end_offsets(ctx.state["node"], topic, partitions).values())
            result = load.produce(
                topic,
                partitions,
                rate,
                ctx.params["step_s"],
                window=ctx.params["window"],
                processes=processes,
                # a request sent later than the bound after its due time breaks it anyway
                grace_s=ctx.params["p99_bound_ms"] / 1000,
            )
            if result.errors:
                raise RuntimeError(f"{variant.name} at {rate:,.0f} records/s: {result.errors}")
            after = sum(log_end_offsets(ctx.state["node"], topic, partitions).values())
            ctx.state["checked"].append(
                {
                    "variant": variant.name,
                    "topic": topic,
                    "acknowledged": result.records_acknowledged,
                    "stored": after - before,
                }
            )
            if after - before != result.records_acknowledged:
                raise RuntimeError(
                    f"{variant.name}: {result.records_acknowledged} records acknowledged, the "
                    f"high watermark of {topic} moved by {after - before}"
                )
            return Step(
                offered_per_s=rate,
                achieved_per_s=result.achieved_per_s,
                p50_latency_us=result.latency_us(50),
                p99_latency_us=result.latency_us(99),
                records_offered=result.records_offered,
                records_acknowledged=result.records_acknowledged,
                p99_bound_us=bound_us,
            )

        return step

    def _real_step(self, ctx: RunContext, variant: Variant) -> Callable[[float], Step]:
        client = variant.params["client"]
        driver = ctx.state["drivers"][client]
        topic = ctx.topic(f"np-{client}")
        bound_us = ctx.params["p99_bound_ms"] * 1000.0

        def step(rate: float) -> Step:
            count = max(round(rate * ctx.params["step_s"]), 1)
            driver.warm_up(topic, _VALUE)  # the open loop's offsets start after this record
            run = driver.produce(topic, [_VALUE] * count, rate=rate)
            if run.errors or run.left or run.delivered != count:
                raise RuntimeError(
                    f"{variant.name} at {rate:,.0f} records/s: {count} produced, "
                    f"{run.delivered} delivered, {run.left} left, errors {run.errors[:3]}"
                )
            histogram = latency_histogram_us(run.latencies_s)
            # as for the loadgen: over the time the records took to be produce()d (the last
            # one's due time + its lag), at least the step's length; a full client queue
            # holds produce() up, a queue that fills shows in the latency
            lags = driver.lags_s or [0.0]
            sending_s = (count - 1) / rate + lags[-1]
            return Step(
                offered_per_s=rate,
                achieved_per_s=run.delivered / max(sending_s, count / rate),
                p50_latency_us=float(histogram.get_value_at_percentile(50)),
                p99_latency_us=float(histogram.get_value_at_percentile(99)),
                records_offered=count,
                records_acknowledged=run.delivered,
                p99_bound_us=bound_us,
            )

        return step

    def _consume(self, ctx: RunContext) -> dict[str, float]:
        backlog: dict[int, int] = ctx.state["backlog"]
        result = ctx.state["load"].consume(
            ctx.topic("np-backlog"),
            dict.fromkeys(backlog, 0),
            max_bytes=ctx.params["fetch_max_bytes"],
        )
        expected = sum(backlog.values())
        if result.errors or result.records != expected:
            raise RuntimeError(
                f"fetch-backlog read {result.records} of {expected} records: {result.errors}"
            )
        return {
            "records_per_s": result.records_per_s,
            "mb_per_s": result.records_per_s * RECORD_BYTES / 1e6,
        }


# -- topics ---------------------------------------------------------------------------------------
def _create(
    ctx: RunContext,
    creator: BatchProducer,
    name: str,
    brokers: int = 1,
    partitions: int | None = None,
) -> dict[int, str]:
    """Create ctx.topic(name) with `partitions` (default: the profile's per broker); the
    cluster's brokers (node id -> address)."""
    topic = ctx.topic(name)
    count = partitions if partitions is not None else ctx.params["partitions"] * brokers
    creator.create_topic(topic, count)
    ctx.state["topics"].append(topic)
    assert ctx.bootstrap is not None
    return leaders(ctx.bootstrap, topic)[1]


# -- the machine's limits -------------------------------------------------------------------------
def _loopback_mb_per_s(seconds: float) -> float:
    """MB/s of one TCP connection over loopback: 1 MiB sendall()s for `seconds` against a
    receiver's recv_into() on a second thread (both release the GIL in the system calls)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received = [0]

    def receive() -> None:
        connection, _ = listener.accept()
        buffer = bytearray(_MIB)
        with connection:
            while n := connection.recv_into(buffer):
                received[0] += n

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    payload = bytes(_MIB)
    with socket.create_connection(listener.getsockname()) as sender:
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            sender.sendall(payload)
        sender.shutdown(socket.SHUT_WR)
        receiver.join(timeout=60)
        elapsed = time.perf_counter() - started
    listener.close()
    return received[0] / elapsed / 1e6


def _disk_write_mb_per_s(directory: str, total: int) -> float:
    """MB/s of a sequential buffered write of `total` bytes in 1 MiB blocks, with the final
    fsync (what the device took, not only the page cache)."""
    path = os.path.join(directory, "node-peak-disk-write")
    block = os.urandom(_MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(max(total // _MIB, 1)):
            os.write(fd, block)
        os.fsync(fd)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        os.unlink(path)
    return max(total, _MIB) / elapsed / 1e6
