"""The runner: interleaved rounds, warm-ups kept but not counted, statistics and verdicts."""

import os
import time

import pytest

from scenarios.harness.runner import Interrupted, run_scenario
from scenarios.harness.scenario import (
    Bound,
    ClaimCheck,
    Contrast,
    Metric,
    RunContext,
    Scenario,
    Skip,
    Variant,
)


class Doubling(Scenario):
    """A deterministic scenario: variant "fast" does twice the work per second of "slow"."""

    name = "doubling"
    title = "A known ratio"
    question = "Does the runner recover a 2x ratio?"
    parameters = {"rounds": "repeats"}
    profiles = {"smoke": {"rounds": 7}}
    metrics = (Metric("ops", "ops/s", "higher"),)

    def __init__(self) -> None:
        self.order: list[str] = []

    def variants(self, params):
        return [Variant("fast", {"scale": 2.0}), Variant("slow", {"scale": 1.0})]

    def contrasts(self, params):
        return [Contrast("fast-vs-slow", "ops", "fast", "slow", "fast/slow ops")]

    def claim_checks(self, params):
        return [ClaimCheck("batching", "fast-vs-slow", 1.5)]

    def measure(self, ctx, variant):
        self.order.append(variant.name)
        round_noise = 1.0 + 0.01 * ((len(self.order) - 1) // 2)  # drift shared within a round
        return {"ops": 100.0 * variant.params["scale"] * round_noise}


def test_rounds_interleave_and_warmups_are_kept_but_not_counted(tmp_path):
    scenario = Doubling()
    ctx = RunContext(work_dir=str(tmp_path), params=dict(scenario.profiles["smoke"]))
    advanced = []
    result = run_scenario(scenario, ctx, "smoke", advanced.append)
    # warm-up (round -1, reversed since odd), then A B, B A, A B ...
    assert scenario.order[:6] == ["slow", "fast", "fast", "slow", "slow", "fast"]
    assert sum(advanced) == 16
    assert [s.round for s in result.samples if s.warmup] == [-1, -1]
    assert len(result.samples) == 16
    summary = result.summaries["fast"]["ops"]
    assert summary["n"] == 7 and summary["ci_low"] <= summary["median"] <= summary["ci_high"]
    [contrast] = result.contrasts
    assert contrast["comparison"]["ratio"] == pytest.approx(2.0)
    assert contrast["direction"] == "better"
    [claim] = result.claims
    assert (claim["id"], claim["verdict"]) == ("batching", "confirmed")
    assert "1.5" in claim["rule"]
    for sample in result.samples:  # no broker: the client (this process) is the only role
        assert set(sample.resources["processes"]) == {"client"}


class Level(Doubling):
    """Claims that quote a level: "fast" makes 200 ops/s, "slow" 100 ops/s."""

    def contrasts(self, params):
        return [
            Contrast("fast-vs-150", "ops", "fast", Bound(150.0, "150 ops/s"), "fast / 150 ops/s"),
            Contrast("150-vs-slow", "ops", Bound(150.0, "150 ops/s"), "slow", "150 ops/s / slow"),
            Contrast("fast-vs-300", "ops", "fast", Bound(300.0, "300 ops/s"), "fast / 300 ops/s"),
        ]

    def claim_checks(self, params):
        return [
            ClaimCheck("node-peak", "fast-vs-150", 1.0),
            ClaimCheck("node-peak", "150-vs-slow", 1.0),
            ClaimCheck("node-peak", "fast-vs-300", 1.0),
        ]


def test_a_contrast_against_a_quoted_level_scales_the_median_and_its_interval(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    result = run_scenario(Level(), ctx, "smoke")
    above, below, _ = result.contrasts
    fast = result.summaries["fast"]["ops"]
    assert above["comparison"]["ratio"] == pytest.approx(fast["median"] / 150.0)
    assert above["comparison"]["ci_low"] == pytest.approx(fast["ci_low"] / 150.0)
    assert above["comparison"]["ci_high"] == pytest.approx(fast["ci_high"] / 150.0)
    assert (above["numerator"], above["denominator"]) == ("fast", "150 ops/s")
    assert (below["numerator"], below["denominator"]) == ("150 ops/s", "slow")
    assert below["comparison"]["ratio"] == pytest.approx(1.5, rel=0.05)
    assert [c["verdict"] for c in result.claims] == ["confirmed", "confirmed", "not reproduced"]
    # a level is no variant: the wording says on which side of it the measurement lies
    assert result.claims[2]["wording"] == "not reproduced: wholly on the far side of 300 ops/s"


class Burning(Doubling):
    """Variant "burn" spends CPU in this process, "sleep" waits as long without using any."""

    def variants(self, params):
        return [Variant("burn", {}), Variant("sleep", {})]

    def contrasts(self, params):
        return []

    def claim_checks(self, params):
        return []

    def measure(self, ctx, variant):
        if variant.name == "sleep":
            time.sleep(BURN_S)
        else:
            until = time.process_time() + BURN_S  # CPU time, so a busy machine cannot shorten it
            while time.process_time() < until:
                sum(range(2000))  # user time; reading the clock alone is half system time
        return {"ops": 1.0}


BURN_S = 0.2


def test_the_client_cpu_of_each_sample_is_the_work_of_its_variant(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 2})
    result = run_scenario(Burning(), ctx, "smoke")
    assert result.error is None
    by_variant: dict[str, list[float]] = {"burn": [], "sleep": []}
    for sample in result.samples:
        by_variant[sample.variant].append(sample.resources["processes"]["client"]["user_s"])
    assert len(by_variant["burn"]) == len(by_variant["sleep"]) == 3  # a warm-up and 2 rounds
    # CPU time counts in clock ticks (10 ms), and the meter's sampling thread costs a little
    assert min(by_variant["burn"]) >= BURN_S - 0.03, by_variant
    assert max(by_variant["sleep"]) < BURN_S / 4, by_variant


def test_too_few_rounds_claim_nothing(tmp_path):
    scenario = Doubling()
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 3})
    result = run_scenario(scenario, ctx, "smoke")
    assert result.contrasts[0]["direction"] == "inconclusive"
    assert result.claims[0]["verdict"] == "inconclusive"
    assert "too few rounds" in result.claims[0]["rule"]


class Refusing(Doubling):
    def setup(self, ctx):
        raise Skip("needs the engine's own switches")


def test_a_skipped_scenario_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    advanced = []
    result = run_scenario(Refusing(), ctx, "smoke", advanced.append)
    assert result.skipped == "needs the engine's own switches"
    assert result.samples == [] and sum(advanced) == 16
    assert os.path.isdir(tmp_path)


class Failing(Doubling):
    def measure(self, ctx, variant):
        if len(self.order) == 5:
            raise OSError("disk went away")
        return super().measure(ctx, variant)


def test_a_failing_scenario_keeps_its_samples_and_says_why(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    advanced = []
    result = run_scenario(Failing(), ctx, "smoke", advanced.append)
    assert result.error == "OSError: disk went away"
    assert len(result.samples) == 5 and result.contrasts == []
    assert sum(advanced) == 16  # the progress bar still reaches its end


class Watching(Doubling):
    def setup(self, ctx):
        path = os.path.join(ctx.work_dir, "watched.data")
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20))
        ctx.watched.append(path)


def test_watched_files_have_their_residency_recorded(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    result = run_scenario(Watching(), ctx, "smoke")
    for sample in result.samples:
        [(path, residency)] = sample.resources["page_cache_residency"].items()
        assert path.endswith("watched.data")
        # written just before and never evicted: all of it is in the page cache
        assert residency == {"before": 1.0, "after": 1.0}


class Saturating(Doubling):
    """ "slow" reports, beside its metric, that it delivered less than it was offered."""

    def measure(self, ctx, variant):
        return {**super().measure(ctx, variant), "achieved": 0.5 if variant.name == "slow" else 1}

    def undecided(self, check, samples):
        short = sum(v["achieved"] < 0.95 for v in samples["slow"])
        return f"saturated: {short} of {len(samples['slow'])} samples of slow" if short else None


def test_a_scenario_can_keep_a_claim_from_being_decided_by_its_samples(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    result = run_scenario(Saturating(), ctx, "smoke")
    [claim] = result.claims
    assert result.contrasts[0]["comparison"]["ratio"] == pytest.approx(2.0)  # clear, yet:
    assert claim["verdict"] == "inconclusive"
    assert claim["wording"] == "inconclusive: saturated: 7 of 7 samples of slow"
    assert claim["rule"].startswith("not decided: saturated: 7 of 7 samples of slow; confirmed if")


class Interrupting(Doubling):
    def measure(self, ctx, variant):
        if len(self.order) == 3:
            raise KeyboardInterrupt
        return super().measure(ctx, variant)


def test_ctrl_c_hands_back_the_samples_taken_and_tears_down(tmp_path):
    scenario = Interrupting()
    torn_down = []
    scenario.teardown = lambda ctx: torn_down.append(ctx)  # type: ignore[method-assign]
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    with pytest.raises(Interrupted) as caught:
        run_scenario(scenario, ctx, "smoke")
    assert len(caught.value.result.samples) == 3
    assert caught.value.result.error == "interrupted (Ctrl-C) after 3 samples"
    assert torn_down == [ctx]


class BrokenSetup(Doubling):
    def setup(self, ctx):
        raise ConnectionRefusedError("no broker")


def test_a_setup_that_fails_is_an_error_of_that_scenario_only(tmp_path):
    ctx = RunContext(work_dir=str(tmp_path), params={"rounds": 7})
    advanced = []
    result = run_scenario(BrokenSetup(), ctx, "smoke", advanced.append)
    assert result.error == "setup failed: ConnectionRefusedError: no broker"
    assert result.samples == [] and sum(advanced) == 16
