"""Bad input gets a clear error at the call, and loses nothing already logged."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import nbtrack
from nbtrack.errors import NbtrackWarning, RunFinishedError, StoreError
from nbtrack.store import open_store
from nbtrack.store.sqlite import SQLiteStore


def logged_keys(run) -> set[str]:
    """Metrics the test logged (the system sampler adds system/* series beside them)."""
    return {key for key in run.store.metric_stats(run.id) if not key.startswith("system/")}


@pytest.fixture
def run():
    run = nbtrack.init(project="bad-input")
    yield run
    run.finish()


@pytest.mark.parametrize("data", [[("loss", 1.0)], 0.5, "loss", None, ("loss", 1.0)])
def test_log_rejects_non_dict(run, data):
    with pytest.raises(TypeError, match=r"run.log\(data\): data must be a dict"):
        run.log(data)


def test_numbers_of_every_kind_are_stored_faithfully(run):
    values = {
        "int": 3,
        "float": 0.25,
        "bool": True,
        "np_float32": np.float32(0.5),
        "np_int64": np.int64(-7),
        "zero_d": np.array(1.5),
        "one_elem": np.array([2.5]),
        "nan": float("nan"),
        "pinf": float("inf"),
        "ninf": -math.inf,
        "np_nan": np.float64("nan"),
    }
    run.log(values)
    run.log({"nan": 1.0, "pinf": 2.0})
    run.flush()
    stored = {k: run.store.history(run.id, k).value.tolist() for k in values}
    assert stored["int"] == [3.0] and stored["float"] == [0.25] and stored["bool"] == [1.0]
    assert stored["np_float32"] == [0.5] and stored["np_int64"] == [-7.0]
    assert stored["zero_d"] == [1.5] and stored["one_elem"] == [2.5]
    assert math.isnan(stored["nan"][0]) and stored["nan"][1] == 1.0  # NaN kept, not dropped
    assert stored["pinf"] == [math.inf, 2.0] and stored["ninf"] == [-math.inf]
    assert math.isnan(stored["np_nan"][0])
    stats = run.summary.stats("nan")
    assert stats.count == 2 and stats.min == 1.0 and stats.max == 1.0  # NaN ignored by min/max, counted


def test_nested_dicts_are_flattened(run):
    run.log({"train": {"loss": 0.5, "extra": {"depth": 2}}, "val": {"loss": 0.7}})
    run.flush()
    assert logged_keys(run) == {"train/loss", "train/extra/depth", "val/loss"}
    assert run.summary["train/extra/depth"] == 2.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "hello"}, r"the value of 'name' is text"),
        ({"v": None}, r"the value of 'v' is None"),
        ({"v": [1, 2]}, r"the value of 'v' is a list, which is not a number"),
        ({"v": np.zeros(3)}, r"the value of 'v' is an array of shape \(3,\)"),
        ({"v": object()}, r"the value of 'v' is an object, which is not a number"),
        ({"a": {"b": "x"}}, r"the value of 'a/b' is text"),
    ],
)
def test_non_numeric_values_are_rejected_clearly(run, data, message):
    run.log({"good": 1.0})
    with pytest.raises(TypeError, match=message):
        run.log(data)
    run.log({"good": 2.0})
    run.flush()
    assert run.store.history(run.id, "good").value.tolist() == [1.0, 2.0]  # nothing lost, nothing half-logged
    assert logged_keys(run) == {"good"}


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"": 1.0}, ValueError, "must not be empty"),
        ({"  ": 1.0}, ValueError, "must not be empty"),
        ({1: 1.0}, TypeError, "metric names must be strings, got int 1"),
        ({("a",): 1.0}, TypeError, "metric names must be strings"),
    ],
)
def test_bad_metric_keys(run, data, error, message):
    with pytest.raises(error, match=message):
        run.log(data)


def test_bad_step(run):
    with pytest.raises(TypeError, match="step must be an int, got float"):
        run.log({"a": 1.0}, step=1.5)
    with pytest.raises(TypeError, match="step must be an int, got str"):
        run.log({"a": 1.0}, step="3")
    run.log({"a": 1.0}, step=np.int64(4))
    assert run.step == 5


def test_logging_after_finish_is_a_clear_error():
    run = nbtrack.init(project="p")
    run.log({"a": 1.0})
    run.finish()
    with pytest.raises(RunFinishedError, match=r"is finished; start a new one with nbtrack.init"):
        run.log({"a": 2.0})
    with pytest.raises(RunFinishedError):
        run.summary["x"] = 1
    assert run.store.history(run.id, "a").value.tolist() == [1.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"project": ""}, ValueError, "project must be a non-empty string"),
        ({"project": 3}, ValueError, "project must be a non-empty string"),
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"tags": [1]}, TypeError, "tags must be non-empty strings"),
        ({"notes": 5}, TypeError, "notes must be a string"),
        ({"config": [1, 2]}, TypeError, r"config=...\): must be a dict|must be a dict"),
        ({"config": {1: 2}}, TypeError, "config keys must be non-empty strings"),
    ],
)
def test_bad_init_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        nbtrack.init(**kwargs)
    assert nbtrack.run.active_runs() == []


def test_store_path_that_is_a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(StoreError, match="it is a file, not a directory"):
        nbtrack.init(project="p", store=path)


def test_store_without_write_permission_fails_at_init(python, python_env, tmp_path):
    """A read-only store directory: a clear StoreError from init, not a traceback from a thread.

    Root ignores permission bits; under root the attempt runs in a user namespace (`unshare -U`), where the
    process keeps its uid but loses the capability to override them.
    """
    readonly = tmp_path / "store"
    readonly.mkdir()
    readonly.chmod(0o555)
    code = textwrap.dedent(f"""
        import nbtrack
        from nbtrack.errors import StoreError
        try:
            nbtrack.init(project="p", store={str(readonly)!r})
        except StoreError as exc:
            print("STORE-ERROR:", exc)
        else:
            print("NO ERROR")
    """)
    prefix = []
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        assert unshare, "this test needs `unshare` (Debian package util-linux) to drop root's override"
        prefix = [unshare, "-U"]
    try:
        done = subprocess.run(
            [*prefix, python, "-c", code], env=python_env, capture_output=True, text=True, timeout=120
        )
    finally:
        readonly.chmod(0o755)
    assert "STORE-ERROR:" in done.stdout, done.stdout + done.stderr
    assert "Cannot write the run store" in done.stdout and "NBTRACK_STORE" in done.stdout
    assert "Traceback" not in done.stderr


def test_store_written_by_a_newer_version(store_dir):
    SQLiteStore(store_dir).close()
    import sqlite3

    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(
        StoreError, match=r"written by a newer nbtrack \(schema version 99.*pip install -U nbtrack"
    ):
        open_store(store_dir)


def test_not_a_database(store_dir):
    store_dir.mkdir(parents=True)
    (store_dir / "nbtrack.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an nbtrack store database|not a database"):
        nbtrack.init(project="p")


class FlakyStore(SQLiteStore):
    """A real SQLite store whose first `failures` writes fail, like a full disk that frees up."""

    def __init__(self, directory, failures):
        super().__init__(directory)
        self.failures = failures
        self.attempts = 0

    def write_batch(self, batch):
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("disk full (simulated)")
        super().write_batch(batch)


def test_writer_faults_are_warned_once_retried_and_never_raise(store_dir):
    store = FlakyStore(store_dir, failures=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = nbtrack.init(project="p", store=store)
        run.event("first", "logged while the disk is full")
        for i in range(2000):
            run.log({"loss": float(i)})  # never raises, although the writer is failing
        run.event("second", "also kept")
        run.finish()
    ours = [w for w in caught if issubclass(w.category, NbtrackWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "disk full (simulated)" in str(ours[0].message) and "Training goes on" in str(ours[0].message)
    assert store.attempts > 4
    history = open_store(store_dir).history(run.id, "loss")
    assert history.value.tolist() == [float(i) for i in range(2000)]
    assert open_store(store_dir).get_run(run.id).state == "finished"
    assert [e.kind for e in open_store(store_dir).events(run.id)] == ["first", "second"]


def test_writer_that_never_recovers_spills_to_a_file_that_push_writes_later(store_dir, monkeypatch, tmp_path):
    from nbtrack.run.spill import push_spill

    monkeypatch.setenv("NBTRACK_FINAL_FLUSH_SECONDS", "1")
    monkeypatch.setenv("NBTRACK_SPILL_DIR", str(tmp_path / "spill"))
    store = FlakyStore(store_dir, failures=10**9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = nbtrack.init(project="p", store=store)
        run.log({"loss": 1.0, "odd": float("nan")})
        run.log({"loss": 0.5, "odd": float("inf")})
        run.event("late", "after the store went away")
        assert run.flush(timeout=2) is False
        run.finish()  # the final flush's patience (1 s here), then it gives up and spills
    messages = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    spilled = [m for m in messages if "nbtrack --store" in m and " push " in m]
    assert len(spilled) == 1 and "2 log calls" in spilled[0], messages
    (path,) = (tmp_path / "spill").glob("*.json")
    assert str(path) in spilled[0]
    healthy = open_store(store_dir)  # the store is back
    push_spill(path, healthy)
    assert not path.exists()
    assert healthy.history(run.id, "loss").value.tolist() == [1.0, 0.5]
    odd = healthy.history(run.id, "odd").value
    assert np.isnan(odd[0]) and odd[1] == np.inf
    record = healthy.get_run(run.id)
    assert record.state == "finished" and record.summary["loss"] == 0.5
    assert [e.kind for e in healthy.events(run.id)] == ["late"]


def test_a_short_outage_loses_nothing(store_dir):
    store = FlakyStore(store_dir, failures=6)  # about 3 s of backing-off retries
    run = nbtrack.init(project="p", store=store)
    for i in range(500):
        run.log({"loss": float(i)})
        if i % 100 == 0:
            time.sleep(0.2)
    run.finish()
    assert open_store(store_dir).history(run.id, "loss").value.tolist() == [float(i) for i in range(500)]


def test_import_does_not_pull_heavy_modules(python, python_env):
    code = "import sys, nbtrack; print(sorted(m for m in ('keras','tensorflow','bqplot','ipywidgets','psutil','numpy','pandas') if m in sys.modules))"
    done = subprocess.run(
        [python, "-c", code], env=python_env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_child_sees_clear_error_text_not_thread_traceback(python, python_env, tmp_path):
    """init against a broken store raises in the caller; no writer thread was started."""
    bad = tmp_path / "file"
    bad.write_text("")
    code = f"import nbtrack\ntry:\n    nbtrack.init(store={str(bad)!r})\nexcept nbtrack.NbtrackError as e:\n    print('ok', e)\n"
    done = subprocess.run(
        [sys.executable, "-c", code], env=python_env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("ok") and done.stderr == ""


def test_cli_push_writes_a_spill_file(store_dir, monkeypatch, tmp_path, capsys):
    from nbtrack.cli import main
    from nbtrack.run.spill import write_spill

    run = nbtrack.init(project="p")
    run.log({"loss": 1.0})
    run.flush()
    spill = write_spill(str(store_dir), run.id, {"loss": ([5], [time.time()], [0.25])}, {"state": "finished"})
    run.finish()
    assert main(["push", str(spill)]) == 0
    assert "Wrote 1 points, state finished" in capsys.readouterr().out
    assert open_store(store_dir).history(run.id, "loss").value.tolist() == [1.0, 0.25]
    assert main(["push", str(spill)]) == 1  # gone once written
    assert "No spill file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["--store", str(store_dir), "push", str(bad)]) == 1
    assert "not an nbtrack spill file" in capsys.readouterr().err


def test_a_point_half_appended_by_an_interrupt_is_dropped_and_later_points_keep_their_steps(
    store_dir, monkeypatch
):
    """A KeyboardInterrupt between appending a point's step and its value (Ctrl-C lands anywhere) must not
    shift the metric's later points onto the wrong steps, nor leave columns a flush cannot write."""
    import nbtrack.run.writer

    run = nbtrack.init(project="interrupt")
    run.log({"a": 1.0, "b": 1.0})
    real = nbtrack.run.writer.append_columns

    def interrupted(columns, step, when, values):
        columns["a"][0].append(step)  # the step went in, then the signal arrived
        raise KeyboardInterrupt

    monkeypatch.setattr(nbtrack.run.writer, "append_columns", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.log({"a": 2.0, "b": 2.0})
    monkeypatch.setattr(nbtrack.run.writer, "append_columns", real)
    run.log({"a": 3.0, "b": 3.0})
    run.finish()
    assert run._writer.error is None
    for key in ("a", "b"):
        history = run.store.history(run.id, key)
        assert history.value.tolist() == [1.0, 3.0] and history.step.tolist() == [0, 2]
