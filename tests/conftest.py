"""Shared fixtures: every test gets its own real store directory, and fails if it leaks runs or threads."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

import nbtrack.run as run_module
from tests.pg_server import pg_server  # noqa: F401  (fixture: a real throwaway PostgreSQL cluster)
from tests.widget_helpers import notebook  # noqa: F401  (fixture: a pretend kernel for widget tests)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "nbtrack-runs"
    monkeypatch.setenv("NBTRACK_STORE", str(store))
    monkeypatch.setenv("NBTRACK_SILENT", "1")
    monkeypatch.delenv("NBTRACK_PROJECT", raising=False)
    return store


@pytest.fixture
def store_dir(_isolated_store: Path) -> Path:
    return _isolated_store


def _nbtrack_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nbtrack-") and t.is_alive()]


@pytest.fixture(autouse=True)
def _no_leaks():
    """Fail any test that leaves a run unfinished or an nbtrack thread running."""
    yield
    leaked_runs = run_module.active_runs()
    for run in leaked_runs:
        run.finish()
    deadline = time.monotonic() + 5
    while _nbtrack_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    leaked_threads = _nbtrack_threads()
    assert not leaked_runs, f"test left runs unfinished: {leaked_runs}"
    assert not leaked_threads, f"test left nbtrack threads running: {[t.name for t in leaked_threads]}"


@pytest.fixture
def python_env() -> dict[str, str]:
    """Environment for child Python processes that import this checkout's nbtrack."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NBTRACK_SILENT"] = "1"
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
