"""`make demo` itself: the commands of the Makefile's demo recipe, run as written on a fresh store.

The recipe is read from the Makefile (so this test follows it when it changes) and run with this environment's
python and `nbtrack` script instead of `.venv`'s, which `make` would first create and install into.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nbtrack.store import open_store

from .conftest import ROOT

pytestmark = pytest.mark.slow


def demo_recipe() -> list[str]:
    """The demo target's commands, backslash continuations joined."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("demo:"))
    commands: list[str] = []
    joined = ""
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        joined += line.strip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
        else:
            commands.append(joined)
            joined = ""
    return commands


def as_run_here(command: str, build: Path, store: Path) -> str:
    """`command` with the Makefile's variables filled in for this environment and a temporary build folder."""
    bin_dir = Path(sys.executable).parent
    filled = (
        command.replace("$(PY)", shlex.quote(sys.executable))
        .replace("$(VENV)/bin/", shlex.quote(str(bin_dir)) + "/")
        .replace("$(STORE)", shlex.quote(str(store)))
        .replace("$(DEMO_EPOCHS)", "1")
    )
    filled = re.sub(r"(?<![\w/])build/", shlex.quote(str(build)) + "/", filled)
    filled = re.sub(r"(?<![\w/])notebooks/", shlex.quote(str(ROOT / "notebooks")) + "/", filled)
    assert "$(" not in filled, f"a Makefile variable this test does not know: {filled}"
    return filled


def test_make_demo_records_a_run_shows_it_and_reports_it(tmp_path):
    commands = demo_recipe()
    assert len(commands) == 3, commands  # execute the notebook, show latest, write the report
    build, store = tmp_path / "build", tmp_path / "demo-store"
    env = dict(os.environ)
    env.pop("NBTRACK_STORE", None)  # only what the recipe itself sets: as a user's shell would run it
    env.pop("NBTRACK_SILENT", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    outputs = []
    for command in commands:
        done = subprocess.run(
            as_run_here(command, build, store),
            shell=True,
            cwd=tmp_path,  # not the checkout: nothing may depend on ./nbtrack-runs being the store
            env=env,
            capture_output=True,
            text=True,
            timeout=900,  # a guard against a hang, not a measurement
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)

    (run,) = open_store(store, create=False).list_runs()
    assert run.project == "test_project" and run.state == "finished" and run.config["epochs"] == 1
    assert (build / "01_quickstart.ipynb").exists()
    assert (
        outputs[0].strip() == f"Executed {ROOT}/notebooks/01_quickstart.ipynb -> {build}/01_quickstart.ipynb"
    )
    assert f"Run {run.name} ({run.id})" in outputs[1] and "state     finished" in outputs[1]
    report = build / "01_quickstart.report.html"
    assert outputs[2].startswith(f"Wrote {report} (")
    page = report.read_text(encoding="utf-8")
    assert run.name in page and run.id in page
    assert "is not in the store" not in page  # rendered from the store, not from the saved snapshot
    assert not (tmp_path / "nbtrack-runs").exists()
