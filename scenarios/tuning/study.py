"""The search: `kbench tune WORKLOAD.yaml --slo p99<=20ms --trials N`.

Each trial is a real measurement (scenarios.tuning.measure): the workload offered open loop by a
confluent-kafka producer to a fresh topic, tailed by a confluent-kafka consumer, each in its own
process (scenarios.clients.pipeline), every property of the space passed explicitly; the topic
is deleted afterwards. What a trial's value is depends on the objective
(scenarios.tuning.objective): the SLO's percentile at the workload's producerRate (latency), or
the highest rate kept within the SLO, found by a rate search, with the percentile at it
(throughput: a multi-objective study whose Pareto front is the trade-off). Optuna's TPE chooses
the settings, its study kept in a SQLite file (RDB storage), so every trial is kept and
`--resume` continues a stopped search. Kafka's defaults are the first trial of a new study, when
the space holds them.

The leading candidates are then re-measured interleaved against Kafka's defaults (and the
user's current settings) and the recommendation chosen from that (scenarios.tuning.proof). It is
written as producer.properties and consumer.properties holding only the settings that differ
from Kafka's defaults: the defaults themselves unless a change beat them beyond the noise.
"""

import os
import sys
import uuid
from dataclasses import dataclass
from typing import TextIO

import optuna

from scenarios.clients.cluster import ClusterError, delete_topics, probe
from scenarios.tuning import proof as proofs
from scenarios.tuning import space as spaces
from scenarios.tuning.measure import Measure, Measurer, TrialFailed, TuneError, target
from scenarios.tuning.objective import Outcome, SearchShape, Slo, directions, evaluate, record
from scenarios.tuning.proof import DEFAULTS_NAME, Candidate
from scenarios.tuning.space import DEFAULTS, Space, Value
from scenarios.tuning.workload import Durations, Workload

STUDY_NAME = "kbench-tune"
PROOF_ROUNDS = 6  # paired, the widest interval (min, max) of 6 ratios covers the median 96.8 %
SMOKE_PROOF_ROUNDS = 2  # the fewest that interleave both orders
TOP = 2  # the search's best trials re-measured in the proof
FIRST_RATE = 1000.0  # records/s a throughput search starts from when the workload gives none


class TuneInterrupted(Exception):
    """Ctrl-C: what was measured is kept in `storage` (`trials` finished trials)."""

    def __init__(self, storage: str, trials: int) -> None:
        super().__init__(storage)
        self.storage = storage
        self.trials = trials


@dataclass(frozen=True)
class Options:
    workload: Workload
    durations: Durations
    slo: Slo
    space: Space
    trials: int
    storage: str  # the SQLite file
    output: str  # where the properties files go
    objective: str = "latency"  # scenarios.tuning.objective.OBJECTIVES
    bootstrap: str | None = None  # None: start an engine broker
    resume: bool = False
    proof_rounds: int = PROOF_ROUNDS
    top: int = TOP
    current: dict[str, Value] | None = None  # the user's settings, a baseline of the proof
    seed: int | None = None
    smoke: bool = False  # shorter rate searches, no warm-up measurement

    @property
    def first_rate(self) -> float:
        return float(self.workload.producer_rate) or FIRST_RATE

    def search_shape(self, start: float) -> SearchShape:
        """A trial's rate search: doubling (the factor squared after each kept step, up to 16,
        from far below) then two bisections."""
        if self.smoke:
            return SearchShape(start, factor=2.0, refine=0, max_steps=2)
        return SearchShape(start, factor=2.0, refine=2, max_steps=8, max_factor=16.0)

    def proof_shape(self, start: float) -> SearchShape:
        """A proof round's rate search: a few steps of 1.25x around the rate the search found."""
        if self.smoke:
            return SearchShape(start, factor=1.25, refine=0, max_steps=2)
        return SearchShape(start, factor=1.25, refine=1, max_steps=4)


def open_study(options: Options, spec: str) -> optuna.Study:
    """The study in options.storage: a new one, or with --resume the one there, which must have
    been started for the same workload, durations, SLO and space (`spec`)."""
    # each trial gets kbench's own line; Optuna's warnings on a failed trial carry tracebacks
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"sqlite:///{os.path.abspath(options.storage)}"
    try:
        existing = os.path.exists(options.storage) and any(
            s.study_name == STUDY_NAME for s in optuna.get_all_study_summaries(url)
        )
    except Exception as exc:  # SQLAlchemy's errors: not a database, or not Optuna's
        raise TuneError(f"--storage {options.storage}: not an Optuna study file ({exc})") from None
    if existing and not options.resume:
        raise TuneError(
            f"{options.storage} already holds a study: --resume continues it, or give another "
            "--storage"
        )
    if options.resume and not existing:
        raise TuneError(f"--resume: {options.storage} holds no study to continue")
    sampler = optuna.samplers.TPESampler(seed=options.seed)
    study = optuna.create_study(
        storage=url,
        sampler=sampler,
        study_name=STUDY_NAME,
        load_if_exists=options.resume,
        directions=directions(options.objective),
    )
    if existing:
        if study.user_attrs.get("spec") != spec:
            raise TuneError(
                f"--resume: the study in {options.storage} was started for another search "
                f"({study.user_attrs.get('spec')}); give another --storage for this one"
            )
    else:
        study.set_user_attr("spec", spec)
        study.set_user_attr("objective", options.objective)
        study.set_user_attr("slo", options.slo.text)
        searched = {p.name for p in options.space.properties if p.searched}
        if options.space.contains(DEFAULTS):  # the baseline, measured in the search too
            study.enqueue_trial({k: v for k, v in DEFAULTS.items() if k in searched})
    return study


def spec_of(options: Options) -> str:
    """What a resumed study must share with the one it continues, in one line."""
    w = options.workload
    return (
        f"workload {w.name} at {w.producer_rate} records/s; {options.durations.how}; "
        f"{options.objective} under SLO {options.slo.text}; {options.space.describe()}"
    )


def ranked(study: optuna.Study, objective: str) -> list[optuna.trial.FrozenTrial]:
    """The feasible trials, best first: lowest latency, or highest rate kept then lowest latency.
    Chosen from what objective.record kept with each trial, not from study.best_trial(s), which
    ignore feasibility or rank by the Pareto front."""
    feasible = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("feasible")
    ]
    if objective == "latency":
        return sorted(feasible, key=lambda t: t.user_attrs["latency_ms"])
    return sorted(
        feasible, key=lambda t: (-t.user_attrs["throughput_rps"], t.user_attrs["latency_ms"])
    )


def tune(options: Options, out: TextIO | None = None) -> int:
    """Run the search and the proof; 0 when the properties files were written, 1 when no trial
    was feasible. TuneError for what cannot be used, TuneInterrupted on Ctrl-C. `out`: where
    the account goes (default: stdout at the time of the call)."""
    out = out or sys.stdout
    workload, slo = options.workload, options.slo
    if options.bootstrap is not None:  # before the study file is made: a typo must not keep one
        try:
            probe(options.bootstrap)
        except ClusterError as exc:
            raise TuneError(f"--bootstrap: {exc}") from None
    study = open_study(options, spec_of(options))
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    before = len(study.get_trials(deepcopy=False, states=ended))  # not the enqueued defaults
    rate = f"{workload.producer_rate:,} records/s" if workload.producer_rate else "producerRate 0"
    print(
        f"kbench tune: {workload.name}: {rate} of {workload.message_size} B; "
        f"{options.durations.how}",
        file=out,
    )
    for note in workload.notes():
        print(f"note: {note}", file=out)
    floor = f"; floor {', '.join(options.space.floor)}" if options.space.floor else ""
    if options.objective == "latency":
        goal = f"minimise {slo.label} at {workload.producer_rate:,} records/s subject to {slo.text}"
    else:
        goal = (
            f"maximise the records/s kept within {slo.text} (a rate search per trial, from "
            f"{options.first_rate:,.0f} records/s), and minimise {slo.label} at it"
        )
    print(f"objective: {goal}{floor}", file=out)
    print(f"space: {options.space.describe()}", file=out)
    print(
        f"study: {options.storage} ({'resumed, ' if options.resume else ''}{before} trials "
        f"before this run, {options.trials} more)",
        file=out,
        flush=True,
    )
    prefix = f"kbench-tune-{uuid.uuid4().hex[:8]}-"
    try:
        with target(options.bootstrap) as (bootstrap, broker_pid):
            print(f"target: {'engine broker ' if broker_pid else ''}{bootstrap}", file=out)
            measure = Measurer(bootstrap, broker_pid, workload, options.durations, slo, prefix)
            try:
                if not options.smoke:  # as the harness's warm-up round: a first run is slower
                    print(f"warm-up: one measurement of {DEFAULTS_NAME}, discarded", file=out)
                    try:
                        measure(dict(DEFAULTS), options.first_rate)
                    except TrialFailed as exc:
                        raise TuneError(
                            f"the warm-up measurement did not complete: {exc}"
                        ) from None
                return _search_and_prove(options, study, measure, out)
            finally:
                measure.close()
                if options.bootstrap is not None:  # an engine broker's topics go with it
                    _delete_left_topics(bootstrap, prefix)
    except KeyboardInterrupt:
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        raise TuneInterrupted(options.storage, len(finished)) from None


def _search_and_prove(options: Options, study: optuna.Study, measure: Measurer, out: TextIO) -> int:
    from scenarios.tuning import report as pages  # matplotlib: imported only by a search

    slo, objective = options.slo, options.objective

    def trial_value(trial: optuna.Trial) -> float | list[float]:
        settings = options.space.suggest(trial)
        trial.set_user_attr("settings", settings)  # the fixed ones too: what was measured
        best = ranked(study, objective)  # a rate search starts at the highest rate kept so far
        start = best[0].user_attrs["throughput_rps"] if best and objective != "latency" else 0
        try:
            outcome = evaluate(
                lambda rate: measure(settings, rate),
                objective,
                slo,
                options.first_rate,
                options.search_shape(start or options.first_rate),
            )
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            raise
        return record(trial, outcome, slo)

    def report(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        print(_trial_line(trial, slo), file=out, flush=True)

    study.optimize(trial_value, n_trials=options.trials, catch=(TrialFailed,), callbacks=[report])
    leading = ranked(study, objective)
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not leading:
        kept = (
            f"kept {options.workload.producer_rate:,} records/s and met {slo.text}"
            if objective == "latency"
            else f"kept any rate tried within {slo.text}"
        )
        print(
            f"no feasible trial: none of {len(completed)} {kept}; the study is kept in "
            f"{options.storage} (--resume to search on, or widen the space)",
            file=out,
        )
        print(f"report: {pages.write_page(study, options, None, None)}", file=out)
        return 1
    best = leading[0]
    changed = _settings_text(spaces.differences(best.user_attrs["settings"]))
    print(
        f"best: trial {best.number}, {_value_text(best, slo)}, of {len(completed)} completed "
        f"trials: {changed or DEFAULTS_NAME}",
        file=out,
    )
    if objective == "throughput":
        front = sorted(study.best_trials, key=lambda t: -t.user_attrs["throughput_rps"])
        points = "; ".join(f"trial {t.number}: {_value_text(t, slo)}" for t in front)
        print(f"Pareto front (records/s against {slo.label}): {points}", file=out)
    candidates = proofs.candidates(study, options.space, options.top, options.current, leading)
    header = [
        f"kbench tune {options.workload.path}: {objective}, {slo.text}",
        f"best of {len(completed)} trials (trial {best.number} in {options.storage})",
        f"each measurement: {options.durations.how}",
    ]
    settings: dict[str, Value] = dict(DEFAULTS)
    proven = None
    if len(candidates) < 2:
        print(
            f"{DEFAULTS_NAME} were best: nothing to prove against them, nothing to change", file=out
        )
    else:
        try:
            proven = _prove(options, measure, candidates, out)
        except TrialFailed as exc:
            raise TuneError(f"the proof's measurement did not complete: {exc}") from None
        header.append(proven.verdict)
        if proven.chosen is not None:
            settings = proven.chosen.settings
        if not spaces.differences(settings):
            print(f"the proof shows no change better than {DEFAULTS_NAME}: keep them", file=out)
    durability = spaces.BY_NAME["acks"]
    if durability.durability.index(settings["acks"]) < len(durability.durability) - 1:
        print(
            f"note: acks={settings['acks']} acknowledges before every in-sync replica has a "
            "record: --require acks=all keeps the search from it",
            file=out,
        )
    for client in ("producer", "consumer"):
        path = os.path.join(options.output, f"{client}.properties")
        with open(path, "w", encoding="utf-8") as file:
            file.write(spaces.properties_file(settings, client, header))
        print(f"{client}.properties: {path}", file=out)
    written = pages.write_results(study, options, proven, bootstrap=measure.bootstrap)
    page = pages.write_page(study, options, proven, settings, results_path=written)
    print(f"report: {page}\nresults: {written}", file=out)
    return 0


def _prove(
    options: Options, measure: Measure, candidates: list[Candidate], out: TextIO
) -> proofs.Proof:
    """Re-measure the candidates interleaved, print each round and the outcome, and choose."""
    slo, objective, rounds = options.slo, options.objective, options.proof_rounds
    names = ", ".join(c.name for c in candidates)
    print(
        f"proof: {names}; {rounds} rounds interleaved (order reversed every other round), a "
        "fresh topic each",
        file=out,
        flush=True,
    )

    def evaluated(candidate: Candidate) -> Outcome:
        return evaluate(
            lambda rate: measure(candidate.settings, rate),
            objective,
            slo,
            options.first_rate,
            options.proof_shape(candidate.start or options.first_rate),
        )

    def show(round_number: int, name: str, outcome: Outcome) -> None:
        print(
            f"  round {round_number + 1}, {name}: {_outcome_text(outcome, slo)}",
            file=out,
            flush=True,
        )

    taken = proofs.interleaved(evaluated, candidates, rounds, show)
    proven = proofs.decide(candidates, taken, "lower" if objective == "latency" else "higher")
    proofs.show(proven, slo, objective, out)
    return proven


def _outcome_text(outcome: Outcome, slo: Slo) -> str:
    m = outcome.measurement
    if outcome.objective == "latency":
        return f"{slo.label} {m.latency_ms:.3g} ms, {m.kept_fraction:.0%} of the offered rate kept"
    if not outcome.feasible:
        lowest = f"{m.offered_per_s:,.0f} records/s: {slo.label} {m.latency_ms:.3g} ms"
        return f"no rate kept (lowest tried {lowest})"
    return (
        f"{outcome.throughput_per_s:,.0f} records/s kept, {slo.label} {m.latency_ms:.3g} ms at it"
    )


def _value_text(trial: optuna.trial.FrozenTrial, slo: Slo) -> str:
    attrs = trial.user_attrs
    if attrs.get("objective", "latency") == "latency":
        return f"{slo.label} {attrs['latency_ms']:.3g} ms"
    return f"{attrs['throughput_rps']:,.0f} records/s at {slo.label} {attrs['latency_ms']:.3g} ms"


def _trial_line(trial: optuna.trial.FrozenTrial, slo: Slo) -> str:
    changed = _settings_text(spaces.differences(trial.user_attrs.get("settings", {})))
    what = changed or DEFAULTS_NAME
    if trial.state != optuna.trial.TrialState.COMPLETE:
        error = trial.user_attrs.get("error", trial.state.name)
        return f"trial {trial.number}: failed ({error}): {what}"
    attrs = trial.user_attrs
    verdict = "feasible" if attrs["feasible"] else "infeasible"
    if attrs.get("objective", "latency") == "latency":
        measured = (
            f"{slo.label} {attrs['latency_ms']:.3g} ms, {attrs['kept_fraction']:.0%} of the "
            "offered rate kept"
        )
    elif attrs["feasible"]:
        steps = len(attrs.get("steps", ()))
        measured = f"{_value_text(trial, slo)} ({steps} rates tried)"
    else:
        measured = (
            f"no rate kept within {slo.text} (lowest tried {attrs['offered_per_s']:,.0f} records/s)"
        )
    return f"trial {trial.number}: {measured}, {verdict}: {what}"


def _settings_text(settings: dict[str, Value]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def _delete_left_topics(bootstrap: str, prefix: str) -> None:
    """Delete what an interrupted measurement left on a cluster not kbench's own, and say so
    when that fails."""
    try:
        delete_topics(bootstrap, prefix)
    except ClusterError as exc:
        print(f"warning: topics {prefix}* may be left on {bootstrap}: {exc}", file=sys.stderr)
