"""The quickstart notebook, executed end to end by nbclient in a real kernel, on a real store."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil

import numpy as np
import pytest

from nbtrack.reports.execute import execute_notebook
from nbtrack.run.live import MAX_POINTS
from nbtrack.store import open_store

from .conftest import ROOT

pytestmark = pytest.mark.slow
EPOCHS = 2


# A cached MNIST, as `keras.datasets.mnist.load_data()` returns it (keras checks the cached file's hash, so the
# stand-in replaces the loader, from an IPython startup file, before the notebook's first cell). Its size differs
# from the offline digits' (1,437 training images) and is large enough that the live charts must reduce the batch
# series (more than nbtrack.run.live.MAX_POINTS points over the two epochs).
CACHED_MNIST = """
import numpy as np
import keras


def load_data(path="mnist.npz"):
    rng = np.random.default_rng(0)

    def images(n):
        labels = rng.integers(0, 10, n).astype("uint8")
        x = rng.integers(0, 60, (n, 28, 28)).astype("uint8")
        for label in range(10):  # each digit is a bright patch in its own place: learnable in an epoch
            row, col = divmod(label, 5)
            x[labels == label, 4 + 12 * row : 12 + 12 * row, 2 + 5 * col : 6 + 5 * col] = 255
        return x, labels

    return images({train}), images({test})


keras.datasets.mnist.load_data = load_data
"""
CACHED_SIZES = (20_000, 2_000)
DIGITS_SIZES = (1437, 360)  # scikit-learn's 1,797 digits split 80/20


@pytest.fixture(scope="module", params=["offline", "cached-mnist"])
def executed(request, tmp_path_factory):
    """The quickstart run twice: offline with no MNIST cache (it falls back to the digits), and with one."""
    tmp = tmp_path_factory.mktemp(f"quickstart-{request.param}")
    notebook = tmp / "01_quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", notebook)
    store_dir = tmp / "nbtrack-runs"
    # No download reaches the network, whatever the machine has: conftest points the session's HTTP(S) proxy
    # at a port that refuses, so keras' MNIST fetch fails at once offline and with a network alike.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBTRACK_STORE", str(store_dir))
        mp.setenv("NBTRACK_DEMO_EPOCHS", str(EPOCHS))
        mp.delenv("NBTRACK_SILENT", raising=False)
        if request.param == "cached-mnist":
            startup = tmp / "ipython" / "profile_default" / "startup"
            startup.mkdir(parents=True)
            train, test = CACHED_SIZES
            (startup / "00-cached-mnist.py").write_text(CACHED_MNIST.format(train=train, test=test))
            mp.setenv("IPYTHONDIR", str(tmp / "ipython"))
        nb = execute_notebook(notebook, tmp / "executed.ipynb", timeout=600)
    return nb, store_dir, request.param


def all_text(nb) -> str:
    return "".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_quickstart_records_a_run(executed):
    nb, store_dir, dataset = executed
    outputs = all_text(nb)
    store = open_store(store_dir, create=False)
    runs = store.list_runs("test_project")
    assert len(runs) == 1
    run = runs[0]
    assert f"nbtrack: run {run.name} ({run.id}) in project 'test_project'" in outputs
    assert run.state == "finished"
    assert (
        run.config["batch_size"] == 16
        and run.config["epochs"] == EPOCHS
        and run.config["learning_rate"] == 1e-3
    )
    assert run.config["optimizer"]["class"] == "Adam"
    if dataset == "cached-mnist":
        train, test = CACHED_SIZES
        assert run.config["dataset"] == "mnist" and "MNIST download unavailable" not in outputs
    else:
        train, test = DIGITS_SIZES
        assert run.config["dataset"] == "sklearn-digits-28x28"
        assert "MNIST download unavailable (Exception); using scikit-learn's digits instead." in outputs
    assert f"{run.config['dataset']} ({train}, 784) ({test}, 784)" in outputs  # the notebook's own report
    assert run.config["steps_per_epoch"] == math.ceil(train / 16)
    assert run.tags == ("quickstart", "mlp")
    stats = store.metric_stats(run.id)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch", "batch/loss", "learning_rate"} <= set(
        stats
    )
    assert store.history(run.id, "epoch").value.tolist() == [float(e) for e in range(EPOCHS)]
    assert stats["batch/loss"].count == EPOCHS * run.config["steps_per_epoch"]
    assert 0.0 < run.summary["test_accuracy"] <= 1.0
    assert run.summary["val_accuracy"] > 0.5  # it learned something
    assert "best val_loss:" in outputs
    assert "model-best.keras" in {f.name for f in store.list_files(run.id)}
    assert "keras" in run.environment["packages"]
    assert "IOPub message rate exceeded" not in outputs


def widget_state(nb) -> dict:
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def lines_by_label(nb) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for model in widget_state(nb).values():
        if model["model_name"] != "LinesModel":
            continue
        arrays = {}
        for buffer in model.get("buffers", []):
            raw = base64.b64decode(buffer["data"])
            arrays[buffer["path"][0]] = np.frombuffer(raw, dtype=model["state"][buffer["path"][0]]["dtype"])
        out[model["state"]["labels"][0]] = arrays
    return out


def test_saved_widget_state_holds_every_epoch_and_the_reduced_batch_series(executed):
    nb, store_dir, _ = executed
    lines = lines_by_label(nb)
    for key in ("loss", "val_loss"):
        assert len(lines[key]["y"]) == EPOCHS, key
        assert np.isfinite(lines[key]["y"]).all()
    store = open_store(store_dir, create=False)
    run = store.get_run("latest")
    np.testing.assert_allclose(lines["val_loss"]["y"], store.history(run.id, "val_loss").value)
    # The chart holds the stored batch series: every point while there are at most MAX_POINTS of them (the digits),
    # a reduction to at most MAX_POINTS stored points keeping the ends and the extremes past that (a full MNIST).
    batches = store.history(run.id, "batch/loss")
    assert len(batches) == EPOCHS * run.config["steps_per_epoch"]
    np.testing.assert_array_equal(batches.step, np.arange(len(batches)))
    steps, shown = lines["batch/loss"]["x"].astype(np.int64), lines["batch/loss"]["y"]
    np.testing.assert_array_equal(shown, batches.value[steps])  # each drawn point is the stored one
    if len(batches) <= MAX_POINTS:
        np.testing.assert_array_equal(steps, batches.step)
    else:
        assert len(shown) <= MAX_POINTS and (np.diff(steps) > 0).all()
        assert steps[0] == 0 and steps[-1] == len(batches) - 1
        assert batches.value.min() in shown and batches.value.max() in shown


def test_fit_cell_carries_the_final_svg_snapshot(executed):
    nb, _, _ = executed
    fit_cell = next(c for c in nb.cells if c.cell_type == "code" and "model.fit(" in c.source)
    bundles = [
        o["data"]
        for o in fit_cell.outputs
        if o.output_type == "display_data" and "image/svg+xml" in o["data"]
    ]
    assert len(bundles) == 1
    bundle = bundles[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    svg = bundle["image/svg+xml"]
    assert svg.startswith("<svg") and ">loss<" in svg and ">accuracy<" in svg and ">val_loss<" in svg
    assert "finished" in svg  # updated when the run finished, in a later cell
    assert "finished" in bundle["text/plain"]


def anywidget_states(nb, trait: str) -> list[dict]:
    return [m["state"] for m in widget_state(nb).values() if trait in m.get("state", {})]


def test_saved_state_holds_every_pane(executed):
    nb, _, _ = executed
    # System: sampled series with points
    lines = lines_by_label(nb)
    assert len(lines["system"]["y"]) >= 2 and len(lines["used"]["y"]) >= 2
    # Model: the MLP's input and three Dense layers, 235,146 parameters
    (graph,) = [s["graph"] for s in anywidget_states(nb, "graph") if s["graph"]]
    assert [n["cls"] for n in graph["nodes"]] == ["InputLayer", "Dense", "Dense", "Dense"]
    assert graph["totals"]["total"] == 235_146
    # Logs: Keras' epoch lines
    logs = [
        m["state"]["value"]
        for m in widget_state(nb).values()
        if m["model_name"] == "HTMLModel" and "<pre" in m["state"].get("value", "")
    ]
    assert any(f"Epoch {EPOCHS}/{EPOCHS}" in text and "val_loss" in text for text in logs)
    # Files: what the run keeps
    (files,) = [s["files"] for s in anywidget_states(nb, "files") if s["files"]]
    names = {f["name"] for f in files}
    assert {
        "config.json",
        "summary.json",
        "environment.json",
        "requirements.txt",
        "model-best.keras",
        "model.json",
        "output.log",
    } <= names


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    notebook = tmp / "compare.ipynb"
    shutil.copy(ROOT / "notebooks" / "compare.ipynb", notebook)
    store_dir = tmp / "nbtrack-runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBTRACK_STORE", str(store_dir))
        mp.delenv("NBTRACK_SILENT", raising=False)
        mp.delenv("NBTRACK_PROJECT", raising=False)
        nb = execute_notebook(notebook, tmp / "executed.ipynb", timeout=600)
    return nb, store_dir


def reachable(state: dict, model_id: str) -> dict[str, dict]:
    """The saved models a widget view shows: `model_id` and every model it references, transitively."""
    found: dict[str, dict] = {}
    todo = [model_id]
    while todo:
        current = todo.pop()
        if current in found or current not in state:
            continue
        found[current] = state[current]
        todo.extend(re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[current]["state"])))
    return found


def test_compare_notebook_compares_three_runs(compared):
    nb, store_dir = compared
    runs = open_store(store_dir, create=False).list_runs("compare-demo")
    assert len(runs) == 3 and {r.state for r in runs} == {"finished"}
    assert len({r.config["lr"] for r in runs}) == 3
    names = {r.id: r.name for r in runs}

    (output,) = [o for o in nb.cells[-1].outputs if "data" in o]
    bundle = output["data"]
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert all(name in bundle["text/html"] for name in names.values()), "the snapshot misses a run"
    assert "3 runs" in bundle["text/plain"]

    models = reachable(widget_state(nb), view["model_id"])  # the compare widget's own, not the dashboards'
    states = [m["state"] for m in models.values()]
    (table,) = [s for s in states if s.get("_anywidget_id", "").endswith("RunsTableView")]
    assert {row["id"] for row in table["rows"]} == set(names)
    assert table["selected"] and set(table["selected"]) <= set(names)
    (parallel,) = [s for s in states if s.get("_anywidget_id", "").endswith("ParallelView")]
    assert {line["id"] for line in parallel["lines"]} == set(names) and len(parallel["lines"]) == 3
    assert any(axis["key"] == "config.lr" for axis in parallel["axes"])

    selected_names = {names[i] for i in table["selected"]}
    figures = [m["state"] for m in models.values() if m["model_name"] == "FigureModel"]
    overlays = [f for f in figures if f["title"]]  # one per metric; the scatter has no title
    assert overlays, "no overlay chart"
    for figure in overlays:
        labels = [
            label
            for ref in figure["marks"]
            for label in models[ref.removeprefix("IPY_MODEL_")]["state"]["labels"]
        ]
        assert sorted(labels) == sorted(selected_names), figure["title"]
