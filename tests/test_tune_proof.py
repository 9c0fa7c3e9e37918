"""kbench tune's proof without a broker: the order of its measurements, how the recommendation
is chosen from what was re-measured (the best, ties broken towards fewer changes, the defaults
kept unless beaten beyond the noise, infeasible candidates never chosen), the candidates it
re-measures, and the user's current settings read from .properties files."""

import optuna
import pytest

from scenarios.tuning import proof as proofs
from scenarios.tuning.objective import Measurement, Outcome, RatePoint
from scenarios.tuning.proof import DEFAULTS_NAME, Candidate, decide, interleaved, read_current
from scenarios.tuning.space import DEFAULTS, SpaceError, default_space


def _outcome(latency_ms: float, *, feasible: bool = True) -> Outcome:
    measured = Measurement(1000.0, latency_ms, latency_ms, latency_ms, 1.0, 1.0)
    return Outcome("latency", measured, 1000.0, feasible)


def _candidate(name: str, **changes) -> Candidate:
    return Candidate(name, {**DEFAULTS, **changes})


def _rounds(candidates: list[Candidate], latencies: dict[str, list[float]], infeasible=()):
    """What interleaved() takes, from each candidate's latency per round."""
    by_name = {c.name: iter(latencies[c.name]) for c in candidates}

    def evaluate(candidate: Candidate) -> Outcome:
        return _outcome(next(by_name[candidate.name]), feasible=candidate.name not in infeasible)

    return interleaved(evaluate, candidates, len(next(iter(latencies.values()))))


def test_the_candidates_are_measured_interleaved_order_reversed_every_other_round():
    candidates = [_candidate("D"), _candidate("A", **{"linger.ms": 0}), _candidate("B")]
    taken = _rounds(candidates, {"D": [1] * 4, "A": [1] * 4, "B": [1] * 4})
    assert [(r, name) for r, name, _ in taken] == [
        (0, "D"), (0, "A"), (0, "B"),
        (1, "B"), (1, "A"), (1, "D"),
        (2, "D"), (2, "A"), (2, "B"),
        (3, "B"), (3, "A"), (3, "D"),
    ]  # fmt: skip


def test_a_change_faster_beyond_the_noise_is_recommended():
    candidates = [_candidate(DEFAULTS_NAME), _candidate("trial 3", **{"linger.ms": 0})]
    taken = _rounds(candidates, {DEFAULTS_NAME: [10, 11, 12, 10, 11, 12], "trial 3": [5] * 6})
    proof = decide(candidates, taken, "lower")
    assert proof.best == "trial 3" and proof.tied == []
    assert proof.chosen == candidates[1]


def test_a_tie_goes_to_fewer_changes_and_the_defaults_win_a_tie_with_everything():
    fewer = _candidate("pruned", **{"linger.ms": 0})
    more = _candidate("trial 3", **{"linger.ms": 0, "batch.size": 65536})
    candidates = [_candidate(DEFAULTS_NAME), more, fewer]
    # trial 3 is best by its median, pruned indistinguishable from it; the defaults are slower
    taken = _rounds(
        candidates,
        {DEFAULTS_NAME: [20] * 6, "trial 3": [5, 6, 5, 6, 5, 6], "pruned": [6, 5, 6, 5, 6, 5.5]},
    )
    proof = decide(candidates, taken, "lower")
    assert proof.best == "trial 3" and proof.tied == ["pruned"]
    assert proof.chosen == fewer

    # the defaults indistinguishable from the best: no change is recommended
    taken = _rounds(
        candidates, {DEFAULTS_NAME: [5, 7, 5, 7, 5, 7], "trial 3": [6] * 6, "pruned": [9] * 6}
    )
    proof = decide(candidates, taken, "lower")
    assert proof.chosen is not None and proof.chosen.name == DEFAULTS_NAME


def test_an_infeasible_candidate_is_never_recommended_however_fast():
    candidates = [_candidate(DEFAULTS_NAME), _candidate("trial 1", acks="0")]
    taken = _rounds(
        candidates, {DEFAULTS_NAME: [10] * 4, "trial 1": [1] * 4}, infeasible={"trial 1"}
    )
    proof = decide(candidates, taken, "lower")
    assert proof.best == DEFAULTS_NAME and proof.chosen == candidates[0]
    taken = _rounds(
        candidates,
        {DEFAULTS_NAME: [10] * 4, "trial 1": [1] * 4},
        infeasible={"trial 1", DEFAULTS_NAME},
    )
    assert decide(candidates, taken, "lower").chosen is None


def test_current_settings_outside_the_space_are_measured_but_never_recommended():
    below = Candidate("current", {**DEFAULTS, "acks": "1"}, eligible=False)  # below acks=all
    candidates = [_candidate(DEFAULTS_NAME), below]
    proof = decide(
        candidates, _rounds(candidates, {DEFAULTS_NAME: [10] * 4, "current": [2] * 4}), "lower"
    )
    assert proof.standings["current"].feasible and proof.chosen == candidates[0]


def test_throughput_prefers_the_higher_rate_and_a_round_that_kept_nothing_has_no_ratio():
    def kept(rate: float) -> Outcome:
        measured = Measurement(rate or 500.0, 5.0, 2.0, 5.0, 1.0, 1.0)
        return Outcome("throughput", measured, rate, rate > 0, (RatePoint(measured, rate > 0),))

    candidates = [_candidate(DEFAULTS_NAME), _candidate("trial 2", **{"linger.ms": 20})]
    rates = {DEFAULTS_NAME: iter([1000, 0, 1000, 1000]), "trial 2": iter([4000, 4000, 0, 4000])}
    taken = interleaved(lambda c: kept(rates[c.name].__next__()), candidates, 4)
    proof = decide(candidates, taken, "higher")
    assert proof.chosen == candidates[1]
    ratio = proofs.ratio_of(proof.standings["trial 2"], proof.standings[DEFAULTS_NAME])
    assert ratio is not None and ratio.n == 2  # the rounds where one kept nothing left out
    assert ratio.ratio == pytest.approx(4.0)


def _study_with(trials: list[tuple[dict, float]]) -> optuna.Study:
    study = optuna.create_study()
    space = default_space()
    distributions = {
        p.name: optuna.distributions.CategoricalDistribution(p.choices)
        if p.choices
        else optuna.distributions.IntDistribution(p.low, p.high, log=p.log and p.low >= 1)
        for p in space.properties
    }
    for params, latency in trials:
        settings = {**DEFAULTS, **params}
        study.add_trial(
            optuna.trial.create_trial(
                params=settings,
                distributions=distributions,
                value=latency,
                user_attrs={"settings": settings, "latency_ms": latency, "feasible": True},
            )
        )
    return study


def test_the_candidates_are_the_baselines_the_top_trials_and_the_best_pruned():
    # linger.ms decides the latency; batch.size only came along
    trials = [({"linger.ms": linger, "batch.size": size}, 1.0 + linger) for linger, size in
              [(0, 2048), (0, 65536), (50, 4096), (100, 2048), (20, 8192), (80, 65536),
               (0, 8192), (60, 4096), (30, 2048), (90, 8192), (0, 4096), (70, 65536)]]  # fmt: skip
    study = _study_with(trials)
    ranked = sorted(study.trials, key=lambda t: t.value)
    current = {**DEFAULTS, "linger.ms": 10}
    chosen = proofs.candidates(study, default_space(), 2, current, ranked)
    names = [c.name for c in chosen]
    assert names[:2] == [DEFAULTS_NAME, proofs.CURRENT_NAME]
    assert names[2:4] == [f"trial {ranked[0].number}", f"trial {ranked[1].number}"]
    pruned = chosen[-1]
    assert pruned.name == proofs.PRUNED_NAME
    assert pruned.settings["linger.ms"] == 0  # what mattered stays
    assert pruned.settings["batch.size"] == DEFAULTS["batch.size"]  # what came along goes


def test_current_settings_are_read_from_properties_files(tmp_path):
    producer = tmp_path / "producer.properties"
    producer.write_text(
        "# ours\nbootstrap.servers=kafka:9092\nlinger.ms = 20\nacks: -1\n! old\n"
        "compression.type=lz4\nkey.serializer=org.apache.kafka.common.serialization.StringSerializer\n"
    )
    consumer = tmp_path / "consumer.properties"
    consumer.write_text("fetch.wait.max.ms=100\n")  # librdkafka's name for fetch.max.wait.ms
    settings, ignored = read_current([str(producer), str(consumer)])
    assert settings == {
        **DEFAULTS,
        "linger.ms": 20,
        "acks": "all",
        "compression.type": "lz4",
        "fetch.max.wait.ms": 100,
    }
    assert ignored == ["bootstrap.servers", "key.serializer"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linger.ms=soon\n", ":1: linger.ms: expected a whole number, got 'soon'"),
        ("\nacks=2\n", ":2: acks: expected one of 0, 1, all, got '2'"),
        ("=5\n", ":1: expected NAME=VALUE, got '=5'"),
    ],
)
def test_a_bad_current_setting_is_named_in_one_line(tmp_path, text, message):
    path = tmp_path / "producer.properties"
    path.write_text(text)
    with pytest.raises(SpaceError) as error:
        read_current([str(path)])
    assert str(error.value) == f"--current {path}{message}" and "\n" not in str(error.value)
