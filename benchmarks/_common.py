"""Shared pieces of the asv suite: sizes, record batches, medians, scenario runs."""

import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

import psutil

from engine.records import SimpleRecord, build_batch
from scenarios.harness.resources import cpu_seconds
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext, Scenario

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
BATCH_BYTES = 16 * KIB
ROUNDS = 15  # interleaved rounds per figure after a warm-up round; figures are their medians


def batches(total_bytes: int, batch_bytes: int = BATCH_BYTES) -> bytearray:
    """total_bytes of identical uncompressed batches of exactly batch_bytes, 16 records each."""
    unpadded = len(build_batch([SimpleRecord(bytes(1000), key=b"key")] * 16))
    values = [os.urandom(1000) for _ in range(16)]
    values[0] += os.urandom(batch_bytes - unpadded)  # (varint lengths: same size up to 8 KiB)
    batch = build_batch([SimpleRecord(v, key=b"key") for v in values])
    if len(batch) != batch_bytes:
        raise ValueError(f"a batch of {len(batch)} bytes, not {batch_bytes}")
    return batch * (total_bytes // batch_bytes)


def median(values: list[float]) -> float:
    return statistics.median(values)


def scratch_dir(name: str) -> str:
    """A fresh directory under TMPDIR; the caller removes it."""
    return tempfile.mkdtemp(prefix=f"kbench-asv-{name}-")


def process_cpu_seconds(pid: int) -> float:
    """A process's CPU time (user + system): the scheduler's nanoseconds where Linux has them,
    psutil's clock ticks otherwise."""
    seconds = cpu_seconds(pid)
    if seconds is None:
        times = psutil.Process(pid).cpu_times()
        seconds = times.user + times.system
    return seconds


def scenario_ratios(
    scenario: Scenario, params: Mapping[str, Any], contrasts: list[str]
) -> dict[str, float]:
    """Run a scenario with these parameters through kbench's own runner (warm-up, variants
    interleaved over rounds) and return the named contrasts' ratios: medians of per-round
    ratios, exactly as `kbench run` reports them."""
    work_dir = scratch_dir(scenario.name)
    try:
        ctx = RunContext(work_dir=work_dir, params=dict(params))
        # the profile name only sizes the runner's progress count; the parameters are ours
        result = run_scenario(scenario, ctx, "smoke")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if result.skipped is not None or result.error is not None:
        raise RuntimeError(f"{scenario.name}: {result.skipped or result.error}")
    for note in result.notes:
        print(f"{scenario.name}: {note}", file=sys.stderr)
    found = {c["name"]: c["comparison"]["ratio"] for c in result.contrasts}
    return {name: found[name] for name in contrasts}
