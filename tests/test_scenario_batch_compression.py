"""batch-compression: real producers (confluent-kafka, kafka-python) against the engine broker,
smoke sizes.

Behaviour, not timing: every record delivered and stored by either client, the codecs shrink
what can be shrunk and not what cannot, batch.size bounds the batches, every metric is a
positive finite number, open-loop variants record the rate they achieved, saturated samples
decide no claim, every topic carries the run's prefix, and the grid, contrasts and claim checks
(every part of compression-tradeoff's ordering, linger's two parts under load) name what they
say.
"""

import copy
import json
import math
import os

import pytest

from scenarios.catalog.batch_compression import RATE, BatchCompression
from scenarios.clients import payloads
from scenarios.clients.local_broker import LocalBroker
from scenarios.clients.producers import CONFLUENT, DRIVERS, KAFKA_PYTHON
from scenarios.harness.claims import overall_verdict
from scenarios.harness.runner import run_scenario
from scenarios.harness.saturation import SATURATED_BELOW
from scenarios.harness.scenario import ClaimCheck, RunContext

S = BatchCompression()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run against a fresh engine broker: (result, context)."""
    tmp_path = tmp_path_factory.mktemp("batch-compression")
    broker = LocalBroker(str(tmp_path / "data")).start()
    try:
        ctx = RunContext(
            work_dir=str(tmp_path),
            params=copy.deepcopy(dict(S.profiles["smoke"])),
            bootstrap=broker.bootstrap,
            broker_pid=broker.pid,
            topic_prefix="kbench-testrun-",
        )
        result = run_scenario(S, ctx, "smoke")
        # what the broker still holds: one <topic>-<partition> directory per partition
        ctx.state["topics left"] = set(os.listdir(tmp_path / "data"))
    finally:
        broker.stop()
    return result, ctx


def _samples(result, variant: str) -> list[dict[str, float]]:
    return [s.values for s in result.samples if s.variant == variant]


def test_smoke_runs_every_variant_every_round(smoke):
    result, _ = smoke
    assert result.skipped is None
    names = [v["name"] for v in result.variants]
    assert len(names) == len(set(names))
    assert "json-lz4-1KiB-linger5" in names and "repetitive-zstd-64KiB-linger5" in names
    assert "kafka-python-json-lz4-1KiB-linger5" in names
    assert "kafka-python-repetitive-zstd-64KiB-linger5" in names
    assert {"json-none-64KiB-linger0-open4000", "json-none-64KiB-linger5-open4000"} <= set(names)
    for variant in result.variants:  # the client is in the name unless it is the default
        client = variant["params"]["client"]
        assert variant["name"].startswith("kafka-python-") == (client == KAFKA_PYTHON)
    rounds = S.profiles["smoke"]["rounds"] + 1  # and the warm-up
    assert len(result.samples) == rounds * len(names)


def test_every_record_is_delivered_and_stored(smoke):
    result, ctx = smoke
    deliveries = ctx.state["deliveries"]
    assert len(deliveries) == len(result.samples)
    assert {entry["client"] for entry in deliveries} == {CONFLUENT, KAFKA_PYTHON}
    params = S.profiles["smoke"]
    rates = {v["name"]: v["params"][RATE] for v in result.variants}
    for entry in deliveries:
        rate = rates[entry["variant"]]
        records = params["records"] if rate is None else round(rate * params["open_loop_s"])
        assert entry["errors"] == 0, entry
        assert entry["produced"] == entry["delivered"] == entry["stored"] == records, entry
        assert 1 <= entry["batches"] <= records


def test_every_topic_carries_the_run_prefix_and_is_deleted(smoke):
    _, ctx = smoke
    topics = [entry["topic"] for entry in ctx.state["deliveries"]]
    assert len(set(topics)) == len(topics)  # a fresh topic per measurement
    for topic in topics:
        assert topic.startswith("kbench-testrun-bc-"), topic
    assert not {t for t in ctx.state["topics left"] if t.startswith("kbench-testrun-")}


def test_cluster_writes_announce_every_measurement():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        (write,) = S.cluster_writes(params)
        assert write.topic.startswith("bc-") and write.partitions == 1
        low, high = params["value_bytes"]
        measurements = (params["rounds"] + 1) * len(S.variants(params))
        assert write.bytes > measurements * low * min(params["records"], 1000)
        assert write.bytes < measurements * high * params["records"]


def test_every_metric_is_positive_and_finite(smoke):
    result, _ = smoke
    metrics = {m.name for m in S.metrics}
    open_loop = {v["name"] for v in result.variants if v["params"][RATE] is not None}
    assert open_loop
    for sample in result.samples:  # achieved_fraction: open loop only
        expected = metrics if sample.variant in open_loop else metrics - {"achieved_fraction"}
        assert set(sample.values) == expected, sample.variant
        for name, value in sample.values.items():
            assert math.isfinite(value) and value > 0, (sample.variant, name, value)
        # the library's threads are a part of the process
        assert sample.values["library_cpu_s_per_mb"] <= sample.values["cpu_s_per_mb"]
        assert sample.values["p50_latency_us"] <= sample.values["p99_latency_us"]
        assert sample.values["p99_latency_us"] <= sample.values["p999_latency_us"]
        assert sample.resources["processes"]["broker"]["user_s"] >= 0


def test_codecs_shrink_redundant_data_and_not_random_bytes(smoke):
    result, _ = smoke
    for name in ("repetitive-zstd-64KiB-linger5", "kafka-python-repetitive-zstd-64KiB-linger5"):
        assert _samples(result, name)
        for values in _samples(result, name):
            assert values["compression_ratio"] > 5, name
    random_variants = [v["name"] for v in result.variants if v["params"]["payload"] == "random"]
    assert "kafka-python-random-zstd-64KiB-linger5" in random_variants
    for name in random_variants:
        for values in _samples(result, name):
            assert values["compression_ratio"] < 1.2
    # without a codec, the stored bytes are the values plus framing: never fewer
    for values in _samples(result, "json-none-64KiB-linger5"):
        assert values["compression_ratio"] < 1.0
        assert values["stored_mb_per_s"] > values["mb_per_s"]


def test_batch_size_decides_records_per_batch(smoke):
    result, _ = smoke
    low = S.profiles["smoke"]["value_bytes"][0]
    for prefix in ("", "kafka-python-"):
        for values in _samples(result, f"{prefix}json-lz4-1KiB-linger5"):
            assert values["records_per_batch"] <= 1024 / low + 1, prefix
        for values in _samples(result, f"{prefix}json-lz4-64KiB-linger5"):
            assert values["records_per_batch"] > 1024 / low + 1, prefix


def test_contrasts_and_claims_of_the_smoke_run(smoke):
    result, _ = smoke
    contrasts = {c["name"]: c for c in result.contrasts}
    assert contrasts["batching"]["numerator"] == "json-lz4-64KiB-linger5"
    assert contrasts["batching"]["denominator"] == "json-lz4-1KiB-linger5"
    assert {"linger", "ratio-zstd-vs-lz4", "cpu-gzip-vs-lz4", "ratio-repetitive-vs-random"} <= set(
        contrasts
    )
    assert contrasts["kafka-python-batching"]["numerator"] == "kafka-python-json-lz4-64KiB-linger5"
    assert contrasts["kafka-python-batching"]["denominator"] == "kafka-python-json-lz4-1KiB-linger5"
    across = contrasts["confluent-kafka-vs-kafka-python-json-lz4-64KiB-linger5"]
    assert (across["metric"], across["numerator"], across["denominator"]) == (
        "records_per_s",
        "json-lz4-64KiB-linger5",
        "kafka-python-json-lz4-64KiB-linger5",
    )
    assert "confluent-kafka-vs-kafka-python-repetitive-zstd-64KiB-linger5" in contrasts
    # closed-loop latency is labelled saturation latency; open-loop latency names its rate
    assert "saturation" in contrasts["linger-latency-p99"]["label"]
    assert "saturation" in contrasts["batching-latency-p99"]["label"]
    assert "4,000 records/s offered (open loop)" in contrasts["linger-open4000-p99"]["label"]
    claims = [(c["id"], c["contrast"], c["threshold"]) for c in result.claims]
    assert claims[:3] == [
        ("batching", "batching", 5.0),
        ("linger", "linger-open4000-batch", 1.0),
        ("linger", "linger-open4000-p99", 0.8),
    ]
    ordering = [c for c in result.claims if c["id"] == "compression-tradeoff"]
    assert len(ordering) == len(result.claims) - 3 == 11  # every ordered pair of codecs, judged
    assert all(c["part"] and c["verdict"] and c["rule"] for c in result.claims[1:])
    assert all(c["verdict"] == "inconclusive" for c in result.claims)  # 2 rounds: too few
    assert overall_verdict(ordering)[1] == "inconclusive: 0 of 11 parts hold, the rest undecided"
    assert "single-producer" not in {c["id"] for c in result.claims}


def test_open_loop_variants_record_the_rate_they_achieved(smoke):
    result, _ = smoke
    for name in ("json-none-64KiB-linger0-open4000", "json-none-64KiB-linger5-open4000"):
        samples = _samples(result, name)
        assert samples
        for values in samples:
            assert values["achieved_fraction"] > 0
    for values in _samples(result, "json-none-64KiB-linger0"):  # closed loop: no offered rate
        assert "achieved_fraction" not in values
    # the latency claim is decided on the open-loop pair, closed-loop latency on none
    decided = {c["contrast"] for c in result.claims}
    assert not {"linger-latency-p99", "batching-latency-p99", "linger"} & decided
    # records per batch under load: linger.ms 0 sends about a record per request, 5 batches
    contrast = next(c for c in result.contrasts if c["name"] == "linger-open4000-batch")
    assert contrast["comparison"]["ratio"] > 1


def _open_loop(values: list[float]) -> list[dict[str, float]]:
    return [{"p99_latency_us": 5000.0, "achieved_fraction": v} for v in values]


def test_saturated_samples_decide_no_claim():
    check = ClaimCheck("linger", "linger-open3000-p99", 0.8)
    numerator, denominator = (
        "json-none-64KiB-linger0-open3000",
        "json-none-64KiB-linger5-open3000",
    )
    kept = {numerator: _open_loop([1.0, 0.99, 0.97]), denominator: _open_loop([1.0] * 3)}
    assert S.undecided(check, kept) is None
    short = SATURATED_BELOW - 0.01
    saturated = {numerator: _open_loop([1.0, short, 0.97]), denominator: _open_loop([1.0] * 3)}
    reason = S.undecided(check, saturated)
    assert reason is not None and reason.startswith("saturated: 1 of 3 samples of " + numerator)
    assert denominator not in reason
    # closed-loop samples (no offered rate) are never called saturated
    closed = {"a": [{"records_per_s": 1.0}], "b": [{"records_per_s": 2.0}]}
    assert S.undecided(ClaimCheck("batching", "batching", 5.0), closed) is None


def test_every_part_of_the_codec_ordering_is_a_check():
    params = S.profiles["quick"]
    contrasts = {c.name: c for c in S.contrasts(params)}
    parts = [c for c in S.claim_checks(params) if c.claim == "compression-tradeoff"]
    stated = {  # (metric, higher, lower): the order the claim states, pair by pair
        ("compression_ratio", "zstd", "gzip"),
        ("compression_ratio", "zstd", "snappy"),
        ("compression_ratio", "zstd", "lz4"),
        ("compression_ratio", "gzip", "snappy"),
        ("compression_ratio", "gzip", "lz4"),
        ("library_cpu_s_per_mb", "gzip", "zstd"),
        ("library_cpu_s_per_mb", "gzip", "snappy"),
        ("library_cpu_s_per_mb", "gzip", "lz4"),
        ("library_cpu_s_per_mb", "zstd", "snappy"),
        ("library_cpu_s_per_mb", "zstd", "lz4"),
        ("library_cpu_s_per_mb", "snappy", "lz4"),
    }
    tested = set()
    for check in parts:
        contrast = contrasts[check.contrast]
        higher = contrast.numerator.split("-")[1]
        lower = contrast.denominator.split("-")[1]
        tested.add((contrast.metric, higher, lower))
        assert check.threshold == 1.0
        assert f"{higher}/{lower} >= 1" in check.part, check.part
    assert tested == stated and len(parts) == len(stated)
    statements = {c.part.split(":")[0] for c in parts}
    assert {"zstd has the highest ratio", "lz4 has the lowest CPU"} <= statements


def test_quick_profile_grid_contrasts_and_claims():
    params = S.profiles["quick"]
    assert params["rounds"] >= 6
    variants = S.variants(params)
    names = {v.name for v in variants}
    assert len(names) == len(variants) == 15
    for v in variants:
        assert set(v.params) == {
            "client",
            "payload",
            "compression.type",
            "batch.size",
            "linger.ms",
            RATE,
        }
    # the default client's variants keep the names results and the README refer to
    assert {v.name for v in variants if v.params["client"] == CONFLUENT} == {
        "json-lz4-1KiB-linger5",
        "json-lz4-64KiB-linger5",
        "json-lz4-1MiB-linger5",
        "json-none-64KiB-linger5",
        "json-gzip-64KiB-linger5",
        "json-snappy-64KiB-linger5",
        "json-zstd-64KiB-linger5",
        "json-none-64KiB-linger0",
        "json-none-64KiB-linger50",
        "random-zstd-64KiB-linger5",
        "repetitive-zstd-64KiB-linger5",
        "json-none-64KiB-linger0-open3000",
        "json-none-64KiB-linger5-open3000",
    }
    assert {v.name for v in variants if v.params["client"] == KAFKA_PYTHON} == {
        "kafka-python-json-lz4-1KiB-linger5",
        "kafka-python-json-lz4-1MiB-linger5",
    }
    assert params["clients"][KAFKA_PYTHON]["records"] < params["records"]
    contrasts = {c.name: c for c in S.contrasts(params)}
    for contrast in contrasts.values():
        assert {contrast.numerator, contrast.denominator} <= names
    assert (contrasts["batching"].numerator, contrasts["batching"].denominator) == (
        "json-lz4-1MiB-linger5",
        "json-lz4-1KiB-linger5",
    )
    assert (contrasts["linger"].numerator, contrasts["linger"].denominator) == (
        "json-none-64KiB-linger5",
        "json-none-64KiB-linger0",
    )
    assert (
        contrasts["kafka-python-batching"].numerator,
        contrasts["kafka-python-batching"].denominator,
    ) == ("kafka-python-json-lz4-1MiB-linger5", "kafka-python-json-lz4-1KiB-linger5")
    for size in ("1KiB", "1MiB"):
        across = contrasts[f"confluent-kafka-vs-kafka-python-json-lz4-{size}-linger5"]
        assert (across.numerator, across.denominator) == (
            f"json-lz4-{size}-linger5",
            f"kafka-python-json-lz4-{size}-linger5",
        )
    # linger is decided under load, below saturation: open loop at the stated rate
    for contrast, numerator, denominator in (
        ("linger-open3000-batch", "linger5-open3000", "linger0-open3000"),
        ("linger-open3000-p99", "linger0-open3000", "linger5-open3000"),
    ):
        assert contrasts[contrast].numerator == f"json-none-64KiB-{numerator}"
        assert contrasts[contrast].denominator == f"json-none-64KiB-{denominator}"
    checks = {(c.claim, c.contrast): c.threshold for c in S.claim_checks(params)}
    assert checks[("batching", "batching")] == 5.0
    assert checks[("linger", "linger-open3000-batch")] == 1.0
    assert checks[("linger", "linger-open3000-p99")] == 0.8
    assert ("linger", "linger") not in checks  # closed-loop records/s: a contrast only
    assert len(checks) == 1 + 2 + 11  # the other client adds contrasts, no claim checks


def test_full_profile_is_the_wider_grid():
    quick = {v.name for v in S.variants(S.profiles["quick"])}
    full = {v.name for v in S.variants(S.profiles["full"])}
    assert quick <= full
    # two sweeps sharing linger.ms 5, then kafka-python over the batch.size sweep
    # and linger.ms 0, 5, 20 in open loop at two offered rates
    assert len(full) == 5 * 5 * 3 + 3 * 5 * 2 - 3 * 2 + 5 + 3 * 2
    contrasts = {c.name for c in S.contrasts(S.profiles["full"])}
    assert "kafka-python-batching" in contrasts
    assert sum(c.startswith("confluent-kafka-vs-kafka-python-") for c in contrasts) == 5


def test_a_client_left_out_leaves_out_its_variants_and_contrasts():
    params = copy.deepcopy(dict(S.profiles["quick"]))
    del params["clients"][KAFKA_PYTHON]
    names = {v.name for v in S.variants(params)}
    assert len(names) == 13 and not any(n.startswith("kafka-python-") for n in names)
    assert not any("kafka-python" in c.name for c in S.contrasts(params))
    assert set(DRIVERS) == {CONFLUENT, KAFKA_PYTHON}
    assert all(driver.unavailable() is None for driver in DRIVERS.values())


def test_without_a_broker_the_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params=copy.deepcopy(dict(S.profiles["smoke"])))
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped == "no broker to produce to"


@pytest.mark.parametrize("kind", payloads.PAYLOADS)
def test_payload_values_have_the_asked_sizes_and_no_repeats(kind):
    values = payloads.values(kind, count=3000, low=100, high=300)
    assert len(values) == 3000
    assert all(100 <= len(v) <= 300 for v in values)
    assert len(set(values)) == len(values)  # random ones unique; others carry a sequence number
    if kind == "json":
        for value in values[:200]:
            assert isinstance(json.loads(value), dict)
    assert payloads.values(kind, count=3000) == values  # seeded: the same bytes every run
