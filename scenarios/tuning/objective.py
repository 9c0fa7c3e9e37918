"""What a search minimises and what makes a trial feasible.

The SLO (`--slo p99<=20ms`) names a percentile of end-to-end latency (from each record's
intended send time to its delivery to the consumer) and its bound. The search minimises that
percentile at the workload's producerRate; a trial is feasible when it kept the offered rate
(at least scenarios.harness.saturation.SATURATED_BELOW of it) and met the bound.

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
from dataclasses import dataclass

import optuna

from scenarios.clients.pipeline import Load, Round
from scenarios.harness.saturation import SATURATED_BELOW

_SLO = re.compile(
    r"^p(?P<percentile>\d+(?:\.\d+)?)\s*<=\s*(?P<bound>\d+(?:\.\d+)?)\s*(?P<unit>[a-zµ]+)$"
)
_UNITS_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


class SloError(ValueError):
    """The SLO cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Slo:
    """A bound on a percentile of end-to-end latency."""

    percentile: float  # e.g. 99.0
    bound_ms: float
    text: str  # as the user wrote it

    @property
    def label(self) -> str:
        return f"p{self.percentile:g}"


def parse_slo(text: str) -> Slo:
    """`p99<=20ms`, `p99.9<=50ms`, `p50<=500us`, `p99<=1s`."""
    match = _SLO.match(text.strip().lower())
    if match is None:
        raise SloError(f"--slo {text}: expected PERCENTILE<=BOUND with a unit, e.g. p99<=20ms")
    percentile = float(match["percentile"])
    if not 0 < percentile < 100:
        raise SloError(f"--slo {text}: the percentile must lie between 0 and 100, e.g. p99")
    if match["unit"] not in _UNITS_MS:
        raise SloError(f"--slo {text}: the unit must be one of {', '.join(_UNITS_MS)}")
    bound_ms = float(match["bound"]) * _UNITS_MS[match["unit"]]
    if bound_ms <= 0:
        raise SloError(f"--slo {text}: the bound must be above 0")
    return Slo(percentile, bound_ms, text.strip())


@dataclass(frozen=True)
class Measurement:
    """One measurement at the workload's rate: the SLO's percentile and the achieved fraction
    of the offered rate, with p50 and p99 beside for the reader."""

    latency_ms: float  # the SLO's percentile
    p50_ms: float
    p99_ms: float
    kept_fraction: float  # the offered span over the span the producer took to send it all
    achieved_fraction: float  # the pipeline's: delivered over offered, for the reader

    @classmethod
    def of(cls, measured: Round, load: Load, slo: Slo) -> "Measurement":
        offered_s = (load.count - 1) / load.rate  # the last record's due time
        return cls(
            measured.percentile_ms(slo.percentile),
            measured.percentile_ms(50),
            measured.percentile_ms(99),
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


def record(trial: optuna.Trial, measurement: Measurement, slo: Slo) -> float:
    """Keep `measurement` with the trial (user attributes, for the report and the choice of the
    best), tell Optuna its constraints, and return the value to minimise."""
    trial.set_user_attr("latency_ms", measurement.latency_ms)
    trial.set_user_attr("p50_ms", measurement.p50_ms)
    trial.set_user_attr("p99_ms", measurement.p99_ms)
    trial.set_user_attr("kept_fraction", measurement.kept_fraction)
    trial.set_user_attr("achieved_fraction", measurement.achieved_fraction)
    trial.set_user_attr("feasible", measurement.feasible(slo))
    trial.set_constraint("kept_offered_rate", SATURATED_BELOW - measurement.kept_fraction)
    trial.set_constraint("slo", measurement.latency_ms - slo.bound_ms)
    return measurement.latency_ms
