"""`kbench report` (scenarios/reporting/report.py): HTML pages from results files, checked as a
reader would: every chart is there and keeps its text inside its image with labelled axes, every
claim shows once with its overall verdict and a row per part, contrasts are coloured by the
variant they favour, the history has a trend and the run-to-run spread per headline contrast,
and the page opens in headless Chromium without console errors.

The fixtures are two smoke runs of `kbench run --profile smoke` (all four scenarios), checked
in under tests/data/ with the samples' resource figures dropped; tests/test_run.py checks that
the harness still writes results files that validate. Nothing here asserts today's exact set of
claims: the scenarios' checks change on their own."""

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.colors
import matplotlib.image
import numpy
import pytest

from scenarios.harness import results
from scenarios.harness.claims import CLAIMS, overall_verdict
from scenarios.harness.stats import Comparison, format_interval
from scenarios.reporting import charts as report_charts
from scenarios.reporting.charts import log_ticks, outcome, overflow
from scenarios.reporting.report import (
    HISTORY_PAGE,
    NOT_MEASURED,
    ReportError,
    claims_ledger,
    run_page,
    write_report,
)

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURES = [os.path.join(DATA, f"report-smoke-{i}.json") for i in (1, 2)]
VERDICTS = {"confirmed", "not reproduced", "inconclusive", NOT_MEASURED}
VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr", "col", "area", "base"}
BLOCK = {"p", "div", "ul", "ol", "table", "figure", "section", "article", "h1", "h2", "h3"}
# An older commit for the first run: the two fixtures share a commit, and the history must tell
# runs of different commits apart.
OLDER_COMMIT = "0123456789abcdef0123456789abcdef01234567"
# The charts each scenario's data calls for, beyond a bar chart per metric and the contrasts.
SPECIAL_CHARTS = {
    "disk-write-pattern": [
        "disk-write-pattern: MB/s vs block size",
        "disk-write-pattern: write latency percentiles",
    ],
    "page-cache": ["page-cache: latency percentiles"],
    "zero-copy": ["zero-copy: MB/s and CPU vs fetch size"],
    "batch-compression": [
        "batch-compression: throughput and latency vs batch.size",
        "batch-compression: throughput and latency vs linger.ms",
        "batch-compression: compression ratio vs CPU per MB",
        "batch-compression: latency percentiles",
    ],
}
# A numeric tick label: 0.5, 1e-05, -2 (with a hyphen or a minus sign), 10k, 4 KiB.
NUMBER = re.compile(r"^[-\N{MINUS SIGN}]?[\d.]+(e[-+]?\d+)?( ?(k|M|G|B|KiB|MiB|GiB))?$")
# The history is drawn from the runs' page-cache scenario only: every kind of trend, few charts.
HISTORY_SCENARIOS = {"page-cache"}


class Page(HTMLParser):
    """Parses a page, checks tags nest and close, and collects what the tests look at: the
    title, ids, images and figure titles by section, ledger rows, links and text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self.sections: dict[str, dict] = {}  # section id -> {"imgs": [alt], "data": [attrs]}
        self.figures: list[dict] = []  # attributes of every <figure>
        self.imgs: list[dict] = []
        self.urls: list[str] = []
        self.scripts = 0
        # rows of the tables of these classes: [(kind, value, text)] per row
        self.rows: dict[str, list[list[list[str]]]] = {
            k: [] for k in ("ledger", "glance", "contrasts", "spread")
        }
        self.table: str | None = None
        self._collecting: str | None = None  # the tag whose text goes to the last marker
        self._section_ids: list[str | None] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed at the end: {self.stack}")

    def _section(self) -> str | None:
        return next((s for s in reversed(self._section_ids) if s), None)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in BLOCK and "p" in self.stack:
            self.errors.append(f"<{tag}> inside <p>")
        if "id" in a:
            self.ids.append(a["id"])
        for name in ("src", "href"):
            if name in a:
                self.urls.append(a[name])
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self._section_ids = [*self._section_ids, a.get("id")]
            self.sections.setdefault(a.get("id"), {"imgs": []})
        if tag == "table" and a.get("class") in self.rows:
            self.table = a["class"]
        if self.table and tag == "tr":
            self.rows[self.table].append([])
        if self.table and self.rows[self.table]:
            row = self.rows[self.table][-1]
            target = a.get("id") or a.get("href", "").removeprefix("#")
            if tag in ("strong", "a") and target.startswith("claim-"):
                row.append(["claim", target.removeprefix("claim-"), ""])
            if tag == "span" and "data-verdict" in a:
                row.append(["verdict", a["data-verdict"], ""])
            if tag == "td" and "data-part" in a:
                row.append(["part", a["data-part"], ""])
            if tag == "td" and a.get("class", "").startswith("o-"):
                row.append(["outcome", a["class"].removeprefix("o-"), ""])
            if row and row[-1][2] == "" and self._collecting is None:
                self._collecting = tag
        if tag == "figure":
            self.figures.append({**a, "caption": ""})
        if tag == "img":
            self.imgs.append(a)
            if self._section():
                self.sections[self._section()]["imgs"].append(a.get("alt", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"</{tag}> closes a void element")
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> does not close the open <{self.stack[-1:]}>")
            return
        self.stack.pop()
        if tag == self._collecting:
            self._collecting = None
        if tag == "section":
            self._section_ids = self._section_ids[:-1]
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self._collecting:
            self.rows[self.table][-1][-1][2] += data
        if "figcaption" in self.stack:
            self.figures[-1]["caption"] += data
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def check_page(path: str) -> Page:
    """Parse a written page and check it is a self-contained, well-formed HTML document."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    page = Page(text)
    assert page.errors == []
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    assert page.scripts == 0
    for url in page.urls:  # nothing to fetch: images inline, links within the report
        assert not url.startswith(("http:", "https:", "//", "file:")), url
    for img in page.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img.get("alt")
    return page


def _save(document: dict, path) -> str:
    results.validate(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def _only(document: dict, names: set[str]) -> dict:
    document = copy.deepcopy(document)
    document["scenarios"] = [s for s in document["scenarios"] if s["name"] in names]
    return document


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The fixture runs, the first relabelled as an older commit; the page of the second run
    (written alone); the pages and history write_report makes of both runs' HISTORY_SCENARIOS;
    and every matplotlib figure drawn for them."""
    base = tmp_path_factory.mktemp("report")
    runs = [results.load(p) for p in FIXTURES]
    runs[0]["environment"]["git"] = {"commit": OLDER_COMMIT, "dirty": False}
    figures = []
    render = report_charts.render

    def spy(fig):
        figures.append(fig)
        return render(fig)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_charts, "render", spy)
        (page,) = write_report([_save(runs[1], base / "full.json")], str(base / "full"))
        small = [
            _save(_only(run, HISTORY_SCENARIOS), base / f"small-{i}.json")
            for i, run in enumerate(runs)
        ]
        # given newest first: the pages come back in order of the runs' start
        written = write_report(small[::-1], str(base / "history"))
    return {"runs": runs, "page": page, "written": written, "figures": figures}


def test_one_page_per_run_and_a_history(reports):
    written, runs = reports["written"], reports["runs"]
    assert len(written) == 3
    assert os.path.basename(written[-1]) == HISTORY_PAGE
    for path, run in zip(written, runs, strict=False):
        assert run["run_id"] in os.path.basename(path)
        page = check_page(path)
        assert page.title.startswith(f"kbench run {run['run_id']} ")
        assert run["started_at"][:10] in page.title
        assert HISTORY_PAGE in page.urls
    assert HISTORY_PAGE not in check_page(reports["page"]).urls  # a run on its own


def test_run_page_summary_and_environment(reports):
    run, page = reports["runs"][1], check_page(reports["page"])
    text = page.all_text
    env = run["environment"]
    for fact in (
        env["cpu"]["model"],
        env["os"]["kernel"],
        env["data_dir"]["fstype"],
        env["git"]["commit"],
        f"{env['memory']['total_bytes'] / (1 << 30):.1f} GiB",
        "Smoke profile",
    ):
        assert fact in text, fact
    for scenario in run["scenarios"]:
        assert f"summary-{scenario['name']}" in page.ids
        assert scenario["question"] in text
        for note in scenario["notes"]:
            assert note in text
        for contrast in scenario["contrasts"]:
            assert contrast["label"] in text
            c = contrast["comparison"]
            interval = Comparison(
                c["ratio"], c["ci_low"], c["ci_high"], c["n"], c["confidence"], True
            )
            assert format_interval(interval) in text
    # the claims come first, then the scenarios
    assert page.ids.index("glance") < page.ids.index("summary") < page.ids.index("claims")


def test_run_page_has_every_chart(reports):
    run, page = reports["runs"][1], check_page(reports["page"])
    for scenario in run["scenarios"]:
        name = scenario["name"]
        assert scenario["skipped"] is None and scenario["error"] is None
        titles = page.sections[f"charts-{name}"]["imgs"]
        expected = [f"{name}: headline contrasts", *SPECIAL_CHARTS[name]]
        expected += [f"{name}: {m['name']} ({m['unit']}) per variant" for m in scenario["metrics"]]
        assert sorted(titles) == sorted(expected)
    assert page.sections["glance"]["imgs"] == [
        "Claims: measured ratio against the claimed threshold"
    ]


def _by_claim(rows: list[list[list[str]]]) -> dict[str, dict]:
    """A claims table's rows by claim: its overall verdict marker (kind, verdict, text) and
    those of its parts; asserts each claim is listed once."""
    claims: dict[str, dict] = {}
    current = None
    for row in rows:
        verdicts = [m for m in row if m[0] == "verdict"]
        if named := [m[1] for m in row if m[0] == "claim"]:
            current = named[0]
            assert current not in claims, f"{current} listed twice"
            claims[current] = {"verdict": verdicts.pop(0), "parts": []}
        if current:
            claims[current]["parts"] += verdicts
    return claims


def _judged(run: dict) -> dict[str, list[dict]]:
    judged: dict[str, list[dict]] = {}
    for scenario in run["scenarios"]:
        for claim in scenario["claims"]:
            judged.setdefault(claim["id"], []).append(claim)
    return judged


def test_each_claim_shows_once_with_its_overall_verdict_and_parts(reports):
    run, page = reports["runs"][1], check_page(reports["page"])
    judged = _judged(run)
    assert judged, "the fixture judges claims"
    glance, ledger = _by_claim(page.rows["glance"]), _by_claim(page.rows["ledger"])
    assert set(glance) == set(judged)
    assert set(CLAIMS) | set(judged) == set(ledger)
    for claim_id, checks in judged.items():
        verdict, wording = overall_verdict(checks)
        for table in (glance, ledger):
            shown = table[claim_id]
            assert shown["verdict"][1:] == ["verdict", verdict, wording][1:], claim_id
            assert [(v, text) for _, v, text in shown["parts"]] == [
                (c["verdict"], c.get("wording") or c["verdict"]) for c in checks
            ]
        for check in checks:
            assert check["rule"] in page.all_text
    for claim_id, shown in ledger.items():
        assert shown["verdict"][1] in VERDICTS
        if claim_id not in judged:
            assert shown["verdict"][1] == NOT_MEASURED and shown["parts"] == []
    for claim in CLAIMS.values():
        assert claim.quoted in page.all_text and claim.source in page.all_text


def _synthetic_run(run: dict) -> dict:
    """The page-cache scenario of a run with one claim in two parts (the second not
    reproduced) and, besides its own contrasts, a latency contrast written baseline over
    technique (cold/hot p50, lower is better) that the resident file wins, as copy/sendfile
    CPU is written in zero-copy."""
    run = _only(run, {"page-cache"})
    scenario = run["scenarios"][0]
    contrast = scenario["contrasts"][0]
    contrast.update(direction="better")
    contrast["comparison"].update(ratio=7.0, ci_low=6.0, ci_high=8.0)
    scenario["contrasts"].append(
        {
            **copy.deepcopy(contrast),
            "name": "cold-vs-hot-latency",
            "label": "evicted/resident p50 latency",
            "metric": "p50_latency_us",
            "numerator": contrast["denominator"],
            "denominator": contrast["numerator"],
            "direction": "worse",
        }
    )
    first = {**scenario["claims"][0], "part": "part one", "verdict": "confirmed"}
    first["wording"] = "confirmed"
    second = {**first, "part": "part two", "verdict": "not reproduced"}
    second["wording"] = "not reproduced: the opposite holds here"
    scenario["claims"] = [first, second]
    results.validate(run)
    return run


@pytest.fixture(scope="module")
def synthetic(reports) -> tuple[dict, Page]:
    run = _synthetic_run(reports["runs"][1])
    return run, Page(run_page(run))


def test_a_claim_in_several_parts_shows_once_with_each_part(synthetic):
    run, page = synthetic
    claim_id = run["scenarios"][0]["claims"][0]["id"]
    checks = run["scenarios"][0]["claims"]
    verdict, wording = overall_verdict(checks)
    assert verdict == "not reproduced"
    for table in ("glance", "ledger"):
        shown = _by_claim(page.rows[table])[claim_id]
        assert shown["verdict"][1:] == [verdict, wording]
        assert [text for _, _, text in shown["parts"]] == [
            "confirmed",
            "not reproduced: the opposite holds here",
        ]
    parts = [m[1] for row in page.rows["ledger"] for m in row if m[0] == "part"]
    assert "part one" in parts and "part two" in parts
    assert [e["verdict"] for e in claims_ledger(run) if e["id"] == claim_id] == [verdict]


def test_contrasts_are_coloured_by_the_variant_they_favour(synthetic):
    run, page = synthetic
    scenario = run["scenarios"][0]
    hot = scenario["contrasts"][0]["numerator"]
    outcomes = [m for row in page.rows["contrasts"] for m in row if m[0] == "outcome"]
    assert len(outcomes) == len(scenario["contrasts"])
    # technique over baseline, the technique better; baseline over technique, the baseline
    # worse: both are the resident file winning, both green, both naming it
    for shown in (outcomes[0], outcomes[-1]):
        assert shown[1] == "favoured"
        assert shown[2].startswith(hot)


@pytest.mark.parametrize(
    ("direction", "better", "threshold", "expected"),
    [
        ("better", "higher", None, "favoured"),  # sendfile/copy MB/s, sendfile faster
        ("worse", "lower", None, "favoured"),  # copy/sendfile CPU, copy costlier
        ("worse", "lower", 3.0, "favoured"),  # ... tested by a claim of at least 3x
        ("better", "lower", None, "against"),  # copy/sendfile CPU, copy cheaper
        ("worse", "higher", 2.0, "against"),  # sendfile/copy MB/s, sendfile slower
        ("better", "higher", 0.5, "against"),  # a claim that the ratio stays below 1
        ("inconclusive", "lower", 3.0, "inconclusive"),
    ],
)
def test_outcome_follows_the_favoured_variant(direction, better, threshold, expected):
    assert outcome({"direction": direction}, better, threshold) == expected


def test_history_has_a_trend_and_spread_per_contrast_and_claim(reports):
    runs = [_only(r, HISTORY_SCENARIOS) for r in reports["runs"]]
    page = check_page(reports["written"][-1])
    contrasts: dict[str, list[float]] = {}
    for run in runs:
        for s in run["scenarios"]:
            for c in s["contrasts"]:
                contrasts.setdefault(f"{s['name']}/{c['name']}", []).append(
                    c["comparison"]["ratio"]
                )
    claims = {
        (c["id"], f"{s['name']}/{c['contrast']}")
        for r in runs
        for s in r["scenarios"]
        for c in s["claims"]
    }
    assert contrasts and claims
    trends = {f["data-contrast"]: f for f in page.figures if "data-claim" not in f}
    assert sorted(trends) == sorted(contrasts)
    for name, ratios in contrasts.items():  # the run-to-run range, in the caption and a table
        spread = f"run-to-run range {min(ratios):.3g}x-{max(ratios):.3g}x"
        assert spread in trends[name]["caption"]
    assert len(page.rows["spread"]) == len(contrasts) + 1  # and its header
    claim_trends = {
        (f["data-claim"], f["data-contrast"]) for f in page.figures if "data-claim" in f
    }
    assert claim_trends == claims
    assert len(page.imgs) == len(contrasts) + len(claims)
    for run, page_path in zip(runs, reports["written"], strict=False):
        assert os.path.basename(page_path) in page.urls
        assert run["run_id"] in page.all_text
    # every point labelled with its run's commit, in order of the runs' start
    older, newer = OLDER_COMMIT[:7], runs[1]["environment"]["git"]["commit"][:7]
    for figure in page.figures:
        caption = figure["caption"]
        assert f"#1 {older}" in caption and f"#2 {newer}" in caption, caption
        assert caption.index(f"#1 {older}") < caption.index(f"#2 {newer}")


def test_every_chart_keeps_its_text_inside_and_labels_its_axes(reports):
    """Each figure drawn for the pages: nothing outside the figure's bounds (so nothing cut off
    its image), and every numeric axis labelled with its unit, "(unit)" or a ratio's "(x)".
    Exceptions: a categorical axis (variants, contrasts, runs), whose tick labels say what it
    is, and an axis shared with a labelled panel of the same figure."""
    figures = reports["figures"]
    assert len(figures) >= len(check_page(reports["page"]).imgs)
    for fig in figures:
        title = fig.axes[0].get_title() or fig.get_suptitle()
        assert overflow(fig) is None, title
        for ax in fig.axes:
            for which in ("x", "y"):
                axis = getattr(ax, f"{which}axis")
                ticks = [t.get_text() for t in axis.get_majorticklabels() if t.get_text()]
                if not all(NUMBER.match(t) for t in ticks):
                    continue  # categorical
                shared = getattr(ax, f"get_shared_{which}_axes")().get_siblings(ax)
                labels = [getattr(a, f"{which}axis").get_label_text() for a in shared]
                label = next((text for text in labels if text), "")
                assert re.search(r"\([^)]+\)", label), (title, which, label)


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.9, 8.0), (0.8, 2.5), (0.98, 1.03), (1e-3, 1e7), (3.0, 3000.0), (50, 70)]
)
def test_log_axes_get_enough_ticks_that_do_not_crowd(lo, hi):
    ticks = log_ticks(lo, hi)
    assert 3 <= len(ticks) <= 8, ticks
    assert ticks == sorted(set(ticks)) and lo <= ticks[0] and ticks[-1] <= hi


def test_skipped_and_failed_scenarios_are_reported_without_charts(reports, tmp_path):
    run = json.loads(json.dumps(reports["runs"][1]))
    skipped, failed = run["scenarios"][:2]  # disk-write-pattern, page-cache
    run["scenarios"] = [skipped, failed]
    skipped.update(skipped="O_DIRECT refused here", samples=[], summaries={}, contrasts=[])
    failed.update(error="the broker exited", summaries={}, contrasts=[])
    skipped["claims"] = failed["claims"] = []
    results.validate(run)
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(run))
    (written,) = write_report([str(path)], str(tmp_path / "out"))
    page = check_page(written)
    assert "O_DIRECT refused here" in page.all_text and "the broker exited" in page.all_text
    assert page.sections[f"charts-{skipped['name']}"]["imgs"] == []
    assert page.sections[f"charts-{failed['name']}"]["imgs"] == []
    text = page.all_text
    assert f"{NOT_MEASURED}: {skipped['name']} was skipped (O_DIRECT refused here)" in text
    assert f"{NOT_MEASURED}: {failed['name']} stopped with an error" in text
    assert f"{NOT_MEASURED}: zero-copy was not part of this run" in text


def test_invalid_results_files_are_refused_clearly(tmp_path):
    out = tmp_path / "out"
    not_json = tmp_path / "not.json"
    not_json.write_text("{ nope")
    with pytest.raises(ReportError, match=r"not\.json is not a kbench results file: not JSON"):
        write_report([str(not_json)], str(out))
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something-else"}')
    with pytest.raises(ReportError, match=r"other\.json is not a kbench results file"):
        write_report([str(other)], str(out))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**_empty_run(), "profile": "bogus"}))
    with pytest.raises(ReportError, match=r"broken\.json does not conform .* at profile"):
        write_report([str(broken)], str(out))
    with pytest.raises(ReportError, match="no such results file"):
        write_report([str(tmp_path / "missing.json")], str(out))
    with pytest.raises(ReportError, match="no results files"):
        write_report([], str(out))
    assert not out.exists()  # nothing written when any file is refused


def test_a_run_without_scenarios_lists_every_claim_as_not_measured(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(_empty_run()))
    (written,) = write_report([str(path)], str(tmp_path / "out"))
    page = check_page(written)
    verdicts = [m[1] for row in page.rows["ledger"] for m in row if m[0] == "verdict"]
    assert verdicts == [NOT_MEASURED] * len(CLAIMS)
    assert page.sections["glance"]["imgs"] == []
    assert "data directory on tmpfs" in page.all_text  # the warning, in the banner


def _empty_run() -> dict:
    return {
        "schema": "kbench-results",
        "schema_version": 1,
        "run_id": "0123456789ab",
        "started_at": "2026-01-02T03:04:05+00:00",
        "finished_at": "2026-01-02T03:05:05+00:00",
        "profile": "quick",
        "command": ["kbench", "run"],
        "target": {"kind": "engine", "bootstrap": None},
        "environment": {"warnings": ["data directory on tmpfs: disk results measure memory"]},
        "scenarios": [],
    }


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


CHROMIUM = _chromium()


def _open_in_chromium(html_path: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1280,2000",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            f"file://{html_path}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
@pytest.mark.parametrize("which", ["run", "history"])
def test_pages_render_in_headless_chromium(reports, tmp_path, which):
    path = reports["written"][0 if which == "run" else -1]
    screenshot = tmp_path / "page.png"
    shown = _open_in_chromium(path, tmp_path, f"--screenshot={screenshot}")
    assert shown.returncode == 0, shown.stderr[-3000:]
    # the pages hold no script, so anything on the console is a fault (a CSP or parse error)
    console = [
        line for line in shown.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line
    ]
    assert console == []
    pixels = matplotlib.image.imread(str(screenshot))
    assert pixels.shape[:2] == (2000, 1280)
    rgb = (pixels[..., :3] * 255).round().astype(numpy.uint32)
    colours = numpy.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 16  # text, tables and charts, not a blank or single-colour page
    ink = (pixels[..., :3].min(axis=-1) < 0.5).mean()
    assert ink > 0.005  # a visible share of dark pixels: text was drawn
    if which == "run":
        # the claims at a glance fill the first screen: each verdict's colour is on it
        top = pixels[:1000, :, :3]
        run = _only(reports["runs"][0], HISTORY_SCENARIOS)
        for verdict in {c["verdict"] for s in run["scenarios"] for c in s["claims"]}:
            rgb = matplotlib.colors.to_rgb(report_charts.VERDICT_COLOURS[verdict])
            assert (abs(top - rgb).max(axis=-1) < 0.03).any(), verdict
        dom = _open_in_chromium(path, tmp_path, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-3000:]
        loaded = Page(dom.stdout)
        assert loaded.title == check_page(path).title
        assert len(loaded.imgs) == len(check_page(path).imgs)
