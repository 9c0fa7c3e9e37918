"""The search and its proof: `kbench tune WORKLOAD.yaml --slo p99<=20ms --trials N`.

Each trial is a real measurement: the workload's producerRate offered open loop by a
confluent-kafka producer to a fresh one-partition topic, tailed by a confluent-kafka consumer,
each in its own process (scenarios.clients.pipeline), every property of the space passed
explicitly; the topic is deleted afterwards. Optuna's TPE chooses the settings, its study kept in
a SQLite file (RDB storage), so every trial is kept and `--resume` continues a stopped search.
Kafka's defaults are the first trial of a new study, when the space holds them.

The best feasible trial (it kept the offered rate and met the SLO) is then proven against Kafka's
defaults: both re-measured over several rounds, interleaved (the order reversed every other round,
as the scenario harness runs variants), on fresh topics, and compared round by round
(scenarios.harness.stats.compare, paired). The recommendation is written as producer.properties
and consumer.properties holding only the settings that differ from Kafka's defaults, and only
when the proof shows it faster: otherwise the files say to keep the defaults, and why.
"""

import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import optuna

from scenarios.clients.cluster import ClusterError, delete_topics, probe
from scenarios.harness.stats import compare, format_interval, summarize
from scenarios.tuning import space as spaces
from scenarios.tuning.measure import Measure, Measurer, TrialFailed, TuneError, target
from scenarios.tuning.objective import Measurement, Slo, record
from scenarios.tuning.space import DEFAULTS, Space, Value
from scenarios.tuning.workload import Durations, Workload

STUDY_NAME = "kbench-tune"
PROOF_ROUNDS = 6  # paired, the widest interval (min, max) of 6 ratios covers the median 96.8 %
SMOKE_PROOF_ROUNDS = 2  # the fewest that interleave both orders
DEFAULTS_NAME = "Kafka's defaults"
RECOMMENDED_NAME = "recommended"


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
    bootstrap: str | None = None  # None: start an engine broker
    resume: bool = False
    proof_rounds: int = PROOF_ROUNDS
    seed: int | None = None
    warmup: bool = True  # one measurement first, discarded (smoke mode spares it)


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
        storage=url, sampler=sampler, study_name=STUDY_NAME, load_if_exists=options.resume
    )
    if existing:
        if study.user_attrs.get("spec") != spec:
            raise TuneError(
                f"--resume: the study in {options.storage} was started for another search "
                f"({study.user_attrs.get('spec')}); give another --storage for this one"
            )
    else:
        study.set_user_attr("spec", spec)
        searched = {p.name for p in options.space.properties if p.searched}
        if options.space.contains(DEFAULTS):  # the baseline, measured in the search too
            study.enqueue_trial({k: v for k, v in DEFAULTS.items() if k in searched})
    return study


def spec_of(options: Options) -> str:
    """What a resumed study must share with the one it continues, in one line."""
    w = options.workload
    return (
        f"workload {w.name} at {w.producer_rate} records/s; {options.durations.how}; "
        f"SLO {options.slo.text}; {options.space.describe()}"
    )


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The feasible trial with the lowest latency, or None. Chosen from what objective.record
    kept with each trial, not from study.best_trial, which ignores feasibility."""
    feasible = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("feasible")
    ]
    return min(feasible, key=lambda t: t.user_attrs["latency_ms"], default=None)


def interleaved(
    measure: Measure,
    candidates: dict[str, dict[str, Value]],
    rounds: int,
    on_measured: Callable[[int, str, Measurement], None] | None = None,
) -> list[tuple[int, str, Measurement]]:
    """Measure every candidate once a round, the order reversed every other round (A B, B A, ...)
    so drift reaches all alike; every measurement as (round, candidate, measurement) in the
    order taken, each also handed to on_measured as it is taken."""
    names = list(candidates)
    taken = []
    for round_number in range(rounds):
        for name in names if round_number % 2 == 0 else reversed(names):
            taken.append((round_number, name, measure(candidates[name])))
            if on_measured is not None:
                on_measured(*taken[-1])
    return taken


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
    print(
        f"kbench tune: {workload.name}: {workload.producer_rate:,} records/s of "
        f"{workload.message_size} B, one partition; {options.durations.how}",
        file=out,
    )
    for note in workload.notes():
        print(f"note: {note}", file=out)
    floor = f"; floor {', '.join(options.space.floor)}" if options.space.floor else ""
    print(f"objective: minimise {slo.label} subject to {slo.text}{floor}", file=out)
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
                if options.warmup:  # as the harness's warm-up round: a first run is slower
                    print(f"warm-up: one measurement of {DEFAULTS_NAME}, discarded", file=out)
                    try:
                        measure(dict(DEFAULTS))
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

    slo = options.slo

    def objective(trial: optuna.Trial) -> float:
        settings = options.space.suggest(trial)
        trial.set_user_attr("settings", settings)  # the fixed ones too: what was measured
        try:
            measurement = measure(settings)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            raise
        return record(trial, measurement, slo)

    def report(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        print(_trial_line(trial, slo), file=out, flush=True)

    study.optimize(objective, n_trials=options.trials, catch=(TrialFailed,), callbacks=[report])
    best = best_trial(study)
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if best is None:
        print(
            f"no feasible trial: none of {len(completed)} kept "
            f"{options.workload.producer_rate:,} records/s and met {slo.text}; the study is kept "
            f"in {options.storage} (--resume to search on, or widen the space)",
            file=out,
        )
        print(f"report: {pages.write_page(study, options, [], {}, None, None)}", file=out)
        return 1
    settings: dict[str, Value] = best.user_attrs["settings"]
    changed = spaces.differences(settings)
    print(
        f"best: trial {best.number}, {slo.label} {best.user_attrs['latency_ms']:.3g} ms, of "
        f"{len(completed)} completed trials: {_settings_text(changed) or DEFAULTS_NAME}",
        file=out,
    )
    durability = spaces.BY_NAME["acks"]
    if durability.durability.index(settings["acks"]) < len(durability.durability) - 1:
        print(
            f"note: acks={settings['acks']} acknowledges before every in-sync replica has a "
            "record: --require acks=all keeps the search from it",
            file=out,
        )
    header = [
        f"kbench tune {options.workload.path}: {options.workload.producer_rate} records/s, "
        f"{slo.text}",
        f"best of {len(completed)} trials (trial {best.number} in {options.storage})",
        f"each measurement: {options.durations.how}",
    ]
    taken: list[tuple[int, str, Measurement]] = []
    candidates: dict[str, dict[str, Value]] = {}
    verdict = None
    if not changed:
        print(
            f"{DEFAULTS_NAME} were best: nothing to prove against them, nothing to change", file=out
        )
    else:
        try:
            verdict, better, taken, candidates = _prove(options, measure, settings, out)
        except TrialFailed as exc:
            raise TuneError(f"the proof's measurement did not complete: {exc}") from None
        header.append(verdict)
        if not better:  # a best trial that may have been lucky: no change beats an unproven one
            header.append(
                f"so no change is recommended; the search's best: {_settings_text(changed)}"
            )
            print(
                f"the proof does not show trial {best.number} faster than {DEFAULTS_NAME}: "
                "keep them",
                file=out,
            )
            settings = dict(DEFAULTS)
    for client in ("producer", "consumer"):
        path = os.path.join(options.output, f"{client}.properties")
        with open(path, "w", encoding="utf-8") as file:
            file.write(spaces.properties_file(settings, client, header))
        print(f"{client}.properties: {path}", file=out)
    written = pages.write_results(
        study, options, taken, candidates, verdict, bootstrap=measure.bootstrap
    )
    page = pages.write_page(
        study, options, taken, candidates, settings, verdict, results_path=written
    )
    print(f"report: {page}\nresults: {written}", file=out)
    return 0


def _prove(
    options: Options, measure: Measure, settings: dict[str, Value], out: TextIO
) -> tuple[str, bool, list[tuple[int, str, Measurement]], dict[str, dict[str, Value]]]:
    """Re-measure the recommendation against Kafka's defaults, interleaved; print the gain with
    its interval and whether the SLO holds; return the verdict in one line, whether the
    recommendation was faster than the defaults beyond the noise, and the measurements taken
    of the candidates (for the report)."""
    slo, rounds = options.slo, options.proof_rounds
    print(
        f"proof: {RECOMMENDED_NAME} vs {DEFAULTS_NAME}, {rounds} rounds interleaved (order "
        "reversed every other round), a fresh topic each",
        file=out,
        flush=True,
    )
    candidates = {DEFAULTS_NAME: dict(DEFAULTS), RECOMMENDED_NAME: settings}

    def show(round_number: int, name: str, measured: Measurement) -> None:
        print(
            f"  round {round_number + 1}, {name}: {slo.label} {measured.latency_ms:.3g} ms, "
            f"{measured.kept_fraction:.0%} of the offered rate kept",
            file=out,
            flush=True,
        )

    taken = interleaved(measure, candidates, rounds, show)
    by_name = {name: [m for _, n, m in taken if n == name] for name in candidates}
    for name, measured in by_name.items():
        saturated = sum(m.saturated for m in measured)
        summary = summarize([m.latency_ms for m in measured])
        print(
            f"  {name}: {slo.label} {format_interval(summary, 'ms')}"
            f"{f', saturated in {saturated} of {len(measured)} rounds' if saturated else ''}",
            file=out,
        )
    gain = compare(
        [m.latency_ms for m in by_name[RECOMMENDED_NAME]],
        [m.latency_ms for m in by_name[DEFAULTS_NAME]],
        paired=True,
    )
    direction = {"better": "lower latency", "worse": "higher latency"}.get(
        gain.direction("lower"), "indistinguishable from the defaults (interval includes 1)"
    )
    print(
        f"  {RECOMMENDED_NAME}/{DEFAULTS_NAME} {slo.label}: {format_interval(gain)}, {direction}",
        file=out,
    )
    ours = by_name[RECOMMENDED_NAME]
    summary = summarize([m.latency_ms for m in ours])
    saturated = sum(m.saturated for m in ours)
    if saturated:
        holds = f"does not hold: saturated in {saturated} of {len(ours)} rounds"
    elif summary.ci_high <= slo.bound_ms:
        holds = f"holds: the median's interval lies at or below {slo.bound_ms:g} ms"
    elif summary.ci_low > slo.bound_ms:
        holds = f"does not hold: the median's interval lies above {slo.bound_ms:g} ms"
    else:
        holds = f"inconclusive: the median's interval straddles {slo.bound_ms:g} ms"
    print(f"  SLO {slo.text}: {holds}", file=out)
    verdict = (
        f"proof ({rounds} interleaved rounds): {RECOMMENDED_NAME}/{DEFAULTS_NAME} {slo.label} "
        f"{format_interval(gain)}, {direction}; SLO {holds}"
    )
    return verdict, gain.direction("lower") == "better", taken, candidates


def _trial_line(trial: optuna.trial.FrozenTrial, slo: Slo) -> str:
    changed = _settings_text(spaces.differences(trial.user_attrs.get("settings", {})))
    what = changed or DEFAULTS_NAME
    if trial.state != optuna.trial.TrialState.COMPLETE:
        error = trial.user_attrs.get("error", trial.state.name)
        return f"trial {trial.number}: failed ({error}): {what}"
    attrs = trial.user_attrs
    verdict = "feasible" if attrs["feasible"] else "infeasible"
    return (
        f"trial {trial.number}: {slo.label} {attrs['latency_ms']:.3g} ms, "
        f"{attrs['kept_fraction']:.0%} of the offered rate kept, {verdict}: {what}"
    )


def _settings_text(settings: dict[str, Value]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def _delete_left_topics(bootstrap: str, prefix: str) -> None:
    """Delete what an interrupted measurement left on a cluster not kbench's own, and say so
    when that fails."""
    try:
        delete_topics(bootstrap, prefix)
    except ClusterError as exc:
        print(f"warning: topics {prefix}* may be left on {bootstrap}: {exc}", file=sys.stderr)
