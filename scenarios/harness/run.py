"""`kbench run`: the main job. Start a broker (or use --bootstrap), run the scenarios with a
progress bar, print a summary of the headline ratios and claim verdicts, write the results file."""

import copy
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import TextIO

from tqdm import tqdm

from scenarios.clients.cluster import ClusterError, delete_topics, probe
from scenarios.clients.local_broker import LocalBroker
from scenarios.harness import results
from scenarios.harness.claims import overall_verdict
from scenarios.harness.environment import capture_environment
from scenarios.harness.runner import (
    Interrupted,
    expected_seconds,
    planned_measurements,
    run_scenario,
)
from scenarios.harness.scenario import RunContext, Scenario
from scenarios.harness.stats import Comparison, format_interval


class RunError(Exception):
    """The run cannot start or go on; the message is one line for the user."""


class RunInterrupted(Exception):
    """Ctrl-C: `path` is the results file holding what was measured before it (None if nothing
    was)."""

    def __init__(self, path: str | None) -> None:
        super().__init__(path)
        self.path = path


def run(
    scenarios: Sequence[Scenario],
    profile: str,
    data_dir: str | None,
    bootstrap: str | None,
    reports_dir: str,
    argv: list[str],
    out: TextIO = sys.stdout,
    *,
    keep_topics: bool = False,
) -> str:
    """Run the scenarios, in this order; returns the results file's path.

    The results file is rewritten as each scenario finishes, so a failure or Ctrl-C later keeps
    what was measured. Every topic a scenario creates carries the run's prefix and is deleted
    when the scenario ends, however it ends, unless keep_topics."""
    if bootstrap is not None:  # once, before anything is measured
        try:
            probe(bootstrap)
        except ClusterError as exc:
            raise RunError(f"--bootstrap: {exc}") from None
    temporary = data_dir is None
    root = tempfile.mkdtemp(prefix="kbench-") if data_dir is None else os.path.abspath(data_dir)
    environment = capture_environment(root)
    for warning in environment["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    broker = None
    path = None
    try:
        if bootstrap is None:
            try:
                broker = LocalBroker(os.path.join(root, "broker")).start()
            except RuntimeError as exc:
                raise RunError(str(exc)) from None
            target_bootstrap = broker.bootstrap
        else:
            target_bootstrap = bootstrap
        target = {"kind": "external" if broker is None else "engine", "bootstrap": target_bootstrap}
        document = results.new_run(profile, argv, target, environment)
        prefix = f"kbench-{document['run_id']}-"
        if broker is None:
            _announce(scenarios, profile, prefix, target_bootstrap, keep_topics, out)
        # the bar counts expected seconds, not measurements: a page-cache measurement takes a
        # fifth of a second, a zero-copy one a second, and the ETA must hold across them
        expected = {s.name: expected_seconds(s, profile) for s in scenarios}
        with tqdm(
            total=round(sum(expected.values())),
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format="{desc}{percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            smoothing=0,  # the ETA from the pace of the whole run so far, not the last second's
        ) as bar:
            done = 0.0
            for scenario in scenarios:
                bar.set_description(scenario.name)
                weight = expected[scenario.name] / planned_measurements(scenario, profile)
                work_dir = os.path.join(root, scenario.name)
                os.makedirs(work_dir, exist_ok=True)
                ctx = RunContext(
                    work_dir=work_dir,
                    params=copy.deepcopy(dict(scenario.profiles[profile])),
                    bootstrap=target_bootstrap,
                    broker_pid=None if broker is None else broker.pid,
                    engine=broker is not None,
                    topic_prefix=prefix,
                )

                def advance(measurements: int, weight: float = weight) -> None:
                    bar.update(measurements * weight)

                try:
                    result = run_scenario(scenario, ctx, profile, advance)
                except Interrupted as interrupted:
                    document["scenarios"].append(interrupted.result.as_dict())
                    path = results.write(document, reports_dir)
                    raise
                finally:
                    if not keep_topics:
                        _delete_topics(target_bootstrap, prefix)
                    shutil.rmtree(work_dir, ignore_errors=True)
                done += expected[scenario.name]
                bar.update(done - bar.n)  # rounding: the bar ends each scenario where planned
                document["scenarios"].append(result.as_dict())
                path = results.write(document, reports_dir)
    except (KeyboardInterrupt, Interrupted):
        raise RunInterrupted(path) from None
    finally:
        if broker is not None:
            broker.stop()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    assert path is not None  # written after every scenario, and there is at least one
    print_summary(document, out)
    print(f"\nresults: {path}", file=out)
    from scenarios.reporting.report import write_report  # matplotlib is imported only here

    print(f"report: {write_report([path], reports_dir)[0]}", file=out)
    return path


def _announce(
    scenarios: Sequence[Scenario],
    profile: str,
    prefix: str,
    bootstrap: str,
    keep_topics: bool,
    out: TextIO,
) -> None:
    """Say what the run will write to a cluster that is not kbench's own, before it does."""
    writes = [w for s in scenarios for w in s.cluster_writes(s.profiles[profile])]
    if not writes:
        print(f"nothing will be written to {bootstrap}", file=out)
        return
    total = sum(w.bytes for w in writes)
    print(f"this run will produce about {total / 1e6:,.0f} MB to {bootstrap}, to topics:", file=out)
    for write in writes:
        print(
            f"  {prefix}{write.topic}: {write.partitions} partition"
            f"{'s' if write.partitions != 1 else ''}, about {write.bytes / 1e6:,.0f} MB",
            file=out,
        )
    if keep_topics:
        print("they are kept afterwards (--keep-topics)", file=out)
    else:
        print("each is deleted when its scenario ends (--keep-topics keeps them)", file=out)
    out.flush()


def _delete_topics(bootstrap: str, prefix: str) -> None:
    try:
        delete_topics(bootstrap, prefix)
    except ClusterError as exc:  # the results still count; the user must know what is left
        print(f"warning: topics {prefix}* may be left on {bootstrap}: {exc}", file=sys.stderr)


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
            # which variant is better; a level a claim quotes (10 ms) is no variant: its
            # verdict below says on which side the variant lies
            variants = {v["name"] for v in scenario["variants"]}
            sides = {contrast["numerator"], contrast["denominator"]}
            tag = f" [{contrast['direction']}]" if sides <= variants else ""
            print(f"  {contrast['label']}: {interval}{tag}", file=out)
        by_claim: dict[str, list[dict]] = {}
        for check in scenario["claims"]:
            by_claim.setdefault(check["id"], []).append(check)
        for claim_id, checks in by_claim.items():
            verdict, wording = overall_verdict(checks)
            wording = wording.replace(verdict, verdict.upper(), 1)
            if len(checks) == 1:
                print(f"  claim {claim_id}: {wording}; {checks[0]['rule']}", file=out)
                continue
            print(f"  claim {claim_id}: {wording}", file=out)
            for check in checks:
                part = check.get("part") or check["contrast"]
                wording = check.get("wording") or check["verdict"]
                print(f"    {part}: {wording}; {check['rule']}", file=out)
