"""What a finished `kbench tune` shows a reader: a page, and its proof as a results file.

The results file (`write_results`) is a `kbench run` results file (docs/results.md, validated
before it is written) holding one scenario, `tune-<workload>`: the proof's candidates (Kafka's
defaults, the recommendation, and the user's current settings or other trials when the proof
measured them) as variants with their settings as params, every proof measurement as a sample,
each candidate's medians and the recommendation's ratios to the defaults and to the current
settings, computed by scenarios.harness.stats as `kbench run` computes them. So `kbench compare`
tells whether a later tune of the same workload measured worse, and `kbench report` charts it
beside the runs. The search's trials are not samples of the proof (each is one measurement of
other settings): the study file keeps them, and the page shows them.

The page (`write_page`, report.html beside the study) shows every trial as a point of throughput
against the SLO's latency percentile, feasible, infeasible and saturated told apart, with the SLO
bound, the Pareto front (the feasible trials no other feasible trial beats on both) and the
recommendation; the parameters' importances (Optuna's PED-ANOVA); one slice per searched
parameter, latency against its value; and the proof, round by round, with its verdict. Charts
and page parts are the reporting package's (scenarios/reporting), so it reads as `kbench
report`'s pages do.
"""

import datetime
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from matplotlib import rc_context
from matplotlib.lines import Line2D

from scenarios.harness import results
from scenarios.harness.environment import capture_environment
from scenarios.harness.saturation import SATURATED_BELOW
from scenarios.harness.stats import Summary, compare, format_interval, summarize

# the reporting package's page and chart parts, shared rather than copied
from scenarios.reporting.charts import (
    STYLE,
    Chart,
    contrasts_chart,
    log_scale,
    new_figure,
    render,
    short,
    variant_bars,
    wide,
    winner,
)
from scenarios.reporting.report import (
    comparison,
    escape,
    figure_html,
    html_page,
    table,
    td,
    write_file,
)
from scenarios.tuning import space as spaces
from scenarios.tuning.objective import Outcome
from scenarios.tuning.proof import CURRENT_NAME, DEFAULTS_NAME, Proof
from scenarios.tuning.space import DEFAULTS, Value
from scenarios.tuning.study import Options, _settings_text, ranked
from scenarios.tuning.workload import Workload

PAGE = "report.html"
# PED-ANOVA compares the best 10 % of trials with all of them: below 10 that is one trial
MIN_IMPORTANCE_TRIALS = 10
# a trial as the page marks it: kept the rate and met the bound / kept the rate, missed the
# bound / did not keep the rate
STATES = {
    "feasible": ("o", "#2e7d32"),
    "infeasible": ("X", "#c62828"),
    "saturated": ("v", "#757575"),
}
# how the page shows a value of each unit of the results' metrics
_FORMATS = {
    "ms": lambda v: f"{v:.3g}",
    "records/s": lambda v: f"{v:,.0f}",
    "fraction": lambda v: f"{v:.0%}",
}
_BOUND_COLOUR = "#6a1b9a"
_FRONT_COLOUR = "#0b57d0"


@dataclass(frozen=True)
class TrialPoint:
    """A completed trial as the page draws it."""

    number: int
    throughput_rps: float
    latency_ms: float  # the SLO's percentile
    state: str  # a key of STATES
    params: dict[str, Value]  # the searched properties' values
    attrs: dict


def trial_points(study: optuna.Study, offered_rate: float) -> list[TrialPoint]:
    """Every completed trial that recorded a measurement. Older studies have no throughput_rps:
    it is the offered rate times the fraction of it kept, as the latency mode defines it."""
    points = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "latency_ms" not in attrs:
            continue
        kept = attrs.get("kept_fraction", 1.0)
        if attrs.get("feasible"):
            state = "feasible"
        elif kept < SATURATED_BELOW:
            state = "saturated"
        else:
            state = "infeasible"
        points.append(
            TrialPoint(
                trial.number,
                float(attrs.get("throughput_rps", offered_rate * kept)),
                float(attrs["latency_ms"]),
                state,
                dict(trial.params),
                dict(attrs),
            )
        )
    return points


def pareto_front(study: optuna.Study, points: Sequence[TrialPoint]) -> list[TrialPoint]:
    """The feasible trials no other feasible trial beats on both throughput (higher) and
    latency (lower), by throughput. A multi-objective study's own front (Study.best_trials,
    feasible ones only) when it has one; a single-objective study minimises latency alone, so
    its best_trials is one trial and the front is computed here."""
    if len(study.directions) > 1:
        on_front = {t.number for t in study.best_trials}
        front = [p for p in points if p.number in on_front and p.state == "feasible"]
    else:
        feasible = [p for p in points if p.state == "feasible"]
        front = [
            p
            for p in feasible
            if not any(
                q.throughput_rps >= p.throughput_rps
                and q.latency_ms <= p.latency_ms
                and (q.throughput_rps > p.throughput_rps or q.latency_ms < p.latency_ms)
                for q in feasible
            )
        ]
    return sorted(front, key=lambda p: (p.throughput_rps, p.latency_ms))


def importances(study: optuna.Study, target: str) -> tuple[dict[str, float], str]:
    """Each searched parameter's share of the variation of the trials' `target` attribute
    (PED-ANOVA, Optuna's default), or ({}, why they cannot be told)."""
    completed = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if target in t.user_attrs
    ]
    if len(completed) < MIN_IMPORTANCE_TRIALS:
        return {}, (
            f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} completed trials "
            f"(PED-ANOVA compares the best 10 % of them with the rest); this study has "
            f"{len(completed)}."
        )
    seen: dict[str, set[str]] = {}
    for trial in completed:
        for name, value in trial.params.items():
            seen.setdefault(name, set()).add(repr(value))
    varied = sorted(name for name, values in seen.items() if len(values) > 1)
    if len(varied) < 2:
        return {}, (
            "Parameter importances need at least two parameters that took more than one value; "
            f"this study varied {', '.join(varied) or 'none'}."
        )
    try:
        with warnings.catch_warnings():  # Optuna warns about what the page says anyway
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                # a trial without `target` (an older one) is left out: Optuna drops NaN
                study,
                params=varied,
                target=lambda t: t.user_attrs.get(target, math.nan),
            )
    except (ValueError, RuntimeError) as exc:  # e.g. a parameter missing from some trials
        return {}, f"Optuna could not compute parameter importances: {exc}"
    return found, ""


# --- the results file ----------------------------------------------------------------------


def _metric_name(percentile: float, latency: str = "e2e") -> str:
    """p99 -> p99_latency_ms, p99.9 -> p999_latency_ms: the names the report's percentile
    charts read (scenarios.reporting.charts.percentile); publish latency's are publish_..."""
    name = f"p{f'{percentile:g}'.replace('.', '')}_latency_ms"
    return f"publish_{name}" if latency == "publish" else name


def _mode(study: optuna.Study) -> str:
    return study.user_attrs.get("objective", "latency")


def _metrics(options: Options) -> list[dict]:
    percentiles = sorted({50.0, 99.0, options.slo.percentile})
    kind = options.slo.latency
    what = (
        "publish latency, from each record's intended send time to its acknowledgement"
        if kind == "publish"
        else "end-to-end latency, from each record's intended send time to its delivery"
    )
    latency = [
        {
            "name": _metric_name(p, kind),
            "unit": "ms",
            "better": "lower",
            "description": f"p{p:g} of {what}"
            + (" (the SLO's percentile)" if p == options.slo.percentile else ""),
        }
        for p in percentiles
    ]
    return [
        *latency,
        {
            "name": "throughput_rps",
            "unit": "records/s",
            "better": "higher",
            "description": "records per second sustained",
        },
        {
            "name": "kept_fraction",
            "unit": "fraction",
            "better": "higher",
            "description": "of the offered rate, as the producer sent it (below "
            f"{SATURATED_BELOW:.0%}: saturated)",
        },
        {
            "name": "achieved_fraction",
            "unit": "fraction",
            "better": "higher",
            "description": "records delivered over the offered rate's span",
        },
    ]


def _values(outcome: Outcome, options: Options) -> dict[str, float]:
    measured, throughput = outcome.measurement, outcome.throughput_per_s
    kind = options.slo.latency
    values = {
        _metric_name(50, kind): measured.p50_ms,
        _metric_name(99, kind): measured.p99_ms,
        _metric_name(options.slo.percentile, kind): measured.latency_ms,
        "throughput_rps": throughput,
        "kept_fraction": measured.kept_fraction,
        "achieved_fraction": measured.achieved_fraction,
    }
    return {k: float(v) for k, v in values.items()}


def _objective(study: optuna.Study, options: Options) -> tuple[str, str]:
    """The metric the proof's contrasts are on, and which way is better."""
    if _mode(study) == "throughput":
        return "throughput_rps", "higher"
    return _metric_name(options.slo.percentile, options.slo.latency), "lower"


def proof_scenario(study: optuna.Study, options: Options, proof: Proof | None) -> dict:
    """The results file's scenario entry of the proof (docs/results.md)."""
    workload, slo = options.workload, options.slo
    taken = proof.taken if proof else []
    candidates = {n: s.candidate.settings for n, s in proof.standings.items()} if proof else {}
    verdict = proof.verdict if proof else None
    chosen = proof.chosen.name if proof and proof.chosen else None
    metric, better = _objective(study, options)
    params = {
        "workload": workload.name,
        "producer_rate": workload.producer_rate,
        "message_size": workload.message_size,
        "mode": _mode(study),
        "slo": study.user_attrs.get("slo", slo.text),
        "durations": options.durations.how,
        "warmup_s": options.durations.warmup_s,
        "test_s": options.durations.test_s,
        "rounds": options.proof_rounds,
        "objective": metric,
    }
    values = [(r, name, _values(m, options)) for r, name, m in taken]
    samples = [
        # a trial's pipeline reports no per-process figures
        {"variant": name, "round": r, "warmup": False, "values": v, "resources": {}}
        for r, name, v in values
    ]
    notes = [f"the search's trials are in the study {options.storage}, not samples here"]
    if verdict:
        notes.append(verdict)
    summaries: dict[str, dict] = {}
    for name in candidates:
        mine = [v for _, n, v in values if n == name]
        if mine:
            summaries[name] = {m: summarize([v[m] for v in mine]).as_dict() for m in mine[0]}
    contrasts = []
    if chosen in summaries:
        for other in (DEFAULTS_NAME, CURRENT_NAME):
            if other not in summaries or other == chosen:
                continue
            # written as the harness writes its contrasts, so `kbench report` colours them
            # right: technique over baseline where higher is better, baseline over technique
            # where lower is (defaults/recommended p99 3x: the recommendation is 3x faster)
            top, bottom = (chosen, other) if better == "higher" else (other, chosen)
            # paired by round: interleaved() measures every candidate once a round
            below = {r: v[metric] for r, n, v in values if n == bottom}
            rounds = [(v[metric], below[r]) for r, n, v in values if n == top and r in below]
            if not rounds or min(d for _, d in rounds) <= 0:
                notes.append(f"no ratio {top}/{bottom}: a round measured 0")
                continue
            ratio = compare([n for n, _ in rounds], [d for _, d in rounds], paired=True)
            contrasts.append(
                {
                    "name": f"{top}/{bottom}",
                    "label": f"{top} / {bottom}, {metric}",
                    "metric": metric,
                    "numerator": top,
                    "denominator": bottom,
                    "comparison": ratio.as_dict(),
                    "direction": ratio.direction(better),
                }
            )
    skipped = None
    if not taken:
        skipped = "no proof: " + (
            "no trial was feasible"
            if not ranked(study, _mode(study))
            else "the search's best trial was Kafka's defaults"
        )
    started, finished = _span(study, options)
    return {
        "name": f"tune-{workload.name}",
        "title": f"kbench tune: {workload.name}",
        "question": _question(study, options),
        "profile": _profile(options),
        "params": params,
        "metrics": _metrics(options),
        "variants": [{"name": n, "params": dict(s)} for n, s in candidates.items()],
        "skipped": skipped,
        "error": None,
        "notes": notes,
        "samples": samples,
        "summaries": summaries,
        "contrasts": contrasts,
        "claims": [],
        "duration_s": (finished - started).total_seconds(),
    }


def _rate(workload: Workload) -> str:
    if workload.producer_rate:
        return f"{workload.producer_rate:,} records/s"
    return "the highest rate kept (producerRate 0)"


def _question(study: optuna.Study, options: Options) -> str:
    w, slo = options.workload, options.slo
    if _mode(study) == "throughput":
        goal = f"keep the most records/s of {w.message_size} B within {slo.text}"
    else:
        goal = (
            f"serve {w.producer_rate:,} records/s of {w.message_size} B with the lowest "
            f"{slo.label} under {slo.text}"
        )
    return f"Which client settings {goal}, and are they better than Kafka's defaults?"


def _profile(options: Options) -> str:
    """`smoke` for --smoke; `full` at the workload's own durations (OMB's: what its authors
    meant by a measurement), `quick` when --minutes-scale shortened them, as kbench run's quick
    profile shortens its scenarios."""
    if options.durations.how.startswith("smoke"):
        return "smoke"
    own = options.workload.test_duration_minutes * 60
    return "full" if options.durations.test_s >= own else "quick"


def _span(study: optuna.Study, options: Options) -> tuple[datetime.datetime, datetime.datetime]:
    """When this run of the search started (its first trial: the last options.trials of the
    study) and now."""
    now = datetime.datetime.now(datetime.UTC)
    mine = study.get_trials(deepcopy=False)[-options.trials :] if options.trials else []
    starts = [t.datetime_start for t in mine if t.datetime_start is not None]
    if not starts:
        return now, now
    # Optuna keeps naive local times
    return min(starts).astimezone(datetime.UTC), now


def write_results(
    study: optuna.Study, options: Options, proof: Proof | None, *, bootstrap: str
) -> str:
    """The proof as a results file (kbench-<UTC start>-<run id>.json) in options.output,
    validated before it is written; returns its path. `bootstrap`: the cluster measured."""
    target = {"kind": "external" if options.bootstrap else "engine", "bootstrap": bootstrap}
    # the engine broker's data lies in the temporary directory (scenarios.tuning.measure.target)
    environment = capture_environment(tempfile.gettempdir())
    document = results.new_run(_profile(options), _command(options), target, environment)
    document["started_at"] = _span(study, options)[0].isoformat(timespec="seconds")
    document["scenarios"].append(proof_scenario(study, options, proof))
    return results.write(document, options.output)


def _command(options: Options) -> list[str]:
    """The options as a kbench tune command line (the search's own arguments, as parsed)."""
    command = ["kbench", "tune", options.workload.path, "--slo", options.slo.text]
    command += ["--trials", str(options.trials), "--storage", options.storage]
    command += ["--output", options.output, "--proof-rounds", str(options.proof_rounds)]
    if options.bootstrap:
        command += ["--bootstrap", options.bootstrap]
    if options.seed is not None:
        command += ["--seed", str(options.seed)]
    if options.resume:
        command.append("--resume")
    return command


# --- the page ------------------------------------------------------------------------------


def write_page(
    study: optuna.Study,
    options: Options,
    proof: Proof | None,
    recommended: dict[str, Value] | None,
    *,
    results_path: str | None = None,
) -> str:
    """The search's page, PAGE in options.output; returns its path. `recommended`: the settings
    in the properties files (None: no feasible trial); `results_path`: the results file, linked."""
    slo = options.slo
    points = trial_points(study, options.workload.producer_rate)
    front = pareto_front(study, points)
    chosen = next(
        (p for p in points if recommended and p.attrs.get("settings") == recommended), None
    )
    title = f"kbench tune: {options.workload.name}, {slo.text}"
    body = [f"<h1>{escape(title)}</h1>", _meta(study, options, points, results_path)]
    if _profile(options) == "smoke":
        body.append(
            '<div class="banner warn"><strong>Smoke mode:</strong> seconds per measurement to '
            "check that everything runs; the numbers are meaningless.</div>"
        )
    body.append(
        '<nav><a href="#recommendation">Recommendation</a> <a href="#trials">Trials</a> '
        '<a href="#importance">Importance</a> <a href="#slices">Slices</a> '
        '<a href="#proof">Proof</a></nav>'
    )
    body += _recommendation(recommended, proof.verdict if proof else None)
    body += _trials(study, options, points, front, chosen)
    body += _importance(study)
    body += _slices(study, options, points)
    body += _proof(proof_scenario(study, options, proof), proof.taken if proof else [])
    path = os.path.join(options.output, PAGE)
    return write_file(path, html_page(title, body))


def _meta(
    study: optuna.Study, options: Options, points: Sequence[TrialPoint], results_path: str | None
) -> str:
    w = options.workload
    failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
    link = (
        f' &#183; results file <a href="{escape(os.path.relpath(results_path, options.output))}">'
        f"{escape(os.path.basename(results_path))}</a> (<code>kbench compare</code> reads it)"
        if results_path
        else ""
    )
    return (
        f'<p class="meta">{escape(_rate(w))} of {escape(w.message_size)} B '
        f"({escape(w.path)}) &#183; {escape(_mode(study))} mode: "
        f"{escape(_objective_words(study, options))} &#183; each measurement: "
        f"{escape(options.durations.how)}<br>study <code>{escape(options.storage)}</code>: "
        f"{len(points)} completed trials, {failed} failed{link}</p>"
    )


def _objective_words(study: optuna.Study, options: Options) -> str:
    slo = study.user_attrs.get("slo", options.slo.text)
    if _mode(study) == "throughput":
        return f"maximise throughput, minimise {options.slo.label}, subject to {slo}"
    return f"minimise {options.slo.label} subject to {slo} at the workload's rate"


def _recommendation(recommended: dict[str, Value] | None, verdict: str | None) -> list[str]:
    out = ['<section id="recommendation">', "<h2>Recommendation</h2>"]
    if recommended is None:
        out.append(
            '<p class="banner bad">No feasible trial: none kept the offered rate and met the SLO, '
            "so nothing is recommended (widen the space, or search on with --resume).</p>"
        )
    else:
        changed = spaces.differences(recommended)
        if changed:
            rows = [
                [
                    f"<td><code>{escape(k)}</code></td>",
                    td(spaces.BY_NAME[k].scope),
                    td(DEFAULTS[k], "num"),
                    td(v, "num"),
                ]
                for k, v in changed.items()
            ]
            out.append(
                "<p>the .properties files (producer, consumer, topic, broker) beside this page "
                "hold:</p>"
                + table(["property", "scope", "Kafka's default", "recommended"], rows, "props")
            )
        else:
            out.append(
                '<p class="banner info">Keep Kafka\'s defaults: the properties files change '
                "nothing.</p>"
            )
    if verdict:
        out.append(f'<p class="rule">{escape(verdict)}</p>')
    out.append("</section>")
    return out


def _trials(
    study: optuna.Study,
    options: Options,
    points: Sequence[TrialPoint],
    front: Sequence[TrialPoint],
    chosen: TrialPoint | None,
) -> list[str]:
    slo = options.slo
    out = ['<section id="trials">', "<h2>Trials</h2>"]
    chart = trials_chart(points, front, chosen, options)
    if chart is None:
        out.append("<p>No trial completed.</p>")
    else:
        out.append(figure_html(chart, figure="trials"))
    on_front = {p.number for p in front}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        point = next((p for p in points if p.number == trial.number), None)
        changed = spaces.differences(attrs.get("settings", {}))
        what = _settings_text(changed) or DEFAULTS_NAME
        marks = ["Pareto front"] if trial.number in on_front else []
        if point is not None and point is chosen:
            marks.append("recommended")
        if point is None:
            state = attrs.get("error", trial.state.name.lower())
            cells = [td("-", "num")] * 4
        else:
            state = point.state
            cells = [
                td(f"{point.latency_ms:.3g}", "num"),
                td(f"{attrs.get('p50_ms', math.nan):.3g}", "num"),
                td(f"{point.throughput_rps:,.0f}", "num"),
                td(f"{attrs.get('kept_fraction', math.nan):.0%}", "num"),
            ]
        rows.append(
            [
                f'<td class="num" data-trial="{trial.number}">{trial.number}</td>',
                td(state, f"t-{state}" if point else "rule"),
                *cells,
                td(", ".join(marks)),
                td(what),
            ]
        )
    header = [
        "trial",
        "state",
        f"{slo.label} ms",
        "p50 ms",
        "records/s",
        "rate kept",
        "mark",
        "settings",
    ]
    out.append(table(header, rows, "trials"))
    out.append("</section>")
    return out


def trials_chart(
    points: Sequence[TrialPoint],
    front: Sequence[TrialPoint],
    chosen: TrialPoint | None,
    options: Options,
) -> Chart | None:
    """Every trial, throughput against the SLO's latency percentile, marked by state; the SLO
    bound; the Pareto front as a step line; the recommendation ringed."""
    if not points:
        return None
    slo = options.slo
    title = f"Trials: records/s against {slo.label} latency"
    with rc_context(STYLE):
        fig = new_figure(9.5, 4.8)
        ax = fig.add_subplot()
        for state, (marker, colour) in STATES.items():
            mine = [p for p in points if p.state == state]
            if mine:
                ax.scatter(
                    [p.throughput_rps for p in mine],
                    [p.latency_ms for p in mine],
                    marker=marker,
                    color=colour,
                    s=28,
                    zorder=3,
                    label=f"{state} ({len(mine)})",
                )
        if len(points) <= 40:  # a trial's number beside it, while they can still be read
            for p in points:
                ax.annotate(
                    str(p.number),
                    (p.throughput_rps, p.latency_ms),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=6.5,
                    color="#555555",
                )
        if front:
            # what is attainable: for a throughput, the least latency of a trial at or above it
            ax.step(
                [p.throughput_rps for p in front],
                [p.latency_ms for p in front],
                where="pre",
                color=_FRONT_COLOUR,
                linewidth=1.4,
                zorder=2,
                label=f"Pareto front ({len(front)})",
            )
        if chosen is not None:
            ax.scatter(
                [chosen.throughput_rps],
                [chosen.latency_ms],
                s=240,
                facecolors="none",
                edgecolors=_FRONT_COLOUR,
                linewidths=2,
                zorder=4,
                label=f"recommended (trial {chosen.number})",
            )
        ax.axhline(slo.bound_ms, color=_BOUND_COLOUR, linestyle="--", linewidth=1)
        handles, _ = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color=_BOUND_COLOUR, linestyle="--", label=f"SLO {slo.text}"))
        if wide([p.latency_ms for p in points] + [slo.bound_ms]):
            log_scale(ax, "y")
        # from 0: at a fixed offered rate the trials stack close to it, saturated ones below
        ax.set_xlim(0, max(p.throughput_rps for p in points) * 1.08)
        ax.xaxis.set_major_formatter(lambda v, _: short(v))
        ax.set_xlabel("throughput (records/s)")
        ax.set_ylabel(f"{slo.label} latency (ms)")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title(title)
        return Chart(
            title,
            render(fig),
            "One point per completed trial: feasible kept the offered rate and met the SLO, "
            "infeasible kept the rate and missed the bound, saturated did not keep the rate; "
            "the dashed line is the SLO's bound; the step line joins the feasible trials no other "
            "feasible trial beats on both throughput and latency.",
        )


def _importance(study: optuna.Study) -> list[str]:
    target = "throughput_rps" if _mode(study) == "throughput" else "latency_ms"
    out = ['<section id="importance">', "<h2>Parameter importance</h2>"]
    found, why = importances(study, target)
    if not found:
        out.append(f'<p class="banner info" data-importance="none">{escape(why)}</p>')
    else:
        title = f"Parameter importance for {target}"
        names = list(found)
        with rc_context(STYLE):
            fig = new_figure(8, 0.9 + 0.3 * len(names))
            ax = fig.add_subplot()
            ax.barh(range(len(names)), [found[n] for n in names], color=_FRONT_COLOUR, height=0.6)
            ax.set_yticks(range(len(names)), names)
            ax.invert_yaxis()
            for y, n in enumerate(names):
                ax.annotate(
                    f"{found[n]:.0%}",
                    (found[n], y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                )
            ax.margins(x=0.1)
            ax.set_xlabel("share of importance (PED-ANOVA, normalised to 1)")
            ax.set_title(title)
            chart = Chart(
                title,
                render(fig),
                "How much each searched parameter decides whether a trial is among the best "
                "10 %, by Optuna's PED-ANOVA over every completed trial.",
            )
        out.append(figure_html(chart, figure="importance"))
    out.append("</section>")
    return out


def _slices(study: optuna.Study, options: Options, points: Sequence[TrialPoint]) -> list[str]:
    out = ['<section id="slices">', "<h2>Slices</h2>"]
    chart = slices_chart(study, points, options)
    if chart is None:
        out.append("<p>No parameter was searched, or no trial completed.</p>")
    else:
        out.append(figure_html(chart, figure="slices"))
    out.append("</section>")
    return out


def slices_chart(
    study: optuna.Study, points: Sequence[TrialPoint], options: Options
) -> Chart | None:
    """For each searched parameter, every trial's value of what the search optimised first (the
    SLO latency, or in throughput mode the records/s kept within the SLO) against the
    parameter's value (log where it is searched on a log scale, categories as categories),
    marked by state."""
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        distributions.update(trial.distributions)
    names = [n for n in (p.name for p in spaces.PROPERTIES) if n in distributions]
    names += sorted(set(distributions) - set(names))
    if not names or not points:
        return None
    slo = options.slo
    throughput = _mode(study) == "throughput"
    measured = "records/s kept" if throughput else f"{slo.label} latency"
    title = f"Slices: {measured} against each searched parameter"
    columns = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / columns)

    def value(p: TrialPoint) -> float:
        return p.throughput_rps if throughput else p.latency_ms

    # records/s from 0 (a trial that kept no rate is 0), latency on a log scale when it spreads
    log_y = not throughput and wide([p.latency_ms for p in points] + [slo.bound_ms])
    with rc_context(STYLE):
        fig = new_figure(10, 0.6 + 2.5 * rows)
        axes = list(fig.subplots(rows, columns, squeeze=False).flat)
        for ax, name in zip(axes, names, strict=False):
            distribution = distributions[name]
            categorical = isinstance(distribution, optuna.distributions.CategoricalDistribution)
            choices = [str(c) for c in distribution.choices] if categorical else []  # type: ignore[attr-defined]
            for state, (marker, colour) in STATES.items():
                mine = [p for p in points if p.state == state and name in p.params]
                xs = [
                    choices.index(str(p.params[name])) if categorical else p.params[name]
                    for p in mine
                ]
                if mine:
                    ax.scatter(xs, [value(p) for p in mine], marker=marker, color=colour, s=20)
            if not throughput:
                ax.axhline(slo.bound_ms, color=_BOUND_COLOUR, linestyle="--", linewidth=1)
            if categorical:
                ax.set_xticks(range(len(choices)), choices)
                ax.set_xlim(-0.5, len(choices) - 0.5)
            elif getattr(distribution, "log", False):
                low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
                ax.set_xlim(low, high)
                log_scale(ax, "x")
            else:
                ax.set_xlim(distribution.low, distribution.high)  # type: ignore[attr-defined]
                ax.xaxis.set_major_formatter(lambda v, _: short(v))
            if log_y:
                log_scale(ax, "y")
            ax.set_xlabel(name + (" (log scale)" if getattr(distribution, "log", False) else ""))
            ax.set_ylabel(f"records/s within {slo.label}" if throughput else f"{slo.label} ms")
        for ax in axes[len(names) :]:  # the grid's unused panel
            ax.set_visible(False)
        handles = [
            Line2D([], [], marker=m, color=c, linestyle="none", label=s)
            for s, (m, c) in STATES.items()
        ]
        if not throughput:
            bound = Line2D([], [], color=_BOUND_COLOUR, linestyle="--", label=f"SLO {slo.text}")
            handles.append(bound)
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        fig.suptitle(title, fontsize=10)
        return Chart(
            title,
            render(fig),
            f"Each panel: every completed trial's {measured} against one parameter's value, over "
            "the range searched. Where the points spread as widely at every value, the parameter "
            "stops mattering there; where they "
            + ("fall to none kept" if throughput else "climb past the bound")
            + ", it decides.",
        )


def _proof(scenario: dict, taken: Sequence[tuple[int, str, Outcome]]) -> list[str]:
    """The proof's section, from its results entry (`scenario`) and its measurements."""
    out = ['<section id="proof">', "<h2>Proof</h2>"]
    candidates = {v["name"]: v["params"] for v in scenario["variants"]}
    if not taken:
        out.append(f"<p>{escape(scenario['skipped'])}.</p></section>")
        return out
    names = list(candidates)
    rounds = len({r for r, _, _ in taken})
    out.append(
        f"<p>{escape(', '.join(names[:-1]))} and {escape(names[-1])} re-measured over {rounds} "
        "rounds, "
        "interleaved (the order reversed every other round), each on a fresh topic; ratios are "
        "taken round by round.</p>"
    )
    shown = {
        m["name"]: _FORMATS[m["unit"]]
        for m in scenario["metrics"]
        if m["name"] != "achieved_fraction"  # in the results file, for the reader of it
    }
    rows = [
        [
            td(s["round"] + 1, "num"),
            td(s["variant"]),
            *(td(f(s["values"][name]), "num") for name, f in shown.items()),
        ]
        for s in scenario["samples"]
    ]
    out.append(table(["round", "candidate", *shown], rows, "rounds"))
    metric = scenario["params"]["objective"]
    measured = next(m for m in scenario["metrics"] if m["name"] == metric)
    summary_rows = [
        [
            td(name),
            td(format_interval(Summary(**medians[metric]), measured["unit"]), "num"),
            td(sum(o.measurement.saturated for _, n, o in taken if n == name), "num"),
            td(_settings_text(spaces.differences(candidates[name])) or DEFAULTS_NAME),
        ]
        for name, medians in scenario["summaries"].items()
    ]
    out.append(
        table(
            ["candidate", f"{metric}, median", "saturated rounds", "settings"],
            summary_rows,
            "medians",
        )
    )
    for contrast in scenario["contrasts"]:
        better = winner(contrast)
        words = f"{better} better" if better else "cannot tell (the interval includes 1)"
        out.append(
            f'<p data-contrast="{escape(contrast["name"])}">'
            f"<strong>{escape(contrast['label'])}</strong>: "
            f"{escape(format_interval(comparison(contrast)))}, "
            f"{escape(words)}</p>"
        )
    for chart in (contrasts_chart(scenario), variant_bars(scenario, measured)):
        if chart is not None:
            out.append(figure_html(chart, figure="proof"))
    out.append("</section>")
    return out
