"""The `nbtrack` command, run as a real subprocess against a real store."""

from __future__ import annotations

import subprocess

import pytest

import nbtrack
from nbtrack.store import open_store


def cli(python, python_env, *args, store=None):
    command = [python, "-m", "nbtrack"]
    if store is not None:
        command += ["--store", str(store)]
    return subprocess.run([*command, *args], env=python_env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def two_runs(store_dir):
    first = nbtrack.init(project="mnist", config={"lr": 0.001, "batch_size": 16}, tags=["baseline"])
    for i in range(5):
        first.log({"loss": 1.0 / (i + 1), "val_loss": 2.0 / (i + 1), "val_accuracy": i / 5})
    first.finish()
    second = nbtrack.init(project="other")
    second.log({"accuracy": 0.5})
    second.finish(exit_code=1)
    return first, second


def test_ls_lists_runs_newest_first(python, python_env, store_dir, two_runs):
    first, second = two_runs
    done = cli(python, python_env, "ls", store=store_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "PROJECT", "STATE", "STARTED", "DURATION", "METRICS"]
    assert second.id in lines[2] and "failed" in lines[2]
    assert first.id in lines[3] and "finished" in lines[3] and "val_loss=0.4" in lines[3]
    assert "val_accuracy=0.8" in lines[3]


def test_ls_filters_by_project_and_reads_store_from_env(python, python_env, store_dir, two_runs):
    first, second = two_runs
    python_env["NBTRACK_STORE"] = str(store_dir)
    done = cli(python, python_env, "ls", "--project", "mnist")
    assert done.returncode == 0 and first.id in done.stdout and second.id not in done.stdout
    done = cli(python, python_env, "ls", "--project", "nothing")
    assert done.returncode == 0 and "No runs in project 'nothing'" in done.stdout


def test_show_by_id_name_and_latest(python, python_env, store_dir, two_runs):
    first, second = two_runs
    for ref in (first.id, first.name):
        done = cli(python, python_env, "show", ref, store=store_dir)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert f"Run {first.name} ({first.id})" in out
        assert "state     finished" in out and "tags      baseline" in out
        assert "lr          0.001" in out and "batch_size  16" in out
        assert "val_loss" in out and "0.4" in out
        assert "Metrics" in out and "loss" in out
        assert "Environment" in out and "python" in out
        assert "requirements.txt" in out
    latest = cli(python, python_env, "show", "latest", store=store_dir)
    assert f"Run {second.name} ({second.id})" in latest.stdout and "state     failed" in latest.stdout


def test_rm_deletes_run_and_files(python, python_env, store_dir, two_runs):
    first, second = two_runs
    assert first.dir.exists()
    done = cli(python, python_env, "rm", first.name, store=store_dir)
    assert done.returncode == 0 and f"Deleted {first.name} ({first.id})" in done.stdout
    assert not first.dir.exists()
    assert [r.id for r in open_store(store_dir).list_runs()] == [second.id]


def test_rm_refuses_a_running_run_without_force(python, python_env, store_dir):
    run = nbtrack.init(project="p")
    run.flush()
    done = cli(python, python_env, "rm", run.id, store=store_dir)
    assert done.returncode == 1 and "still running" in done.stderr and "--force" in done.stderr
    assert open_store(store_dir).get_run(run.id)
    run.finish()
    done = cli(python, python_env, "rm", run.id, store=store_dir)
    assert done.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "No run with id or name 'nope'"),
        (("rm", "nope"), "No run with id or name 'nope'"),
    ],
)
def test_unknown_run_is_a_clear_error(python, python_env, store_dir, two_runs, args, message):
    done = cli(python, python_env, *args, store=store_dir)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_missing_store_is_a_clear_error_and_is_not_created(python, python_env, tmp_path):
    missing = tmp_path / "nowhere"
    done = cli(python, python_env, "ls", store=missing)
    assert done.returncode == 1 and "There is no nbtrack run store at" in done.stderr
    assert not missing.exists()


def test_help_and_usage(python, python_env):
    done = cli(python, python_env, "--help")
    assert done.returncode == 0 and all(c in done.stdout for c in ("ls", "show", "rm", "--store"))
    done = cli(python, python_env)
    assert done.returncode == 2
    done = cli(python, python_env, "frobnicate")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_console_script_is_installed(python_env):
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "nbtrack"
    assert script.exists() or shutil.which("nbtrack"), (
        "the `nbtrack` console script is missing: pip install -e ."
    )
    done = subprocess.run(
        [str(script) if script.exists() else "nbtrack", "--version"],
        capture_output=True,
        text=True,
        env=python_env,
        timeout=60,
    )
    assert done.stdout.strip() == f"nbtrack {nbtrack.__version__}"
