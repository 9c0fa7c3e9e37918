"""The charts of `kbench report`: matplotlib figures rendered to PNG bytes.

Every chart is drawn on a bare `matplotlib.figure.Figure` and saved with the Agg renderer, so
nothing here touches pyplot's global state or needs a display. Each function takes the parts of a
results file it draws (a scenario dict, see docs/results.md) and returns a `Chart`, or None when
the data it needs is not in the run (a skipped scenario, a sweep the profile did not run).

Intervals are drawn as they are stored: a median with its order-statistic interval
(`ci_low`-`ci_high`), a ratio with its interval. Axes go logarithmic when the values span
widely (two decades for bars, 20x for sweeps, any ratio axis around 1), the usual way to show
e.g. buffered and fsync writes on one chart; log axes are labelled in plain numbers at 1-2-5
steps or finer, enough to read a value off and never so many that the labels collide.

Layout is matplotlib's constrained layout, with legends outside the data; `render` checks that
every text lies inside the figure (`overflow`) and widens the image when one would not. Colours
carry meaning: a contrast is green when the variant it favours wins (`outcome`), a claim by its
verdict.
"""

import io
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullLocator,
)
from matplotlib.transforms import Bbox

from scenarios.harness.scenario import ChartSpec, CodecScatter, SweepChart, size_label

STYLE: dict[Any, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_DPI = 96
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")  # 7 markers against 10 colours: 70 distinct
# A contrast's outcome (see `outcome`): the variant it favours wins, the other one does, or
# the run cannot tell.
OUTCOME_COLOURS = {"favoured": "#2e7d32", "against": "#c62828", "inconclusive": "#757575"}
VERDICT_COLOURS = {
    "confirmed": "#2e7d32",
    "not reproduced": "#c62828",
    "inconclusive": "#ef8f00",
}
# Variant parameters that best tell variants apart by colour, in order of preference.
_COLOUR_KEYS = ("pattern", "path", "state", "compression.type", "codec", "mode", "part", "client")
# Spellings of the batch-compression parameters (results use Kafka's names).
BATCH_SIZE = ("batch.size", "batch_size")
CODEC = ("compression.type", "codec")


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    png: bytes
    caption: str = ""


def style(i: int) -> dict:
    """Line colour, style and marker of the i-th series: no two of the first 70 look alike (ten
    colours against seven markers), and from the eleventh on lines are dashed, then dotted."""
    return {
        "color": _PALETTE[i % len(_PALETTE)],
        "linestyle": ("-", "--", ":")[(i // len(_PALETTE)) % 3],
        "marker": _MARKERS[i % len(_MARKERS)],
    }


# Tick values on a log axis, per decade, coarsest first.
_MANTISSAS = ((1,), (1, 3), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8))


def log_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Tick values for a log axis from lo to hi: the coarsest 1-2-5-like steps that give at
    least four ticks, never more than `most` (every n-th decade over very wide ranges); even
    steps over a range too narrow for three."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks: list[float] = []
    for mantissas in _MANTISSAS:
        inside = [m * 10.0**e for e in decades for m in mantissas if lo <= m * 10.0**e <= hi]
        if len(inside) > most:
            break
        ticks = inside
        if len(inside) >= 4:
            break
    if not ticks:
        powers = [10.0**e for e in decades if lo <= 10.0**e <= hi]
        return powers[:: math.ceil(len(powers) / most)]
    if len(ticks) < 3:
        return [t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi]
    return ticks


def log_scale(ax, which: str = "x") -> None:
    """A log axis over the data already drawn, its limits fixed, labelled at log_ticks in
    plain numbers (0.5, 2, 10k), with no minor ticks."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    lo, hi = sorted(getattr(ax, f"get_{which}lim")())
    getattr(ax, f"set_{which}lim")(lo, hi)
    axis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: short(v) if v >= 1000 else f"{v:.4g}"))
    axis.set_minor_locator(NullLocator())  # unlabelled ticks cost drawing time, tell little


def param(params: dict, names: Sequence[str]):
    """The value of the first of `names` present in a variant's params, else None."""
    for name in names:
        if name in params:
            return params[name]
    return None


def short(x: float) -> str:
    """A number to 3 significant digits for an annotation, with k/M/G suffixes."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def overflow(fig: Figure) -> Bbox | None:
    """The bounding box of everything a drawn figure shows, in inches, when some of it lies
    outside the figure (text that its image would cut off); None when all of it fits."""
    assert isinstance(fig.canvas, FigureCanvasAgg), "made by new_figure"
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    inside = fig.bbox_inches.padded(0.01)
    fits = inside.x0 <= box.x0 and inside.y0 <= box.y0 and box.x1 <= inside.x1
    return None if fits and box.y1 <= inside.y1 else box


def render(fig: Figure) -> bytes:
    """The figure as PNG bytes. The layout keeps every text inside the figure; should some still
    fall outside (say, a very long variant name), the image is widened to hold it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    if overflow(fig):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.05)
    return buffer.getvalue()


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def wide(values: Sequence[float]) -> bool:
    """True when positive values span more than two decades: draw them on a log axis."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(positive) and max(positive) / min(positive) > 100


def _errors(rows: Sequence[dict]) -> list[list[float]]:
    return [
        [max(r["median"] - r["ci_low"], 0.0) for r in rows],
        [max(r["ci_high"] - r["median"], 0.0) for r in rows],
    ]


def _ratio_error(row: dict) -> list[list[float]]:
    return [[max(row["ratio"] - row["ci_low"], 0.0)], [max(row["ci_high"] - row["ratio"], 0.0)]]


def _level(items: Sequence[dict]) -> str:
    levels = {round(i["confidence"] * 100) for i in items if "confidence" in i}
    if len(levels) == 1:
        return f"{levels.pop()}% CI"
    return f"{min(levels)}-{max(levels)}% CI" if levels else "CI"


def metric_label(metric: dict) -> str:
    return f"{metric['name']} ({metric['unit']})"


def bars_title(scenario: dict, metric: dict) -> str:
    return f"{scenario['name']}: {metric_label(metric)} per variant"


def variant_bars(scenario: dict, metric: dict) -> Chart | None:
    """Horizontal bars of each variant's median of one metric, with its interval as error bars;
    bars coloured by the parameter that best separates the variants."""
    summaries = scenario["summaries"]
    variants = [v for v in scenario["variants"] if metric["name"] in summaries.get(v["name"], {})]
    if not variants:
        return None
    rows = [summaries[v["name"]][metric["name"]] for v in variants]
    key = next(
        (
            k
            for k in _COLOUR_KEYS
            if len({str(v["params"].get(k)) for v in variants if k in v["params"]}) > 1
        ),
        None,
    )
    other = f"(no {key})"
    group_of = [str(v["params"].get(key, other)) for v in variants] if key else [""] * len(variants)
    groups = list(dict.fromkeys(group_of))
    colour_of = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}
    bar_colours = [colour_of[g] for g in group_of]
    medians = [r["median"] for r in rows]
    log = wide([r["ci_low"] for r in rows] + medians)
    title = bars_title(scenario, metric)
    with rc_context(STYLE):
        fig = new_figure(9, 0.9 + 0.27 * len(variants))
        ax = fig.add_subplot()
        y = list(range(len(variants)))
        ax.barh(
            y,
            medians,
            xerr=_errors(rows),
            color=bar_colours,
            ecolor="#222222",
            capsize=3,
            height=0.7,
        )
        ax.set_yticks(y, [v["name"] for v in variants])
        ax.invert_yaxis()
        for yi, r in zip(y, rows, strict=True):
            ax.annotate(
                short(r["median"]),
                (r["ci_high"] if r["ci_high"] > 0 or not log else r["median"], yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        better = "higher" if metric["better"] == "higher" else "lower"
        scale = " (log scale)" if log else ""
        ax.set_xlabel(f"{metric_label(metric)}{scale}, median, {_level(rows)}; {better} is better")
        ax.margins(x=0.12)
        if log:
            log_scale(ax, "x")
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
        if key:
            handles = [Patch(color=colour_of[g], label=g) for g in groups]
            ax.legend(
                handles=handles,
                title=key,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                frameon=False,
            )
        ax.set_title(title)
        caption = metric.get("description", "")
        return Chart(title, render(fig), caption)


THRESHOLD_MARKER: dict[str, Any] = {"marker": "D", "markerfacecolor": "white", "color": "#6a1b9a"}


def forest(
    title: str,
    rows: Sequence[dict],
    *,
    xlabel: str,
    colour: Callable[[dict], str],
    legend: dict[str, str],
    thresholds: Callable[[dict], Sequence[float]] = lambda r: (),
    note: Callable[[dict], str] | None = None,
) -> bytes:
    """Ratios with their intervals, one row each (label, ratio, ci_low, ci_high): a forest plot
    on a log axis around 1, with claim thresholds as hollow diamonds and, given `note`, a note
    in the row's colour right of the plot. `legend` maps each colour's meaning to the colour."""
    with rc_context(STYLE):
        fig = new_figure(10, max(2.6, 1.3 + 0.42 * len(rows)))
        ax = fig.add_subplot()
        values = [1.0]
        for y, row in enumerate(rows):
            ax.errorbar(
                [row["ratio"]],
                [y],
                xerr=_ratio_error(row),
                fmt="o",
                color=colour(row),
                capsize=3,
                markersize=5,
            )
            ax.annotate(
                f"{row['ratio']:.3g}x",
                (row["ratio"], y),
                xytext=(0, 5),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
            for t in thresholds(row):
                ax.plot([t], [y], markersize=6, linestyle="none", **THRESHOLD_MARKER)
                values.append(t)
            if note:
                ax.annotate(
                    textwrap.fill(note(row), 34),
                    (1.01, y),
                    xycoords=("axes fraction", "data"),
                    va="center",
                    fontsize=7.5,
                    color=colour(row),
                )
            values += [row["ci_low"], row["ci_high"], row["ratio"]]
        ax.axvline(1.0, color="#333333", linewidth=0.8)
        labels = [
            "\n".join(textwrap.fill(line, 70) for line in r["label"].split("\n")) for r in rows
        ]
        ax.set_yticks(range(len(rows)), labels, fontsize=7.5)
        ax.set_ylim(len(rows) - 0.5, -0.7)
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        if all(v > 0 for v in values):
            ax.set_xlim(min(values) / 1.25, max(values) * 1.25)
            log_scale(ax, "x")
        handles = [
            Line2D([], [], marker="o", color=c, linestyle="none", label=meaning)
            for meaning, c in legend.items()
        ]
        if any(thresholds(r) for r in rows):
            handles.append(Line2D([], [], linestyle="none", label="threshold", **THRESHOLD_MARKER))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        return render(fig)


def outcome(contrast: dict, better: str, threshold: float | None = None) -> str:
    """How a contrast came out, for its colour: "favoured" when the variant it favours is the
    better one, "against" when the other one is, "inconclusive" when its direction is.

    A contrast favours the variant that a claim testing it says wins (its ratio at or above a
    threshold of 1 or more, below one under 1); without a claim, the variant a ratio above 1
    makes the better one, since contrasts are written technique over baseline (sendfile/copy
    MB/s, copy/sendfile CPU). `better` is the metric's better direction."""
    if contrast["direction"] == "inconclusive":
        return "inconclusive"
    numerator_favoured = (better == "higher") == (threshold is None or threshold >= 1)
    return "favoured" if (contrast["direction"] == "better") == numerator_favoured else "against"


def winner(contrast: dict) -> str | None:
    """The variant the contrast finds better, None when its direction is inconclusive."""
    return {"better": contrast["numerator"], "worse": contrast["denominator"]}.get(
        contrast["direction"]
    )


def contrast_outcomes(scenario: dict) -> dict[str, str]:
    """`outcome` of each of a scenario's contrasts, by name (the first claim on it decides)."""
    better = {m["name"]: m["better"] for m in scenario["metrics"]}
    thresholds: dict[str, float] = {}
    for claim in scenario["claims"]:
        thresholds.setdefault(claim["contrast"], claim["threshold"])
    return {
        c["name"]: outcome(c, better.get(c["metric"], "higher"), thresholds.get(c["name"]))
        for c in scenario["contrasts"]
    }


OUTCOME_LEGEND = {
    "the favoured variant is better": OUTCOME_COLOURS["favoured"],
    "the other variant is better": OUTCOME_COLOURS["against"],
    "cannot tell": OUTCOME_COLOURS["inconclusive"],
}
OUTCOME_CAPTION = (
    "A contrast favours the variant its claim says wins or, without a claim, the one a ratio "
    "above 1 makes better (contrasts are written technique over baseline). Green: that variant "
    "is better here; red: the other one is; grey: the run cannot tell."
)


def contrasts_title(scenario: dict) -> str:
    return f"{scenario['name']}: headline contrasts"


def contrasts_chart(scenario: dict) -> Chart | None:
    contrasts = scenario["contrasts"]
    if not contrasts:
        return None
    thresholds: dict[str, list[float]] = {}
    for claim in scenario["claims"]:
        thresholds.setdefault(claim["contrast"], []).append(claim["threshold"])
    outcomes = contrast_outcomes(scenario)
    rows = [{**c["comparison"], "label": c["label"], "name": c["name"]} for c in contrasts]
    title = contrasts_title(scenario)
    png = forest(
        title,
        rows,
        xlabel=f"ratio numerator/denominator (x), median of per-round ratios, {_level(rows)}",
        colour=lambda r: OUTCOME_COLOURS[outcomes[r["name"]]],
        legend=OUTCOME_LEGEND,
        thresholds=lambda r: thresholds.get(r["name"], ()),
    )
    return Chart(
        title,
        png,
        "Each headline ratio with its interval; 1 means no difference; diamond: the threshold "
        "of a claim it tests. " + OUTCOME_CAPTION,
    )


_PERCENTILE = re.compile(r"^p(\d+)_(.+?)(?:_(us|ms|ns|s))?$")


def percentile(digits: str) -> float:
    """The percentile a metric name's digits stand for: 50 -> 50, 99 -> 99, 999 -> 99.9."""
    return float(digits) if len(digits) <= 2 else float(f"{digits[:2]}.{digits[2:]}")


def percentile_families(scenario: dict) -> dict[str, list[tuple[float, dict]]]:
    """Percentile metrics grouped by what they measure, named for the chart:
    p50/p99/p999_latency_us -> {"latency": [(50, m), (99, m), (99.9, m)]}, p99_write_us ->
    {"write latency": [(99, m)]}."""
    families: dict[str, list[tuple[float, dict]]] = {}
    for metric in scenario["metrics"]:
        match = _PERCENTILE.match(metric["name"])
        if match and 0 < (p := percentile(match.group(1))) < 100:
            what = match.group(2).replace("_", " ")
            if "latency" not in what:
                what += " latency"
            families.setdefault(what, []).append((p, metric))
    return {k: sorted(v, key=lambda pm: pm[0]) for k, v in families.items()}


def percentiles_title(scenario: dict, family: str) -> str:
    return f"{scenario['name']}: {family} percentiles"


def _nines(p: float) -> float:
    return -math.log10(1 - p / 100)


def percentile_chart(
    scenario: dict,
    family: str,
    members: list[tuple[float, dict]],
    panel_by: str | None = None,
) -> Chart | None:
    """Each variant's latency percentiles on a percentile axis spaced as -log10(1 - p), so
    p50, p99 and p99.9 are evenly apart, with each median's interval, on a log latency axis.
    Variants are dodged sideways a little so their intervals do not hide each other (more so
    when a single percentile is measured). With `panel_by`, small multiples: one panel per
    value of that parameter (e.g. per write mode), sharing the latency axis, and one for the
    variants without it."""
    summaries = scenario["summaries"]
    panels: dict[str, list] = {}
    for variant in scenario["variants"]:
        points = [
            (p, summaries[variant["name"]][m["name"]])
            for p, m in members
            if m["name"] in summaries.get(variant["name"], {})
        ]
        if points:
            value = variant["params"].get(panel_by) if panel_by else None
            where = f"{panel_by} {value}" if value is not None else "other variants"
            panels.setdefault(where if panel_by else "", []).append((variant["name"], points))
    if not panels:
        return None
    unit = members[0][1]["unit"]
    title = percentiles_title(scenario, family)
    all_rows = [r for lines in panels.values() for _, pts in lines for _, r in pts]
    spread = 0.6 if len(members) == 1 else 0.12
    shown = sorted({50.0, 99.0, 99.9} | {p for p, _ in members})
    with rc_context(STYLE):
        fig = new_figure(10, 4.8) if not panel_by else new_figure(3.3 * len(panels), 5.2)
        axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        for ax, (where, lines) in zip(axes, panels.items(), strict=True):
            for i, (name, points) in enumerate(lines):
                offset = spread * ((i + 0.5) / len(lines) - 0.5) if len(lines) > 1 else 0.0
                rows = [r for _, r in points]
                look = style(i)
                ax.errorbar(
                    [_nines(p) + offset for p, _ in points],
                    [r["median"] for r in rows],
                    yerr=_errors(rows),
                    label=name,
                    markersize=5,
                    capsize=2,
                    color=look["color"],
                    marker=look["marker"],
                    linestyle=look["linestyle"] if len(points) > 1 else "none",
                )
            ax.set_xticks([_nines(t) for t in shown], [f"p{t:g}" for t in shown])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlim(_nines(shown[0]) - 0.4, _nines(shown[-1]) + 0.4)
            ax.set_xlabel("percentile (p, spaced as -log10(1 - p))")
            if panel_by:
                ax.set_title(where, fontsize=9)
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
            else:
                ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        axes[0].set_ylabel(f"{family} ({unit}), median, {_level(all_rows)}")
        if all(r["ci_low"] > 0 for r in all_rows):
            log_scale(axes[0], "y")
        if panel_by:
            fig.suptitle(title, fontsize=10)
        else:
            axes[0].set_title(title)
        caption = "Measured: " + ", ".join(m["name"] for _, m in members)
        if panel_by:
            caption += f"; one panel per {panel_by}, all on one latency axis"
        return Chart(title, render(fig), caption)


def _group_label(params: dict, keys: Sequence[str]) -> str:
    parts = []
    for k in keys:
        if k not in params:
            continue
        value = params[k]
        parts.append(
            size_label(value) if k in BATCH_SIZE and isinstance(value, int) else str(value)
        )
    return ", ".join(parts) or "-"


def _varying(groups: Sequence[dict], exclude: Sequence[str]) -> list[str]:
    """The parameter names whose values differ between groups, in the order the params list
    them (all of them if none differ)."""
    keys = [k for k in dict.fromkeys(k for g in groups for k in g) if k not in exclude]
    varying = [k for k in keys if len({str(g.get(k)) for g in groups}) > 1]
    return varying or keys


def _set_x(ax, xs: Sequence[float], x_is_bytes: bool) -> None:
    xs = sorted(set(xs))
    if min(xs) > 0 and max(xs) / min(xs) >= 8:
        ax.set_xscale("log", base=2)
    elif min(xs) == 0 and max(xs) > 10:
        ax.set_xscale("symlog", linthresh=1, base=10)
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: size_label(x) if x_is_bytes else f"{x:g}")
    )


def sweep_chart(
    scenario: dict,
    title: str,
    x_names: Sequence[str],
    metric_names: Sequence[str],
    *,
    xlabel: str,
    x_is_bytes: bool,
    panel_by: str | None = None,
) -> Chart | None:
    """Metrics against one numeric variant parameter (batch.size, linger.ms, block size): one
    line per combination of the other parameters that was run at two or more values of it.

    Panels are the metrics, or with `panel_by` the values of that parameter (e.g. one panel
    per write mode) for the first metric. Variants without the x parameter (e.g. the broker
    part of a scenario) are left out. A line keeps its colour and marker across panels, and
    one legend right of the panels names them."""
    summaries = scenario["summaries"]
    metrics = {m["name"]: m for m in scenario["metrics"]}
    metric_names = [m for m in metric_names if m in metrics]
    if not metric_names:
        return None
    series: dict[tuple, dict[float, str]] = {}  # the other params -> {x: variant name}
    others: dict[tuple, dict] = {}
    for variant in scenario["variants"]:
        x = param(variant["params"], x_names)
        if not isinstance(x, int | float) or variant["name"] not in summaries:
            continue
        rest = {k: v for k, v in variant["params"].items() if k not in x_names}
        key = tuple((k, str(v)) for k, v in rest.items())
        series.setdefault(key, {})[x] = variant["name"]
        others[key] = rest
    series = {k: v for k, v in series.items() if len(v) >= 2}
    if not series:
        return None
    exclude = [panel_by] if panel_by else []
    label_keys = _varying([others[k] for k in series], exclude)
    lines = list(dict.fromkeys(_group_label(others[k], label_keys) for k in series))
    look = {label: style(i) for i, label in enumerate(lines)}
    panels: list[tuple[str, str | None]] = [(m, None) for m in metric_names]
    if panel_by:
        values = dict.fromkeys(str(others[k].get(panel_by)) for k in series)
        panels = [(metric_names[0], value) for value in values]
    with rc_context(STYLE):
        fig = new_figure(min(4.2 * len(panels), 13), 3.8)
        # panels of one metric share the y axis, so e.g. buffered and fsync writes compare
        axes = fig.subplots(1, len(panels), squeeze=False, sharey=bool(panel_by))[0]
        level_rows = []
        panel_ys = []
        for ax, (metric_name, panel_value) in zip(axes, panels, strict=True):
            ys: list[float] = []
            xs: list[float] = []
            panel_ys.append(ys)
            for key, points in series.items():
                if panel_by and str(others[key].get(panel_by)) != panel_value:
                    continue
                pairs = [
                    (x, summaries[name][metric_name])
                    for x, name in sorted(points.items())
                    if metric_name in summaries[name]
                ]
                if not pairs:
                    continue
                rows = [r for _, r in pairs]
                level_rows += rows
                xs += [x for x, _ in pairs]
                ys += [r["ci_low"] for r in rows] + [r["median"] for r in rows]
                label = _group_label(others[key], label_keys)
                ax.errorbar(
                    [x for x, _ in pairs],
                    [r["median"] for r in rows],
                    yerr=_errors(rows),
                    markersize=4,
                    capsize=3,
                    label=label,
                    **look[label],
                )
            if xs:
                _set_x(ax, xs, x_is_bytes)
            metric = metrics[metric_name]
            ax.set_ylabel(metric_label(metric))
            ax.set_xlabel(xlabel)
            if panel_by:
                ax.set_title(f"{panel_by} {panel_value}", fontsize=9)
            else:
                ax.set_title(f"{metric_name} ({metric['better']} is better)", fontsize=9)
        if panel_by:
            panel_ys = [[y for ys in panel_ys for y in ys]]
        for ax, ys in zip(axes, panel_ys, strict=False):
            if ys and min(ys) > 0 and max(ys) / min(ys) > 20:
                log_scale(ax, "y")
            else:
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
        handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
        fig.legend(
            handles=list(handles.values()),
            loc="outside right upper",
            frameon=False,
            fontsize=7,
            title=", ".join(label_keys),
            title_fontsize=7,
        )
        fig.suptitle(title, fontsize=10)
        caption = (
            f"Medians with their {_level(level_rows)}; each line holds the other parameters fixed."
        )
        return Chart(title, render(fig), caption)


def codec_scatter_title(scenario: dict) -> str:
    return f"{scenario['name']}: compression ratio vs CPU per MB"


def codec_scatter(scenario: dict) -> Chart | None:
    """Compression ratio against client CPU-seconds per MB, one point per codec (with both
    intervals), one series per combination of the other parameters run with 2+ codecs."""
    summaries = scenario["summaries"]
    groups: dict[tuple, list[tuple[str, dict, dict]]] = {}
    others: dict[tuple, dict] = {}
    for variant in scenario["variants"]:
        codec = param(variant["params"], CODEC)
        s = summaries.get(variant["name"], {})
        if codec is None or "compression_ratio" not in s or "cpu_s_per_mb" not in s:
            continue
        rest = {k: v for k, v in variant["params"].items() if k not in CODEC}
        key = tuple((k, str(v)) for k, v in rest.items())
        groups.setdefault(key, []).append((str(codec), s["cpu_s_per_mb"], s["compression_ratio"]))
        others[key] = rest
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        return None
    label_keys = _varying([others[k] for k in groups], [])
    keys = sorted(groups, key=lambda k: -len(groups[k]))
    title = codec_scatter_title(scenario)
    markers = "osD^vP*X"
    with rc_context(STYLE):
        fig = new_figure(9, 5)
        ax = fig.add_subplot()
        xs = []
        for i, key in enumerate(keys):
            points = groups[key]
            cpu = [c for _, c, _ in points]
            ratio = [r for _, _, r in points]
            xs += [c["ci_low"] for c in cpu]
            ax.errorbar(
                [c["median"] for c in cpu],
                [r["median"] for r in ratio],
                xerr=_errors(cpu),
                yerr=_errors(ratio),
                fmt=markers[i % len(markers)],
                color=_PALETTE[i % len(_PALETTE)],
                capsize=3,
                markersize=6,
                label=_group_label(others[key], label_keys),
            )
            for codec, c, r in points:
                ax.annotate(
                    codec,
                    (c["median"], r["median"]),
                    xytext=(5, 4),
                    textcoords="offset points",
                    fontsize=8,
                )
        ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle=":")
        if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
            log_scale(ax, "x")
        ax.set_xlabel("client CPU (CPU-s per MB of values), lower is better")
        ax.set_ylabel("compression ratio (x, values / stored bytes), higher is better")
        ax.legend(
            frameon=False, title=", ".join(label_keys), loc="upper left", bbox_to_anchor=(1.01, 1)
        )
        ax.set_title(title)
        caption = "One point per codec; bars are the medians' intervals on both axes."
        return Chart(title, render(fig), caption)


def scenario_charts(scenario: dict, declared: Sequence[ChartSpec] = ()) -> list[Chart]:
    """Every chart the report draws for one scenario, in reading order: its contrasts, the
    charts it declares (Scenario.charts), its latency percentiles and each metric's variants."""
    charts: list[Chart | None] = [contrasts_chart(scenario)]
    name = scenario["name"]
    for spec in declared:
        if isinstance(spec, SweepChart):
            charts.append(
                sweep_chart(
                    scenario,
                    f"{name}: {spec.title}",
                    (spec.x, *spec.along),
                    spec.metrics,
                    xlabel=spec.xlabel,
                    x_is_bytes=spec.x_is_bytes,
                    panel_by=spec.panel_by,
                )
            )
        elif isinstance(spec, CodecScatter):
            charts.append(codec_scatter(scenario))
    # many variants in modes far apart (disk-write-pattern): one panel per mode
    modes = any("mode" in v["params"] for v in scenario["variants"])
    for family, members in percentile_families(scenario).items():
        charts.append(percentile_chart(scenario, family, members, "mode" if modes else None))
    for metric in scenario["metrics"]:
        charts.append(variant_bars(scenario, metric))
    return [c for c in charts if c is not None]


def claims_chart(rows: Sequence[dict]) -> Chart | None:
    """Each check of a measured claim (label, ratio, ci_low, ci_high, threshold, verdict,
    wording): its ratio and interval against its threshold, coloured by verdict, the verdict's
    wording beside it."""
    if not rows:
        return None
    title = "Claims: measured ratio against the claimed threshold"
    png = forest(
        title,
        rows,
        xlabel=f"measured ratio (x), {_level(rows)}",
        colour=lambda r: VERDICT_COLOURS.get(r["verdict"], "#757575"),
        legend={v: VERDICT_COLOURS[v] for v in VERDICT_COLOURS},
        thresholds=lambda r: (r["threshold"],),
        note=lambda r: r["wording"],
    )
    return Chart(
        title,
        png,
        "Each claim (each part of a claim in several parts) with its measured ratio and interval; "
        "diamond: the threshold it needs, line: 1, no difference.",
    )


def trend_chart(
    title: str,
    points: Sequence[dict],
    run_labels: Sequence[str],
    *,
    ylabel: str,
    colour: Callable[[dict], str],
    threshold: float | None = None,
) -> Chart:
    """A ratio across runs: points (index into run_labels, ratio, ci_low, ci_high) joined in run
    order, x ticks labelled with each run's commit and time, a line at 1 and at a threshold,
    and a band over the run-to-run range of the ratios (their lowest to highest)."""
    width = max(5.5, min(1.1 * len(run_labels) + 3, 12))
    with rc_context(STYLE):
        fig = new_figure(width, 3.1)
        ax = fig.add_subplot()
        xs = [p["run"] for p in points]
        ratios = [p["ratio"] for p in points]
        if len(points) > 1:
            ax.axhspan(
                min(ratios), max(ratios), color="#90a4ae", alpha=0.18, label="run-to-run range"
            )
        ax.plot(xs, ratios, color="#90a4ae", linewidth=1, zorder=1)
        for p in points:
            ax.errorbar(
                [p["run"]],
                [p["ratio"]],
                yerr=_ratio_error(p),
                fmt="o",
                color=colour(p),
                capsize=3,
                markersize=5,
                zorder=2,
            )
            ax.annotate(
                f"{p['ratio']:.3g}x",
                (p["run"], p["ratio"]),
                xytext=(6, 0),
                textcoords="offset points",
                fontsize=7,
                va="center",
            )
        ax.axhline(1.0, color="#333333", linewidth=0.8)
        values = [p["ci_low"] for p in points] + [p["ci_high"] for p in points] + [1.0]
        if threshold is not None:
            ax.axhline(
                threshold,
                color=THRESHOLD_MARKER["color"],
                linewidth=1,
                linestyle="--",
                label=f"threshold {threshold:g}x",
            )
            values.append(threshold)
        ax.set_xticks(range(len(run_labels)), run_labels, fontsize=7)
        ax.set_xlim(-0.5, len(run_labels) - 0.5)
        ax.set_xlabel("run (#, commit, start UTC)")
        ax.set_ylabel(ylabel)
        if all(v > 0 for v in values) and max(values) / min(values) > 10:
            log_scale(ax, "y")
        if ax.get_legend_handles_labels()[0]:
            fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=7)
        # about 0.55 em per character: wrap the title to the figure's width
        ax.set_title(textwrap.fill(title, int(width * 72 / (9 * 0.55)) - 4), fontsize=9)
        return Chart(title, render(fig))
