"""Durability and concurrency, with real processes writing a real SQLite store.

- After kill -9, everything logged more than ~1 s before the kill is on disk, and readers see `crashed`.
- Several processes write runs into one store at once: no "database is locked", no lost point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time

import numpy as np

from nbtrack.store import open_store

CHILD_LOGS_UNTIL_KILLED = textwrap.dedent("""
    import sys, time
    import nbtrack
    run = nbtrack.init(project="durability", store=sys.argv[1])
    print(run.id, flush=True)
    i = 0
    while True:
        # each point's value is the wall time it was logged at
        run.log({"logged_at": time.time(), "i": float(i)})
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)
""")


def test_sigkill_loses_at_most_the_last_second(tmp_path, python, python_env):
    store_dir = tmp_path / "store"
    child = subprocess.Popen(
        [python, "-c", CHILD_LOGS_UNTIL_KILLED, str(store_dir)],
        env=python_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = child.stdout.readline().strip()
        assert run_id, "child did not start a run"
        time.sleep(3.0)
        store = open_store(store_dir, create=False)
        assert store.get_run(run_id).state == "running"
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    record = store.get_run(run_id)
    assert record.state == "crashed"
    logged_at = store.history(run_id, "logged_at")
    counter = store.history(run_id, "i")
    assert len(logged_at) > 1000, "the child logged for 3 s; its points must be on disk"
    # Points are a gap-free prefix of what was logged...
    np.testing.assert_array_equal(counter.value, np.arange(len(counter)))
    np.testing.assert_array_equal(counter.step, np.arange(len(counter)))
    # ...that reaches to within ~1 s of the kill.
    assert logged_at.value.max() >= killed_at - 1.0, (
        f"last durable point {killed_at - logged_at.value.max():.2f} s before kill"
    )
    store.close()


WRITER = textwrap.dedent("""
    import sys
    import nbtrack
    store, index, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run = nbtrack.init(project="concurrent", store=store, config={"writer": index})
    for step in range(count):
        run.log({"value": float(index * 1_000_000 + step), "other": float(step)})
        if step % 500 == 0:
            run.flush()  # many small transactions, so the writers really contend for the lock
    run.finish()
    print(run.id)
""")


def test_concurrent_writers_lose_nothing(tmp_path, python, python_env):
    store_dir = tmp_path / "store"
    writers, count = 4, 20_000
    procs = [
        subprocess.Popen(
            [python, "-c", WRITER, str(store_dir), str(i), str(count)],
            env=python_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "locked" not in err and "Warning" not in err, err
    store = open_store(store_dir, create=False)
    runs = store.list_runs("concurrent")
    assert len(runs) == writers
    assert sorted(int(r.name.rsplit("-", 1)[1]) for r in runs) == list(range(1, writers + 1))
    for run in runs:
        assert run.state == "finished"
        index = run.config["writer"]
        history = store.history(run.id, "value")
        np.testing.assert_array_equal(history.value, index * 1_000_000 + np.arange(count, dtype=float))
        np.testing.assert_array_equal(history.step, np.arange(count))
        assert store.metric_stats(run.id)["other"].count == count
    store.close()
