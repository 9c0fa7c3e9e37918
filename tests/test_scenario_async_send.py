"""async-send: real producers (confluent-kafka, kafka-python) against the engine broker, smoke
sizes.

Behaviour, not timing: every variant delivers and stores every record, a synchronous send
never has more than one record in flight, fire-and-forget (acks=0) gets no acknowledged offsets
from confluent-kafka while async (acks=all) gets one for every record, every topic carries the
run's prefix and is deleted, and the variants, contrasts and claim checks name what they say.
No test says which mode is faster.
"""

import copy
import math
import os

import pytest

from scenarios.catalog.async_send import (
    ASYNC,
    ASYNC_OVER_SYNC,
    FIRE_AND_FORGET,
    MODES,
    SYNC,
    AsyncSend,
)
from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.local_broker import LocalBroker
from scenarios.clients.producers import CONFLUENT, KAFKA_PYTHON
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = AsyncSend()
CLIENTS = (CONFLUENT, KAFKA_PYTHON)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run against a fresh engine broker: (result, context)."""
    tmp_path = tmp_path_factory.mktemp("async-send")
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
        ctx.state["topics left"] = set(os.listdir(tmp_path / "data"))
    finally:
        broker.stop()
    return result, ctx


def _deliveries(ctx, client: str, mode: str) -> list[dict]:
    entries = [e for e in ctx.state["deliveries"] if e["variant"] == f"{client}-{mode}"]
    assert entries, (client, mode)
    return entries


def test_smoke_runs_every_variant_every_round(smoke):
    result, _ = smoke
    assert result.skipped is None and result.error is None, result.error
    names = [v["name"] for v in result.variants]
    assert names == [f"{client}-{mode}" for client in CLIENTS for mode in MODES]
    rounds = S.profiles["smoke"]["rounds"] + 1  # and the warm-up
    assert len(result.samples) == rounds * len(names)


def test_every_variant_delivers_and_stores_every_record(smoke):
    result, ctx = smoke
    assert len(ctx.state["deliveries"]) == len(result.samples)
    records = S.profiles["smoke"]["records"]
    for entry in ctx.state["deliveries"]:
        expected = records[entry["client"]][entry["mode"]]
        assert entry["errors"] == 0 and entry["left"] == 0, entry
        assert entry["produced"] == entry["delivered"] == entry["stored"] == expected, entry
        assert entry["latencies"] == expected, entry  # one latency per record


def test_sync_never_has_more_than_one_record_in_flight(smoke):
    _, ctx = smoke
    for client in CLIENTS:
        for entry in _deliveries(ctx, client, SYNC):
            assert entry["max_in_flight"] == 1, entry
        for mode in (ASYNC, FIRE_AND_FORGET):  # the other loops do not count it
            assert all(e["max_in_flight"] is None for e in _deliveries(ctx, client, mode))


def test_fire_and_forget_gets_no_acknowledged_offsets(smoke):
    _, ctx = smoke
    # confluent-kafka: acks=0 reports carry no offset; acks=all reports every one
    for entry in _deliveries(ctx, CONFLUENT, FIRE_AND_FORGET):
        assert entry["unacknowledged"] == entry["produced"], entry
    for client in CLIENTS:  # kafka-python's acks=0 offsets are synthetic: not asserted
        for mode in (SYNC, ASYNC):
            for entry in _deliveries(ctx, client, mode):
                assert entry["unacknowledged"] == 0, entry


def test_every_topic_carries_the_run_prefix_and_is_deleted(smoke):
    _, ctx = smoke
    topics = [entry["topic"] for entry in ctx.state["deliveries"]]
    assert len(set(topics)) == len(topics)  # a fresh topic per measurement
    for topic in topics:
        assert topic.startswith("kbench-testrun-as-"), topic
    assert not {t for t in ctx.state["topics left"] if t.startswith("kbench-testrun-")}


def test_every_metric_is_positive_and_finite(smoke):
    result, _ = smoke
    metrics = {m.name for m in S.metrics}
    for sample in result.samples:
        assert set(sample.values) == metrics, sample.variant
        for name, value in sample.values.items():
            assert math.isfinite(value) and value > 0, (sample.variant, name, value)
        assert sample.values["p50_latency_us"] <= sample.values["p99_latency_us"]


def test_contrasts_and_claim_checks():
    params = S.profiles["quick"]
    contrasts = {c.name: c for c in S.contrasts(params)}
    variants = {v.name for v in S.variants(params)}
    for client in CLIENTS:
        c = contrasts[f"{client}-async-vs-sync"]
        assert (c.numerator, c.denominator) == (f"{client}-async", f"{client}-sync")
        c = contrasts[f"{client}-fire-and-forget-vs-async"]
        assert (c.numerator, c.denominator) == (f"{client}-fire-and-forget", f"{client}-async")
    assert {n for c in contrasts.values() for n in (c.numerator, c.denominator)} <= variants
    checks = S.claim_checks(params)
    assert {c.claim for c in checks} == {"async-send"}
    assert {c.contrast for c in checks} == {f"{client}-async-vs-sync" for client in CLIENTS}
    assert all(c.threshold == ASYNC_OVER_SYNC == 5.0 for c in checks)
    assert CLAIMS["async-send"].scenario == S.name
    assert S.name in SCENARIOS


def test_fire_and_forget_alone_has_acks_0():
    for variant in S.variants(S.profiles["full"]):
        mode = variant.params["mode"]
        assert variant.params["acks"] == ("0" if mode == FIRE_AND_FORGET else "all")


def test_profiles_grow_and_cluster_writes_announce_them():
    for profile in ("smoke", "quick", "full"):
        params = S.profiles[profile]
        (write,) = S.cluster_writes(params)
        assert write.topic.startswith("as-") and write.partitions == 1
    for client in CLIENTS:
        for mode in MODES:
            sizes = [S.profiles[p]["records"][client][mode] for p in ("smoke", "quick", "full")]
            assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_without_a_broker_the_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params=copy.deepcopy(dict(S.profiles["smoke"])))
    result = run_scenario(S, ctx, "smoke")
    assert result.skipped == "no broker to produce to"
