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
    a = new_run(store, name="baseline", created=1_700_000_000.0)
    b = new_run(store, name="baseline", created=1_700_000_100.0)
    with pytest.raises(RunNotFoundError) as raised:
        store.get_run("baseline")
    assert str(raised.value) == (  # the newest first, each id with its project
        f"2 runs are named 'baseline' in the store at {store.location}: {b.id} (p), {a.id} (p). "
        "Use the run id."
    )
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


def test_one_flush_of_many_keys_and_a_key_given_twice(store):
    """A flush holding 1,200 keys (more than one slice of keys per query) and the same key twice in one batch:
    every point lands once, in order, with stats over all of them."""
    run = new_run(store)
    t0 = 1_700_000_000.0
    for flush in range(3):
        series = [SeriesBatch(f"k{i:04d}", [flush], [t0 + flush], [float(i + flush)]) for i in range(1200)]
        series.append(SeriesBatch("twice", [2 * flush], [t0], [float(-flush)]))
        series.append(SeriesBatch("twice", [2 * flush + 1], [t0], [float(flush + 10)]))
        store.write_batch(WriteBatch(run.id, series=series))
    stats = store.metric_stats(run.id)
    assert len(stats) == 1201
    for i in (0, 499, 500, 1199):
        assert store.history(run.id, f"k{i:04d}").value.tolist() == [i, i + 1, i + 2]
        assert stats[f"k{i:04d}"].count == 3 and stats[f"k{i:04d}"].last == i + 2
    twice = store.history(run.id, "twice")
    assert twice.step.tolist() == [0, 1, 2, 3, 4, 5] and twice.value.tolist() == [0, 10, -1, 11, -2, 12]
    assert (stats["twice"].min, stats["twice"].max, stats["twice"].last) == (-2, 12, 12)


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


# -- several processes at once ------------------------------------------------------------------------
WRITER = r"""
import sys, time
from nbtrack.store import open_store
from nbtrack.store.base import SeriesBatch, WriteBatch

location, worker = sys.argv[1], int(sys.argv[2])
store = open_store(location)
run = store.create_run(run_id=f"writer{worker}", project="p", name=None, config={"worker": worker}, tags=(),
                       notes=None, created=time.time(), host="h", pid=0)
print("ready", flush=True)
sys.stdin.readline()
for batch in range(20):
    steps = list(range(batch * 50, (batch + 1) * 50))
    series = [SeriesBatch("loss", steps, [time.time()] * 50, [worker * 10_000.0 + s for s in steps]),
              SeriesBatch("acc", steps[-1:], [time.time()], [float(batch)])]
    store.write_batch(WriteBatch(run.id, series=series, heartbeat=time.time()))
store.close()
print("done", flush=True)
"""

CLAIMER = r"""
import sys, time
from nbtrack.store import open_store

location, worker = sys.argv[1], sys.argv[2]
store = open_store(location)

def propose(trials):
    time.sleep(0.005)  # widen the window in which a second claim could see the same trials
    taken = {t.grid_index for t in trials}
    free = [i for i in range(12) if i not in taken]
    return ({"x": free[0]}, free[0]) if free else None

print("ready", flush=True)
sys.stdin.readline()
claimed = []
while (trial := store.claim_trial("sweep1", worker, propose)) is not None:
    claimed.append(trial.grid_index)
    store.update_trial("sweep1", trial.number, state="finished", value=1.0, ended=time.time())
store.close()
print(" ".join(map(str, claimed)), flush=True)
"""


def run_together(script, location, count, env):
    """Start `count` processes running `script`, let them go at the same moment; returns their last lines."""
    import subprocess
    import sys

    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, location, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(count)
    ]
    try:
        for child in children:
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read()
        for child in children:  # all of them start writing now
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            results.append(out.strip().splitlines()[-1] if out.strip() else "")
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def test_concurrent_writers_lose_nothing(store, location, python_env):
    assert run_together(WRITER, location, 4, python_env) == ["done"] * 4
    runs = store.list_runs("p")
    assert sorted(r.id for r in runs) == [f"writer{i}" for i in range(4)]
    assert sorted(r.name.rsplit("-", 1)[1] for r in runs) == ["1", "2", "3", "4"]  # one sequence number each
    for worker in range(4):
        history = store.history(f"writer{worker}", "loss")
        assert history.step.tolist() == list(range(1000))
        assert history.value.tolist() == [worker * 10_000.0 + s for s in range(1000)]
        stats = store.metric_stats(f"writer{worker}")
        assert stats["loss"].count == 1000 and stats["acc"].count == 20 and stats["acc"].last == 19.0


def test_concurrent_agents_claim_each_grid_point_once(store, location, python_env):
    store.create_sweep(
        sweep_id="sweep1", project="p", name="grid", config={}, method="grid", created=time.time()
    )
    claims = run_together(CLAIMER, location, 3, python_env)
    claimed = [int(i) for line in claims for i in line.split()]
    assert sorted(claimed) == list(range(12)), claims
    trials = store.trials("sweep1")
    assert [t.number for t in trials] == list(range(12))
    assert sorted(t.grid_index for t in trials) == list(range(12))
    assert {t.state for t in trials} == {"finished"}


# -- PostgreSQL only: locations, schema versions ------------------------------------------------------
@pytest.fixture
def pg(request):
    """The throwaway PostgreSQL cluster (tests/pg_server.py)."""
    return request.getfixturevalue("pg_server")


def test_postgres_location_and_errors_hide_the_password(pg, monkeypatch, tmp_path):
    from nbtrack.errors import StoreError

    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "files"))
    url = pg.new_database().replace("postgres@", "postgres:s3cret@")
    with open_store(url) as store:  # trust authentication: the password is not checked
        assert "s3cret" not in store.location and "postgres:***@" in store.location
        run = new_run(store)
    with open_store(store.location, create=False) as again:  # a masked location connects without a password
        assert again.get_run(run.id).id == run.id
    missing = url.replace("/nbtrack_", "/no_such_db_")
    with pytest.raises(
        StoreError, match=r"Cannot connect to the run store postgresql://postgres:\*\*\*@"
    ) as error:
        open_store(missing)
    assert "s3cret" not in str(error.value) and "does not exist" in str(error.value)


def test_postgres_schema_versions(pg, monkeypatch, tmp_path):
    import threading

    import psycopg

    from nbtrack.errors import StoreError
    from nbtrack.store.base import SCHEMA_VERSION

    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "files"))
    url = pg.new_database()
    with pytest.raises(StoreError, match="There is no nbtrack run store in the database"):
        open_store(url, create=False)
    opened, failures = [], []

    def open_one():  # several clients creating the schema at once: one migrates, the others wait
        try:
            opened.append(open_store(url))
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(opened) == 4
    for store in opened:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        conn.execute("INSERT INTO schema_version VALUES (%s, 'from the future', 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(
        StoreError, match=rf"written by a newer nbtrack \(schema version {SCHEMA_VERSION + 1}"
    ):
        open_store(url)


def test_postgres_urls_files_and_missing_driver(pg, monkeypatch, tmp_path):
    import sys
    from pathlib import Path

    from nbtrack.store.postgres import FILES_ENV_VAR, default_files_root

    assert default_files_root("postgresql://me@db.example.org:5433/exp") == (
        Path("~/.nbtrack/files/db.example.org_exp").expanduser()
    )
    url = pg.new_database()
    monkeypatch.setenv(FILES_ENV_VAR, str(tmp_path / "shared"))
    with open_store(url.replace("postgresql://", "postgres://")) as store:
        assert store.run_dir("r1") == tmp_path / "shared" / "r1"
    monkeypatch.delitem(sys.modules, "nbtrack.store.postgres")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(ImportError, match=r"pip install 'nbtrack\[postgres\]'"):
        open_store(url)
