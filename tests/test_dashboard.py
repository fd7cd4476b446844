"""The live dashboard: pure chart functions, and the widget through a recording comm (no browser)."""

from __future__ import annotations

import threading
import time
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import nbtrack
from nbtrack.common.series import History
from nbtrack.errors import NbtrackWarning
from nbtrack.render.charts import (
    ChartSettings,
    drawn_charts,
    ema,
    epoch_of_steps,
    group_families,
    metric_family,
)
from nbtrack.render.svg import charts_svg, nice_ticks
from nbtrack.run.live import LiveHistory
from nbtrack.ui.dashboard import MAX_INTERVAL, MIN_INTERVAL
from tests.clock import VirtualClock
from tests.widget_helpers import RecordingComm

# -- pure functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("batch/loss", "loss"),
        ("loss", "loss"),
        ("val_loss", "loss"),
        ("val_accuracy", "accuracy"),
        ("train/mae", "train/mae"),
        ("epoch", None),
        ("_hidden", None),
        ("learning_rate", "learning_rate"),
    ],
)
def test_metric_family(key, family):
    assert metric_family(key) == family


def test_group_families_orders_loss_accuracy_first_and_lr_last():
    keys = [
        "learning_rate",
        "val_auc",
        "batch/accuracy",
        "epoch",
        "val_loss",
        "batch/loss",
        "loss",
        "auc",
        "accuracy",
    ]
    assert group_families(keys) == {
        "loss": ["batch/loss", "loss", "val_loss"],
        "accuracy": ["batch/accuracy", "accuracy"],
        "auc": ["auc", "val_auc"],
        "learning_rate": ["learning_rate"],
    }


def test_ema_is_debiased_and_keeps_gaps():
    values = np.array([1.0, 1.0, np.nan, 1.0])
    np.testing.assert_allclose(ema(values, 0.9)[[0, 1, 3]], [1.0, 1.0, 1.0])
    assert np.isnan(ema(values, 0.9)[2])
    assert ema(values, 0.0) is values
    smoothed = ema(np.array([0.0, 10.0]), 0.5)
    assert smoothed[0] == 0.0 and 0 < smoothed[1] < 10


def test_epoch_of_steps_from_logged_epochs():
    epochs = History("epoch", np.array([9, 19]), np.zeros(2), np.array([0.0, 1.0]))
    x = epoch_of_steps(np.array([0, 9, 14, 19, 24]), epochs)
    np.testing.assert_allclose(x, [0.1, 1.0, 1.5, 2.0, 2.5])
    assert epoch_of_steps(np.array([1]), History.empty("epoch")) is None
    np.testing.assert_allclose(
        epoch_of_steps(np.array([4]), History.empty("epoch"), steps_per_epoch=10), [0.5]
    )


def test_nice_ticks():
    assert nice_ticks(0, 1) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], abs=1e-12)
    assert nice_ticks(0, 7) == [0, 2, 4, 6]
    assert nice_ticks(-3, 12) == [0, 5, 10]
    assert nice_ticks(0.013, 0.061) == pytest.approx([0.02, 0.03, 0.04, 0.05, 0.06], abs=1e-12)
    assert nice_ticks(1, 2, count=4) == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert nice_ticks(5, 5) == [5]
    assert nice_ticks(float("nan"), 1) == []


def test_svg_snapshot_is_well_formed_and_escapes_user_strings():
    live = LiveHistory()
    live.add(
        [(i, 1000.0 + i, {"batch/<b>loss</b>": float(np.sin(i)), "val_x'\"&": float(i)}) for i in range(50)]
    )
    svg = charts_svg(
        drawn_charts(live, ChartSettings(), started=1000.0)[0], title="<script>alert(1)</script>"
    )
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "&lt;b&gt;loss&lt;/b&gt;" in svg and "val_x&#39;&quot;&amp;" in svg
    empty = charts_svg([], title="t")
    assert "No metrics logged." in empty and ET.fromstring(empty) is not None


# -- the widget, through a recording comm (tests/widget_helpers.py) -----------------------------------


def updates(messages):
    return [m for m in messages if m.msg_type == "comm_msg" and m.data.get("method") == "update"]


def test_plain_log_loop_drives_the_dashboard(notebook):
    run = nbtrack.init(project="p", name="plain")
    assert len(notebook) == 1  # displayed at init in a notebook
    dashboard = run._dashboard_obj
    for i in range(100):
        run.log({"loss": 1.0 / (i + 1), "val_loss": 2.0 / (i + 1)})
    run.refresh_views()
    figures = dashboard.charts._figures
    assert list(figures) == ["loss"]
    marks = dashboard.charts._marks
    np.testing.assert_allclose(marks["loss"].y, 1.0 / np.arange(1, 101))
    np.testing.assert_allclose(marks["loss"].x, np.arange(100))
    run.finish()
    final = notebook[0].bundles[-1]
    assert notebook[0].metadata[-1] == {
        "nbtrack": {"view": "run", "run_id": run.id, "store": run.store.location}
    }
    assert final["application/vnd.jupyter.widget-view+json"]["model_id"] == dashboard.widget.model_id
    assert "plain" in final["text/plain"] and "finished" in final["text/plain"]
    svg = final["image/svg+xml"]
    assert ET.fromstring(svg) is not None and ">loss<" in svg and "finished" in svg


def test_traffic_stays_bounded_for_a_million_steps(notebook, monkeypatch):
    import nbtrack.run as run_module

    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")  # only the Charts pane sends
    clock = VirtualClock()
    monkeypatch.setattr(run_module, "time", clock)
    run = nbtrack.init(project="p")
    start = len(RecordingComm.log)
    sizes = {}
    steps = 1_000_000
    for i in range(steps):
        clock.now = i * 1e-4  # 10,000 steps a second: 100 s in all
        run.log({"batch/loss": 1.0 / (1 + i % 977)})
        if i % 100_000 == 99_999:
            run.log({"loss": 0.5, "val_loss": 0.6, "epoch": float(i // 100_000)}, step=i)
        if i + 1 in (10_000, 100_000, steps):
            run.refresh_views()
            sizes[i + 1] = max((m.nbytes for m in updates(RecordingComm.log[start:])), default=0)
    seconds = clock.now
    live_updates = updates(RecordingComm.log[start:])
    run.finish()
    dashboard = run._dashboard_obj
    # One at once, then at most 4 a second, plus the three forced above and the one at finish; and it kept
    # refreshing (at least every MAX_INTERVAL).
    assert seconds / MAX_INTERVAL <= dashboard.refreshes <= 1 + seconds / MIN_INTERVAL + 4, (
        dashboard.refreshes
    )
    assert len(live_updates) / seconds <= 20, f"{len(live_updates)} comm updates in {seconds:.1f} s"
    # each series is sent reduced: x and y of at most 2,000 float64 points, whatever the run length
    assert max(m.nbytes for m in live_updates) <= 2 * 2000 * 8
    assert sizes[steps] <= 2 * 2000 * 8 and sizes[100_000] <= 2 * 2000 * 8
    assert len(dashboard.charts._marks["batch/loss"].x) <= 2000
    print(
        f"\n1M steps: {len(live_updates)} updates, {dashboard.refreshes} refreshes; bytes/update max {sizes}"
    )


def test_stop_button_clicked_from_another_thread_stops_fit(notebook):
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import keras, tiny_data, tiny_model

    reached = threading.Event()

    class Signal(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                reached.set()
                time.sleep(0.2)  # the click lands while training runs

    callback = NbtrackCallback()
    clicker = threading.Thread(
        target=lambda: reached.wait(30) and callback.run._dashboard_obj.stop_button.click()
    )
    clicker.start()
    x, y = tiny_data(256)
    history = tiny_model().fit(x, y, batch_size=8, epochs=20, callbacks=[Signal(), callback], verbose=0)
    clicker.join()
    run = callback.run
    assert len(history.history["loss"]) == 1  # stopped during the first epoch
    assert run.state == "interrupted"
    assert [e.kind for e in run.store.events(run.id)] == ["fit", "stopped"]
    dashboard = run._dashboard_obj
    assert dashboard.stop_button.disabled and "interrupted" in dashboard.header.value


def test_a_widget_fault_never_stops_training(notebook, monkeypatch):
    from nbtrack.keras import NbtrackCallback
    from nbtrack.ui.charts import ChartsPane

    from .keras_helpers import tiny_data, tiny_model

    def broken(self, changed):
        raise RuntimeError("widget exploded")

    monkeypatch.setattr(ChartsPane, "refresh", broken)
    callback = NbtrackCallback()
    x, y = tiny_data(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(
            x, y, batch_size=8, epochs=2, validation_split=0.25, callbacks=[callback], verbose=0
        )
    assert len(history.history["loss"]) == 2
    ours = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    assert len(ours) == 1 and "widget exploded" in ours[0] and "still being recorded" in ours[0]
    run = callback.run
    assert run.state == "finished" and len(run.store.history(run.id, "val_loss")) == 2


def test_display_needs_a_run():
    with pytest.raises(nbtrack.NbtrackError, match="needs a run"):
        nbtrack.display()


def test_display_outside_a_notebook_returns_none():
    run = nbtrack.init(project="p")
    assert nbtrack.display(run) is None
    run.finish()


def test_controls_redraw_after_training(notebook):
    run = nbtrack.init(project="p")
    for step in range(20):
        run.log({"batch/loss": float(20 - step)}, step=step)
        if step % 10 == 9:
            run.log({"loss": 1.0, "epoch": float(step // 10)}, step=step)
    run.finish()
    charts = run._dashboard_obj.charts
    np.testing.assert_allclose(charts._marks["batch/loss"].x, np.arange(20))
    charts.axis.value = "epoch"
    np.testing.assert_allclose(charts._marks["batch/loss"].x, (np.arange(20) + 1) / 10)
    np.testing.assert_allclose(charts._marks["loss"].x, [1.0, 2.0])
    assert charts._figures["loss"].axes[0].label == "epoch"
    charts.axis.value = "time"
    assert charts._figures["loss"].axes[0].label == "seconds"
    charts.log_y.value = True
    assert type(charts._figures["loss"].axes[1].scale).__name__ == "LogScale"
    charts.smoothing.value = 0.9
    raw = np.arange(20, 0, -1, dtype=float)
    np.testing.assert_allclose(charts._marks["batch/loss"].y, ema(raw, 0.9))


def test_system_pane_charts_samples_against_wall_time(notebook, monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0.2")
    run = nbtrack.init(project="p")
    dashboard = run._dashboard_obj
    run.progress.started, run.progress.training = time.time(), True  # as a fit would
    deadline = time.monotonic() + 60  # a hang guard: 4 samples take about a second
    while run._system.samples < 4 and time.monotonic() < deadline:
        run.log({"loss": 1.0})
        time.sleep(0.05)
    run.refresh_views()
    system = dashboard.system
    assert {"CPU %", "Memory (MB)"} <= set(system.grid.figures)
    cpu = system.grid.marks["system/cpu_percent"]
    sampled = run.live.get("system/cpu_percent")  # what the refresh handed to the pane
    assert len(sampled) >= 4 and (sampled.value >= 0).all()
    np.testing.assert_allclose(cpu.y, sampled.value)
    np.testing.assert_allclose(cpu.x, sampled.time - system.started)  # seconds since the run began
    assert system.started == run.created and (np.diff(np.asarray(cpu.x)) > 0).all()
    assert system.spans and system.spans[0][0] == run.progress.started  # the training span is shaded
    assert "CPU %" not in dashboard.charts.grid.figures  # system series stay out of the Charts tab
    assert not system.cores.figures  # per-core is collapsed, so nothing was sent for it
    system.per_core.selected_index = 0
    assert "CPU % per core" in system.cores.figures
    run.finish()
    svg = notebook[0].bundles[-1]["image/svg+xml"]
    assert ">CPU %<" in svg and ">Memory (MB)<" in svg


def test_logs_pane_shows_escaped_lines_and_filters(notebook, monkeypatch):
    from nbtrack.render.logs import render_lines

    body, matched = render_lines(["ok", "<script>alert(1)</script>", "OK again"], "ok")
    assert matched == 2 and "<script>" not in body and "ok\nOK again" in body
    run = nbtrack.init(project="p")
    for i in range(20):
        print(f"line {i} <b>bold?</b>")
    run.finish()
    logs = run._dashboard_obj.logs
    assert "line 19 &lt;b&gt;bold?&lt;/b&gt;" in logs.view.value and "<b>bold?" not in logs.view.value
    logs.filter.value = "line 1"
    assert logs.view.value.count("line 1") == 11  # line 1, line 10..19
    assert "11 match" in logs.status.value


def test_files_pane_lists_serves_and_previews_only_run_files(notebook, tmp_path):
    from nbtrack.ui.files import preview_text

    assert preview_text(b"a\x00b\xff", 4) == "ab\ufffd"
    assert "preview cut at 2 bytes of 10" in preview_text(b"ab", 10)
    run = nbtrack.init(project="p")
    secret = tmp_path / "secret.txt"
    secret.write_text("not a run file")
    note = tmp_path / "notes.txt"
    note.write_text("<script>alert(1)</script> hello")
    run.save(note)
    print("a line for output.log")
    run.finish()
    files = run._dashboard_obj.files
    listed = {f["name"]: f for f in files.view.files}
    assert {"notes.txt", "config.json", "summary.json", "output.log"} <= set(listed)
    assert listed["notes.txt"]["previewable"] and listed["notes.txt"]["size"] == note.stat().st_size
    sent = []
    files.view.send = lambda content, buffers=None: sent.append((content, buffers))
    files._on_message(files.view, {"request": "download", "name": "notes.txt"}, [])
    assert sent == [({"kind": "file", "name": "notes.txt"}, [note.read_bytes()])]
    files._on_message(files.view, {"request": "preview", "name": "notes.txt"}, [])
    assert files.view.preview == "<script>alert(1)</script> hello"  # the view sets it as textContent
    for name in (str(secret), "../../secret.txt", "nope.txt", None):
        files._on_message(files.view, {"request": "download", "name": name}, [])
    assert len(sent) == 1  # nothing outside the run's own files is served


def test_model_pane_gets_the_graph_and_stores_model_json(notebook):
    from nbtrack.capture.model_graph import ModelGraph
    from nbtrack.keras import NbtrackCallback
    from nbtrack.render.model import graph_svg, layer_table_html

    from .keras_helpers import tiny_data, tiny_model

    callback = NbtrackCallback()
    x, y = tiny_data(64)
    tiny_model().fit(x, y, batch_size=16, epochs=1, callbacks=[callback], verbose=0)
    run = callback.run
    pane = run._dashboard_obj.model
    graph = pane.view.graph
    assert [n["cls"] for n in graph["nodes"]] == ["InputLayer", "Dense", "Dense"]
    assert graph["totals"]["total"] == 8 * 8 + 8 + 8 * 2 + 2
    assert "parameters" in pane.summary.value and "Adam" in pane.summary.value
    stored = ModelGraph.from_json(nbtrack.get_run(run.id).file("model.json").read_text())
    assert [n.name for n in stored.nodes] == [n["name"] for n in graph["nodes"]] and stored.edges == [
        tuple(e) for e in graph["edges"]
    ]
    svg = graph_svg(stored)
    assert ET.fromstring(svg) is not None and svg.count("<rect x=") == 3 and svg.count("<path") == 2
    stored.nodes[1].name = "<script>x</script>"
    assert "<script>" not in graph_svg(stored) and "<script>" not in layer_table_html(stored)


def test_a_reopened_run_shows_the_same_dashboard(notebook, monkeypatch):
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import tiny_data, tiny_model

    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0.2")
    callback = NbtrackCallback()
    x, y = tiny_data(256)
    tiny_model().fit(x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[callback], verbose=2)
    live = callback.run._dashboard_obj
    reopened = nbtrack.show(callback.run.id)
    assert reopened.state == "finished" and "finished" in reopened.header.value
    assert set(reopened.charts.grid.figures) == set(live.charts.grid.figures)
    for key in ("loss", "val_loss", "batch/loss"):
        np.testing.assert_allclose(reopened.charts.grid.marks[key].y, live.charts.grid.marks[key].y)
    assert set(reopened.system.grid.figures) == set(live.system.grid.figures)
    assert reopened.system.spans == live.system.spans  # the fit's span, from its event
    assert reopened.model.view.graph["nodes"] == live.model.view.graph["nodes"]
    assert "Epoch 3/3" in reopened.logs.view.value
    assert {f["name"] for f in reopened.files.view.files} == {f["name"] for f in live.files.view.files}
    assert ">loss<" in reopened.snapshot_svg()


def test_html_snapshot_has_every_pane_and_no_script(notebook):
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import tiny_data, tiny_model

    run = nbtrack.init(project="p", name="<img src=x onerror=alert(1)>")
    print("<script>alert('log')</script>")
    x, y = tiny_data(64)
    tiny_model().fit(x, y, batch_size=16, epochs=2, callbacks=[NbtrackCallback()], verbose=0)
    run.finish()
    page = notebook[-1].bundles[-1]["text/html"]
    for title in ("Charts", "System", "Model", "Logs", "Files"):
        assert f">{title}</label>" in page
    assert "<script" not in page and "onerror=alert" not in page.replace(
        "&lt;img src=x onerror=alert(1)&gt;", ""
    )
    assert "&lt;script&gt;alert(&#x27;log&#x27;)&lt;/script&gt;" in page
    assert "Dense" in page and "config.json" in page and ">loss<" in page
    # the same snapshot may appear in two outputs (one display updated in place): no ids to collide, and
    # each copy's radio buttons in their own form, so one copy's tabs never switch the other's panes
    assert " id=" not in page and " for=" not in page
    assert page.count("<form") == 1 and page.count("type='radio'") == 5
