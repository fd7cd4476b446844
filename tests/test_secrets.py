"""Secrets never leave the machine (#14, item 2): one masking function (`nbtrack.common.redact`) for every location,
URL, command line and error message nbtrack records or shows; environment variables kept by an allow-list.

The headline test plants distinct random secrets in every place a user puts them (environment variables with
secret and ordinary names, a store URL's user part and query string, a git remote's token, a script's and an
agent's command line), runs real runs (child processes, SQLite and a real PostgreSQL), exports, reports and
bundles them, and then greps every byte the stores, the run files, the bundles and the reports hold."""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from nbtrack.errors import StoreError


def _secret(label: str) -> str:
    return f"{label}{secrets.token_hex(8)}"


# -- the masking function --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://me:hunter2@db:5432/x", "postgresql://me:***@db:5432/x"),
        ("postgresql://me:p@ss@w0rd@db/x", "postgresql://me:***@db/x"),  # a password holding '@'
        ("postgresql://me@db/x?password=hunter2", "postgresql://me@db/x?password=***"),
        (
            "postgresql://me@db/x?sslmode=require&sslpassword=k3y&application_name=a",
            "postgresql://me@db/x?sslmode=require&sslpassword=***&application_name=a",
        ),
        ("postgres://me:a%40b@db/x", "postgres://me:***@db/x"),
        ("redis://:pw12@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://ghp_abc123@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("https://x-access-token:ghs_1@github.com/o/r", "https://x-access-token:***@github.com/o/r"),
        ("git+https://tok@host/r", "git+https://***@host/r"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),  # a user name, no secret
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("postgresql://me@db/x", "postgresql://me@db/x"),
        ("host=db password='a b c' dbname=x", "host=db password=*** dbname=x"),
        ("API_KEY=sk-1 python train.py", "API_KEY=*** python train.py"),
        (
            'invalid URI: "postgresql://u:hunter2@[::1/db"',
            'invalid URI: "postgresql://u:***@[::1/db"',
        ),
        ("/home/me/nbtrack-runs", "/home/me/nbtrack-runs"),
        ("postgresql://me:***@db/x?password=***", "postgresql://me:***@db/x?password=***"),  # idempotent
    ],
)
def test_mask(text, masked):
    from nbtrack.common.redact import mask

    assert mask(text) == masked
    assert mask(masked) == masked


def test_mask_known_secrets_that_a_message_echoes_alone():
    from nbtrack.common.redact import mask, url_secrets

    url = "postgresql://u:hun%zzter2@db/x?password=other9&token=t0ken"
    assert url_secrets(url) == ["hun%zzter2", "other9", "t0ken"]
    assert url_secrets("postgresql://u:a%40b@h/d") in (["a%40b", "a@b"], ["a@b", "a%40b"])
    assert mask('invalid percent-encoded token: "hun%zzter2"', url_secrets(url)) == (
        'invalid percent-encoded token: "***"'
    )


def test_mask_argv():
    from nbtrack.common.redact import mask_argv

    argv = [
        *("nbtrack", "--store", "postgresql://u:PW1@h/d?sslpassword=PW2", "agent", "s1"),
        *("--api-key", "K1", "--password=K2", "--token", "K3", "--secret", "K4", "--client-secret=K5"),
        *("-p", "8080", "--lr", "0.1", "--epochs=3", "DB_PASSWORD=K6", "--keys-file", "keys.txt"),
    ]
    assert mask_argv(argv) == [
        *("nbtrack", "--store", "postgresql://u:***@h/d?sslpassword=***", "agent", "s1"),
        *("--api-key", "***", "--password=***", "--token", "***", "--secret", "***", "--client-secret=***"),
        *("-p", "8080", "--lr", "0.1", "--epochs=3", "DB_PASSWORD=***", "--keys-file", "keys.txt"),
    ]
    assert mask_argv(["train.py", "--token"]) == ["train.py", "--token"]  # nothing follows: nothing to hide


@pytest.mark.parametrize(
    "name",
    ["WANDB_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "sslpassword", "api-key", "SENTRY_DSN", "Auth_Header"],
)
def test_secret_names(name):
    from nbtrack.common.redact import is_secret_name

    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "PATH", "keys-file", "KEYRING_BACKEND", "AUTHOR", "lr"])
def test_ordinary_names(name):
    from nbtrack.common.redact import is_secret_name

    assert not is_secret_name(name)


# -- environment capture: an allow-list ------------------------------------------------------------------
def test_environment_is_captured_by_an_allow_list_with_values_masked():
    from nbtrack.capture.environment import safe_environment_variables

    env = safe_environment_variables(
        {
            "CUDA_VISIBLE_DEVICES": "0,1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "XLA_FLAGS": "--xla_gpu_deterministic_ops=true",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "4",
            "LC_ALL": "C.UTF-8",
            "NBTRACK_STORE": "postgresql://me:hunter2@db/runs?sslpassword=k",
            "NBTRACK_API_TOKEN": "tok",  # an allowed prefix, a credential's name: dropped
            "TORCH_HOME": "https://tok3@cache.example.org/t",
            "MYSERVICE_API_KEY": "sk-1",
            "DATABASE_URL": "postgresql://bob:hunter2@db/x",  # not a setting that changes results
            "ANTHROPIC_BASE": "whatever",
            "HOME": "/home/me",
        }
    )
    assert env == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "LC_ALL": "C.UTF-8",
        "NBTRACK_STORE": "postgresql://me:***@db/runs?sslpassword=***",
        "OMP_NUM_THREADS": "4",
        "PYTHONHASHSEED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TORCH_HOME": "https://***@cache.example.org/t",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops=true",
    }


# -- PostgreSQL error messages -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:{s}%zz@127.0.0.1/db",  # libpq: invalid percent-encoded token: "<the password>"
        "postgresql://u@127.0.0.1/db?password={s}%zz",
        "postgresql://u:{s}@[127.0.0.1/db",  # libpq echoes the whole URI
    ],
)
def test_a_malformed_store_url_does_not_echo_its_password(url, monkeypatch):
    secret = _secret("pg")
    with pytest.raises(StoreError) as error:
        from nbtrack.store import open_store

        open_store(url.format(s=secret), create=False)
    message = str(error.value)
    assert secret not in message, message
    assert message.startswith("Cannot connect to the run store postgresql://u")


# -- the headline: plant, run, export, report, bundle, grep ----------------------------------------------
TRAIN = """
import nbtrack
from nbtrack.run import current_run

def main(config):
    run = current_run()
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)})

if __name__ == "__main__":
    run = nbtrack.init(project="sec", config={"lr": 0.1})
    main({})
    run.finish()
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _decoded_data_links(text: str) -> bytes:
    """The payloads of a report's base64 data: links (output.log is attached as one)."""
    return b"".join(base64.b64decode(m) for m in re.findall(r"data:[^,'\"]*;base64,([A-Za-z0-9+/=]+)", text))


def _postgres_bytes(url: str) -> bytes:
    import psycopg

    from nbtrack.store.postgres import _unmask

    out = []
    with psycopg.connect(_unmask(url), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            out += [r[0] for r in conn.execute(f'SELECT t::text FROM "{table}" t')]
    assert "runs" in tables and any("argv" in row for row in out)  # the run and its environment are here
    return "\n".join(out).encode()


def _every_byte(paths: list[Path]) -> bytes:
    chunks = []
    for root in paths:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                chunks.append(data)
                if zipfile.is_zipfile(path):
                    with zipfile.ZipFile(path) as bundle:
                        chunks += [bundle.read(name) for name in bundle.namelist()]
                if path.suffix == ".html":
                    chunks.append(_decoded_data_links(data.decode("utf-8")))
    return b"\n".join(chunks)


def test_no_planted_secret_reaches_the_store_files_bundles_or_reports(
    tmp_path, store_dir, pg_server, python, python_env, capsys, monkeypatch
):
    from nbtrack.cli import main
    from nbtrack.store import open_store
    from nbtrack.store.base import RunQuery

    s = {k: _secret(k) for k in ("env1", "env2", "env3", "env4", "env5", "git", "arg1", "arg2", "arg3")}
    s.update({k: _secret(k) for k in ("arg4", "arg5", "pw1", "pw2", "pw3", "pw4", "envpw1", "envpw2")})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(textwrap.dedent(TRAIN))
    (repo / "sweep.json").write_text('{"method": "grid", "parameters": {"a": {"values": [1]}}}')
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".", cwd=repo)
    _git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "init", cwd=repo)
    _git("remote", "add", "origin", f"https://{s['git']}@github.com/org/repo.git", cwd=repo)

    database = pg_server.new_database()  # postgresql://postgres@/NAME?host=SOCKET; trust: passwords unchecked
    pg_url = database.replace("postgres@", f"postgres:{s['pw1']}%40{s['pw2']}@") + (
        f"&password={s['pw3']}&sslpassword={s['pw4']}"
    )
    env_url = database.replace("postgres@", f"postgres:{s['envpw1']}@") + f"&sslpassword={s['envpw2']}"
    files_root = tmp_path / "pg-files"
    monkeypatch.setenv("NBTRACK_FILES", str(files_root))  # the PostgreSQL runs' files, here and in children
    env = {
        **python_env,
        "HOME": str(tmp_path / "home"),
        "NBTRACK_STORE": str(store_dir),
        "NBTRACK_FILES": str(files_root),
        "MYSERVICE_API_KEY": s["env1"],  # a secret's name
        "ZZ_UNRELATED_SETTING": s["env2"],  # an ordinary name, not a setting that changes results
        "NBTRACK_NOTIFY_URL": f"https://{s['env3']}@hooks.example.com/x",  # an allowed name, a token in it
        "TF_SERVICE": f"redis://:{s['env4']}@cache:6379/0",
        "PGPASSWORD": s["env5"],
    }
    argv = [
        *("train.py", "--api-key", s["arg1"], f"--password={s['arg2']}", "--token", s["arg3"]),
        *("--db", f"postgresql://u:{s['arg4']}@h/db?password={s['arg5']}", "--lr", "0.1"),
    ]
    child = subprocess.run([python, *argv], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    agent_env = {**env, "NBTRACK_STORE": env_url}
    created = subprocess.run(
        [python, "-m", "nbtrack", "--store", pg_url, "sweep", "sweep.json", "--project", "sec"],
        cwd=repo,
        env=agent_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert created.returncode == 0, created.stderr
    sweep_id = re.search(r"\((\w+)\)", created.stdout)[1]
    agent = [python, "-m", "nbtrack", "--store", pg_url, "agent", sweep_id, "--function", "train.py:main"]
    agent_done = subprocess.run(agent, cwd=repo, env=agent_env, capture_output=True, text=True, timeout=300)
    assert agent_done.returncode == 0, agent_done.stderr

    # What was recorded is the masked form, exactly.
    with open_store(store_dir, create=False) as local:
        (found,) = local.search_runs(RunQuery())
        record = local.get_run(found.id)
    environment = record.environment
    assert environment["program"]["argv"] == [
        *("train.py", "--api-key", "***", "--password=***", "--token", "***"),
        *("--db", "postgresql://u:***@h/db?password=***", "--lr", "0.1"),
    ]
    assert environment["git"]["remote"] == "https://***@github.com/org/repo.git"
    variables = environment["environment_variables"]
    assert variables["NBTRACK_NOTIFY_URL"] == "https://***@hooks.example.com/x"
    assert variables["TF_SERVICE"] == "redis://:***@cache:6379/0"
    assert not {"MYSERVICE_API_KEY", "ZZ_UNRELATED_SETTING", "PGPASSWORD"} & set(variables)
    with open_store(pg_url, create=False) as shared:
        assert shared.location == database.replace("postgres@", "postgres:***@") + (
            "&password=***&sslpassword=***"
        )
        (found,) = shared.search_runs(RunQuery())
        trial_run = shared.get_run(found.id)
    trial_env = trial_run.environment
    assert trial_env["program"]["argv"][1:4] == ["--store", shared.location, "agent"]
    assert trial_env["environment_variables"]["NBTRACK_STORE"] == (
        database.replace("postgres@", "postgres:***@") + "&sslpassword=***"
    )

    # Export, report and bundle both stores with the CLI, then grep everything.
    out = tmp_path / "out"
    commands = [
        ["export", "latest", "-o", str(out / "local.nbtrack.zip")],
        ["report", "--run", "latest", "-o", str(out / "local.html")],
        ["show", "latest"],
        ["--store", pg_url, "export", "--project", "sec", "-o", str(out / "pg.nbtrack.zip")],
        ["--store", pg_url, "report", "--run", "latest", "-o", str(out / "pg.html")],
        ["--store", pg_url, "show", "latest"],
        ["--store", pg_url, "ls"],
    ]
    for command in commands:
        assert main(command) == 0, command
    printed = capsys.readouterr()
    haystack = b"\n".join(
        [
            _every_byte([store_dir, files_root, out, tmp_path / "home"]),
            _postgres_bytes(pg_url),
            (printed.out + printed.err + child.stdout + child.stderr).encode(),
            (created.stdout + created.stderr + agent_done.stdout + agent_done.stderr).encode(),
        ]
    )
    assert b"sweep:" in haystack and b"loss" in haystack and len(haystack) > 100_000  # it did hold the runs
    leaked = sorted(name for name, value in s.items() if value.encode() in haystack)
    assert leaked == [], f"secrets found: {leaked}"


def test_the_readme_lists_the_allow_list():
    from nbtrack.capture.environment import RESULT_NAMES, RESULT_PREFIXES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [f"{p}*" for p in RESULT_PREFIXES if f"`{p}*`" not in readme]
    missing += [n for n in sorted(RESULT_NAMES) if f"`{n}`" not in readme]
    assert missing == []


def test_show_and_reports_mask_a_command_line_recorded_unmasked(monkeypatch, capsys, tmp_path):
    """Runs recorded by older versions (or imported from someone's bundle) hold argv as it was: shown masked."""
    import nbtrack
    import nbtrack.capture.environment
    from nbtrack.cli import main
    from nbtrack.read.records import get_run
    from nbtrack.reports.sections import run_report

    secret = _secret("old")
    with monkeypatch.context() as older:
        older.setattr(sys, "argv", ["train.py", "--token", secret, "--lr", "0.1"])
        older.setattr(nbtrack.capture.environment, "mask_argv", list)  # what older versions recorded
        run = nbtrack.init(project="old", name="old-run")
        run.finish()
    assert get_run(run.id).environment["program"]["argv"][2] == secret  # stored as it was
    assert main(["show", run.id]) == 0
    shown = capsys.readouterr().out
    assert "train.py --token *** --lr 0.1" in shown and secret not in shown
    page = run_report(get_run(run.id))
    assert "train.py --token *** --lr 0.1" in page and secret not in page


def test_an_unsupported_store_location_is_named_masked():
    from nbtrack.store import open_store

    secret = _secret("redis")
    with pytest.raises(StoreError) as error:
        open_store(f"redis://:{secret}@cache:6379/0")
    assert "'redis://:***@cache:6379/0'" in str(error.value) and secret not in str(error.value)


@pytest.mark.parametrize(
    ("url", "opened"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u@h/db"),
        (
            "postgresql://u:p@w@h/db?password=x&sslmode=require&sslpassword=y",
            "postgresql://u@h/db?sslmode=require",
        ),
        ("postgresql://u@h/db?sslpassword=y", "postgresql://u@h/db"),
    ],
)
def test_a_masked_postgres_location_opens_without_its_credentials(url, opened):
    """A location copied from a message connects with PGPASSWORD / ~/.pgpass instead of a literal '***'."""
    from nbtrack.common.redact import mask
    from nbtrack.store.postgres import _unmask

    assert _unmask(mask(url)) == opened
