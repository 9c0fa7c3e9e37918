"""e2e-latency: a producer at an offered rate and a tailing consumer (scenarios/clients/pipeline)
against the engine broker, smoke sizes.

Behaviour, not timing: every variant delivers every record and times each measured one, every
sample records the offered rate and the achieved one, a rate far above what the machine can do
is marked saturated and decides no claim, every topic carries the run's prefix and is deleted,
and the variants, contrasts and claim checks name what they say. No test says how fast
anything is.
"""

import copy
import math
import os

import pytest

from scenarios.catalog.e2e_latency import (
    CLAIM_P50_MS,
    CLAIM_P99_MS,
    CLAIM_RATE,
    CONFLUENT,
    LOADGEN,
    LOADGEN_REQUESTS_PER_S,
    RATE,
    E2ELatency,
    claim_variant,
    load_size,
    records_per_request,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.saturation import ACHIEVED_FRACTION, SATURATED_BELOW
from scenarios.harness.scenario import Bound, RunContext

S = E2ELatency()
PREFIX = "kbench-testrun-"


def _run(tmp_path, params: dict, *, engine: bool = True):
    """One run of S with `params` against a fresh engine broker: (result, context, topics left
    in the broker's log directory)."""
    broker = LocalBroker(str(tmp_path / "data")).start()
    try:
        ctx = RunContext(
            work_dir=str(tmp_path),
            params=params,
            bootstrap=broker.bootstrap,
            broker_pid=broker.pid,
            topic_prefix=PREFIX,
            engine=engine,
        )
        result = run_scenario(S, ctx, "smoke")
        left = set(os.listdir(tmp_path / "data"))
    finally:
        broker.stop()
    return result, ctx, left


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run against a fresh engine broker: (result, context, topics left)."""
    return _run(tmp_path_factory.mktemp("e2e-latency"), copy.deepcopy(dict(S.profiles["smoke"])))


def test_smoke_runs_every_variant_every_round(smoke):
    result, _, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == [
        "confluent-acks1-linger0-1000/s",  # the claim's, first
        "confluent-acksall-linger5-1000/s",
        "loadgen-acks1-1000/s",
    ]
    rounds = S.profiles["smoke"]["rounds"] + 1  # and the warm-up
    assert len(result.samples) == rounds * len(names)


def test_every_record_is_delivered_and_each_measured_one_timed(smoke):
    result, ctx, _ = smoke
    measurements = ctx.state["measurements"]
    assert len(measurements) == len(result.samples)
    for entry in measurements:
        # pipeline.run fails unless the consumer reached the last record offered
        assert 0 < entry["warmup"] < entry["offered"], entry
        assert entry["measured"] == entry["offered"] - entry["warmup"], entry


def test_every_sample_records_the_offered_and_the_achieved_rate(smoke):
    result, _, _ = smoke
    params = {v["name"]: v["params"] for v in result.variants}
    metrics = {m.name for m in S.metrics}
    for sample in result.samples:
        values = sample.values
        assert set(values) == metrics, sample.variant  # the broker's CPU and the probe's too
        for name, value in values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, name, value)
        assert values[RATE] == params[sample.variant][RATE]
        assert values["delivered_records_per_s"] > 0
        assert values[ACHIEVED_FRACTION] == pytest.approx(
            values["delivered_records_per_s"] / values[RATE]
        )
        latencies = [values[f"{p}_latency_ms"] for p in ("p50", "p99", "p999", "max")]
        assert latencies[0] > 0 and latencies == sorted(latencies), sample.variant
        assert values["fetches_per_s"] > 0 and values["broker_cpu_us_per_record"] > 0


def test_a_lingering_producer_reaches_the_consumer_in_fewer_fetches(smoke):
    # linger.ms 5 gathers ~5 ms of records per request, linger.ms 0 sends one request per record
    # at 1,000 records/s: the tailing consumer's long poll returns once per request it sees
    result, _, _ = smoke
    by_round = {(s.variant, s.round): s.values["fetches_per_s"] for s in result.samples}
    for round_ in {s.round for s in result.samples}:
        lingering = by_round[("confluent-acksall-linger5-1000/s", round_)]
        eager = by_round[("confluent-acks1-linger0-1000/s", round_)]
        assert lingering < eager, (round_, lingering, eager)


def test_every_topic_carries_the_run_prefix_and_is_deleted(smoke):
    _, ctx, left = smoke
    topics = [entry["topic"] for entry in ctx.state["measurements"]]
    assert len(set(topics)) == len(topics)  # a fresh topic per measurement
    assert all(topic.startswith(f"{PREFIX}e2e-") for topic in topics), topics
    assert not {t for t in left if t.startswith(PREFIX)}


def test_a_rate_far_above_the_machine_is_saturated_and_decides_no_claim(tmp_path):
    # the claim's variant offered 10^7 records/s: 2,000 records due within 0.2 ms, which no
    # producer, broker and consumer on any machine deliver at that rate
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    params.update(clients=[CONFLUENT], sweeps=[], claim_rate=10**7, max_records=2000, rounds=6)
    result, _, left = _run(tmp_path, params)
    assert result.error is None, result.error
    assert [v["name"] for v in result.variants] == ["confluent-acks1-linger0-10000000/s"]
    assert len(result.samples) == 7
    for sample in result.samples:
        assert sample.values[RATE] == 10**7
        assert sample.values[ACHIEVED_FRACTION] < SATURATED_BELOW, sample.values
    assert len(result.claims) == 2
    for claim in result.claims:
        assert claim["id"] == "e2e-latency" and claim["verdict"] == "inconclusive", claim
        assert "saturated: 6 of 6 samples of confluent-acks1-linger0-10000000/s" in claim["rule"]
    assert not {t for t in left if t.startswith(PREFIX)}


def test_saturated_samples_decide_no_claim():
    check = S.claim_checks(S.profiles["quick"])[0]
    claim = claim_variant(S.profiles["quick"])
    kept = [{ACHIEVED_FRACTION: f} for f in (1.0, 0.99, SATURATED_BELOW)]
    assert S.undecided(check, {claim: kept}) is None
    short = [{ACHIEVED_FRACTION: f} for f in (1.0, SATURATED_BELOW - 0.01, 0.99)]
    reason = S.undecided(check, {claim: short})
    assert reason is not None and reason.startswith(f"saturated: 1 of 3 samples of {claim}")


def test_the_claim_is_decided_at_its_stated_rate_against_its_levels():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        assert params["claim_rate"] == CLAIM_RATE == 1000  # the stated rate, every profile
        claim = claim_variant(params)
        assert claim == "confluent-acks1-linger0-1000/s"
        variants = {v.name: v.params for v in S.variants(params)}
        assert variants[claim] == {
            "client": CONFLUENT,
            "acks": "1",
            "linger.ms": 0,
            RATE: 1000,
            "records_per_request": 1,
        }
        contrasts = {c.name: c for c in S.contrasts(params)}
        checks = S.claim_checks(params)
        assert [(c.claim, c.contrast, c.threshold) for c in checks] == [
            ("e2e-latency", "p99-within-10ms", 1.0),
            ("e2e-latency", "p50-within-2ms", 1.0),
        ]
        for check, metric, level in zip(
            checks, ("p99_latency_ms", "p50_latency_ms"), (CLAIM_P99_MS, CLAIM_P50_MS), strict=True
        ):
            contrast = contrasts[check.contrast]
            assert contrast.metric == metric and contrast.denominator == claim
            assert contrast.numerator == Bound(level, contrast.numerator.label)
            assert f"{level:g} ms" in check.part and "1,000 records/s" in check.part
        # Kreps' p99 and p99.9 beside, decided by nothing
        assert contrasts["p99-within-kreps-3ms"].numerator.value == 3.0
        assert contrasts["p999-within-kreps-14ms"].numerator.value == 14.0
    assert CLAIMS["e2e-latency"].scenario == S.name
    assert S.name in SCENARIOS


def test_the_settings_contrasts_hold_all_but_their_setting():
    params = S.profiles["full"]
    variants = {v.name: v.params for v in S.variants(params)}
    contrasts = {c.name: c for c in S.contrasts(params)}
    expected = {
        "linger5-vs-linger0-p50": ("linger.ms", 5, 0),
        "linger5-vs-linger0-p99": ("linger.ms", 5, 0),
        "acksall-vs-acks1-p99": ("acks", "all", "1"),
        "confluent-vs-loadgen-p50": ("client", CONFLUENT, LOADGEN),
    }
    for name, (setting, numerator, denominator) in expected.items():
        c = contrasts[name]
        a, b = variants[c.numerator], variants[c.denominator]
        assert (a[setting], b[setting]) == (numerator, denominator), name
        assert a[RATE] == b[RATE] == CLAIM_RATE, name
        held = {k for k in a if a[k] != b[k]} - {setting, "linger.ms", "records_per_request"}
        assert not held, (name, held)
    # the quick profile runs the claim's setting alone: no settings contrast
    assert not set(expected) & {c.name for c in S.contrasts(S.profiles["quick"])}


def test_variants_name_their_settings_and_the_load_generator_batches_above_its_rate():
    for profile in ("smoke", "quick", "full"):
        for variant in S.variants(S.profiles[profile]):
            p = variant.params
            linger = "" if p["client"] == LOADGEN else f"-linger{p['linger.ms']}"
            assert variant.name == f"{p['client']}-acks{p['acks']}{linger}-{p[RATE]}/s"
            assert p["records_per_request"] == records_per_request(p["client"], p[RATE])
    assert records_per_request(CONFLUENT, 100_000) == 1  # the real client batches by itself
    assert records_per_request(LOADGEN, 1000) == 1
    assert records_per_request(LOADGEN, 100 * LOADGEN_REQUESTS_PER_S) == 100
    rates = [v.params[RATE] for v in S.variants(S.profiles["quick"])]
    assert rates == [1000, 8000, 64_000]  # the chart's sweep, past saturation


def test_a_sample_is_whole_requests_capped_and_warmed_up():
    params = {"seconds": 1.0, "warmup_s": 0.25, "max_records": 10_000}
    assert load_size(params, 1000, 1) == (1250, 250)
    assert load_size(params, 1000, 10) == (1250 // 10 * 10, 250)
    assert load_size(params, 10**7, 1) == (10_000, 2000)  # capped: a shorter sample
    total, warmup = load_size(params, 64_000, 64)
    assert total % 64 == 0 and warmup % 64 == 0 and 0 < warmup < total <= 10_000


def test_profiles_grow_and_cluster_writes_announce_them():
    sizes = []
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        (write,) = S.cluster_writes(params)
        assert (write.topic, write.partitions) == ("e2e-<n>", 1) and write.bytes > 0
        sizes.append(write.bytes)
        assert params["rounds"] >= (6 if profile != "smoke" else 1)
    assert sizes == sorted(sizes)


def test_against_another_cluster_the_load_generator_is_left_out(tmp_path):
    broker = LocalBroker(str(tmp_path / "data")).start()
    try:
        ctx = RunContext(
            work_dir=str(tmp_path),
            params=copy.deepcopy(dict(S.profiles["smoke"])),
            bootstrap=broker.bootstrap,
            topic_prefix=PREFIX,
            engine=False,
        )
        S.setup(ctx)
        S.teardown(ctx)
    finally:
        broker.stop()
    assert ctx.params["clients"] == [CONFLUENT]
    assert any(note.startswith(f"{LOADGEN} variants left out") for note in ctx.notes)
    assert all(v.params["client"] == CONFLUENT for v in S.variants(ctx.params))


def test_without_a_broker_the_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params=copy.deepcopy(dict(S.profiles["smoke"])))
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped == "no broker to produce to"
