"""failover: what a partition leader's death costs an acks=all producer: how long the partition
takes no writes, records acknowledged and then lost, and records written twice.

Kafka's answer to "the page cache is not durable" is replication: a record acknowledged with
acks=all is on every in-sync replica, and when the leader dies the controller elects another
member of the ISR, so nothing acknowledged is lost, at the price of a pause. Here: a kbench
cluster of `brokers` broker processes and a controller on this machine
(scenarios/clients/local_broker.py LocalCluster, started in setup; broker.heartbeat.interval.ms
`heartbeat_ms`, broker.session.timeout.ms `session_timeout_ms`).

Each measurement writes a fresh topic of one partition and three replicas (failover-<n> behind
the run's prefix): confluent-kafka's producer in a process of its own (acks=all, linger.ms 0,
message.timeout.ms 120 s) offers `rate` 100-byte records/s, open loop, each value starting with
its id; after `steady_s` the variant's kill (scenarios/clients/failover.py), `steady_s` more
writes, a flush; then a consumer in a process of its own reads the partition from the earliest
offset and the ids are compared:
- acked: records acknowledged without error;
- lost: acknowledged, and not there when read back (acknowledged-then-lost);
- duplicates: reads of an id beyond its first (a retry the broker appended twice);
- unavailability_ms: the longest pause between acknowledgements from the last one at or before
  the leader's kill to the first acknowledgement of a record sent after it (only a new leader
  can acknowledge that one). What bounds it: the controller notices a SIGKILLed broker only when
  its heartbeats have stopped for broker.session.timeout.ms (3,000 here in full, 1,500 in
  quick; Kafka's default 9,000), fences it and elects a new leader from the ISR; the brokers
  learn it from the metadata log, and the producer once its requests to the dead broker fail
  and it refreshes its metadata. The replication benchmark measured 4.4 s median with 3,000 ms.
- delivery_errors, and achieved_fraction (records the producer sent over those due: below
  scenarios.harness.saturation.SATURATED_BELOW the producer itself fell behind, and the sample
  is saturated).

Variants (kill pattern x enable.idempotence x unclean.leader.election.enable, the topic's):
- leader-idempotent, leader-non-idempotent: min.insync.replicas 2; the leader SIGKILLed, restarted
  once a new leader acknowledges, and waited for back in the ISR. Without idempotence a batch
  the dead leader had replicated but not yet acknowledged is sent again to the new leader, which
  has it already: a duplicate. With it, the new leader's producer state (rebuilt from the
  replicated batches) recognises the sequence numbers.
- isr-of-one-clean, isr-of-one-unclean: min.insync.replicas 1, so acks=all is acknowledged by
  whatever the ISR holds; both followers SIGKILLed, and once they are fenced the ISR is the
  leader alone, which acknowledges alone for `alone_s`; then the leader is SIGKILLed and the
  followers, which lack those records, restarted. Unclean election off: the partition has no
  leader until the dead leader returns, `hold_s` after its kill, and nothing is lost. On: the
  first follower back is elected (its ISR itself, RECOVERING, KIP-704), and the dead leader
  returns only once the partition takes writes again, so every record only it had is lost:
  acknowledged-then-lost is expected here, counted, not a failure. Both without idempotence:
  the new unclean leader knows nothing of sequence numbers it never got.
The warm-up of each variant (round -1, not counted) writes and reads back without a kill.

Finding, checked every sample (not a claim of claims.md): with unclean election off, lost = 0.
A sample that breaks it is noted in the results (`notes`). Contrasts: unavailability without
over with idempotence, and clean over unclean (the clean election waits for the dead leader, so
that ratio is set by `hold_s`: the price of not losing records, not a property of the engine).

Against a --bootstrap cluster the kills are left out (they SIGKILL the engine's own broker
processes), with a note: the leader-... variants write and read back without a kill, which
checks acks=all and read-back there (on topics of as many replicas as it has brokers, up to
three), and the isr-of-one variants are left out.
"""

import contextlib
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from scenarios.clients.cluster import probe
from scenarios.clients.failover import (
    RECORD_SIZE,
    FailoverClients,
    Produced,
    in_sync,
    kill_isr_of_one,
    kill_leader,
    quiet_admin,
)
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.harness.saturation import ACHIEVED_FRACTION
from scenarios.harness.scenario import (
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    TopicWrite,
    Variant,
)

LEADER, ISR_OF_ONE = "leader", "isr-of-one"
VARIANTS: dict[str, dict[str, Any]] = {  # name: kill pattern, enable.idempotence, unclean
    "leader-idempotent": {"kill": LEADER, "idempotence": True, "unclean": False},
    "leader-non-idempotent": {"kill": LEADER, "idempotence": False, "unclean": False},
    "isr-of-one-clean": {"kill": ISR_OF_ONE, "idempotence": False, "unclean": False},
    "isr-of-one-unclean": {"kill": ISR_OF_ONE, "idempotence": False, "unclean": True},
}
REPLICATION_FACTOR = 3
_TIMEOUT_S = 60.0


class Failover(Scenario):
    name = "failover"
    title = "What a leader's death costs"
    question = (
        "When a partition's leader dies under acks=all load, how long does the partition take "
        "no writes, are acknowledged records lost (with unclean leader election off, and on), "
        "and are records written twice (with and without idempotence)?"
    )
    parameters = {
        "brokers": "broker processes of the cluster kbench starts",
        "variants": "which variants run (leader-..., isr-of-one-...)",
        "rate": "records/s the producer offers",
        "steady_s": "seconds of writes before the kill and after the recovery",
        "alone_s": "isr-of-one: seconds the leader acknowledges alone before it is killed",
        "hold_s": "isr-of-one-clean: seconds from the leader's kill to its restart",
        "session_timeout_ms": "broker.session.timeout.ms of the cluster kbench starts",
        "heartbeat_ms": "broker.heartbeat.interval.ms of the cluster kbench starts",
        "rounds": "interleaved repeats of every variant: one kill each",
    }
    _common: Mapping[str, Any] = {"brokers": 3, "variants": list(VARIANTS)}
    quick_seconds = 36  # measured: 34 s (`kbench run failover` 38 s), 2-core VM, 2026-11-29
    profiles = {
        "smoke": {
            **_common,
            "variants": ["leader-non-idempotent", "isr-of-one-clean"],
            "rate": 500,
            "steady_s": 0.3,
            "alone_s": 0.3,
            "hold_s": 1.0,
            "session_timeout_ms": 1500,
            "heartbeat_ms": 300,
            "rounds": 1,
        },
        "quick": {
            **_common,
            "rate": 1000,
            "steady_s": 0.3,
            "alone_s": 0.5,
            "hold_s": 2.0,
            "session_timeout_ms": 1500,
            "heartbeat_ms": 300,
            "rounds": 1,
        },
        "full": {
            **_common,
            "rate": 2000,
            "steady_s": 2.0,
            "alone_s": 1.0,
            "hold_s": 3.0,
            "session_timeout_ms": 3000,
            "heartbeat_ms": 500,
            "rounds": 10,
        },
    }
    metrics = (
        Metric(
            "unavailability_ms", "ms", "lower", "longest pause in acknowledgements around the kill"
        ),
        Metric("acked", "records", "higher", "records acknowledged without error"),
        Metric("lost", "records", "lower", "acknowledged, and not there when read back"),
        Metric("duplicates", "records", "lower", "reads of a record beyond its first"),
        Metric("delivery_errors", "records", "lower", "records the producer reported failed"),
        Metric(ACHIEVED_FRACTION, "fraction", "higher", "records sent over records due"),
    )

    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        return [Variant(name, VARIANTS[name]) for name in params["variants"]]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        names = set(params["variants"])
        if not params.get("kills", True):
            return []
        pairs = [
            (
                "idempotence",
                "leader-non-idempotent",
                "leader-idempotent",
                "without/with idempotence",
            ),
            ("unclean", "isr-of-one-clean", "isr-of-one-unclean", "clean/unclean election"),
        ]
        return [
            Contrast(name, "unavailability_ms", a, b, f"unavailability, {label}")
            for name, a, b, label in pairs
            if {a, b} <= names
        ]

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """One topic per measurement, written for about 2 x steady_s (and the kill's pauses)."""
        seconds = 2 * params["steady_s"] + params["alone_s"] + 5
        per_sample = int(params["rate"] * seconds) * RECORD_SIZE
        total = per_sample * len(params["variants"]) * (params["rounds"] + 1)
        return [TopicWrite("failover-<n>", 1, total)]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        from scenarios.clients.producers import ConfluentKafkaDriver

        if ConfluentKafkaDriver.unavailable() is not None:
            raise Skip(f"confluent-kafka: {ConfluentKafkaDriver.unavailable()}")
        if not ctx.engine and ctx.bootstrap is None:
            raise Skip("no cluster to produce to")
        params = ctx.params
        ctx.state.update(
            count=0, measured=set(), unclean_off_lost=0, unclean_off_acked=0, rf=REPLICATION_FACTOR
        )
        try:
            if ctx.engine:  # a cluster of its own: it kills and restarts its brokers
                directory = tempfile.mkdtemp(prefix="failover-", dir=ctx.work_dir)
                settings = {
                    "broker.heartbeat.interval.ms": str(params["heartbeat_ms"]),
                    "broker.session.timeout.ms": str(params["session_timeout_ms"]),
                    "group.initial.rebalance.delay.ms": "0",
                }
                cluster = LocalCluster(directory, params["brokers"], settings).start()
                ctx.state["cluster"] = cluster
                bootstrap = cluster.bootstrap
                ctx.processes["controller"] = cluster.controller.pid
                _broker_pids(ctx, cluster)
            else:
                assert ctx.bootstrap is not None
                bootstrap = ctx.bootstrap
                params["kills"] = False
                params["variants"] = [v for v in params["variants"] if v.startswith(LEADER)]
                brokers = len(probe(bootstrap.split(",")[0]).brokers)
                if brokers < REPLICATION_FACTOR:
                    ctx.state["rf"] = brokers
                    ctx.notes.append(
                        f"topics of replication factor {brokers}: the cluster has {brokers} "
                        f"broker(s), not {REPLICATION_FACTOR}"
                    )
                ctx.notes.append(
                    "the kills left out: they SIGKILL the engine's own broker processes, which a "
                    "--bootstrap cluster does not let kbench do; the leader-... variants write "
                    "and read back without a kill, the isr-of-one-... variants are left out"
                )
            ctx.state["admin"] = quiet_admin(bootstrap)
            clients = ctx.state["clients"] = FailoverClients(bootstrap).start()
            ctx.processes.update(clients.pids)
        except BaseException:
            self.teardown(ctx)
            raise

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params, state = ctx.params, ctx.state
        admin: TopicAdmin = state["admin"]
        clients: FailoverClients = state["clients"]
        cluster: LocalCluster | None = state.get("cluster")
        warmup = variant.name not in state["measured"]  # the runner's round -1 comes first
        state["measured"].add(variant.name)
        kill = variant.params["kill"]
        topic = ctx.topic(f"failover-{state['count']}")
        state["count"] += 1
        configs = {
            "min.insync.replicas": str(min(2, state["rf"])) if kill == LEADER else "1",
            "unclean.leader.election.enable": str(variant.params["unclean"]).lower(),
        }
        admin.create(topic, 1, replication_factor=state["rf"], configs=configs)
        state["topic"] = topic
        try:
            in_sync(admin, topic, _TIMEOUT_S)
            clients.begin(
                topic, params["rate"], {"enable.idempotence": variant.params["idempotence"]}
            )
            try:
                clients.wait_acked_after(time.monotonic(), _TIMEOUT_S)
                time.sleep(params["steady_s"])
                killed = None
                if cluster is not None and params.get("kills", True) and not warmup:
                    if kill == LEADER:
                        killed = kill_leader(cluster, admin, clients, topic, _TIMEOUT_S)
                    else:
                        killed = kill_isr_of_one(
                            cluster,
                            admin,
                            clients,
                            topic,
                            params["alone_s"],
                            None if variant.params["unclean"] else params["hold_s"],
                            _TIMEOUT_S,
                        )
                    _broker_pids(ctx, cluster)  # the restarted brokers
                    time.sleep(params["steady_s"])
            finally:
                produced = clients.end()
            read = clients.read(topic)
        finally:
            with contextlib.suppress(Exception):  # teardown deletes what is left
                admin.delete(topic)
                state["topic"] = None
        values = _counts(produced, read, params["rate"])
        if killed is not None:
            values["unavailability_ms"] = killed.unavailable_s(produced) * 1000
        if not variant.params["unclean"]:
            state["unclean_off_lost"] += values["lost"]
            state["unclean_off_acked"] += values["acked"]
            if values["lost"]:
                ctx.notes.append(
                    f"finding broken: {variant.name} lost {values['lost']:.0f} acknowledged "
                    "records with unclean.leader.election.enable=false (the rule: 0)"
                )
        return values

    def teardown(self, ctx: RunContext) -> None:
        state = ctx.state
        if state.get("unclean_off_acked"):
            ctx.notes.append(
                "finding: acknowledged-then-lost with unclean.leader.election.enable=false: "
                f"{state['unclean_off_lost']:.0f} of {state['unclean_off_acked']:.0f} "
                "acknowledged records (the rule: 0)"
            )
            state["unclean_off_acked"] = 0
        clients = state.pop("clients", None)
        if clients is not None:
            clients.close()
        admin = state.pop("admin", None)
        if admin is not None and state.get("topic"):
            with contextlib.suppress(Exception):
                admin.delete(state["topic"])
        cluster = state.pop("cluster", None)
        if cluster is not None:
            cluster.stop()


def _broker_pids(ctx: RunContext, cluster: LocalCluster) -> None:
    """Each broker's CPU metered by role (broker-1, ...); a restarted broker is a new process,
    metered from the next sample on."""
    for node_id, broker in cluster.brokers.items():
        ctx.processes[f"broker-{node_id}"] = broker.pid


def _counts(produced: Produced, read: Mapping[int, int], rate: float) -> dict[str, float]:
    acked = set(produced.acked)
    due = produced.seconds * rate
    return {
        "acked": float(len(acked)),
        "lost": float(sum(1 for record in acked if record not in read)),
        "duplicates": float(sum(count - 1 for count in read.values())),
        "delivery_errors": float(len(produced.errors)),
        ACHIEVED_FRACTION: min(produced.sent / due, 1.0) if due > 0 else 1.0,
    }
