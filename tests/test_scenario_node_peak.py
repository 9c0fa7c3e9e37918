"""node-peak: the rate search against the engine broker, smoke sizes, and a profile whose every
step is offered 10^9 records/s.

Behaviour, not timing: every step of every search records its offered and achieved rate and
whether it was kept; each round's peak is a step that was kept; every record a loadgen step had
acknowledged is stored (the topic's high watermark moved by exactly that much), the consumer
reads the whole backlog; a step offered far above what any machine takes is saturated and
decides no claim; every topic carries the run's prefix and is deleted. No test says how fast.
"""

import copy
import math
import os

import pytest

from scenarios.catalog.node_peak import (
    AT_LEAST_THE_FIGURE,
    KREPS_PRODUCER,
    NODE_MB_PER_S,
    NODE_RECORDS_PER_S,
    NodePeak,
    Step,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.claims import CLAIMS
from scenarios.harness.rate_search import peak, search
from scenarios.harness.runner import run_scenario
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import Bound, RunContext

S = NodePeak()
PREFIX = "kbench-testrun-"


def _run(tmp_path, params: dict) -> tuple:
    broker = LocalBroker(str(tmp_path / "data")).start()
    try:
        ctx = RunContext(
            work_dir=str(tmp_path),
            params=params,
            bootstrap=broker.bootstrap,
            broker_pid=broker.pid,
            topic_prefix=PREFIX,
        )
        result = run_scenario(S, ctx, "smoke")
        ctx.state["left"] = [t for t in os.listdir(tmp_path / "data") if t.startswith(PREFIX)]
    finally:
        broker.stop()
    return result, ctx


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run against a fresh engine broker: (result, context)."""
    return _run(tmp_path_factory.mktemp("node-peak"), copy.deepcopy(dict(S.profiles["smoke"])))


@pytest.fixture(scope="module")
def overload(tmp_path_factory):
    """Every step offered 10^9 records/s (one process, no real client): (result, context). Six
    rounds, so that the claims are not undecided for want of rounds."""
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    params.update(
        producers=[1],
        several=1,
        clients=[],
        start_rate={"batches": 1e9, "real": 1e9},
        min_rate={"batches": 1e9, "real": 1e9},  # and never another rate
        max_rate={"batches": 1e9, "real": 1e9},
        max_steps=1,
        track_steps=1,
        rounds=6,
    )
    return _run(tmp_path_factory.mktemp("node-peak-overload"), params)


def test_smoke_runs_every_variant_every_round(smoke):
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == [
        "batches-1p",
        "batches-2p",
        "confluent-kafka-1p",
        "fetch-backlog",
        "loopback",
        "disk-write",
    ]
    assert len(result.samples) == (S.profiles["smoke"]["rounds"] + 1) * len(names)
    for sample in result.samples:
        for name, value in sample.values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, name, value)
        assert sample.values["mb_per_s"] > 0


def test_every_step_records_offered_and_achieved_and_the_peak_is_a_kept_step(smoke):
    result, ctx = smoke
    steps = ctx.state["steps"]
    searched = [s for s in result.samples if s.variant.startswith(("batches", "confluent"))]
    assert {s["measurement"] for s in steps} == set(range(1, len(searched) + 1))
    for step in steps:
        assert step["offered_per_s"] > 0 and step["achieved_per_s"] >= 0
        assert step["achieved_fraction"] == step["achieved_per_s"] / step["offered_per_s"]
        assert step["saturated"] == (step["achieved_fraction"] < SATURATED_BELOW)
        assert step["kept"] == (
            not step["saturated"] and step["p99_latency_us"] <= step["p99_bound_us"]
        )
    for sample in searched:  # the sample's own record of its steps, in the results file
        v = sample.values
        count = sum(1 for key in v if key.endswith("_offered_per_s"))
        assert count >= 1 and all(f"step{i}_achieved_per_s" in v for i in range(1, count + 1))
        kept = [v[f"step{i}_offered_per_s"] for i in range(1, count + 1) if v[f"step{i}_kept"]]
        if v["peak_found"]:
            assert v["records_per_s"] == max(kept)
            assert v[ACHIEVED_FRACTION] >= SATURATED_BELOW
        else:
            assert kept == []


def test_every_acknowledged_record_is_stored_and_the_backlog_read_whole(smoke):
    result, ctx = smoke
    checked = ctx.state["checked"]
    assert {c["variant"] for c in checked} == {"batches-1p", "batches-2p"}
    for entry in checked:
        assert entry["stored"] == entry["acknowledged"], entry
    backlog = sum(ctx.state["backlog"].values())
    assert backlog > 0
    for sample in result.samples:
        if sample.variant == "fetch-backlog":  # it fails the measurement on any shortfall
            assert sample.values["records_per_s"] > 0


def test_every_topic_carries_the_run_prefix_and_is_deleted(smoke):
    _, ctx = smoke
    assert ctx.state["topics"]
    assert all(t.startswith(f"{PREFIX}np-") for t in ctx.state["topics"])
    assert ctx.state["left"] == []


def test_a_rate_no_machine_takes_is_saturated_and_decides_no_claim(overload):
    result, ctx = overload
    assert result.error is None, result.error
    assert ctx.state["steps"] and all(s["saturated"] for s in ctx.state["steps"])
    assert all(s["offered_per_s"] == 1e9 for s in ctx.state["steps"])
    assert all(not s["kept"] for s in ctx.state["steps"])
    searched = [s for s in result.samples if s.variant == "batches-1p"]
    assert all(s.values[ACHIEVED_FRACTION] < SATURATED_BELOW for s in searched)
    assert all(s.values["peak_found"] == 0 for s in searched)
    node = [c for c in result.claims if c["id"] == "node-peak"]
    assert len(node) == 2
    for check in node:
        assert check["verdict"] == "inconclusive"
        assert "saturated" in check["rule"], check["rule"]
    for entry in ctx.state["checked"]:  # what was acknowledged is stored all the same
        assert entry["stored"] == entry["acknowledged"]


def _step(capacity: float, rate: float) -> Step:
    """A node that keeps every rate up to `capacity` and falls behind beyond it."""
    achieved = rate if rate <= capacity else 0.9 * capacity
    return Step(rate, achieved, 1000.0, 2000.0, round(rate), round(achieved), 100_000.0)


def test_the_search_brackets_the_capacity_and_its_peak_is_the_highest_kept_rate():
    capacity = 1000.0
    for start in (10.0, 900.0, 5000.0):
        steps = search(lambda r: _step(capacity, r), start, factor=2, refine=3, max_steps=20)
        found = peak(steps)
        assert found is not None and found.kept and found.offered_per_s <= capacity
        assert found.offered_per_s == max(s.offered_per_s for s in steps if s.kept)
        broken = [s.offered_per_s for s in steps if not s.kept]
        assert broken and min(broken) > capacity  # a step above it broke
        assert min(broken) / found.offered_per_s <= 2 ** (1 / 8) + 1e-9  # three bisections
    # bounded: steps at most, and never beyond the ceiling
    steps = search(lambda r: _step(1e12, r), 1.0, factor=2, refine=2, max_steps=5, ceiling=8)
    assert len(steps) <= 5 and max(s.offered_per_s for s in steps) <= 8
    # a short search from above goes down until a step is kept, ramping up faster when kept
    steps = search(lambda r: _step(capacity, r), 100, factor=1.25, max_factor=2, refine=0,
                   max_steps=4)  # fmt: skip
    assert [s.offered_per_s for s in steps] == [100, 125, 125 * 1.5625, 125 * 1.5625 * 2]


def test_a_search_that_lowering_does_not_help_stops_lowering():
    """Broken at every rate by latency alone (as with linger.ms past the bound): once a lower
    rate's step is no better, the search stops instead of halving to its floor."""

    def slow(rate: float) -> Step:
        return Step(rate, rate, 150_000.0, 200_000.0, round(rate), round(rate), 100_000.0)

    def no_better(above: Step, below: Step) -> bool:
        return below.p99_latency_us >= 0.9 * above.p99_latency_us

    steps = search(slow, 16_000, factor=2, refine=2, max_steps=8, hopeless=no_better)
    assert [s.offered_per_s for s in steps] == [16_000, 8_000] and peak(steps) is None
    # where lowering helps (the node fell behind), the search goes on down to a kept rate
    steps = search(lambda r: _step(1000.0, r), 16_000, factor=2, refine=0, max_steps=8,
                   hopeless=lambda above, below: not below.saturated)  # fmt: skip
    assert [s.offered_per_s for s in steps] == [16_000, 8_000, 4_000, 2_000, 1_000]


def test_contrasts_and_claim_checks():
    params = S.profiles["quick"]
    contrasts = {c.name: c for c in S.contrasts(params)}
    variants = {v.name for v in S.variants(params)}
    sides = {s for c in contrasts.values() for s in (c.numerator, c.denominator)}
    assert {s for s in sides if isinstance(s, str)} <= variants
    node = contrasts["node-records-vs-20M"]
    assert node.numerator == "batches-2p" and node.denominator == Bound(
        20e6, node.denominator.label
    )
    assert contrasts["node-mb-vs-600MB"].denominator.value == NODE_MB_PER_S == 600
    assert contrasts["confluent-kafka-vs-kreps"].numerator == "confluent-kafka-1p"
    assert contrasts["confluent-kafka-vs-kreps"].denominator.value == KREPS_PRODUCER == 821_557
    assert NODE_RECORDS_PER_S == 20e6
    checks = S.claim_checks(params)
    assert {(c.claim, c.contrast) for c in checks} == {
        ("node-peak", "node-records-vs-20M"),
        ("node-peak", "node-mb-vs-600MB"),
        ("single-producer", "confluent-kafka-vs-kreps"),
    }
    assert all(c.threshold == AT_LEAST_THE_FIGURE == 1.0 for c in checks)
    assert CLAIMS["node-peak"].scenario == CLAIMS["single-producer"].scenario == S.name
    assert S.name in SCENARIOS


def test_profiles_and_cluster_writes():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        assert params["several"] in params["producers"]
        for kind in ("batches", "real"):
            assert (
                params["min_rate"][kind] <= params["start_rate"][kind] <= params["max_rate"][kind]
            )
        writes = S.cluster_writes(params)
        assert {w.topic for w in writes} == {
            *(f"np-batches-{n}p" for n in params["producers"]),
            "np-confluent-kafka",
            "np-backlog",
        }
        assert all(w.bytes > 0 for w in writes)
    steps = [S.profiles[p]["step_s"] for p in ("smoke", "quick", "full")]
    assert steps == sorted(steps) and S.profiles["quick"]["rounds"] >= 6


def test_without_a_broker_the_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params=copy.deepcopy(dict(S.profiles["smoke"])))
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped == "no broker to produce to"
