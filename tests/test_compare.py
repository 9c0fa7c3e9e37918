"""`kbench compare`: gates a change on a planted regression, passes identical runs."""

import json
import os
import re

import pytest


@pytest.fixture
def smoke_results(tmp_path) -> str:
    """disk-write-pattern of a real `kbench run --profile smoke`, checked in (the other
    scenarios left out: compare bootstraps every metric, and one scenario is enough here)."""
    with open(os.path.join(os.path.dirname(__file__), "data", "report-smoke-1.json")) as f:
        document = json.load(f)
    document["scenarios"] = document["scenarios"][:1]
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps(document))
    return str(path)


def planted(path: str, tmp_path, variant: str, metric: str, factor: float) -> str:
    with open(path) as f:
        document = json.load(f)
    for sample in document["scenarios"][0]["samples"]:
        if sample["variant"] == variant:
            sample["values"][metric] *= factor
    changed = tmp_path / f"{variant}-{factor}.json"
    changed.write_text(json.dumps(document))
    return str(changed)


def test_identical_runs_pass(smoke_results, run_kbench):
    completed = run_kbench("compare", smoke_results, smoke_results)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 regressed" in completed.stdout


def test_a_planted_regression_fails_the_gate(smoke_results, tmp_path, run_kbench):
    slower = planted(smoke_results, tmp_path, "sequential-buffered-4 KiB", "mb_per_s", 0.5)
    completed = run_kbench("compare", smoke_results, slower, "--threshold", "0.2")
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    [line] = [x for x in lines if "regressed" in x and "4 KiB mb_per_s" in x]
    assert line.startswith("disk-write-pattern sequential-buffered-4 KiB mb_per_s")
    assert "B/A 0.500x" in line
    assert "1 regressed" in completed.stdout


def test_lower_is_better_metrics_regress_upwards(smoke_results, tmp_path, run_kbench):
    improved = planted(smoke_results, tmp_path, "random-fsync-4 KiB", "p99_write_us", 0.3)
    completed = run_kbench("compare", smoke_results, improved)
    assert completed.returncode == 0
    assert re.search(r"random-fsync-4 KiB p99_write_us .* improved", completed.stdout)
    slower = planted(smoke_results, tmp_path, "random-fsync-4 KiB", "p99_write_us", 3.0)
    assert run_kbench("compare", smoke_results, slower).returncode == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--threshold", "1.5"], "--threshold must be a fraction"),
        (["--threshold", "x"], "invalid float value"),
    ],
)
def test_wrong_compare_arguments_say_what_was_expected(smoke_results, run_kbench, args, expected):
    completed = run_kbench("compare", smoke_results, smoke_results, *args)
    assert completed.returncode == 2 and expected in completed.stderr


def test_a_file_that_is_not_results_is_refused(tmp_path, run_kbench):
    stray = tmp_path / "stray.json"
    stray.write_text('{"hello": 1}')
    completed = run_kbench("compare", str(stray), str(stray))
    assert completed.returncode == 2 and "not a kbench results file" in completed.stderr


def _edited(path: str, tmp_path, name: str, edit) -> str:
    with open(path) as f:
        document = json.load(f)
    edit(document)
    changed = tmp_path / f"{name}.json"
    changed.write_text(json.dumps(document))
    return str(changed)


def test_unlike_runs_are_named_and_strict_refuses_them(smoke_results, tmp_path, run_kbench):
    def unlike(document: dict) -> None:
        document["environment"]["cpu"]["model"] = "Another CPU"
        document["environment"]["packages"]["kbench"] = "9.9.9"
        document["scenarios"][0]["params"]["rounds"] += 1

    other = _edited(smoke_results, tmp_path, "unlike", unlike)
    completed = run_kbench("compare", smoke_results, other)
    assert completed.returncode == 0, completed.stderr
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("warning:")]
    assert any("CPU: " in w and "vs Another CPU" in w for w in warnings), warnings
    assert any("kbench version: " in w and "vs 9.9.9" in w for w in warnings), warnings
    assert any("disk-write-pattern parameter rounds: 2 vs 3" in w for w in warnings), warnings
    strict = run_kbench("compare", smoke_results, other, "--strict")
    assert strict.returncode == 2
    [line] = strict.stderr.strip().splitlines()
    assert line.startswith("kbench compare: error: the runs differ in ") and "9.9.9" in line
    same = run_kbench("compare", smoke_results, smoke_results, "--strict")
    assert same.returncode == 0 and "warning" not in same.stderr


def test_what_only_one_run_has_is_listed(smoke_results, tmp_path, run_kbench):
    gone = "random-fsync-4 KiB"

    def fewer(document: dict) -> None:
        scenario = document["scenarios"][0]
        scenario["samples"] = [s for s in scenario["samples"] if s["variant"] != gone]
        for sample in scenario["samples"]:
            if sample["variant"] == "sequential-buffered-4 KiB":
                sample["values"]["new_metric"] = 1.0

    other = _edited(smoke_results, tmp_path, "fewer", fewer)
    completed = run_kbench("compare", smoke_results, other)
    assert completed.returncode == 0, completed.stderr
    listed = [line for line in completed.stderr.splitlines() if line.startswith("not compared:")]
    assert f"not compared: disk-write-pattern variant {gone}: only in A" in listed
    assert (
        "not compared: disk-write-pattern sequential-buffered-4 KiB new_metric: only in B" in listed
    )
    assert f"disk-write-pattern {gone} " not in completed.stdout
