"""`kbench compare A.json B.json`: every metric two runs share, and whether B got worse.

For each scenario, variant and metric present in both runs: the two medians, the ratio B/A of
the medians with a bootstrap 95 % interval over the two runs' samples (unpaired: the runs were
not interleaved), and a verdict. A metric regressed when the whole interval lies beyond the
threshold on the worse side (below 1 - threshold when higher is better, above 1 + threshold when
lower is better); improved likewise on the better side; otherwise it is within the noise or the
threshold. The exit status gates a change: 1 when anything regressed.

Before the figures: how the two runs differ in what should be held equal (profile, target,
machine, filesystem, kbench's version, each scenario's parameters), since a ratio between unlike
runs measures the difference as much as the change, and what only one run has (scenarios,
variants, metrics), which no ratio covers. The git commit is not among them: comparing commits
is the point.
"""

import statistics
from dataclasses import dataclass
from typing import TextIO

from scenarios.harness.stats import Comparison, compare, format_interval


@dataclass(frozen=True, slots=True)
class MetricChange:
    scenario: str
    variant: str
    metric: str
    unit: str
    better: str
    median_a: float
    median_b: float
    ratio: float
    ci_low: float
    ci_high: float
    verdict: str  # "regressed", "improved", "unchanged"


def _samples(scenario: dict) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = {}
    for sample in scenario["samples"]:
        if sample["warmup"]:
            continue
        for metric, value in sample["values"].items():
            samples.setdefault((sample["variant"], metric), []).append(value)
    return samples


def compare_runs(a: dict, b: dict, threshold: float) -> list[MetricChange]:
    scenarios_b = {s["name"]: s for s in b["scenarios"]}
    changes = []
    for scenario_a in a["scenarios"]:
        scenario_b = scenarios_b.get(scenario_a["name"])
        if scenario_b is None:
            continue
        metrics = {m["name"]: m for m in scenario_a["metrics"]}
        samples_a, samples_b = _samples(scenario_a), _samples(scenario_b)
        for key in sorted(samples_a.keys() & samples_b.keys()):
            variant, metric = key
            before, after = samples_a[key], samples_b[key]
            if key[1] not in metrics or min(len(before), len(after)) < 2:
                continue
            if min(before) <= 0 or min(after) <= 0:
                continue  # a ratio needs positive values (e.g. zero disk reads on a cache hit)
            ratio = compare(after, before, paired=False)
            better = metrics[metric]["better"]
            verdict = "unchanged"
            if better == "higher":
                if ratio.ci_high < 1 - threshold:
                    verdict = "regressed"
                elif ratio.ci_low > 1 + threshold:
                    verdict = "improved"
            else:
                if ratio.ci_low > 1 + threshold:
                    verdict = "regressed"
                elif ratio.ci_high < 1 - threshold:
                    verdict = "improved"
            changes.append(
                MetricChange(
                    scenario_a["name"],
                    variant,
                    metric,
                    metrics[metric]["unit"],
                    better,
                    statistics.median(before),
                    statistics.median(after),
                    ratio.ratio,
                    ratio.ci_low,
                    ratio.ci_high,
                    verdict,
                )
            )
    return changes


def _machine(document: dict) -> dict[str, object]:
    environment = document["environment"]
    cpu = environment.get("cpu", {})
    return {
        "profile": document["profile"],
        "target": document["target"]["kind"],
        "host": environment.get("hostname"),
        "CPU": cpu.get("model"),
        "logical cores": cpu.get("logical_cores"),
        "memory": environment.get("memory", {}).get("total_bytes"),
        "kernel": environment.get("os", {}).get("kernel"),
        "data directory filesystem": environment.get("data_dir", {}).get("fstype"),
        "kbench version": environment.get("packages", {}).get("kbench"),
        "Python": environment.get("python", {}).get("version"),
    }


def differences(a: dict, b: dict) -> list[str]:
    """What two runs differ in that a comparison assumes equal, one line each."""
    found = [
        f"{what}: {before} vs {after}"
        for (what, before), after in zip(_machine(a).items(), _machine(b).values(), strict=True)
        if before != after
    ]
    scenarios_b = {s["name"]: s for s in b["scenarios"]}
    for scenario in a["scenarios"]:
        other = scenarios_b.get(scenario["name"])
        if other is None:
            continue
        for key in sorted(scenario["params"].keys() | other["params"].keys()):
            before, after = scenario["params"].get(key), other["params"].get(key)
            if before != after:
                found.append(f"{scenario['name']} parameter {key}: {before} vs {after}")
    return found


def unshared(a: dict, b: dict) -> list[str]:
    """Scenarios, variants and metrics that only one of the two runs has, one line each."""
    found = []
    scenarios_a = {s["name"]: s for s in a["scenarios"]}
    scenarios_b = {s["name"]: s for s in b["scenarios"]}
    for name in scenarios_a.keys() - scenarios_b.keys():
        found.append(f"scenario {name}: only in A")
    for name in scenarios_b.keys() - scenarios_a.keys():
        found.append(f"scenario {name}: only in B")
    for name in sorted(scenarios_a.keys() & scenarios_b.keys()):
        keys_a, keys_b = _samples(scenarios_a[name]).keys(), _samples(scenarios_b[name]).keys()
        for side, mine, theirs in (("A", keys_a, keys_b), ("B", keys_b, keys_a)):
            their_variants = {variant for variant, _ in theirs}
            for variant, metric in sorted(mine - theirs):
                if variant not in their_variants:
                    line = f"{name} variant {variant}: only in {side}"
                else:
                    line = f"{name} {variant} {metric}: only in {side}"
                if line not in found:
                    found.append(line)
    return found


def print_changes(changes: list[MetricChange], threshold: float, out: TextIO) -> None:
    if not changes:
        print("the two runs share no metric", file=out)
        return
    width = max(len(f"{c.scenario} {c.variant} {c.metric}") for c in changes)
    for change in changes:
        name = f"{change.scenario} {change.variant} {change.metric}"
        interval = format_interval(
            Comparison(change.ratio, change.ci_low, change.ci_high, 0, 0.95, paired=False)
        )
        print(
            f"{name:<{width}}  {change.median_a:12.4g} -> {change.median_b:12.4g} {change.unit:<9}"
            f" B/A {interval}  {change.verdict}",
            file=out,
        )
    regressed = [c for c in changes if c.verdict == "regressed"]
    print(
        f"\n{len(changes)} metrics compared, threshold {threshold:.0%}: "
        f"{len(regressed)} regressed, "
        f"{sum(c.verdict == 'improved' for c in changes)} improved",
        file=out,
    )
