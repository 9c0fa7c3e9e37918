"""Medians, confidence intervals, paired ratios and verdicts for benchmark samples.

Benchmark noise on a shared 2-core machine is skewed and heavy-tailed: a run that loses the
CPU to a neighbour or waits on writeback is many times slower than the rest, while nothing makes
a run much faster than the hardware allows. Means and normal-theory intervals are dragged around
by those outliers, so everything here is distribution-free:

- The median's interval comes from order statistics. For n samples of a continuous quantity, the
  count B of samples below the true median is Binomial(n, 1/2), so the interval between the j-th
  and k-th smallest samples (k = n + 1 - j) covers the true median with probability
  P(j <= B <= k - 1) whatever the distribution. The tightest symmetric pair whose coverage
  reaches the requested confidence is chosen, and its exact coverage is reported (e.g. 0.961 for
  n = 9 at 95 %). Too few samples for the requested confidence give the widest interval,
  (min, max), with its honest, lower coverage.
- Variants run interleaved (A B A B ...), so the samples of one round share the machine's state
  at that moment. A paired comparison divides within each round, which cancels slow drift, and
  takes the order-statistic interval of the median of those ratios (a sign test, inverted).
- Unpaired samples get the ratio of medians with a percentile bootstrap interval, seeded so a
  result file reproduces. Its coverage is nominal and only approximate for small samples.

A verdict compares an interval with a claim's threshold: confirmed when the whole interval lies at
or above it, not reproduced when it lies wholly below, inconclusive when it straddles it. An
interval that contains 1 cannot even tell which variant is better, so it is "inconclusive about
the direction", never "not reproduced", even when it lies below the threshold.
"""

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Summary:
    """The median of n samples and an interval that covers the true median with `confidence`."""

    median: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float  # the coverage the interval actually achieves, e.g. 0.961

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Comparison:
    """numerator/denominator as a ratio with its interval: > 1 means the numerator is larger."""

    ratio: float  # median of per-round ratios (paired) or ratio of medians (unpaired)
    ci_low: float
    ci_high: float
    n: int  # rounds (paired) or the smaller sample (unpaired)
    confidence: float  # exact coverage (paired) or the bootstrap's nominal level (unpaired)
    paired: bool

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1.0, i.e. the variants differ beyond the noise."""
        return self.ci_low > 1.0 or self.ci_high < 1.0

    def direction(self, better: str) -> str:
        """Whether the numerator is "better", "worse" or "inconclusive" against the denominator,
        given whether "higher" or "lower" values of the measured quantity are better."""
        if better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
        if not self.significant:
            return "inconclusive"
        return "better" if (self.ci_low > 1.0) == (better == "higher") else "worse"

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str  # "confirmed", "not reproduced" or "inconclusive"
    rule: str  # the rule in words, with the threshold and the measured interval
    wording: str = ""  # the verdict as a reader should see it, e.g. "inconclusive about the
    # direction" (defaults to `verdict`)

    def __post_init__(self) -> None:
        if not self.wording:
            object.__setattr__(self, "wording", self.verdict)

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples: Sequence[float], confidence: float = 0.95) -> Summary:
    """The median with its distribution-free, order-statistic confidence interval."""
    _check_confidence(confidence)
    values = sorted(_finite(samples, "samples"))
    if not values:
        raise ValueError("cannot summarize an empty sample")
    j, k, coverage = _median_ranks(len(values), confidence)
    return Summary(
        median=statistics.median(values),
        ci_low=values[j - 1],
        ci_high=values[k - 1],
        n=len(values),
        confidence=coverage,
    )


def compare(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    paired: bool = True,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> Comparison:
    """The ratio numerator/denominator with a confidence interval.

    Paired: numerator[i] and denominator[i] come from the same interleaved round; the result is
    the median of the per-round ratios and its order-statistic interval, as `summarize`.
    Unpaired: the ratio of the medians with a percentile bootstrap interval drawn with
    random.Random(seed), so the same samples always give the same interval.
    """
    _check_confidence(confidence)
    num = _finite(numerator, "numerator")
    den = _finite(denominator, "denominator")
    if not num or not den:
        raise ValueError("cannot compare an empty sample")
    if (worst := min(den)) <= 0.0:
        raise ValueError(f"denominator samples must be positive to divide by, got {worst}")
    if paired:
        if len(num) != len(den):
            raise ValueError(
                f"paired samples need one of each per round: {len(num)} numerator samples, "
                f"{len(den)} denominator samples"
            )
        per_round = summarize([a / b for a, b in zip(num, den, strict=True)], confidence)
        return Comparison(
            ratio=per_round.median,
            ci_low=per_round.ci_low,
            ci_high=per_round.ci_high,
            n=per_round.n,
            confidence=per_round.confidence,
            paired=True,
        )
    if min(len(num), len(den)) < 2:
        raise ValueError("an unpaired comparison needs at least 2 samples of each variant")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, not {resamples}")
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(num, k=len(num)))
        / statistics.median(rng.choices(den, k=len(den)))
        for _ in range(resamples)
    )
    tail = (1.0 - confidence) / 2.0
    return Comparison(
        ratio=statistics.median(num) / statistics.median(den),
        ci_low=_percentile(ratios, tail),
        ci_high=_percentile(ratios, 1.0 - tail),
        n=min(len(num), len(den)),
        confidence=confidence,
        paired=False,
    )


def judge(
    comparison: Comparison | Summary, threshold: float, *, label: str, quoted: str | None = None
) -> Verdict:
    """Confirmed if the whole interval lies at or above `threshold`; inconclusive about the
    direction if it is a ratio's and contains 1; not reproduced if it lies wholly below the
    threshold (and off 1); inconclusive if it straddles the threshold. `label` names the
    measured quantity; `quoted`, when the ratio is to a figure a claim quotes (10 ms), names
    it, and the wording says on which side of it the measurement lies, as there is no
    direction between two variants to speak of."""
    level = _percent(comparison.confidence)
    limit = f"{threshold:g}"
    rule = (
        f"confirmed if the {level}% interval of {label} lies at or above {limit}; "
        f"not reproduced if it lies below {limit}"
        f"{' and excludes 1' if isinstance(comparison, Comparison) else ''}; "
        f"measured {format_interval(comparison)}"
    )
    low, high = comparison.ci_low, comparison.ci_high
    if low >= threshold:
        return Verdict("confirmed", rule)
    if quoted is not None:
        at = quoted if threshold == 1 else f"{threshold:g} x {quoted}"
        if high < threshold:
            return Verdict(
                "not reproduced", rule, f"not reproduced: wholly on the far side of {at}"
            )
        return Verdict("inconclusive", rule, f"inconclusive: the interval straddles {at}")
    if isinstance(comparison, Comparison) and low <= 1.0 <= high:  # a ratio's direction
        return Verdict(
            "inconclusive", rule, "inconclusive about the direction (interval includes 1)"
        )
    if high < threshold:
        if high < 1.0:
            return Verdict("not reproduced", rule, "not reproduced: the opposite holds here")
        return Verdict("not reproduced", rule, f"not reproduced: a real effect, below {limit}x")
    return Verdict("inconclusive", rule, f"inconclusive: the interval straddles {limit}")


def format_interval(
    summary_or_comparison: Summary | Comparison, unit: str = "", digits: int = 3
) -> str:
    """E.g. "1.84x (95% CI 1.62-2.10)" or "412 MB/s (95% CI 398-431)".

    Each number is shown to `digits` significant digits. A Comparison is a ratio, so its unit
    defaults to "x".
    """
    if isinstance(summary_or_comparison, Comparison):
        centre, unit = summary_or_comparison.ratio, unit or "x"
    else:
        centre = summary_or_comparison.median
    low, high = summary_or_comparison.ci_low, summary_or_comparison.ci_high
    separator = " to " if low < 0 or high < 0 else "-"
    spacing = "" if unit in ("", "x", "%") else " "
    return (
        f"{_significant(centre, digits)}{spacing}{unit} "
        f"({_percent(summary_or_comparison.confidence)}% CI "
        f"{_significant(low, digits)}{separator}{_significant(high, digits)})"
    )


@lru_cache(maxsize=256)
def _median_ranks(n: int, confidence: float) -> tuple[int, int, float]:
    """1-based ranks j <= k = n + 1 - j of the tightest order-statistic interval for the median
    whose coverage reaches `confidence`, and that coverage; (1, n) and its coverage if none does.

    Coverage of (X_(j), X_(k)) is P(j <= B <= n - j) for B ~ Binomial(n, 1/2), i.e.
    1 - 2 * P(B <= j - 1), computed exactly in integers and divided once.
    """
    total = 1 << n
    best_j, best_coverage = 1, (total - 2) / total  # (min, max): 1 - 2 * 0.5**n
    below = 0  # sum of C(n, i) for i < j: the ways B can fall below rank j
    term = 1  # C(n, j - 1)
    for j in range(1, (n + 1) // 2 + 1):
        below += term
        term = term * (n - j + 1) // j
        coverage = (total - 2 * below) / total
        if coverage < confidence:
            break
        best_j, best_coverage = j, coverage
    return best_j, n + 1 - best_j, best_coverage


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly between neighbours."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def _finite(samples: Sequence[float], name: str) -> list[float]:
    values = [float(x) for x in samples]
    for x in values:
        if not math.isfinite(x):
            raise ValueError(f"{name} must be finite numbers, got {x}")
    return values


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence}")


def _percent(coverage: float) -> str:
    """Coverage as a percentage, rounded down to 0.1 so it never overstates: 0.9785 -> "97.8"."""
    tenths = math.floor(coverage * 1000 + 1e-9)
    return f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}"


def _significant(x: float, digits: int) -> str:
    """x to `digits` significant digits, keeping trailing zeros and never in e-notation."""
    rounded = float(f"{x:.{digits - 1}e}")  # first, so 9.996 becomes 10.0, not 10.00
    if rounded == 0:
        return f"{0:.{digits - 1}f}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    return f"{rounded:.{decimals}f}"
