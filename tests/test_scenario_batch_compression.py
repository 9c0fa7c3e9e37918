"""batch-compression: real producers (confluent-kafka, kafka-python) against the engine broker,
smoke sizes.

Behaviour, not timing: every record delivered and stored by either client, the codecs shrink
what can be shrunk and not what cannot, batch.size bounds the batches, every metric is a
positive finite number, and the grid, contrasts and claim checks name what they say.
"""

import copy
import json
import math

import pytest

from scenarios import payloads
from scenarios.batch_compression import CONFLUENT, DRIVERS, KAFKA_PYTHON, BatchCompression
from scenarios.local_broker import LocalBroker
from scenarios.runner import run_scenario
from scenarios.scenario import RunContext

pytest.importorskip("confluent_kafka")

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
        )
        result = run_scenario(S, ctx, "smoke")
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
    records = S.profiles["smoke"]["records"]
    for entry in deliveries:
        assert entry["errors"] == 0, entry
        assert entry["produced"] == entry["delivered"] == entry["stored"] == records, entry
        assert 1 <= entry["batches"] <= records


def test_every_metric_is_positive_and_finite(smoke):
    result, _ = smoke
    metrics = {m.name for m in S.metrics}
    for sample in result.samples:
        assert set(sample.values) == metrics
        for name, value in sample.values.items():
            assert math.isfinite(value) and value > 0, (sample.variant, name, value)
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
    claims = [(c["id"], c["contrast"], c["threshold"]) for c in result.claims]
    assert claims == [
        ("batching", "batching", 5.0),
        ("linger", "linger", 1.0),
        ("compression-tradeoff", "ratio-zstd-vs-lz4", 1.0),
        ("compression-tradeoff", "cpu-gzip-vs-lz4", 1.0),
    ]
    assert all(c["verdict"] == "inconclusive" for c in result.claims)  # 2 rounds: too few
    assert "single-producer" not in {c["id"] for c in result.claims}


def test_quick_profile_grid_contrasts_and_claims():
    params = S.profiles["quick"]
    assert params["rounds"] >= 6
    variants = S.variants(params)
    names = {v.name for v in variants}
    assert len(names) == len(variants) == 13
    for v in variants:
        assert set(v.params) == {"client", "payload", "compression.type", "batch.size", "linger.ms"}
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
    checks = {(c.claim, c.contrast): c.threshold for c in S.claim_checks(params)}
    assert checks[("batching", "batching")] == 5.0
    assert checks[("linger", "linger")] == 1.0
    assert len(checks) == 4  # the other client adds contrasts, no claim checks


def test_full_profile_is_the_wider_grid():
    quick = {v.name for v in S.variants(S.profiles["quick"])}
    full = {v.name for v in S.variants(S.profiles["full"])}
    assert quick <= full
    # two sweeps sharing linger.ms 5, then kafka-python over the batch.size sweep
    assert len(full) == 5 * 5 * 3 + 3 * 5 * 2 - 3 * 2 + 5
    contrasts = {c.name for c in S.contrasts(S.profiles["full"])}
    assert "kafka-python-batching" in contrasts
    assert sum(c.startswith("confluent-kafka-vs-kafka-python-") for c in contrasts) == 5


def test_a_client_left_out_leaves_out_its_variants_and_contrasts():
    params = copy.deepcopy(dict(S.profiles["quick"]))
    del params["clients"][KAFKA_PYTHON]
    names = {v.name for v in S.variants(params)}
    assert len(names) == 11 and not any(n.startswith("kafka-python-") for n in names)
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
