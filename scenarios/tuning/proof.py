"""The proof: the search's leading candidates re-measured against Kafka's defaults (and the
user's current settings), interleaved, and the recommendation chosen from what was re-measured,
not from the search's single lucky measurement.

The candidates: Kafka's defaults; the user's current settings (`--current`); the `top` best
feasible trials of the study; and the best trial pruned, its searched settings that mattered
least (optuna.importance's, below PRUNE_BELOW) put back to their defaults, so that a
setting that merely came along is not recommended. Each is measured once a round, the order
reversed every other round (as the scenario harness runs variants), each on a fresh topic.

The choice: the best is the feasible candidate with the best median (lowest latency, or highest
rate kept), of those the space allows (current settings below the durability floor are measured
as a baseline, never chosen). Any feasible candidate whose round-by-round ratio to the best has
an interval that includes 1 is indistinguishable from it; among the best and those, the one
with the fewest changes from Kafka's defaults is recommended (the defaults themselves, with
none, when they are among them). So a change is recommended only when it beats the defaults
beyond the noise.
"""

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import optuna

from scenarios.harness.stats import Comparison, Summary, compare, format_interval, summarize
from scenarios.tuning import space as spaces
from scenarios.tuning.objective import Outcome, Slo
from scenarios.tuning.space import DEFAULTS, Space, SpaceError, Value

DEFAULTS_NAME = "Kafka's defaults"
CURRENT_NAME = "current"
PRUNED_NAME = "pruned"
PRUNE_BELOW = 0.05  # a searched setting with less than 5 % of the importance is put back
_PROPERTY = re.compile(r"^(?P<name>[^=:\s]+)\s*[=:\s]\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Candidate:
    """Settings re-measured in the proof; `start`: where its rate search starts (throughput:
    the rate it kept in the search)."""

    name: str
    settings: dict[str, Value]
    start: float = 0.0
    eligible: bool = True  # may be recommended: within the space searched, floor included

    @property
    def changes(self) -> dict[str, Value]:
        return spaces.differences(self.settings)


@dataclass(frozen=True)
class Standing:
    """One candidate's rounds in the proof and what they add up to."""

    candidate: Candidate
    outcomes: list[Outcome]
    summary: Summary  # of the objective's values
    feasible: bool  # the median round was feasible (kept its rate and met the SLO)


@dataclass
class Proof:
    """What the proof measured and chose."""

    taken: list[tuple[int, str, Outcome]]  # (round, candidate, outcome) in the order measured
    standings: dict[str, Standing]
    best: str | None  # the best feasible candidate's name, None when none was feasible
    tied: list[str]  # feasible candidates indistinguishable from the best
    chosen: Candidate | None  # the recommendation (None: no candidate was feasible)
    gains: dict[str, Comparison | None] = field(default_factory=dict)  # chosen vs each baseline
    verdict: str = ""  # one line, for the properties files' header


def candidates(
    study: optuna.Study,
    space: Space,
    top: int,
    current: dict[str, Value] | None,
    ranked: Sequence[optuna.trial.FrozenTrial],
) -> list[Candidate]:
    """Kafka's defaults (at the durability floor: Space.baseline), the current settings, the
    `top` best of `ranked` (feasible trials, best first) with distinct settings, and the best
    pruned, each once (current settings that are Kafka's defaults are measured once, as the
    defaults)."""
    baseline = space.baseline()
    chosen = [Candidate(DEFAULTS_NAME, baseline, _start(ranked, baseline))]
    if current is not None:  # what the space holds (not the broker's, on --bootstrap)
        current = {k: v for k, v in current.items() if k in baseline}
    if current is not None and current not in (DEFAULTS, baseline):
        start = _start(ranked, current)
        chosen.append(Candidate(CURRENT_NAME, current, start, space.contains(current)))
    baselines = len(chosen)
    for trial in ranked:
        if len(chosen) >= baselines + top:
            break
        settings = trial.user_attrs["settings"]
        if all(c.settings != settings for c in chosen):
            chosen.append(Candidate(f"trial {trial.number}", settings, _throughput(trial)))
    if ranked:
        pruned = prune(study, space, ranked[0])
        if all(c.settings != pruned for c in chosen):
            chosen.append(Candidate(PRUNED_NAME, pruned, _throughput(ranked[0])))
    return chosen


def prune(study: optuna.Study, space: Space, best: optuna.trial.FrozenTrial) -> dict[str, Value]:
    """The best trial's settings with each searched setting that mattered little (importance
    below PRUNE_BELOW, by optuna.importance's default evaluator, PED-ANOVA: how much a setting's
    values differ between the best trials and the rest) put back to its default, where the space
    allows the default. Unchanged when importances cannot be computed (too few trials, or
    nothing varied)."""
    settings = dict(best.user_attrs["settings"])
    try:
        with warnings.catch_warnings():  # PED-ANOVA's reminder that low is good: it is, here
            warnings.simplefilter("ignore", UserWarning)
            importances = optuna.importance.get_param_importances(study, target=lower_is_better)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return settings
    properties = {p.name: p for p in space.properties}
    for name, importance in importances.items():
        default = DEFAULTS.get(name)
        if importance < PRUNE_BELOW and default is not None and properties[name].allows(default):
            settings[name] = default
    return settings


def read_current(paths: Sequence[str]) -> tuple[dict[str, Value], list[str]]:
    """The user's current settings from their .properties files (Java's format: NAME=VALUE,
    NAME: VALUE; # and ! comments), over Kafka's defaults, under Kafka's or librdkafka's names;
    and the names read that kbench tune does not search (bootstrap.servers, serializers...),
    left out. SpaceError names a file, a line and what was expected."""
    settings: dict[str, Value] = dict(DEFAULTS)
    ignored: list[str] = []
    aliases = {p.librdkafka: p.name for p in spaces.PROPERTIES if p.librdkafka}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except OSError as exc:
            raise SpaceError(f"--current {path}: cannot read it: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text[0] in "#!":
                continue
            match = _PROPERTY.match(text)
            if match is None:
                raise SpaceError(f"--current {path}:{number}: expected NAME=VALUE, got {text!r}")
            name, value = aliases.get(match["name"], match["name"]), match["value"].strip()
            if name not in spaces.BY_NAME:
                ignored.append(match["name"])
                continue
            where = f"--current {path}:{number}: {name}"
            settings[name] = spaces.parse_value(spaces.BY_NAME[name], value, where)
    return settings, ignored


def interleaved(
    evaluate: Callable[[Candidate], Outcome],
    candidates: Sequence[Candidate],
    rounds: int,
    on_measured: Callable[[int, str, Outcome], None] | None = None,
) -> list[tuple[int, str, Outcome]]:
    """Measure every candidate once a round, the order reversed every other round (A B C,
    C B A, ...) so drift reaches all alike; every measurement as (round, candidate, outcome) in
    the order taken, each also handed to on_measured as it is taken."""
    taken = []
    for round_number in range(rounds):
        for candidate in candidates if round_number % 2 == 0 else reversed(candidates):
            taken.append((round_number, candidate.name, evaluate(candidate)))
            if on_measured is not None:
                on_measured(*taken[-1])
    return taken


def decide(
    candidates: Sequence[Candidate], taken: list[tuple[int, str, Outcome]], better: str
) -> Proof:
    """Each candidate's standing, the best, those indistinguishable from it, and the choice."""
    standings = {}
    for candidate in candidates:
        outcomes = [o for _, name, o in taken if name == candidate.name]
        mostly = sum(o.feasible for o in outcomes) * 2 > len(outcomes)
        values = [o.value for o in outcomes]
        standings[candidate.name] = Standing(candidate, outcomes, summarize(values), mostly)
    # a baseline outside the space (current settings below the floor) is measured, never chosen
    feasible = [s for s in standings.values() if s.feasible and s.candidate.eligible]
    if not feasible:
        return Proof(taken, standings, None, [], None)
    sign = -1 if better == "higher" else 1
    best = min(feasible, key=lambda s: sign * s.summary.median)
    tied = []
    for standing in feasible:
        if standing is best:
            continue
        ratio = ratio_of(standing, best)
        if ratio is not None and not ratio.significant:
            tied.append(standing.candidate.name)
    pool = [best, *(standings[name] for name in tied)]
    chosen = min(pool, key=lambda s: (len(s.candidate.changes), sign * s.summary.median))
    return Proof(taken, standings, best.candidate.name, tied, chosen.candidate)


def ratio_of(numerator: Standing, denominator: Standing) -> Comparison | None:
    """numerator/denominator round by round (paired), leaving out rounds where either kept no
    rate (a throughput of 0 has no ratio); None with fewer than two rounds left."""
    pairs = [
        (a.value, b.value)
        for a, b in zip(numerator.outcomes, denominator.outcomes, strict=True)
        if a.value > 0 and b.value > 0 and math.isfinite(a.value) and math.isfinite(b.value)
    ]
    if len(pairs) < 2:
        return None
    return compare([a for a, _ in pairs], [b for _, b in pairs], paired=True)


def show(proof: Proof, slo: Slo, objective: str, out: TextIO) -> None:
    """Each candidate's median with its interval, the ties, the choice, and its gain over each
    baseline; sets proof.gains and proof.verdict."""
    unit = "ms" if objective == "latency" else "records/s"
    label = slo.label if objective == "latency" else f"records/s kept within {slo.text}"
    better = "lower" if objective == "latency" else "higher"
    for name, standing in proof.standings.items():
        changes = len(standing.candidate.changes)
        note = "" if standing.feasible else ", infeasible in most rounds"
        if not standing.candidate.eligible:
            note += ", outside the space searched (not recommended)"
        print(
            f"  {name} ({changes} change{'s' * (changes != 1)} from {DEFAULTS_NAME}): {label} "
            f"{format_interval(standing.summary, unit)}{note}",
            file=out,
        )
    if proof.chosen is None:
        proof.verdict = f"proof: no candidate was feasible in most rounds ({slo.text})"
        print(f"  {proof.verdict}", file=out)
        return
    best = proof.standings[proof.best or ""]
    for name in proof.tied:
        ratio = ratio_of(proof.standings[name], best)
        assert ratio is not None  # a tie was decided on it
        print(
            f"  {name} is indistinguishable from {best.candidate.name}: "
            f"{format_interval(ratio)} (interval includes 1)",
            file=out,
        )
    chosen = proof.standings[proof.chosen.name]
    why = (
        "the best"
        if chosen is best
        else f"indistinguishable from {best.candidate.name} with fewer changes"
    )
    parts = [f"recommended: {proof.chosen.name} ({why})"]
    for baseline in (DEFAULTS_NAME, CURRENT_NAME):
        if baseline not in proof.standings or baseline == proof.chosen.name:
            continue
        gain = ratio_of(chosen, proof.standings[baseline])
        proof.gains[baseline] = gain
        if gain is None:
            parts.append(f"vs {baseline}: no ratio (a rate kept in fewer than 2 rounds of both)")
            continue
        direction = {
            "better": "better beyond the noise",
            "worse": "worse beyond the noise",
        }.get(gain.direction(better), "indistinguishable (interval includes 1)")
        parts.append(f"{proof.chosen.name}/{baseline} {format_interval(gain)}, {direction}")
    if objective == "latency":
        parts.append(f"SLO {slo.text}: {_holds(chosen, slo)}")
    for part in parts:
        print(f"  {part}", file=out)
    rounds = len(chosen.outcomes)
    proof.verdict = f"proof ({rounds} interleaved rounds): " + "; ".join(parts)


def _holds(standing: Standing, slo: Slo) -> str:
    saturated = sum(o.measurement.saturated for o in standing.outcomes)
    latency = summarize([o.measurement.latency_ms for o in standing.outcomes])
    if saturated:
        return f"does not hold: saturated in {saturated} of {len(standing.outcomes)} rounds"
    if latency.ci_high <= slo.bound_ms:
        return f"holds: the median's interval lies at or below {slo.bound_ms:g} ms"
    if latency.ci_low > slo.bound_ms:
        return f"does not hold: the median's interval lies above {slo.bound_ms:g} ms"
    return f"inconclusive: the median's interval straddles {slo.bound_ms:g} ms"


def lower_is_better(trial: optuna.trial.FrozenTrial) -> float:
    """The objective searched first, oriented as importance evaluators read it: latency, or
    records/s kept negated."""
    assert trial.values is not None  # importances read completed trials only
    return (
        -trial.values[0] if trial.user_attrs.get("objective") == "throughput" else trial.values[0]
    )


def _throughput(trial: optuna.trial.FrozenTrial) -> float:
    return float(trial.user_attrs.get("throughput_rps", 0.0))


def _start(ranked: Sequence[optuna.trial.FrozenTrial], settings: dict[str, Value]) -> float:
    """Where a baseline's rate search starts: its own trial's rate if the search measured it,
    else the best trial's."""
    for trial in ranked:
        if trial.user_attrs["settings"] == settings:
            return _throughput(trial)
    return _throughput(ranked[0]) if ranked else 0.0
