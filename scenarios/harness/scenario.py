"""What a scenario declares, and the context it runs in.

A scenario answers one question by measuring variants of the same work (sequential vs random
writes, sendfile vs read + send, ...). It declares its parameters, the profiles that set them
(`quick`: about a minute on 2 cores; `full`: thorough; `smoke`: seconds, for tests, numbers
meaningless), its metrics with their units and better-direction, the pairs of variants whose
ratio is the answer, the claims (claims.py) those ratios decide, and the charts of its own that
the report draws. The runner does the rest: warm-up, interleaving, repeats, statistics,
resources and results.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    better: str  # "higher" or "lower"
    description: str = ""
    # a difference of two measurements (one consumer's delivery less another's), which noise
    # takes below zero where the true value is zero: kept as measured, not clipped
    signed: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bound:
    """A fixed figure on one side of a contrast, for a claim that quotes a level rather than a
    ratio ("p99 within 10 ms", "20 M records/s"): each round's sample of the other side is
    divided by it (or divides it), so the ratio's interval is the median's, scaled."""

    value: float
    label: str  # how the results and the report name it, e.g. "10 ms (single-digit)"


@dataclass(frozen=True, slots=True)
class Contrast:
    """numerator/denominator of one metric: a headline ratio of the scenario."""

    name: str
    metric: str
    numerator: "str | Bound"  # variant names, or a level a claim quotes
    denominator: "str | Bound"
    label: str  # e.g. "sequential/random MB/s, buffered 4 KiB"


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """A claim of claims.py (CLAIMS) decided by a contrast: confirmed at or above threshold.

    A claim that states several things (an ordering of codecs, say) gets one check per thing,
    each naming in `part` what it tests; the claim holds when every part does."""

    claim: str  # its id in CLAIMS, e.g. "seq-write"
    contrast: str  # a Contrast name
    threshold: float
    part: str = ""  # e.g. "lz4 has the lowest CPU: gzip/lz4 CPU-s/MB >= 1"


@dataclass(frozen=True, slots=True)
class TopicWrite:
    """What a scenario will produce to a cluster: announced before a run writes to one that is
    not kbench's own (--bootstrap)."""

    topic: str  # the name without the run's prefix, as passed to RunContext.topic()
    partitions: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SweepChart:
    """A chart the report draws of metrics against one numeric variant parameter (batch.size,
    block size, fetch size): one line per combination of the other parameters that ran at two
    or more of its values."""

    title: str  # shown after the scenario's name, e.g. "MB/s vs block size"
    x: str  # the variant parameter
    metrics: tuple[str, ...]  # one panel each, or with panel_by the first one alone
    xlabel: str
    x_is_bytes: bool = False  # ticks as sizes (4 KiB, 1 MiB)
    panel_by: str | None = None  # one panel per value of this variant parameter
    # variant parameters that change together with x (a mode's name and settings beside its
    # number on the axis): left out of what tells one line from another
    along: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CodecScatter:
    """A chart the report draws of compression ratio against CPU per MB, one point per codec
    (the variant parameter compression.type) with both intervals."""


ChartSpec = SweepChart | CodecScatter


@dataclass
class RunContext:
    """Where and against what a scenario runs."""

    work_dir: str  # scratch space on the data directory's filesystem
    params: dict[str, Any]
    bootstrap: str | None = None  # a Kafka-protocol broker, when the run has one
    broker_pid: int | None = None  # the engine's broker process, when kbench started it
    # processes whose CPU every sample records, by role; setup may add its own (e.g. brokers it
    # starts); "client" (this process) and "broker" (broker_pid) are added by the runner
    processes: dict[str, int] = field(default_factory=dict)
    engine: bool = True  # False with --bootstrap: the engine's own switches are unavailable
    state: dict[str, Any] = field(default_factory=dict)  # whatever setup leaves for measure
    notes: list[str] = field(default_factory=list)  # parts left out here, and why (printed)
    # files or directories whose page-cache residency every sample records before and after
    watched: list[str] = field(default_factory=list)
    # every topic a scenario creates starts with this run-specific prefix, so that the run can
    # find and delete them all when the scenario ends, fails or is interrupted
    topic_prefix: str = "kbench-"

    def topic(self, name: str) -> str:
        """The name to create a topic under: the run's prefix + `name`."""
        return f"{self.topic_prefix}{name}"


class Skip(Exception):
    """Raised by setup when a scenario (or part) cannot run here; the reason is printed."""


class Scenario(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    question: ClassVar[str]
    parameters: ClassVar[Mapping[str, str]]  # parameter -> what it means
    profiles: ClassVar[Mapping[str, Mapping[str, Any]]]  # "smoke", "quick", "full"
    metrics: ClassVar[tuple[Metric, ...]]
    # the charts of this scenario's own, drawn by the report after those every scenario gets
    # (its contrasts first; latency percentiles and each metric's variants after)
    charts: ClassVar[tuple[ChartSpec, ...]] = ()
    # how long `kbench run` took for its quick profile on a 2-core machine, setup included
    # (measured): a measurement of this scenario weighs quick_seconds / the quick profile's
    # measurements in the progress bar, so the ETA holds across scenarios of different pace
    quick_seconds: ClassVar[float]

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    @abstractmethod
    def variants(self, params: Mapping[str, Any]) -> list[Variant]:
        """The variants, in the order the first round runs them."""

    @abstractmethod
    def contrasts(self, params: Mapping[str, Any]) -> list[Contrast]: ...

    def claim_checks(self, params: Mapping[str, Any]) -> list[ClaimCheck]:
        return []

    def undecided(
        self, check: ClaimCheck, samples: Mapping[str, Sequence[Mapping[str, float]]]
    ) -> str | None:
        """Why `check` must not be decided from these measured samples (the values of its
        contrast's two variants, by variant), or None. E.g. a latency measured at saturation
        decides no latency claim."""
        return None

    def cluster_writes(self, params: Mapping[str, Any]) -> list[TopicWrite]:
        """The topics this scenario creates on the run's cluster (ctx.bootstrap) with these
        params, and about how many bytes it produces to each over the whole run (warm-ups
        included); announced before a run writes to an external cluster."""
        return []

    def setup(self, ctx: RunContext) -> None:  # noqa: B027 - optional hook
        """Prepare data; raise Skip to say why this scenario cannot run here. Setup may narrow
        ctx.params (e.g. drop O_DIRECT where refused), noting why in ctx.notes; variants and
        contrasts are taken from the params as setup leaves them."""

    @abstractmethod
    def measure(self, ctx: RunContext, variant: Variant) -> dict[str, float]:
        """One sample of every metric for one variant."""

    def teardown(self, ctx: RunContext) -> None:  # noqa: B027 - optional hook
        pass


def size_label(n: float) -> str:
    """Bytes as scenarios name them in variants and labels, and reports show them: 4 KiB,
    1 MiB, 1.5 MiB, 512 B."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.3g} {unit}"
    return f"{n:g} B"
