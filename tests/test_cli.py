"""The `nbtrack` command, run as a real subprocess against a real store."""

from __future__ import annotations

import datetime
import json
import math
import subprocess

import pytest

import nbtrack
from nbtrack.cli import main
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
        (("diff", "latest", "nope"), "No run with id or name 'nope'"),
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
    assert done.returncode == 0 and all(c in done.stdout for c in ("ls", "show", "diff", "rm", "--store"))
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


# -- ls --where / --sort / --columns / --limit / --json, and diff: through main(argv) on a real store ------
def run_main(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def strict_json(text):
    """json.loads that refuses NaN/Infinity literals, so only strict JSON passes."""

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def sweep(store_dir):
    """Four finished runs in 'mnist', oldest first: lr 0.1, 0.001, 0.01 (val_accuracy NaN), and none."""
    made = {}
    for label, config, metrics, tags in [
        ("high", {"lr": 0.1, "epochs": 5}, {"val_accuracy": 0.8, "loss": 0.5}, ["baseline"]),
        ("low", {"lr": 0.001, "epochs": 5, "optimizer": "adam"}, {"val_accuracy": 0.95, "loss": 0.2}, []),
        ("mid", {"lr": 0.01, "epochs": 5}, {"val_accuracy": math.nan, "loss": math.inf}, []),
        ("bare", {"batch_size": 8}, {}, []),
    ]:
        run = nbtrack.init(project="mnist", config=config, name=f"{label}-run", tags=tags)
        if metrics:
            run.log(metrics)
        run.finish()
        made[label] = run
    return made


def names_of(capsys, *args):
    code, out, err = run_main(capsys, "ls", *args, "--json", "--columns", "name")
    assert code == 0, err
    return [item["name"] for item in strict_json(out)]


def test_ls_where_filters_runs(capsys, sweep):
    where = "config.lr < 0.05 and state == 'finished'"
    assert sorted(names_of(capsys, "--where", where)) == ["low-run", "mid-run"]
    assert names_of(capsys, "--where", "'baseline' in tags") == ["high-run"]
    code, out, _ = run_main(capsys, "ls", "--where", "config.lr > 1")
    assert code == 0 and "No runs matching config.lr > 1 in" in out


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (["--sort=-config.lr"], ["high-run", "mid-run", "low-run", "bare-run"]),
        (["--sort", "-config.lr"], ["high-run", "mid-run", "low-run", "bare-run"]),
        (["--sort", "config.lr"], ["low-run", "mid-run", "high-run", "bare-run"]),
        # NaN sorts after numbers, a missing value after everything, in both directions.
        (["--sort", "-summary.val_accuracy"], ["low-run", "high-run", "mid-run", "bare-run"]),
        (["--sort=summary.val_accuracy"], ["high-run", "low-run", "mid-run", "bare-run"]),
        (["--sort", "config.epochs,-created"], ["mid-run", "low-run", "high-run", "bare-run"]),
        ([], ["bare-run", "mid-run", "low-run", "high-run"]),
    ],
)
def test_ls_sorts_both_directions_with_missing_values_last(capsys, sweep, sort, expected):
    assert names_of(capsys, *sort) == expected


def test_ls_columns_replace_the_metrics(capsys, sweep):
    code, out, err = run_main(
        capsys, "ls", "--columns", "config.lr,summary.val_accuracy,config.nothing", "--sort", "-created"
    )
    assert code == 0, err
    header, _, *rows = out.splitlines()
    assert header.split()[-4:] == ["DURATION", "config.lr", "summary.val_accuracy", "config.nothing"]
    assert "METRICS" not in header
    bare, mid, low, high = (row.split() for row in rows)
    assert bare[0] == "bare-run" and bare[-3:] == ["-", "-", "-"]
    assert mid[-3:] == ["0.01", "nan", "-"]
    assert low[-3:] == ["0.001", "0.95", "-"]
    assert high[-3:] == ["0.1", "0.8", "-"]


def test_ls_limit_says_how_many_were_left_out(capsys, sweep):
    code, out, _ = run_main(capsys, "ls", "--limit", "2", "--sort", "-summary.val_accuracy")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5
    assert "low-run" in lines[2] and "high-run" in lines[3]
    assert lines[-1] == "2 of 4 runs"
    code, out, _ = run_main(capsys, "ls", "--limit", "4")
    assert code == 0 and " of " not in out.splitlines()[-1]
    code, out, _ = run_main(capsys, "ls", "--where", "config.lr < 0.05", "-n", "1")
    assert out.splitlines()[-1] == "1 of 2 runs"


def test_ls_limit_must_be_positive(capsys, sweep):
    with pytest.raises(SystemExit) as exit_info:
        main(["ls", "--limit", "0"])
    assert exit_info.value.code == 2
    assert "expected a whole number of runs, 1 or more; got '0'" in capsys.readouterr().err


def test_ls_json_is_strict_and_keeps_nan_and_infinity(capsys, sweep):
    code, out, err = run_main(capsys, "ls", "--json", "--sort", "created")
    assert code == 0, err
    items = strict_json(out)
    assert [i["name"] for i in items] == ["high-run", "low-run", "mid-run", "bare-run"]
    high, low, mid, bare = items
    assert set(high) == {
        "id", "name", "project", "state", "created", "created_ts", "duration", "tags", "config", "summary"
    }  # fmt: skip
    assert high["id"] == sweep["high"].id and high["project"] == "mnist" and high["state"] == "finished"
    assert high["tags"] == ["baseline"] and high["config"] == {"lr": 0.1, "epochs": 5}
    assert high["summary"]["val_accuracy"] == 0.8
    assert mid["summary"]["val_accuracy"] == "NaN" and mid["summary"]["loss"] == "Infinity"
    assert bare["summary"] == {} and bare["config"] == {"batch_size": 8}
    assert high["created"].endswith("Z")
    parsed = datetime.datetime.fromisoformat(high["created"].replace("Z", "+00:00"))
    assert parsed.tzinfo == datetime.timezone.utc
    assert abs(parsed.timestamp() - high["created_ts"]) < 0.001
    assert isinstance(high["duration"], float) and high["duration"] >= 0


def test_ls_json_with_columns_has_just_those(capsys, sweep):
    code, out, _ = run_main(
        capsys, "ls", "--json", "--columns", "config.lr, summary.val_accuracy ,created", "--sort", "config.lr"
    )
    items = strict_json(out)
    assert (
        code == 0
        and [set(i) for i in items]
        == [{"id", "name", "state", "config.lr", "summary.val_accuracy", "created"}] * 4
    )
    low, mid, high, bare = items
    assert (low["config.lr"], low["summary.val_accuracy"]) == (0.001, 0.95)
    assert mid["summary.val_accuracy"] == "NaN"
    assert bare["config.lr"] is None and bare["summary.val_accuracy"] is None
    assert high["created"].endswith("Z")


def test_ls_where_syntax_error_exits_2_with_a_caret(capsys, sweep):
    code, out, err = run_main(capsys, "ls", "--where", "config.lr < ", "--json")
    assert code == 2 and out == ""
    message, source, caret = err.splitlines()
    assert message.startswith("nbtrack: --where: Expected a value")
    assert "at position 12, found the end of the expression" in message
    assert source == "  config.lr < "
    assert caret == " " * 14 + "^"


def test_ls_where_key_no_run_has_names_the_close_one(capsys, sweep):
    code, _, err = run_main(capsys, "ls", "--where", "config.lrr < 0.01")
    assert code == 2 and "No run has config.lrr. Did you mean config.lr?" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sort", "-confg.lr"], "nbtrack: --sort: Unknown field 'confg' at position 0"),
        (["--sort", "-confg.lr"], "Did you mean config.<key>?"),
        (["--sort=summary."], "nbtrack: --sort: Expected a key after 'summary.'"),
        (["--sort", "config.lr created"], "separate fields with ','"),
        (["--columns", "config."], "nbtrack: --columns: Expected a key after 'config.'"),
        (["--columns", "foo"], "Did you mean config.foo or summary.foo?"),
        (["--columns", "config.lr,,summary.loss"], "empty column name in 'config.lr,,summary.loss'"),
        (["--columns=-config.lr"], "column '-config.lr' has a sort sign"),
    ],
)
def test_ls_malformed_sort_or_columns_exit_2(capsys, sweep, args, message):
    code, out, err = run_main(capsys, "ls", *args)
    assert code == 2 and out == "" and message in err


def test_ls_sort_value_that_is_an_option_is_not_taken(capsys, sweep):
    with pytest.raises(SystemExit) as exit_info:
        main(["ls", "--sort", "-p", "mnist"])
    assert exit_info.value.code == 2
    assert "argument --sort: expected one argument" in capsys.readouterr().err


def test_diff_shows_differing_and_missing_keys(capsys, sweep):
    high, low = sweep["high"], sweep["low"]
    code, out, err = run_main(capsys, "diff", high.name, low.id)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "A", f"({high.name})", "B", f"({low.name})"]
    assert [line.split() for line in lines[2:]] == [
        ["config.lr", "0.1", "0.001"],
        ["config.optimizer", "-", "adam"],
        ["summary.loss", "0.5", "0.2"],
        ["summary.val_accuracy", "0.8", "0.95"],
    ]
    code, out, _ = run_main(capsys, "diff", high.name, low.name, "--all")
    keys = [line.split()[0] for line in out.splitlines()[2:]]
    assert keys == ["config.epochs", "config.lr", "config.optimizer", "summary.loss", "summary.val_accuracy"]
    assert out.splitlines()[2].split() == ["config.epochs", "5", "5"]


def test_diff_json(capsys, sweep):
    high, mid, low = sweep["high"], sweep["mid"], sweep["low"]
    code, out, err = run_main(capsys, "diff", mid.name, low.name, "--json")
    assert code == 0, err
    result = strict_json(out)
    assert result["a"] == {"id": mid.id, "name": mid.name, "project": "mnist", "state": "finished"}
    assert result["b"]["id"] == low.id
    assert result["config"] == [
        {"key": "config.lr", "a": 0.01, "b": 0.001, "missing": [], "equal": False},
        {"key": "config.optimizer", "a": None, "b": "adam", "missing": ["a"], "equal": False},
    ]
    assert result["summary"] == [
        {"key": "summary.loss", "a": "Infinity", "b": 0.2, "missing": [], "equal": False},
        {"key": "summary.val_accuracy", "a": "NaN", "b": 0.95, "missing": [], "equal": False},
    ]
    code, out, _ = run_main(capsys, "diff", high.name, low.name, "--json", "--all")
    epochs = strict_json(out)["config"][0]
    assert epochs == {"key": "config.epochs", "a": 5, "b": 5, "missing": [], "equal": True}


def test_diff_of_identical_runs(capsys, store_dir):
    for _ in range(2):
        run = nbtrack.init(project="p", config={"lr": 0.01, "layers": [64, 32]})
        run.log({"loss": math.nan})
        run.finish()
    code, out, err = run_main(capsys, "diff", "latest", run.id)
    assert code == 0 and out == "No differences in config or summary.\n", err
    code, out, _ = run_main(capsys, "diff", "latest", run.id, "--json")
    assert strict_json(out)["config"] == [] and strict_json(out)["summary"] == []
    code, out, _ = run_main(capsys, "diff", "latest", run.id, "--all")
    assert code == 0 and "config.layers" in out and "[64, 32]" in out
    assert out.splitlines()[-1] == "No differences in config or summary."


def test_ls_where_json_through_a_subprocess(python, python_env, store_dir, sweep):
    done = cli(
        python,
        python_env,
        "ls",
        "--where",
        "config.lr <= 0.01",
        "--sort",
        "-config.lr",
        "--json",
        store=store_dir,
    )
    assert done.returncode == 0, done.stderr
    items = strict_json(done.stdout)
    assert [i["name"] for i in items] == ["mid-run", "low-run"]
    assert items[0]["summary"]["val_accuracy"] == "NaN"


def test_query_error_through_a_subprocess_has_no_traceback(python, python_env, store_dir, sweep):
    done = cli(python, python_env, "ls", "--where", "config.lr << 1", store=store_dir)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[1:] == ["  config.lr << 1", "  " + " " * 11 + "^"]


def test_terminal_control_characters_are_shown_not_obeyed(capsys):
    import json as _json

    from nbtrack.cli import main

    hostile = "evil\x1b[2J\x1b]0;title\x07\x9b31m\u202ename\x7f"
    run = nbtrack.init(project="esc", name=hostile, config={"k\x1b[1m": "v\x1b[31m"})
    print("log line \x1b[2K erased?")
    run.log({"loss": 1.0})
    run.finish()
    capsys.readouterr()  # what the run itself printed
    for argv in (["ls"], ["show", run.id], ["ls", "--json"], ["diff", run.id, run.id, "--all"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x1b\x07\x9b\u202e\x7f"), argv
    assert main(["show", run.id]) == 0
    shown = capsys.readouterr().out
    assert "evil\\u001b[2J" in shown and "\\u202ename" in shown
    assert main(["ls", "--json"]) == 0
    (row,) = _json.loads(capsys.readouterr().out)
    assert row["name"] == hostile  # the \\uXXXX forms are JSON escapes: the real name comes back
