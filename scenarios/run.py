"""`kbench run`: the main job. Start a broker (or use --bootstrap), run the scenarios with a
progress bar, print a summary of the headline ratios and claim verdicts, write the results file."""

import copy
import os
import shutil
import sys
import tempfile
from typing import TextIO

from tqdm import tqdm

from scenarios import results
from scenarios.environment import capture_environment
from scenarios.local_broker import LocalBroker
from scenarios.registry import SCENARIOS
from scenarios.runner import planned_measurements, run_scenario
from scenarios.scenario import RunContext
from scenarios.stats import Comparison, format_interval


def run(
    names: list[str],
    profile: str,
    data_dir: str | None,
    bootstrap: str | None,
    reports_dir: str,
    argv: list[str],
    out: TextIO = sys.stdout,
) -> str:
    """Run the named scenarios (all when empty); returns the results file's path."""
    scenarios = [SCENARIOS[name] for name in names] if names else list(SCENARIOS.values())
    temporary = data_dir is None
    data_dir = tempfile.mkdtemp(prefix="kbench-") if temporary else os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    environment = capture_environment(data_dir)
    for warning in environment["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    broker = None
    try:
        if bootstrap is None:
            broker = LocalBroker(os.path.join(data_dir, "broker")).start()
        target = {
            "kind": "external" if broker is None else "engine",
            "bootstrap": bootstrap or broker.bootstrap,
        }
        document = results.new_run(profile, argv, target, environment)
        total = sum(planned_measurements(s, profile) for s in scenarios)
        with tqdm(total=total, unit="measurement", file=sys.stderr, dynamic_ncols=True) as bar:
            for scenario in scenarios:
                bar.set_description(scenario.name)
                work_dir = os.path.join(data_dir, scenario.name)
                os.makedirs(work_dir, exist_ok=True)
                ctx = RunContext(
                    work_dir=work_dir,
                    params=copy.deepcopy(dict(scenario.profiles[profile])),
                    bootstrap=target["bootstrap"],
                    broker_pid=None if broker is None else broker.pid,
                    engine=broker is not None,
                )
                result = run_scenario(scenario, ctx, profile, bar.update)
                document["scenarios"].append(result.as_dict())
                shutil.rmtree(work_dir, ignore_errors=True)
    finally:
        if broker is not None:
            broker.stop()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    path = results.write(document, reports_dir)
    print_summary(document, out)
    print(f"\nresults: {path}", file=out)
    from scenarios.report import write_report  # matplotlib is imported only here

    print(f"report: {write_report([path], reports_dir)[0]}", file=out)
    return path


def print_summary(document: dict, out: TextIO) -> None:
    for scenario in document["scenarios"]:
        print(f"\n{scenario['name']}: {scenario['question']}", file=out)
        if scenario["skipped"]:
            print(f"  skipped: {scenario['skipped']}", file=out)
            continue
        if scenario["error"]:
            print(
                f"  FAILED after {len(scenario['samples'])} samples: {scenario['error']}", file=out
            )
            continue
        for note in scenario["notes"]:
            print(f"  note: {note}", file=out)
        for contrast in scenario["contrasts"]:
            c = contrast["comparison"]
            interval = format_interval(
                Comparison(
                    **{k: c[k] for k in ("ratio", "ci_low", "ci_high", "n", "confidence", "paired")}
                )
            )
            print(f"  {contrast['label']}: {interval} [{contrast['direction']}]", file=out)
        for claim in scenario["claims"]:
            print(f"  claim {claim['id']}: {claim['verdict'].upper()} ({claim['rule']})", file=out)
