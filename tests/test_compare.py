"""`kbench compare`: gates a change on a planted regression, passes identical runs."""

import json
import re
import subprocess

import pytest

from tests.conftest import KBENCH


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):

    reports = tmp_path_factory.mktemp("reports")
    completed = subprocess.run(
        [KBENCH, "run", "disk-write-pattern", "--profile", "smoke", "--reports", str(reports)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return re.search(r"results: (\S+\.json)", completed.stdout).group(1)


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
    improved = planted(smoke_results, tmp_path, "random-fsync-4 KiB", "p99_write_us", 0.5)
    completed = run_kbench("compare", smoke_results, improved)
    assert completed.returncode == 0
    assert re.search(r"random-fsync-4 KiB p99_write_us .* improved", completed.stdout)
    slower = planted(smoke_results, tmp_path, "random-fsync-4 KiB", "p99_write_us", 2.0)
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
