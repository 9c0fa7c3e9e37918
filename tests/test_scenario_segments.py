"""segments on the smoke profile: every variant runs, and the physics hold in counts: deleting
whole segments (or punching or collapsing a range) writes no data while a rewrite writes every
kept byte, and every method frees the dropped bytes; each retention pass of the engine removes
exactly the oldest segment; the partition holds one open file per segment, fewer with larger
segment.bytes; after an unclean shutdown every record appended before it is still there and
readable. Behaviour, not speed: no test says which variant is faster."""

import copy
import errno
import math
import os

import pytest

from engine.records import iter_batches
from scenarios.catalog import segments
from scenarios.catalog.registry import SCENARIOS
from scenarios.catalog.segments import (
    DELETE,
    METHODS,
    PUNCH,
    REWRITE,
    REWRITE_OVER_DELETE,
    SEGMENT_BYTES,
    Segments,
    size_token,
)
from scenarios.harness import resources
from scenarios.harness.claims import CLAIMS
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext, Variant

S = Segments()
MIB = 1 << 20


def context(tmp_path, **overrides) -> RunContext:
    work_dir = tmp_path / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    params = copy.deepcopy(dict(S.profiles["smoke"]))
    return RunContext(work_dir=str(work_dir), params=params, **overrides)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    ctx = context(tmp_path_factory.mktemp("segments"))
    return ctx, run_scenario(S, ctx, "smoke")


def samples_of(result, name: str) -> list:
    return [s for s in result.samples if s.variant == name]


def test_smoke_runs_every_variant_every_round(smoke):
    ctx, result = smoke
    assert result.skipped is None and result.error is None, result.error
    params = ctx.params
    # a filesystem may refuse punch-hole or collapse-range (tmpfs: collapse), never the others
    assert {DELETE, REWRITE} <= set(params["raw_methods"])
    assert all(
        f"{m} (" in " ".join(result.notes) for m in set(METHODS) - set(params["raw_methods"])
    )
    expected = [f"raw-{m}" for m in METHODS if m in params["raw_methods"]] + [
        f"log-{size_token(size)}" for size in params["segment_sizes"]
    ]
    assert [v["name"] for v in result.variants] == expected
    for name in expected:
        assert [s.round for s in samples_of(result, name)] == [-1, *range(params["rounds"])]
    for sample in result.samples:
        for metric, value in sample.values.items():
            assert math.isfinite(value) and value >= 0, (sample.variant, metric, value)
        timed = "cleanup_ms" if sample.variant.startswith("raw") else "recovery_ms"
        assert sample.values[timed] > 0, sample
    assert not os.path.exists(ctx.state["root"])  # everything it wrote is gone


def test_only_a_rewrite_writes_data_and_every_method_frees_the_dropped_bytes(smoke):
    ctx, result = smoke
    params = ctx.params
    kept, drop = params["raw_log_bytes"], params["raw_drop_bytes"]
    passes = (params["rounds"] + 1) * params["passes"]
    for method in params["raw_methods"]:
        layout = ctx.state["raw"][method]
        assert len(layout.passes) == passes
        # the log starts with the oldest block kept: every pass dropped exactly drop bytes
        assert layout.first * MIB == passes * drop and (layout.end - layout.first) * MIB == kept
        for i, (written, allocated, length) in enumerate(layout.passes):
            assert written == (kept if method == REWRITE else 0), (method, written)
            # the dropped bytes no longer take space: not the segments' files, not the holes
            assert kept <= allocated < kept + drop, (method, allocated)
            # a punched file keeps its length (positions stay valid); the others hold what is kept
            assert length == (kept + (i + 1) * drop if method == PUNCH else kept), (method, i)
        for sample in samples_of(result, f"raw-{method}"):
            assert sample.values["written_mib"] == (kept / MIB if method == REWRITE else 0.0)


def test_retention_removes_exactly_the_oldest_segment_each_pass(smoke):
    ctx, _ = smoke
    records = ctx.params["records_per_batch"]
    for size in ctx.params["segment_sizes"]:
        entry = ctx.state["logs"][size]
        cycles = entry.cycles
        assert len(cycles) == ctx.params["rounds"] + 1
        deleted = [c["deleted"] for c in cycles]
        # one whole segment (per_segment batches) a pass, oldest first, none skipped
        step = entry.per_segment * records
        assert deleted == [deleted[0] + i * step for i in range(len(deleted))], (size, deleted)
        assert len({c["segments"] for c in cycles}) == 1  # the log stays as long as retention
        assert entry.config.retention_bytes >= 0


def test_open_files_fall_with_larger_segments(smoke):
    ctx, result = smoke
    sizes = sorted(ctx.params["segment_sizes"])
    held = []
    for size in sizes:
        cycles = ctx.state["logs"][size].cycles
        # one open .log per segment, once every segment was read
        assert {c["open_files"] for c in cycles} == {cycles[0]["segments"]}, size
        held.append(cycles[0]["open_files"])
        for sample in samples_of(result, f"log-{size_token(size)}"):
            assert sample.values["open_files"] == cycles[0]["segments"]
    assert held == sorted(held, reverse=True) and held[0] > held[-1], held


def test_recovery_keeps_every_record_and_rereads_the_active_segment(smoke):
    ctx, result = smoke
    recovered = []
    for size in sorted(ctx.params["segment_sizes"]):
        entry = ctx.state["logs"][size]
        for cycle in entry.cycles:
            # from the new log start to the end before the crash, every batch is there
            held = (cycle["segments"] - 1) * entry.per_segment + entry.half
            assert cycle["batches"] == held, (size, cycle)
            assert cycle["active_bytes"] == entry.half * len(entry.batch)
        values = {s.values["recovered_mib"] for s in samples_of(result, f"log-{size_token(size)}")}
        assert values == {entry.half * len(entry.batch) / MIB}
        recovered.append(values.pop())
    assert recovered == sorted(recovered) and recovered[0] < recovered[-1]


def test_every_record_appended_before_an_unclean_shutdown_is_readable(tmp_path):
    # one cycle of the smallest log (roll, retention, two crashes, a clean restart), then every
    # record read back from the recovered log
    ctx = context(tmp_path)
    ctx.params.update(raw_methods=[DELETE], segment_sizes=[256 << 10])
    S.setup(ctx)
    try:
        entry = ctx.state["logs"][256 << 10]
        S.measure(ctx, Variant("log-256KiB", {"part": "log", SEGMENT_BYTES: 256 << 10}))
        log = entry.log
        offsets = []
        for file_slice in log.read(log.log_start_offset, 1 << 30).slices:
            for batch in iter_batches(file_slice.read()):
                assert batch.is_valid()  # CRC-32C
                offsets += range(batch.base_offset, batch.base_offset + batch.record_count)
        assert offsets == list(range(log.log_start_offset, entry.cycles[0]["end"]))
        assert (
            log.log_start_offset
            == entry.cycles[0]["deleted"] + entry.per_segment * ctx.params["records_per_batch"]
        )
    finally:
        S.teardown(ctx)


def test_without_the_engine_fallocate_or_eviction_the_parts_left_out_are_named(
    tmp_path, monkeypatch
):
    def refused(fd: int, mode: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(segments, "fallocate", refused)
    ctx = context(tmp_path, engine=False)
    ctx.params.update(rounds=1, passes=1)
    result = run_scenario(S, ctx, "smoke")
    assert result.error is None, result.error
    assert any("log part left out" in note for note in result.notes), result.notes
    assert any("punch-hole" in n and "collapse-range" in n for n in result.notes), result.notes
    assert [v["name"] for v in result.variants] == ["raw-delete-segments", "raw-rewrite"]
    assert [c["name"] for c in result.contrasts] == [REWRITE_OVER_DELETE]
    assert [c["id"] for c in result.claims] == ["segments"]  # the raw part still decides it

    # the page cache keeps every file (tmpfs): recovery is measured hot only
    monkeypatch.setattr(resources, "evict_from_page_cache", lambda path: None)
    ctx = context(tmp_path / "cold")
    ctx.params.update(raw_methods=[DELETE, REWRITE], rounds=1, passes=1)
    result = run_scenario(S, ctx, "smoke")
    assert result.error is None, result.error
    assert any("cold recovery left out" in note for note in result.notes), result.notes
    assert result.params["cold_recovery"] is False
    assert all("recovery_cold_ms" not in s.values for s in result.samples)
    assert not any(c["name"].startswith("recovery-cold") for c in result.contrasts)


def test_claims_contrasts_and_charts_of_the_quick_profile():
    order = list(SCENARIOS)
    assert order.index(S.name) > order.index("async-send")  # a second-wave scenario, after it
    params = copy.deepcopy(dict(S.profiles["quick"]))
    names = {v.name for v in S.variants(params)}
    metrics = {m.name for m in S.metrics}
    contrasts = {c.name: c for c in S.contrasts(params)}
    for contrast in contrasts.values():
        assert {contrast.numerator, contrast.denominator} <= names, contrast
        assert contrast.metric in metrics
    assert contrasts[REWRITE_OVER_DELETE].numerator == "raw-rewrite"
    assert contrasts[REWRITE_OVER_DELETE].denominator == "raw-delete-segments"
    assert "recovery-64MiB-over-1MiB" in contrasts and "open-files-64MiB-over-1MiB" in contrasts
    checks = S.claim_checks(params)
    assert [(c.claim, c.contrast, c.threshold) for c in checks] == [
        ("segments", REWRITE_OVER_DELETE, 10.0)
    ]
    assert all(c.part for c in checks) and CLAIMS["segments"].scenario == S.name
    for chart in S.charts:
        assert chart.x == SEGMENT_BYTES and chart.x_is_bytes and set(chart.metrics) <= metrics
    # full measures more of everything; quick keeps 8x what a pass drops, full 16x
    full = S.profiles["full"]
    assert len(full["segment_sizes"]) > len(params["segment_sizes"])
    assert min(full["segment_sizes"]) == min(params["segment_sizes"])
    assert max(full["segment_sizes"]) == 1 << 30 > max(params["segment_sizes"])
    assert params["raw_log_bytes"] == 8 * params["raw_drop_bytes"]
    assert full["raw_log_bytes"] == 16 * full["raw_drop_bytes"]
    assert full["rounds"] > params["rounds"] >= 6
