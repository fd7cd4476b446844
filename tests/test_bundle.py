"""Bundles and sync (#8) on real SQLite stores: lossless round trips, idempotence, corrupt and hostile bundles,
rollback of a failed import, store-to-store sync, and the CLI."""

from __future__ import annotations

import hashlib
import json
import math
import zipfile

import numpy as np
import pytest

import nbtrack
from nbtrack.cli import main
from nbtrack.errors import NbtrackError, RunNotFoundError
from nbtrack.share.bundle import BundleError, ImportResult, export_runs, import_bundle, sync
from nbtrack.store import open_store

BIG = 100_000


def curve(config):
    """A sweep trial: a short learning curve that Hyperband may stop."""
    from nbtrack.run import current_run

    run = current_run()
    for epoch in range(4):
        nbtrack.log({"epoch": epoch, "val_loss": 1.0 / (epoch + 1) + config["quality"]})
        if run.stop_requested:
            break


HYPERBAND = {
    "method": "grid",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {"quality": {"values": [0.0, 0.1, 0.2, 5.0, 6.0, 7.0]}},
    "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
}


@pytest.fixture
def source(store_dir, tmp_path, monkeypatch):
    """A store with a rich run, a plain failed run in another project, and a sweep's runs. The system sampler is
    off: the run logs its own system/* keys, and samples taken at wall-clock moments would add points to them
    whose number and place depend on the machine's load (seen as a rare mismatch in a loaded full run)."""
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")
    rich = nbtrack.init(
        project="vision",
        name="rich",
        config={"lr": 1e-3, "layers": [64, 32], "nested": {"nan": math.nan, "inf": -math.inf}},
        tags=["baseline", "bundle"],
        notes="the one with everything",
    )
    special = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e-310]
    for i, value in enumerate(special):
        rich.log({"loss": value, "system/cpu_percent": 10.0 + i, "system/gpu/0/memory": float(i)}, step=i * 7)
    for i in range(BIG):
        rich.log({"big": math.sin(i) if i % 1000 else math.nan}, step=10_000 + i * 3)
    rich.event("lr_change", "lr halved", step=12, lr=5e-4, why=None)
    rich.summary["best"] = math.inf
    (tmp_path / "model.json").write_text('{"layers": 2}')
    rich.save(tmp_path / "model.json")
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 40)
    rich.log_artifact(tmp_path / "weights.bin", name="ckpt/weights.bin")
    print("hello from the run")
    rich.finish()
    plain = nbtrack.init(project="other", name="rich")  # the same name in another project
    plain.log({"accuracy": 0.5})
    plain.finish(exit_code=1)
    swept = nbtrack.sweep(HYPERBAND, curve, project="sweeps")
    return {"rich": rich.id, "plain": plain.id, "sweep": swept.id, "sweep_runs": [r.id for r in swept.runs]}


def stats_tuple(stats):
    return {
        k: (s.count, repr(s.last), repr(s.min), repr(s.max), s.first_step, s.last_step)
        for k, s in stats.items()
    }


def assert_same_run(a, b, run_id):
    ra, rb = a.get_run(run_id), b.get_run(run_id)
    assert json.dumps(ra.__dict__, sort_keys=True, default=repr) == json.dumps(
        rb.__dict__, sort_keys=True, default=repr
    )
    assert stats_tuple(a.metric_stats(run_id)) == stats_tuple(b.metric_stats(run_id))
    for key in a.metric_stats(run_id):
        ha, hb = a.history(run_id, key), b.history(run_id, key)
        assert np.array_equal(ha.step, hb.step)
        assert np.array_equal(ha.time, hb.time)
        assert ha.value.tobytes() == hb.value.tobytes()  # NaN, ±inf, -0.0 and subnormals bit for bit
    assert repr(a.events(run_id)) == repr(b.events(run_id))
    files_a, files_b = a.list_files(run_id), b.list_files(run_id)
    assert files_a == files_b
    for f in files_a:
        assert (a.run_dir(run_id) / f.name).read_bytes() == (b.run_dir(run_id) / f.name).read_bytes()


def assert_same_sweep(a, b, sweep_id):
    assert a.get_sweep(sweep_id) == b.get_sweep(sweep_id)
    assert a.trials(sweep_id) == b.trials(sweep_id)


def test_export_then_import_into_an_empty_store_loses_nothing(source, store_dir, tmp_path):
    src = open_store(store_dir)
    ids = [source["rich"], source["plain"], source["sweep_runs"][1]]
    path = export_runs(ids, tmp_path / "out" / "runs.nbtrack.zip", src)
    assert path.is_file()
    with zipfile.ZipFile(path) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        names = set(bundle.namelist())
    assert manifest["format"] == "nbtrack-bundle" and manifest["version"] == 1
    assert manifest["nbtrack_version"] == nbtrack.__version__ and manifest["created"].endswith("Z")
    assert [r["id"] for r in manifest["runs"]] == ids and manifest["sweeps"] == [source["sweep"]]
    assert f"runs/{source['rich']}/files/artifacts/ckpt/weights.bin" in names
    assert f"runs/{source['rich']}/files/output.log" in names
    assert set(manifest["members"]) == names - {"manifest.json"}

    target = open_store(tmp_path / "target")
    result = import_bundle(path, target)
    assert result == ImportResult(imported=ids, skipped=[], sweeps=[source["sweep"]])
    for rid in ids:
        assert_same_run(src, target, rid)
    assert target.history(source["rich"], "big").value.size == BIG
    assert (target.run_dir(source["rich"]) / "output.log").read_text().strip() == "hello from the run"
    assert_same_sweep(src, target, source["sweep"])
    trials = target.trials(source["sweep"])
    assert any(t.rungs for t in trials) and {t.state for t in trials} == {"finished", "stopped-early"}
    # Only one of the sweep's runs came along; its trial still points at it, the others at runs not here.
    assert {t.run_id for t in trials} == set(source["sweep_runs"])

    again = import_bundle(path, target)
    assert again.imported == [] and again.skipped == ids
    assert len(target.list_runs()) == 3 and len(target.trials(source["sweep"])) == 6


def test_a_second_bundle_of_the_same_sweep_adds_its_runs(source, store_dir, tmp_path):
    src = open_store(store_dir)
    first, rest = source["sweep_runs"][0], source["sweep_runs"][1:]
    export_runs([first], tmp_path / "a.zip", src)
    export_runs(rest, tmp_path / "b.zip", src)
    target = open_store(tmp_path / "target")
    import_bundle(tmp_path / "a.zip", target)
    assert import_bundle(tmp_path / "b.zip", target).imported == rest
    for rid in source["sweep_runs"]:
        assert_same_run(src, target, rid)
    assert_same_sweep(src, target, source["sweep"])


def test_export_by_name_latest_and_run_objects(source, store_dir, tmp_path):
    src = open_store(store_dir)
    with pytest.raises(RunNotFoundError, match="2 runs are named 'rich'"):
        export_runs(["rich"], tmp_path / "x.zip", src)
    path = export_runs(nbtrack.runs(project="vision", store=src), tmp_path / "x.zip", src)
    assert [r["id"] for r in json.loads(zipfile.ZipFile(path).read("manifest.json"))["runs"]] == [
        source["rich"]
    ]
    newest = nbtrack.init(project="late", name="newest")  # created after every run of the fixture
    newest.log({"x": 1.0})
    newest.finish()
    latest = export_runs(["latest"], tmp_path / "latest.zip", src)
    manifest = json.loads(zipfile.ZipFile(latest).read("manifest.json"))
    assert [r["id"] for r in manifest["runs"]] == [newest.id]
    fresh = open_store(tmp_path / "fresh")
    assert import_bundle(latest, store=fresh).imported == [newest.id]
    assert [r.name for r in fresh.list_runs()] == ["newest"]
    fresh.close()
    with pytest.raises(BundleError, match="Nothing to export"):
        export_runs([], tmp_path / "y.zip", src)
    with pytest.raises(RunNotFoundError, match="nope"):
        export_runs(["nope"], tmp_path / "y.zip", src)
    assert not (tmp_path / "y.zip").exists()


# -- corrupt and hostile bundles --------------------------------------------------------------------
def rewrite(path, change, *, checksums=True):
    """Rewrite the bundle at `path`: `change(members)` edits the {name: bytes} dict; the manifest is re-signed."""
    with zipfile.ZipFile(path) as bundle:
        members = {name: bundle.read(name) for name in bundle.namelist()}
    manifest = json.loads(members.pop("manifest.json"))
    change(members, manifest)
    if checksums:
        manifest["members"] = {
            n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in members.items()
        }
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        bundle.writestr("manifest.json", json.dumps(manifest))


def flip_a_value(members, manifest):
    name = next(n for n in members if n.endswith("value.npy"))
    data = bytearray(members[name])
    data[-1] ^= 0xFF
    members[name] = bytes(data)


def bad_run_json(members, manifest):
    name = next(n for n in members if n.endswith("run.json"))
    members[name] = members[name][:-5]


def evil_member(members, manifest):
    members["../evil.txt"] = b"escaped"


def evil_file_entry(members, manifest):
    name = next(n for n in members if n.endswith("run.json"))
    document = json.loads(members[name])
    document["files"].append({"name": "../../../evil.txt", "size": 7})
    members[name] = json.dumps(document).encode()


def evil_run_id(members, manifest):
    manifest["runs"].append({"id": "../../escape"})


def missing_npy(members, manifest):
    del members[next(n for n in members if n.endswith("time.npy"))]


def future(members, manifest):
    manifest["version"] = 2


def _replace(path, name, data):
    with zipfile.ZipFile(path) as bundle:
        members = {n: bundle.read(n) for n in bundle.namelist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as bundle:
        for n, d in members.items():
            bundle.writestr(n, d)


def _drop_manifest(path):
    with zipfile.ZipFile(path) as bundle:
        members = {n: bundle.read(n) for n in bundle.namelist() if n != "manifest.json"}
    with zipfile.ZipFile(path, "w") as bundle:
        for n, d in members.items():
            bundle.writestr(n, d)


CORRUPTIONS = {
    "not a zip": (lambda p: p.write_bytes(b"just some text, not a zip"), "not a readable zip"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a readable zip"),
    "no manifest": (_drop_manifest, "has no manifest.json"),
    "manifest not JSON": (
        lambda p: _replace(p, "manifest.json", b"{not json"),
        "manifest.json is not valid JSON",
    ),
    "checksum mismatch": (lambda p: rewrite(p, flip_a_value, checksums=False), "does not match its sha256"),
    "member missing": (lambda p: rewrite(p, missing_npy, checksums=False), "missing runs/"),
    "run.json not JSON": (lambda p: rewrite(p, bad_run_json), "run.json is not valid JSON"),
    "zip-slip member": (lambda p: rewrite(p, evil_member), "absolute or leaves the bundle"),
    "zip-slip file entry": (lambda p: rewrite(p, evil_file_entry), "leaves the run's folder"),
    "zip-slip run id": (lambda p: rewrite(p, evil_run_id), "unusable id"),
    "future version": (lambda p: rewrite(p, future), "format version 2.*Upgrade"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_or_hostile_bundle_imports_nothing(kind, store_dir, tmp_path):
    run = nbtrack.init(project="p")
    run.log({"loss": 1.0})
    (tmp_path / "f.txt").write_text("x")
    run.save(tmp_path / "f.txt")
    run.finish()
    path = export_runs([run.id], tmp_path / "b.nbtrack.zip", open_store(store_dir))
    damage, message = CORRUPTIONS[kind]
    damage(path)
    target_dir = tmp_path / "deep" / "target"
    with pytest.raises(BundleError, match=message) as caught:
        import_bundle(path, target_dir)
    assert isinstance(caught.value, NbtrackError) and str(path) in str(caught.value)
    assert "Nothing was imported" in str(caught.value)
    assert open_store(target_dir).list_runs() == []
    assert not list((target_dir / "files").glob("*")) if (target_dir / "files").exists() else True
    assert not list(tmp_path.rglob("evil.txt")) and not (tmp_path / "escape").exists()


def test_a_write_failing_midway_undoes_the_whole_import(source, store_dir, tmp_path, monkeypatch):
    src = open_store(store_dir)
    path = export_runs([source["plain"], source["rich"]], tmp_path / "b.zip", src)
    target = open_store(tmp_path / "target")
    original = type(target).import_run
    calls = []

    def failing(self, record, *args):
        calls.append(record.id)
        if record.id == source["rich"]:
            raise OSError("disk full (simulated)")
        return original(self, record, *args)

    monkeypatch.setattr(type(target), "import_run", failing)
    with pytest.raises(OSError, match="disk full"):
        import_bundle(path, target)
    monkeypatch.undo()
    assert source["plain"] in calls and target.list_runs() == []
    assert not any((target.directory / "files").iterdir())
    assert import_bundle(path, target).imported == [source["plain"], source["rich"]]


# -- sync ---------------------------------------------------------------------------------------------
def test_sync_pushes_what_the_target_lacks_once_and_resumes(source, store_dir, tmp_path):
    src = open_store(store_dir)
    live = nbtrack.init(project="vision", name="still-going")
    live.log({"loss": 1.0})
    try:
        target_dir = tmp_path / "target"
        partial = sync(src, target_dir, project="other")  # an interrupted sync: only one project got across
        assert partial.pushed == [source["plain"]]
        everything = sync(src, target_dir)
        done = [r.id for r in src.list_runs() if r.state != "running"]
        assert sorted(everything.pushed) == sorted(set(done) - {source["plain"]})
        assert everything.running == [live.id] and everything.present == [source["plain"]]
        target = open_store(target_dir)
        for rid in done:
            assert_same_run(src, target, rid)
        assert_same_sweep(src, target, source["sweep"])
        again = sync(src, target_dir)
        assert again.pushed == [] and sorted(again.present) == sorted(done) and again.sweeps == []
    finally:
        live.finish()
    assert sync(src, target_dir).pushed == [live.id]


def test_sync_replaces_a_copy_left_half_written(source, store_dir, tmp_path):
    src = open_store(store_dir)
    record = src.get_run(source["rich"])
    target = open_store(tmp_path / "target")
    # A sync killed between creating the run and writing its metrics leaves a run that never ended.
    target.create_run(
        run_id=record.id,
        project=record.project,
        name=record.name,
        config=record.config,
        tags=record.tags,
        notes=record.notes,
        created=record.created,
        host="elsewhere",
        pid=1,
    )
    assert target.get_run(record.id).state in ("running", "crashed")
    assert source["rich"] in sync(src, target).pushed
    assert_same_run(src, target, source["rich"])


def test_sync_to_itself_is_refused(source, store_dir):
    with pytest.raises(BundleError, match="to itself"):
        sync(store_dir, store_dir)


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_export_import_and_sync(source, store_dir, tmp_path, capsys):
    bundle = tmp_path / "runs.nbtrack.zip"
    assert main(["--store", str(store_dir), "export", "--project", "vision", "-o", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Exported 1 run to {bundle} (") and f"rich ({source['rich']})" in out
    target = tmp_path / "target"
    assert main(["--store", str(target), "import", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert out == f"Imported 1 run into {target}: rich ({source['rich']})\n"
    assert main(["--store", str(target), "import", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "Imported 0 runs" in out and f"Skipped 1 run already in the store: {source['rich']}" in out

    where = str(tmp_path / "w.zip")
    assert main(["--store", str(store_dir), "export", "--where", "state == 'failed'", "-o", where]) == 0
    assert f"({source['plain']})" in capsys.readouterr().out

    synced = tmp_path / "synced"
    assert main(["--store", str(store_dir), "sync", "--to", str(synced)]) == 0
    out = capsys.readouterr().out
    total = len(open_store(store_dir).list_runs())
    assert out.startswith(f"Pushed {total} runs to {synced}: ")
    assert main(["--store", str(store_dir), "sync", "--to", str(synced)]) == 0
    assert capsys.readouterr().out == f"Pushed 0 runs to {synced}.\n{total} runs already there.\n"


def test_cli_errors(source, store_dir, tmp_path, capsys):
    out = str(tmp_path / "x.zip")
    assert main(["--store", str(store_dir), "export", "no-such-run", "-o", out]) == 1
    assert "nbtrack: No run with id or name 'no-such-run'" in capsys.readouterr().err
    assert main(["--store", str(store_dir), "export", "-o", out]) == 2
    assert "export needs runs" in capsys.readouterr().err
    assert main(["--store", str(store_dir), "export", "--where", "config.lr <", "-o", out]) == 2
    assert "nbtrack: --where:" in capsys.readouterr().err
    assert main(["--store", str(store_dir), "export", "--project", "empty", "-o", out]) == 1
    assert "no runs in project 'empty'" in capsys.readouterr().err
    (tmp_path / "bad.zip").write_bytes(b"nope")
    assert main(["--store", str(tmp_path / "t"), "import", str(tmp_path / "bad.zip")]) == 1
    assert "is not a valid nbtrack bundle" in capsys.readouterr().err
    assert main(["--store", str(tmp_path / "t"), "import", str(tmp_path / "missing.zip")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--store", str(tmp_path / "nowhere"), "sync", "--to", str(tmp_path / "t")]) == 1
    assert "There is no nbtrack run store" in capsys.readouterr().err


def test_a_series_whose_steps_go_back_across_flushes_survives_export_and_import(store_dir, tmp_path):
    """Steps that are not monotonic (a user's own steps interleaved with another writer's, flushed in between)
    come back in the order they were logged, times included."""
    run = nbtrack.init(project="order")
    for i, step in enumerate([0, 7, 14, 0, 21, 1, 28, 2, 35, 3]):
        run.log({"system/cpu_percent": 10.0 + i}, step=step)
        if i % 3 == 2:
            run.flush()
    run.finish()
    src = open_store(store_dir)
    target = open_store(tmp_path / "target")
    import_bundle(export_runs([run.id], tmp_path / "order.nbtrack.zip", src), target)
    assert src.history(run.id, "system/cpu_percent").step.tolist() == [0, 7, 14, 0, 21, 1, 28, 2, 35, 3]
    assert_same_run(src, target, run.id)
