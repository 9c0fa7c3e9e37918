"""sparse-index on the smoke profile: every variant runs, the page cache is where each variant
says it is, and the index's physics hold, in counts: a denser index is larger, its lookups walk
no more headers than a sparser one's over the same offsets, and without an index every lookup
scans from its segment's start. Behaviour, not speed: no test says which variant is faster."""

import copy
import math
import os

import pytest

from engine.records import SimpleRecord, build_batch
from scenarios.catalog.sparse_index import INTERVAL, NO_INDEX, SparseIndex, interval_token
from scenarios.harness import resources
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = SparseIndex()


def smoke_params(**overrides) -> dict:
    return {**copy.deepcopy(dict(S.profiles["smoke"])), **overrides}


def batch_size(params: dict) -> int:
    """The scenario's batches are all alike: this many bytes each."""
    records = [SimpleRecord(bytes(params["record_size"]))] * params["records_per_batch"]
    return len(build_batch(records, timestamp=1))


def context(tmp_path, **overrides) -> RunContext:
    work_dir = tmp_path / "work"
    work_dir.mkdir(exist_ok=True)
    return RunContext(work_dir=str(work_dir), params=smoke_params(), **overrides)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    ctx = context(tmp_path_factory.mktemp("sparse-index"))
    return ctx, run_scenario(S, ctx, "smoke")


def samples_of(result, name: str) -> list:
    return [s for s in result.samples if s.variant == name]


def test_smoke_runs_every_variant_every_round(smoke):
    ctx, result = smoke
    assert result.skipped is None and result.error is None, result.error
    assert result.notes == []
    params = ctx.params
    intervals, topics = params["intervals"], params["broker_intervals"]
    expected = (
        [f"read-{interval_token(i)}-{s}" for s in ("hot", "cold") for i in intervals]
        + [f"rebuild-{interval_token(i)}" for i in intervals]
        + [f"fetch-{interval_token(i)}-{s}" for s in ("hot", "cold") for i in topics]
    )
    assert [v["name"] for v in result.variants] == expected
    for name in expected:
        assert [s.round for s in samples_of(result, name)] == [-1, *range(params["rounds"])]
    for sample in result.samples:
        for metric, value in sample.values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, metric, value)
        if sample.variant.startswith(("read", "fetch")):
            assert sample.values["read_us"] > 0, sample
    # the scenario's own data is gone; only the broker's log stays for a post-mortem
    root = ctx.state["root"]
    assert not [n for n in os.listdir(root) if n.startswith("raw-")]
    assert not os.path.exists(os.path.join(root, "broker", "data"))


def test_hot_reads_are_served_from_memory_and_cold_reads_from_the_disk(smoke):
    _, result = smoke
    for sample in result.samples:
        if sample.variant.startswith("rebuild"):
            continue
        values = sample.values
        if sample.variant.endswith("-hot"):
            assert values["residency_pct"] == 100.0, sample
            if "disk_kib_per_read" in values:  # a stray page may be re-read under load
                assert values["disk_kib_per_read"] < 4, sample
        elif sample.variant.startswith("read"):
            assert values["residency_pct"] == 0.0, sample
        else:  # a Fetch may find up to 5 % held by the sockets that carried it
            assert values["residency_pct"] <= 5.0, sample
    for sample in result.samples:  # a cold rebuild reads its log from the disk
        if sample.variant.startswith("rebuild"):
            assert sample.values["residency_pct"] == 0.0, sample


def test_a_denser_index_is_larger_and_no_index_adds_nothing(smoke):
    ctx, result = smoke
    intervals = sorted(ctx.params["intervals"])
    per_gb = {
        i: {
            s.values["index_bytes_per_gb"]
            for s in samples_of(result, f"rebuild-{interval_token(i)}")
        }
        for i in intervals
    }
    # the same log rebuilt any number of times gets the same index
    assert all(len(values) == 1 for values in per_gb.values()), per_gb
    sizes = [per_gb[i].pop() for i in intervals]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes
    assert sizes[-1] == 0.0 and intervals[-1] == NO_INDEX
    # 128 B is below the batch size: an 8-byte entry for every batch but each segment's first
    batch = batch_size(ctx.params)
    assert sizes[0] == pytest.approx(8 / batch * 1e9, rel=0.01)
    for sample in result.samples:
        if sample.variant.startswith("rebuild"):
            values = sample.values
            assert values["stored_bytes_per_gb"] == pytest.approx(
                1e9 + values["index_bytes_per_gb"]
            )


def test_denser_lookups_walk_no_more_headers_over_the_same_offsets(smoke):
    ctx, result = smoke
    lookups = ctx.state["lookups"]
    intervals = sorted(ctx.params["intervals"])
    for state in ("hot", "cold"):
        names = [f"read-{interval_token(i)}-{state}" for i in intervals]
        offsets = [[x.offset for x in lookups[name]] for name in names]
        assert all(o == offsets[0] for o in offsets), "every interval reads the same offsets"
        headers = [sum(x.headers for x in lookups[name]) for name in names]
        scanned = [sum(x.scan_bytes for x in lookups[name]) for name in names]
        assert headers == sorted(headers), (state, headers)
        assert scanned == sorted(scanned), (state, scanned)
        assert headers[0] < headers[-1]
        for name in names:  # the metrics are these counts, per read
            for sample in samples_of(result, name):
                assert sample.values["headers_per_lookup"] >= 1


def test_an_index_bounds_the_scan_and_no_index_scans_from_the_segment_start(smoke):
    ctx, _ = smoke
    params = ctx.params
    batch, per_batch = batch_size(params), params["records_per_batch"]
    for interval in params["intervals"]:
        for state in ("hot", "cold"):
            for x in ctx.state["lookups"][f"read-{interval_token(interval)}-{state}"]:
                # every batch holds per_batch offsets and `batch` bytes, so the batch holding
                # an offset is known without the index
                ordinal = (x.offset - x.segment_base) // per_batch
                assert x.batch_position == ordinal * batch, x
                if interval == NO_INDEX:
                    # no entry: the walk starts at the segment's first batch and visits every
                    # header up to the one holding the offset
                    assert x.entry_position == 0 and x.headers == ordinal + 1, x
                else:
                    # an entry is made once more than `interval` bytes went by since the last
                    assert x.scan_bytes <= interval + batch, (interval, x)
                    assert x.headers == x.scan_bytes // batch + 1, x


def test_claims_contrasts_and_charts_of_the_quick_profile():
    params = copy.deepcopy(dict(S.profiles["quick"]))
    names = {v.name for v in S.variants(params)}
    contrasts = {c.name: c for c in S.contrasts(params)}
    for contrast in contrasts.values():
        assert {contrast.numerator, contrast.denominator} <= names, contrast
        assert contrast.metric in {m.name for m in S.metrics}
    checks = S.claim_checks(params)
    assert {c.claim for c in checks} == {"sparse-index"}
    assert CLAIMS["sparse-index"].scenario == S.name
    decided = {c.contrast: c.threshold for c in checks}
    assert decided == {"stored-no-index": 0.99, "read-128B-hot": 0.8, "read-128B-cold": 0.8}
    assert all(c.part for c in checks)
    assert contrasts["read-128B-hot"].denominator == "read-4KiB-hot"
    assert contrasts["stored-no-index"].numerator == "rebuild-no-index"
    for chart in S.charts:  # every chart draws a parameter and metrics the scenario has
        assert chart.x == INTERVAL and set(chart.metrics) <= {m.name for m in S.metrics}
    # full measures more of everything
    full = S.profiles["full"]
    assert set(params["intervals"]) < set(full["intervals"])
    assert full["log_bytes"] > params["log_bytes"] and full["rounds"] > params["rounds"]


def test_without_the_engine_or_eviction_the_parts_left_out_are_named(tmp_path, monkeypatch):
    # the page cache keeps everything (tmpfs): no cold variant; an external cluster: no fetches
    monkeypatch.setattr(resources, "evict_from_page_cache", lambda path: None)
    ctx = context(tmp_path, engine=False)
    ctx.params.update(intervals=[128, 4096, NO_INDEX], rounds=1, reads=4)
    result = run_scenario(S, ctx, "smoke")

    assert result.error is None, result.error
    assert any("cold reads left out" in note for note in result.notes), result.notes
    assert any("fetch part left out" in note for note in result.notes), result.notes
    assert result.params["states"] == ["hot"] and result.params["broker_bytes"] == 0
    assert [v["name"] for v in result.variants] == [
        "read-128B-hot",
        "read-4KiB-hot",
        "read-no-index-hot",
        "rebuild-128B",
        "rebuild-4KiB",
        "rebuild-no-index",
    ]
    assert {v["params"]["state"] for v in result.variants} == {"hot"}
    assert [c["contrast"] for c in result.claims] == ["stored-no-index", "read-128B-hot"]
