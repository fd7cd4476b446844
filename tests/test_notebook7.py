"""The live dashboard and the compare widget in a real Notebook 7, driven by Playwright in headless Chromium.

The same recipe and checks as tests/test_browser.py (JupyterLab), served by `jupyter notebook` instead: the
chart gains points while the `fit` cell is still running, every tab (Charts, System, Model, Logs, Files) shows
its content, the Stop button ends training early with the run marked interrupted; notebooks/compare.ipynb
shows its three runs in the table. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrack.store import open_store

from .conftest import ROOT
from .test_browser import (
    FIT,
    SETUP,
    TABLE_JS,
    lab_server,
    launch_chromium,
    point_count,
    sync_playwright,
)

pytestmark = pytest.mark.slow

# Notebook 7's own shortcuts plugin throws this while it loads settings, on any notebook (even `print(1)`, no
# nbtrack, no widgets): seen with notebook 7.6.5. Only ignored when the stack lies wholly in Notebook 7's core bundle.
NOTEBOOK7_OWN_ERROR = re.compile(r"reading 'schema'")
# bqplot logs negative <rect> sizes for figures laid out in hidden tabs (width 0 minus the margins).
HARMLESS_CONSOLE = re.compile(r"<rect> attribute \w+: A negative value|net::ERR_")


def watch_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Collect uncaught page errors and console errors, leaving out the known harmless ones above."""
    errors: list[str] = []

    def page_error(exc) -> None:  # type: ignore[no-untyped-def]
        stack = [line for line in (exc.stack or "").splitlines()[1:] if "http" in line]
        if NOTEBOOK7_OWN_ERROR.search(exc.message) and stack and all("/static/notebook/" in s for s in stack):
            return
        errors.append(exc.stack or exc.message)

    def console(msg) -> None:  # type: ignore[no-untyped-def]
        if msg.type == "error" and not HARMLESS_CONSOLE.search(msg.text):
            errors.append(msg.text)

    page.on("pageerror", page_error)
    page.on("console", console)
    return errors


@contextlib.contextmanager
def notebook7_server(root: Path) -> Iterator[str]:
    """A Notebook 7 (`jupyter notebook`) serving `root`, its kernels writing to the store root/store; yields its URL."""
    try:
        import notebook  # noqa: F401
    except ImportError:
        pytest.fail("This test needs Notebook 7: pip install -e '.[dev]' (make test installs it).")
    with lab_server(root, app="notebook") as url:
        yield url


def open_notebook7(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Open `name` in Notebook 7 (/notebooks/NAME), accept a kernel dialog if one comes, wait for an idle kernel."""
    page.goto(f"{url}/notebooks/{name}", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    try:
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)  # "Select Kernel", if asked
    except Exception:
        pass
    # Notebook 7 has no status bar on screen, but the toolbar keeps JupyterLab's execution indicator.
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=120_000
    )


def running(cell) -> bool:  # type: ignore[no-untyped-def]
    return "*" in (cell.locator(".jp-InputPrompt").inner_text() or "")


@pytest.fixture
def notebook7(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": SETUP, "outputs": [], "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": FIT, "outputs": [], "execution_count": None},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "live.ipynb").write_text(json.dumps(notebook))
    with notebook7_server(tmp_path) as url:
        yield url, tmp_path


def test_notebook7_live_chart_grows_while_fit_runs_every_tab_renders_and_stop_ends_it(notebook7):
    url, root = notebook7
    shots = root / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = watch_errors(page)
        try:
            open_notebook7(page, url, "live.ipynb")

            cells = page.locator(".jp-Notebook .jp-CodeCell")
            cells.nth(0).locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_selector("text=ready", timeout=180_000)

            fit_cell = cells.nth(1)
            fit_cell.locator(".cm-content").click()
            started = time.monotonic()
            page.keyboard.press("Shift+Enter")
            fit_cell.locator(".bqplot path.line").first.wait_for(state="attached", timeout=120_000)

            samples = []
            for _ in range(4):
                counts = [
                    point_count(d)
                    for d in fit_cell.locator(".bqplot path.line").evaluate_all(
                        "els => els.map(e => e.getAttribute('d'))"
                    )
                ]
                samples.append((max(counts or [0]), running(fit_cell)))
                time.sleep(1.0)
            page.screenshot(path=str(shots / "notebook7-live.png"))
            assert all(is_running for _, is_running in samples), f"the cell finished too early: {samples}"
            sizes = [n for n, _ in samples]
            assert sizes == sorted(sizes) and sizes[-1] > sizes[0], (
                f"the chart did not grow while fit ran: {sizes}; screenshots in {shots}"
            )

            fit_cell.locator("button:has-text('Stop')").click()
            page.wait_for_function(
                "cell => !cell.querySelector('.jp-InputPrompt').innerText.includes('*')",
                arg=fit_cell.element_handle(),
                timeout=120_000,
            )
            elapsed = time.monotonic() - started
            page.screenshot(path=str(shots / "notebook7-stopped.png"))
            assert "epochs run: 1" in fit_cell.inner_text(), f"screenshots in {shots}"

            fit_cell.locator(".lm-TabBar-tab:has-text('System')").click()
            fit_cell.locator("text=CPU %").first.wait_for(timeout=30_000)
            system_lines = fit_cell.locator(".bqplot path.line").evaluate_all(
                "els => els.filter(e => e.getBoundingClientRect().width > 0).map(e => e.getAttribute('d'))"
            )
            assert max([point_count(d) for d in system_lines] or [0]) >= 3, "the System tab shows no samples"
            page.screenshot(path=str(shots / "notebook7-system.png"))

            fit_cell.locator(".lm-TabBar-tab:has-text('Logs')").click()
            fit_cell.locator("text=lines printed").wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "notebook7-logs.png"))

            fit_cell.locator(".lm-TabBar-tab:has-text('Files')").click()
            fit_cell.locator(".nbtrack-files >> text=config.json").wait_for(
                timeout=30_000
            )  # the anywidget view
            assert fit_cell.locator(".nbtrack-files button:has-text('Download')").count() >= 3
            row = fit_cell.locator(".nbtrack-files tr", has_text="config.json")
            with page.expect_download(timeout=30_000) as download_info:
                row.locator("button:has-text('Download')").click()
            download = download_info.value
            assert download.suggested_filename == "config.json"
            downloaded = json.loads(Path(download.path()).read_text())
            assert downloaded["epochs"] == 2 and downloaded["batch_size"] == 8
            page.screenshot(path=str(shots / "notebook7-files.png"))

            fit_cell.locator(".lm-TabBar-tab:has-text('Model')").click()
            fit_cell.locator(".nbtrack-graph .nbtrack-node").first.wait_for(
                timeout=30_000
            )  # the anywidget graph
            assert fit_cell.locator(".nbtrack-graph .nbtrack-node").count() == 3  # input, Dense, Dense
            assert "Output shape" in fit_cell.locator(".nbtrack-model table").inner_text()
            page.screenshot(path=str(shots / "notebook7-model.png"))

            fit_cell.locator(".lm-TabBar-tab:has-text('Charts')").click()
            page.wait_for_function(
                """cell => [...cell.querySelectorAll('.bqplot path.line')].some(
                    (e) => e.getBoundingClientRect().width > 0 && (e.getAttribute('d') || '').includes('L'))""",
                arg=fit_cell.element_handle(),
                timeout=30_000,
            )
            page.screenshot(path=str(shots / "notebook7-charts.png"))
        finally:
            browser.close()
    print(
        f"Notebook 7: chart points {sizes}, Stop ended fit {elapsed:.1f} s after start; screenshots {shots}"
    )

    store = open_store(root / "store", create=False)
    run = store.get_run("latest")
    assert run.state == "interrupted"
    assert [e.kind for e in store.events(run.id)] == ["fit", "stopped"]
    assert store.metric_stats(run.id)["batch/loss"].count < 6000  # 2 epochs would be 6,000 steps
    assert not errors, f"browser errors: {errors}; screenshots in {shots}"


def test_notebook7_compare_notebook_shows_its_three_runs(tmp_path):
    shutil.copy(ROOT / "notebooks" / "compare.ipynb", tmp_path / "compare.ipynb")
    shot = tmp_path / "notebook7-compare.png"
    with notebook7_server(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = watch_errors(page)
        try:
            open_notebook7(page, url, "compare.ipynb")
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()

            table = page.locator(".nbtrack-runs-table")
            table.wait_for(timeout=240_000)
            page.wait_for_function(
                "el => el.querySelectorAll('tbody tr').length === 3",
                arg=table.element_handle(),
                timeout=60_000,
            )
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=120_000
            )
            names = table.evaluate(TABLE_JS)["names"]
            table.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
            print(f"compare screenshot: {shot}")
        finally:
            browser.close()
    runs = open_store(tmp_path / "store", create=False).list_runs("compare-demo")
    assert sorted(names) == sorted(r.name for r in runs) and len(names) == 3, f"screenshot {shot}"
    assert not errors, f"browser errors: {errors}; screenshot {shot}"
