"""Medians with order-statistic intervals, paired and bootstrap ratios, verdicts, formatting."""

import math
import random
import statistics

import pytest

from scenarios.harness.claims import overall_verdict
from scenarios.harness.stats import Comparison, Summary, compare, format_interval, judge, summarize


def binomial_tolerance(p: float, trials: int) -> float:
    """Four standard deviations of a hit rate: a seeded draw stays inside it."""
    return 4 * math.sqrt(p * (1 - p) / trials)


@pytest.mark.parametrize("n", [9, 25])
@pytest.mark.parametrize(
    ("draw", "true_median"),
    [
        (lambda rng: rng.lognormvariate(1.0, 0.8), math.exp(1.0)),
        (lambda rng: rng.expovariate(0.5), math.log(2) / 0.5),
    ],
    ids=["lognormal", "exponential"],
)
def test_median_interval_covers_the_true_median_as_often_as_it_says(n, draw, true_median):
    rng = random.Random(n)
    trials = 2000
    summaries = [summarize([draw(rng) for _ in range(n)]) for _ in range(trials)]
    coverage = summaries[0].confidence
    assert all(s.confidence == coverage for s in summaries)
    hits = sum(s.ci_low <= true_median <= s.ci_high for s in summaries)
    tolerance = binomial_tolerance(coverage, trials)
    assert abs(hits / trials - coverage) <= tolerance
    assert hits / trials >= 0.95 - tolerance


@pytest.mark.parametrize(
    ("n", "low_rank", "high_rank", "coverage"),
    [
        # coverage of (X_(j), X_(n+1-j)) is 1 - 2 * P(Binomial(n, 1/2) <= j - 1)
        (6, 1, 6, 1 - 2 * 1 / 2**6),  # 0.969; j = 2 would give 0.781
        (9, 2, 8, 1 - 2 * 10 / 2**9),  # 0.961; j = 3 would give 0.820
        (10, 2, 9, 1 - 2 * 11 / 2**10),  # 0.979; j = 3 would give 0.891
        (20, 6, 15, 1 - 2 * 21700 / 2**20),  # 0.959; j = 7 would give 0.885
    ],
)
def test_ranks_are_the_tightest_reaching_95_percent(n, low_rank, high_rank, coverage):
    samples = list(range(1, n + 1))
    random.Random(n).shuffle(samples)
    summary = summarize(samples)
    assert (summary.ci_low, summary.ci_high) == (low_rank, high_rank)
    assert summary.confidence == pytest.approx(coverage, abs=1e-15)
    assert summary.median == (n + 1) / 2
    assert summary.n == n


def test_too_few_samples_give_min_to_max_with_their_real_coverage():
    summary = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert summary == Summary(median=3.0, ci_low=1.0, ci_high=5.0, n=5, confidence=0.9375)
    assert summarize([2.0, 1.0]).confidence == 0.5


def test_one_sample_is_a_degenerate_interval_with_no_coverage():
    assert summarize([7.5]) == Summary(median=7.5, ci_low=7.5, ci_high=7.5, n=1, confidence=0.0)


def test_lower_confidence_gives_a_tighter_interval():
    samples = list(range(1, 21))
    wide, narrow = summarize(samples, 0.99), summarize(samples, 0.80)
    assert wide.ci_low < narrow.ci_low and narrow.ci_high < wide.ci_high
    assert wide.confidence >= 0.99 and narrow.confidence >= 0.80


def test_summary_as_dict():
    assert summarize([1, 2, 3, 4, 5, 6]).as_dict() == {
        "median": 3.5,
        "ci_low": 1.0,
        "ci_high": 6.0,
        "n": 6,
        "confidence": 0.96875,
    }


def noisy_rounds(rng: random.Random, rounds: int, ratio: float) -> tuple[list, list]:
    """Per-round samples that share the round's machine state, numerator = ratio * denominator."""
    denominator, numerator = [], []
    for _ in range(rounds):
        machine = rng.lognormvariate(0.0, 0.5)  # a slow or fast round slows both variants
        denominator.append(100.0 * machine * rng.lognormvariate(0.0, 0.05))
        numerator.append(ratio * 100.0 * machine * rng.lognormvariate(0.0, 0.05))
    return numerator, denominator


def test_paired_compare_recovers_a_known_ratio():
    numerator, denominator = noisy_rounds(random.Random(1), rounds=15, ratio=2.0)
    result = compare(numerator, denominator)
    assert result.paired and result.n == 15
    assert result.ci_low <= 2.0 <= result.ci_high
    assert result.ratio == pytest.approx(2.0, rel=0.05)
    assert result.confidence == pytest.approx(1 - 2 * 576 / 2**15)  # ranks 4 and 12 of 15
    assert result.significant
    assert result.direction("higher") == "better"
    assert result.direction("lower") == "worse"
    swapped = compare(denominator, numerator)
    assert swapped.direction("higher") == "worse" and swapped.direction("lower") == "better"


def test_pairing_cancels_noise_shared_by_a_round():
    numerator, denominator = noisy_rounds(random.Random(2), rounds=15, ratio=1.2)
    paired = compare(numerator, denominator)
    unpaired = compare(numerator, denominator, paired=False)
    assert paired.significant and paired.direction("higher") == "better"
    assert not unpaired.significant  # the round-to-round spread hides the 20 % effect
    assert paired.ci_high - paired.ci_low < unpaired.ci_high - unpaired.ci_low


def test_identical_inputs_are_inconclusive():
    samples = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for paired in (True, False):
        result = compare(samples, samples, paired=paired)
        assert result.ratio == 1.0
        assert not result.significant
        assert result.direction("higher") == "inconclusive"
        assert result.direction("lower") == "inconclusive"


def test_unpaired_bootstrap_is_deterministic_with_its_seed():
    rng = random.Random(3)
    numerator = [rng.lognormvariate(math.log(200), 0.2) for _ in range(12)]
    denominator = [rng.lognormvariate(math.log(100), 0.2) for _ in range(9)]
    first = compare(numerator, denominator, paired=False, seed=7)
    assert compare(numerator, denominator, paired=False, seed=7) == first
    assert compare(numerator, denominator, paired=False, seed=8) != first
    assert not first.paired and first.n == 9 and first.confidence == 0.95
    assert first.ratio == statistics.median(numerator) / statistics.median(denominator)
    assert first.ci_low < first.ratio < first.ci_high
    assert first.ci_low <= 2.0 <= first.ci_high
    assert first.direction("higher") == "better"


def test_comparison_as_dict_says_whether_it_is_significant():
    result = compare([2.0, 2.2, 1.9, 2.1, 2.0, 2.05], [1.0] * 6)
    assert result.as_dict() == {
        "ratio": 2.025,
        "ci_low": 1.9,
        "ci_high": 2.2,
        "n": 6,
        "confidence": 0.96875,
        "paired": True,
        "significant": True,
    }


def interval(low: float, high: float) -> Comparison:
    return Comparison((low + high) / 2, low, high, n=10, confidence=0.978515625, paired=True)


@pytest.mark.parametrize(
    ("low", "high", "verdict", "wording"),
    [
        (2.1, 2.6, "confirmed", "confirmed"),
        (2.0, 2.6, "confirmed", "confirmed"),  # at the threshold counts
        (1.2, 1.9, "not reproduced", "not reproduced: a real effect, below 2x"),
        (0.5, 0.9, "not reproduced", "not reproduced: the opposite holds here"),
        (1.8, 2.2, "inconclusive", "inconclusive: the interval straddles 2"),
        (1.5, 2.0, "inconclusive", "inconclusive: the interval straddles 2"),
        # below the threshold, but it cannot even tell which variant is better
        (0.78, 1.9, "inconclusive", "inconclusive about the direction (interval includes 1)"),
        (0.9, 2.4, "inconclusive", "inconclusive about the direction (interval includes 1)"),
    ],
)
def test_judge_against_a_threshold(low, high, verdict, wording):
    result = judge(interval(low, high), 2.0, label="sequential/random MB/s")
    assert result.verdict == verdict
    assert result.wording == wording
    assert result.rule.startswith(
        "confirmed if the 97.8% interval of sequential/random MB/s lies at or above 2; "
        "not reproduced if it lies below 2 and excludes 1; measured "
    )
    assert result.as_dict() == {"verdict": verdict, "rule": result.rule, "wording": wording}


def test_judge_a_summary():
    summary = Summary(median=412.0, ci_low=398.0, ci_high=431.0, n=9, confidence=0.9609375)
    assert judge(summary, 300.0, label="sequential MB/s").verdict == "confirmed"
    assert judge(summary, 500.0, label="sequential MB/s").verdict == "not reproduced"
    assert judge(summary, 400.0, label="sequential MB/s").verdict == "inconclusive"
    # an absolute quantity has no direction: an interval around 1 MB/s is only below 300
    slow = Summary(median=1.0, ci_low=0.5, ci_high=2.0, n=9, confidence=0.9609375)
    assert judge(slow, 300.0, label="sequential MB/s").verdict == "not reproduced"


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["confirmed"], ("confirmed", "confirmed")),
        (["confirmed", "confirmed"], ("confirmed", "confirmed: 2 of 2 parts hold")),
        (
            ["confirmed", "not reproduced", "inconclusive"],
            ("not reproduced", "not reproduced: 1 of 3 parts hold"),
        ),
        (
            ["confirmed", "inconclusive"],
            ("inconclusive", "inconclusive: 1 of 2 parts hold, the rest undecided"),
        ),
    ],
)
def test_a_claim_in_several_parts_holds_when_every_part_does(verdicts, expected):
    assert overall_verdict([{"verdict": v} for v in verdicts]) == expected


def test_format_interval():
    ratio = Comparison(1.8412, 1.6249, 2.1, n=9, confidence=0.95, paired=False)
    assert format_interval(ratio) == "1.84x (95% CI 1.62-2.10)"
    summary = Summary(412.3, 398.1, 431.0, n=10, confidence=0.978515625)
    assert format_interval(summary, "MB/s") == "412 MB/s (97.8% CI 398-431)"
    assert format_interval(summary, "MB/s", digits=4) == "412.3 MB/s (97.8% CI 398.1-431.0)"
    negative = Summary(-0.5, -1.25, 0.25, n=6, confidence=0.96875)
    assert format_interval(negative, "ms") == "-0.500 ms (96.8% CI -1.25 to 0.250)"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: summarize([]), "empty"),
        (lambda: summarize([1.0, math.nan]), "finite"),
        (lambda: summarize([1.0, 2.0], confidence=1.0), "confidence"),
        (lambda: compare([], []), "empty"),
        (lambda: compare([1.0, 2.0], [1.0, 2.0, 3.0]), "paired"),
        (lambda: compare([1.0, 2.0], [1.0, 0.0]), "positive"),
        (lambda: compare([1.0, 2.0], [1.0, -2.0], paired=False), "positive"),
        (lambda: compare([1.0], [1.0, 2.0], paired=False), "at least 2"),
        (lambda: interval(0.9, 1.1).direction("faster"), "higher"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
