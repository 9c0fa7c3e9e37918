"""exactly-once: what transactions (KIP-98) cost a producer that is already idempotent, and what
read_committed costs its consumers, over the commit interval.

The same producer (confluent-kafka in a process of its own, acks=all, enable.idempotence, 100-byte
records to one partition, linger.ms `linger_ms`) runs in variants:
- idempotent: no transactions; what exactly-once is compared with.
- txn-N, N in `intervals`: transactional (a transactional.id of its own, init_transactions()
  first), commit_transaction() after every N records. Each commit is a round trip to the
  transaction coordinator (EndTxn), which writes PrepareCommit to __transaction_state (acks=all),
  the COMMIT markers to the partitions (WriteTxnMarkers: one control batch each) and
  CompleteCommit; commit_transaction() blocks until it is done, and the first record of the
  next transaction waits for AddPartitionsToTxn. So the cost per record falls as N grows.
Each measurement (scenarios/clients/transactional.py EosClients; fresh topics of one partition,
replication factor `brokers`, deleted after it):
1. saturation: closed loop for `saturation_s` seconds: records/s acknowledged (idempotent) or
   committed (txn), from the start to the last acknowledgement or commit; the commit interval
   in ms at that rate (N / records/s), since Confluent quotes its interval in ms.
2. at `rate` records/s offered (open loop, below saturation; a sample whose achieved fraction is
   below 95 % is marked saturated: scenarios.harness.saturation), for max(`rate_s`,
   `min_commits` x N / rate) seconds, so each transactional sample holds `min_commits` commits
   at least: the produce (acknowledgement) latency p50/p99 from each record's due time, and two
   tailing consumers, read_committed and read_uncommitted, each in a process of its own: delivery
   latency p50/p99 from the due time, and the LSO lag (per record, read_committed's delivery
   less read_uncommitted's; a record is visible to read_committed only once its transaction's
   COMMIT marker is written, so the lag is about half the commit interval plus the commit).
A variant's warm-up measurement (the runner's round -1, not counted) is a short saturation run
alone.
Exactly-once check, every sample: the read_committed consumer (the saturation topic read back,
and the tailing one) gets exactly the records the producer had committed (idempotent: had
acknowledged): the same count and the same sum of indexes; otherwise the sample fails (measure
raises, and the scenario's result says which sample and what differed).

Claim eos-cost (claims.md), two sources that disagree. The rule, written before the first run:
for each N, r = idempotent/txn-N records/s at saturation, the median of per-round ratios with its
95 % interval [lo, hi] (the runner's contrast cost-N).
- Confluent 2017 ("a few percent" throughput cost at 100 ms commit intervals): compatible when
  lo <= CONFLUENT_RATIO (1/(1-0.05): a loss of at most 5 %).
- Conduktor (40 % lower throughput): compatible when hi >= CONDUKTOR_RATIO (1/(1-0.4) = 1.67).
- This machine agrees with Confluent at N when only Confluent's figure is compatible, with
  Conduktor when only Conduktor's is, with both (undecided) when the interval spans both, and with
  neither when it lies wholly between them (a cost of more than 5 % and less than 40 %).
The notes state it per N, with N in records and in ms at the measured idempotent and
transactional rates. The harness's ClaimCheck per N tests Conduktor's figure: confirmed when the
whole interval is at or above 1.67 (the 40 % cost holds at that N); not reproduced when below it
and off 1. Conduktor's 3x p99 is shown beside: the contrast p99-N, txn-N/idempotent produce p99
at the offered rate (no verdict: Conduktor names neither rate nor interval).

Single broker by default: the engine the runner starts (as e2e-latency and async-send use it);
`brokers` > 1 starts a LocalCluster of that many (topics of replication factor min(brokers, 3)).
Against --bootstrap the same runs on the user's cluster (transactions are standard Kafka), on
topics of replication factor min(brokers, its brokers), deleted at the end.
"""

import contextlib
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from scenarios.clients.cluster import probe
from scenarios.clients.local_broker import LocalCluster
from scenarios.clients.topics import TopicAdmin
from scenarios.clients.transactional import RECORD_SIZE, Consumed, EosClients, Run
from scenarios.harness.runner import REQUIRED_CONFIDENCE
from scenarios.harness.saturation import ACHIEVED_FRACTION
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
from scenarios.harness.stats import compare

IDEMPOTENT = "idempotent"
CONFLUENT_RATIO = 1 / (1 - 0.05)  # "a few percent": a loss of at most 5 %
CONDUKTOR_RATIO = 1 / (1 - 0.40)  # "40 % lower throughput"
_WARMUP_S = 0.3  # a variant's warm-up measurement: a saturation run this long, no latency run


def interval_of(variant: str) -> int:
    """A variant's commit interval in records (0: idempotent, no transactions)."""
    return 0 if variant == IDEMPOTENT else int(variant.removeprefix("txn-"))


class ExactlyOnce(Scenario):
    name = "exactly-once"
    title = "What exactly-once costs"
    question = (
        "What do transactions cost an idempotent acks=all producer in records/s and latency, "
        "and its read_committed consumers in delivery latency, as the commit interval grows?"
    )
    parameters = {
        "brokers": "1: the engine the runner starts; more: a LocalCluster of that many",
        "intervals": "commit intervals N in records (a variant txn-N each)",
        "saturation_s": "seconds of each closed-loop (saturation) run",
        "rate": "records/s offered in the latency run (below saturation)",
        "rate_s": "seconds of the latency run, at least",
        "min_commits": "the latency run lasts long enough for this many commits of N records",
        "linger_ms": "the producer's linger.ms",
        "rounds": "interleaved repeats of every variant",
    }
    _common: Mapping[str, Any] = {"brokers": 1, "linger_ms": 5}
    # measured: 29 s (`flock /tmp/kbench-quiet.lock python3 -m scenarios.cli run exactly-once`
    # 41 s wall), 2-core VM with other sessions' tests running (load average 10-13), 2026-11-29
    quick_seconds = 30
    profiles = {
        "smoke": {
            **_common,
            "intervals": [100],
            "saturation_s": 0.2,
            "rate": 2000,
            "rate_s": 0.3,
            "min_commits": 1,
            "rounds": 1,
        },
        "quick": {
            **_common,
            # one interval near Confluent's 100 ms at this machine's rate, to stay within 40 s;
            # full runs the range
            "intervals": [10_000],
            "saturation_s": 0.4,
            "rate": 20_000,
            "rate_s": 0.3,
            "min_commits": 1,
            "rounds": 6,
        },
        "full": {
            **_common,
            "intervals": [10, 100, 1000, 10_000, 50_000],
            "saturation_s": 3.0,
            "rate": 10_000,
            "rate_s": 3.0,
            "min_commits": 3,
            "rounds": 8,
        },
    }
    charts = (
        SweepChart(
            "records/s, produce p99 and LSO lag vs commit interval",
            "interval",
            ("records_per_s", "produce_p99_ms", "lso_lag_p50_ms"),
            "commit interval N (records; 0: idempotent, no transactions)",
        ),
    )
    metrics = (
        Metric("records_per_s", "records/s", "higher", "at saturation, acknowledged or committed"),
        Metric("commit_interval_ms", "ms", "higher", "N records at the saturation rate"),
        Metric("transactions", "count", "higher", "commits in the saturation run"),
        Metric("produce_p50_ms", "ms", "lower", "acknowledgement from due time, offered rate"),
        Metric("produce_p99_ms", "ms", "lower", "acknowledgement from due time, offered rate"),
        Metric("committed_p50_ms", "ms", "lower", "read_committed delivery from due time"),
        Metric("committed_p99_ms", "ms", "lower", "read_committed delivery from due time"),
        Metric("uncommitted_p50_ms", "ms", "lower", "read_uncommitted delivery from due time"),
        Metric("uncommitted_p99_ms", "ms", "lower", "read_uncommitted delivery from due time"),
        Metric(
            "lso_lag_p50_ms",
            "ms",
            "lower",
            "per record: read_committed less uncommitted",
            signed=True,
        ),
        Metric(
            "lso_lag_p99_ms",
            "ms",
            "lower",
            "per record: read_committed less uncommitted",
            signed=True,
        ),
        Metric("records", "records", "higher", "acknowledged or committed at saturation"),
        Metric(
            "uncommitted_before_commit",
            "records",
            "higher",
            "read_uncommitted got them before their transaction's commit began",
        ),
        Metric(ACHIEVED_FRACTION, "fraction", "higher", "records/s achieved over offered"),
    )

    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        return [Variant(IDEMPOTENT, {"interval": 0})] + [
            Variant(f"txn-{n}", {"interval": n}) for n in params["intervals"]
        ]

    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]:
        contrasts = []
        for n in params["intervals"]:
            contrasts.append(
                Contrast(
                    f"cost-{n}",
                    "records_per_s",
                    IDEMPOTENT,
                    f"txn-{n}",
                    f"idempotent/transactional records/s, commit every {n:,} records",
                )
            )
            contrasts.append(
                Contrast(
                    f"p99-{n}",
                    "produce_p99_ms",
                    f"txn-{n}",
                    IDEMPOTENT,
                    f"transactional/idempotent produce p99 at {params['rate']:,} records/s, "
                    f"commit every {n:,} records",
                )
            )
        return contrasts

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        return [
            ClaimCheck(
                "eos-cost",
                f"cost-{n}",
                CONDUKTOR_RATIO,
                f"commit every {n:,} records: idempotent/transactional records/s >= "
                f"{CONDUKTOR_RATIO:.3g} (Conduktor's 40 % lower throughput)",
            )
            for n in params["intervals"]
        ]

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """Two topics per measurement; the saturation run's bytes are a guess (250 k records/s)."""
        measurements = (len(params["intervals"]) + 1) * (params["rounds"] + 1)
        rate_records = params["rate"] * (
            params["rate_s"] + params["min_commits"] * max(params["intervals"]) / params["rate"]
        )
        per = (250_000 * params["saturation_s"] + rate_records) * RECORD_SIZE
        return [TopicWrite("eos-<n>", 1, int(per * measurements))]

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        from scenarios.clients.producers import ConfluentKafkaDriver

        if ConfluentKafkaDriver.unavailable() is not None:
            raise Skip(f"confluent-kafka: {ConfluentKafkaDriver.unavailable()}")
        params = ctx.params
        if params["brokers"] > 1 and ctx.engine:
            ctx.state["rf"] = min(params["brokers"], 3)
        elif ctx.bootstrap is None:
            raise Skip("no broker to produce to")
        ctx.state.update(count=0, measured=set(), samples={}, topics=[])
        try:
            if params["brokers"] > 1 and ctx.engine:
                directory = tempfile.mkdtemp(prefix="exactly-once-", dir=ctx.work_dir)
                cluster = LocalCluster(directory, params["brokers"]).start()
                ctx.state["cluster"] = cluster
                bootstrap = cluster.bootstrap
                ctx.processes["controller"] = cluster.controller.pid
                for node_id, broker in cluster.brokers.items():
                    ctx.processes[f"broker-{node_id}"] = broker.pid
            else:
                assert ctx.bootstrap is not None
                bootstrap = ctx.bootstrap
                rf = 1
                if not ctx.engine:
                    rf = min(params["brokers"], len(probe(bootstrap.split(",")[0]).brokers))
                ctx.state["rf"] = rf
            ctx.state["admin"] = TopicAdmin(bootstrap)
            clients = ctx.state["clients"] = EosClients(bootstrap).start()
            ctx.processes.update(clients.pids)
        except BaseException:
            self.teardown(ctx)
            raise

    # -- measure --------------------------------------------------------------------------------
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        params, state = ctx.params, ctx.state
        warmup = variant.name not in state["measured"]  # the runner's round -1 comes first
        state["measured"].add(variant.name)
        interval = variant.params["interval"]
        properties = {"linger.ms": params["linger_ms"]}
        seconds = _WARMUP_S if warmup else params["saturation_s"]
        saturation = self._run(ctx, variant, interval, None, seconds, properties, tail=False)
        if warmup:  # the clients and the path warmed; the latency run is left out of it
            return _saturation_values(saturation, interval)
        rate = float(params["rate"])
        seconds = max(params["rate_s"], params["min_commits"] * interval / rate)
        offered = self._run(ctx, variant, interval, rate, seconds, properties, tail=True)
        values = _values(saturation, offered, interval, rate, seconds)
        state["samples"].setdefault(variant.name, []).append(values["records_per_s"])
        return values

    def _run(
        self,
        ctx: RunContext,
        variant: Variant,
        interval: int,
        rate: float | None,
        seconds: float,
        properties: Mapping[str, Any],
        tail: bool,
    ) -> Run:
        state = ctx.state
        admin: TopicAdmin = state["admin"]
        topic = ctx.topic(f"eos-{state['count']}")
        state["count"] += 1
        admin.create(topic, 1, replication_factor=state["rf"])
        state["topics"].append(topic)
        try:
            run = state["clients"].run(topic, interval, rate, seconds, properties, tail)
        finally:
            with contextlib.suppress(Exception):  # teardown deletes what is left
                admin.delete(topic)
                state["topics"].remove(topic)
        _check(variant.name, "saturation" if rate is None else f"{rate:g} records/s", run, interval)
        return run

    def teardown(self, ctx: RunContext) -> None:
        state = ctx.state
        if state.get("samples"):
            ctx.notes.extend(verdicts(ctx.params, state["samples"]))
            state["samples"] = {}
        clients = state.pop("clients", None)
        if clients is not None:
            clients.close()
        admin = state.pop("admin", None)
        if admin is not None and state.get("topics"):
            with contextlib.suppress(Exception):
                admin.delete_all(state["topics"])
        cluster = state.pop("cluster", None)
        if cluster is not None:
            cluster.stop()


def _check(variant: str, phase: str, run: Run, interval: int) -> None:
    """The exactly-once check: read_committed got exactly what was committed, and none of it
    before its transaction's commit began."""
    produced = run.produced
    if produced.errors:
        raise RuntimeError(f"{variant} ({phase}): the producer failed: {produced.errors[0]}")
    committed = run.consumed["read_committed"]
    early = _before_commit(committed, run, interval)
    if early:
        raise RuntimeError(
            f"{variant} ({phase}): read_committed got {early} records before their "
            "transaction's commit began"
        )
    if (committed.records, committed.id_sum) != (produced.records, produced.id_sum):
        raise RuntimeError(
            f"{variant} ({phase}): read_committed got {committed.records} records (id sum "
            f"{committed.id_sum}), the producer committed {produced.records} (id sum "
            f"{produced.id_sum})"
        )


def _before_commit(consumed: Consumed, run: Run, interval: int) -> int:
    """How many records `consumed` got before their transaction's commit_transaction() was
    called (0 without transactions)."""
    commits = run.produced.commit_ns
    if not interval or not commits:
        return 0
    return sum(1 for i, t in consumed.delivered_ns.items() if t < commits[i // interval])


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def _delivery(consumed: Consumed) -> list[float]:
    return [(t - consumed.due_ns[i]) / 1e6 for i, t in consumed.delivered_ns.items()]


def _saturation_values(saturation: Run, interval: int) -> dict[str, float]:
    records_per_s = saturation.produced.records / saturation.produced.seconds
    return {
        "records": float(saturation.produced.records),
        "records_per_s": records_per_s,
        "commit_interval_ms": interval / records_per_s * 1000,
        "transactions": float(saturation.produced.transactions),
    }


def _values(
    saturation: Run, offered: Run, interval: int, rate: float, seconds: float
) -> dict[str, float]:
    produce_ms = [ns / 1e6 for ns in offered.produced.latency_ns]
    committed, uncommitted = (
        offered.consumed["read_committed"],
        offered.consumed["read_uncommitted"],
    )
    lag = [
        (t - uncommitted.delivered_ns[i]) / 1e6
        for i, t in committed.delivered_ns.items()
        if i in uncommitted.delivered_ns
    ]
    sending = max(offered.produced.sending_seconds, seconds)
    values = {
        **_saturation_values(saturation, interval),
        "uncommitted_before_commit": float(_before_commit(uncommitted, offered, interval)),
        ACHIEVED_FRACTION: min(offered.produced.records / sending / rate, 1.0),
    }
    for name, latencies in (
        ("produce", produce_ms),
        ("committed", _delivery(committed)),
        ("uncommitted", _delivery(uncommitted)),
        ("lso_lag", lag),
    ):
        values[f"{name}_p50_ms"] = _percentile(latencies, 0.5)
        values[f"{name}_p99_ms"] = _percentile(latencies, 0.99)
    return values


def verdicts(params: Mapping[str, Any], samples: Mapping[str, Sequence[float]]) -> list[str]:
    """The rule of the module docstring, per commit interval: which source's figure the
    interval of idempotent/txn-N records/s is compatible with. Rounds are paired by order, as
    every variant runs once a round."""
    notes = []
    idempotent = samples.get(IDEMPOTENT, [])
    for n in params["intervals"]:
        txn = samples.get(f"txn-{n}", [])
        rounds = min(len(idempotent), len(txn))
        if rounds == 0:
            continue
        ratio = compare(idempotent[:rounds], txn[:rounds], paired=True)
        ms_idem = n / statistics.median(idempotent) * 1000
        ms_txn = n / statistics.median(txn) * 1000
        confluent = ratio.ci_low <= CONFLUENT_RATIO
        conduktor = ratio.ci_high >= CONDUKTOR_RATIO
        which = {
            (True, False): "agrees with Confluent (a few percent)",
            (False, True): "agrees with Conduktor (40 % lower)",
            (True, True): "undecided: the interval spans both sources' figures",
            (False, False): "agrees with neither: the cost lies between 5 % and 40 %",
        }[(confluent, conduktor)]
        if ratio.confidence < REQUIRED_CONFIDENCE:
            which = f"undecided: too few rounds for a 95 % interval ({rounds})"
        notes.append(
            f"eos-cost at a commit every {n:,} records ({ms_txn:.3g} ms at the transactional "
            f"rate, {ms_idem:.3g} ms at the idempotent one): idempotent/transactional records/s "
            f"{ratio.ratio:.3g}x (95 % interval {ratio.ci_low:.3g}-{ratio.ci_high:.3g}, "
            f"{rounds} rounds): {which} (rule: Confluent if the interval reaches down to "
            f"{CONFLUENT_RATIO:.3g}, Conduktor if up to {CONDUKTOR_RATIO:.3g})"
        )
    return notes
