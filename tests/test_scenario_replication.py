"""replication: the smoke profile through the runner, on the cluster the scenario starts itself,
and against a separate two-broker cluster as if it were a user's (--bootstrap).

Behaviour, not timing: every record a step had acknowledged is in the high watermark (stored,
readable), and with acks=all every in-sync follower already held it when it was acknowledged;
the stopped follower leaves the ISR and comes back; each broker process is metered by role;
against a cluster that is not kbench's own the parts that need the engine (stopping a broker,
its /stats) and the replication factors it cannot hold are left out with a note, and every
topic created is deleted. No test says how fast, nor which acks level is faster: that is the
scenario's verdict to give, from intervals, not a test's from one smoke sample.
"""

import copy
import math

import pytest

from scenarios.catalog.registry import SCENARIOS
from scenarios.catalog.replication import (
    COSTS_THROUGHPUT,
    KREPS_ASYNC,
    KREPS_SYNC,
    Replication,
    isr_variant,
)
from scenarios.clients.cluster import probe
from scenarios.clients.local_broker import LocalCluster
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import Bound, RunContext

S = Replication()
PREFIX = "kbench-testrun-"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run, the scenario's own cluster: (result, context)."""
    directory = tmp_path_factory.mktemp("replication")
    ctx = RunContext(
        work_dir=str(directory),
        params=copy.deepcopy(dict(S.profiles["smoke"])),
        topic_prefix=PREFIX,
    )
    return run_scenario(S, ctx, "smoke"), ctx


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    """A smoke run against a separate cluster of two brokers, as --bootstrap runs it:
    (result, context, the topics left on the cluster)."""
    directory = tmp_path_factory.mktemp("replication-external")
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    params.update(
        saturation=[[1, "1"], [2, "1"], [2, "all"], [3, "all"]],
        real=[[2, "all"]],
        rates={"batches": [], "confluent-kafka": []},
    )
    with LocalCluster(str(directory / "cluster"), 2) as cluster:
        bootstrap = cluster.brokers[1].bootstrap
        ctx = RunContext(
            work_dir=str(directory),
            params=params,
            bootstrap=bootstrap,
            engine=False,
            topic_prefix=PREFIX,
        )
        result = run_scenario(S, ctx, "smoke")
        left = [t for t in probe(bootstrap).topics if t.startswith(PREFIX)]
    return result, ctx, left


def test_smoke_runs_every_variant_every_round_with_each_broker_metered(smoke):
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == [
        "batches-rf1-acks1",
        "batches-rf3-acks0",
        "batches-rf3-acks1",
        "batches-rf3-acksall",
        "confluent-kafka-rf3-acks1",
        "confluent-kafka-rf3-acksall",
        "batches-rf3-acks1-at-30k",
        "batches-rf3-acksall-at-30k",
        isr_variant(3),
    ]
    assert len(result.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)
    for sample in result.samples:
        for name, value in sample.values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, name, value)
        assert sample.values["records_per_s"] > 0
        # every sample's topic has its whole ISR back afterwards
        assert sample.values["isr_size"] == (1 if "-rf1-" in sample.variant else 3)
        processes = sample.resources["processes"]
        assert {"broker-1", "broker-2", "broker-3", "controller", "producer-1"} <= set(processes)
    assert result.notes == []


def test_every_acknowledged_record_is_in_the_high_watermark(smoke):
    """What a step had acknowledged (acks=0: written) is readable from the leader: its high
    watermark moved by exactly that many records, for every variant and acks level."""
    _, ctx = smoke
    checked = ctx.state["checked"]
    assert {c["acks"] for c in checked} == {0, 1, -1}
    assert all(c["acknowledged"] > 0 for c in checked)
    for entry in checked:
        assert entry["stored"] == entry["acknowledged"], entry


def test_with_acks_all_every_in_sync_follower_holds_what_was_acknowledged(smoke):
    _, ctx = smoke
    every = [c for c in ctx.state["checked"] if c["acks"] == -1]
    assert every
    for entry in every:
        # RF=3 with its ISR whole: both followers; with one stopped and dropped: the other
        expected = 1 if entry["variant"].endswith(("stopped", "after")) else 2
        assert len(entry["followers"]) == expected, entry
        assert all(got >= entry["acknowledged"] for got in entry["followers"].values()), entry
    for entry in ctx.state["checked"]:
        assert ("followers" in entry) == (entry["acks"] == -1)


def test_the_stopped_follower_leaves_the_isr_and_comes_back(smoke):
    result, _ = smoke
    samples = [s for s in result.samples if s.variant == isr_variant(3)]
    assert len(samples) == S.profiles["smoke"]["rounds"] + 1
    for sample in samples:
        v = sample.values
        assert v["isr_shrink_ms"] > 0 and v["isr_rejoin_ms"] > 0
        assert v["isr_size"] == 3
        # acknowledgements waited for the stopped follower until it was dropped
        assert v["stopped_max_ms"] >= v["stopped_p99_ms"] > 0


def test_against_a_users_cluster_the_engine_parts_are_left_out_and_topics_deleted(external):
    result, ctx, left = external
    assert result.error is None, result.error
    assert [v["name"] for v in result.variants] == [
        "batches-rf1-acks1",
        "batches-rf2-acks1",
        "batches-rf2-acksall",
        "confluent-kafka-rf2-acksall",
    ]
    notes = " ".join(result.notes)
    assert "ISR part left out" in notes and "SIGSTOP" in notes
    assert "/stats" in notes
    assert "replication factor 3 left out: the cluster has 2 brokers" in notes
    assert result.claims == []  # no RF=3: nothing the claim is about
    for entry in ctx.state["checked"]:
        assert entry["stored"] == entry["acknowledged"] and "followers" not in entry
    assert ctx.state["topics"] and all(t.startswith(f"{PREFIX}rep-") for t in ctx.state["topics"])
    assert left == []


def test_the_claim_is_decided_on_one_real_producer_at_rf3_and_kreps_is_beside_it():
    params = S.profiles["quick"]
    contrasts = {c.name: c for c in S.contrasts(params)}
    variants = {v.name for v in S.variants(params)}
    sides = {s for c in contrasts.values() for s in (c.numerator, c.denominator)}
    assert {s for s in sides if isinstance(s, str)} <= variants
    (check,) = S.claim_checks(params)
    assert (check.claim, check.contrast) == ("acks-cost", "confluent-kafka-acks1-vs-all")
    decided = contrasts[check.contrast]
    assert (decided.numerator, decided.denominator) == (
        "confluent-kafka-rf3-acks1",
        "confluent-kafka-rf3-acksall",
    )
    assert check.threshold == COSTS_THROUGHPUT == 1.11
    assert contrasts["confluent-kafka-acks1-vs-kreps"].denominator == Bound(
        KREPS_ASYNC, contrasts["confluent-kafka-acks1-vs-kreps"].denominator.label
    )
    assert contrasts["confluent-kafka-acksall-vs-kreps"].denominator.value == KREPS_SYNC
    assert (KREPS_ASYNC, KREPS_SYNC) == (786_980, 421_823)
    assert CLAIMS["acks-cost"].scenario == S.name
    names = list(SCENARIOS)
    assert names.index(S.name) == names.index("node-peak") + 1


def test_profiles_and_cluster_writes():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        writes = S.cluster_writes(params)
        rfs = {rf for rf, _ in params["saturation"] + params["real"]}
        assert {w.topic for w in writes} >= {f"rep-rf{rf}" for rf in rfs}
        assert all(w.bytes > 0 for w in writes)
        assert params["rounds"] >= (6 if profile != "smoke" else 1)
    assert S.profiles["full"]["isr_rf"] == 3
