"""The asv suite (benchmarks/): `asv check` passes, and asv discovers every benchmark with its unit.

Nothing is timed here: asv imports the suite and checks its benchmarks' signatures only.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("asv") is None,
    reason="asv is not installed (python3 -m pip install asv)",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# every benchmark of the suite and its unit; all costs, lower is better
EXPECTED = {
    "records.BatchValidation.track_crc_parse_patch_seconds_per_gib": "seconds/GiB",
    "records.ProduceRequestDecode.time_decode_produce_request": "seconds",
    "storage.LogAppend.track_seconds_per_gib_append": "seconds/GiB",
    "storage.LogAppend.track_append_over_plain_write_time": "ratio",
    "storage.OffsetIndexLookup.time_offset_index_lookup": "seconds",
    "storage.LogRead.time_log_read_1mib": "seconds",
    "disk.WritePattern.track_random_over_sequential_write_time": "ratio",
    "disk.WritePattern.track_fsync_over_buffered_write_time": "ratio",
    "zero_copy.RawTransfer.track_copy_over_sendfile_cpu": "ratio",
    "broker.ProduceAndFetch.track_broker_us_per_produce_request": "us/request",
    "broker.ProduceAndFetch.track_broker_us_per_fetch_request": "us/request",
    "broker.ProduceAndFetch.track_cpu_seconds_per_gib_produce": "CPU-seconds/GiB",
    "broker.ProduceAndFetch.track_cpu_seconds_per_gib_fetch": "CPU-seconds/GiB",
    "bare_ratios.VersusBare.track_ingest_time_over_bare": "ratio",
    "bare_ratios.VersusBare.track_fetch_time_over_bare": "ratio",
}


def test_asv_check_passes():
    completed = subprocess.run(
        [sys.executable, "-m", "asv", "check", "--python=same"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "No problems found" in output, output


def test_asv_discovers_every_benchmark_with_its_unit(tmp_path):
    """The discovery `asv check` and `asv run` start with (asv's own `discover` command)."""
    listing = tmp_path / "benchmarks.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "asv.benchmark",
            "discover",
            os.path.join(ROOT, "benchmarks"),
            str(listing),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    discovered = {b["name"]: b["unit"] for b in json.loads(listing.read_text())}
    assert discovered == EXPECTED
