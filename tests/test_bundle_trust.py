"""Bundles that can be trusted (#14 items 3-7), on real SQLite files, real PostgreSQL and real child processes:
imports are all or nothing (two at once, killed midway, refused), an id is never a name, times and environments
are checked on the way in and every reader survives a bad record already stored, decompression is bounded, and
no symbolic link is followed out of a run's folder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from nbtrack.bundle import BundleError, export_runs, import_bundle
from nbtrack.errors import NbtrackError
from nbtrack.store import open_store
from nbtrack.store.base import SeriesBatch, WriteBatch

ROOT = Path(__file__).resolve().parent.parent
HANG = 120  # seconds: a guard against a hang, never the thing tested


def wait_for(condition, what):
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def a_run(project="p", name=None, points=10, files=None, tmp=None, store=None):
    """A finished run with `points` points of "loss", an event and the given {name: bytes} files."""
    run = nbtrack.init(project=project, name=name, config={"lr": 0.1}, store=store)
    for i in range(points):
        run.log({"loss": 1.0 / (i + 1)})
    run.event("note", "kept", step=1)
    for fname, data in (files or {}).items():
        source = tmp / fname
        source.write_bytes(data)
        run.save(source)
    run.finish()
    return run.id


def big_run(store, points):
    """A finished run with `points` points, written straight through the store (logging them would be slow)."""
    now = time.time()
    record = store.create_run(
        run_id="bigrun01",
        project="p",
        name="big",
        config={},
        tags=(),
        notes=None,
        created=now,
        host="elsewhere",
        pid=1,
    )
    step = list(range(points))
    times = (now + np.arange(points) / 1e4).tolist()
    values = np.sin(np.arange(points)).tolist()
    store.write_batch(WriteBatch(record.id, series=[SeriesBatch("loss", step, times, values)]))
    (store.run_dir(record.id)).mkdir(parents=True, exist_ok=True)
    for n in range(3):
        (store.run_dir(record.id) / f"f{n}.bin").write_bytes(os.urandom(1 << 20))
    store.write_batch(WriteBatch(record.id, state="finished", ended=now + 5, heartbeat=now + 5))
    return record.id


def assert_complete(source, target, run_id):
    """The run in `target` is the run in `source`: record, every point, events, files."""
    a, b = source.get_run(run_id), target.get_run(run_id)
    assert (a.state, a.created, a.ended, a.config, a.summary) == (
        b.state,
        b.created,
        b.ended,
        b.config,
        b.summary,
    )
    assert list(source.metric_stats(run_id)) == list(target.metric_stats(run_id))
    for key in source.metric_stats(run_id):
        ha, hb = source.history(run_id, key), target.history(run_id, key)
        assert np.array_equal(ha.step, hb.step) and ha.value.tobytes() == hb.value.tobytes()
    assert repr(source.events(run_id)) == repr(target.events(run_id))
    assert source.list_files(run_id) == target.list_files(run_id)
    for f in source.list_files(run_id):
        assert (source.run_dir(run_id) / f.name).read_bytes() == (
            target.run_dir(run_id) / f.name
        ).read_bytes()


def members_of(path):
    with zipfile.ZipFile(path) as bundle:
        members = {name: bundle.read(name) for name in bundle.namelist()}
    return members, json.loads(members.pop("manifest.json"))


def write_bundle(path, members, manifest, *, sign=True):
    if sign:
        manifest["members"] = {
            n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in members.items()
        }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        bundle.writestr("manifest.json", json.dumps(manifest))
    return path


def forge(path, out, *, record=None, events=None, document=None, run_id=None, sweep=None, extra=None):
    """A re-signed copy of the one-run bundle at `path`: `record(dict)`, `events(list)`, `document(dict)`,
    `sweep(dict)` edit run.json's and the sweep's JSON in place; `run_id` renames the run; `extra` adds members."""
    members, manifest = members_of(path)
    (old,) = [r["id"] for r in manifest["runs"]]
    doc = json.loads(members[f"runs/{old}/run.json"])
    for change, part in ((record, doc["record"]), (events, doc["events"]), (document, doc)):
        if change:
            change(part)
    members[f"runs/{old}/run.json"] = json.dumps(doc).encode()
    for item in doc["files"]:  # a file the edit added gets a member
        members.setdefault(f"runs/{old}/files/{item['name']}", b"x")
    for name in [n for n in members if n.startswith("sweeps/")]:
        sweep_doc = json.loads(members[name])
        if sweep:
            sweep(sweep_doc)
        members[name] = json.dumps(sweep_doc).encode()
    if run_id is not None:
        doc["record"]["id"] = run_id
        members[f"runs/{old}/run.json"] = json.dumps(doc).encode()
        members = {n.replace(f"runs/{old}/", f"runs/{run_id}/"): d for n, d in members.items()}
        manifest["runs"][0]["id"] = run_id
    members.update(extra or {})
    return write_bundle(out, members, manifest)


def snapshot(store_dir):
    """Every row of every table, and every file under the store: what "changes nothing" compares."""
    db = sqlite3.connect(store_dir / "nbtrack.db")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    rows = {t: sorted(map(repr, db.execute(f"SELECT * FROM {t}"))) for t in tables}
    db.close()
    files = sorted(
        (str(p.relative_to(store_dir)), p.read_bytes())
        for p in store_dir.rglob("*")
        if p.is_file() and p.parent != store_dir
    )
    return rows, files


def child(python, python_env, code, *args):
    return subprocess.Popen(
        [python, "-c", textwrap.dedent(code), *map(str, args)],
        env=python_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


IMPORT = """
    import sys
    from nbtrack.bundle import import_bundle
    result = import_bundle(sys.argv[1], sys.argv[2])
    print("imported", *result.imported, "skipped", *result.skipped)
"""


# -- item 3: all or nothing -------------------------------------------------------------------------
def test_two_imports_of_one_bundle_at_once_write_the_run_once(store_dir, tmp_path, python, python_env):
    rid = a_run(points=2000, files={"model.json": b"{}"}, tmp=tmp_path)
    bundle = export_runs([rid], tmp_path / "b.nbtrack.zip", open_store(store_dir))
    target_dir = tmp_path / "target"
    open_store(target_dir).close()
    # Hold the target's write lock so that both imports check the store (and find it without the run) before
    # either can write: the interleaving in which the old import's rollback deleted the other's run.
    lock = sqlite3.connect(target_dir / "nbtrack.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    procs = [child(python, python_env, IMPORT, bundle, target_dir) for _ in range(2)]
    files = target_dir / "files"
    wait_for(lambda: len([p for p in files.glob(".import-*")]) == 2, "both imports to stage the run's files")
    lock.execute("ROLLBACK")
    lock.close()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=HANG)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert set(outputs) == {f"imported skipped {rid}", f"imported {rid} skipped"}
    target = open_store(target_dir)
    assert [r.id for r in target.list_runs()] == [rid]
    assert_complete(open_store(store_dir), target, rid)
    assert sorted(p.name for p in files.iterdir()) == [rid]  # no staging folder left behind


def test_two_imports_at_once_on_postgresql(pg_server, store_dir, tmp_path, python, python_env, monkeypatch):
    import psycopg

    rid = a_run(points=2000, files={"model.json": b"{}"}, tmp=tmp_path)
    bundle = export_runs([rid], tmp_path / "b.nbtrack.zip", open_store(store_dir))
    url = pg_server.new_database()
    python_env["NBTRACK_FILES"] = str(tmp_path / "pg-files")
    monkeypatch.setenv("NBTRACK_FILES", python_env["NBTRACK_FILES"])
    if True:
        open_store(url).close()
        with psycopg.connect(url) as lock:  # no run can be inserted until this transaction ends
            lock.execute("LOCK TABLE runs IN EXCLUSIVE MODE")
            procs = [child(python, python_env, IMPORT, bundle, url) for _ in range(2)]
            files = tmp_path / "pg-files"
            wait_for(lambda: len(list(files.glob(".import-*"))) == 2, "both imports to stage the run's files")
            lock.rollback()
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=HANG)
            assert proc.returncode == 0, err
            outputs.append(out.strip())
        assert set(outputs) == {f"imported skipped {rid}", f"imported {rid} skipped"}
        target = open_store(url)
        assert [r.id for r in target.list_runs()] == [rid]
        assert_complete(open_store(store_dir), target, rid)
        assert sorted(p.name for p in files.iterdir()) == [rid]
        target.close()


def _staged(files):
    return any(p.is_file() for p in files.glob(".import-*/*"))


def _wal_grew(target_dir, before):
    wal = target_dir / "nbtrack.db-wal"
    return wal.exists() and wal.stat().st_size > before + (2 << 20)


def _row_exists(target_dir, rid):
    db = sqlite3.connect(f"file:{target_dir / 'nbtrack.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT 1 FROM runs WHERE id = ?", (rid,)).fetchone() is not None
    finally:
        db.close()


# Moments an import is killed at, each seen from outside the process: its files being staged, waiting for the
# write lock, its transaction under way (the WAL file growing), its run row visible to other readers.
KILL_POINTS = ("files staged", "waiting for the lock", "mid-transaction", "run row visible")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_an_import_killed_midway_is_finished_by_the_next(point, store_dir, tmp_path, python, python_env):
    source = open_store(store_dir)
    rid = big_run(source, 600_000)
    bundle = export_runs([rid], tmp_path / "b.nbtrack.zip", source)
    target_dir = tmp_path / "target"
    open_store(target_dir).close()
    files = target_dir / "files"
    lock = None
    if point == "waiting for the lock":
        lock = sqlite3.connect(target_dir / "nbtrack.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
    wal = target_dir / "nbtrack.db-wal"
    before = wal.stat().st_size if wal.exists() else 0
    proc = child(python, python_env, IMPORT, bundle, target_dir)
    if point == "files staged":
        wait_for(lambda: _staged(files) or proc.poll() is not None, "files to be staged")
    elif point == "waiting for the lock":
        wait_for(
            lambda: sum(p.stat().st_size for p in files.glob(".import-*/*")) == 3 << 20, "all files staged"
        )
    elif point == "mid-transaction":
        wait_for(lambda: _wal_grew(target_dir, before) or proc.poll() is not None, "the WAL to grow")
    else:
        wait_for(lambda: _row_exists(target_dir, rid) or proc.poll() is not None, "the run's row")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=HANG)
    if lock is not None:
        lock.execute("ROLLBACK")
        lock.close()
    target = open_store(target_dir)
    assert target.list_runs() == [] or target.get_run(rid).state == "finished"
    result = import_bundle(bundle, target)
    assert result.imported + result.skipped == [rid]
    assert_complete(source, target, rid)
    assert sorted(p.name for p in files.iterdir()) == [rid]  # the killed import's staging folder is gone


def _sweep_bundle(store_dir, tmp_path):
    def trial(config):
        nbtrack.log({"loss": config["x"]})

    spec = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1.0, 2.0]}}}
    swept = nbtrack.sweep(spec, trial, project="sw")
    return export_runs([swept.runs[0].id], tmp_path / "s.nbtrack.zip", open_store(store_dir)), swept


def _huge_grid_index(doc):
    doc["trials"][1]["grid_index"] = 10**30


def _huge_pid(record):
    record["pid"] = 10**30


def _file_and_folder(doc):
    doc["files"].append({"name": doc["files"][0]["name"] + "/inner", "size": 1})


REFUSALS = {
    "a trial's grid index past 64 bits": (dict(sweep=_huge_grid_index), "grid index"),
    "a pid past 64 bits": (dict(record=_huge_pid), "pid"),
    "a file that is also a folder": (dict(document=_file_and_folder), "listed as a file and as the folder"),
    "a created time of 1e300": (dict(record=lambda r: r.update(created=1e300)), "created time"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_refused_import_changes_nothing(kind, store_dir, tmp_path):
    bundle, swept = _sweep_bundle(store_dir, tmp_path)
    change, message = REFUSALS[kind]
    bad = forge(bundle, tmp_path / "bad.zip", **change)
    target_dir = tmp_path / "target"
    target = open_store(target_dir)
    a_run(project="local", store=target_dir)  # the target has something to lose
    before = snapshot(target_dir)
    with pytest.raises(BundleError, match=message) as caught:
        import_bundle(bad, target)
    assert isinstance(caught.value, NbtrackError) and "Nothing was imported" in str(caught.value)
    assert snapshot(target_dir) == before


def test_a_sweep_that_cannot_be_merged_is_refused_before_any_run_is_written(store_dir, tmp_path):
    bundle, swept = _sweep_bundle(store_dir, tmp_path)
    target_dir = tmp_path / "target"
    target = open_store(target_dir)
    # The target has a sweep with the same id whose trial 0 had other parameters.
    source = open_store(store_dir)
    record = source.get_sweep(swept.id)
    target.create_sweep(
        sweep_id=record.id,
        project=record.project,
        name=record.name,
        config=record.config,
        method=record.method,
        created=record.created,
    )
    target.claim_trial(record.id, "w", lambda trials: ({"x": 9.0}, None))
    before = snapshot(target_dir)
    with pytest.raises(BundleError, match="other parameters.*Nothing was imported"):
        import_bundle(bundle, target)
    assert snapshot(target_dir) == before


@pytest.mark.parametrize("kind", ["a pid past 64 bits", "a file that is also a folder"])
def test_the_cli_refuses_with_a_message_not_a_traceback(kind, store_dir, tmp_path, python, python_env):
    bundle, _swept = _sweep_bundle(store_dir, tmp_path)
    change, message = REFUSALS[kind]
    bad = forge(bundle, tmp_path / "bad.zip", **change)
    done = subprocess.run(
        [python, "-m", "nbtrack", "--store", str(tmp_path / "t"), "import", str(bad)],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith(f"nbtrack: {bad} is not a valid nbtrack bundle: ") and message in done.stderr
    )
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
