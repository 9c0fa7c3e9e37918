"""The runner: warm-up, variants interleaved over rounds, every sample kept, then statistics.

Round r runs the variants in their declared order when r is even and reversed when it is odd
(A B B A A B ...), so slow drift of the machine (thermal, other tenants, page-cache growth) hits
every variant alike. One warm-up measurement per variant comes first and is kept, marked, but
left out of the statistics. Each measurement is wrapped in a ResourceMeter: CPU of the broker and
of this process, context switches, disk bytes.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scenarios.harness.claims import CLAIMS
from scenarios.harness.resources import ResourceMeter, directory_residency
from scenarios.harness.scenario import Bound, RunContext, Scenario, Skip
from scenarios.harness.stats import Verdict, compare, judge, summarize

REQUIRED_CONFIDENCE = 0.95  # below it (fewer than 6 rounds), no direction or verdict is claimed


@dataclass
class Sample:
    variant: str
    round: int  # -1 for the warm-up
    values: dict[str, float]
    resources: dict[str, Any]

    @property
    def warmup(self) -> bool:
        return self.round < 0

    def as_dict(self) -> dict:
        return {
            "variant": self.variant,
            "round": self.round,
            "warmup": self.warmup,
            "values": self.values,
            "resources": self.resources,
        }


@dataclass
class ScenarioResult:
    scenario: str
    title: str
    question: str
    profile: str
    params: dict[str, Any]
    metrics: list[dict]
    variants: list[dict]
    skipped: str | None = None
    error: str | None = None  # why measuring stopped part way (samples so far are kept)
    notes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    summaries: dict[str, dict[str, dict]] = field(default_factory=dict)
    contrasts: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return {
            "name": self.scenario,
            "title": self.title,
            "question": self.question,
            "profile": self.profile,
            "params": self.params,
            "metrics": self.metrics,
            "variants": self.variants,
            "skipped": self.skipped,
            "error": self.error,
            "notes": self.notes,
            "samples": [s.as_dict() for s in self.samples],
            "summaries": self.summaries,
            "contrasts": self.contrasts,
            "claims": self.claims,
            "duration_s": self.duration_s,
        }


class Interrupted(Exception):
    """Ctrl-C while a scenario measured: `result` holds the samples taken before it, with the
    interruption as its error (the scenario was torn down)."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.error)
        self.result = result


def planned_measurements(scenario: Scenario, profile: str) -> int:
    params = scenario.profiles[profile]
    return (params["rounds"] + 1) * len(scenario.variants(params))


def expected_seconds(scenario: Scenario, profile: str) -> float:
    """About how long `profile` takes: its measurements at the pace the quick profile's took
    (Scenario.quick_seconds). The progress bar's unit, so its ETA weighs a slow measurement
    of one scenario against a fast one of another."""
    quick = getattr(scenario, "quick_seconds", None)
    if quick is None or "quick" not in scenario.profiles:  # e.g. a test's own scenario
        return float(planned_measurements(scenario, profile))
    return quick / planned_measurements(scenario, "quick") * planned_measurements(scenario, profile)


def run_scenario(
    scenario: Scenario,
    ctx: RunContext,
    profile: str,
    advance: Callable[[int], None] = lambda _: None,
) -> ScenarioResult:
    """Run one scenario; `advance(n)` is told of every finished measurement (progress bars)."""
    planned = planned_measurements(scenario, profile)
    result = ScenarioResult(
        scenario=scenario.name,
        title=scenario.title,
        question=scenario.question,
        profile=profile,
        params=dict(ctx.params),
        metrics=[
            {
                "name": m.name,
                "unit": m.unit,
                "better": m.better,
                "description": m.description,
                "signed": m.signed,
            }
            for m in scenario.metrics
        ],
        variants=[],
    )
    started = time.monotonic()
    try:
        scenario.setup(ctx)
    except Skip as skip:
        result.skipped = str(skip)
        advance(planned)
        return result
    except Exception as exc:  # setup tears down what it made; the run goes on without it
        result.error = f"setup failed: {type(exc).__name__}: {exc}"
        advance(planned)
        return result
    except KeyboardInterrupt:
        result.error = "interrupted (Ctrl-C) during setup"
        raise Interrupted(result) from None
    params = result.params = dict(ctx.params)
    result.notes = list(ctx.notes)
    variants = scenario.variants(params)
    result.variants = [{"name": v.name, "params": dict(v.params)} for v in variants]
    roles = {"client": os.getpid(), **ctx.processes}
    if ctx.broker_pid is not None:
        roles.setdefault("broker", ctx.broker_pid)
    interrupted = False
    try:
        _measure_rounds(scenario, ctx, variants, roles, result, advance)
    except Exception as exc:  # one scenario failing must not lose the others' results
        result.error = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        interrupted = True
        result.error = f"interrupted (Ctrl-C) after {len(result.samples)} samples"
    finally:
        scenario.teardown(ctx)
        result.notes = list(ctx.notes)  # and what measuring found (e.g. a part that failed)
    if interrupted:
        result.duration_s = time.monotonic() - started
        raise Interrupted(result)
    advance(max(planned - len(result.samples), 0))  # what setup narrowed away, or an error left
    result.duration_s = time.monotonic() - started
    if result.error is None:
        _analyse(scenario, result)
    return result


def _measure_rounds(
    scenario: Scenario,
    ctx: RunContext,
    variants: list,
    roles: dict[str, int],
    result: ScenarioResult,
    advance: Callable[[int], None],
) -> None:
    for round_number in range(-1, ctx.params["rounds"]):
        order = variants if round_number % 2 == 0 else list(reversed(variants))
        for variant in order:
            before = _residency(ctx.watched)
            # a scenario that restarts a process (a killed broker) names the new one in ctx
            with ResourceMeter({**roles, **ctx.processes}, path=ctx.work_dir) as meter:
                values = scenario.measure(ctx, variant)
            resources = meter.usage.as_dict()
            if ctx.watched:
                after = _residency(ctx.watched)
                resources["page_cache_residency"] = {
                    path: {"before": before[path], "after": after[path]} for path in ctx.watched
                }
            result.samples.append(Sample(variant.name, round_number, values, resources))
            advance(1)


def _residency(paths: list[str]) -> dict[str, float | None]:
    """Fraction of each watched file or directory in the page cache (None once it is gone)."""
    return {p: directory_residency(p) if os.path.exists(p) else None for p in paths}


def _analyse(scenario: Scenario, result: ScenarioResult) -> None:
    measured = [s for s in result.samples if not s.warmup]
    for variant in result.variants:
        name = variant["name"]
        own = [s for s in measured if s.variant == name]
        result.summaries[name] = {
            metric.name: summarize([s.values[metric.name] for s in own]).as_dict()
            for metric in scenario.metrics
            if all(metric.name in s.values for s in own) and own
        }
    by_name = {}
    declared = {c.name: c for c in scenario.contrasts(result.params)}
    for contrast in declared.values():
        numerator = _by_round(measured, contrast.numerator, contrast.metric)
        denominator = _by_round(measured, contrast.denominator, contrast.metric)
        rounds = sorted(set(numerator) & set(denominator))
        comparison = compare(
            [numerator[r] for r in rounds], [denominator[r] for r in rounds], paired=True
        )
        by_name[contrast.name] = comparison
        result.contrasts.append(
            {
                "name": contrast.name,
                "label": contrast.label,
                "metric": contrast.metric,
                "numerator": _side_name(contrast.numerator),
                "denominator": _side_name(contrast.denominator),
                "comparison": comparison.as_dict(),
                "direction": (
                    comparison.direction(scenario.metric(contrast.metric).better)
                    if comparison.confidence >= REQUIRED_CONFIDENCE
                    else "inconclusive"
                ),
            }
        )
    for check in scenario.claim_checks(result.params):
        claim = CLAIMS[check.claim]
        entry = next(c for c in result.contrasts if c["name"] == check.contrast)
        contrast = declared[check.contrast]
        levels = [
            s.label for s in (contrast.numerator, contrast.denominator) if isinstance(s, Bound)
        ]
        verdict = judge(
            by_name[check.contrast],
            check.threshold,
            label=entry["label"],
            quoted=levels[0] if levels else None,
        )
        pair = [v for v in (contrast.numerator, contrast.denominator) if isinstance(v, str)]
        reason = scenario.undecided(
            check, {v: [s.values for s in measured if s.variant == v] for v in pair}
        )
        if by_name[check.contrast].confidence < REQUIRED_CONFIDENCE:
            verdict = Verdict(
                "inconclusive",
                f"too few rounds for a 95% interval ({by_name[check.contrast].n}); " + verdict.rule,
                "inconclusive: too few rounds",
            )
        elif reason is not None:
            verdict = Verdict(
                "inconclusive", f"not decided: {reason}; " + verdict.rule, f"inconclusive: {reason}"
            )
        result.claims.append(
            {
                "id": claim.id,
                "claim": claim.claim,
                "quoted": claim.quoted,
                "source": claim.source,
                "contrast": check.contrast,
                "threshold": check.threshold,
                "part": check.part,
                **verdict.as_dict(),
            }
        )


def _by_round(samples: list[Sample], side: str | Bound, metric: str) -> dict[int, float]:
    if isinstance(side, Bound):  # the same level in every round
        return {s.round: side.value for s in samples}
    return {s.round: s.values[metric] for s in samples if s.variant == side}


def _side_name(side: str | Bound) -> str:
    return side.label if isinstance(side, Bound) else side
