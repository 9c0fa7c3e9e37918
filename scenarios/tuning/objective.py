"""What a search optimises and what makes a trial feasible.

The SLO (`--slo p99<=20ms`) names a percentile of end-to-end latency (from each record's
intended send time to its delivery to the consumer), or with `publish:` of publish latency (to
the producer's acknowledgement), and its bound. Two objectives (OBJECTIVES):
- latency: minimise that percentile at the workload's producerRate; a trial is feasible when it
  kept the offered rate (at least scenarios.harness.saturation.SATURATED_BELOW of it) and met
  the bound.
- throughput: maximise the highest rate the settings sustain within the bound, found by a rate
  search (scenarios.harness.rate_search, as node-peak and OMB's rate discovery do: a step is kept
  when it kept its offered rate and met the bound), and, as a second objective, minimise the
  percentile at that rate: the study is multi-objective, its Pareto front the trade-off between
  the two. A trial is feasible when some step was kept. A search that finds no rate kept stops
  lowering it once a lower rate kept its rate but did not bring the percentile down: the
  settings, not the rate, break the bound (settings_bound).

"Kept the offered rate" is judged where the rate is offered: the producer's loop sent every
record by its due time, within that fraction (the offered span over the span it took). The
pipeline's achieved_fraction (records delivered over the time to the last delivery) is kept
beside it but does not decide: in a run of seconds its span ends with the last fetch's wait for
records that no longer come (up to fetch.max.wait.ms when fetch.min.bytes is not reached), an
artifact of the run ending that would mark harmless fetch settings saturated. A consumer that
falls behind shows as latency growing through the run, which the SLO bounds.

Infeasible trials are told to Optuna as constraints (Trial.set_constraint, a value above 0
violates), not as a penalty added to the latency: the study keeps each trial's true latency, so
its values, importances and any later Pareto front mean what they say, and TPE still learns to
avoid the infeasible region (it ranks feasible trials first).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from scenarios.clients.pipeline import Load, Round
from scenarios.harness.rate_search import peak, search
from scenarios.harness.saturation import SATURATED_BELOW

OBJECTIVES = ("latency", "throughput")

_SLO = re.compile(
    r"^(?:(?P<latency>e2e|publish):)?"
    r"p(?P<percentile>\d+(?:\.\d+)?)\s*<=\s*(?P<bound>\d+(?:\.\d+)?)\s*(?P<unit>[a-zµ]+)$"
)
_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


class SloError(ValueError):
    """The SLO cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Slo:
    """A bound on a percentile of end-to-end latency (`e2e`: from each record's due time to its
    delivery to the consumer) or of publish latency (`publish`: to the producer's
    acknowledgement, OMB's other figure)."""

    percentile: float  # e.g. 99.0
    bound_ms: float
    text: str  # as the user wrote it
    latency: str = "e2e"

    @property
    def label(self) -> str:
        return f"{'publish ' if self.latency == 'publish' else ''}p{self.percentile:g}"


def parse_slo(text: str) -> Slo:
    """`p99<=20ms`, `p99.9<=50ms`, `p50<=500us`, `p99<=1s`; end-to-end latency unless
    `publish:` says publish latency (`publish:p99<=10ms`; `e2e:` says end-to-end)."""
    match = _SLO.match(text.strip().lower())
    if match is None:
        raise SloError(
            f"--slo {text}: expected [e2e:|publish:]PERCENTILE<=BOUND with a unit, e.g. p99<=20ms"
        )
    percentile = float(match["percentile"])
    if not 0 < percentile < 100:
        raise SloError(f"--slo {text}: the percentile must lie between 0 and 100, e.g. p99")
    if match["unit"] not in _UNITS_MS:
        raise SloError(f"--slo {text}: the unit must be one of {', '.join(_UNITS_MS)}")
    bound_ms = float(match["bound"]) * _UNITS_MS[match["unit"]]
    if bound_ms <= 0:
        raise SloError(f"--slo {text}: the bound must be above 0")
    return Slo(percentile, bound_ms, text.strip(), match["latency"] or "e2e")


@dataclass(frozen=True)
class Measurement:
    """One measurement at the workload's rate: the SLO's percentile and the achieved fraction
    of the offered rate, with p50 and p99 beside for the reader."""

    offered_per_s: float
    latency_ms: float  # the SLO's percentile
    p50_ms: float  # p50 and p99 of the SLO's latency (end-to-end or publish)
    p99_ms: float
    kept_fraction: float  # the offered span over the span the producer took to send it all
    achieved_fraction: float  # the pipeline's: delivered over offered, for the reader

    @classmethod
    def of(cls, measured: Round, load: Load, slo: Slo) -> "Measurement":
        offered_s = (load.count - 1) / load.rate  # the last record's due time
        return cls(
            load.rate,
            measured.percentile_ms(slo.percentile, slo.latency),
            measured.percentile_ms(50, slo.latency),
            measured.percentile_ms(99, slo.latency),
            min(offered_s / max(measured.producer["produce_seconds"], 1e-9), 1.0),
            measured.achieved_fraction,
        )

    @property
    def saturated(self) -> bool:
        return self.kept_fraction < SATURATED_BELOW

    def meets(self, slo: Slo) -> bool:
        return self.latency_ms <= slo.bound_ms

    def feasible(self, slo: Slo) -> bool:
        return not self.saturated and self.meets(slo)


@dataclass(frozen=True)
class RatePoint:
    """One step of a throughput search: a measurement at an offered rate, kept when it kept the
    rate and met the SLO (scenarios.harness.rate_search.RateStep)."""

    measurement: Measurement
    kept: bool

    @property
    def offered_per_s(self) -> float:
        return self.measurement.offered_per_s


@dataclass(frozen=True)
class SearchShape:
    """A throughput search's steps: from `start` (records/s) by `factor`, `refine` bisections,
    at most `max_steps` measurements."""

    start: float
    factor: float = 2.0
    refine: int = 2
    max_steps: int = 7
    max_factor: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What one evaluation of some settings found. `measurement`: at the workload's rate
    (latency), or at the highest rate kept (throughput; the lowest rate tried when none was);
    `throughput_per_s`: the rate sustained (latency: offered times the fraction kept;
    throughput: the highest rate kept, 0 when none was); `steps`: a throughput search's."""

    objective: str
    measurement: Measurement
    throughput_per_s: float
    feasible: bool
    steps: tuple[RatePoint, ...] = ()

    @property
    def value(self) -> float:
        """The figure the search optimises first: latency (lower is better) or records/s."""
        return self.measurement.latency_ms if self.objective == "latency" else self.throughput_per_s

    @property
    def better(self) -> str:
        return "lower" if self.objective == "latency" else "higher"


def evaluate(
    measure: Callable[[float], Measurement],
    objective: str,
    slo: Slo,
    rate: float,
    shape: SearchShape | None = None,
) -> Outcome:
    """Measure some settings (`measure` at an offered rate) for `objective`: once at `rate`, or
    by a rate search of `shape`."""
    if objective == "latency":
        measured = measure(rate)
        kept_per_s = measured.offered_per_s * measured.kept_fraction
        return Outcome(objective, measured, kept_per_s, measured.feasible(slo))
    assert shape is not None, "a throughput search needs its shape"

    def step(offered: float) -> RatePoint:
        measured = measure(offered)
        return RatePoint(measured, measured.feasible(slo))

    steps = search(
        step,
        shape.start,
        factor=shape.factor,
        refine=shape.refine,
        max_steps=shape.max_steps,
        max_factor=shape.max_factor,
        hopeless=settings_bound,
    )
    found = peak(steps)
    if found is None:
        lowest = min(steps, key=lambda s: s.offered_per_s)
        return Outcome(objective, lowest.measurement, 0.0, False, tuple(steps))
    return Outcome(objective, found.measurement, found.offered_per_s, True, tuple(steps))


def settings_bound(above: RatePoint, below: RatePoint) -> bool:
    """Whether a lower rate that kept its rate but still broke the SLO, its percentile no better
    than at the rate above (within 10 %), shows that the settings, not the rate, break the
    bound (linger.ms past it, say): lower rates will not help, and the search stops there."""
    m = below.measurement
    return not m.saturated and m.latency_ms >= 0.9 * above.measurement.latency_ms


def directions(objective: str) -> list[optuna.study.StudyDirection]:
    """Optuna's study directions: latency alone, or records/s and latency (a Pareto front)."""
    minimize, maximize = optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE
    return [minimize] if objective == "latency" else [maximize, minimize]


def record(trial: optuna.Trial, outcome: Outcome, slo: Slo) -> float | list[float]:
    """Keep `outcome` with the trial (user attributes, for the report and the choice of the
    best), tell Optuna its constraints, and return the values to optimise."""
    measurement = outcome.measurement
    trial.set_user_attr("objective", outcome.objective)
    trial.set_user_attr("offered_per_s", measurement.offered_per_s)
    trial.set_user_attr("throughput_rps", outcome.throughput_per_s)
    trial.set_user_attr("latency_ms", measurement.latency_ms)
    trial.set_user_attr("p50_ms", measurement.p50_ms)
    trial.set_user_attr("p99_ms", measurement.p99_ms)
    trial.set_user_attr("kept_fraction", measurement.kept_fraction)
    trial.set_user_attr("achieved_fraction", measurement.achieved_fraction)
    trial.set_user_attr("feasible", outcome.feasible)
    if outcome.steps:
        trial.set_user_attr(
            "steps",
            [
                {
                    "offered_per_s": s.offered_per_s,
                    "latency_ms": s.measurement.latency_ms,
                    "kept_fraction": s.measurement.kept_fraction,
                    "kept": s.kept,
                }
                for s in outcome.steps
            ],
        )
    if outcome.objective == "latency":
        trial.set_constraint("kept_offered_rate", SATURATED_BELOW - measurement.kept_fraction)
        trial.set_constraint("slo", measurement.latency_ms - slo.bound_ms)
        return measurement.latency_ms
    trial.set_constraint("a_rate_kept", 0.0 if outcome.feasible else 1.0)
    return [outcome.throughput_per_s, measurement.latency_ms]
