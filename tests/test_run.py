"""`kbench run` and `kbench list` as a user runs them, on the smoke profile."""

import os
import re

import jsonschema
import pytest

from scenarios.catalog.registry import SCENARIOS
from scenarios.clients.cluster import probe
from scenarios.harness import results
from scenarios.harness.runner import expected_seconds
from scenarios.harness.scenario import Bound
from tests.conftest import plain_install_env


def test_the_quick_profiles_declare_their_measured_time_and_fit_thirteen_minutes():
    """The progress bar weighs each scenario's measurements by its quick profile's measured
    duration, and `kbench run`, the README's main job, stays within thirteen minutes on 2 cores:
    sixteen scenarios, each under a minute but three (the first ten fitted ten minutes; the
    cluster scenarios, five of them, and exactly-once added three)."""
    for scenario in SCENARIOS.values():
        assert scenario.quick_seconds > 0, scenario.name
        assert expected_seconds(scenario, "quick") == pytest.approx(scenario.quick_seconds)
    assert sum(s.quick_seconds for s in SCENARIOS.values()) <= 780


def test_disk_write_pattern_compares_every_mode_and_the_broker(tmp_path, run_kbench):
    completed = run_kbench(
        "run", "disk-write-pattern", "--profile", "smoke", "--reports", str(tmp_path)
    )
    assert completed.returncode == 0, completed.stderr
    path = re.search(r"results: (\S+\.json)", completed.stdout).group(1)
    [scenario] = results.load(path)["scenarios"]
    variants = {v["name"] for v in scenario["variants"]}
    assert {"sequential-buffered-4 KiB", "random-fsync-64 KiB", "broker-1-partition"} <= variants
    assert "broker-8-partitions" in variants
    broker_samples = [s for s in scenario["samples"] if s["variant"] == "broker-1-partition"]
    assert all("broker" in s["resources"]["processes"] for s in broker_samples)


def test_every_scenario_writes_a_valid_results_file_and_leaves_no_topic(
    tmp_path, broker, run_kbench
):
    """`kbench run` of every scenario, as after `pip install .` (the main job must be complete
    without the dev extras), against a separate broker: a valid results file with every
    scenario's every round, a report, and no topic left behind. One run serves both checks
    (two cost 4 minutes of the suite's 15); the engine-started path is the disk-write-pattern
    run's below and each scenario's own tests'."""
    completed = run_kbench(
        "run",
        "--profile",
        "smoke",
        "--bootstrap",
        broker.bootstrap,
        "--reports",
        str(tmp_path),
        env=plain_install_env(),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "this run will produce about" in completed.stdout
    path = re.search(r"results: (\S+\.json)", completed.stdout).group(1)
    document = results.load(path)  # validates against the schema
    assert document["target"]["kind"] == "external"
    assert [s["name"] for s in document["scenarios"]] == list(SCENARIOS)
    assert document["environment"]["data_dir"]["fstype"]
    for scenario in document["scenarios"]:
        assert scenario["error"] is None, (scenario["name"], scenario["error"])
        assert scenario["skipped"] is None, scenario["skipped"]
        names = [v["name"] for v in scenario["variants"]]
        rounds = scenario["params"]["rounds"]
        signed = {m["name"] for m in scenario["metrics"] if m["signed"]}
        for name in names:
            own = [s for s in scenario["samples"] if s["variant"] == name]
            assert [s["round"] for s in own] == [-1, *range(rounds)]
            for sample in own:
                # zero is a measurement too: residency after eviction, disk reads on a hit; only
                # a difference of two measurements may be below it
                values = {k: v for k, v in sample["values"].items() if k not in signed}
                assert all(v >= 0 for v in values.values()), (name, sample["values"])
        levels = {  # a contrast's side is a variant or a level a claim quotes
            side.label
            for c in SCENARIOS[scenario["name"]].contrasts(scenario["params"])
            for side in (c.numerator, c.denominator)
            if isinstance(side, Bound)
        }
        for contrast in scenario["contrasts"]:
            assert {contrast["numerator"], contrast["denominator"]} <= set(names) | levels
        for claim in scenario["claims"]:
            assert claim["verdict"] in ("confirmed", "not reproduced", "inconclusive")
    assert "claim seq-write:" in completed.stdout
    report = re.search(r"^report: (\S+\.html)$", completed.stdout, re.MULTILINE).group(1)
    assert os.path.dirname(report) == str(tmp_path)
    with open(report, encoding="utf-8") as f:
        assert document["run_id"] in f.read()
    prefix = f"kbench-{document['run_id']}-"
    announced = re.findall(rf"^  ({prefix}\S+): ", completed.stdout, re.MULTILINE)
    assert f"{prefix}dwp-1" in announced
    assert not [t for t in probe(broker.bootstrap).topics if t.startswith("kbench-")]


def test_keep_topics_keeps_the_runs_topics(tmp_path, broker, run_kbench):
    completed = run_kbench(
        "run",
        "disk-write-pattern",
        "--profile",
        "smoke",
        "--bootstrap",
        broker.bootstrap,
        "--reports",
        str(tmp_path),
        "--keep-topics",
    )
    assert completed.returncode == 0, completed.stderr
    document = results.load(re.search(r"results: (\S+\.json)", completed.stdout).group(1))
    prefix = f"kbench-{document['run_id']}-"
    kept = {t: n for t, n in probe(broker.bootstrap).topics.items() if t.startswith("kbench-")}
    assert kept == {f"{prefix}dwp-1": 1, f"{prefix}dwp-8": 8}


def test_results_that_break_the_schema_are_refused():
    document = results.new_run(
        "quick", ["kbench"], {"kind": "engine", "bootstrap": None}, {"warnings": []}
    )
    results.validate(document)
    document["profile"] = "fastest"
    with pytest.raises(jsonschema.ValidationError):
        results.validate(document)


def test_kbench_list_shows_scenarios_parameters_and_profiles(run_kbench):
    completed = run_kbench("list")
    assert completed.returncode == 0
    for scenario in SCENARIOS.values():
        assert f"{scenario.name}: {scenario.question}" in completed.stdout
        for parameter in scenario.parameters:
            assert f"    {parameter}: " in completed.stdout
    assert "profile quick:" in completed.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-scenario"], "unknown scenario no-such-scenario; expected one of"),
        (["run", "--profile", "fastest"], "invalid choice: 'fastest'"),
        (["run", "--bootstrap", "nohost"], "expected HOST:PORT"),
    ],
)
def test_wrong_run_arguments_say_what_was_expected(run_kbench, args, expected):
    completed = run_kbench(*args)
    assert completed.returncode == 2
    assert expected in completed.stderr
