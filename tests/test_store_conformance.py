"""The store contract (nbtrack/store/base.py), run against every backend.

A new backend adds itself to BACKENDS and must pass this file unchanged. PostgreSQL runs on a real throwaway
cluster (tests/pg_server.py), with a fresh database per test.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from nbtrack.errors import RunNotFoundError
from nbtrack.store import open_store
from nbtrack.store.base import SeriesBatch, WriteBatch
from tests.pg_server import pg_server  # noqa: F401  (fixture)

BACKENDS = ["sqlite", "postgresql"]


def new_location(request, backend, tmp_path):
    """A fresh, empty store location of `backend`: a directory, or a new PostgreSQL database's URL."""
    if backend == "sqlite":
        return str(tmp_path / "store")
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "files"))  # a PostgreSQL store's run files
    return new_location(request, request.param, tmp_path)


@pytest.fixture
def store(location):
    store = open_store(location)
    yield store
    store.close()


def new_run(store, project="p", name=None, **extra):
    params = dict(
        run_id=f"r{time.perf_counter_ns() % 10**9:09d}",
        project=project,
        name=name,
        config={"lr": 0.1},
        tags=("t",),
        notes=None,
        created=time.time(),
        host="test-host",
        pid=0,
    )
    params.update(extra)
    return store.create_run(**params)


def points(store, run_id, key, steps, values, t0=1_700_000_000.0):
    series = SeriesBatch(key, list(steps), [t0 + 0.001 * s for s in steps], [float(v) for v in values])
    store.write_batch(WriteBatch(run_id, series=[series], heartbeat=time.time()))


def test_create_and_get_by_id_and_name(store):
    a = new_run(store, project="alpha")
    b = new_run(store, project="alpha")
    c = new_run(store, project="beta")
    assert [a.name[-2:], b.name[-2:], c.name[-2:]] == ["-1", "-2", "-1"]
    assert store.get_run(a.id) == store.get_run(a.name)
    assert store.get_run(b.id).project == "alpha"
    assert store.get_run("latest").id == c.id
    assert store.get_run("latest", project="alpha").id == b.id
    assert [r.id for r in store.list_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in store.list_runs("alpha")] == [b.id, a.id]
    with pytest.raises(RunNotFoundError, match="No run with id or name 'missing'"):
        store.get_run("missing")


def test_duplicate_names_are_allowed_but_ambiguous(store):
    a = new_run(store, name="baseline")
    b = new_run(store, name="baseline")
    with pytest.raises(
        RunNotFoundError, match=rf"2 runs are named 'baseline'.*{b.id}.*{a.id}|2 runs are named 'baseline'"
    ):
        store.get_run("baseline")
    assert store.get_run(a.id).name == "baseline"


def test_write_batch_updates_metadata_atomically(store):
    run = new_run(store)
    store.write_batch(
        WriteBatch(
            run.id,
            config={"lr": 0.2},
            summary={"loss": 0.5, "nan": math.nan},
            environment={"python": {"version": "3"}},
        )
    )
    record = store.get_run(run.id)
    assert (
        record.config == {"lr": 0.2} and record.summary["loss"] == 0.5 and math.isnan(record.summary["nan"])
    )
    assert record.environment == {"python": {"version": "3"}}
    store.write_batch(WriteBatch(run.id, state="finished", ended=time.time()))
    assert store.get_run(run.id).state == "finished"


def test_history_roundtrip_across_chunks(store):
    run = new_run(store)
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[10] = math.nan
    values[20] = math.inf
    # Several flushes of odd sizes, so tail chunks get merged and split.
    for start, stop in [(0, 1), (1, 700), (700, 2100), (2100, 2101), (2101, 5000)]:
        points(store, run.id, "loss", range(start, stop), values[start:stop])
    history = store.history(run.id, "loss")
    assert history.step.tolist() == list(range(5000))
    np.testing.assert_array_equal(history.value, values)  # NaN and inf in place
    np.testing.assert_allclose(history.time, 1_700_000_000.0 + 0.001 * np.arange(5000), atol=1e-3)
    stats = store.metric_stats(run.id)["loss"]
    assert stats.count == 5000 and stats.first_step == 0 and stats.last_step == 4999
    finite = values[np.isfinite(values)]
    assert stats.min == finite.min() and stats.max == math.inf and stats.last == values[-1]


def test_sparse_and_unordered_steps(store):
    run = new_run(store)
    points(store, run.id, "val_loss", [99, 199, 299], [3.0, 2.0, 1.0])
    points(store, run.id, "val_loss", [50], [9.0])  # an earlier step, stored as given
    history = store.history(run.id, "val_loss")
    assert history.step.tolist() == [99, 199, 299, 50]
    assert history.value.tolist() == [3.0, 2.0, 1.0, 9.0]


def test_reduced_history_keeps_extremes(store):
    run = new_run(store)
    values = np.sin(np.linspace(0, 20, 100_000))
    values[12_345] = 50.0  # a spike
    values[54_321] = -50.0
    points(store, run.id, "x", range(100_000), values)
    reduced = store.history(run.id, "x", samples=2000)
    assert len(reduced) <= 2000
    assert reduced.value.max() == 50.0 and reduced.value.min() == -50.0
    assert 12_345 in reduced.step.tolist() and 54_321 in reduced.step.tolist()
    assert (np.diff(reduced.step) > 0).all()


def test_metric_with_every_point_nan(store):
    run = new_run(store)
    points(store, run.id, "bad", [0, 1], [math.nan, math.nan])
    stats = store.metric_stats(run.id)["bad"]
    assert stats.count == 2 and math.isnan(stats.min) and math.isnan(stats.max) and math.isnan(stats.last)


def test_unknown_run_or_key_reads_empty(store):
    run = new_run(store)
    assert len(store.history(run.id, "nothing")) == 0
    assert store.metric_stats(run.id) == {}


def test_delete_run_removes_everything(store):
    run = new_run(store)
    keep = new_run(store)
    points(store, run.id, "loss", range(10), range(10))
    points(store, keep.id, "loss", range(10), range(10))
    store.run_dir(run.id).mkdir(parents=True)
    (store.run_dir(run.id) / "f.txt").write_text("x")
    store.delete_run(run.id)
    with pytest.raises(RunNotFoundError):
        store.get_run(run.id)
    assert len(store.history(run.id, "loss")) == 0 and store.metric_stats(run.id) == {}
    assert not store.run_dir(run.id).exists()
    assert len(store.history(keep.id, "loss")) == 10
    with pytest.raises(RunNotFoundError):
        store.delete_run(run.id)


def test_files_listing(store):
    run = new_run(store)
    assert store.list_files(run.id) == []
    directory = store.run_dir(run.id)
    (directory / "sub").mkdir(parents=True)
    (directory / "a.txt").write_text("abc")
    (directory / "sub" / "b.bin").write_bytes(b"12345")
    assert [(f.name, f.size) for f in store.list_files(run.id)] == [("a.txt", 3), ("sub/b.bin", 5)]


def test_running_run_with_dead_process_reads_crashed(store):
    import socket
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run = new_run(store, host=socket.gethostname(), pid=child.pid)
    assert store.get_run(run.id).state == "crashed"
    alive = new_run(store, host=socket.gethostname(), pid=__import__("os").getpid())
    assert store.get_run(alive.id).state == "running"


def test_stale_heartbeat_reads_crashed_from_any_host(store):
    run = new_run(store, host="another-host", pid=1, created=time.time() - 100)
    assert store.get_run(run.id).state == "crashed"
    fresh = new_run(store, host="another-host", pid=1)
    assert store.get_run(fresh.id).state == "running"
    store.write_batch(WriteBatch(run.id, state="finished", ended=time.time()))
    assert store.get_run(run.id).state == "finished"  # final states are never overridden


def test_reopening_keeps_everything(location):
    first = open_store(location)
    run = new_run(first)
    points(first, run.id, "loss", range(3), [1, 2, 3])
    first.close()
    second = open_store(location, create=False)
    assert store_values(second, run.id) == [1.0, 2.0, 3.0]
    second.close()


def store_values(store, run_id):
    return store.history(run_id, "loss").value.tolist()


def test_events_roundtrip(store):
    from nbtrack.store.base import RunEvent

    run = new_run(store)
    assert store.events(run.id) == []
    first = RunEvent(1.0, "early_stopping", "stopped at epoch 3", step=30, data={"epoch": 3})
    second = RunEvent(2.0, "interrupted", "KeyboardInterrupt")
    store.write_batch(WriteBatch(run.id, events=[first]))
    store.write_batch(WriteBatch(run.id, events=[second]))
    assert store.events(run.id) == [first, second]
    store.delete_run(run.id)
    assert store.events(run.id) == []
