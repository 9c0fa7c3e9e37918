"""`kbench report` (scenarios/report.py): HTML pages from results files, checked as a reader
would: every chart is there, every claim has a verdict or "not yet measured", the history has a
trend per headline contrast, and the page opens in headless Chromium without console errors.

The fixtures are two real smoke runs of the installed `kbench` (seconds each)."""

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.image
import numpy
import pytest

from scenarios import results
from scenarios.claims import CLAIMS
from scenarios.report import HISTORY_PAGE, NOT_MEASURED, ReportError, write_report
from scenarios.stats import Comparison, format_interval
from tests.conftest import KBENCH

VERDICTS = {"confirmed", "not reproduced", "inconclusive", NOT_MEASURED}
VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr", "col", "area", "base"}
BLOCK = {"p", "div", "ul", "ol", "table", "figure", "section", "article", "h1", "h2", "h3"}
# An older commit for the first run: two runs of one checkout share a commit, and the history
# must tell runs of different commits apart.
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
        self.ledger_rows: list[list[tuple[str, str]]] = []  # [(kind, text)] per row
        self._in_ledger = False
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
        if tag == "table" and a.get("class") == "ledger":
            self._in_ledger = True
        if self._in_ledger and tag == "tr":
            self.ledger_rows.append([])
        if self._in_ledger and tag == "strong" and a.get("id", "").startswith("claim-"):
            self.ledger_rows[-1].append(("claim", a["id"].removeprefix("claim-")))
        if self._in_ledger and tag == "span" and "verdict" in a.get("class", ""):
            self.ledger_rows[-1].append(("verdict", ""))
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
        if tag == "section":
            self._section_ids = self._section_ids[:-1]
        if tag == "table":
            self._in_ledger = False

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self._in_ledger and self.ledger_rows:
            row = self.ledger_rows[-1]
            if row and row[-1] == ("verdict", ""):
                row[-1] = ("verdict", data)
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


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two smoke runs, one after the other, the first relabelled as an older commit; and the
    pages write_report makes of them."""
    base = tmp_path_factory.mktemp("report")
    paths = []
    for _ in range(2):
        completed = subprocess.run(
            [KBENCH, "run", "--profile", "smoke", "--reports", str(base / "results")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        paths.append(re.search(r"^results: (\S+\.json)$", completed.stdout, re.M).group(1))
        assert re.search(r"^report: \S+\.html$", completed.stdout, re.M)  # run writes one too
    first = results.load(paths[0])
    first["environment"]["git"] = {"commit": OLDER_COMMIT, "dirty": False}
    with open(paths[0], "w", encoding="utf-8") as f:
        json.dump(first, f)
    runs = [results.load(p) for p in paths]
    # given newest first: the pages come back in order of the runs' start
    written = write_report(list(reversed(paths)), str(base / "html"))
    return {"runs": runs, "written": written, "out": str(base / "html")}


def test_one_page_per_run_and_a_history(reports):
    written, runs = reports["written"], reports["runs"]
    assert len(written) == 3
    assert [os.path.basename(p) for p in written][-1] == HISTORY_PAGE
    for path, run in zip(written, runs, strict=False):
        assert run["run_id"] in os.path.basename(path)
        page = check_page(path)
        assert page.title.startswith(f"kbench run {run['run_id']} ")
        assert run["started_at"][:10] in page.title
        assert HISTORY_PAGE in page.urls


def test_run_page_summary_and_environment(reports):
    run, page = reports["runs"][1], check_page(reports["written"][1])
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


def test_run_page_has_every_chart(reports):
    run, page = reports["runs"][1], check_page(reports["written"][1])
    for scenario in run["scenarios"]:
        name = scenario["name"]
        assert scenario["skipped"] is None and scenario["error"] is None
        titles = page.sections[f"charts-{name}"]["imgs"]
        expected = [f"{name}: headline contrasts", *SPECIAL_CHARTS[name]]
        expected += [f"{name}: {m['name']} ({m['unit']}) per variant" for m in scenario["metrics"]]
        assert sorted(titles) == sorted(expected)
    assert page.sections["claims"]["imgs"] == [
        "Claims: measured ratio against the claimed threshold"
    ]


def test_ledger_lists_every_claim_with_a_verdict(reports):
    run, page = reports["runs"][1], check_page(reports["written"][1])
    verdicts: dict[str, list[str]] = {}
    current = None
    for row in page.ledger_rows:
        for kind, text in row:
            if kind == "claim":
                current = text
            elif kind == "verdict":
                verdicts.setdefault(current, []).append(text)
    assert set(CLAIMS) <= set(verdicts)
    for claim_id, seen in verdicts.items():
        assert seen and set(seen) <= VERDICTS, (claim_id, seen)
    judged: dict[str, list[str]] = {}
    for scenario in run["scenarios"]:
        for claim in scenario["claims"]:
            judged.setdefault(claim["id"], []).append(claim["verdict"])
            assert claim["rule"] in page.all_text
    for claim_id, claim in CLAIMS.items():
        assert verdicts[claim_id] == judged.get(claim_id, [NOT_MEASURED]), claim_id
        assert claim.quoted in page.all_text and claim.source in page.all_text
        if claim.scenario == "(later)":
            assert verdicts[claim_id] == [NOT_MEASURED]


def test_history_has_a_trend_per_contrast_and_claim(reports):
    runs, page = reports["runs"], check_page(reports["written"][-1])
    contrasts = {
        f"{s['name']}/{c['name']}" for r in runs for s in r["scenarios"] for c in s["contrasts"]
    }
    claims = {
        (c["id"], f"{s['name']}/{c['contrast']}")
        for r in runs
        for s in r["scenarios"]
        for c in s["claims"]
    }
    trends = [f for f in page.figures if "data-claim" not in f]
    assert sorted(f["data-contrast"] for f in trends) == sorted(contrasts)
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
    verdicts = [text for row in page.ledger_rows for kind, text in row if kind == "verdict"]
    assert verdicts == [NOT_MEASURED] * len(CLAIMS)
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
    path = reports["written"][1 if which == "run" else -1]
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
    colours = numpy.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 16  # text, tables and charts, not a blank or single-colour page
    ink = (pixels[..., :3].min(axis=-1) < 0.5).mean()
    assert ink > 0.005  # a visible share of dark pixels: text was drawn
    if which == "run":
        dom = _open_in_chromium(path, tmp_path, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-3000:]
        loaded = Page(dom.stdout)
        assert loaded.title == check_page(path).title
        assert len(loaded.imgs) == len(check_page(path).imgs)
