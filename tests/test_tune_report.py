"""kbench tune's page and results file (scenarios/tuning/report.py), from real Optuna studies in
SQLite whose trials carry what objective.record keeps, and a proof taken by proof.interleaved
from a measure that computes its figures (no broker: tests/test_tune_search.py runs the real
thing end to end). Checked as a reader would: the results file validates, `kbench compare` and
`kbench report` read it, and the page holds every trial, the Pareto front, the recommendation,
the proof, and says why importances are missing when they are."""

import io
import os
import re
import shutil
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from scenarios.harness import results
from scenarios.tuning import proof as proofs
from scenarios.tuning import report
from scenarios.tuning.objective import Measurement, Outcome, parse_slo
from scenarios.tuning.proof import DEFAULTS_NAME, Candidate, Proof, decide, interleaved
from scenarios.tuning.space import DEFAULTS, default_space
from scenarios.tuning.study import Options
from scenarios.tuning.workload import load, trial_durations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(
    ROOT, "scenarios", "tuning", "workloads", "1-topic-1-partition-100b-1k.yaml"
)
SLO = parse_slo("p99<=20ms")
DISTRIBUTIONS = {
    "batch.size": IntDistribution(1024, 1 << 20, log=True),
    "linger.ms": IntDistribution(0, 100),
    "compression.type": CategoricalDistribution(("none", "gzip", "snappy", "lz4", "zstd")),
}
# (linger.ms, p99 ms, fraction of the offered 1,000 records/s kept): the defaults (5 ms) and
# linger.ms 0 are feasible and neither beats the other on both (0 is faster but kept less);
# 80 misses the bound, 10 did not keep the rate, 7 is beaten by the defaults on both
PLANTED = [(5, 4.5, 1.0), (0, 2.0, 0.97), (80, 42.0, 1.0), (10, 6.0, 0.5), (7, 6.0, 0.99)]
FRONT = {0, 1}
RECOMMENDED = "trial 1"  # linger.ms 0: the proof's fastest


def _options(tmp_path, trials: int = 5, smoke: bool = True) -> Options:
    workload = load(WORKLOAD)
    output = tmp_path / "out"
    output.mkdir(exist_ok=True)
    return Options(
        workload,
        trial_durations(workload, 0.05, smoke),
        SLO,
        default_space(),
        trials,
        str(output / "study.db"),
        str(output),
        proof_rounds=2,
    )


def _study(options: Options, planted=PLANTED, *, directions=("minimize",)) -> optuna.Study:
    """A study as kbench tune keeps it, its trials added with what objective.record sets."""
    study = optuna.create_study(
        storage=f"sqlite:///{options.storage}",
        study_name="kbench-tune",
        directions=list(directions),
    )
    study.set_user_attr("spec", "test")
    for linger, latency, kept in planted:
        params = {"batch.size": 16384, "linger.ms": linger, "compression.type": "none"}
        if linger % 3 == 1:  # vary the others a little, as a search does
            params |= {"batch.size": 1024 * (linger + 1), "compression.type": "lz4"}
        attrs = {
            "settings": {**DEFAULTS, **params},
            "latency_ms": latency,
            "p50_ms": latency / 3,
            "p99_ms": latency,
            "kept_fraction": kept,
            "achieved_fraction": kept,
            "feasible": kept >= 0.95 and latency <= SLO.bound_ms,
        }
        throughput = options.workload.producer_rate * kept
        if len(directions) > 1:  # a throughput-mode study, which records its throughput
            attrs["throughput_rps"] = throughput
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: DISTRIBUTIONS[k] for k in params},
                values=[throughput, latency] if len(directions) > 1 else [latency],
                user_attrs=attrs,
                constraints={
                    "kept_offered_rate": 0.95 - kept,
                    "slo": latency - SLO.bound_ms,
                },
            )
        )
    return study


def _proof(candidates: dict, rounds: int = 4) -> Proof:
    """The proof taken and decided as kbench tune does, of a measure whose latency is 1 ms plus
    half linger.ms, and a little more every round."""
    count = iter(range(1000))
    listed = [Candidate(name, settings) for name, settings in candidates.items()]

    def evaluate(candidate: Candidate) -> Outcome:
        latency = 1 + candidate.settings["linger.ms"] / 2 + next(count) * 0.01
        measured = Measurement(1000.0, latency, latency / 3, latency, 1.0, 0.99)
        return Outcome("latency", measured, 1000.0, measured.feasible(SLO))

    proof = decide(listed, interleaved(evaluate, listed, rounds), "lower")
    proofs.show(proof, SLO, "latency", io.StringIO())  # sets its verdict
    return proof


def _candidates(study: optuna.Study) -> dict:
    return {DEFAULTS_NAME: dict(DEFAULTS), RECOMMENDED: study.trials[1].user_attrs["settings"]}


def _kbench(*args: str, cwd) -> subprocess.CompletedProcess:
    """This checkout's kbench (the console script may be another's), run in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _rows(page: str) -> dict[int, str]:
    """The trials table's rows by trial number."""
    rows = re.findall(r'<tr><td class="num" data-trial="(\d+)">.*?</tr>', page)
    bodies = re.findall(r'(<tr><td class="num" data-trial="\d+">.*?</tr>)', page)
    return {int(n): body for n, body in zip(rows, bodies, strict=True)}


def test_the_results_file_validates_and_compare_and_report_read_two_of_them(tmp_path):
    options = _options(tmp_path)
    study = _study(options)
    candidates = {**_candidates(study), "current": {**DEFAULTS, "linger.ms": 20}}
    proof = _proof(candidates)
    taken = proof.taken
    paths = [report.write_results(study, options, proof, bootstrap="h:1") for _ in range(2)]
    assert all(os.path.dirname(p) == options.output for p in paths)
    assert all(re.fullmatch(r"kbench-.*-[0-9a-f]{12}\.json", os.path.basename(p)) for p in paths)
    document = results.load(paths[0])  # validated against the schema
    assert document["profile"] == "smoke"
    (scenario,) = document["scenarios"]
    assert scenario["name"] == "tune-1 topic / 1 partition / 100b / 1k msg/s"
    assert [v["name"] for v in scenario["variants"]] == list(candidates)
    assert scenario["variants"][1]["params"] == candidates[RECOMMENDED]
    # every proof measurement a sample, and nothing of the search's trials
    assert len(scenario["samples"]) == len(taken) == 12
    assert {(s["variant"], s["round"]) for s in scenario["samples"]} == {
        (name, r) for r, name, _ in taken
    }
    assert scenario["samples"][0]["values"]["p99_latency_ms"] == taken[0][2].measurement.latency_ms
    assert scenario["samples"][0]["values"]["throughput_rps"] == 1000.0
    assert set(scenario["summaries"]) == set(candidates)
    # linger.ms 0 (1 ms) against 5 (3.5 ms) and 20 (11 ms), paired by round, written as the
    # harness writes a lower-is-better contrast: baseline over technique
    contrasts = {c["name"]: c for c in scenario["contrasts"]}
    assert set(contrasts) == {f"Kafka's defaults/{RECOMMENDED}", f"current/{RECOMMENDED}"}
    gain = contrasts[f"Kafka's defaults/{RECOMMENDED}"]
    assert gain["metric"] == "p99_latency_ms"
    assert (gain["numerator"], gain["denominator"]) == (DEFAULTS_NAME, RECOMMENDED)
    assert gain["direction"] == "worse" and gain["comparison"]["ratio"] > 3
    assert contrasts[f"current/{RECOMMENDED}"]["comparison"]["ratio"] > 10

    compared = _kbench("compare", *paths, cwd=ROOT)
    assert compared.returncode == 0, compared.stderr
    assert f"{RECOMMENDED} p99_latency_ms" in compared.stdout
    assert "0 regressed" in compared.stdout
    # with no files named, `kbench report` finds them where kbench tune's --output puts them
    pages = tmp_path / "reports"
    (pages / "tune-1k").mkdir(parents=True)
    for path in paths:
        shutil.copy(path, pages / "tune-1k")
    reported = _kbench("report", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    assert "tune-1 topic" in (pages / "kbench-history.html").read_text()
    run_page = _read(str(next(pages.glob("kbench-*-*.html"))))
    assert f"{RECOMMENDED}, as favoured" in run_page  # coloured as the recommendation winning


def test_the_page_shows_every_trial_the_front_the_recommendation_and_the_proof(tmp_path):
    options = _options(tmp_path)
    study = _study(options)
    candidates = _candidates(study)
    recommended = candidates[RECOMMENDED]
    path = report.write_page(study, options, _proof(candidates), recommended)
    assert path == os.path.join(options.output, "report.html")
    page = _read(path)
    rows = _rows(page)
    assert set(rows) == set(range(len(PLANTED)))
    states = {n: re.search(r'class="t-(\w+)"', row)[1] for n, row in rows.items()}
    assert states == {0: "feasible", 1: "feasible", 2: "infeasible", 3: "saturated", 4: "feasible"}
    assert {n for n, row in rows.items() if "Pareto front" in row} == FRONT
    assert [n for n, row in rows.items() if "recommended" in row] == [1]
    for figure in ("trials", "slices", "proof"):
        assert f'data-figure="{figure}"><img src="data:image/png;base64,' in page
    # five trials: too few to tell importances, and the page says so
    assert 'data-importance="none"' in page and "at least 10 completed trials" in page
    assert "<code>linger.ms</code>" in page  # the property recommended, against its default
    assert f"proof (4 interleaved rounds): recommended: {RECOMMENDED} (the best)" in page
    assert f"Kafka&#x27;s defaults / {RECOMMENDED}, p99_latency_ms" in page
    assert f"{RECOMMENDED} better" in page


def test_importances_are_drawn_once_enough_trials_vary(tmp_path):
    options = _options(tmp_path, trials=12)
    planted = PLANTED + [(linger, 1 + linger / 2, 1.0) for linger in range(20, 90, 10)]
    study = _study(options, planted)
    found, why = report.importances(study, "latency_ms")
    assert why == "" and set(found) == set(DISTRIBUTIONS)
    assert max(found, key=found.__getitem__) == "linger.ms"  # latency follows linger.ms here
    page = _read(report.write_page(study, options, None, dict(DEFAULTS)))
    assert 'data-figure="importance"' in page


def test_a_throughput_study_draws_its_own_pareto_front(tmp_path):
    options = _options(tmp_path)
    study = _study(options, directions=("maximize", "minimize"))
    study.set_user_attr("objective", "throughput")
    points = report.trial_points(study, options.workload.producer_rate)
    front = report.pareto_front(study, points)
    assert {p.number for p in front} == FRONT == {t.number for t in study.best_trials}
    page = _read(report.write_page(study, options, None, dict(DEFAULTS)))
    assert "throughput mode" in page
    # its slices show what it maximised first: records/s kept, against each parameter
    chart = report.slices_chart(study, points, options)
    assert chart is not None and chart.title.startswith("Slices: records/s kept against")


@pytest.mark.parametrize("proved", [False, True])
def test_a_single_trial_study_has_a_page_and_a_results_file(tmp_path, proved):
    options = _options(tmp_path, trials=1, smoke=False)
    study = _study(options, PLANTED[:1])
    candidates = {DEFAULTS_NAME: dict(DEFAULTS), RECOMMENDED: dict(DEFAULTS)}
    proof = _proof(candidates, 2) if proved else None
    written = report.write_results(study, options, proof, bootstrap="h:1")
    document = results.load(written)
    assert document["profile"] == "quick"  # the workload's durations scaled by 0.05
    (scenario,) = document["scenarios"]
    assert (scenario["skipped"] is None) == proved
    page = _read(report.write_page(study, options, proof, dict(DEFAULTS)))
    assert set(_rows(page)) == {0}
    assert "at least 10 completed trials" in page
    assert "Pareto front" in _rows(page)[0] and "recommended" in _rows(page)[0]


def test_a_study_with_no_feasible_trial_says_nothing_is_recommended(tmp_path):
    options = _options(tmp_path)
    study = _study(options, PLANTED[2:4])
    page = _read(report.write_page(study, options, None, None))
    assert "No feasible trial" in page
    assert "no proof: no trial was feasible" in page
    assert not any("Pareto front" in row for row in _rows(page).values())
