"""consumer-fetch: real consumers (confluent-kafka, kafka-python) and the raw FetchClient against
the engine broker, smoke sizes.

Behaviour, not timing: every backlog read returns every record and every tailed record is
delivered and timed; a tailing consumer with long poll makes far fewer fetch requests than a
short-polling one over the same trickle, and no more than the records it got plus one per
fetch.max.wait.ms; a consumer whose fetch.min.bytes a trickle never fills fetches once per
fetch.max.wait.ms; every tail sample records its offered rate and the fraction achieved; a
saturated sample decides no claim; without the broker's pid (as with --bootstrap) the broker CPU
metrics and claim part are left out with a note; every topic carries the run's prefix and is
deleted. No test says how fast anything is.
"""

import copy
import math
from collections.abc import Mapping
from typing import Any

import pytest

from scenarios.catalog.consumer_fetch import (
    BROKER_CPU_SHORT_OVER_LONG,
    CLIENTS,
    FETCH_CLIENT,
    LATENCY_SHORT_OVER_LONG,
    LATENCY_UNTUNED_OVER_TUNED,
    LONG_POLL,
    OFFERED,
    REQUESTS_SHORT_OVER_LONG,
    SHORT_POLL,
    THROUGHPUT,
    ConsumerFetch,
    backlog_name,
    tail_name,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import probe
from scenarios.clients.local_broker import LocalBroker
from scenarios.clients.producers import CONFLUENT, KAFKA_PYTHON
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import ClaimCheck, RunContext, Variant

S = ConsumerFetch()
SMOKE = S.profiles["smoke"]
PREFIX = "kbench-testrun-"


def _topics(bootstrap: str) -> set[str]:
    return set(probe(bootstrap).topics)  # Metadata for every topic


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    running = LocalBroker(str(tmp_path_factory.mktemp("consumer-fetch") / "data")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def smoke(broker, tmp_path_factory):
    """One smoke run against the engine broker: (result, context, topics left after it)."""
    ctx = RunContext(
        work_dir=str(tmp_path_factory.mktemp("work")),
        params=copy.deepcopy(dict(SMOKE)),
        bootstrap=broker.bootstrap,
        broker_pid=broker.pid,
        topic_prefix=PREFIX,
    )
    result = run_scenario(S, ctx, "smoke")
    return result, ctx, _topics(broker.bootstrap)


def _samples(result, name: str) -> list[dict[str, float]]:
    samples = [s.values for s in result.samples if s.variant == name]
    assert samples, name
    return samples


def _tails(ctx, name: str) -> list[dict]:
    entries = [e for e in ctx.state["tails"] if e["variant"] == name]
    assert entries, name
    return entries


def test_smoke_runs_every_variant_every_round(smoke):
    result, _, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    assert result.notes == []
    names = [v["name"] for v in result.variants]
    backlog = [
        backlog_name(client, size, None if client == FETCH_CLIENT else 500)
        for client in CLIENTS
        for size in SMOKE["backlog_fetch_bytes"]
    ]
    tail = [
        tail_name(client, *setting)
        for client in SMOKE["tail_clients"]
        for setting in (LONG_POLL, SHORT_POLL, THROUGHPUT)
    ]
    assert names == backlog + tail
    assert len(result.samples) == (SMOKE["rounds"] + 1) * len(names)


def test_every_backlog_read_returns_every_record(smoke):
    result, ctx, _ = smoke
    reads = ctx.state["backlog_reads"]
    assert len(reads) == sum(s.variant.startswith("backlog-") for s in result.samples)
    expected = ctx.state["backlog_records"]
    assert expected > 0
    for read in reads:
        assert read["records"] == expected * read["passes"], read
        assert read["fetches"] >= 1, read
    # a smaller max.partition.fetch.bytes takes more fetches for the same records
    small, large = (backlog_name(FETCH_CLIENT, size, None) for size in SMOKE["backlog_fetch_bytes"])
    per_read = {
        name: [r["fetches"] / r["passes"] for r in reads if r["variant"] == name]
        for name in (small, large)
    }
    assert min(per_read[small]) > max(per_read[large])


def test_every_tailed_record_is_delivered_and_timed(smoke):
    _, ctx, _ = smoke
    assert ctx.state["tails"]
    for entry in ctx.state["tails"]:
        assert entry["measured"] == entry["expected"] == SMOKE["tail_records"], entry
        assert entry["fetches"] >= 1 and entry["fetch_seconds"] > 0, entry


@pytest.mark.parametrize("client", SMOKE["tail_clients"])
def test_long_poll_makes_far_fewer_fetch_requests_than_short_polling(smoke, client):
    _, ctx, _ = smoke
    long_poll = _tails(ctx, tail_name(client, *LONG_POLL))
    short_poll = _tails(ctx, tail_name(client, *SHORT_POLL))
    most_long = max(e["fetches"] / e["fetch_seconds"] for e in long_poll)
    least_short = min(e["fetches"] / e["fetch_seconds"] for e in short_poll)
    assert most_long <= least_short / 2, (long_poll, short_poll)
    # a long poll is answered by a record or by fetch.max.wait.ms passing, nothing else: no
    # more fetches than the records offered in the span plus one per 500 ms of it (and slack
    # for the span's two ends)
    offered = SMOKE["tail_records"] + SMOKE["tail_warmup"]
    for entry in long_poll:
        wait_s = LONG_POLL[1] / 1e3
        assert entry["fetches"] <= offered + entry["fetch_seconds"] / wait_s + 2, entry


@pytest.mark.parametrize("client", SMOKE["tail_clients"])
def test_a_fetch_min_bytes_the_trickle_never_fills_waits_fetch_max_wait(smoke, client):
    _, ctx, _ = smoke
    wait_s = THROUGHPUT[1] / 1e3
    waiting = _tails(ctx, tail_name(client, *THROUGHPUT))
    long_poll = _tails(ctx, tail_name(client, *LONG_POLL))
    for entry in waiting:
        # each fetch is held the whole fetch.max.wait.ms: at most one per wait in the span
        assert entry["fetches"] <= entry["fetch_seconds"] / wait_s + 2, entry
    assert max(e["fetches"] for e in waiting) < min(e["fetches"] for e in long_poll)


def test_every_tail_sample_records_offered_and_achieved(smoke):
    result, _, _ = smoke
    for sample in result.samples:
        if sample.variant.startswith("tail-"):
            assert sample.values[OFFERED] == SMOKE["tail_rate"], sample.variant
            assert 0 < sample.values[ACHIEVED_FRACTION] <= 1, sample.variant
            assert sample.values["p50_latency_ms"] <= sample.values["p99_latency_ms"]
        else:  # a backlog read offers nothing: closed loop
            assert OFFERED not in sample.values and ACHIEVED_FRACTION not in sample.values


def test_every_metric_is_positive_and_finite(smoke):
    result, _, _ = smoke
    backlog = {"records_per_s", "mb_per_s", "fetches_per_s", "broker_cpu_s_per_gb"}
    tail = {
        "records_per_s",
        "fetches_per_s",
        "broker_cpu_s_per_s",
        "p50_latency_ms",
        "p99_latency_ms",
        ACHIEVED_FRACTION,
        OFFERED,
    }
    for sample in result.samples:
        expected = backlog if sample.variant.startswith("backlog-") else tail
        assert set(sample.values) == expected, sample.variant
        for name, value in sample.values.items():
            assert math.isfinite(value) and value > 0, (sample.variant, name, value)


def test_every_topic_carries_the_run_prefix_and_is_deleted(smoke):
    _, ctx, left = smoke
    created = ctx.state["created"]
    assert len(created) == len(set(created)) == 1 + len(ctx.state["tails"])
    assert all(topic.startswith(PREFIX + "cf-") for topic in created)
    assert not {t for t in left if t.startswith(PREFIX)}


def test_without_the_brokers_pid_broker_cpu_is_left_out_with_a_note(broker, tmp_path):
    """As with --bootstrap: no broker process to meter."""
    params: dict[str, Any] = {
        **copy.deepcopy(dict(SMOKE)),
        "backlog_clients": [FETCH_CLIENT],
        "backlog_fetch_bytes": [SMOKE["backlog_fetch_bytes"][0]],
        "tail_clients": [CONFLUENT],
        "tail_settings": [list(LONG_POLL)],
        "rounds": 1,
    }
    prefix = "kbench-external-"
    ctx = RunContext(
        work_dir=str(tmp_path),
        params=params,
        bootstrap=broker.bootstrap,
        engine=False,
        topic_prefix=prefix,
    )
    result = run_scenario(S, ctx, "smoke")
    assert result.error is None, result.error
    assert any("broker CPU left out" in note for note in result.notes)
    for sample in result.samples:
        assert not {"broker_cpu_s_per_gb", "broker_cpu_s_per_s"} & set(sample.values)
    assert result.params["broker_cpu"] is False
    # and what the claims' settings would compare without it
    declared = {**SMOKE, "broker_cpu": False}
    assert not any("cpu" in c.name for c in S.contrasts(declared))
    parts = [c.part for c in S.claim_checks(declared) if c.claim == "pull-model"]
    assert len(parts) == 2 * len(SMOKE["tail_clients"])
    assert not any("CPU" in part for part in parts)
    assert not {t for t in _topics(broker.bootstrap) if t.startswith(prefix)}


class _Canned(ConsumerFetch):
    """The scenario's declarations with given values instead of measurements: a saturated
    sample cannot be had on demand from a real broker."""

    def __init__(self, saturated: str, round_number: int) -> None:
        self.saturated, self.round_number, self.calls = saturated, round_number, 0
        self.seen: dict[str, int] = {}

    def setup(self, ctx: RunContext) -> None:
        ctx.params["broker_cpu"] = True

    def teardown(self, ctx: RunContext) -> None:
        pass

    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        count = self.seen[variant.name] = self.seen.get(variant.name, -2) + 1  # round -1 first
        setting = (variant.params["fetch.min.bytes"], variant.params["fetch.max.wait.ms"])
        latency = {LONG_POLL: 1.0, SHORT_POLL: 1.0, THROUGHPUT: 50.0}[setting]
        fetches = {LONG_POLL: 200.0, SHORT_POLL: 10_000.0, THROUGHPUT: 10.0}[setting]
        achieved = 1.0
        if variant.name == self.saturated and count == self.round_number:
            achieved = SATURATED_BELOW / 2
        return {
            "records_per_s": 200.0,
            "fetches_per_s": fetches,
            "broker_cpu_s_per_s": fetches / 1e4 + 0.05,
            "p50_latency_ms": latency,
            "p99_latency_ms": latency * 2,
            ACHIEVED_FRACTION: achieved,
            OFFERED: 200.0,
        }


def _canned_params() -> dict[str, Any]:
    return {**copy.deepcopy(dict(S.profiles["quick"])), "backlog_bytes": 0, "rounds": 6}


def test_a_saturated_sample_decides_no_claim(tmp_path):
    params = _canned_params()
    client = params["tail_clients"][0]
    scenario = _Canned(tail_name(client, *SHORT_POLL), round_number=3)
    ctx = RunContext(work_dir=str(tmp_path), params=params, bootstrap="unused:0")
    result = run_scenario(scenario, ctx, "quick")
    assert result.error is None, result.error
    verdicts = {c["contrast"]: c for c in result.claims}
    # the saturated short-poll sample sits in every pull-model part: none is decided
    for name in ("requests", "broker-cpu", "latency"):
        check = verdicts[f"{client}-{name}-short-vs-long"]
        assert check["verdict"] == "inconclusive", check
        assert "saturated: 1 of 6 samples of " + tail_name(client, *SHORT_POLL) in check["rule"]
    # consumer-latency's pair kept its rate: decided
    assert verdicts[f"{client}-latency-untuned-vs-tuned"]["verdict"] == "confirmed"


def test_the_same_samples_unsaturated_decide_the_claims(tmp_path):
    scenario = _Canned("none", round_number=0)
    ctx = RunContext(work_dir=str(tmp_path), params=_canned_params(), bootstrap="unused:0")
    result = run_scenario(scenario, ctx, "quick")
    assert {c["verdict"] for c in result.claims} == {"confirmed"}


def test_undecided_names_the_saturated_variant():
    check = ClaimCheck("pull-model", "x", 10.0)
    kept: Mapping[str, list[dict[str, float]]] = {
        "a": [{ACHIEVED_FRACTION: 1.0}] * 3,
        "b": [{ACHIEVED_FRACTION: 0.97}] * 3,
    }
    assert S.undecided(check, kept) is None
    short = {"a": [{ACHIEVED_FRACTION: 1.0}, {ACHIEVED_FRACTION: 0.5}], "b": kept["b"]}
    reason = S.undecided(check, short)
    assert reason is not None and reason.startswith("saturated: 1 of 2 samples of a")


def test_contrasts_and_claim_checks():
    params = S.profiles["full"]
    variants = {v.name for v in S.variants(params)}
    contrasts = {c.name: c for c in S.contrasts(params)}
    assert {n for c in contrasts.values() for n in (c.numerator, c.denominator)} <= variants
    for client in CLIENTS:
        tuned, short = tail_name(client, *LONG_POLL), tail_name(client, *SHORT_POLL)
        c = contrasts[f"{client}-latency-untuned-vs-tuned"]
        assert (c.metric, c.numerator, c.denominator) == (
            "p50_latency_ms",
            tail_name(client, *THROUGHPUT),
            tuned,
        )
        for name, metric in (
            ("requests", "fetches_per_s"),
            ("broker-cpu", "broker_cpu_s_per_s"),
            ("latency", "p50_latency_ms"),
        ):
            c = contrasts[f"{client}-{name}-short-vs-long"]
            assert (c.metric, c.numerator, c.denominator) == (metric, short, tuned)
    checks = S.claim_checks(params)
    by_claim: dict[str, list[ClaimCheck]] = {}
    for check in checks:
        by_claim.setdefault(check.claim, []).append(check)
    assert len(by_claim["consumer-latency"]) == len(CLIENTS)
    assert len(by_claim["pull-model"]) == 3 * len(CLIENTS)
    assert {c.threshold for c in by_claim["consumer-latency"]} == {LATENCY_UNTUNED_OVER_TUNED}
    assert {c.threshold for c in by_claim["pull-model"]} == {10.0, 2.0, 0.8}
    assert LATENCY_UNTUNED_OVER_TUNED == REQUESTS_SHORT_OVER_LONG == 10.0
    assert (BROKER_CPU_SHORT_OVER_LONG, LATENCY_SHORT_OVER_LONG) == (2.0, 0.8)
    assert all(c.part for c in checks)
    for claim in ("consumer-latency", "pull-model"):
        assert CLAIMS[claim].scenario == S.name
    assert S.name in SCENARIOS


def test_quick_decides_both_claims_with_librdkafka():
    params = S.profiles["quick"]
    assert params["rounds"] >= 6  # the fewest with a 95 % interval for a median
    assert params["tail_clients"] == [CONFLUENT]
    assert {c.claim for c in S.claim_checks(params)} == {"consumer-latency", "pull-model"}
    full = S.profiles["full"]
    assert set(full["tail_clients"]) == set(full["backlog_clients"]) == set(CLIENTS)
    assert KAFKA_PYTHON in full["tail_clients"] and len(full["backlog_poll_records"]) >= 2


def test_cluster_writes_announce_every_topic():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        writes = {w.topic: w for w in S.cluster_writes(params)}
        assert set(writes) == {"cf-backlog", "cf-tail-<n>"}
        assert writes["cf-backlog"].bytes == params["backlog_bytes"]
        assert all(w.partitions == 1 and w.bytes > 0 for w in writes.values())


def test_without_a_broker_the_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params=copy.deepcopy(dict(SMOKE)))
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped == "no broker to consume from"
