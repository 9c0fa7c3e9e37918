"""`kbench report`: results files (docs/results.md) as self-contained HTML pages.

One page per run: first the claims at a glance (each claim the run measured, once, with its
overall verdict and a row per part: measured interval against threshold, as a chart and a
table), then a summary of every scenario (its question, headline contrasts with their intervals
and which variant is better, notes, skips and errors), a ledger of every claim in
scenarios.harness.claims.CLAIMS with the verdict this run gives it (or "not yet measured"), the
machine it ran on with its warnings, and the charts of each scenario (scenarios/reporting/
charts.py: those every scenario gets, and those it declares in Scenario.charts). Given several
runs, a history page adds each headline ratio's run-to-run spread and one trend per headline
contrast and per claim across the runs, in order of their start, each point labelled with its
git commit and time.

Pages hold their charts as inline base64 PNGs and a little inline CSS: no scripts, no external
URLs, so a page can be mailed or attached to a CI run as one file.
"""

import base64
import datetime
import html
import os
from collections.abc import Iterable, Sequence
from typing import Any

from scenarios.catalog.registry import SCENARIOS
from scenarios.harness import results
from scenarios.harness.claims import CLAIMS, overall_verdict
from scenarios.harness.scenario import size_label
from scenarios.harness.stats import Comparison, format_interval
from scenarios.reporting.charts import (
    OUTCOME_CAPTION,
    OUTCOME_COLOURS,
    VERDICT_COLOURS,
    Chart,
    claims_chart,
    contrast_outcomes,
    scenario_charts,
    trend_chart,
    winner,
)

HISTORY_PAGE = "kbench-history.html"
NOT_MEASURED = "not yet measured"
_OUTCOME_WORDS = {
    "favoured": "favoured variant better",
    "against": "other variant better",
    "inconclusive": "cannot tell",
}


class ReportError(ValueError):
    """A results file that cannot be reported on: missing, not JSON, not a kbench results file,
    another schema version, or not conforming to the schema. The message names the file."""


def load_run(path: str) -> dict:
    """scenarios.harness.results.load, its ResultsError turned into a ReportError."""
    try:
        return results.load(path)
    except results.ResultsError as e:
        raise ReportError(str(e)) from e


def write_report(result_paths: list[str], out_dir: str) -> list[str]:
    """Write one HTML page per run to out_dir, and a history page (HISTORY_PAGE) when given
    two or more runs; returns the paths written, the runs' pages in order of their start.

    Every file is loaded and validated before anything is written; ReportError names the
    first that cannot be read.
    """
    if not result_paths:
        raise ReportError("no results files given")
    runs: list[dict] = []
    seen = set()
    for path in result_paths:
        document = load_run(path)
        if document["run_id"] not in seen:
            seen.add(document["run_id"])
            runs.append(document)
    runs.sort(key=lambda d: _started(d))
    os.makedirs(out_dir, exist_ok=True)
    with_history = len(runs) > 1
    names = [page_name(d) for d in runs]
    written = []
    for document, name in zip(runs, names, strict=True):
        page = run_page(document, history=HISTORY_PAGE if with_history else None)
        written.append(write_file(os.path.join(out_dir, name), page))
    if with_history:
        written.append(write_file(os.path.join(out_dir, HISTORY_PAGE), history_page(runs, names)))
    return written


def page_name(document: dict) -> str:
    """kbench-<UTC start>-<run id>.html, as results.write names the results file."""
    stamp = _started(document).strftime("%Y-%m-%dT%H%M")
    return f"kbench-{stamp}-{document['run_id']}.html"


def write_file(path: str, text: str) -> str:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path


def _started(document: dict) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(document["started_at"])
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def _when(document: dict) -> str:
    return _started(document).strftime("%Y-%m-%d %H:%M UTC")


def comparison(contrast: dict) -> Comparison:
    """The stats.Comparison a contrast's stored `comparison` dict was made from."""
    c = contrast["comparison"]
    return Comparison(
        ratio=c["ratio"],
        ci_low=c["ci_low"],
        ci_high=c["ci_high"],
        n=c["n"],
        confidence=c["confidence"],
        paired=c.get("paired", True),
    )


def commit(document: dict) -> str:
    """The short git commit of a run, "+dirty" when the checkout had changes, "no git" if none."""
    git = document["environment"].get("git") or {}
    sha = git.get("commit")
    if not sha:
        return "no git"
    return sha[:7] + ("+dirty" if git.get("dirty") else "")


# --- the claims ledger ---------------------------------------------------------------------


def claims_ledger(document: dict) -> list[dict]:
    """One entry per claim in CLAIMS (and any other claim the run judged), in CLAIMS order:
    `id`, `claim`, `quoted`, `source`, `scenario`, and `measurements`, a list of the run's
    verdicts on it (each the results' claim entry plus `measured`, the interval in words, and
    `label`, the contrast's label, `part`, what the check tests (its part, else the contrast's
    label), and `wording`, its verdict as a reader should see it); `verdict` and `wording`, the
    claim's overall verdict (scenarios.harness.claims.overall_verdict) or NOT_MEASURED and `status`,
    which says why it is not yet measured."""
    scenarios = {s["name"]: s for s in document["scenarios"]}
    judged: dict[str, list[dict]] = {}
    for scenario in document["scenarios"]:
        contrasts = {c["name"]: c for c in scenario["contrasts"]}
        for claim in scenario["claims"]:
            contrast = contrasts.get(claim["contrast"])
            judged.setdefault(claim["id"], []).append(
                {
                    **claim,
                    "scenario": scenario["name"],
                    "label": contrast["label"] if contrast else claim["contrast"],
                    "part": claim.get("part") or (contrast["label"] if contrast else ""),
                    "wording": claim.get("wording") or claim["verdict"],
                    "measured": format_interval(comparison(contrast)) if contrast else "-",
                    "comparison": contrast["comparison"] if contrast else None,
                }
            )
    ledger = []
    ids = list(CLAIMS) + [i for i in judged if i not in CLAIMS]
    for claim_id in ids:
        known = CLAIMS.get(claim_id)
        first = judged.get(claim_id, [{}])[0]
        entry: dict[str, Any] = {
            "id": claim_id,
            "claim": known.claim if known else first.get("claim", ""),
            "quoted": known.quoted if known else first.get("quoted", ""),
            "source": known.source if known else first.get("source", ""),
            "scenario": known.scenario if known else first.get("scenario", ""),
            "measurements": judged.get(claim_id, []),
            "status": None,
        }
        if entry["measurements"]:
            entry["verdict"], entry["wording"] = overall_verdict(entry["measurements"])
        else:
            entry["status"] = _not_measured(entry["scenario"], scenarios)
            entry["verdict"], entry["wording"] = NOT_MEASURED, entry["status"]
        ledger.append(entry)
    return ledger


def _not_measured(scenario_name: str, scenarios: dict) -> str:
    if scenario_name == "(later)":
        return f"{NOT_MEASURED}: no scenario tests it yet"
    scenario = scenarios.get(scenario_name)
    if scenario is None:
        return f"{NOT_MEASURED}: {scenario_name} was not part of this run"
    if scenario["skipped"]:
        return f"{NOT_MEASURED}: {scenario_name} was skipped ({scenario['skipped']})"
    if scenario["error"]:
        return f"{NOT_MEASURED}: {scenario_name} stopped with an error"
    return f"{NOT_MEASURED}: {scenario_name} gives no verdict on it yet"


# --- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
  max-width: 1240px; margin: 0 auto; padding: 0 20px 60px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.8em 0 0.2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 2px solid #e0e0e0; padding-bottom: 4px; }
h3 { font-size: 1.08em; margin: 1.4em 0 0.3em; }
code { font: 0.92em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
nav { background: #f5f7fa; padding: 8px 12px; border-radius: 6px; margin: 10px 0; }
nav a { margin-right: 14px; }
a { color: #0b57d0; }
table { border-collapse: collapse; margin: 6px 0 12px; width: 100%; }
th, td { border: 1px solid #dcdcdc; padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
table.environment th { width: 11em; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.meta { color: #555; }
.question { font-style: italic; }
.banner { border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.warn { background: #fff4e5; border: 1px solid #f0a020; }
.bad { background: #fdecea; border: 1px solid #d93025; }
.info { background: #eef4fd; border: 1px solid #8ab4f8; }
.verdict { font-weight: 600; border-radius: 4px; padding: 1px 6px; display: inline-block; }
.v-confirmed { background: #e6f4ea; color: #1e6b34; }
.v-not-reproduced { background: #fdecea; color: #a50e0e; }
.v-inconclusive { background: #fff4e5; color: #8a5300; }
.v-not-measured { background: #f1f3f4; color: #5f6368; }
.o-favoured { color: #1e6b34; font-weight: 600; }
.o-against { color: #a50e0e; font-weight: 600; }
.o-inconclusive { color: #5f6368; }
.rule { color: #555; font-size: 0.9em; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 3px; }
.trends { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
  gap: 0 24px; }
.trends figure { margin: 8px 0 16px; }
ul.notes li { margin: 2px 0; }
"""


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def html_page(title: str, body: Iterable[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def figure_html(chart: Chart, **data: str) -> str:
    attributes = "".join(f' data-{k}="{escape(v)}"' for k, v in data.items())
    src = "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")
    caption = f"<strong>{escape(chart.title)}</strong>"
    if chart.caption:
        caption += f" &#8212; {escape(chart.caption)}"
    return (
        f'<figure class="chart"{attributes}><img src="{src}" alt="{escape(chart.title)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _verdict(verdict: str, wording: str = "") -> str:
    """A verdict badge, coloured by the verdict, reading as its wording."""
    css = "v-not-measured" if verdict == NOT_MEASURED else "v-" + verdict.replace(" ", "-")
    shown = escape(wording or verdict)
    return f'<span class="verdict {css}" data-verdict="{escape(verdict)}">{shown}</span>'


def _spanning(cells: Sequence[str], rows: int) -> list[str]:
    """Cells that span `rows` rows of a table."""
    return [c.replace("<td", f'<td rowspan="{rows}"', 1) for c in cells] if rows > 1 else [*cells]


def table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = ""
    if header:
        head = "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    attribute = f' class="{css}"' if css else ""
    return f"<table{attribute}>{head}<tbody>{body}</tbody></table>"


def td(value: object, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{escape(value)}</td>"


def _anchor(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def run_page(document: dict, *, history: str | None = None) -> str:
    """The HTML page of one run; `history` names the history page to link to, if any."""
    title = f"kbench run {document['run_id']} \u2014 {_when(document)}"
    body = [f"<h1>{escape(title)}</h1>", _run_meta(document)]
    body += _warnings(document)
    links = [
        ('<a href="#glance">Claims at a glance</a>'),
        ('<a href="#summary">Scenarios</a>'),
        ('<a href="#claims">Claims ledger</a>'),
        ('<a href="#environment">Environment</a>'),
    ]
    links += [
        f'<a href="#charts-{_anchor(s["name"])}">{escape(s["name"])}</a>'
        for s in document["scenarios"]
    ]
    if history:
        links.append(f'<a href="{escape(history)}">History of all runs</a>')
    body.append("<nav>" + " ".join(links) + "</nav>")
    ledger = claims_ledger(document)
    body += _glance(ledger)
    body += _summary(document)
    body += _ledger(ledger)
    body += _environment(document)
    for scenario in document["scenarios"]:
        body += _charts(scenario)
    return html_page(title, body)


def _run_meta(document: dict) -> str:
    started, finished = document["started_at"], document["finished_at"]
    try:
        seconds = (
            datetime.datetime.fromisoformat(finished) - datetime.datetime.fromisoformat(started)
        ).total_seconds()
        took = f" ({seconds:.0f} s)"
    except (ValueError, TypeError):
        took = ""
    target = document["target"]
    where = "kbench's own broker" if target["kind"] == "engine" else "an external cluster"
    return (
        f'<p class="meta">Profile <strong>{escape(document["profile"])}</strong> &#183; '
        f"started {escape(started)}, finished {escape(finished)}{escape(took)} &#183; "
        f"git {escape(commit(document))} &#183; target: {escape(where)} "
        f"<code>{escape(target.get('bootstrap') or '-')}</code><br>"
        f"<code>{escape(' '.join(document['command']))}</code><br>"
        f"Machine: {escape(machine(document))}</p>"
    )


def machine(document: dict) -> str:
    """The machine in one line: CPU, cores, memory, kernel, the data directory's filesystem."""
    env = document["environment"]
    cpu = env.get("cpu") or {}
    total = (env.get("memory") or {}).get("total_bytes")
    data = env.get("data_dir") or {}
    parts = [
        cpu.get("model"),
        f"{cpu['logical_cores']} cores" if cpu.get("logical_cores") else None,
        f"{total / (1 << 30):.1f} GiB memory" if total else None,
        f"kernel {(env.get('os') or {}).get('kernel')}" if env.get("os") else None,
        f"data on {data.get('fstype', '?')} ({data.get('device', '?')})" if data else None,
    ]
    return ", ".join(p for p in parts if p) or "not recorded"


def _warnings(document: dict) -> list[str]:
    out = []
    warnings = document["environment"].get("warnings") or []
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        out.append(
            f'<div class="banner bad" id="warnings"><strong>Warnings about this machine'
            f"</strong><ul>{items}</ul></div>"
        )
    if document["profile"] == "smoke":
        out.append(
            '<div class="banner warn"><strong>Smoke profile:</strong> a few tiny rounds to check '
            "that everything runs; the numbers are meaningless and the intervals are below "
            "95&#160;% coverage.</div>"
        )
    problems = [s["name"] for s in document["scenarios"] if s["error"]]
    if problems:
        out.append(
            '<div class="banner bad"><strong>Scenarios that stopped with an error:</strong> '
            + escape(", ".join(problems))
            + "</div>"
        )
    return out


def _summary(document: dict) -> list[str]:
    out = ['<section id="summary">', "<h2>Scenarios</h2>"]
    if not document["scenarios"]:
        out.append("<p>This run holds no scenarios.</p>")
    for scenario in document["scenarios"]:
        name = scenario["name"]
        out.append(
            f'<article class="scenario-summary" id="summary-{_anchor(name)}">'
            f"<h3>{escape(scenario['title'])} <code>{escape(name)}</code></h3>"
            f'<p class="question">{escape(scenario["question"])}</p>'
        )
        rounds = scenario["params"].get("rounds")
        facts = [
            f"profile {scenario['profile']}",
            f"{len(scenario['variants'])} variants",
            f"{rounds} rounds" if rounds is not None else None,
            f"{len([s for s in scenario['samples'] if not s['warmup']])} samples",
            f"{scenario['duration_s']:.1f} s",
        ]
        out.append(f'<p class="meta">{escape(" · ".join(f for f in facts if f))}</p>')
        if scenario["skipped"]:
            out.append(
                '<p class="banner warn"><strong>Skipped:</strong> '
                f"{escape(scenario['skipped'])}</p>"
            )
        if scenario["error"]:
            out.append(
                f'<p class="banner bad"><strong>Error:</strong> {escape(scenario["error"])} '
                "(the samples taken so far are kept in the results file; no statistics)</p>"
            )
        if scenario["notes"]:
            items = "".join(f"<li>{escape(n)}</li>" for n in scenario["notes"])
            out.append(f'<p><strong>Notes</strong></p><ul class="notes">{items}</ul>')
        if scenario["contrasts"]:
            metrics = {m["name"]: m for m in scenario["metrics"]}
            outcomes = contrast_outcomes(scenario)
            rows = []
            for contrast in scenario["contrasts"]:
                metric = metrics.get(contrast["metric"], {})
                outcome = outcomes[contrast["name"]]
                better = {
                    "favoured": f"{winner(contrast)}, as favoured",
                    "against": f"{winner(contrast)}, against the favoured",
                    "inconclusive": "cannot tell",
                }[outcome]
                rows.append(
                    [
                        td(contrast["label"]),
                        td(format_interval(comparison(contrast)), "num"),
                        td(better, f"o-{outcome}"),
                        td(f"{contrast['metric']}, {metric.get('better', '?')} is better"),
                        td(f"{contrast['numerator']} / {contrast['denominator']}"),
                    ]
                )
            out.append(
                table(
                    ["headline contrast", "ratio (interval)", "better here", "metric", "variants"],
                    rows,
                    "contrasts",
                )
            )
            out.append(f'<p class="rule">{escape(OUTCOME_CAPTION)}</p>')
        elif not scenario["skipped"]:
            out.append("<p>No headline contrasts.</p>")
        out.append("</article>")
    out.append("</section>")
    return out


def _glance(ledger: list[dict]) -> list[str]:
    """Every claim this run measured, once, with its overall verdict and a row per check: the
    claims chart and a table of part, interval, threshold and wording."""
    out = [
        '<section id="glance">',
        "<h2>Claims at a glance</h2>",
    ]
    measured = [e for e in ledger if e["measurements"]]
    if not measured:
        out.append("<p>This run gives no claim a verdict; the ledger below says why.</p>")
    rows = []
    chart_rows = []
    for entry in measured:
        checks = entry["measurements"]
        claim_cells = _spanning(
            [
                f'<td><a href="#claim-{_anchor(entry["id"])}">{escape(entry["id"])}</a></td>',
                f"<td>{_verdict(entry['verdict'], entry['wording'])}</td>",
            ],
            len(checks),
        )
        for i, m in enumerate(checks):
            rows.append(
                [
                    *(claim_cells if i == 0 else []),
                    td(m["part"]),
                    td(m["measured"], "num"),
                    td(f"{m['threshold']:g}", "num"),
                    f"<td>{_verdict(m['verdict'], m['wording'])}</td>",
                ]
            )
            if m["comparison"]:
                part = f" (part {i + 1} of {len(checks)})" if len(checks) > 1 else ""
                chart_rows.append(
                    {
                        **m["comparison"],
                        "label": f"{entry['id']}{part}\n{m['part']}",
                        "threshold": m["threshold"],
                        "verdict": m["verdict"],
                        "wording": m["wording"],
                    }
                )
    chart = claims_chart(chart_rows)
    if chart:
        out.append(figure_html(chart, scenario="claims"))
    if rows:
        header = ["claim", "verdict", "part", "measured", "threshold", "part's verdict"]
        out.append(table(header, rows, "glance"))
    out.append("</section>")
    return out


def _ledger(ledger: list[dict]) -> list[str]:
    out = [
        '<section id="claims">',
        "<h2>Claims ledger</h2>",
        "<p>Every claim the suite tracks, with the figure people quote and where it comes from. "
        "A claim is <em>confirmed</em> when the whole interval of its measured ratio lies at or "
        "above its threshold, <em>not reproduced</em> when it lies below, and "
        "<em>inconclusive</em> when it straddles it. A claim that states several things is "
        "judged part by part, and holds when every part does.</p>",
    ]
    rows = []
    for entry in ledger:
        measurements = entry["measurements"]
        claim_cells = _spanning(
            [
                f'<td><strong id="claim-{_anchor(entry["id"])}">{escape(entry["id"])}</strong><br>'
                f"{escape(entry['claim'])}</td>",
                td(entry["quoted"]),
                td(entry["source"]),
                td(entry["scenario"]),
                f"<td>{_verdict(entry['verdict'], entry['wording'] if measurements else '')}</td>",
            ],
            len(measurements),
        )
        if not measurements:
            rows.append([*claim_cells, "<td>-</td>", "<td>-</td>", td(entry["status"], "rule")])
        for i, m in enumerate(measurements):
            rows.append(
                [
                    *(claim_cells if i == 0 else []),
                    f'<td data-part="{escape(m["part"])}">{escape(m["part"])}<br>'
                    f'<span class="rule">{escape(m["measured"])}</span></td>',
                    td(f"{m['threshold']:g}", "num"),
                    f"<td>{_verdict(m['verdict'], m['wording'])}<br>"
                    f'<span class="rule">{escape(m["rule"])}</span></td>',
                ]
            )
    header = ["claim", "quoted figure", "source", "tested by", "verdict", "part, measured"]
    out.append(table([*header, "threshold", "part's verdict and rule"], rows, "ledger"))
    out.append("</section>")
    return out


def _environment(document: dict) -> list[str]:
    env = document["environment"]
    cpu = env.get("cpu") or {}
    memory = env.get("memory") or {}
    system = env.get("os") or {}
    python = env.get("python") or {}
    data = env.get("data_dir") or {}
    git = env.get("git") or {}
    target = document["target"]

    def mhz() -> str:
        parts = [f"{cpu['current_mhz']:.0f} MHz now" if cpu.get("current_mhz") else None]
        if cpu.get("min_mhz") or cpu.get("max_mhz"):
            parts.append(f"range {cpu.get('min_mhz') or '?'}-{cpu.get('max_mhz') or '?'} MHz")
        return ", ".join(p for p in parts if p) or "-"

    total = memory.get("total_bytes")
    free = data.get("free_bytes")
    rows = [
        ("host", env.get("hostname", "-")),
        ("CPU", f"{cpu.get('model', '-')} ({cpu.get('architecture', '-')})"),
        (
            "cores",
            f"{cpu.get('logical_cores', '-')} logical, {cpu.get('physical_cores', '-')} physical, "
            f"{cpu.get('usable_cores', '-')} usable by kbench",
        ),
        ("frequency", mhz()),
        ("memory", f"{total / (1 << 30):.1f} GiB" if total else "-"),
        ("kernel", system.get("kernel", "-")),
        ("platform", system.get("platform", "-")),
        ("Python", f"{python.get('version', '-')} {python.get('implementation', '')}".strip()),
        (
            "data directory",
            f"{data.get('path', '-')}: {data.get('fstype', '?')} on {data.get('device', '?')} "
            f"(mounted at {data.get('mount_point', '?')}"
            + (f", {size_label(free)} free)" if free else ")"),
        ),
        (
            "git commit",
            f"{git.get('commit') or '-'}" + (" (uncommitted changes)" if git.get("dirty") else ""),
        ),
        ("target", f"{target['kind']} {target.get('bootstrap') or ''}".strip()),
        ("captured", env.get("captured_at", "-")),
    ]
    if target.get("broker_settings"):
        settings = ", ".join(f"{k}={v}" for k, v in sorted(target["broker_settings"].items()))
        rows.append(("broker settings", settings))
    packages = env.get("packages") or {}
    if packages:
        rows.append(
            (
                "packages",
                ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v is not None),
            )
        )
    warnings = env.get("warnings") or []
    out = ['<section id="environment">', "<h2>Environment</h2>"]
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        out.append(f'<div class="banner bad"><strong>Warnings</strong><ul>{items}</ul></div>')
    else:
        out.append('<p class="meta">No warnings about this machine or its data directory.</p>')
    out.append(table(None, ([f"<th>{escape(k)}</th>", td(v)] for k, v in rows), "environment"))
    out.append("</section>")
    return out


def _charts(scenario: dict) -> list[str]:
    name = scenario["name"]
    out = [
        f'<section class="charts" id="charts-{_anchor(name)}" data-scenario="{escape(name)}">',
        f"<h2>{escape(scenario['title'])} <code>{escape(name)}</code></h2>",
        f'<p class="question">{escape(scenario["question"])}</p>',
    ]
    if scenario["skipped"]:
        out.append(f'<p class="banner warn">Skipped: {escape(scenario["skipped"])}</p>')
    elif not scenario["summaries"]:
        out.append('<p class="banner bad">No statistics to chart: the scenario stopped early.</p>')
    declared = SCENARIOS[name].charts if name in SCENARIOS else ()
    for chart in scenario_charts(scenario, declared):
        out.append(figure_html(chart, scenario=name))
    out.append("</section>")
    return out


# --- history -------------------------------------------------------------------------------


def run_label(document: dict, index: int) -> str:
    """A run's label on a trend chart's x axis: its place in the history and short commit,
    then its start time (UTC)."""
    return f"#{index + 1} {commit(document)}\n{_started(document).strftime('%m-%d %H:%M')}"


def history_page(runs: Sequence[dict], pages: Sequence[str] | None = None) -> str:
    """Trends across runs (given in order of their start): one chart per headline contrast and
    one per claim measurement; `pages` are the runs' own report pages, linked from the table."""
    first, last = runs[0], runs[-1]
    title = f"kbench history \u2014 {len(runs)} runs, {_when(first)} to {_when(last)}"
    labels = [run_label(d, i) for i, d in enumerate(runs)]
    body = [f"<h1>{escape(title)}</h1>"]
    rows = []
    for i, document in enumerate(runs):
        env = document["environment"]
        run_id = escape(document["run_id"])
        link = f'<a href="{escape(pages[i])}">{run_id}</a>' if pages else run_id
        warnings = env.get("warnings") or []
        rows.append(
            [
                td(i + 1, "num"),
                td(_when(document)),
                f"<td>{link}</td>",
                f"<td><code>{escape(commit(document))}</code></td>",
                td(document["profile"]),
                td(env.get("hostname", "-")),
                td((env.get("cpu") or {}).get("model", "-")),
                td((env.get("data_dir") or {}).get("fstype", "-")),
                td("; ".join(warnings) or "-", "rule"),
            ]
        )
    body.append(
        table(
            ["#", "started", "run", "commit", "profile", "host", "CPU", "data fs", "warnings"],
            rows,
            "runs",
        )
    )
    for what, get in (
        ("profile", lambda d: d["profile"]),
        ("host", lambda d: d["environment"].get("hostname", "-")),
        ("CPU", lambda d: (d["environment"].get("cpu") or {}).get("model", "-")),
        ("data filesystem", lambda d: (d["environment"].get("data_dir") or {}).get("fstype", "-")),
    ):
        values = sorted({str(get(d)) for d in runs})
        if len(values) > 1:
            body.append(
                f'<p class="banner warn">These runs differ in {escape(what)} '
                f"({escape(', '.join(values))}): their points are not like for like.</p>"
            )
    body.append(
        '<nav><a href="#trends">Headline contrasts</a> <a href="#claim-trends">Claims</a></nav>'
    )

    # scenario -> contrast name -> [(run index, contrast, outcome)], in order of first appearance
    contrasts: dict[str, dict[str, list[tuple[int, dict, str]]]] = {}
    claims: dict[tuple[str, str, str], list[tuple[int, dict, dict]]] = {}
    for i, document in enumerate(runs):
        for scenario in document["scenarios"]:
            by_name = {c["name"]: c for c in scenario["contrasts"]}
            outcomes = contrast_outcomes(scenario)
            mine = contrasts.setdefault(scenario["name"], {})
            for contrast in scenario["contrasts"]:
                mine.setdefault(contrast["name"], []).append(
                    (i, contrast, outcomes[contrast["name"]])
                )
            for claim in scenario["claims"]:
                contrast = by_name.get(claim["contrast"])
                if contrast:
                    key = (claim["id"], scenario["name"], claim["contrast"])
                    claims.setdefault(key, []).append((i, claim, contrast))

    body.append('<section id="trends"><h2>Headline contrasts across runs</h2>')
    body.append(
        "<p>Each point is one run's ratio with its interval, labelled with the run's commit and "
        "start time (UTC); the band spans the lowest to the highest ratio across the runs. "
        f"{escape(OUTCOME_CAPTION)}</p>"
    )
    spread_rows = [
        [
            td(scenario_name),
            td(series[-1][1]["label"]),
            td(len(series), "num"),
            *_spread_cells([c["comparison"]["ratio"] for _, c, _ in series]),
        ]
        for scenario_name, by_contrast in contrasts.items()
        for series in by_contrast.values()
    ]
    if spread_rows:
        header = ["scenario", "headline contrast", "runs", "lowest", "highest", "highest/lowest"]
        body.append("<h3>Run-to-run spread of each headline ratio</h3>")
        body.append(table(header, spread_rows, "spread"))
    for scenario_name, by_contrast in contrasts.items():
        if not by_contrast:
            continue
        body.append(f'<h3>{escape(scenario_name)}</h3><div class="trends">')
        for name, series in by_contrast.items():
            label = series[-1][1]["label"]
            points = [{**c["comparison"], "run": i, "outcome": o} for i, c, o in series]
            chart = trend_chart(
                f"{scenario_name}: {label}",
                points,
                labels,
                ylabel="ratio (x)",
                colour=lambda p: OUTCOME_COLOURS[p["outcome"]],
            )
            caption = _trend_caption(runs, [(i, c, _OUTCOME_WORDS[o]) for i, c, o in series])
            body.append(
                figure_html(
                    Chart(chart.title, chart.png, caption), contrast=f"{scenario_name}/{name}"
                )
            )
        body.append("</div>")
    if not any(contrasts.values()):
        body.append("<p>No headline contrasts in these runs.</p>")
    body.append("</section>")

    body.append('<section id="claim-trends"><h2>Claims across runs</h2>')
    body += [
        "<p>Each claim's measured ratio per run, against its threshold (dashed); colour is the "
        "run's verdict (green: confirmed, red: not reproduced, amber: inconclusive); the band "
        "spans the lowest to the highest ratio across the runs.</p>",
        '<div class="trends">',
    ]
    for (claim_id, scenario_name, contrast_name), checks in claims.items():
        label = checks[-1][1].get("part") or checks[-1][2]["label"]
        points = [
            {**c["comparison"], "run": i, "verdict": claim["verdict"]} for i, claim, c in checks
        ]
        chart = trend_chart(
            f"claim {claim_id}: {label}",
            points,
            labels,
            ylabel="measured ratio (x)",
            colour=lambda p: VERDICT_COLOURS.get(p["verdict"], "#757575"),
            threshold=checks[-1][1]["threshold"],
        )
        caption = _trend_caption(runs, [(i, c, claim["verdict"]) for i, claim, c in checks])
        body.append(
            figure_html(
                Chart(chart.title, chart.png, caption),
                claim=claim_id,
                contrast=f"{scenario_name}/{contrast_name}",
            )
        )
    body.append("</div>")
    if not claims:
        body.append("<p>No claim was judged in these runs.</p>")
    body.append("</section>")
    return html_page(title, body)


def _spread_cells(ratios: Sequence[float]) -> list[str]:
    low, high = min(ratios), max(ratios)
    relative = f"{high / low:.3g}" if low > 0 else "-"
    return [td(f"{low:.3g}x", "num"), td(f"{high:.3g}x", "num"), td(relative, "num")]


def _trend_caption(runs: Sequence[dict], series: Sequence[tuple[int, dict, str]]) -> str:
    """The points of a trend in words: the run-to-run range of the ratios, then each run,
    commit, time, interval and verdict or outcome; with each point's label when the contrast's
    label changed across runs (other parameters)."""
    relabelled = len({c["label"] for _, c, _ in series}) > 1
    ratios = [c["comparison"]["ratio"] for _, c, _ in series]
    low, high = min(ratios), max(ratios)
    spread = f"run-to-run range {low:.3g}x-{high:.3g}x" + (
        f" (highest/lowest {high / low:.3g}) over {len(ratios)} runs. " if low > 0 else ". "
    )
    return spread + "; ".join(
        f"#{i + 1} {commit(runs[i])} {_when(runs[i])}: {format_interval(comparison(c))} {outcome}"
        + (f" [{c['label']}]" if relabelled else "")
        for i, c, outcome in series
    )
