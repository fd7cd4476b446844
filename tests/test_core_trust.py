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
    from nbtrack.errors import NbtrackWarning, RunNotFoundError

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
    from nbtrack.errors import NbtrackWarning

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


# -- 7: symlinks in a run's folder are never followed out of it -------------------------------------
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- fake-secret-7f3a"


@pytest.fixture
def fake_home(tmp_path):
    """A stand-in for ~/.ssh/id_rsa and a private folder, under tmp_path (the real home is never read)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_bytes(SECRET)
    (home / "private").mkdir()
    (home / "private" / "notes.txt").write_bytes(SECRET + b" (folder)")
    return home


def plant_links(folder, home):
    """Every kind of link that points out of `folder`, plus one that stays inside and one that dangles."""
    import os

    (folder / "real.txt").write_text("a real file")
    os.symlink(home / ".ssh" / "id_rsa", folder / "id_rsa.txt")  # a link to a file outside
    os.symlink(home / "private", folder / "private")  # a link to a folder outside
    os.symlink(home / ".ssh" / "id_rsa", folder / ".hop2")
    os.symlink(folder / ".hop2", folder / "chain.txt")  # a chain: link -> link -> outside
    os.symlink("real.txt", folder / "inside.txt")  # relative, stays inside
    os.symlink(home / "missing", folder / "dangling.txt")
    os.symlink("../../../home/.ssh/id_rsa", folder / "dotdot.txt")  # '..' inside the link


def send_from_browser(view, **content):
    """What js/files.js sends on a click, delivered through the widget's comm handler."""
    view._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def comm_bytes() -> bytes:
    from tests.widget_helpers import RecordingComm

    out = b""
    for message in RecordingComm.log:
        out += json.dumps(message.data).encode()
        out += b"".join(bytes(memoryview(b).cast("B")) for b in message.buffers)
    return out


def all_bytes_under(root) -> bytes:
    """Every byte of every regular file under `root`, links not followed."""
    import os

    data = b""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                with open(path, "rb") as file:
                    data += file.read()
    return data


def test_files_pane_never_serves_a_link_target(notebook, store_dir, fake_home):
    import os

    from tests.widget_helpers import RecordingComm

    run = nbtrack.init(project="p")
    plant_links(run.dir, fake_home)
    (run.dir / "swap.txt").write_text("listed while it was a file")
    pane = run._dashboard().files
    pane.refresh(force=True)
    listed = {f["name"] for f in pane.view.files}
    assert {"real.txt", "swap.txt"} <= listed
    assert not listed & {
        "id_rsa.txt",
        "private/notes.txt",
        "chain.txt",
        "inside.txt",
        "dangling.txt",
        ".hop2",
    }
    RecordingComm.log.clear()
    send_from_browser(pane.view, request="download", name="real.txt")
    assert RecordingComm.log[-1].buffers and bytes(RecordingComm.log[-1].buffers[0]) == b"a real file"
    names = ["id_rsa.txt", "private/notes.txt", "chain.txt", "dotdot.txt", "../home/.ssh/id_rsa", ".hop2"]
    names += [str(fake_home / ".ssh" / "id_rsa"), "real.txt/../id_rsa.txt", "./id_rsa.txt"]
    for name in names:
        for request in ("download", "preview"):
            send_from_browser(pane.view, request=request, name=name)
    # A file listed a moment ago and then replaced by a link is refused when the request arrives.
    (run.dir / "swap.txt").unlink()
    os.symlink(fake_home / ".ssh" / "id_rsa", run.dir / "swap.txt")
    send_from_browser(pane.view, request="download", name="swap.txt")
    send_from_browser(pane.view, request="preview", name="swap.txt")
    assert b"fake-secret" not in comm_bytes() and "fake-secret" not in pane.view.preview
    run.finish()


def test_open_run_file_refuses_every_way_out(tmp_path, fake_home):
    """The check the pane makes when a request arrives (after its listing): through no link, at no step."""
    import os

    from nbtrack.store.base import open_run_file

    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    plant_links(root, fake_home)
    (root / "sub" / "ok.txt").write_text("ok")
    os.symlink(root / "sub", root / "linked-sub")  # a link to a folder inside: still a link
    os.mkfifo(root / "fifo")
    with open_run_file(root, "sub/ok.txt") as file:
        assert file.read() == b"ok"
    refused = ["id_rsa.txt", "private/notes.txt", "chain.txt", "inside.txt", "dangling.txt", "dotdot.txt"]
    refused += ["linked-sub/ok.txt", "../run/real.txt", "sub/../real.txt", "/etc/passwd", "", "sub", "fifo"]
    for name in refused:
        with pytest.raises(FileNotFoundError):
            open_run_file(root, name).close()


def test_stored_dashboard_never_reads_through_links(notebook, store_dir, fake_home):
    import os

    from nbtrack.ui.stored import stored_dashboard

    run = nbtrack.init(project="p")
    run.log({"loss": 1.0})
    run.finish()
    for name in ("output.log", "model.json"):
        (run.dir / name).unlink(missing_ok=True)
        os.symlink(fake_home / ".ssh" / "id_rsa", run.dir / name)
    plant_links(run.dir, fake_home)
    dashboard = stored_dashboard(nbtrack.get_run(run.id))
    pane = dashboard.files
    assert "output.log" not in {f["name"] for f in pane.view.files}
    for name in ("output.log", "model.json", "id_rsa.txt", "private/notes.txt", "chain.txt"):
        send_from_browser(pane.view, request="download", name=name)
        send_from_browser(pane.view, request="preview", name=name)
    assert b"fake-secret" not in comm_bytes()
    assert b"fake-secret" not in dashboard.snapshot_html().encode()
    dashboard.close("finished")


def test_log_artifact_copies_links_as_links_never_their_targets(store_dir, fake_home, tmp_path):
    import os

    source = tmp_path / "data"
    source.mkdir()
    plant_links(source, fake_home)
    (source / "sub").mkdir()
    (source / "sub" / "deep.txt").write_text("deep")
    run = nbtrack.init(project="p")
    target = run.log_artifact(source)
    assert (target / "real.txt").read_text() == "a real file" and (target / "sub" / "deep.txt").is_file()
    for link in ("id_rsa.txt", "private", "chain.txt", "inside.txt", "dangling.txt", "dotdot.txt"):
        assert (target / link).is_symlink(), link  # the link itself, as cp -r copies it
        assert os.readlink(target / link) == os.readlink(source / link)
    assert SECRET not in all_bytes_under(run.dir)
    files = {f.name for f in run.store.list_files(run.id)}
    assert "artifacts/data/real.txt" in files and not any("id_rsa" in f or "private" in f for f in files)
    # A second artifact under the same name never writes through a link the first one left.
    again = tmp_path / "again" / "data"
    again.mkdir(parents=True)
    (again / "id_rsa.txt").write_text("replaced")
    (again / "private").mkdir()
    (again / "private" / "notes.txt").write_text("replaced too")
    run.log_artifact(again)
    assert (fake_home / ".ssh" / "id_rsa").read_bytes() == SECRET
    assert (fake_home / "private" / "notes.txt").read_bytes() == SECRET + b" (folder)"
    assert (target / "id_rsa.txt").read_text() == "replaced" and not (target / "id_rsa.txt").is_symlink()
    # run.save onto a link in the run's folder replaces the link, not its target.
    os.symlink(fake_home / ".ssh" / "id_rsa", run.dir / "saved.txt")
    note = tmp_path / "note.txt"
    note.write_text("saved")
    with pytest.raises(ValueError, match="outside the run's folder"):
        run.save(note, name="saved.txt")  # the name resolves through the link to outside
    for bad in ("../escape.txt", "a/../../escape.txt", str(tmp_path / "abs.txt")):
        with pytest.raises(ValueError, match="leave the run's folder"):
            run.log_artifact(note, name=bad)
    assert (fake_home / ".ssh" / "id_rsa").read_bytes() == SECRET and not (tmp_path / "escape.txt").exists()
    run.finish()


def test_a_fit_that_starts_its_own_run_trains_under_another_process_lock(locked_store, store_dir):
    from nbtrack.errors import NbtrackWarning
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import keras, tiny_data, tiny_model

    seen = []

    class Releaser(keras.callbacks.Callback):
        """Notes, each epoch, that the other process still holds the lock; lets it go as training ends
        (it runs before the nbtrack callback, which then finishes the run)."""

        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, locked_store.still_holds(), tracker.run.step))

        def on_train_end(self, logs=None):
            locked_store.release()

    tracker = NbtrackCallback(display=False)
    x, y = tiny_data(64)
    with pytest.warns(NbtrackWarning, match="locked by another process"):
        tiny_model().fit(x, y, batch_size=16, epochs=3, callbacks=[Releaser(), tracker], verbose=0)
    assert [(epoch, held) for epoch, held, _ in seen] == [(0, True), (1, True), (2, True)]
    assert [step for *_, step in seen] == [4, 8, 12]  # it was logging every batch while the lock was held
    run = tracker.run
    record = open_store(str(store_dir)).get_run(run.id)
    assert record.state == "finished" and record.config["epochs"] == 3
    assert open_store(str(store_dir)).history(run.id, "batch/loss").step.tolist() == list(range(12))
    assert open_store(str(store_dir)).history(run.id, "epoch").value.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.slow
def test_init_starts_while_a_postgres_session_locks_the_tables(pg_server, monkeypatch, tmp_path):
    import psycopg

    from nbtrack.errors import NbtrackWarning

    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "files"))
    url = pg_server.new_database()
    open_store(url).close()  # the schema exists before the other session locks it
    holder = psycopg.connect(url)
    holder.execute("LOCK TABLE runs, projects IN EXCLUSIVE MODE")  # reads go on, writes wait
    try:
        with pytest.warns(NbtrackWarning, match="locked by another session"):
            run = init_guarded(project="p", store=url)
        for i in range(20):
            run.log({"loss": float(i)})
        assert not run.flush(timeout=3)
        assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # still holding
    finally:
        holder.commit()
        holder.close()
    assert run.flush(timeout=60)  # a hang guard only
    run.finish()
    store = open_store(url)
    assert store.get_run(run.id).state == "finished"
    assert store.history(run.id, "loss").value.tolist() == [float(i) for i in range(20)]
    store.close()


def test_init_in_a_notebook_shows_its_dashboard_under_the_lock(notebook, locked_store, store_dir):
    from nbtrack.errors import NbtrackWarning

    with pytest.warns(NbtrackWarning, match="locked by another process"):
        run = init_guarded(project="p", name="nb-run")
    assert len(notebook) == 1 and "nb-run" in run._dashboard().header.value  # shown while the lock is held
    run.log({"loss": 0.5})
    assert locked_store.still_holds()
    locked_store.release()
    run.finish()
    assert open_store(str(store_dir)).get_run("nb-run").state == "finished"


def test_init_does_not_wait_to_finish_the_previous_run_under_the_lock(store_dir, python_env, monkeypatch):
    from nbtrack.errors import NbtrackWarning
    from nbtrack.run.writer import wait_for_background_writers

    monkeypatch.setenv("NBTRACK_FINAL_FLUSH_SECONDS", "300")  # finish's patience, far past init's hang guard
    first = nbtrack.init(project="p", name="first")
    first.log({"loss": 1.0})
    assert first.flush()
    holder = LockHolder(store_dir / "nbtrack.db", python_env)
    try:
        first.log({"loss": 0.5})  # logged while the lock is held: first's final write must wait for it
        with pytest.warns(NbtrackWarning, match="locked by another process"):
            second = init_guarded(project="p", name="second")  # finishes `first` on the way
        assert first.state == "finished" and holder.still_holds()
        assert open_store(str(store_dir)).get_run("first").state == "running"  # its end is still pending
        second.log({"loss": 2.0})
    finally:
        holder.release()
    wait_for_background_writers()  # what the process does at exit
    second.finish()
    store = open_store(str(store_dir))
    assert store.get_run("first").state == "finished"
    assert store.history(first.id, "loss").value.tolist() == [1.0, 0.5]
    assert store.get_run("second").state == "finished"


def test_list_files_skips_a_file_that_goes_away_while_it_is_listed(store_dir, monkeypatch):
    """The environment capture writes `.requirements.txt.partial` and renames it while the Files pane lists the
    folder: a name that vanishes between the walk and its lstat is skipped, not a FileNotFoundError that switches
    the live dashboard off (seen in a full run: the million-step dashboard test lost its view that way)."""
    import os

    run = nbtrack.init(project="p")
    run.finish()
    store = open_store(store_dir)
    (store.run_dir(run.id) / "kept.txt").write_text("kept")
    real_walk = os.walk

    def walk_seeing_a_vanished_file(top, *args, **kwargs):
        for folder, dirs, names in real_walk(top, *args, **kwargs):
            yield folder, dirs, [*names, ".requirements.txt.partial"]  # listed, then renamed away

    monkeypatch.setattr(os, "walk", walk_seeing_a_vanished_file)
    names = [f.name for f in store.list_files(run.id)]
    assert "kept.txt" in names and ".requirements.txt.partial" not in names
