"""zero-copy scenario: sendfile and copy brokers serve the same bytes by their own paths.

Behaviour, not timing: the smoke profile's numbers mean nothing, only their shape and the physics
(identical bytes, the right counters, positive metrics, eviction, the engine switch) are checked.
"""

import copy
import math
import os
import subprocess
import sys
import time

import pytest

from scenarios.catalog.zero_copy import ForeignLoad, ZeroCopy, broker_stats
from scenarios.clients.fetch_client import FetchClient
from scenarios.clients.loadgen import BatchProducer
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness.runner import run_scenario
from scenarios.harness.scenario import RunContext

S = ZeroCopy()

_RECORD = {"foreign_cpu", "attempts"}


def _metrics(sample) -> list[tuple[str, float]]:
    return [(k, v) for k, v in sample.values.items() if k not in _RECORD]


@pytest.fixture
def broker(tmp_path):
    os.makedirs(tmp_path / "main")
    with LocalBroker(str(tmp_path / "main" / "data")) as running:
        yield running


def _context(tmp_path, broker, **overrides) -> RunContext:
    os.makedirs(tmp_path / "work", exist_ok=True)
    return RunContext(
        work_dir=str(tmp_path / "work"),
        params=copy.deepcopy(dict(S.profiles["smoke"])),
        bootstrap=broker.bootstrap,
        broker_pid=broker.pid,
        **overrides,
    )


def test_smoke_run_sendfile_and_copy_serve_identical_bytes_by_their_own_paths(tmp_path, broker):
    ctx = _context(tmp_path, broker)
    result = run_scenario(S, ctx, "smoke")

    assert result.skipped is None and result.notes == []
    sizes = ["64KiB", "1MiB"]
    expected = [f"raw-{p}-{s}" for s in sizes for p in ("sendfile", "copy")] + [
        f"broker-{p}-{s}-{c}" for c in ("hot", "cold") for s in sizes for p in ("sendfile", "copy")
    ]
    assert [v["name"] for v in result.variants] == expected
    rounds = S.profiles["smoke"]["rounds"]
    assert len(result.samples) == (rounds + 1) * len(expected)
    for sample in result.samples:  # every metric measured, positive and finite
        # the metrics, and on record beside them what else ran and how often it was measured
        assert set(sample.values) == {"mb_per_s", "cpu_s_per_gb", "switches_per_gb"} | _RECORD
        assert sample.values["attempts"] == 1 and sample.values["foreign_cpu"] >= 0
        assert all(v > 0 and math.isfinite(v) for k, v in _metrics(sample)), sample
        for role in ("client", "broker", "broker-sendfile", "broker-copy", "receiver"):
            assert role in sample.resources["processes"]

    # the bytes: every fetch loop, from either broker and at every size, returned the same batches
    digests = ctx.state["digests"]
    assert set(digests) == {v for v in expected if v.startswith("broker-")}
    assert len(set(digests.values())) == 1
    # the paths: each broker's own counters saw every fetched byte go its way, none the other
    moved = ctx.state["path_bytes"]
    assert moved["sendfile"]["bytes_sendfile"] > 0 and moved["sendfile"]["bytes_copied"] == 0
    assert moved["copy"]["bytes_copied"] > 0 and moved["copy"]["bytes_sendfile"] == 0
    assert moved["sendfile"]["bytes_sendfile"] == moved["copy"]["bytes_copied"]
    # cold means evicted: next to nothing of the log was in the page cache when a cold loop began
    assert ctx.state["cold_residency"] and max(ctx.state["cold_residency"]) < 0.1

    contrasts = {c["name"]: c for c in result.contrasts}
    assert contrasts["time-raw-1MiB"]["numerator"] == "raw-sendfile-1MiB"
    assert contrasts["cpu-broker-1MiB-hot"]["numerator"] == "broker-copy-1MiB-hot"
    assert contrasts["switches-broker-64KiB-cold"]["denominator"] == "broker-sendfile-64KiB-cold"
    assert len(contrasts) == 3 * (len(sizes) + 2 * len(sizes))
    claims = {c["id"]: c for c in result.claims}
    assert claims["zero-copy-time"]["contrast"] == "time-raw-1MiB"
    assert claims["zero-copy-time"]["threshold"] == 2.16
    assert claims["zero-copy-cpu"]["contrast"] == "cpu-broker-1MiB-hot"
    assert claims["zero-copy-cpu"]["threshold"] == 3.0

    # teardown stopped what setup started and removed the data
    for started in ctx.state["brokers"].values():
        assert started.process.poll() is not None
        assert not os.path.exists(started.data_dir)
    assert ctx.state["receiver"].poll() is not None
    assert not os.path.exists(ctx.state["raw_path"])


def test_without_the_engine_the_broker_part_is_left_out_with_a_note(tmp_path, broker):
    ctx = _context(tmp_path, broker, engine=False)
    result = run_scenario(S, ctx, "smoke")

    assert result.skipped is None
    assert any("zero.copy.enable" in note for note in result.notes)
    assert result.params["broker_bytes"] == 0
    assert result.variants and all(v["name"].startswith("raw-") for v in result.variants)
    assert not any(role.startswith("broker-") for role in ctx.processes)
    assert [c["id"] for c in result.claims] == ["zero-copy-time"]
    assert all(v > 0 and math.isfinite(v) for sample in result.samples for _, v in _metrics(sample))


def test_a_fetch_loop_that_takes_the_wrong_path_stops_the_run(tmp_path, broker):
    ctx = _context(tmp_path, broker)
    ctx.params["raw_bytes"] = 0
    ctx.params["caches"] = ["hot"]
    S.setup(ctx)
    clients = ctx.state["clients"]
    own = clients["sendfile"]
    try:
        clients["sendfile"] = clients["copy"]  # the sendfile variant now fetches from the other
        variant = next(v for v in S.variants(ctx.params) if v.name == "broker-sendfile-1MiB-hot")
        with pytest.raises(RuntimeError, match="counters do not show the sendfile path"):
            S.measure(ctx, variant)
    finally:
        clients["sendfile"] = own
        S.teardown(ctx)


def test_a_sample_repeats_its_transfer_until_sample_seconds_have_passed(
    tmp_path, broker, monkeypatch
):
    ticks = iter(range(0, 10**12, 100_000_000))  # a clock that moves 0.1 s each time it is read
    monkeypatch.setattr("scenarios.catalog.zero_copy._clock", lambda: next(ticks))
    ctx = _context(tmp_path, broker)
    ctx.params.update(fetch_sizes=[1 << 20], sample_seconds=0.25)  # three passes of 0.1 s
    S.setup(ctx)
    try:
        variants = {v.name: v for v in S.variants(ctx.params)}
        raw = S.measure(ctx, variants["raw-copy-1MiB"])
        assert raw["mb_per_s"] == pytest.approx(3 * ctx.params["raw_bytes"] / 0.3 / 1e6)

        log_bytes = ctx.state["log_bytes"]
        hot = S.measure(ctx, variants["broker-sendfile-1MiB-hot"])
        assert ctx.state["path_bytes"]["sendfile"]["bytes_sendfile"] == 3 * log_bytes
        assert hot["mb_per_s"] == pytest.approx(3 * log_bytes / 0.3 / 1e6)

        cold = S.measure(ctx, variants["broker-copy-1MiB-cold"])
        assert ctx.state["path_bytes"]["copy"]["bytes_copied"] == 3 * log_bytes
        assert len(ctx.state["cold_residency"]) == 3  # evicted before every pass
        assert max(ctx.state["cold_residency"]) < 0.1
        assert cold["mb_per_s"] == pytest.approx(3 * log_bytes / 0.3 / 1e6)
        # the bytes of the first pass of each variant are compared, and they agree
        assert set(ctx.state["digests"]) == {"broker-sendfile-1MiB-hot", "broker-copy-1MiB-cold"}
        assert len(set(ctx.state["digests"].values())) == 1
    finally:
        S.teardown(ctx)


def test_a_sample_disturbed_by_another_process_is_measured_again(tmp_path, broker, monkeypatch):
    shares = iter([1.0, 0.5, 0.0])  # the first two attempts shared the machine, the third not

    class Load:
        def __init__(self, ours):
            assert os.getpid() in ours and broker.pid in ours

        def share(self):
            return next(shares)

    monkeypatch.setattr("scenarios.catalog.zero_copy.ForeignLoad", Load)
    monkeypatch.setattr("scenarios.catalog.zero_copy._wait_for_quiet", lambda ours: None)
    ctx = _context(tmp_path, broker)
    ctx.params.update(raw_bytes=0, caches=["hot"], retries=2)
    S.setup(ctx)
    try:
        variant = next(v for v in S.variants(ctx.params) if v.name == "broker-copy-1MiB-hot")
        S.measure(ctx, variant)
        assert ctx.state["retried"] == 2
        assert ctx.state["path_bytes"]["copy"]["bytes_copied"] == 3 * ctx.state["log_bytes"]
    finally:
        S.teardown(ctx)


def test_foreign_load_counts_the_cpu_of_processes_that_are_not_ours():
    load = ForeignLoad({os.getpid()})
    spin = "import time\nwhile time.process_time() < 0.3: pass"
    subprocess.run([sys.executable, "-c", spin], check=True)
    elapsed = time.monotonic() - load.started
    assert load.share() * elapsed >= 0.2  # the child's 0.3 CPU-seconds, to the clock tick


def test_fetch_client_reads_a_partition_to_its_high_watermark(broker):
    producer = BatchProducer(broker.bootstrap)
    try:
        producer.create_topic("fetched", 1)
        produced = producer.produce("fetched", 1, 5 * len(producer.batch))
    finally:
        producer.close()
    client = FetchClient(broker.bootstrap)
    try:
        log = client.read_all("fetched", 0, 65536)  # smaller than a batch: one batch per fetch
    finally:
        client.close()
    assert log.batches == produced.requests == log.requests == 5
    assert log.bytes == log.batch_bytes == produced.bytes
    assert log.next_offset == log.high_watermark == 5 * 600
    assert broker_stats(broker.bootstrap)["bytes_sendfile"] == produced.bytes
