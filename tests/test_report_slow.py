"""Run reports (#6) end to end: real notebooks executed by nbclient, their reports opened in headless Chromium.

notebooks/01_quickstart.ipynb (1 epoch) and notebooks/compare.ipynb run in a real kernel into one fresh store;
a run whose name, tag, config key and value, metric name and printed line carry HTML/JS payloads is added to the
compare project from this process. Then four reports: each executed notebook, a comparison (`where=`, the hostile
run included) and the hostile run's own page. Each is opened from its file in Chromium with every request
intercepted: nothing may leave the page, nothing may log an error, no payload may run, the charts' SVG paths must
be drawn, and the CSS-only tabs must switch on a click. Screenshots (full page) go to each test's tmp dir; their
paths are printed and named in the assertion messages.

Last, the GitHub/nbviewer case: the executed quickstart with its widget state dropped, through
`nbconvert --to html` (the default 'lab' template), must still show the dashboard's final static snapshot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

import nbtrack
from nbtrack.reports.execute import execute_notebook
from nbtrack.store import open_store

from .conftest import ROOT
from .test_browser import launch_chromium, point_count, sync_playwright

pytestmark = pytest.mark.slow

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
SVG_ONLOAD = "'\"><svg onload=window.__pwned=1>"
EVIL_NAME = f"evil-name{IMG}{SCRIPT}"
EVIL_TAG = f"evil-tag{SVG_ONLOAD}{SCRIPT}"
EVIL_KEY = f"evil-key{SCRIPT}"
EVIL_VALUE = f"evil-value{IMG}{SVG_ONLOAD}"
EVIL_METRIC = f"evil-metric{IMG}"  # no '/': a slash makes a metric family, splitting the name in chart titles
EVIL_LOG = f"evil-log{IMG}{SCRIPT}"
COMPARE_PROJECT = "compare-demo"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@dataclass
class Made:
    root: Path
    store: Path
    quickstart: Path  # the executed notebooks
    compare: Path
    evil_id: str
    reports: dict[str, Path]


def _hostile_run(store: Path) -> str:
    run = nbtrack.init(
        project=COMPARE_PROJECT,
        name=EVIL_NAME,
        config={"lr": 0.1, "epochs": 3, "batch_size": 32, "hidden_units": 32, EVIL_KEY: EVIL_VALUE},
        tags=[COMPARE_PROJECT, EVIL_TAG],
        notes=f"evil-notes{SCRIPT}",
        store=store,
    )
    print(EVIL_LOG)
    for epoch in range(3):
        run.log({"loss": 2.0 / (epoch + 1), "val_loss": 2.2 / (epoch + 1), EVIL_METRIC: 0.1 * epoch})
    run.summary["val_accuracy"] = 0.5
    run.finish()
    return run.id


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Made:
    root = tmp_path_factory.mktemp("reports")
    store = root / "nbtrack-runs"
    executed = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBTRACK_STORE", str(store))
        mp.setenv("NBTRACK_DEMO_EPOCHS", "1")
        mp.delenv("NBTRACK_SILENT", raising=False)
        mp.delenv("NBTRACK_PROJECT", raising=False)
        for name in ("01_quickstart", "compare"):
            shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root / f"{name}.ipynb")
            executed[name] = root / f"{name}.executed.ipynb"
            execute_notebook(root / f"{name}.ipynb", executed[name], timeout=600)
        mp.setenv("NBTRACK_SILENT", "1")
        evil_id = _hostile_run(store)
    reports = {
        # A report reads the store it is given (never the one a notebook's outputs name).
        "quickstart": nbtrack.report(executed["01_quickstart"], store=store),
        "compare-notebook": nbtrack.report(executed["compare"], store=store),
        "comparison": nbtrack.report(
            where="config.lr > 0", project=COMPARE_PROJECT, store=store, output=root / "comparison.html"
        ),
        "hostile-run": nbtrack.report(run=evil_id, store=store, output=root / "hostile-run.html"),
    }
    return Made(root, store, executed["01_quickstart"], executed["compare"], evil_id, reports)


@dataclass
class Visit:
    requests: list[str]  # every request the page made (page.on("request")), the report's own included
    blocked: list[str]  # what the route handler aborted
    errors: list[str]  # console errors and uncaught page errors
    pwned: str  # typeof window.__pwned after load
    text: str  # document.body.textContent (hidden panes included)
    paths: list[dict]  # every SVG <path>: its d, and whether it is drawn (non-empty box)
    tabs: list[dict]  # each "Charts" tab clicked: the pane's display before and after, its drawn paths
    shot: Path


OPEN_TABS_JS = """(label) => {
    const tabs = label.parentElement;
    const inputs = [...tabs.querySelectorAll(':scope > input')];
    const panes = [...tabs.querySelectorAll(':scope > .pane')];
    return panes[inputs.indexOf(document.getElementById(label.htmlFor))];
}"""


def visit(path: Path, shot: Path, *, tab: str = "Charts") -> Visit:
    """Open `path` from its file with every other request aborted; click each `tab` label; screenshot it."""
    url = path.resolve().as_uri()
    requests: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):  # type: ignore[no-untyped-def]
                if r.request.url == url:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            pwned = page.evaluate("typeof window.__pwned")
            text = page.evaluate("document.body.textContent")
            tabs = []
            labels = page.locator(".tabs > label", has_text=re.compile(f"^{tab}$"))
            for i in range(labels.count()):
                label = labels.nth(i)
                pane = label.evaluate_handle(OPEN_TABS_JS).as_element()
                before = pane.evaluate("el => getComputedStyle(el).display")
                label.click()
                after = pane.evaluate("el => getComputedStyle(el).display")
                drawn = pane.evaluate(
                    "el => [...el.querySelectorAll('svg path')].filter((p) => {"
                    " const b = p.getBoundingClientRect(); return (b.width > 0 || b.height > 0)"
                    " && (p.getAttribute('d') || '').length > 0; }).length"
                )
                tabs.append({"before": before, "after": after, "drawn": drawn, "visible": pane.is_visible()})
            paths = page.locator("svg path").evaluate_all(
                "els => els.map((p) => { const b = p.getBoundingClientRect();"
                " return {d: p.getAttribute('d') || '', drawn: b.width > 0 || b.height > 0}; })"
            )
            page.wait_for_timeout(200)  # anything a click could have started
            pwned = page.evaluate("typeof window.__pwned") if pwned == "undefined" else pwned
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    return Visit(requests, blocked, errors, pwned, text, paths, tabs, shot)


def assert_offline_and_clean(v: Visit, url: str) -> None:
    left = [r for r in v.requests if r != url]
    assert not left and not v.blocked, f"requests left the page: {left or v.blocked}; screenshot {v.shot}"
    assert v.requests == [url], f"{v.requests}; screenshot {v.shot}"
    assert not v.errors, f"browser errors: {v.errors}; screenshot {v.shot}"
    assert v.pwned == "undefined", f"a payload ran (window.__pwned is {v.pwned}); screenshot {v.shot}"


def assert_charts_drawn(v: Visit, *, min_panes: int = 1, min_points: int = 2) -> None:
    assert v.paths, f"no SVG path in the report; screenshot {v.shot}"
    empty = [p for p in v.paths if not p["d"].strip()]
    assert not empty, f"{len(empty)} of {len(v.paths)} SVG paths have an empty d; screenshot {v.shot}"
    assert all(p["d"].lstrip().startswith("M") for p in v.paths), f"screenshot {v.shot}"
    assert max(point_count(p["d"]) for p in v.paths) >= min_points, f"screenshot {v.shot}"
    assert len(v.tabs) >= min_panes, (
        f"{len(v.tabs)} 'Charts' tabs, {min_panes}+ expected; screenshot {v.shot}"
    )
    for i, tab in enumerate(v.tabs):
        assert tab["before"] == "none" and tab["after"] != "none" and tab["visible"], (
            f"'Charts' tab {i}: pane display {tab['before']} -> {tab['after']} on click; screenshot {v.shot}"
        )
        assert tab["drawn"] > 0, f"'Charts' tab {i} shows no drawn path; screenshot {v.shot}"


# -- the four reports in a browser ---------------------------------------------------------------------------
def test_quickstart_report_in_a_browser(made, tmp_path):
    path = made.reports["quickstart"]
    v = visit(path, tmp_path / "quickstart-report.png")
    assert_offline_and_clean(v, path.as_uri())
    assert_charts_drawn(v, min_panes=1, min_points=20)  # batch/loss: one point per step of the epoch
    run = open_store(made.store, create=False).list_runs("test_project")[0]
    assert run.name in v.text and "finished" in v.text, f"screenshot {v.shot}"
    assert "235,146 parameters" in v.text, f"the Model pane is missing; screenshot {v.shot}"
    assert "model-best.keras" in v.text, f"the Files pane is missing; screenshot {v.shot}"


def test_compare_notebook_report_in_a_browser(made, tmp_path):
    path = made.reports["compare-notebook"]
    v = visit(path, tmp_path / "compare-notebook-report.png")
    assert_offline_and_clean(v, path.as_uri())
    # three dashboards (one per fit) and the comparison: four "Charts" tabs
    assert_charts_drawn(v, min_panes=4)
    runs = [
        r for r in open_store(made.store, create=False).list_runs(COMPARE_PROJECT) if r.id != made.evil_id
    ]
    assert len(runs) == 3
    assert all(r.name in v.text for r in runs), f"screenshot {v.shot}"
    assert "evil-name" not in v.text  # the notebook's comparison is of its own three runs


def test_comparison_report_with_a_hostile_run_in_a_browser(made, tmp_path):
    path = made.reports["comparison"]
    v = visit(path, tmp_path / "comparison-report.png")
    assert_offline_and_clean(v, path.as_uri())
    assert_charts_drawn(v, min_panes=1)
    runs = open_store(made.store, create=False).list_runs(COMPARE_PROJECT)
    assert len(runs) == 4 and all(r.name in v.text for r in runs), f"screenshot {v.shot}"
    # the payloads are there, as text
    # (the config diff shows string values as their repr, so the value is checked up to its quote)
    for payload in (EVIL_NAME, EVIL_KEY, f"evil-value{IMG}"):
        assert payload in v.text, f"{payload!r} is not shown as text; screenshot {v.shot}"


def test_hostile_run_report_in_a_browser(made, tmp_path):
    path = made.reports["hostile-run"]
    v = visit(path, tmp_path / "hostile-run-report.png")
    assert_offline_and_clean(v, path.as_uri())
    assert_charts_drawn(v, min_panes=1)
    for payload in (EVIL_NAME, EVIL_TAG, EVIL_KEY, EVIL_VALUE, EVIL_METRIC, EVIL_LOG):
        assert payload in v.text, f"{payload!r} is not shown as text; screenshot {v.shot}"


def test_the_probe_sees_requests_errors_and_payloads(tmp_path):
    """The harness itself: a page that leaks, errs and runs a payload is caught on every count."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        "<!DOCTYPE html><html><body><img src='https://example.invalid/a.png'>"
        f"{IMG}<script>undefinedFunction()</script></body></html>"
    )
    v = visit(leaky, tmp_path / "leaky.png")
    assert "https://example.invalid/a.png" in v.blocked and any(u.endswith("/x") for u in v.blocked)
    assert v.pwned == "number"
    assert any("undefinedFunction" in e for e in v.errors), v.errors
    with pytest.raises(AssertionError):
        assert_offline_and_clean(v, leaky.as_uri())


# -- GitHub/nbviewer: nbconvert of a notebook saved without widget state -------------------------------------
def test_nbconvert_without_widget_state_shows_the_final_snapshot(made, tmp_path):
    notebook = nbformat.read(made.quickstart, as_version=4)
    assert WIDGET_STATE in notebook.metadata["widgets"]  # nbclient saved it; JupyterLab would not
    notebook.metadata.pop("widgets")
    saved = tmp_path / "quickstart-no-widget-state.ipynb"
    nbformat.write(notebook, saved)
    done = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(saved)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    html_path = saved.with_suffix(".html")
    html = html_path.read_text(encoding="utf-8")
    assert WIDGET_STATE not in html  # no widget state: nbconvert falls back to the static mime types

    # The fit cell's output, as nbconvert wrote it: the dashboard's static snapshot (text/html with inline SVG).
    fit = next(c for c in notebook.cells if c.cell_type == "code" and "model.fit(" in c.source)
    (bundle,) = [o["data"] for o in fit.outputs if "nbtrack" in (o.get("metadata") or {})]
    assert "finished" in bundle["text/plain"], bundle["text/plain"]  # updated at the end: the final state
    run = open_store(made.store, create=False).list_runs("test_project")[0]
    assert html.count(run.name) >= 2  # the snapshot at init and at fit (one display, updated)
    assert re.search(r">finished</span> · 1/1 epochs", html), "the snapshot is not the final one"
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    charts = [s for s in svgs if ">loss<" in s and ">val_loss<" in s]
    assert charts, "no chart SVG with loss and val_loss in the nbconvert HTML"
    ds = [d for s in charts for d in re.findall(r'<path\b[^>]*\sd="([^"]*)"', s)]
    assert ds and all(d.startswith("M") for d in ds), ds[:5]
    assert max(point_count(d) for d in ds) >= 20  # batch/loss over the epoch

    # In a browser, offline (nbconvert's own CDN scripts are aborted), the snapshot's chart is drawn.
    v = visit(html_path, tmp_path / "nbconvert-no-widget-state.png")
    assert v.pwned == "undefined"
    drawn = [p for p in v.paths if p["drawn"] and point_count(p["d"]) >= 20]
    assert drawn, f"no chart line drawn in the nbconvert HTML; screenshot {v.shot}"
    assert all(not u.startswith("file:") or u == html_path.as_uri() for u in v.requests), v.requests
    print(json.dumps({"nbconvert_html_bytes": len(html), "blocked": v.blocked}))


# -- #14 item 8: a notebook's HTML cannot navigate the opened report ------------------------------------------
REFRESH = "<meta http-equiv='refresh' content='0;url=https://evil.example/refresh-{where}'>"


def _navigations(path: Path) -> tuple[list[str], str]:
    """Open `path` from its file, every other request aborted; the requests it tried and the URL it ends on."""
    url = path.resolve().as_uri()
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()

            def route(r):  # type: ignore[no-untyped-def]
                if r.request.url == url:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load")
            page.wait_for_timeout(
                1500
            )  # a 0 s refresh fires right after load: room for it, not a measurement
            return blocked, page.url
        finally:
            browser.close()


def test_a_meta_refresh_in_a_notebook_does_not_navigate_the_report(tmp_path, monkeypatch):
    import nbtrack.render.sanitize

    nbtrack.init(project="local").finish()
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"markdown-cell {REFRESH.format(where='markdown')}"),
            nbformat.v4.new_code_cell(
                "display(HTML(...))",
                execution_count=1,
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            "text/html": f"html-output {REFRESH.format(where='output')}",
                            "text/plain": "x",
                        },
                    )
                ],
            ),
        ]
    )
    source = tmp_path / "refresh.ipynb"
    nbformat.write(notebook, source)
    report = nbtrack.report(source, output=tmp_path / "refresh.html")
    with monkeypatch.context() as unsanitised:  # the probe: without the sanitiser, the page does navigate
        unsanitised.setattr(nbtrack.render.sanitize, "sanitize_html", lambda markup: markup)
        control = nbtrack.report(source, output=tmp_path / "control.html")
    blocked, _ = _navigations(control)
    assert any(u.startswith("https://evil.example/refresh-") for u in blocked), blocked
    blocked, ended = _navigations(report)
    assert blocked == [] and ended == report.as_uri(), (blocked, ended)
    text = report.read_text(encoding="utf-8")
    assert "markdown-cell" in text and "html-output" in text and "evil.example" not in text
