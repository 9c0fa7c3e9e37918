"""durability: "if the page cache is not flushed before a crash, is data lost?": three ways to
survive failures side by side, what each costs and what each loses.

Kafka acknowledges a write once it is in the leader's page cache (flush.messages and flush.ms
default to never) and leaves durability to replication: "durability in Kafka does not require
syncing data to disk, as a failed node will always recover from its replicas" (Kafka
documentation, Operations: Application vs. OS Flush Management). The three settings, each on a
topic of one partition:
- fsync: one broker (RF=1), acks=1, topic flush.messages=1: the engine (engine/storage/log.py
  Log._appended) fsyncs after every append, in the event loop before the Produce response is
  sent: the segment's .log file and, when the append added an index entry (every
  index.interval.bytes, 4 KiB: each ~64 KiB request here), its .index and .timeindex files too
  (LogSegment.flush; an index file is fsynced only when it has something new). So "fsync per
  batch" is up to three fsyncs per request here. A real Kafka broker does the same with the
  topic config flush.messages=1 (its flush covers the segment's log and indexes).
- replication: RF=3, acks=all, min.insync.replicas 2, no flush (Kafka's default answer);
- neither: RF=1, acks=1, no flush.

Cost, on prebuilt batches (scenarios/clients/load_processes.py: one BatchProducer process of
~64 KiB requests of 600 100-byte records, a window of `window` requests, to the leader):
- <setting>: throughput at saturation, closed loop for `saturation_s`, records acknowledged per
  second;
- <setting>-at-<rate>: p50/p99/p99.9 acknowledgement latency at a fixed offered `rate` records/s,
  open loop for `rate_s`, from each request's due time, with the achieved fraction: a sample
  below SATURATED_BELOW (0.95) of its offered rate is saturated and decides nothing about
  latency (scenarios/harness/saturation.py).
Before each, the replication topic's ISR is waited for until it is whole again (a kill below
may have shrunk it). The disk is whatever this machine has: setup times `fsync_probe_writes`
64 KiB appends each followed by fsync, on the brokers' filesystem, and notes the device, the
filesystem and the p50/p99 of those fsyncs beside the results.

Loss, counted by record id read back: broker-kill (kbench's own cluster; smoke and full, not
quick: one kill took 8-100 s on this 2-core machine with other work running (the wait for a new
leader, the killed broker's start, its catch-up), and six of them would not fit quick's 40 s).
Three fresh topics, each led by broker 3 (replicas assigned),
unclean.leader.election.enable false, no flush, each written by a producer of its own
(scenarios/clients/failover.py FailoverClients: confluent-kafka in a process of its own, open
loop at `kill_rate` 100-byte records/s, each value starting with its id;
reconnect.backoff.max.ms 500, so its back-off does not hide when the broker is back):
- crash: RF=1, acks=1 (the neither setting);
- acks1: RF=3, acks=1, min.insync.replicas 1;
- acksall: RF=3, acks=all, min.insync.replicas 2.
`steady_s` of writes; broker 3 SIGKILLed (failover.kill_leader on the acksall topic: once a
record sent after the kill is acknowledged there, new leaders elected from the ISRs, the broker
is started again and waited for back in the ISR); until every producer has a record sent after
the kill acknowledged and every ISR is whole; `steady_s` more, a flush; then a reader process
reads each topic from the earliest offset. The warm-up round writes and reads back without a
kill. Per topic: acked, lost (acknowledged, not read back), kept_fraction (1 - lost/acked),
duplicates, delivery_errors, unavailability_ms (as in the failover scenario).
- crash: for this topic the kill is a process crash, then a restart. A process crash leaves
  the kernel, and so the page cache, running: every write() the broker made before it died
  reaches the disk in time, though fsync was never called. Finding, checked every sample:
  lost = 0.
- acks1 / acksall: for these the kill stands in for losing the leader's machine: what only it
  had is gone for the cluster, as the new leader does not have it and the old one, back,
  truncates to the new leader's log. acks=1 acknowledges before the followers have copied the
  records, so those the followers had not fetched at the kill are acknowledged and lost:
  counted, not asserted (how many depends on how far behind they were at that instant).
  acks=all acknowledges only what every in-sync replica has: lost must be 0 (a finding checked
  every sample; a sample that breaks it is noted).

Which failures each setting survives, and what cannot be staged here:
- a broker process crash (kill -9): all three; the page cache outlives the process, so even
  neither loses nothing it acknowledged (measured: crash_lost);
- the loss of a broker's machine (its disk gone or unreachable; staged as the leader's kill -9,
  its log ignored by the new leader): replication with acks=all only (measured: acksall_lost
  0; acks=1 loses what had not reached a follower, acks1_lost). fsync on one broker does not
  survive it: what it fsynced is on the lost machine;
- a power loss or kernel crash: the page cache is gone, and with it every acknowledged write
  not yet written back. fsync per batch survives it on one broker (what it acknowledged was on
  the device, if the device honours flushes); neither loses what the kernel had not written
  back, up to about vm.dirty_expire_centisecs plus vm.dirty_writeback_centisecs (setup notes
  this machine's; Linux defaults 30 s + 5 s) of acknowledged writes; replication survives it
  only when the replicas are on other machines (as in production), not when, as here, they
  share one. This cannot be staged on one machine without losing the machine that measures,
  so it is not measured: the report states what fsync buys there, not a figure.

Claim decided (durability, claims.md), two parts, both only where broker-kill ran (half a
claim is no verdict on it: quick shows the costs and decides nothing); thresholds written
before the scenario's first run, not moved after:
- page cache: neither/fsync records/s at saturation >= 1.11: acknowledging from the page cache
  is what makes the default fast, i.e. an fsync per batch costs at least 10 % of the throughput
  (the same "a cost a user would notice" rule as acks-cost, and above what one variant drifts
  between neighbouring measurements here). Not reproduced: fsync per batch costs less than
  that on this disk.
- replication: acksall_kept_fraction against 1 (every acknowledged record kept), threshold 1:
  confirmed only if every sample in the interval kept all that acks=all acknowledged through
  the leader's kill -9, without any fsync.
Contrasts without a claim: replication/fsync and neither/replication records/s; fsync/neither
and replication/neither p99 latency at the fixed rate (a saturated sample is marked); acks1's
and crash's kept fraction against 1.

Against a --bootstrap cluster: the cost variants run (flush.messages is a Kafka topic config
too), the replication setting on as many replicas as it has brokers up to three (noted); the
kill is left out with a note (it SIGKILLs the engine's own broker processes).
"""

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scenarios.clients.cluster import ClusterError, delete_topics, probe
from scenarios.clients.failover import (
    RECORD_SIZE,
    FailoverClients,
    Kill,
    Produced,
    in_sync,
    kill_leader,
    partition_state,
    quiet_admin,
)
from scenarios.clients.load_processes import LoadProcesses, ProduceResult, in_sync_replicas
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.environment import find_mount
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import (
    Bound,
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    TopicWrite,
    Variant,
)

FSYNC, REPLICATION, NEITHER = "fsync", "replication", "neither"
# setting: replication factor, the Produce request's acks, topic configs
SETTINGS: dict[str, dict[str, Any]] = {
    FSYNC: {"rf": 1, "acks": 1, "configs": {"flush.messages": "1"}},
    REPLICATION: {"rf": 3, "acks": -1, "configs": {"min.insync.replicas": "2"}},
    NEITHER: {"rf": 1, "acks": 1, "configs": {}},
}
# the loss variant: one kill -9 of the broker leading three topics, each watched by a producer
KILL = "broker-kill"
CRASH, ACKS_1, ACKS_ALL = "crash", "acks1", "acksall"
WATCHED = {CRASH: (1, "1"), ACKS_1: (3, "1"), ACKS_ALL: (3, "all")}  # part: RF, acks
# neither/fsync records/s at or above it confirms the page-cache part (see the module's doc)
PAGE_CACHE_PAYS = round(1 / 0.9, 2)
EVERY_RECORD = 1.0  # acksall_kept_fraction: the replication part's level
_MIB = 1 << 20
_TOPIC_CONFIGS = {"segment.bytes": str(64 * _MIB), "retention.bytes": str(256 * _MIB)}
# the cost topics lead on broker 1, the watched ones on 3, so the kill moves no leadership the
# load processes write to
_COST_LEADER, _KILLED = 1, 3
_TIMEOUT_S = 120.0  # a kill on a loaded 2-core machine took over a minute
_PROBE_BYTES = 64 << 10


def rate_variant(setting: str, rate: float) -> str:
    return f"{setting}-at-{_rate_label(rate)}"


def _rate_label(rate: float) -> str:
    return f"{rate / 1000:g}k" if rate >= 1000 else f"{rate:g}"


class Durability(Scenario):
    name = "durability"
    title = "Durability: fsync vs replication vs neither"
    question = (
        "If the page cache is not flushed before a crash, is data lost? What do fsync per batch "
        "(flush.messages=1), replication with acks=all (RF=3) and neither cost in throughput "
        "and p99 latency, and what does each lose to a broker's kill -9 and a leader's?"
    )
    parameters = {
        "brokers": "broker processes of the cluster kbench starts",
        "settings": "which settings' cost variants run (fsync, replication, neither)",
        "kill": "whether the loss variant (broker-kill) runs",
        "saturation_s": "seconds of each throughput step",
        "rate": "records/s offered in the latency variants",
        "rate_s": "seconds of each latency step",
        "window": "requests in flight of the BatchProducer",
        "kill_rate": "records/s the loss variants' producer offers",
        "steady_s": "loss variants: seconds of writes before the kill and after the recovery",
        "session_timeout_ms": "broker.session.timeout.ms of the cluster kbench starts",
        "heartbeat_ms": "broker.heartbeat.interval.ms of the cluster kbench starts",
        "fsync_probe_writes": "64 KiB append + fsync pairs timed in setup (the disk's cost)",
        "rounds": "interleaved repeats of every variant",
    }
    _common: Mapping[str, Any] = {"brokers": 3, "window": 16, "settings": list(SETTINGS)}
    quick_seconds = 26  # measured: 21-24 s (`python3 -m scenarios.cli run durability` 27-34 s),
    # 2-core VM, 2026-11-29
    profiles = {
        "smoke": {
            **_common,
            "kill": True,
            "saturation_s": 0.15,
            "rate": 20_000,
            "rate_s": 0.15,
            "kill_rate": 500,
            "steady_s": 0.2,
            "session_timeout_ms": 1500,
            "heartbeat_ms": 300,
            "fsync_probe_writes": 10,
            "rounds": 1,
        },
        "quick": {  # the costs only: a kill took 8-100 s here, six of them do not fit
            **_common,
            "kill": False,
            "saturation_s": 0.3,
            "rate": 30_000,
            "rate_s": 0.3,
            "kill_rate": 1000,
            "steady_s": 0.2,
            "session_timeout_ms": 1500,
            "heartbeat_ms": 300,
            "fsync_probe_writes": 50,
            "rounds": 6,
        },
        "full": {
            **_common,
            "kill": True,
            "saturation_s": 2.0,
            "rate": 30_000,
            "rate_s": 2.0,
            "kill_rate": 2000,
            "steady_s": 1.0,
            "session_timeout_ms": 6000,  # a loaded 2-core machine missed 3 s of heartbeats
            "heartbeat_ms": 500,
            "fsync_probe_writes": 200,
            "rounds": 10,
        },
    }
    metrics = (
        Metric(
            "records_per_s",
            "records/s",
            "higher",
            "cost variants: records acknowledged per second (at a fixed rate: achieved)",
        ),
        Metric("mb_per_s", "MB/s", "higher", "records/s x 100 B of value, 10^6 bytes"),
        Metric(
            ACHIEVED_FRACTION,
            "ratio",
            "higher",
            f"achieved / offered records/s (1 at saturation: closed loop); below "
            f"{SATURATED_BELOW} the sample is saturated",
        ),
        Metric("p50_latency_ms", "ms", "lower", "acknowledgement latency from the due time"),
        Metric("p99_latency_ms", "ms", "lower", "99th percentile, as p50"),
        Metric("p999_latency_ms", "ms", "lower", "99.9th percentile, as p50"),
        *(
            metric
            for part, what in (
                (CRASH, "broker-kill, the RF=1 acks=1 topic (a process crash)"),
                (ACKS_1, "broker-kill, the RF=3 acks=1 topic (its leader killed)"),
                (ACKS_ALL, "broker-kill, the RF=3 acks=all topic (its leader killed)"),
            )
            for metric in (
                Metric(f"{part}_acked", "records", "higher", f"{what}: acknowledged"),
                Metric(
                    f"{part}_lost",
                    "records",
                    "lower",
                    f"{what}: acknowledged, and not there when read back",
                ),
                Metric(f"{part}_kept_fraction", "fraction", "higher", f"{what}: 1 - lost/acked"),
                Metric(f"{part}_duplicates", "records", "lower", f"{what}: reads beyond a first"),
                Metric(f"{part}_delivery_errors", "records", "lower", f"{what}: failed deliveries"),
                Metric(
                    f"{part}_unavailability_ms",
                    "ms",
                    "lower",
                    f"{what}: longest pause in acknowledgements around the kill",
                ),
            )
        ),
    )

    # -- declaration ----------------------------------------------------------------------------
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        variants = [
            Variant(s, {"kind": "saturation", "setting": s, **_shape(s)})
            for s in params["settings"]
        ]
        variants += [
            Variant(
                rate_variant(s, params["rate"]),
                {"kind": "rate", "setting": s, "rate": params["rate"], **_shape(s)},
            )
            for s in params["settings"]
        ]
        if params["kill"]:
            variants.append(Variant(KILL, {"kind": "kill"}))
        return variants

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        names = {v.name for v in self.variants(params)}
        contrasts = []

        def add(name: str, metric: str, numerator: str, denominator: str, label: str) -> None:
            if numerator in names and denominator in names:
                contrasts.append(Contrast(name, metric, numerator, denominator, label))

        add(
            "neither-vs-fsync",
            "records_per_s",
            NEITHER,
            FSYNC,
            "neither/fsync per batch records/s at saturation, RF=1 acks=1",
        )
        add(
            "replication-vs-fsync",
            "records_per_s",
            REPLICATION,
            FSYNC,
            "replication (RF=3 acks=all)/fsync per batch (RF=1) records/s at saturation",
        )
        add(
            "neither-vs-replication",
            "records_per_s",
            NEITHER,
            REPLICATION,
            "neither (RF=1 acks=1)/replication (RF=3 acks=all) records/s at saturation",
        )
        rate = params["rate"]
        for setting in (FSYNC, REPLICATION):
            add(
                f"{setting}-vs-neither-p99",
                "p99_latency_ms",
                rate_variant(setting, rate),
                rate_variant(NEITHER, rate),
                f"{setting}/neither p99 acknowledgement latency at {rate:,.0f} records/s",
            )
        if KILL in names:
            for part, label in (
                (ACKS_ALL, "RF=3 acks=all, its leader killed"),
                (ACKS_1, "RF=3 acks=1, its leader killed"),
                (CRASH, "RF=1 acks=1, its broker killed and restarted"),
            ):
                contrasts.append(
                    Contrast(
                        f"{part}-kept",
                        f"{part}_kept_fraction",
                        KILL,
                        Bound(EVERY_RECORD, "every acknowledged record"),
                        f"acknowledged records kept through a kill -9, {label}, no fsync",
                    )
                )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        names = {c.name for c in self.contrasts(params)}
        checks: list[ClaimCheck] = []
        if f"{ACKS_ALL}-kept" not in names:  # half the claim is no verdict on it
            return checks
        if "neither-vs-fsync" in names:
            checks.append(
                ClaimCheck(
                    "durability",
                    "neither-vs-fsync",
                    PAGE_CACHE_PAYS,
                    "acknowledged from the page cache: neither/fsync-per-batch records/s "
                    f">= {PAGE_CACHE_PAYS}",
                )
            )
        if f"{ACKS_ALL}-kept" in names:
            checks.append(
                ClaimCheck(
                    "durability",
                    f"{ACKS_ALL}-kept",
                    EVERY_RECORD,
                    "durable by replication: every record acks=all acknowledged kept through "
                    "a leader's kill -9, no fsync",
                )
            )
        return checks

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """About what the run writes at most: every throughput step at 1 M records/s, every
        rate step at its rate; 110 B a record in the log."""
        measurements = params["rounds"] + 1
        per_step = 1e6 * params["saturation_s"] + params["rate"] * params["rate_s"]
        return [
            TopicWrite(_topic(s), 1, round(per_step * measurements * RECORD_SIZE * 1.1))
            for s in params["settings"]
        ]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        from scenarios.clients.producers import ConfluentKafkaDriver

        if ConfluentKafkaDriver.unavailable() is not None:
            raise Skip(f"confluent-kafka: {ConfluentKafkaDriver.unavailable()}")
        if not ctx.engine and ctx.bootstrap is None:
            raise Skip("no cluster to produce to")
        ctx.state.update(
            topics={},
            load={},
            watchers={},
            count=0,
            measured=set(),
            lost=dict.fromkeys(WATCHED, 0.0),
            acked=dict.fromkeys(WATCHED, 0.0),
        )
        try:
            self._setup(ctx)
        except BaseException:
            self.teardown(ctx)
            raise

    def _setup(self, ctx: RunContext) -> None:
        params, state = ctx.params, ctx.state
        if ctx.engine:
            directory = tempfile.mkdtemp(prefix="durability-", dir=ctx.work_dir)
            settings = {
                "broker.heartbeat.interval.ms": str(params["heartbeat_ms"]),
                "broker.session.timeout.ms": str(params["session_timeout_ms"]),
                "group.initial.rebalance.delay.ms": "0",
                # a client that once asked for a topic deleted since (librdkafka refreshes
                # every topic it knows) must not create it again, on the broker killed next
                "auto.create.topics.enable": "false",
            }
            cluster = LocalCluster(directory, params["brokers"], settings).start()
            state["cluster"] = cluster
            bootstrap = cluster.bootstrap
            ctx.processes["controller"] = cluster.controller.pid
            _broker_pids(ctx, cluster)
            ctx.notes.append(_fsync_probe(directory, params["fsync_probe_writes"]))
            ctx.notes.append(_writeback())
        else:
            assert ctx.bootstrap is not None
            bootstrap = ctx.bootstrap
            if params["kill"]:
                params["kill"] = False
                ctx.notes.append(
                    "the loss variant (broker-kill) left out: it SIGKILLs the engine's own "
                    "broker processes, which a --bootstrap cluster does not let kbench do"
                )
        state["bootstrap"] = bootstrap
        brokers = len(probe(bootstrap.split(",")[0]).brokers)
        state["rf"] = min(SETTINGS[REPLICATION]["rf"], brokers)
        if state["rf"] < SETTINGS[REPLICATION]["rf"]:
            ctx.notes.append(
                f"the replication setting on {brokers} replica(s), not 3: the cluster has "
                f"{brokers} broker(s)"
            )
        if params["kill"] and brokers < 3:
            params["kill"] = False
            ctx.notes.append("the loss variant (broker-kill) left out: it needs 3 brokers")
        admin = state["admin"] = quiet_admin(bootstrap)
        for setting in params["settings"]:
            topic = ctx.topic(_topic(setting))
            rf = state["rf"] if setting == REPLICATION else 1
            configs = {**_TOPIC_CONFIGS, **SETTINGS[setting]["configs"]}
            if setting == REPLICATION:
                configs["min.insync.replicas"] = str(min(2, rf))
            # on kbench's cluster every cost topic leads on broker 1, out of the kills' way
            first = _COST_LEADER if ctx.engine else None
            _create(admin, topic, rf, configs, first, brokers)
            state["topics"][setting] = topic
            _check_configs(admin, topic, configs)
        for setting, topic in state["topics"].items():
            address = admin.leader(topic)
            if address not in state["load"]:
                state["load"][address] = LoadProcesses(address, 1)
            state.setdefault("address", {})[setting] = address
        if params["kill"]:  # a producer process per watched topic (and a reader each)
            state["watchers"] = {part: FailoverClients(bootstrap) for part in WATCHED}
        # every client process spawned at once: each takes a second or two to import
        starting = [*state["load"].values(), *state["watchers"].values()]
        with ThreadPoolExecutor(len(starting)) as pool:
            for started in [pool.submit(clients.start) for clients in starting]:
                started.result()
        for n, load in enumerate(state["load"].values(), 1):
            ctx.processes[f"producer-{n}"] = load.pids["producers"][0]
        for part, clients in state["watchers"].items():
            ctx.processes[f"{part}-producer"] = clients.pids["producer"]
        if state["watchers"]:
            ctx.processes["reader"] = state["watchers"][CRASH].pids["consumer"]  # reads all

    def teardown(self, ctx: RunContext) -> None:
        state = ctx.state
        if state.get("acked", {}).get(ACKS_ALL):
            lost, acked = state.pop("lost"), state.pop("acked")
            ctx.notes.append(
                "finding: acknowledged-then-lost over every kill -9: "
                + "; ".join(
                    f"{label} {lost[part]:.0f} of {acked[part]:.0f}{rule}"
                    for part, label, rule in (
                        (CRASH, "RF=1 acks=1 (process crash, restarted)", " (the rule: 0)"),
                        (ACKS_ALL, "RF=3 acks=all (leader killed)", " (the rule: 0)"),
                        (ACKS_1, "RF=3 acks=1 (leader killed)", " (counted)"),
                    )
                )
            )
            ctx.notes.append(_survives(lost, acked))
        elif ctx.engine and not ctx.params.get("kill", True) and "cluster" in state:
            ctx.notes.append(
                "what each setting loses is not measured in this profile: the broker kill runs "
                "in smoke and full"
            )
        for clients in state.pop("watchers", {}).values():
            clients.close()
        for load in state.pop("load", {}).values():
            load.close()
        admin: TopicAdmin | None = state.pop("admin", None)
        cluster: LocalCluster | None = state.pop("cluster", None)
        if cluster is not None:
            cluster.stop()  # its topics go with it
        elif admin is not None:
            with contextlib.suppress(ClusterError):  # the run deletes by prefix too
                delete_topics(admin.bootstrap, ctx.topic("durability-"))

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        if variant.params["kind"] == "kill":
            return self._loss(ctx, variant)
        return self._cost(ctx, variant)

    def _cost(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params, state = ctx.params, ctx.state
        setting = variant.params["setting"]
        topic, address = state["topics"][setting], state["address"][setting]
        if setting == REPLICATION:  # a kill may have shrunk its ISR: measure it whole
            _wait_whole(address, topic, state["rf"])
        rate = variant.params.get("rate")
        result = state["load"][address].produce(
            topic,
            [0],
            rate,
            params["rate_s"] if rate else params["saturation_s"],
            window=params["window"],
            acks=SETTINGS[setting]["acks"],
        )
        if result.errors:
            raise RuntimeError(f"{variant.name}: produce failed: {result.errors[:3]}")
        return _values(result)

    def _loss(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params, state = ctx.params, ctx.state
        cluster: LocalCluster = state["cluster"]
        admin: TopicAdmin = state["admin"]
        watchers: dict[str, FailoverClients] = state["watchers"]
        warmup = variant.name not in state["measured"]  # the runner's round -1 comes first
        state["measured"].add(variant.name)
        topics = {}
        for part, (rf, acks) in WATCHED.items():
            topics[part] = ctx.topic(f"durability-{part}-{state['count']}")
            configs = {
                "min.insync.replicas": "2" if acks == "all" else "1",
                "unclean.leader.election.enable": "false",
            }
            _create(admin, topics[part], rf, configs, _KILLED, 3)  # all lead on one broker
        state["count"] += 1
        killed_at = None
        try:
            for topic in topics.values():
                in_sync(admin, topic, _TIMEOUT_S)
            for part, clients in watchers.items():
                clients.begin(topics[part], params["kill_rate"], _watcher_properties(part))
            try:
                begun = time.monotonic()
                for clients in watchers.values():
                    clients.wait_acked_after(begun, _TIMEOUT_S)
                time.sleep(params["steady_s"])
                if not warmup:
                    killed_at = _kill_broker(cluster, admin, watchers, topics)
                    _broker_pids(ctx, cluster)  # the restarted broker is a new process
                    time.sleep(params["steady_s"])
            finally:
                produced = {part: clients.end() for part, clients in watchers.items()}
            reader = watchers[CRASH]
            read = {part: reader.read(topic) for part, topic in topics.items()}
        finally:
            with contextlib.suppress(Exception):  # teardown takes the cluster down anyway
                admin.delete_all(list(topics.values()))
        values: dict[str, float] = {}
        for part in WATCHED:
            values.update(_counts(part, produced[part], read[part], params["kill_rate"]))
            if killed_at is not None:
                pause = Kill((), 0, killed_at).unavailable_s(produced[part])
                values[f"{part}_unavailability_ms"] = pause * 1000
        values[ACHIEVED_FRACTION] = min(values.pop(f"{p}_{ACHIEVED_FRACTION}") for p in WATCHED)
        for part in WATCHED:
            if values[f"{part}_lost"] and part != ACKS_1:  # the findings: nothing lost
                ctx.notes.append(
                    f"finding broken: {part} lost {values[f'{part}_lost']:.0f} of "
                    f"{values[f'{part}_acked']:.0f} acknowledged records (the rule: 0)"
                )
            if killed_at is not None:  # the warm-up killed nothing
                state["lost"][part] += values[f"{part}_lost"]
                state["acked"][part] += values[f"{part}_acked"]
        return values


# -- helpers --------------------------------------------------------------------------------------
def _topic(setting: str) -> str:
    return f"durability-{setting}"


def _shape(setting: str) -> dict[str, Any]:
    """What a cost variant's setting is, as the report's tables show its parameters."""
    return {
        "rf": SETTINGS[setting]["rf"],
        "acks": {1: "1", -1: "all"}[SETTINGS[setting]["acks"]],
        "flush_messages": SETTINGS[setting]["configs"].get("flush.messages", "never"),
    }


def _create(
    admin: TopicAdmin,
    topic: str,
    rf: int,
    configs: Mapping[str, str],
    first: int | None,
    brokers: int,
) -> None:
    """One partition; with `first`, its replicas assigned first, first + 1, ... (node ids
    1..brokers), so `first` leads it (the preferred leader)."""
    if first is None:
        admin.create(topic, 1, replication_factor=rf, configs=configs)
        return
    from confluent_kafka.admin import NewTopic

    replicas = [(first - 1 + i) % brokers + 1 for i in range(rf)]
    new = NewTopic(topic, 1, replica_assignment=[replicas], config=dict(configs))
    for future in admin.client.create_topics([new], request_timeout=_TIMEOUT_S).values():
        future.result(timeout=_TIMEOUT_S)
    admin.leader(topic)  # elected


def _check_configs(admin: TopicAdmin, topic: str, expected: Mapping[str, str]) -> None:
    """The topic's configs as the cluster describes them: a cluster that took flush.messages
    and ignored it would make the fsync setting measure nothing."""
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.client.describe_configs([resource])[resource].result(timeout=_TIMEOUT_S)
    wrong = {
        name: described[name].value if name in described else None
        for name, value in expected.items()
        if name not in described or described[name].value != value
    }
    if wrong:
        raise RuntimeError(f"{topic}: the cluster describes {wrong}, not {dict(expected)}")


def _wait_whole(address: str, topic: str, rf: int) -> None:
    deadline = time.monotonic() + _TIMEOUT_S
    while len(in_sync_replicas(address, topic)[0]) < rf:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}: the ISR is short for {_TIMEOUT_S:g} s")
        time.sleep(0.05)


def _kill_broker(
    cluster: LocalCluster,
    admin: TopicAdmin,
    watchers: Mapping[str, FailoverClients],
    topics: Mapping[str, str],
) -> float:
    """SIGKILL the broker leading every watched topic (failover.kill_leader on the acks=all
    topic: once a record sent after the kill is acknowledged, a new leader elected from its ISR,
    the broker is started again and waited for back in that ISR; the controller fenced it and
    moved the acks=1 topic's leadership in the same step); then until the other producers have a
    record sent after the kill acknowledged (the RF=1 topic's only when the broker is back: its
    page cache is the kernel's, untouched) and every ISR is whole. The kill's time."""
    leaders = {partition_state(admin, topic)[0] for topic in topics.values()}
    if len(leaders) != 1:
        raise RuntimeError(f"the watched topics lead on {sorted(leaders)}, not one broker")
    kill = kill_leader(cluster, admin, watchers[ACKS_ALL], topics[ACKS_ALL], _TIMEOUT_S)
    for part in (ACKS_1, CRASH):
        watchers[part].wait_acked_after(kill.killed_at, _TIMEOUT_S)
    for topic in topics.values():
        in_sync(admin, topic, _TIMEOUT_S)
    return kill.killed_at


def _broker_pids(ctx: RunContext, cluster: LocalCluster) -> None:
    for node_id, broker in cluster.brokers.items():
        ctx.processes[f"broker-{node_id}"] = broker.pid


def _watcher_properties(part: str) -> dict[str, Any]:
    """The watched topic's acks; reconnects to the restarted broker retried every 0.1-0.5 s
    (librdkafka's reconnect.backoff.max.ms defaults to 10 s, which would time the client's
    back-off, not the broker's return)."""
    return {"acks": WATCHED[part][1], "reconnect.backoff.max.ms": 500}


def _counts(
    part: str, produced: Produced, read: Mapping[int, int], rate: float
) -> dict[str, float]:
    """One watched topic's ids acknowledged against those read back, as `part`_... metrics."""
    acked = set(produced.acked)
    if not acked:
        raise RuntimeError(f"{part}: nothing acknowledged; errors: {produced.errors[:3]}")
    lost = sum(1 for record in acked if record not in read)
    due = produced.seconds * rate
    return {
        f"{part}_acked": float(len(acked)),
        f"{part}_lost": float(lost),
        f"{part}_kept_fraction": (len(acked) - lost) / len(acked),
        f"{part}_duplicates": float(sum(count - 1 for count in read.values())),
        f"{part}_delivery_errors": float(len(produced.errors)),
        f"{part}_{ACHIEVED_FRACTION}": min(produced.sent / due, 1.0) if due > 0 else 1.0,
    }


def _values(result: ProduceResult) -> dict[str, float]:
    achieved = result.achieved_per_s
    return {
        "records_per_s": achieved,
        "mb_per_s": achieved * RECORD_SIZE / 1e6,
        ACHIEVED_FRACTION: result.achieved_fraction,
        "p50_latency_ms": result.latency_us(50) / 1000,
        "p99_latency_ms": result.latency_us(99) / 1000,
        "p999_latency_ms": result.latency_us(99.9) / 1000,
    }


def _fsync_probe(directory: str, writes: int) -> str:
    """The disk's own fsync cost, measured where the brokers write: `writes` appends of 64 KiB
    to one file, each followed by fsync."""
    path = os.path.join(directory, "fsync-probe")
    block = b"\0" * _PROBE_BYTES
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(writes):
            os.write(fd, block)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    mount = find_mount(directory)
    where = f"{mount.device} ({mount.fstype})" if mount is not None else "an unknown device"
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return (
        f"the disk: fsync after a 64 KiB append on {where}, {writes} times: p50 "
        f"{statistics.median(times):.2f} ms, p99 {p99:.2f} ms"
    )


def _survives(lost: Mapping[str, float], acked: Mapping[str, float]) -> str:
    """Which failures each setting survived here, from the kills' counts, and the one that was
    not staged."""

    def kept(part: str) -> str:
        verdict = "survived" if not lost[part] else "did not survive"
        return f"{verdict}: {lost[part]:.0f} of {acked[part]:.0f} acknowledged records lost"

    return (
        "which failures each setting survives: a broker process crash (kill -9): neither "
        f"{kept(CRASH)} once its broker restarted (the page cache outlives the process); "
        f"replication with acks=all {kept(ACKS_ALL)}; fsync per batch was not killed here (it "
        "writes the same pages as neither, then syncs them). The loss of a leader's machine "
        "(staged as its kill -9, new leaders elected from the ISRs): replication with acks=all "
        f"{kept(ACKS_ALL)}, with acks=1 {kept(ACKS_1)}; a single broker, fsync or not, cannot "
        "survive it (its only copy is on that machine). A power loss or kernel crash: not "
        "staged (it would take the machine that measures): fsync per batch keeps what it "
        "acknowledged, if the device honours flushes; neither, and replication with every "
        "replica on one machine, lose what was not yet written back"
    )


def _writeback() -> str:
    """How long the kernel keeps acknowledged writes only in memory here: what a power loss
    would take from a broker that never fsyncs (not measured: it cannot be staged)."""
    values = {}
    for name in ("dirty_expire_centisecs", "dirty_writeback_centisecs"):
        try:
            with open(f"/proc/sys/vm/{name}", encoding="ascii") as f:
                values[name] = f"{int(f.read()) / 100:g} s"
        except (OSError, ValueError):
            values[name] = "unknown"
    return (
        "not staged: a power loss or kernel crash; dirty pages are written back once older than "
        f"vm.dirty_expire_centisecs ({values['dirty_expire_centisecs']}), checked every "
        f"vm.dirty_writeback_centisecs ({values['dirty_writeback_centisecs']}): about what "
        "neither (and replication, with its replicas on one machine) would lose of what it "
        "acknowledged; fsync per batch would lose nothing it acknowledged, if the device "
        "honours flushes"
    )
