"""Issue 14's core items: live renames stored (15), no waiting on another process's lock (10), symlinks never
followed out of a run's folder (7). Real SQLite files, real processes; PostgreSQL where marked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nbtrack
from nbtrack.store import open_store


def read_in_child(python_env, location: str, run_id: str) -> dict:
    """The run as another process reads it through `nbtrack.get_run`."""
    code = (
        "import json, sys, nbtrack\n"
        "r = nbtrack.get_run(sys.argv[2], store=sys.argv[1])\n"
        "print(json.dumps({'name': r.name, 'notes': r.notes, 'tags': list(r.tags), 'state': r.state}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, location, run_id],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard only
        check=True,
    )
    return json.loads(out.stdout)


# -- 15: assignments on a live run are stored ------------------------------------------------------
def test_name_notes_tags_assignments_are_stored(store_dir, python_env):
    run = nbtrack.init(project="p", name="first", tags=("a",), notes="before")
    assert run.dir.is_dir()  # W&B's run.dir exists as soon as init returns, before any log
    run.name = "renamed"
    run.notes = "after"
    run.tags += ("b",)  # W&B's tuple style
    run.log({"loss": 1.0})
    assert run.flush()
    seen = nbtrack.get_run(run.id, store=str(store_dir))
    assert (seen.name, seen.notes, seen.tags) == ("renamed", "after", ("a", "b"))
    assert read_in_child(python_env, str(store_dir), run.id) == {
        "name": "renamed",
        "notes": "after",
        "tags": ["a", "b"],
        "state": "running",
    }
    run.tags = ["c"]  # a list, as W&B allows
    run.notes = None
    run.finish()
    assert read_in_child(python_env, str(store_dir), "renamed") == {
        "name": "renamed",
        "notes": None,
        "tags": ["c"],
        "state": "finished",
    }
    with pytest.raises(nbtrack.NbtrackError, match="finished"):
        run.name = "too-late"


def test_assignments_show_in_ls_and_show(store_dir, python_env):
    run = nbtrack.init(project="p")
    run.name = "cli-visible"
    run.tags = ("t1", "t2")
    run.notes = "a note"
    run.finish()
    ls = subprocess.run(
        [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "ls", "--json"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (listed,) = json.loads(ls.stdout)
    assert listed["name"] == "cli-visible" and listed["tags"] == ["t1", "t2"]
    show = subprocess.run(
        [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "show", "cli-visible"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Run cli-visible" in show and "t1, t2" in show and "a note" in show


def test_bad_assignments_raise_and_change_nothing(store_dir):
    run = nbtrack.init(project="p", name="keep")
    with pytest.raises(ValueError, match="run.name"):
        run.name = ""
    with pytest.raises(TypeError, match="run.tags"):
        run.tags = ("ok", 3)
    with pytest.raises(TypeError, match="run.notes"):
        run.notes = 5
    run.finish()
    stored = open_store(str(store_dir)).get_run(run.id)
    assert (stored.name, stored.tags, stored.notes) == ("keep", (), None)


@pytest.mark.slow
def test_assignments_are_stored_on_postgres(pg_server, python_env):
    url = pg_server.new_database()
    run = nbtrack.init(project="p", store=url)
    run.name = "pg-renamed"
    run.tags += ("x",)
    run.notes = "pg note"
    run.finish()
    assert read_in_child(python_env, url, run.id) == {
        "name": "pg-renamed",
        "notes": "pg note",
        "tags": ["x"],
        "state": "finished",
    }


def test_dashboard_header_shows_a_new_name(notebook, store_dir):
    from nbtrack.ui.dashboard import header_html

    run = nbtrack.init(project="p", name="old-name")
    dashboard = run._dashboard()
    run.name = "new <name>"
    assert dashboard.header.value == header_html(run, "running")
    assert "new &lt;name&gt;" in dashboard.header.value and "old-name" not in dashboard.header.value
    run.finish()


# -- 10: init never waits on another process's write lock ------------------------------------------
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()  # hold the lock until the test says so
conn.execute("COMMIT")
print("released", flush=True)
"""


class LockHolder:
    """Another process holding `BEGIN EXCLUSIVE` on the store's database until `release()`."""

    def __init__(self, db, env):
        self.db = db
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "locked"

    def still_holds(self) -> bool:
        """True when a writer from yet another connection is refused at once (the holder did not let go)."""
        import sqlite3

        probe = sqlite3.connect(self.db, isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc) and self.process.poll() is None
        finally:
            probe.close()
        return False

    def release(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "released"
        self.process.wait(timeout=60)  # a hang guard only


def init_guarded(**kwargs):
    """`nbtrack.init` on a thread; returns the run, or fails if init is still waiting after a generous 60 s (a
    hang guard: without the fix init waits for the lock for 120 s, then raises)."""
    import threading

    result: dict = {}

    def target():
        try:
            result["run"] = nbtrack.init(**kwargs)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "nbtrack.init is still waiting for the other process's lock"
    if "error" in result:
        raise result["error"]
    return result["run"]


@pytest.fixture
def locked_store(store_dir, python_env):
    open_store(str(store_dir))  # the database exists (WAL) before another process locks it
    holder = LockHolder(store_dir / "nbtrack.db", python_env)
    yield holder
    if holder.process.poll() is None:
        holder.process.kill()
        holder.process.wait(timeout=60)


def test_init_starts_while_another_process_holds_the_write_lock(locked_store, store_dir):
    from nbtrack.errors import RunNotFoundError
    from nbtrack.writer import NbtrackWarning

    with pytest.warns(NbtrackWarning, match="locked by another process"):
        run = init_guarded(project="p", config={"lr": 0.1}, tags=("t",))
    assert run.dir.is_dir()
    for i in range(200):
        run.log({"loss": 1.0 / (i + 1)})
    run.notes = "logged under the lock"
    run.summary["extra"] = 7
    assert not run.flush(timeout=3)  # nothing can be committed yet
    # All of the above happened while the other process still held the lock, and nothing reached the store:
    assert locked_store.still_holds()
    with pytest.raises(RunNotFoundError):
        open_store(str(store_dir)).get_run(run.id)
    locked_store.release()
    assert run.flush(timeout=60)  # generous: the writer retries within a few seconds of the release
    run.log({"loss": 0.001})
    run.finish()
    record = open_store(str(store_dir)).get_run(run.id)
    assert (record.state, record.name, record.tags, record.notes) == (
        "finished",
        run.name,
        ("t",),
        "logged under the lock",
    )
    assert record.config == {"lr": 0.1} and record.summary["extra"] == 7
    assert record.environment  # captured and written with the creation
    history = open_store(str(store_dir)).history(run.id, "loss")
    assert history.step.tolist() == list(range(201))
    assert history.value[-1] == 0.001


def test_lock_held_past_finish_keeps_the_run_in_a_spill_file(
    locked_store, store_dir, tmp_path, monkeypatch, python_env
):
    from nbtrack.writer import NbtrackWarning

    monkeypatch.setenv("NBTRACK_FINAL_FLUSH_SECONDS", "1")
    monkeypatch.setenv("NBTRACK_SPILL_DIR", str(tmp_path / "spill"))
    with pytest.warns(NbtrackWarning):
        run = init_guarded(project="p", name="spilled")
        for i in range(50):
            run.log({"acc": i / 50})
        run.finish()  # waits its final-flush deadline, then spills
    assert locked_store.still_holds()
    (spill,) = (tmp_path / "spill").glob("*.json")
    assert run._writer.spilled == str(spill)
    locked_store.release()
    subprocess.run(
        [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "push", str(spill)],
        env=python_env,
        check=True,
        capture_output=True,
        timeout=120,  # a hang guard only
    )
    record = open_store(str(store_dir)).get_run("spilled")
    assert record.id == run.id and record.state == "finished" and record.ended == run.ended
    assert open_store(str(store_dir)).history(run.id, "acc").value.tolist() == [i / 50 for i in range(50)]
    assert not spill.exists()
