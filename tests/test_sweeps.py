"""Sweeps end to end on a real store: grid, random, bayes, Hyperband, failures, interruption and resume,
agents in several processes, the live view through a recording comm, and the sweep in reports."""

from __future__ import annotations

import statistics
import subprocess
import textwrap
import warnings

import pytest

import nbtrack
from nbtrack.sweeps import SweepError, agent, create
from tests.widget_helpers import RecordingComm

GRID = {
    "method": "grid",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {"units": {"values": [4, 8]}, "lr": {"values": [0.01, 0.1]}, "epochs": {"value": 2}},
}


def keras_train(config):
    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    x, y = tiny_data(64)
    model = tiny_model(config["lr"])
    model.fit(x, y, epochs=config["epochs"], validation_split=0.25, verbose=0, callbacks=[NbtrackCallback()])


def objective(config):
    """A synthetic objective with its optimum at lr = 1e-2, logged once."""
    import math

    nbtrack.log({"val_loss": (math.log10(config["lr"]) + 2) ** 2 + 0.1 * config.get("noise", 0.0)})


def test_grid_over_a_tiny_keras_model_runs_exactly_the_grid():
    sweep = nbtrack.sweep(GRID, keras_train, project="grid")
    runs = sweep.runs
    assert sorted((r.config["units"], r.config["lr"]) for r in runs) == [
        (4, 0.01),
        (4, 0.1),
        (8, 0.01),
        (8, 0.1),
    ]
    assert all(r.config["epochs"] == 2 and r.state == "finished" for r in runs)
    assert all(f"sweep:{sweep.name}" in r.tags for r in runs)
    trials = sweep.trials()
    assert [t.grid_index for t in trials] == [0, 1, 2, 3] and all(t.state == "finished" for t in trials)
    assert all(t.value is not None for t in trials) and sweep.state == "finished"
    best = sweep.best_run
    assert best.summary["val_loss"] == min(t.value for t in trials)
    frame = sweep.to_pandas()
    assert list(frame.index) == [0, 1, 2, 3] and {"config.units", "config.lr", "val_loss", "state"} <= set(
        frame.columns
    )
    assert len(nbtrack.runs(project="grid", where=f"'sweep:{sweep.name}' in tags")) == 4


def test_random_search_runs_count_trials_within_bounds():
    config = {
        "method": "random",
        "metric": {"name": "val_loss"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "noise": {"min": 0.0, "max": 1.0},
        },
    }
    sweep = nbtrack.sweep(config, objective, project="random", count=5)
    trials = sweep.trials()
    assert len(trials) == 5 and all(t.state == "finished" for t in trials)
    assert all(1e-4 <= t.params["lr"] <= 1e-1 and 0 <= t.params["noise"] <= 1 for t in trials)
    assert len({t.params["lr"] for t in trials}) == 5
    assert sweep.state == "running"  # random search never runs out: more trials can follow
    assert len(nbtrack.sweep(resume=sweep.id, function=objective, count=2).trials()) == 7


def test_bayes_beats_random_on_the_same_budget():
    space = {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0}}
    results = {}
    for method in ("random", "bayes"):
        sweep = nbtrack.sweep(
            {"method": method, "metric": {"name": "val_loss", "goal": "minimize"}, "parameters": space},
            objective,
            project=method,
            count=12,
            seed=3,
        )
        results[method] = [t.value for t in sweep.trials()]
    assert min(results["bayes"]) < statistics.median(results["random"])
    assert min(results["bayes"]) < 0.05  # within ~0.2 decades of the optimum


def curve_train(config):
    """A synthetic learning curve: quality 0 is the best, higher is worse; stops when Hyperband asks."""
    from nbtrack.run import current_run

    run = current_run()
    for epoch in range(9):
        nbtrack.log({"epoch": epoch, "val_loss": 1.0 / (epoch + 1) + config["quality"]})
        if run.stop_requested:
            break


def test_hyperband_stops_trials_with_bad_curves():
    config = {
        "method": "grid",
        "metric": {"name": "val_loss", "goal": "minimize"},
        "parameters": {"quality": {"values": [0.0, 0.1, 0.2, 5.0, 6.0, 7.0]}},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
    }
    sweep = nbtrack.sweep(config, curve_train, project="hb")
    states = {t.params["quality"]: t.state for t in sweep.trials()}
    assert states[0.0] == "finished" and states[0.1] == "finished" and states[0.2] == "finished"
    assert states[5.0] == states[6.0] == states[7.0] == "stopped-early"
    stopped = [r for r in sweep.runs if r.state == "stopped-early"]
    assert len(stopped) == 3
    for run in stopped:
        (event,) = [e for e in run.events() if e.kind == "hyperband"]
        assert event.data["rung"] == 1 and "not in the top 1/3" in event.message
        assert run.history("val_loss").value.size == 1  # stopped at the first rung
    assert sorted(nbtrack.runs(project="hb", where="state == 'stopped-early'").ids) == sorted(
        r.id for r in stopped
    )
    assert all("1" in t.rungs for t in sweep.trials())


def test_a_failing_trial_is_marked_failed_and_the_sweep_goes_on(capsys):
    def train(config):
        if config["lr"] == 0.1:
            raise ValueError("diverged on purpose")
        nbtrack.log({"val_loss": config["lr"]})

    sweep = nbtrack.sweep(
        {**GRID, "parameters": {"lr": {"values": [0.01, 0.1, 0.001]}}}, train, project="fail"
    )
    states = [t.state for t in sweep.trials()]
    assert states == ["finished", "failed", "finished"]
    failed = [r for r in sweep.runs if r.state == "failed"][0]
    assert "ValueError: diverged on purpose" in failed.file("output.log").read_text()


def test_interrupted_sweep_resumes_without_repeating_finished_grid_points():
    calls = []

    def train(config):
        calls.append(config["lr"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        nbtrack.log({"val_loss": config["lr"]})

    grid = {**GRID, "parameters": {"lr": {"values": [1, 2, 3, 4, 5, 6]}}}
    sweep = nbtrack.sweep(grid, train, project="resume")
    assert sweep.state == "stopped" and [t.state for t in sweep.trials()] == [
        "finished",
        "finished",
        "interrupted",
    ]
    resumed = nbtrack.sweep(resume=sweep.name, function=train)
    finished = [t for t in resumed.trials() if t.state == "finished"]
    assert sorted(t.params["lr"] for t in finished) == [1, 2, 3, 4, 5, 6]
    assert calls == [1, 2, 3, 3, 4, 5, 6] and resumed.state == "finished"


def test_a_metric_never_logged_is_warned_once():
    def train(config):
        nbtrack.log({"loss": 1.0})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep = nbtrack.sweep({**GRID, "parameters": {"lr": {"values": [1, 2]}}}, train, project="nometric")
    messages = [str(w.message) for w in caught if "never logged" in str(w.message)]
    assert len(messages) == 1 and "'val_loss'" in messages[0] and "loss" in messages[0]
    assert all(t.value is None and t.state == "finished" for t in sweep.trials())
    assert all(any(e.kind == "sweep_metric_missing" for e in run.events()) for run in sweep.runs)


def test_bad_sweep_calls_are_explained():
    with pytest.raises(SweepError, match="needs the function"):
        nbtrack.sweep(GRID)
    with pytest.raises(ValueError, match="count must be a positive int"):
        nbtrack.sweep(GRID, objective, count=0)
    with pytest.raises(TypeError, match="must be callable"):
        nbtrack.sweep(GRID, "train")
    created = create(GRID, project="x")
    with pytest.raises(SweepError, match="not both"):
        nbtrack.sweep(GRID, objective, resume=created.id)
    with pytest.raises(nbtrack.NbtrackError, match="No sweep with id or name 'nope'"):
        nbtrack.sweep(resume="nope", function=objective)


AGENT_MODULE = """
import time
import nbtrack

def train(config):
    time.sleep(0.05)
    nbtrack.log({"val_loss": config["a"] * 10 + config["b"]})
"""


def test_three_agent_processes_cover_a_grid_exactly_once(tmp_path, store_dir, python, python_env):
    (tmp_path / "agent_target.py").write_text(textwrap.dedent(AGENT_MODULE))
    grid = {
        "method": "grid",
        "metric": {"name": "val_loss"},
        "parameters": {"a": {"values": [0, 1, 2]}, "b": {"values": [0, 1, 2, 3]}},
    }
    sweep = create(grid, project="agents", store=store_dir)
    env = {**python_env, "NBTRACK_STORE": str(store_dir)}
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
    assert len(trials) == 12 and all(t.state == "finished" for t in trials)
    assert sorted(t.grid_index for t in trials) == list(range(12))
    assert sorted((t.params["a"], t.params["b"]) for t in trials) == [
        (a, b) for a in range(3) for b in range(4)
    ]
    assert len({t.worker for t in trials}) >= 2  # the work was shared
    ran = sum(int(out.split("Ran ")[1].split(" ")[0]) for out, _ in outputs)
    assert ran == 12
    assert sweep.state == "finished"


def test_agent_function_and_cli_errors(tmp_path, store_dir, capsys):
    from nbtrack.cli import main

    (tmp_path / "sweep.yaml").write_text(
        "method: grid\nmetric: {name: val_loss}\nparameters:\n  lr: {values: [1, 2]}\n"
    )
    assert main(["--store", str(store_dir), "sweep", str(tmp_path / "sweep.yaml"), "--project", "cli"]) == 0
    out = capsys.readouterr().out
    assert "grid search, 2 grid points" in out and "nbtrack agent" in out
    sweep_id = out.split("(")[1].split(")")[0]
    assert main(["--store", str(store_dir), "agent", sweep_id, "--function", "nomodule_xyz:train"]) == 1
    assert "No module named 'nomodule_xyz'" in capsys.readouterr().err
    (tmp_path / "t.py").write_text("import nbtrack\ndef train(c):\n    nbtrack.log({'val_loss': c['lr']})\n")
    assert (
        main(["--store", str(store_dir), "agent", sweep_id, "--function", f"{tmp_path / 't.py'}:train"]) == 0
    )
    assert "Ran 2 trials" in capsys.readouterr().out
    assert main(["--store", str(store_dir), "agent", sweep_id, "--function", "bad-spec"]) == 1
    assert "MODULE:FUNCTION" in capsys.readouterr().err
    assert agent(sweep_id, objective, store=store_dir) == 0  # nothing left


def test_live_sweep_view_and_report(notebook, tmp_path):
    sweep = nbtrack.sweep(
        {**GRID, "parameters": {"lr": {"values": [0.001, 0.01, 0.1]}}}, objective, project="view"
    )
    handle = notebook[-1]
    data = handle.bundles[-1]
    assert handle.metadata[-1] == {
        "nbtrack": {"view": "sweep", "sweep_id": sweep.id, "store": sweep.store.location}
    }
    assert "Sweep " + sweep.name in data["text/html"] and "Best so far" in data["text/html"]
    from nbtrack.ui.sweep import SweepView

    view = SweepView(sweep)
    assert [row["cells"]["config.lr"] for row in view.table.rows] == [0.001, 0.01, 0.1]
    assert [row["cells"]["state"] for row in view.table.rows] == ["finished"] * 3
    assert len(view.parallel.lines) == 3
    (figure,) = view.best.widget.children
    values = [t.value for t in sweep.trials()]
    assert list(figure.marks[0].y) == [min(values[: i + 1]) for i in range(3)]
    assert RecordingComm.log  # the view's widgets reached the front end
    from nbtrack.reports.sections import sweep_section

    html = sweep_section(sweep)
    assert "grid search · 3 trials" in html and "<svg" in html
    assert len(notebook) == 1  # the trials' runs displayed no dashboards of their own


def test_sweep_view_sorts_its_table_and_notebook_reports_render_sweeps(notebook, tmp_path):
    import nbformat

    from nbtrack.ui.sweep import SweepView
    from tests.test_compare import from_browser

    sweep = nbtrack.sweep(
        {**GRID, "parameters": {"lr": {"values": [0.1, 0.001, 0.01]}}}, objective, project="sort"
    )
    view = SweepView(sweep)
    from_browser(view.table, sort="-val_loss")
    values = [row["cells"]["val_loss"] for row in view.table.rows]
    assert values == sorted(values, reverse=True)
    from_browser(view.table, sort="config.lr")
    assert [row["cells"]["config.lr"] for row in view.table.rows] == [0.001, 0.01, 0.1]

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("sweep = nbtrack.sweep(...)")
    meta = {"nbtrack": {"view": "sweep", "sweep_id": sweep.id, "store": sweep.store.location}}
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<p>saved</p>"}, metadata=meta)]
    gone = dict(meta["nbtrack"], sweep_id="missing")
    cell.outputs.append(
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<p>old snapshot</p>"}, metadata={"nbtrack": gone}
        )
    )
    nb.cells = [cell]
    path = tmp_path / "sweep.ipynb"
    nbformat.write(nb, path)
    html = nbtrack.report(path).read_text()
    assert f"Sweep {sweep.name}" in html and "grid search · 3 trials" in html
    assert "old snapshot" in html and "Sweep missing is not in the store" in html


def test_the_stop_button_of_the_current_trial_stops_the_sweep(notebook):
    from nbtrack.run import current_run

    def train(config):
        nbtrack.log({"val_loss": config["lr"]})
        if config["lr"] == 2:
            current_run()._dashboard().stop_button.click()  # what the Stop button in the sweep view does

    sweep = nbtrack.sweep({**GRID, "parameters": {"lr": {"values": [1, 2, 3]}}}, train, project="stop")
    assert [t.state for t in sweep.trials()] == ["finished", "interrupted"] and sweep.state == "stopped"
    assert [r.state for r in sweep.runs] == ["finished", "interrupted"]


def test_many_trials_do_not_pile_up_store_connections():
    """Each trial's run has a writer thread with its own connection: it must close when the run ends."""
    from nbtrack.store import open_store

    store = open_store()
    sweep = nbtrack.sweep(
        {"method": "random", "metric": {"name": "val_loss"}, "parameters": {"lr": {"min": 0.0, "max": 1.0}}},
        objective,
        project="leak",
        count=30,
        store=store,
    )
    assert len(sweep.trials()) == 30
    assert len(store._connections) <= 3  # the caller's thread, not one per trial
