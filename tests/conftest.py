"""Shared fixtures: every test gets its own real store directory, and fails if it leaks runs or threads."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import home_guard

ROOT = Path(__file__).resolve().parent.parent

# Before anything else imports: the whole session (kernels, servers, browsers, child processes) gets its own HOME.
HOME = home_guard.isolate(ROOT)
atexit.register(home_guard.remove, HOME)  # registered first, so it runs last: after IPython saves its history
_OFFLINE = home_guard.go_offline()  # and no network: what is not on this machine is refused at once
_REAL_HOME_BEFORE = home_guard.snapshot(HOME)

import nbtrack.run as run_module  # noqa: E402
from tests.pg_server import pg_server  # noqa: E402, F401  (fixture: a real throwaway PostgreSQL cluster)
from tests.widget_helpers import notebook  # noqa: E402, F401  (fixture: a pretend kernel for widget tests)


@pytest.fixture(scope="session", autouse=True)
def _real_home_untouched():
    """Fail the session (an error at the last teardown) if anything it ran changed the real HOME."""
    yield HOME
    changed = home_guard.changes(_REAL_HOME_BEFORE, home_guard.snapshot(HOME))
    assert not changed, (
        f"the tests changed the real home {HOME.real} (they get {HOME.fake}); ignored: "
        f"{[str(p) for p in HOME.ignored]}. If the machine itself wrote there while the tests ran (not a test), "
        f"name those paths, relative to HOME, in {home_guard.IGNORE_VARIABLE}=path{os.pathsep}path.\n"
        + "\n".join(changed)
    )


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
