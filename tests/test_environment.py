"""What a run records about where it ran, captured off the training thread."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

import nbtrack
from nbtrack.capture.environment import capture, git_state, is_secret_name, safe_environment_variables
from nbtrack.store import open_store


@pytest.mark.parametrize(
    "name",
    [
        "AWS_SECRET_ACCESS_KEY",
        "WANDB_API_KEY",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "MY_PASSWD",
        "HF_TOKEN",
        "OPENAI_API_KEY",
        "PGPASSFILE_X_PRIVATE",
        "Auth_Header",
        "SENTRY_DSN",
        "DATABASE_CREDENTIALS",
    ],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["PATH", "HOME", "PWD", "LANG", "CUDA_VISIBLE_DEVICES", "PYTHONPATH", "SHELL"]
)
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_safe_environment_keeps_only_result_settings_and_masks_url_passwords():
    env = safe_environment_variables(
        {
            "PATH": "/usr/bin",
            "API_KEY": "sk-123",
            "DATABASE_URL": "postgresql://bob:hunter2@db:5432/runs",  # not on the allow-list
            "NBTRACK_STORE": "postgresql://bob:hunter2@db:5432/runs",
            "MY_TOKEN": "t",
        }
    )
    assert env == {"NBTRACK_STORE": "postgresql://bob:***@db:5432/runs", "PATH": "/usr/bin"}


def test_capture_has_the_overview_fields():
    env = capture()
    assert env["python"]["version"] == platform.python_version()
    assert env["os"]["system"] == platform.system()
    assert env["host"]["hostname"]
    assert env["hardware"]["cpu_count"] == os.cpu_count()
    assert env["hardware"]["memory_total"] > 2**28
    assert isinstance(env["hardware"]["gpus"], list)
    assert env["packages"]["numpy"] == __import__("numpy").__version__
    assert "pytest" in env["packages"]
    assert env["program"]["cwd"] == os.getcwd()
    assert env["started"] > 0


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repo(path, branch: str, name: str, text: str) -> None:
    """A git repository at `path` on `branch` with one committed file."""
    _git("init", "-q", "-b", branch, cwd=path)
    _git("config", "user.email", "t@example.com", cwd=path)
    _git("config", "user.name", "t", cwd=path)
    (path / name).write_text(text)
    _git("add", ".", cwd=path)
    _git("commit", "-q", "-m", "init", cwd=path)


def test_git_state_with_dirty_diff(tmp_path):
    assert git_state(str(tmp_path)) is None
    _repo(tmp_path, "main", "train.py", "lr = 0.1\n")
    clean = git_state(str(tmp_path))
    assert clean["branch"] == "main" and len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "train.py").write_text("lr = 0.2\n")
    dirty = git_state(str(tmp_path))
    assert dirty["dirty"] is True and "+lr = 0.2" in dirty["diff"]


def test_run_records_environment_files_and_no_secrets(tmp_path, monkeypatch):
    _repo(tmp_path, "exp", "a.txt", "one\n")
    (tmp_path / "a.txt").write_text("two\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBTRACK_TEST_SECRET_TOKEN", "do-not-store-me")
    monkeypatch.setenv("NBTRACK_TEST_VISIBLE", "fine")
    run = nbtrack.init(project="env")
    run.finish()
    record = open_store(run.store.location).get_run(run.id)
    env = record.environment
    assert env["git"]["branch"] == "exp" and env["git"]["dirty"] is True and "diff" not in env["git"]
    assert env["program"]["cwd"] == str(tmp_path)
    assert env["environment_variables"]["NBTRACK_TEST_VISIBLE"] == "fine"
    assert "NBTRACK_TEST_SECRET_TOKEN" not in env["environment_variables"]
    db = (open_store(run.store.location).directory / "nbtrack.db").read_bytes()
    assert b"do-not-store-me" not in db
    files = {f.name for f in run.store.list_files(run.id)}
    assert {"requirements.txt", "git.diff"} <= files
    assert "+two" in (run.dir / "git.diff").read_text()
    assert "numpy==" in (run.dir / "requirements.txt").read_text()


def test_session_code_is_a_valid_notebook_written_without_nbformat(python, python_env):
    """code.ipynb is plain nbformat 4.5 JSON: importing nbformat (~1.3 s) at the end of every fit is avoided."""
    script = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_cell(\"x = 1\\nprint('é')\", store_history=True)\n"
        "shell.run_cell('def f():\\n    return 2', store_history=True)\n"
        "from nbtrack.capture.environment import session_code\n"
        "code = session_code()\n"
        "assert 'nbformat' not in sys.modules\n"
        "sys.stdout.write(code['ipynb'])\n"
    )
    done = subprocess.run([python, "-c", script], env=python_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import nbformat

    notebook = nbformat.reads(done.stdout[done.stdout.index("{") :], as_version=4)
    nbformat.validate(notebook)
    assert [cell.source for cell in notebook.cells] == ["x = 1\nprint('é')", "def f():\n    return 2"]


def test_store_passwords_typed_into_code_or_a_diff_are_masked_and_the_code_kept(python, python_env, tmp_path):
    """A store URL typed into a cell (or committed to a working tree) must not carry its password into
    code.py, code.ipynb or git.diff; the rest of the code stays as typed (``key = "loss"`` is code, not a secret)."""
    _repo(tmp_path, "main", "train.py", "lr = 0.1\n")
    (tmp_path / "train.py").write_text('STORE = "postgresql://me:diff-s3cret@db/x"\n')
    script = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        'shell.run_cell(\'url = "postgresql://me:cell-p@ss@db/x?sslpassword=cell-k3y"\\nkey = "loss"\','
        " store_history=True)\n"
        "shell.run_cell('import nbtrack\\nrun = nbtrack.init(project=\"code\")\\nrun.finish()', store_history=True)\n"
        "print(shell.user_ns['run'].dir)\n"
    )
    done = subprocess.run(
        [python, "-c", script], env=python_env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    code = (run_dir / "code.py").read_text()
    assert 'url = "postgresql://me:***@db/x?sslpassword=***"' in code and 'key = "loss"' in code
    diff = (run_dir / "git.diff").read_text()
    assert '+STORE = "postgresql://me:***@db/x"' in diff
    for path in [*Path(os.environ["NBTRACK_STORE"]).rglob("*"), *run_dir.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            for secret in (b"cell-p@ss", b"ss@db", b"cell-k3y", b"diff-s3cret"):
                assert secret not in data, (path, secret)
