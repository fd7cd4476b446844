"""The live dashboard and the compare widget in a real JupyterLab, driven by Playwright in headless Chromium.

Asserts the chart gains points while the `fit` cell is still running, and that the Stop button ends training
early with the run marked interrupted (screenshots in test-artifacts/); and that notebooks/compare.ipynb, run
in Lab, shows its runs in the table, sorts them on a header click and draws one parallel-coordinates line per run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrack.store import open_store

from .conftest import ROOT

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"

SETUP = """%load_ext nbtrack
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import keras
rng = np.random.default_rng(0)
x = rng.random((24000, 8), dtype=np.float32)
y = (x.sum(axis=1) > 4).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
pace = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.004))
print("ready")"""
FIT = "history = model.fit(x, y, batch_size=8, epochs=2, callbacks=[pace], verbose=0)\nprint('epochs run:', len(history.history['loss']))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, app: str = "jupyterlab") -> Iterator[str]:
    """A JupyterLab (or, with app="notebook", a Notebook 7) serving `root`, its kernels writing to the store
    root/store; yields its URL."""
    if not Path(CHROMIUM).exists():
        pytest.fail("These tests need Chromium: `apt-get install chromium` (make test installs it).")
    # No "get notified about Jupyter news?" toast over the screenshots.
    labconfig = root / "cfg" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    port = free_port()
    env = {
        **os.environ,
        "NBTRACK_STORE": str(root / "store"),
        "JUPYTER_CONFIG_DIR": str(root / "cfg"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    env.pop("NBTRACK_SILENT", None)
    env.pop("NBTRACK_PROJECT", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            app,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
            *(
                ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
                if app == "jupyterlab"
                else []
            ),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"{app} did not start:\n{server.stdout.read()[-3000:]}")
            time.sleep(0.5)
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def jupyterlab(tmp_path):
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
    with lab_server(tmp_path) as url:
        yield url, tmp_path


def launch_chromium(playwright):  # type: ignore[no-untyped-def]
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def sync_playwright():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("This test needs Playwright: pip install -e '.[dev]' (make test installs it).")
    return sync_playwright()


def open_notebook(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Open `name` in JupyterLab, accept the kernel dialog if one comes, and wait for an idle kernel."""
    page.goto(f"{url}/lab/tree/{name}", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    try:
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)  # "Select Kernel", if asked
    except Exception:
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def point_count(d: str | None) -> int:
    return len(re.findall(r"[ML]", d or ""))


def test_live_chart_grows_while_fit_runs_and_stop_ends_it(jupyterlab):
    url, root = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, url, "live.ipynb")

            cells = page.locator(".jp-Notebook .jp-CodeCell")
            cells.nth(0).locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_selector("text=ready", timeout=180_000)

            cells.nth(1).locator(".cm-content").click()
            started = time.monotonic()
            page.keyboard.press("Shift+Enter")
            fit_cell = cells.nth(1)
            page.wait_for_selector(".bqplot path.line", timeout=120_000)

            samples = []
            for _ in range(4):
                counts = [
                    point_count(d)
                    for d in fit_cell.locator(".bqplot path.line").evaluate_all(
                        "els => els.map(e => e.getAttribute('d'))"
                    )
                ]
                running = "*" in (fit_cell.locator(".jp-InputPrompt").inner_text() or "")
                samples.append((max(counts or [0]), running))
                time.sleep(1.0)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-live.png"))
            assert all(running for _, running in samples), f"the cell finished too early: {samples}"
            sizes = [n for n, _ in samples]
            assert sizes == sorted(sizes) and sizes[-1] > sizes[0], (
                f"the chart did not grow while fit ran: {sizes}"
            )

            fit_cell.locator("button:has-text('Stop')").click()
            page.wait_for_function(
                "cell => !cell.querySelector('.jp-InputPrompt').innerText.includes('*')",
                arg=fit_cell.element_handle(),
                timeout=120_000,
            )
            print(
                f"Stop ended fit {time.monotonic() - started:.1f} s after start"
            )  # a measurement, not asserted
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-stopped.png"))
            assert "epochs run: 1" in fit_cell.inner_text()
            fit_cell.locator(".lm-TabBar-tab:has-text('System')").click()
            page.wait_for_selector(".jp-Notebook .jp-CodeCell >> nth=1 >> text=CPU %", timeout=30_000)
            system_lines = fit_cell.locator(".bqplot path.line").evaluate_all(
                "els => els.filter(e => e.getBoundingClientRect().width > 0).map(e => e.getAttribute('d'))"
            )
            assert max(point_count(d) for d in system_lines) >= 3, "the System tab shows no samples"
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-system.png"))
            fit_cell.locator(".lm-TabBar-tab:has-text('Logs')").click()
            fit_cell.locator("text=lines printed").wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-logs.png"))
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
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-files.png"))
            fit_cell.locator(".lm-TabBar-tab:has-text('Model')").click()
            fit_cell.locator(".nbtrack-graph .nbtrack-node").first.wait_for(
                timeout=30_000
            )  # the anywidget graph
            assert fit_cell.locator(".nbtrack-graph .nbtrack-node").count() == 3  # input, Dense, Dense
            assert "Output shape" in fit_cell.locator(".nbtrack-model table").inner_text()
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-model.png"))
        finally:
            browser.close()

    store = open_store(root / "store", create=False)
    run = store.get_run("latest")
    assert run.state == "interrupted"
    assert [e.kind for e in store.events(run.id)] == ["fit", "stopped"]
    assert store.metric_stats(run.id)["batch/loss"].count < 6000  # 2 epochs would be 6,000 steps


TABLE_JS = """el => {
    const heads = [...el.querySelectorAll("thead th")].map((th) => th.title);
    const at = heads.indexOf("name");
    return {
        names: [...el.querySelectorAll("tbody tr")].map((tr) => tr.children[at].textContent),
        headers: [...el.querySelectorAll("thead th")].map((th) => th.textContent),
    };
}"""


def test_compare_notebook_table_sorts_and_parallel_coordinates_draw_every_run(tmp_path):
    shutil.copy(ROOT / "notebooks" / "compare.ipynb", tmp_path / "compare.ipynb")
    shot = tmp_path / "jupyterlab-compare.png"
    errors: list[str] = []
    with lab_server(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        try:
            open_notebook(page, url, "compare.ipynb")
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()

            table = page.locator(".nbtrack-runs-table")
            table.wait_for(timeout=240_000)
            page.wait_for_function(
                "el => el.querySelectorAll('tbody tr').length === 3",
                arg=table.element_handle(),
                timeout=60_000,
            )
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            cell = page.locator(".jp-Notebook .jp-CodeCell", has=table)
            names = table.evaluate(TABLE_JS)["names"]
            runs = open_store(tmp_path / "store", create=False).list_runs("compare-demo")
            lr = {r.name: r.config["lr"] for r in runs}
            assert sorted(names) == sorted(lr), f"table {names} vs store {sorted(lr)}; screenshot {shot}"

            def sort_by_lr(arrow: str, descending: bool) -> list[str]:
                table.locator("th[title='config.lr']").click()
                expected = sorted(lr, key=lr.get, reverse=descending)
                page.wait_for_function(
                    f"""([el, expected]) => {{
                        const shown = ({TABLE_JS})(el);
                        return JSON.stringify(shown.names) === JSON.stringify(expected)
                            && shown.headers.some((h) => h.startsWith("config.lr") && h.endsWith("{arrow}"));
                    }}""",
                    arg=[table.element_handle(), expected],
                    timeout=30_000,
                )
                return table.evaluate(TABLE_JS)["names"]

            first = sort_by_lr("▼", descending=True)  # a number column sorts descending first
            second = sort_by_lr("▲", descending=False)
            assert first != second and first == second[::-1]

            cell.locator(".lm-TabBar-tab", has_text="Parallel coordinates").click()
            svg = cell.locator(".nbtrack-parallel svg")
            svg.wait_for(state="visible", timeout=30_000)
            paths = svg.locator("path").evaluate_all(
                "els => els.map(e => ({d: e.getAttribute('d') || '', title: e.textContent,"
                " width: e.getBoundingClientRect().width}))"
            )
            cell.screenshot(path=str(shot))
            print(f"compare screenshot: {shot}")
            assert len(paths) == 3, f"{len(paths)} line paths, not 3; screenshot {shot}"
            assert sorted(path["title"] for path in paths) == sorted(lr), f"screenshot {shot}"
            assert all(path["d"].startswith("M") and path["width"] > 0 for path in paths), paths
        finally:
            browser.close()
    # bqplot logs negative <rect> sizes for figures laid out in hidden tabs (width 0 minus the margins).
    unexpected = [e for e in errors if not re.search(r"<rect> attribute \w+: A negative value|net::ERR_", e)]
    assert not unexpected, f"browser console errors: {unexpected}; screenshot {shot}"
