"""README claims that had no test of their own: settings, the ETA, the callback's mode, `where` on run fields and
dates, and the `rm --force`, `diff --project`, `sweep --name/--seed` and `agent --count` options.

Each test runs the real thing (a real store, a real Keras fit, the CLI as a subprocess or through `main`) and
asserts exactly what the README promises.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import textwrap
import time

import numpy as np
import pytest

import nbtrack
from nbtrack.cli import main
from nbtrack.errors import NbtrackWarning, RunNotFoundError
from nbtrack.store import open_store
from nbtrack.store.base import SeriesBatch, WriteBatch
from tests.test_store_conformance import BACKENDS, new_location, new_run, points


def run_main(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- NBTRACK_CAPTURE=0: stdout/stderr are not captured into the run's log ---------------------------------
SCRIPT = """
import sys, warnings
import nbtrack
run = nbtrack.init(project="capture")
print("printed-by-the-script")
print("written-to-stderr", file=sys.stderr)
run.log({"loss": 1.0})
run.finish()
print("RUN", run.id, len(run.output.recent))
"""


@pytest.mark.parametrize("capture", ["1", "0"])
def test_nbtrack_capture_0_keeps_prints_out_of_the_run_log(capture, python, python_env, store_dir):
    env = {**python_env, "NBTRACK_STORE": str(store_dir), "NBTRACK_CAPTURE": capture}
    done = subprocess.run([python, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the output reaches the terminal either way
    assert "printed-by-the-script" in done.stdout and "written-to-stderr" in done.stderr
    run_id, recent = done.stdout.split("RUN ")[1].split()
    log = open_store(store_dir, create=False).run_dir(run_id) / "output.log"
    if capture == "1":
        assert log.read_text(encoding="utf-8").splitlines() == ["printed-by-the-script", "written-to-stderr"]
        assert recent == "2"
    else:
        assert not log.exists() or log.read_text(encoding="utf-8") == ""
        assert recent == "0"


# -- NBTRACK_DISPLAY=0: no dashboard at init in a notebook; a Keras fit still shows its own ------------------
def test_nbtrack_display_0_shows_no_dashboard_at_init_but_fit_shows_its_own(notebook, monkeypatch):
    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    shown = nbtrack.init(project="display")  # the default: the dashboard at init
    assert len(notebook) == 1 and "application/vnd.jupyter.widget-view+json" in notebook[0].bundles[0]
    shown.finish()
    monkeypatch.setenv("NBTRACK_DISPLAY", "0")
    run = nbtrack.init(project="display")
    assert len(notebook) == 1  # nothing new
    x, y = tiny_data(32)
    tiny_model().fit(x, y, batch_size=16, epochs=1, callbacks=[NbtrackCallback()], verbose=0)
    assert len(notebook) == 2
    assert notebook[1].metadata[0]["nbtrack"]["run_id"] == run.id
    run.finish()


# -- the ETA in the dashboard header ------------------------------------------------------------------------
def test_header_eta_is_elapsed_times_the_work_left_over_the_work_done():
    from nbtrack.ui.dashboard import header_html

    run = nbtrack.init(project="eta", name="eta-run")
    progress = run.progress
    progress.epochs, progress.steps_per_epoch = 4, 10
    progress.epoch, progress.step_in_epoch = 1, 5  # 15 of 40 batches done
    progress.started, progress.training = 1000.0, True
    header = header_html(run, "running", now=1100.0)  # 100 s for 15 batches: 25 left take 166.7 s
    assert "epoch 2/4 · step 5/10 · 1:40 elapsed · ETA 2:46</div>" in header
    progress.epoch, progress.step_in_epoch = 0, 0  # nothing done yet: no estimate
    assert "ETA -</div>" in header_html(run, "running", now=1100.0)
    progress.steps_per_epoch = None  # an unknown length (a generator): no estimate
    assert "ETA -</div>" in header_html(run, "running", now=1100.0)
    progress.training = False
    assert "ETA" not in header_html(run, "running", now=1100.0)  # only while training
    run.finish()


def test_eta_during_a_real_fit_follows_the_callbacks_progress():
    import keras

    from nbtrack.keras import NbtrackCallback
    from nbtrack.ui.dashboard import header_html
    from tests.keras_helpers import tiny_data, tiny_model

    headers: list[str] = []

    class Probe(keras.callbacks.Callback):  # after NbtrackCallback: sees the progress it just set
        def on_train_batch_end(self, batch, logs=None):
            run = tracker.run
            # a controlled clock: 6 s per batch done so far since the fit started
            done = run.progress.epoch * 4 + run.progress.step_in_epoch
            headers.append(header_html(run, "running", now=run.progress.started + 6.0 * done))

    tracker = NbtrackCallback(display=False, log_batches=False)
    x, y = tiny_data(64)
    tiny_model().fit(x, y, batch_size=16, epochs=2, callbacks=[tracker, Probe()], verbose=0)
    # 8 batches of 6 s each: after batch k (1-based) 6k s elapsed and 6(8-k) s left
    expected = [f"ETA 0:{6 * (8 - k):02d}</div>" for k in range(1, 9)]
    assert [h[h.index("ETA") :] for h in headers] == expected
    assert "epoch 1/2 · step 1/4" in headers[0] and "epoch 2/2 · step 4/4" in headers[-1]


# -- NbtrackCallback(mode=...): which way the monitored metric improves ---------------------------------------
SCORES = [0.3, 0.1, 0.5, 0.9, 0.2]  # epoch by epoch: the lowest at epoch 1, the highest at epoch 3


@pytest.mark.parametrize(
    ("monitor", "mode", "best_epoch"),
    [
        ("val_gap", "min", 1),  # a name that says nothing: the mode decides
        ("val_gap", "max", 3),
        ("val_gap", "auto", 1),  # ... and auto minimizes it, as Keras does
        ("score", "auto", 3),  # auto: a score is maximized
        ("val_error", "auto", 1),  # auto: an error is minimized
        ("val_auc", "auto", 3),  # auto: an AUC is maximized
        ("val_error", "max", 3),  # an explicit mode overrides the name
        ("val_auc", "min", 1),
    ],
)
def test_mode_chooses_the_best_epoch_and_saves_its_model(monitor, mode, best_epoch):
    import keras

    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    weights: list[list[np.ndarray]] = []

    class Inject(keras.callbacks.Callback):  # before NbtrackCallback: adds the metric to the epoch's logs
        def on_epoch_end(self, epoch, logs=None):
            logs[monitor] = SCORES[epoch]
            weights.append([w.copy() for w in self.model.get_weights()])

    tracker = NbtrackCallback(display=False, log_batches=False, monitor=monitor, mode=mode)
    x, y = tiny_data(64)
    model = tiny_model(lr=0.05)
    model.fit(x, y, batch_size=16, epochs=len(SCORES), callbacks=[Inject(), tracker], verbose=0)
    run = nbtrack.get_run(tracker.run.id)
    assert run.summary[f"best_{monitor}"] == SCORES[best_epoch]
    assert run.summary["best_epoch"] == best_epoch
    saved = keras.saving.load_model(run.file("model-best.keras"))
    for got, want in zip(saved.get_weights(), weights[best_epoch], strict=True):
        np.testing.assert_array_equal(got, want)
    later = weights[best_epoch + 1]  # training went on after the best epoch: the file holds the best one
    assert not all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), later))


def test_mode_is_checked():
    from nbtrack.keras import NbtrackCallback

    with pytest.raises(ValueError, match="expected one of auto, min, max, got 'maximize'"):
        NbtrackCallback(mode="maximize")


# -- where on id, project, host, created and ended (dates), on every backend ----------------------------------
def local(*args: int) -> float:
    """Seconds since 1970 of a naive local date-time, as the where language reads '2026-11-01 14:30'."""
    return dt.datetime(*args).timestamp()


FIELD_RUNS = [  # id, project, host, created, ended (None: still running)
    ("aaaa1111", "vision", "gpu-box-1", local(2026, 10, 31, 23, 59), local(2026, 11, 1, 0, 30)),
    ("bbbb2222", "vision", "gpu-box-2", local(2026, 11, 1, 0, 0), local(2026, 11, 1, 14, 30)),
    ("cccc3333", "text", "laptop", local(2026, 11, 1, 14, 30), local(2026, 11, 2, 9, 0)),
    ("dddd4444", "text", "gpu-box-1", local(2026, 11, 2, 10, 0), None),
]


@pytest.fixture(params=BACKENDS, scope="module")
def field_store(request, tmp_path_factory):
    store = open_store(new_location(request, request.param, tmp_path_factory.mktemp("fields")))
    for run_id, project, host, created, ended in FIELD_RUNS:
        store.create_run(
            run_id=run_id,
            project=project,
            name=f"run-{run_id[0]}",
            config={},
            tags=(),
            notes=None,
            created=created,
            host=host,
            pid=0,
        )
        if ended is None:  # a live heartbeat: it reads as running
            store.write_batch(WriteBatch(run_id, heartbeat=time.time() + 3600))
        else:
            store.write_batch(WriteBatch(run_id, state="finished", ended=ended, heartbeat=ended))
    yield store
    store.close()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("id == 'bbbb2222'", ["b"]),
        ("id startswith 'cc'", ["c"]),
        ("id in ['aaaa1111', 'dddd4444']", ["a", "d"]),
        ("id != 'aaaa1111'", ["b", "c", "d"]),
        ("project == 'vision'", ["a", "b"]),
        ("project != 'vision'", ["c", "d"]),
        ("project in ('text', 'nothing')", ["c", "d"]),
        ("host == 'gpu-box-1'", ["a", "d"]),
        ("host startswith 'gpu'", ["a", "b", "d"]),
        ("host contains 'top'", ["c"]),
        ("created >= '2026-11-01'", ["b", "c", "d"]),  # midnight is in; a minute before is not
        ("created < '2026-11-01'", ["a"]),
        ("created >= '2026-11-01 14:30'", ["c", "d"]),
        ("created > '2026-11-01 14:30'", ["d"]),
        ("created >= '2026-11-01T14:30'", ["c", "d"]),
        ("created >= '2026-11-01 14:30:00'", ["c", "d"]),
        ("created == '2026-11-01 14:30'", ["c"]),
        (f"created >= {local(2026, 11, 1, 14, 30)}", ["c", "d"]),  # seconds since 1970
        ("ended <= '2026-11-01 14:30'", ["a", "b"]),
        ("ended < '2026-11-01 14:30'", ["a"]),
        ("ended >= '2026-11-02'", ["c"]),  # a run still running has no end: it matches no comparison
        ("not ended < '2026-11-02'", ["c", "d"]),
        ("ended is null", ["d"]),
        ("ended is not null", ["a", "b", "c"]),
        ("created >= '2026-11-01' and created < '2026-11-02' and host startswith 'gpu'", ["b"]),
        ("project == 'text' or ended < '2026-11-01 01:00'", ["a", "c", "d"]),
    ],
)
def test_where_on_run_fields_and_dates(field_store, where, expected):
    found = nbtrack.runs(where=where, order_by="created", store=field_store)
    assert [r.name for r in found] == [f"run-{x}" for x in expected]


def test_where_on_run_fields_through_the_cli(store_dir, capsys):
    store = open_store(store_dir)
    for run_id, project, host, created, _ in FIELD_RUNS:
        store.create_run(
            run_id=run_id,
            project=project,
            name=f"run-{run_id[0]}",
            config={},
            tags=(),
            notes=None,
            created=created,
            host=host,
            pid=0,
        )
        store.write_batch(WriteBatch(run_id, state="finished", ended=created + 60, heartbeat=created + 60))
    where = "host startswith 'gpu' and created >= '2026-11-01' and project == 'text'"
    code, out, err = run_main(capsys, "ls", "--where", where, "--json", "--columns", "id")
    assert code == 0, err
    assert [item["id"] for item in json.loads(out)] == ["dddd4444"]
    code, out, err = run_main(
        capsys, "ls", "--where", "ended <= '2026-11-01 14:31'", "--json", "--sort", "id"
    )
    assert code == 0, err
    assert [item["id"] for item in json.loads(out)] == ["aaaa1111", "bbbb2222", "cccc3333"]


# -- nbtrack rm --force -----------------------------------------------------------------------------------
def cli(python, python_env, store, *args):
    return subprocess.run(
        [python, "-m", "nbtrack", "--store", str(store), *args],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows_of(store_dir, run_id):
    """How many rows each table holds for `run_id`, read straight from the SQLite file."""
    with sqlite3.connect(store_dir / "nbtrack.db") as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (run_id,)).fetchone()[0]
            for table, column in (
                ("runs", "id"),
                ("metrics", "run_id"),
                ("chunks", "run_id"),
                ("events", "run_id"),
            )
        }


def test_rm_force_deletes_a_running_run_and_training_goes_on(python, python_env, store_dir):
    done_run = nbtrack.init(project="rm")
    done_run.log({"loss": 0.5})
    done_run.finish()
    live = nbtrack.init(project="rm")
    live.log({"loss": 1.0})
    live.event("note", "before rm")
    print("printed before rm")
    live.flush()
    refused = cli(python, python_env, store_dir, "rm", live.id, done_run.id)
    assert refused.returncode == 1 and "still running. Use --force" in refused.stderr
    assert rows_of(store_dir, done_run.id)["runs"] == 1  # a refusal deletes none of them
    with pytest.warns(NbtrackWarning, match=f"run {live.id} was deleted from .* while it ran"):
        done = cli(python, python_env, store_dir, "rm", "--force", live.id, done_run.id)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"Deleted {live.name} ({live.id}) from {store_dir}.",
            f"Deleted {done_run.name} ({done_run.id}) from {store_dir}.",
        ]
        store = open_store(store_dir, create=False)
        for run in (live, done_run):
            with pytest.raises(RunNotFoundError):
                store.get_run(run.id)
            assert not store.run_dir(run.id).exists()
            assert rows_of(store_dir, run.id) == {"runs": 0, "metrics": 0, "chunks": 0, "events": 0}
        # the process that was training goes on: logging, printing and finishing do not raise...
        live.log({"loss": 2.0})
        print("printed after rm")
        live.event("note", "after rm")
        live.finish()
    # ... and bring back no row and no file of the deleted run
    assert rows_of(store_dir, live.id) == {"runs": 0, "metrics": 0, "chunks": 0, "events": 0}
    assert not store.run_dir(live.id).exists()
    assert live.state == "finished"


def test_rm_force_during_a_keras_fit_leaves_nothing_and_training_goes_on(python, python_env, store_dir):
    import keras

    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    deleted: list[subprocess.CompletedProcess[str]] = []

    class DeleteAfterFirstEpoch(keras.callbacks.Callback):  # another terminal runs `nbtrack rm --force`
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                deleted.append(cli(python, python_env, store_dir, "rm", "--force", tracker.run.id))

    tracker = NbtrackCallback(display=False, monitor="loss")
    x, y = tiny_data(64)
    with pytest.warns(NbtrackWarning, match="was deleted from .* while it ran"):
        history = tiny_model(lr=0.05).fit(
            x, y, batch_size=16, epochs=4, callbacks=[tracker, DeleteAfterFirstEpoch()], verbose=0
        )
    assert len(history.history["loss"]) == 4  # training went on to the end
    assert deleted[0].returncode == 0 and deleted[0].stdout.startswith(f"Deleted {tracker.run.name} (")
    assert tracker.best_epoch is not None and tracker.best_epoch > 0  # a best model was saved after rm
    assert rows_of(store_dir, tracker.run.id) == {"runs": 0, "metrics": 0, "chunks": 0, "events": 0}
    assert not open_store(store_dir, create=False).run_dir(tracker.run.id).exists()


@pytest.fixture(params=BACKENDS)
def backend_store(request, tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "files"))  # a PostgreSQL store's run files
    store = open_store(new_location(request, request.param, tmp_path))
    yield store
    store.close()


def test_a_batch_for_a_deleted_run_writes_nothing(backend_store):
    store = backend_store
    new_run(store, run_id="gone0001")
    points(store, "gone0001", "loss", [0, 1], [1.0, 0.5])
    store.delete_run("gone0001")
    batch = WriteBatch("gone0001", series=[SeriesBatch("loss", [2], [1.0], [0.25])], summary={"loss": 0.25})
    with pytest.raises(RunNotFoundError, match="'gone0001' is no longer in the store"):
        store.write_batch(batch)
    assert store.metric_stats("gone0001") == {} and store.events("gone0001") == []
    with pytest.raises(RunNotFoundError):
        store.get_run("gone0001")


# -- nbtrack diff --project ----------------------------------------------------------------------------------
def test_diff_project_picks_the_runs_of_that_project(capsys):
    made = {}
    for project, lr in (("vision", 0.1), ("text", 0.5)):
        base = nbtrack.init(project=project, name="baseline", config={"lr": lr})
        base.log({"loss": 1.0})
        base.finish()
        newer = nbtrack.init(project=project, name="tuned", config={"lr": lr / 10})
        newer.log({"loss": 0.5})
        newer.finish()
        made[project] = (base, newer)
    code, _, err = run_main(capsys, "diff", "baseline", "tuned")
    assert code == 1 and "2 runs are named 'baseline'" in err and "Use the run id" in err
    code, out, err = run_main(capsys, "diff", "baseline", "latest", "--project", "vision")
    assert code == 0, err
    base, newer = made["vision"]
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "A", "(baseline)", "B", "(tuned)"]
    assert [line.split() for line in lines[2:]] == [
        ["config.lr", "0.1", "0.01"],
        ["summary.loss", "1", "0.5"],
    ]
    code, out, err = run_main(capsys, "diff", "baseline", "tuned", "-p", "text", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["a"]["id"] == made["text"][0].id and result["b"]["id"] == made["text"][1].id
    assert result["config"] == [{"key": "config.lr", "a": 0.5, "b": 0.05, "missing": [], "equal": False}]
    code, _, err = run_main(capsys, "diff", made["vision"][0].id, "tuned", "--project", "text")
    assert code == 1 and f"No run with id or name {made['vision'][0].id!r} in project 'text'" in err


# -- nbtrack sweep --name/--seed and nbtrack agent --count --------------------------------------------------
def load_sweep(ref, store_dir):
    from nbtrack.sweeps import Sweep

    store = open_store(store_dir, create=False)
    return Sweep(store, store.get_sweep(ref))


SWEEP_YAML = """\
method: random
metric: {name: val_loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  units: {values: [8, 16, 32, 64]}
"""
TRAIN_MODULE = """\
import nbtrack
def train(config):
    nbtrack.log({"val_loss": config["lr"] * 10})
"""


def test_sweep_name_and_seed_and_agent_count(tmp_path, store_dir, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(SWEEP_YAML)
    (tmp_path / "sweep_train.py").write_text(TRAIN_MODULE)
    function = f"{tmp_path / 'sweep_train.py'}:train"

    def create(name, seed):
        args = ["--store", str(store_dir), "sweep", str(config), "--project", "sw", "--name", name]
        code, out, err = run_main(capsys, *args, *(["--seed", str(seed)] if seed is not None else []))
        assert code == 0, err
        assert out.startswith(f"Created sweep {name} (") and "in project 'sw': random search" in out
        return out.split("(")[1].split(")")[0]

    def params(sweep_id):
        return [(t.params["lr"], t.params["units"]) for t in load_sweep(sweep_id, store_dir).trials()]

    first = create("seven-a", 7)
    code, out, err = run_main(
        capsys, "--store", str(store_dir), "agent", "seven-a", "-f", function, "--count", "3"
    )
    assert code == 0, err
    assert out == "Ran 3 trials of sweep seven-a.\n"
    sweep = load_sweep(first, store_dir)
    assert sweep.name == "seven-a" and sweep.seed == 7 and sweep.state == "running"
    assert [t.state for t in sweep.trials()] == ["finished"] * 3
    assert all("sweep:seven-a" in r.tags for r in sweep.runs) and len(sweep.runs) == 3
    code, out, _ = run_main(capsys, "--store", str(store_dir), "agent", first, "-f", function, "-n", "2")
    assert code == 0 and out == f"Ran 2 trials of sweep {first}.\n"
    assert len(sweep.trials()) == 5  # --count adds to what ran before

    again = create("seven-b", 7)
    assert run_main(capsys, "--store", str(store_dir), "agent", again, "-f", function, "--count", "5")[0] == 0
    other = create("eight", 8)
    assert run_main(capsys, "--store", str(store_dir), "agent", other, "-f", function, "--count", "5")[0] == 0
    default = create("default-seed", None)
    assert load_sweep(default, store_dir).seed == 0
    assert params(again) == params(first)  # the same seed proposes the same trials
    assert len(set(params(other)) & set(params(first))) == 0  # another seed, other trials

    code, _, err = run_main(capsys, "--store", str(store_dir), "agent", first, "-f", function, "--count", "0")
    assert code == 2 and "--count must be positive, got 0" in err
    assert len(sweep.trials()) == 5


AGENT_COUNT_MODULE = """\
import nbtrack
def train(config):
    nbtrack.log({"val_loss": float(config["a"])})
"""


def test_agent_count_stops_a_grid_agent_after_that_many_trials(tmp_path, store_dir, python, python_env):
    (tmp_path / "grid_train.py").write_text(AGENT_COUNT_MODULE)
    (tmp_path / "grid.yaml").write_text(
        textwrap.dedent(
            """\
            method: grid
            metric: {name: val_loss}
            parameters:
              a: {values: [0, 1, 2, 3, 4]}
            """
        )
    )
    env = {**python_env, "NBTRACK_STORE": str(store_dir)}
    made = subprocess.run(
        [python, "-m", "nbtrack", "sweep", "grid.yaml", "--name", "grid5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    ran = subprocess.run(
        [python, "-m", "nbtrack", "agent", "grid5", "--function", "grid_train:train", "--count", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == "Ran 2 trials of sweep grid5."
    sweep = load_sweep("grid5", store_dir)
    assert [(t.grid_index, t.state) for t in sweep.trials()] == [(0, "finished"), (1, "finished")]
    assert sweep.state == "running"  # three grid points are left for the next agent


# -- widgets and reports on PostgreSQL ---------------------------------------------------------------------
@pytest.fixture
def pg_store(pg_server, tmp_path, monkeypatch):
    """A fresh database on the throwaway server, made the default store; run files under tmp_path."""
    location = pg_server.new_database()
    monkeypatch.setenv("NBTRACK_STORE", location)
    monkeypatch.setenv("NBTRACK_FILES", str(tmp_path / "pg-files"))
    return location


def last_rows_sent() -> list[str]:
    """The run names of the last table rows any widget sent to the front-end through its (recording) comm."""
    from tests.widget_helpers import RecordingComm

    sent = [m.data["state"]["rows"] for m in RecordingComm.log if "rows" in m.data.get("state", {})]
    return [row["cells"]["name"] for row in sent[-1]]


def test_stored_dashboard_browser_and_report_on_postgresql(pg_store, notebook, tmp_path, capsys):
    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    older = nbtrack.init(project="pg-widgets", name="older", config={"lr": 0.1})
    older.log({"loss": 2.0})
    older.finish()
    run = nbtrack.init(project="pg-widgets", name="trained-on-pg", config={"lr": 0.01})
    print("a line for the logs pane")
    (tmp_path / "notes.txt").write_text("kept with the run")
    run.save(tmp_path / "notes.txt")
    x, y = tiny_data(64)
    tiny_model().fit(
        x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[NbtrackCallback()], verbose=0
    )
    run.finish()
    assert open_store(pg_store).location.startswith("postgresql://")

    stored = nbtrack.get_run("trained-on-pg", store=pg_store)
    reopened = nbtrack.show("trained-on-pg", store=pg_store)
    assert reopened.state == "finished" and "trained-on-pg" in reopened.header.value
    np.testing.assert_array_equal(
        reopened.charts.grid.marks["loss"].y, stored.history(["loss"])["loss"].value
    )
    assert "a line for the logs pane" in reopened.logs.view.value
    files = {f["name"] for f in reopened.files.view.files}
    assert {"notes.txt", "output.log", "model-best.keras", "model.json"} <= files
    assert "Dense" in json.dumps(reopened.model.view.graph["nodes"])  # model.json, read back

    browser = nbtrack.browse("pg-widgets", store=pg_store)
    assert [row["cells"]["name"] for row in browser.table.rows] == ["trained-on-pg", "older"]
    assert last_rows_sent() == ["trained-on-pg", "older"]  # what the front-end was sent
    # a click on the name in the front-end: a custom comm message, handled as ipywidgets would
    browser.table._handle_msg(
        {
            "content": {"data": {"method": "custom", "content": {"event": "open", "id": stored.id}}},
            "buffers": [],
        }
    )
    assert browser.opened == stored.id and browser.dashboard.widget in browser.detail.children
    assert "finished" in browser.dashboard.header.value
    browser.compare_selected([older.id, stored.id])
    assert [r.name for r in browser.comparison.runs] == ["older", "trained-on-pg"]

    capsys.readouterr()  # what the run printed
    report = tmp_path / "pg-report.html"
    code, out, err = run_main(
        capsys, "--store", pg_store, "report", "--run", "trained-on-pg", "-o", str(report)
    )
    assert code == 0, err
    assert out.startswith(f"Wrote {report.resolve()} (")
    page = report.read_text(encoding="utf-8")
    assert "<h2>trained-on-pg" in page and "a line for the logs pane" in page and "notes.txt" in page
    assert "Dense" in page  # the model graph's layer table, read from the PostgreSQL store's files


# -- display=False and NBTRACK_DISPLAY=0 in a real kernel ------------------------------------------------
KERNEL_CELLS = [
    # 0: NBTRACK_DISPLAY=0: init shows no dashboard
    "import os\nos.environ['NBTRACK_DISPLAY'] = '0'\nos.environ.setdefault('KERAS_BACKEND', 'tensorflow')\n"
    "import nbtrack\nrun = nbtrack.init(project='kernel')",
    # 1: a model, outside the cells under test
    "import keras, numpy as np\nfrom nbtrack.keras import NbtrackCallback\n"
    "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation='softmax')])\n"
    "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
    "x = np.random.default_rng(0).random((32, 4)).astype('float32'); y = (x.sum(axis=1) > 2).astype('int32')",
    # 2: display=False: the fit cell shows no widget
    "model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[NbtrackCallback(display=False)]);",
    # 3: the default: the fit shows its dashboard (NBTRACK_DISPLAY=0 does not stop that)
    "model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[NbtrackCallback()]);",
    # 4: without NBTRACK_DISPLAY, init shows the dashboard
    "run.finish()\ndel os.environ['NBTRACK_DISPLAY']\nsecond = nbtrack.init(project='kernel')",
    "second.finish()\nprint('IDS', run.id, second.id)",
]
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.slow
def test_display_false_and_nbtrack_display_0_in_a_real_kernel(tmp_path, store_dir, monkeypatch):
    import nbformat

    from nbtrack.reports.execute import execute_notebook

    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")
    path = tmp_path / "display.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS]), path)
    notebook = execute_notebook(path, timeout=300)

    def widgets(index):
        outputs = notebook.cells[index].outputs
        return [
            o for o in outputs if o.output_type in ("display_data", "execute_result") and WIDGET in o.data
        ]

    def non_stream(index):
        return [o.output_type for o in notebook.cells[index].outputs if o.output_type != "stream"]

    assert non_stream(0) == []  # NBTRACK_DISPLAY=0: no dashboard at init
    assert non_stream(2) == []  # display=False: no widget output in the fit cell
    assert len(widgets(3)) == 1  # the same fit with display=True shows its dashboard
    assert len(widgets(4)) == 1  # and init shows one once NBTRACK_DISPLAY is unset
    first_id, second_id = notebook.cells[5].outputs[-1].text.split("IDS ")[1].split()
    store = open_store(store_dir, create=False)
    assert store.history(first_id, "epoch").value.tolist() == [0.0, 0.0]  # both fits were tracked
    assert store.get_run(first_id).state == "finished" and store.get_run(second_id).state == "finished"
    assert widgets(3)[0].metadata["nbtrack"]["run_id"] == first_id
