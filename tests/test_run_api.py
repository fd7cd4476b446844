"""The run API a W&B user already knows, against a real SQLite store on tmp_path."""

from __future__ import annotations

import argparse
import math
import pathlib
import subprocess

import numpy as np
import pytest

import nbtrack
from nbtrack.errors import ConfigError, RunFinishedError
from nbtrack.run import current_run, infer_goal
from nbtrack.store import open_store


def stored(run):
    return open_store(run.store.location).get_run(run.id)


def test_init_log_finish_roundtrip(store_dir):
    run = nbtrack.init(
        project="test_project", config={"lr": 1e-3, "batch_size": 16}, tags=("baseline",), notes="n"
    )
    assert run.project == "test_project" and run.state == "running"
    assert len(run.id) == 8 and run.id.isalnum()
    adjective, noun, number = run.name.split("-")
    assert adjective and noun and number == "1"
    for i in range(10):
        run.log({"loss": 1.0 / (i + 1), "accuracy": i / 10})
    run.finish()
    assert run.state == "finished"

    record = stored(run)
    assert record.state == "finished" and record.ended is not None and record.ended >= record.created
    assert record.config == {"lr": 1e-3, "batch_size": 16}
    assert record.tags == ("baseline",) and record.notes == "n"
    assert record.summary["loss"] == pytest.approx(0.1) and record.summary["accuracy"] == pytest.approx(0.9)
    history = run.store.history(run.id, "loss")
    assert history.step.tolist() == list(range(10))
    assert history.value.tolist() == pytest.approx([1.0 / (i + 1) for i in range(10)])
    assert (np.diff(history.time) >= 0).all()
    assert store_dir.joinpath("nbtrack.db").is_file()


def test_names_are_numbered_per_project():
    names = []
    for project in ("a", "a", "b", "a"):
        run = nbtrack.init(project=project)
        names.append((project, run.name))
        run.finish()
    assert [n.rsplit("-", 1)[1] for _, n in names] == ["1", "2", "1", "3"]
    custom = nbtrack.init(project="a", name="my-run")
    custom.finish()
    assert custom.name == "my-run"
    assert nbtrack.init(project="a").name.endswith("-5")
    nbtrack.finish()


def test_step_auto_increments_and_explicit_steps():
    run = nbtrack.init(project="p")
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    run.log({"b": 5.0}, step=10)
    assert run.step == 11
    run.log({"a": 3.0})
    run.log({"c": 1.0}, commit=False)
    run.log({"d": 1.0})  # same step as "c"
    run.log({"e": 1.0}, step=3)  # an earlier step is stored as given and does not rewind
    assert run.step == 13
    run.finish()
    assert run.store.history(run.id, "a").step.tolist() == [0, 1, 11]
    assert run.store.history(run.id, "c").step.tolist() == [12]
    assert run.store.history(run.id, "d").step.tolist() == [12]
    assert run.store.history(run.id, "e").step.tolist() == [3]


def test_config_is_persisted_and_guarded():
    run = nbtrack.init(project="p", config={"lr": 0.01})
    run.config["epochs"] = 10
    run.config.lr = 0.01  # the same value again is fine
    assert run.config.epochs == 10
    with pytest.raises(ConfigError, match=r"config\['lr'\] is already 0.01.*allow_val_change=True"):
        run.config["lr"] = 0.1
    assert run.config["lr"] == 0.01
    run.config.update({"lr": 0.1}, allow_val_change=True)
    run.flush()
    assert stored(run).config == {"lr": 0.1, "epochs": 10}
    run.finish()
    with pytest.raises(RunFinishedError):
        run.config["new"] = 1


def test_config_accepts_namespace_and_odd_values():
    class Thing:
        def __repr__(self):
            return "<Thing 42>"

    ns = argparse.Namespace(
        lr=np.float32(0.5),
        path=pathlib.Path("/data/x"),
        thing=Thing(),
        arr=np.arange(3),
        n=np.int64(7),
        nested={"a": (1, 2)},
        nan=float("nan"),
    )
    run = nbtrack.init(project="p", config=ns)
    run.finish()
    config = stored(run).config
    assert config["lr"] == 0.5 and isinstance(config["lr"], float)
    assert config["path"] == "/data/x"
    assert config["thing"] == "<Thing 42>"
    assert config["arr"] == [0, 1, 2] and config["n"] == 7
    assert config["nested"] == {"a": [1, 2]}
    assert math.isnan(config["nan"])


def test_summary_last_min_max_best():
    run = nbtrack.init(project="p")
    for loss, acc in [(3.0, 0.1), (1.0, 0.7), (2.0, 0.5)]:
        run.log({"val_loss": loss, "val_accuracy": acc, "lr": 0.1})
    assert run.summary["val_loss"] == 2.0  # last
    assert run.summary["best_val_loss"] == 1.0  # minimized by name
    assert run.summary["best_val_accuracy"] == 0.7  # maximized by name
    assert run.summary["min_val_accuracy"] == 0.1 and run.summary["max_val_loss"] == 3.0
    with pytest.raises(KeyError):
        run.summary["best_lr"]  # no goal known for "lr"
    run.define_metric("lr", goal="minimize")
    assert run.summary["best_lr"] == 0.1
    stats = run.summary.stats("val_loss")
    assert (stats.count, stats.first_step, stats.last_step) == (3, 0, 2)
    run.summary["best_val_loss"] = 0.5  # an explicit key wins
    assert run.summary["best_val_loss"] == 0.5
    run.summary["note"] = "text is fine in the summary"
    run.finish()
    summary = stored(run).summary
    assert (
        summary["val_loss"] == 2.0 and summary["best_val_loss"] == 0.5 and summary["note"].startswith("text")
    )


@pytest.mark.parametrize(
    ("key", "goal"),
    [
        ("loss", "minimize"),
        ("val_loss", "minimize"),
        ("train/mae", "minimize"),
        ("val_accuracy", "maximize"),
        ("sparse_categorical_accuracy", "maximize"),
        ("auc", "maximize"),
        ("lr", None),
        ("epoch", None),
    ],
)
def test_infer_goal(key, goal):
    assert infer_goal(key) == goal


def test_context_manager_states():
    with nbtrack.init(project="p") as run:
        run.log({"x": 1.0})
    assert stored(run).state == "finished"

    with pytest.raises(ZeroDivisionError), nbtrack.init(project="p") as failed:
        failed.log({"x": 1.0})
        raise ZeroDivisionError("boom")
    assert stored(failed).state == "failed"

    with pytest.raises(KeyboardInterrupt), nbtrack.init(project="p") as interrupted:
        raise KeyboardInterrupt
    assert stored(interrupted).state == "interrupted"


def test_finish_exit_code_and_explicit_state():
    run = nbtrack.init(project="p")
    run.finish(exit_code=1)
    assert stored(run).state == "failed"
    run.finish()  # twice is harmless
    assert stored(run).state == "failed"
    other = nbtrack.init(project="p")
    with pytest.raises(ValueError, match="expected one of finished, failed, interrupted"):
        other.finish(state="done")
    other.finish(state="interrupted")
    assert stored(other).state == "interrupted"


def test_module_level_shortcuts_and_init_again_finishes_previous():
    with pytest.raises(nbtrack.NbtrackError, match=r"call nbtrack.init"):
        nbtrack.log({"x": 1.0})
    first = nbtrack.init(project="p")
    nbtrack.log({"x": 1.0})
    assert current_run() is first
    second = nbtrack.init(project="p")
    assert first.state == "finished" and stored(first).state == "finished"
    nbtrack.log({"x": 2.0})
    nbtrack.finish()
    assert current_run() is None
    assert second.store.history(second.id, "x").value.tolist() == [2.0]
    nbtrack.finish()  # no run: nothing happens


def test_flush_makes_points_visible_to_other_readers():
    run = nbtrack.init(project="p")
    for i in range(1000):
        run.log({"loss": float(i)})
    assert run.flush()
    reader = open_store(run.store.location)
    assert len(reader.history(run.id, "loss")) == 1000
    record = reader.get_run(run.id)
    assert record.state == "running"
    assert record.summary["loss"] == 999.0  # the summary follows the points while the run is running
    run.finish()


def test_save_copies_files_into_the_run(tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"x" * 100)
    run = nbtrack.init(project="p")
    target = run.save(source)
    run.finish()
    assert target.read_bytes() == b"x" * 100
    names = {f.name: f.size for f in run.store.list_files(run.id)}
    assert names["weights.bin"] == 100
    with pytest.raises(FileNotFoundError):
        run.save(tmp_path / "missing")


def test_project_from_environment(monkeypatch):
    monkeypatch.setenv("NBTRACK_PROJECT", "from-env")
    run = nbtrack.init()
    run.finish()
    assert run.project == "from-env"
    monkeypatch.delenv("NBTRACK_PROJECT")
    run = nbtrack.init()
    run.finish()
    assert run.project == "uncategorized"


def test_init_prints_where_the_run_is(monkeypatch, capsys):
    monkeypatch.delenv("NBTRACK_SILENT")
    run = nbtrack.init(project="p")
    run.finish()
    out = capsys.readouterr().out
    assert run.name in out and run.id in out and run.store.location in out


def test_events_are_recorded_in_order():
    run = nbtrack.init(project="p")
    run.event("lr_change", "learning rate 0.1 -> 0.01", step=5, old=0.1, new=0.01)
    run.event("note", "second")
    with pytest.raises(ValueError):
        run.event("", "empty kind")
    run.finish()
    events = run.store.events(run.id)
    assert [(e.kind, e.step, e.data) for e in events] == [
        ("lr_change", 5, {"old": 0.1, "new": 0.01}),
        ("note", None, {}),
    ]
    with pytest.raises(RunFinishedError):
        run.event("late", "after finish")


def test_no_point_is_lost_while_the_writer_flushes_constantly(monkeypatch):
    """The writer takes queued points while `log` appends: with a 1 ms flush interval, every point lands."""
    import nbtrack.run.writer

    monkeypatch.setattr(nbtrack.run.writer, "FLUSH_SECONDS", 0.001)
    run = nbtrack.init(project="p")
    for i in range(200_000):
        run.log({"x": float(i)})
    run.finish()
    history = run.store.history(run.id, "x")
    assert len(history) == 200_000
    assert (history.value == np.arange(200_000)).all()


def test_record_files_and_get_run(tmp_path):
    run = nbtrack.init(project="files", config={"lr": 0.1})
    run.log({"loss": 0.5})
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 10)
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    run.log_artifact(source, name="models/weights.bin")
    run.log_artifact(folder)
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b", "x\x00y"):
        with pytest.raises(ValueError, match="would leave the run's folder|resolves outside|holds a NUL"):
            run.log_artifact(source, name=bad)
        with pytest.raises(ValueError):
            run.save(source, name=bad)
    run.finish()
    stored = nbtrack.get_run(run.name)
    assert stored.id == run.id and stored.state == "finished" and stored.config == {"lr": 0.1}
    names = {f.name for f in stored.files()}
    assert {"config.json", "summary.json", "environment.json", "requirements.txt"} <= names
    assert {"artifacts/models/weights.bin", "artifacts/ckpt/sub/a.txt"} <= names
    assert stored.file("artifacts/models/weights.bin").read_bytes() == b"w" * 10
    import json

    assert json.loads(stored.file("config.json").read_text()) == {"lr": 0.1}
    assert json.loads(stored.file("summary.json").read_text())["loss"] == 0.5
    assert stored.history("loss").value.tolist() == [0.5]
    assert [e.kind for e in stored.events()] == ["artifact", "artifact"]
    with pytest.raises(FileNotFoundError, match="has no file 'nope'; its files: "):
        stored.file("nope")
    with pytest.raises(FileNotFoundError):
        stored.file("../../etc/passwd")
    assert not (tmp_path / "escape.txt").exists()


def test_tracking_works_without_the_widget_extra(python, python_env, tmp_path):
    """Scripts and kernels without ipywidgets/bqplot/anywidget still track; a notebook gets one warning."""
    code = (
        "import sys, warnings\n"
        "for name in ('anywidget', 'ipywidgets', 'bqplot'):\n"
        "    sys.modules[name] = None  # import raises ImportError\n"
        "import nbtrack, nbtrack.ui\n"
        "run = nbtrack.init(project='bare', config={'lr': 0.1})\n"
        "run.log({'loss': 1.0}); run.finish()\n"
        "nbtrack.ui.in_notebook = lambda: True  # as inside a kernel\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    run = nbtrack.init(project='bare')\n"
        "    run.log({'loss': 0.5}); run.finish()\n"
        "print([str(w.message) for w in caught if 'nbtrack[widgets]' in str(w.message)][:1])\n"
        "print(nbtrack.runs(project='bare', where='config.lr == 0.1').names == [nbtrack.runs(project='bare')[1].name])\n"
    )
    env = {**python_env, "NBTRACK_STORE": str(tmp_path / "store")}
    result = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    warned, found = result.stdout.strip().splitlines()
    assert "pip install 'nbtrack[widgets]'" in warned
    assert found == "True"
