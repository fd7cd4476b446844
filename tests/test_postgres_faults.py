"""The shared PostgreSQL store under real faults: the server restarting mid-run, and many processes logging at once.
Nothing logged may be lost."""

from __future__ import annotations

import subprocess
import threading
import time
import warnings

import pytest

import nbtrack
from nbtrack.store import open_store


@pytest.fixture
def pg_url(pg_server):
    return pg_server.new_database()


def test_a_server_restart_mid_run_loses_nothing(pg_server, pg_url, monkeypatch):
    monkeypatch.setenv("NBTRACK_STORE", pg_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = nbtrack.init(project="outage")
        for i in range(200):
            run.log({"loss": float(i)})
        assert run.flush(timeout=10)
        pg_server.pause()  # the server goes away for a few seconds; training goes on
        restart = threading.Timer(4.0, pg_server.resume)
        restart.start()
        for i in range(200, 400):
            run.log({"loss": float(i)})
            time.sleep(0.02)
        restart.join()
        for i in range(400, 500):
            run.log({"loss": float(i)})
        run.finish()
    messages = [str(w.message) for w in caught if "nbtrack" in str(w.message)]
    assert len([m for m in messages if "could not write run" in m]) == 1, messages  # warned once
    store = open_store(pg_url, create=False)
    assert store.history(run.id, "loss").value.tolist() == [float(i) for i in range(500)]
    assert store.get_run(run.id).state == "finished"
    store.close()


WRITER = """
import sys, nbtrack
run = nbtrack.init(project="many", name=f"writer-{sys.argv[1]}")
for i in range(50_000):
    run.log({"loss": float(i), "acc": i / 50_000})
run.finish()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_processes_logging_50k_points_each_lose_nothing(
    backend, pg_server, python, python_env, tmp_path
):
    location = pg_server.new_database() if backend == "postgresql" else str(tmp_path / "store")
    env = {**python_env, "NBTRACK_STORE": location}
    processes = [
        subprocess.Popen(
            [python, "-c", WRITER, str(n)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for n in range(8)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert not any("locked" in err or "Traceback" in err for _, err in outputs), outputs
    store = open_store(location, create=False)
    runs = store.list_runs("many")
    assert sorted(r.name for r in runs) == [f"writer-{n}" for n in range(8)]
    for run in runs:
        assert run.state == "finished"
        loss = store.history(run.id, "loss")
        assert loss.step.tolist() == list(range(50_000)) and loss.value.tolist() == [
            float(i) for i in range(50_000)
        ]
    store.close()


def test_bundles_and_sync_round_trip_through_postgresql(pg_url, store_dir, tmp_path):
    """A local SQLite store synced to the team's PostgreSQL store, and a bundle imported there: nothing lost."""
    import numpy as np

    from nbtrack.share.bundle import export_runs, import_bundle, sync

    run = nbtrack.init(project="team", config={"lr": 0.1}, tags=["x"])
    for i in range(1000):
        run.log({"loss": 1.0 / (i + 1), "odd": float("nan") if i % 7 == 0 else float(i)})
    run.event("note", "kept")
    run.finish()
    local = open_store(store_dir, create=False)
    first = sync(local, pg_url)
    assert first.pushed == [run.id] and sync(local, pg_url).pushed == []
    team = open_store(pg_url, create=False)
    copy = team.get_run(run.id)
    assert copy.config == {"lr": 0.1} and copy.tags == ("x",) and copy.state == "finished"
    for key in ("loss", "odd"):
        a, b = local.history(run.id, key), team.history(run.id, key)
        assert np.array_equal(a.step, b.step) and np.array_equal(a.value, b.value, equal_nan=True)
    assert [e.kind for e in team.events(run.id)] == [e.kind for e in local.events(run.id)]
    assert nbtrack.runs(where="config.lr == 0.1", store=team).ids == [run.id]
    bundle = export_runs([run.id], tmp_path / "b.nbtrack.zip", store=local)
    other = open_store(pg_url, create=False)  # a second connection, as another user's machine would have
    result = import_bundle(bundle, store=other)
    assert result.imported == [] and result.skipped == [run.id]  # already there: nothing duplicated
    assert [r.id for r in other.list_runs()] == [run.id]
    assert len(other.history(run.id, "loss")) == 1000
    other.close()
    team.close()
    local.close()


def test_three_agents_on_a_postgresql_store_cover_a_grid_once(pg_url, tmp_path, python, python_env):
    from nbtrack.sweeps import create

    (tmp_path / "agent_target.py").write_text(
        "import nbtrack\n\ndef train(config):\n    nbtrack.log({'val_loss': config['a'] * 10 + config['b']})\n"
    )
    grid = {
        "method": "grid",
        "metric": {"name": "val_loss"},
        "parameters": {"a": {"values": [0, 1, 2]}, "b": {"values": [0, 1, 2, 3]}},
    }
    sweep = create(grid, project="agents", store=pg_url)
    env = {**python_env, "NBTRACK_STORE": pg_url}
    workers = [
        subprocess.Popen(
            [python, "-m", "nbtrack", "agent", sweep.id, "--function", "agent_target:train"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    trials = sweep.trials()
    assert sorted(t.grid_index for t in trials) == list(range(12)) and all(
        t.state == "finished" for t in trials
    )
    assert sorted((t.params["a"], t.params["b"]) for t in trials) == [
        (a, b) for a in range(3) for b in range(4)
    ]
    runs = open_store(pg_url, create=False).list_runs("agents")
    assert len(runs) == 12 and all(r.state == "finished" for r in runs)
