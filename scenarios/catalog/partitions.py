"""partitions: what more partitions buy producers and a consumer group, and what very many of
them on one disk do to its writes.

Kafka's documentation and countless articles say a topic's partitions are its unit of
parallelism: producers spread over them, and "consumers in a group share a topic's partitions,
so throughput scales with members up to the partition count"; the rule of thumb "partitions =
consumers x 2" follows. And the other side: very many partitions on one disk turn the appends
that make Kafka fast into scattered writes. Here: a kbench cluster of `brokers` broker processes
and a controller on this machine (scenarios/clients/local_broker.py LocalCluster, started in
setup; 3 brokers unless the parameter says otherwise), or a `--bootstrap` cluster. Every topic
has `replication_factor` replicas (1 by default: what is measured is partitioning, not
replication, which the replication scenario measures).

Variants (every client a process of its own):
- produce-p<P>-m<M>: a topic of P partitions, its leaders spread over the brokers by the
  controller; M BatchProducer processes per leader (scenarios/clients/load_processes.py: one
  BatchProducer speaks to one broker, as a Kafka producer keeps one connection per leader),
  ~64 KiB prebuilt batches of 600 100-byte records round robin over that leader's partitions,
  acks=1, closed loop for `produce_s`: records acknowledged per second, p50/p99 acknowledgement
  latency from each request's send. A throughput at saturation: achieved_fraction 1 by
  definition.
- disk-p<P>: a topic of P partitions all on one broker (the first: "many partitions on one
  disk"; the replica assignment says so), segment.bytes 1 GiB (no roll, whose own fsync would
  land at random in the window), written open loop by one BatchProducer process at `disk_rate`
  records/s for `disk_s` in small batches (`disk_batch_records` records, ~4 KiB: a partition of
  a topic with many gets small appends), so every P gets the same bytes, P-th each. After the
  step, the engine only: every file of the topic's partition directories is fsynced, one at a
  time, as a broker's log flush (log.flush.interval.*) flushes each partition's segment and
  indexes, timed: flush_ms; and the block device under the brokers' data directories is read
  before and after the flush (/proc/diskstats via psutil): write requests per MB the step
  appended (`device_writes_per_mb`), their average size (`device_write_kib`) and average time
  (`device_write_ms`, the device's await). One file appended in order reaches the device as
  few large writes; P files each get their own small extent, and each fsync its own journal
  commit. The device's counters are the whole machine's: whatever else is written back in the
  window (other processes, this run's other topics) counts too, alike for every P on average,
  which is why the claim is a ratio over interleaved rounds. Beside them the produce path's
  p50/p99 acknowledgement latency at the offered rate and the achieved fraction of it (a sample
  below SATURATED_BELOW is saturated, scenarios/harness/saturation.py: its latency is the
  queue's). The bytes each broker dirtied (/proc/<pid>/io) are in every sample's resources.
- group-p<P>-k<K>: a topic of P partitions holding `group_records` 100-byte records whose values
  start with their ids (written in setup, round robin over the partitions); a consumer group of
  K members, each a process of its own running confluent-kafka's Consumer
  (scenarios/clients/group_members.py), joins a fresh group, waits for a stable assignment,
  then reads the backlog from the earliest offset, all at one start: records/s of the whole
  group (records over the start to the last record any member read), the members the assignor
  left without a partition (`idle_members`), what they read (`idle_records`; must be 0), and
  the join's time. Every measurement checks that the group read every record exactly once
  (count and sum of ids equal to what was written; the measurement fails otherwise:
  ctx.state["checked"]) and that no member held a partition another held.

Every sample also records the CPU the brokers and the clients of the step used, in cores
(`broker_cpu_cores`, `client_cpu_cores`: CPU-seconds over the step's seconds, from the
scheduler's run time), and the whole machine's (`machine_cpu_cores`: every process's, others'
too); each run ends with a note giving their medians variant by variant. This machine has 2
cores: where the machine's figure is about 2, the CPU, not Kafka's design, is what limits the
curve (and where ours is well below it, other processes took the rest). The per-role CPU of
broker-1..3, the controller, each producer and member is in every sample's resources too.

Claims decided (thresholds written before the scenario's first run, not moved after):
- partitions, part "parallelism": produce-p<P>-m<M> over produce-p1-m<M> records/s >= 1.25, on
  the `claim_produce` [P, M] pair (quick: 3 partitions, one per broker, against 1). Why 1.25:
  "more throughput" a user would notice, a quarter more, when the partitions' leaders are spread
  over brokers; a gain under that is within what one variant drifts between rounds here.
- partitions, part "scattered writes": disk-p<P> over disk-p1 device write requests per MB
  flushed >= 2, on the largest P of `disk` (the engine only; with --bootstrap not decided): the
  same bytes reach the device as at least twice as many requests, i.e. writes of half the size
  or less: appends no longer sequential. The claim holds when both parts do.
- consumer-group-parallel, part "scales": group-p<P>-k<P> over group-p<P>-k1 records/s >= 1.5,
  on `claim_group` P: P members read at least 1.5x what one does (linear would be P x; on 2
  cores, half the gain of the second member is the least that deserves "scales").
- consumer-group-parallel, part "no further": group-p<P>-k<P> over group-p<P>-k<K> records/s,
  K the largest group over P, >= 0.9: the members beyond the partition count add at most
  about a tenth (1/0.9); they are idle, which the test asserts (deterministic), so what this
  part measures is that the busy members do not get faster either.
- consumers-x2 ("partitions = consumers x 2"): group-p<2K>-k<K> over group-p<K>-k<K>
  records/s >= 1.11, on `claim_rule` K: the doubled partitions give the same group at least
  a tenth more throughput now. Not reproduced says the rule is not a throughput rule
  (inconclusive: this run cannot tell); the rule the measurement then supports instead: "at
  least as many partitions as the most members the group will ever run" (members beyond it
  idle), x2 being headroom to double the group without repartitioning.
Contrasts without a claim: records/s with 2 producer processes per leader over 1, and flush_ms
and p99 latency at P partitions on one disk over 1.

Against a --bootstrap cluster: the topics (prod-..., disk-..., grp-... behind the run's prefix)
are created with the replication factor it allows and deleted in teardown; the disk part's
flush and device counters are left out with a note (they read the engine's data directories),
its produce steps still run; everything else runs as here.
"""

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from scenarios.clients.cluster import ClusterError, delete_topics, probe
from scenarios.clients.group_members import GroupMembers, GroupResult, record_value
from scenarios.clients.load_processes import LoadProcesses, ProduceResult, leaders, log_end_offsets
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.pipeline import histogram
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.resources import block_device, cpu_seconds
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import (
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
PRODUCE, DISK, GROUP = "produce", "disk", "group"
_MIB = 1 << 20
_MB = 1e6
# thresholds, chosen before the first run (see the module's doc)
MORE_THROUGHPUT = 1.25  # partitions: P partitions / 1 partition records/s
SCATTERED = 2.0  # partitions: device write requests per MB, P partitions / 1
SCALES = 1.5  # consumer-group-parallel: P members / 1 member records/s
NO_FURTHER = 0.9  # consumer-group-parallel: P members / more members records/s
RULE_GAIN = round(1 / 0.9, 2)  # consumers-x2: 2K partitions / K partitions records/s, K members
_CLUSTER_SETTINGS = {
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "30000",
    # the members of a measurement's group join within a few ms of each other: one generation
    "group.initial.rebalance.delay.ms": "100",
}
_TOPIC_CONFIGS = {"segment.bytes": str(64 * _MIB), "retention.bytes": str(256 * _MIB)}
_DISK_CONFIGS = {"segment.bytes": str(1 << 30)}
_TIMEOUT_S = 60.0


def produce_variant(partitions: int, producers: int) -> str:
    return f"produce-p{partitions}-m{producers}"


def disk_variant(partitions: int) -> str:
    return f"disk-p{partitions}"


def group_variant(partitions: int, members: int) -> str:
    return f"group-p{partitions}-k{members}"


class Partitions(Scenario):
    name = "partitions"
    title = "Partitions: producers, a consumer group, and one disk"
    question = (
        "Do more partitions give producers and a consumer group more throughput (members up to "
        "the partition count, and no further), do very many partitions on one disk turn appends "
        "into scattered writes, and does 'partitions = consumers x 2' hold?"
    )
    parameters = {
        "brokers": "broker processes of the cluster kbench starts",
        "replication_factor": "replicas of every topic",
        "produce": "[partitions, producer processes per leader] of the produce-... variants",
        "produce_s": "seconds of each produce step (closed loop)",
        "window": "requests in flight per producer process",
        "disk": "partition counts of the disk-... variants (all on one broker)",
        "disk_rate": "records/s offered in each disk step",
        "disk_s": "seconds of each disk step",
        "disk_batch_records": "100-byte records per batch in the disk steps",
        "group": "[partitions, members] of the group-... variants",
        "group_records": "records in each group topic's backlog",
        "claim_produce": "[P, M]: claim partitions compares produce-pP-mM with produce-p1-mM",
        "claim_group": "P: claim consumer-group-parallel on group-pP-k1, -kP and the largest k",
        "claim_rule": "K: claim consumers-x2 compares group-p2K-kK with group-pK-kK",
        "rounds": "interleaved repeats of every variant",
    }
    _common: Mapping[str, Any] = {"brokers": 3, "replication_factor": 1, "window": 8}
    # measured: 38.5 s (`kbench run partitions` 50 s, with its report), 2-core VM busy with
    # other work throughout (the machine's CPU at 2 cores), 2026-11-29
    quick_seconds = 39
    profiles = {
        "smoke": {
            **_common,
            "produce": [[1, 1], [3, 1]],
            "produce_s": 0.2,
            "disk": [1, 16],
            "disk_rate": 20_000,
            "disk_s": 0.2,
            "disk_batch_records": 40,
            "group": [[2, 1], [2, 3]],
            "group_records": 4_000,
            "claim_produce": [3, 1],
            "claim_group": 2,
            "claim_rule": 1,
            "rounds": 1,
        },
        "quick": {
            **_common,
            "produce": [[1, 1], [3, 1]],
            "produce_s": 0.2,
            "disk": [1, 64],
            "disk_rate": 50_000,
            "disk_s": 0.4,
            "disk_batch_records": 40,
            "group": [[1, 1], [2, 1], [2, 2], [2, 3]],
            "group_records": 60_000,
            "claim_produce": [3, 1],
            "claim_group": 2,
            "claim_rule": 1,
            "rounds": 6,
        },
        "full": {
            **_common,
            "produce": [[p, m] for m in (1, 2) for p in (1, 2, 3, 6, 12, 48)],
            "produce_s": 1.0,
            "disk": [1, 16, 256, 1024],
            "disk_rate": 100_000,
            "disk_s": 2.0,
            "disk_batch_records": 40,
            "group": [[4, 1], [4, 2], [4, 3], [4, 4], [4, 6], [2, 2], [8, 4], [1, 1], [2, 1]],
            "group_records": 400_000,
            "claim_produce": [3, 1],
            "claim_group": 4,
            "claim_rule": 2,
            "rounds": 10,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "produce: acknowledged per second (disk: achieved at the offered rate); group: read "
            "per second by the whole group",
        ),
        Metric("mb_per_s", "MB/s", "higher", "records/s x 100 B of value, 10^6 bytes"),
        Metric(
            ACHIEVED_FRACTION,
            "ratio",
            "higher",
            f"disk steps: achieved / offered records/s (below {SATURATED_BELOW} saturated); 1 "
            "in the closed-loop produce and group steps",
        ),
        Metric("p50_latency_ms", "ms", "lower", "produce and disk: acknowledgement latency"),
        Metric("p99_latency_ms", "ms", "lower", "99th percentile, as p50"),
        Metric("flush_ms", "ms", "lower", "disk: fsync of every file of the topic's partitions"),
        Metric(
            "device_writes_per_mb",
            "requests/MB",
            "lower",
            "disk: write requests the device completed in the flush, per MB the step appended",
        ),
        Metric("device_write_kib", "KiB", "higher", "disk: average write request in the flush"),
        Metric("device_write_ms", "ms", "lower", "disk: average time of a write request"),
        Metric("idle_members", "members", "lower", "group: members given no partition"),
        Metric("idle_records", "records", "lower", "group: records those members read (0)"),
        Metric("join_ms", "ms", "lower", "group: from the join to a stable assignment"),
        Metric("broker_cpu_cores", "cores", "lower", "the brokers' CPU-s over the step's s"),
        Metric("client_cpu_cores", "cores", "lower", "the step's clients' CPU-s over its s"),
        Metric(
            "machine_cpu_cores",
            "cores",
            "lower",
            "the whole machine's busy CPU-s over the step's s (every process: others' too)",
        ),
    )
    charts = (
        SweepChart(
            "records/s vs partitions",
            "partitions",
            ("records_per_s",),
            xlabel="partitions",
            panel_by="kind",
        ),
        SweepChart(
            "many partitions on one disk",
            "partitions",
            ("device_writes_per_mb", "flush_ms", "p99_latency_ms"),
            xlabel="partitions on one broker",
        ),
        SweepChart(
            "group records/s vs members",
            "members",
            ("records_per_s", "client_cpu_cores", "broker_cpu_cores"),
            xlabel="members of the group",
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = [
            Variant(
                produce_variant(p, m),
                {"kind": PRODUCE, "partitions": p, "producers": m},
            )
            for p, m in params["produce"]
        ]
        variants += [
            Variant(disk_variant(p), {"kind": DISK, "partitions": p}) for p in params["disk"]
        ]
        variants += [
            Variant(group_variant(p, k), {"kind": GROUP, "partitions": p, "members": k})
            for p, k in params["group"]
        ]
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        names = {v.name for v in self.variants(params)}
        contrasts: list[Contrast] = []

        def add(name: str, metric: str, numerator: str, denominator: str, label: str) -> None:
            if numerator in names and denominator in names and numerator != denominator:
                contrasts.append(Contrast(name, metric, numerator, denominator, label))

        p, m = params["claim_produce"]
        add(
            "partitions-throughput",
            "records_per_s",
            produce_variant(p, m),
            produce_variant(1, m),
            f"{p} partitions/1 partition records/s, {m} producer process(es) per leader",
        )
        for partitions in sorted({p for p, _ in params["produce"]}):
            add(
                f"producers-p{partitions}",
                "records_per_s",
                produce_variant(partitions, 2),
                produce_variant(partitions, 1),
                f"2/1 producer processes per leader records/s, {partitions} partitions",
            )
        if params["disk"] and params.get("flush", True):
            most = max(params["disk"])
            one, many = disk_variant(1), disk_variant(most)
            add(
                "disk-scattered",
                "device_writes_per_mb",
                many,
                one,
                f"{most} partitions/1 partition device write requests per MB, one disk",
            )
            add("disk-flush", "flush_ms", many, one, f"{most}/1 partitions flush ms, one disk")
        if params["disk"]:
            most = max(params["disk"])
            add(
                "disk-p99",
                "p99_latency_ms",
                disk_variant(most),
                disk_variant(1),
                f"{most}/1 partitions p99 acknowledgement latency, one broker",
            )
        group = params["claim_group"]
        members = sorted(k for p, k in params["group"] if p == group)
        add(
            "group-scales",
            "records_per_s",
            group_variant(group, group),
            group_variant(group, 1),
            f"{group}/1 members records/s, {group} partitions",
        )
        if members and members[-1] > group:
            add(
                "group-no-further",
                "records_per_s",
                group_variant(group, group),
                group_variant(group, members[-1]),
                f"{group}/{members[-1]} members records/s, {group} partitions",
            )
        k = params["claim_rule"]
        add(
            "consumers-x2",
            "records_per_s",
            group_variant(2 * k, k),
            group_variant(k, k),
            f"{2 * k}/{k} partitions records/s, a group of {k}",
        )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        declared = {c.name for c in self.contrasts(params)}
        checks = [
            ClaimCheck(
                "partitions",
                "partitions-throughput",
                MORE_THROUGHPUT,
                f"parallelism: P/1 partitions records/s >= {MORE_THROUGHPUT}",
            ),
            ClaimCheck(
                "partitions",
                "disk-scattered",
                SCATTERED,
                f"scattered writes: P/1 partitions device write requests per MB >= {SCATTERED}",
            ),
            ClaimCheck(
                "consumer-group-parallel",
                "group-scales",
                SCALES,
                f"scales: P/1 members records/s >= {SCALES}",
            ),
            ClaimCheck(
                "consumer-group-parallel",
                "group-no-further",
                NO_FURTHER,
                f"no further: P/more than P members records/s >= {NO_FURTHER}",
            ),
            ClaimCheck("consumers-x2", "consumers-x2", RULE_GAIN),
        ]
        return [c for c in checks if c.contrast in declared]

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """At most: every produce step at 2 M records/s a producer process, every disk step at
        its rate, each group topic's backlog once; 110 B a record in the log."""
        measurements = params["rounds"] + 1
        writes = []
        for p, m in params["produce"]:
            records = 2e6 * m * min(p, params["brokers"]) * params["produce_s"] * measurements
            writes.append(TopicWrite(f"prod-p{p}", p, round(records * 110)))
        for p in params["disk"]:
            records = params["disk_rate"] * params["disk_s"] * measurements
            writes.append(TopicWrite(f"disk-p{p}", p, round(records * 110)))
        for p in sorted({p for p, _ in params["group"]}):
            writes.append(TopicWrite(f"grp-p{p}", p, params["group_records"] * 110))
        return writes

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        from scenarios.clients.producers import ConfluentKafkaDriver

        if not ctx.engine and ctx.bootstrap is None:
            raise Skip("no cluster to produce to")
        if ConfluentKafkaDriver.unavailable() is not None:
            raise Skip(f"confluent-kafka: {ConfluentKafkaDriver.unavailable()}")
        ctx.state.update(topics=[], checked=[], load={}, groups=0, cpu={})
        try:
            self._setup(ctx)
        except BaseException:
            self.teardown(ctx)
            raise

    def _setup(self, ctx: RunContext) -> None:
        params, state = ctx.params, ctx.state
        if ctx.engine:
            directory = tempfile.mkdtemp(prefix="partitions-", dir=ctx.work_dir)
            cluster = LocalCluster(directory, params["brokers"], _CLUSTER_SETTINGS).start()
            state["cluster"] = cluster
            bootstrap = cluster.bootstrap
            for node_id, broker in cluster.brokers.items():
                ctx.processes[f"broker-{node_id}"] = broker.pid
            ctx.processes["controller"] = cluster.controller.pid
        else:
            assert ctx.bootstrap is not None
            bootstrap = ctx.bootstrap
            params["flush"] = False
            ctx.notes.append(
                "the disk part's flush and device counters left out: they read the engine's "
                "data directories; its produce steps run"
            )
        state["bootstrap"] = bootstrap
        first = bootstrap.split(",")[0]
        brokers = probe(first).brokers
        if params["replication_factor"] > len(brokers):
            ctx.notes.append(
                f"replication factor {len(brokers)}, not {params['replication_factor']}: the "
                f"cluster has {len(brokers)} brokers"
            )
            params["replication_factor"] = len(brokers)
        state["broker_pids"] = [
            pid for role, pid in ctx.processes.items() if role.startswith("broker-")
        ]
        admin = state["admin"] = TopicAdmin(bootstrap)
        rf = params["replication_factor"]
        state["topic"] = {}
        for p in sorted({p for p, _ in params["produce"]}):
            state["topic"][(PRODUCE, p)] = self._create(ctx, f"prod-p{p}", p, rf, _TOPIC_CONFIGS)
        disk_node = min(brokers)
        for p in params["disk"]:
            name = ctx.topic(f"disk-p{p}")
            _create_on(admin, name, p, disk_node, _DISK_CONFIGS)
            state["topics"].append(name)
            state["topic"][(DISK, p)] = _Topic.of(first, name, p)
        # the client processes, spawned while setup writes the group topics' backlogs
        most = max((m for _, m in params["produce"]), default=0)
        addresses = sorted(
            {a for (kind, _), t in state["topic"].items() if kind == PRODUCE for a in t.by_leader}
        )
        starting: list[LoadProcesses | GroupMembers] = []
        for address in addresses:
            state["load"][address] = LoadProcesses(address, most)
            starting.append(state["load"][address])
        if params["disk"]:
            (address,) = state["topic"][(DISK, params["disk"][0])].by_leader
            load = LoadProcesses(address, 1, records_per_batch=params["disk_batch_records"])
            starting.append(load)
            state["disk_load"] = load
            if ctx.engine:
                cluster = state["cluster"]
                state["data_dir"] = next(
                    b.data_dir for b in cluster.brokers.values() if b.bootstrap == address
                )
                state["device"] = block_device(state["data_dir"])
                if state["device"] is None:
                    params["flush"] = False
                    ctx.notes.append(
                        "the disk part's device counters left out: the data directory's "
                        "filesystem has no block device (tmpfs?)"
                    )
        members = max((k for _, k in params["group"]), default=0)
        if members:
            state["members"] = GroupMembers(bootstrap, members)
            starting.append(state["members"])
        with _spawn_without_main(), ThreadPoolExecutor(len(starting) or 1) as pool:
            started = [pool.submit(client.start) for client in starting]
            state["backlog"] = {}
            for p in sorted({p for p, _ in params["group"]}):
                topic = self._create(ctx, f"grp-p{p}", p, rf, _TOPIC_CONFIGS)
                state["topic"][(GROUP, p)] = topic
                state["backlog"][p] = _fill(bootstrap, topic, params["group_records"])
            for future in started:
                future.result()  # its error, if it did not start (teardown closes them all)
        producers = [pid for load in state["load"].values() for pid in load.pids["producers"]]
        for i, pid in enumerate(producers, 1):
            ctx.processes[f"producer-{i}"] = pid
        if "disk_load" in state:
            ctx.processes["disk-producer"] = state["disk_load"].pids["producers"][0]
        if "members" in state:
            for i, pid in enumerate(state["members"].pids, 1):
                ctx.processes[f"member-{i}"] = pid

    def _create(
        self, ctx: RunContext, name: str, partitions: int, rf: int, configs: Mapping[str, str]
    ) -> "_Topic":
        topic = ctx.topic(name)
        ctx.state["admin"].create(topic, partitions, replication_factor=rf, configs=configs)
        ctx.state["topics"].append(topic)
        return _Topic.of(ctx.state["bootstrap"].split(",")[0], topic, partitions)

    def teardown(self, ctx: RunContext) -> None:
        state = ctx.state
        if state.get("cpu"):
            ctx.notes.append(_limits(state.pop("cpu"), bool(state.get("broker_pids"))))
        state.pop("admin", None)  # librdkafka's client, gone before its cluster
        members = state.pop("members", None)
        if members is not None:
            members.close()
        for load in state.pop("load", {}).values():
            load.close()
        disk_load = state.pop("disk_load", None)
        if disk_load is not None:
            disk_load.close()
        cluster: LocalCluster | None = state.pop("cluster", None)
        if cluster is not None:
            cluster.stop()  # its topics go with it
        elif ctx.bootstrap is not None and state.get("topics"):
            with contextlib.suppress(ClusterError):  # the run deletes by prefix too
                for prefix in ("prod-", "disk-", "grp-"):
                    delete_topics(ctx.bootstrap, ctx.topic(prefix))

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        kind = variant.params["kind"]
        part = {PRODUCE: self._produce, DISK: self._disk, GROUP: self._group}[kind]
        values, clients, seconds, (brokers, machine) = part(ctx, variant)
        seconds = max(seconds, 1e-9)
        if ctx.state["broker_pids"]:
            values["broker_cpu_cores"] = brokers / seconds
        values["client_cpu_cores"] = clients / seconds
        values["machine_cpu_cores"] = machine / seconds
        ctx.state["cpu"].setdefault(variant.name, []).append(
            (values.get("broker_cpu_cores", 0.0), values["client_cpu_cores"], machine / seconds)
        )
        return values

    def _produce(self, ctx: RunContext, variant: Variant) -> "_Part":
        params = ctx.params
        topic: _Topic = ctx.state["topic"][(PRODUCE, variant.params["partitions"])]
        m = variant.params["producers"]
        loads = [(ctx.state["load"][a], parts) for a, parts in topic.by_leader.items()]
        pids = [pid for load, _ in loads for pid in load.pids["producers"][:m]]
        clients_before, reading = _cpu(pids), _reading(ctx.state["broker_pids"])
        started = time.monotonic()
        for load, parts in loads:
            load.begin_produce(
                topic.name, parts, None, params["produce_s"], params["window"], processes=m
            )
        results = [load.end_produce() for load, _ in loads]
        seconds = time.monotonic() - started
        used = _since(reading, ctx.state["broker_pids"])
        clients = _cpu(pids) - clients_before
        errors = [e for r in results for e in r.errors]
        if errors:
            raise RuntimeError(f"{variant.name}: produce failed: {errors[:3]}")
        acknowledged = sum(r.records_acknowledged for r in results)
        rate = acknowledged / max(r.seconds for r in results)
        latency = _merged(results)
        return (
            {
                "records_per_s": rate,
                "mb_per_s": rate * RECORD_BYTES / _MB,
                ACHIEVED_FRACTION: 1.0,
                "p50_latency_ms": latency.get_value_at_percentile(50) / 1e6,
                "p99_latency_ms": latency.get_value_at_percentile(99) / 1e6,
            },
            clients,
            seconds,
            used,
        )

    def _disk(self, ctx: RunContext, variant: Variant) -> "_Part":
        params, state = ctx.params, ctx.state
        topic: _Topic = state["topic"][(DISK, variant.params["partitions"])]
        load: LoadProcesses = state["disk_load"]
        ((_, parts),) = topic.by_leader.items()
        flush = params.get("flush", True) and ctx.engine
        pids = load.pids["producers"]
        clients_before, reading = _cpu(pids), _reading(state["broker_pids"])
        started = time.monotonic()
        result = load.produce(
            topic.name, parts, params["disk_rate"], params["disk_s"], window=params["window"]
        )
        seconds = time.monotonic() - started
        used = _since(reading, state["broker_pids"])
        clients = _cpu(pids) - clients_before
        if result.errors:
            raise RuntimeError(f"{variant.name}: produce failed: {result.errors[:3]}")
        achieved = result.achieved_per_s
        values = {
            "records_per_s": achieved,
            "mb_per_s": achieved * RECORD_BYTES / _MB,
            ACHIEVED_FRACTION: result.achieved_fraction,
            "p50_latency_ms": result.latency_us(50) / 1000,
            "p99_latency_ms": result.latency_us(99) / 1000,
        }
        if flush:
            values.update(_flush(state["data_dir"], topic, state["device"], result.bytes))
        return values, clients, seconds, used

    def _group(self, ctx: RunContext, variant: Variant) -> "_Part":
        state = ctx.state
        p, k = variant.params["partitions"], variant.params["members"]
        topic: _Topic = state["topic"][(GROUP, p)]
        members: GroupMembers = state["members"]
        backlog: _Backlog = state["backlog"][p]
        state["groups"] += 1
        group = f"{ctx.topic_prefix}{variant.name}-{state['groups']}"
        brokers = state["broker_pids"]
        result = members.consume(
            topic.name,
            group,
            k,
            backlog.ends,
            timeout_s=_TIMEOUT_S,
            meter=lambda: (*_reading(brokers), time.monotonic()),
        )
        self._check(ctx, variant.name, result, backlog, p)
        rate = result.records_per_s
        values = {
            "records_per_s": rate,
            "mb_per_s": rate * RECORD_BYTES / _MB,
            ACHIEVED_FRACTION: 1.0,
            "idle_members": float(len(result.idle)),
            "idle_records": float(sum(m.records for m in result.idle)),
            "join_ms": result.join_seconds * 1000,
        }
        # the read alone: the join is before it, the leave after
        # the brokers and the machine over the metered window: from the start to the last report
        brokers_s, machine_s, window_s = result.metered
        scale = result.seconds / window_s if window_s > 0 else 1.0
        return values, result.cpu_s, result.seconds, (brokers_s * scale, machine_s * scale)

    def _check(
        self, ctx: RunContext, name: str, result: GroupResult, backlog: "_Backlog", p: int
    ) -> None:
        held = [part for m in result.members for part in m.partitions]
        entry = {
            "variant": name,
            "partitions": p,
            "members": [list(m.partitions) for m in result.members],
            "records": [m.records for m in result.members],
            "read": result.records,
            "id_sum": result.id_sum,
            "written": backlog.records,
            "written_id_sum": backlog.id_sum,
        }
        ctx.state["checked"].append(entry)
        if result.errors:
            raise RuntimeError(f"{name}: {result.errors[:3]}")
        if sorted(held) != list(range(p)):
            raise RuntimeError(f"{name}: the members held partitions {held} of {p}")
        if result.records != backlog.records or result.id_sum != backlog.id_sum:
            raise RuntimeError(
                f"{name}: the group read {result.records} records (id sum {result.id_sum}) of "
                f"{backlog.records} written (id sum {backlog.id_sum})"
            )


# what one part of a measurement returns: its values, the clients' CPU-seconds, the step's
# seconds, (the brokers' CPU-seconds, the machine's busy CPU-seconds) over the step
_Part = tuple[dict[str, float], float, float, tuple[float, float]]


@dataclass(frozen=True)
class _Topic:
    """A topic of the scenario: its partitions by their leader's address."""

    name: str
    partitions: int
    by_leader: Mapping[str, list[int]]

    @classmethod
    def of(cls, bootstrap: str, topic: str, partitions: int) -> "_Topic":
        deadline = time.monotonic() + _TIMEOUT_S
        while True:  # until every partition has a leader
            by_partition, addresses = leaders(bootstrap, topic)
            if len(by_partition) == partitions and all(
                n in addresses for n in by_partition.values()
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: partitions without a leader: {by_partition}")
            time.sleep(0.05)
        by_leader: dict[str, list[int]] = {}
        for partition, node in sorted(by_partition.items()):
            by_leader.setdefault(addresses[node], []).append(partition)
        return cls(topic, partitions, by_leader)


@dataclass(frozen=True)
class _Backlog:
    """What setup wrote to a group topic."""

    records: int
    id_sum: int
    ends: Mapping[int, int]  # partition -> log end offset


@contextlib.contextmanager
def _spawn_without_main() -> Iterator[None]:
    """Processes spawned inside do not import the parent's __main__ first, as multiprocessing's
    spawn otherwise does: under `kbench run` that is the whole CLI (every scenario, the report's
    charts), seconds of CPU per process on a busy 2-core machine, while the load and member
    processes need only their own modules. multiprocessing reads __main__'s __spec__ and
    __file__ when it starts a process; without them it names no main module to import."""
    main = sys.modules["__main__"].__dict__
    saved: dict[str, Any] = {k: main[k] for k in ("__spec__", "__file__") if k in main}
    main["__spec__"] = None
    main.pop("__file__", None)
    try:
        yield
    finally:
        main.pop("__spec__", None)
        main.update(saved)


def _create_on(
    admin: TopicAdmin, topic: str, partitions: int, node: int, configs: Mapping[str, str]
) -> None:
    """A topic whose every partition has one replica, on broker `node`."""
    from confluent_kafka.admin import NewTopic

    new = NewTopic(
        topic,
        num_partitions=partitions,  # librdkafka wants both
        replica_assignment=[[node]] * partitions,
        config=dict(configs),
    )
    for future in admin.client.create_topics([new], request_timeout=_TIMEOUT_S).values():
        future.result(timeout=_TIMEOUT_S)


def _fill(bootstrap: str, topic: "_Topic", records: int) -> _Backlog:
    """Write `records` records with their ids, round robin over the partitions, acks=all."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 3}
    )
    errors: list[str] = []

    def delivered(err: Any, _: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for i in range(records):
        while True:
            try:
                producer.produce(
                    topic.name,
                    record_value(i, RECORD_BYTES),
                    partition=i % topic.partitions,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
    left = producer.flush(_TIMEOUT_S)
    if errors or left:
        raise RuntimeError(f"{topic.name}: {left} records undelivered, errors {errors[:3]}")
    ends: dict[int, int] = {}
    for address, parts in topic.by_leader.items():
        ends.update(log_end_offsets(address, topic.name, parts))
    if sum(ends.values()) != records:
        raise RuntimeError(f"{topic.name}: {records} written, the logs hold {ends}")
    return _Backlog(records, records * (records - 1) // 2, ends)


def _flush(data_dir: str, topic: "_Topic", device: str, appended: int) -> dict[str, float]:
    """fsync every file of the topic's partition directories, one at a time, as a broker's
    log flush does; the device's write requests over that window."""
    paths = []
    for p in range(topic.partitions):
        directory = os.path.join(data_dir, f"{topic.name}-{p}")
        paths += [os.path.join(directory, f) for f in sorted(os.listdir(directory))]
    before = psutil.disk_io_counters(perdisk=True)[device]
    started = time.perf_counter()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    flush_s = time.perf_counter() - started
    after = psutil.disk_io_counters(perdisk=True)[device]
    writes = after.write_count - before.write_count
    written = after.write_bytes - before.write_bytes
    return {
        "flush_ms": flush_s * 1000,
        "device_writes_per_mb": writes / (appended / _MB) if appended else 0.0,
        "device_write_kib": written / writes / 1024 if writes else 0.0,
        "device_write_ms": (after.write_time - before.write_time) / writes if writes else 0.0,
    }


def _limits(cpu: Mapping[str, list[tuple[float, float, float]]], brokers: bool) -> str:
    """One line saying, variant by variant, what CPU its steps used (medians of every sample):
    the brokers' (when they are kbench's own processes), the clients', and the whole
    machine's, against the cores there are."""
    cores = os.cpu_count() or 1
    parts = []
    for name, readings in cpu.items():
        broker, client, machine = (statistics.median(r[i] for r in readings) for i in range(3))
        ours = f"{broker:.2f} + {client:.2f}" if brokers else f"{client:.2f}"
        parts.append(f"{name} {ours} of {machine:.2f}")
    whose = (
        "brokers + the step's clients"
        if brokers
        else "the step's clients (the brokers are not ours to meter)"
    )
    return (
        f"CPU in cores (medians; {whose} of the whole machine's busy, {cores} cores): "
        f"{'; '.join(parts)}. A step whose machine figure is near {cores} was CPU-bound: a "
        "curve flat there shows this machine, not Kafka; where ours is well below the "
        "machine's, other processes took the rest"
    )


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)


def _busy() -> float:
    """CPU-seconds the whole machine has been busy (every core, every process): user (guests'
    time is in it already), nice, system and interrupts; not idle, I/O wait, nor the time the
    hypervisor gave another guest (steal)."""
    times = psutil.cpu_times()._asdict()
    busy = ("user", "nice", "system", "irq", "softirq")
    return sum(times.get(k, 0.0) for k in busy)


def _reading(brokers: list[int]) -> tuple[float, float]:
    """(the brokers' CPU-seconds, the machine's busy CPU-seconds) now."""
    return _cpu(brokers), _busy()


def _since(before: tuple[float, float], brokers: list[int]) -> tuple[float, float]:
    now = _reading(brokers)
    return now[0] - before[0], now[1] - before[1]


def _merged(results: list[ProduceResult]) -> HdrHistogram:
    merged = histogram()
    for result in results:
        merged.add(result.latency)
    return merged
