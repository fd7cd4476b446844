"""Search results and comparing runs: RunList, the pure compare functions, the compare widget and the runs
browser through a recording comm (no browser), and `%nbtrack runs` in a real IPython shell."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import nbtrack
from nbtrack.render.comparison import (
    MISSING,
    config_diff,
    diff,
    parallel_data,
    passes,
    prepare,
    run_colors,
    scatter_data,
    summary_diff,
    varying_config,
)
from nbtrack.store import open_store
from nbtrack.store.query import QueryError
from tests.widget_helpers import RecordingComm


def train(name, lr, *, opt="adam", epochs=3, steps=50, project="cmp", tags=(), extra=None):
    run = nbtrack.init(
        project=project, name=name, config={"lr": lr, "opt": opt, **(extra or {})}, tags=list(tags)
    )
    rng = np.random.default_rng(int(lr * 1e6) % 1000)
    step = 0
    for epoch in range(epochs):
        for _ in range(steps):
            run.log({"batch/loss": float(1 / (step + 1) + rng.random() * 0.01)})
            step += 1
        run.log(
            {
                "epoch": epoch,
                "loss": 1.0 / (epoch + 1),
                "val_loss": lr * 10 / (epoch + 1),
                "val_accuracy": 1 - lr,
            }
        )
    run.finish()
    return run


@pytest.fixture
def three_runs():
    return [
        train("low", 0.001, tags=["baseline"]),
        train("mid", 0.01, opt="sgd"),
        train("high", 0.1, tags=["baseline"]),
    ]


# -- RunList and nbtrack.runs ----------------------------------------------------------------------------
def test_runs_filters_sorts_limits_and_tables(three_runs):
    rs = nbtrack.runs(project="cmp", where="config.lr < 0.05", order_by="-summary.val_accuracy")
    assert rs.names == ["low", "mid"]
    assert [r.config["lr"] for r in rs] == [0.001, 0.01]
    top = nbtrack.runs(project="cmp", order_by="config.lr", limit=1)
    assert top.names == ["low"] and top.total == 3 and "1 of 3" in repr(top)
    assert nbtrack.runs(project="cmp", where="'baseline' in tags", order_by="name").names == ["high", "low"]
    frame = rs.to_pandas()
    assert list(frame.index) == rs.ids
    assert frame.loc[rs[0].id, "config.lr"] == 0.001 and frame.loc[rs[1].id, "config.opt"] == "sgd"
    assert math.isclose(frame.loc[rs[0].id, "summary.val_accuracy"], 0.999)
    assert {"state", "name", "created", "duration", "tags"} <= set(frame.columns)
    assert str(frame["created"].dtype).startswith("datetime64")
    assert isinstance(rs[0:1], type(rs)) and rs[0:1].names == ["low"]
    html = rs._repr_html_()
    assert "low" in html and "mid" in html and "config.lr" in html


def test_search_results_load_environment_on_demand(three_runs):
    run = nbtrack.runs(project="cmp", limit=1)[0]
    assert run.record.environment == {}  # left out of search results: it is the biggest column
    assert run.environment["python"]["version"]  # read when asked for
    assert nbtrack.get_run(run.id).history("loss", samples=2).value.shape == (2,)


def test_runs_bad_input_is_explained(three_runs):
    with pytest.raises(QueryError, match=r"No run in project 'cmp' has config.lrr. Did you mean config.lr\?"):
        nbtrack.runs(project="cmp", where="config.lrr < 0.01")
    assert len(nbtrack.runs(project="cmp", where="config.nothing_like_it < 0.01")) == 0  # no near key: empty
    with pytest.raises(QueryError, match="Unknown field 'lr'"):
        nbtrack.runs(where="lr < 1")
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        nbtrack.runs(limit=-1)
    with pytest.raises(QueryError, match="where must be a string"):
        nbtrack.runs(where=["config.lr < 1"])


# -- pure compare functions ---------------------------------------------------------------------------
def test_prepare_overlays_one_line_per_run_with_stable_colours(three_runs):
    rs = nbtrack.runs(project="cmp", order_by="config.lr")
    colors = run_colors(rs.ids)
    charts = prepare(rs, ["val_loss", "batch/loss"], colors=colors, samples=40)
    assert [c.family for c in charts] == ["val_loss", "batch/loss"]
    for chart in charts:
        assert [line.label for line in chart.lines] == ["low", "mid", "high"]
        assert [line.color for line in chart.lines] == [colors[i] for i in rs.ids]
        assert all(len(line.x) <= 40 for line in chart.lines)
    batch = charts[1].lines[0]
    full = rs[0].history("batch/loss")
    assert (
        batch.x[0] == full.step[0] and batch.x[-1] == full.step[-1]
    )  # global steps; the reduction keeps the ends
    by_epoch = prepare(rs, ["val_loss"], x="epoch")[0].lines[2]
    np.testing.assert_allclose(by_epoch.x, [1, 2, 3])  # the end of epoch e sits at e + 1
    np.testing.assert_allclose(by_epoch.y, [1.0, 0.5, 1 / 3])
    by_time = prepare(rs, ["val_loss"], x="time")[0].lines[0]
    assert by_time.x[0] >= 0 and np.all(np.diff(by_time.x) >= 0)
    smooth = prepare(rs, ["batch/loss"], smoothing=0.9)[0].lines[0]
    raw = prepare(rs, ["batch/loss"])[0].lines[0]
    assert np.std(np.diff(smooth.y)) < np.std(np.diff(raw.y))
    assert prepare(rs[:1], ["nope"]) == []
    with pytest.raises(ValueError, match="x must be one of step, epoch, time"):
        prepare(rs, x="wall")


def test_diffs_name_flattened_keys_and_missing_values():
    rows = diff(
        {"lr": 0.1, "opt": {"name": "adam", "beta": 0.9}, "same": 1},
        {"lr": 0.2, "opt": {"name": "adam"}, "new": True, "same": 1},
    )
    assert rows == [("config.lr", 0.1, 0.2), ("config.new", MISSING, True), ("config.opt.beta", 0.9, MISSING)]
    assert diff({"x": float("nan")}, {"x": float("nan")}) == []
    assert diff({"flag": True}, {"flag": 1}) == [("config.flag", True, 1)]


def test_config_and_summary_diff_of_stored_runs(three_runs):
    low, mid = nbtrack.get_run("low"), nbtrack.get_run("mid")
    assert config_diff(low, mid) == [("config.lr", 0.001, 0.01), ("config.opt", "adam", "sgd")]
    keys = [k for k, _, _ in summary_diff(low, mid)]
    assert (
        "summary.val_loss" in keys
        and "summary.epoch" not in keys
        and not any(k.startswith("summary._") for k in keys)
    )


def test_parallel_data_and_brushes(three_runs):
    rs = nbtrack.runs(project="cmp", order_by="config.lr")
    assert varying_config(rs) == ["config.lr", "config.opt"]
    axes, lines = parallel_data(rs, ["config.lr", "config.opt", "config.absent"], "summary.val_accuracy")
    assert [(a["key"], a["kind"]) for a in axes] == [
        ("config.lr", "number"),
        ("config.opt", "category"),
        ("config.absent", "category"),
        ("summary.val_accuracy", "number"),
    ]
    assert axes[0]["log"] is True and axes[1]["categories"] == ["adam", "sgd"]
    assert [line["values"][:2] for line in lines] == [[0.001, "adam"], [0.01, "sgd"], [0.1, "adam"]]
    assert lines[0]["color_value"] == pytest.approx(0.999)
    assert [passes(line, axes, {"config.lr": [0.005, 0.5]}) for line in lines] == [False, True, True]
    assert [passes(line, axes, {"config.opt": ["adam"]}) for line in lines] == [True, False, True]
    assert not any(passes(line, axes, {"config.absent": ["x"]}) for line in lines)  # missing fails a brush
    xs, ys, ids = scatter_data(rs, "config.lr", "summary.val_accuracy")
    assert ids == rs.ids and list(xs) == [0.001, 0.01, 0.1]


# -- the compare widget through a recording comm ------------------------------------------------------
def from_browser(widget, **state):
    """What the browser sends when the user changes a synced trait."""
    widget._handle_msg(
        {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
    )


def test_selection_drives_overlay_charts_and_diff(three_runs, notebook):
    rs = nbtrack.runs(project="cmp", order_by="config.lr")
    view = nbtrack.compare(rs)
    assert view.table.selected == rs.ids  # up to 5 selected at first
    assert [row["id"] for row in view.table.rows] == rs.ids and view.table.total == 3
    marks = {key: [m.labels[0] for m in fig.marks] for key, fig in view.grid.figures.items()}
    assert marks["val_loss"] == ["low", "mid", "high"]
    RecordingComm.log.clear()
    from_browser(view.table, selected=[rs.ids[2], rs.ids[0]])
    shown = [f for f in view.grid.widget.children]
    assert all([m.labels[0] for m in f.marks] == ["low", "high"] for f in shown)
    colors = {m.labels[0]: m.colors[0] for m in shown[0].marks}
    assert colors == {"low": view.colors[rs.ids[0]], "high": view.colors[rs.ids[2]]}
    assert any(m.msg_type == "comm_msg" for m in RecordingComm.log)  # the change reached the front end
    assert "high" in view.diff.value and "config.lr" in view.diff.value and "0.1" in view.diff.value
    from_browser(view.table, selected=[rs.ids[1]])
    assert "Select two runs" in view.diff.value
    view.x_axis.value = "epoch"
    assert view.grid.figures["val_loss"].axes[0].label == "epoch"
    bundle, metadata = view._repr_mimebundle_()
    assert metadata["nbtrack"]["run_ids"] == rs.ids and metadata["nbtrack"]["view"] == "compare"
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.widget.model_id
    assert "mid" in bundle["text/html"] and "<svg" in bundle["text/html"]


def test_filter_sort_and_brush_narrow_the_table(three_runs, notebook):
    view = nbtrack.compare(nbtrack.runs(project="cmp"))
    names = lambda: [row["cells"]["name"] for row in view.table.rows]  # noqa: E731
    view.filter.value = "config.lr >= 0.01"
    assert sorted(names()) == ["high", "mid"] and view.filter_error.value == ""
    view.filter.value = "config.lr >="
    assert "Expected a value" in view.filter_error.value and sorted(names()) == ["high", "mid"]  # kept
    view.filter.value = ""
    from_browser(view.table, sort="config.lr")
    assert names() == ["low", "mid", "high"]
    from_browser(view.table, sort="-config.lr")
    assert names() == ["high", "mid", "low"]
    assert view.parallel.axes[-1]["key"].startswith("summary.") and len(view.parallel.lines) == 3
    from_browser(view.parallel, brushes={"config.lr": [0.005, 0.05]})
    assert names() == ["mid"] and "1 brush" in view.brush_note.value
    from_browser(view.parallel, brushes={"config.opt": ["adam"]})
    assert names() == ["high", "low"]
    view.clear_brushes.click()
    assert len(names()) == 3 and view.brush_note.value == ""
    view.column_picker.value = ["name", "config.opt"]
    assert [c["key"] for c in view.table.columns] == ["name", "config.opt"]
    assert set(view.table.rows[0]["cells"]) == {"name", "config.opt"}


def test_widget_escapes_and_serialises_odd_values(notebook):
    train("<script>alert(1)</script>", 0.5, extra={"gamma": float("nan")})
    train("plain", 0.2, extra={"gamma": float("inf")})
    view = nbtrack.compare(nbtrack.runs(project="cmp"))
    view.set_columns(["name", "config.gamma"])
    assert sorted(row["cells"]["config.gamma"] for row in view.table.rows) == ["Infinity", "NaN"]
    html = view.snapshot_html()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    from nbtrack.render.svg import parallel_svg

    svg = parallel_svg(view.parallel.axes, view.parallel.lines)
    root = ET.fromstring(svg)  # well-formed, names escaped
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sorted(titles) == ["<script>alert(1)</script>", "plain"]
    assert svg in html


def test_compare_accepts_ids_names_and_live_runs(three_runs, notebook):
    assert [r.name for r in nbtrack.compare(["low", three_runs[1].id]).runs] == ["low", "mid"]
    assert [r.name for r in nbtrack.compare([three_runs[2]]).runs] == ["high"]
    assert len(nbtrack.compare().runs) == 3  # the newest runs
    with pytest.raises(TypeError, match="compare takes several runs"):
        nbtrack.compare("low")


# -- the runs browser ----------------------------------------------------------------------------------
def test_browser_opens_runs_compares_and_refreshes(three_runs, notebook, store_dir):
    train("other", 0.3, project="second")
    browser = nbtrack.browse("cmp")
    assert browser.projects.value == "cmp" and [label for label, _ in browser.projects.options][0].startswith(
        "second"
    )
    assert [row["cells"]["name"] for row in browser.table.rows] == ["high", "mid", "low"]  # newest first
    browser._on_message(browser.table, {"event": "open", "id": three_runs[0].id}, [])
    assert browser.opened == three_runs[0].id
    assert browser.dashboard.widget in browser.detail.children
    assert sorted(browser.dashboard.charts._figures) == ["accuracy", "loss"]  # the opened run's charts
    browser._on_message(browser.table, {"event": "open", "id": "not-a-run"}, [])
    assert browser.opened == three_runs[0].id  # unknown ids are ignored
    from_browser(browser.table, selected=[three_runs[0].id, three_runs[2].id])
    browser.compare_selected()
    assert browser.comparison is not None and [r.name for r in browser.comparison.runs] == ["low", "high"]
    train("late", 0.02)
    browser.refresh()
    assert [row["cells"]["name"] for row in browser.table.rows][0] == "late"
    assert [r.name for r in browser.comparison.runs] == ["low", "high"]  # still comparing after refresh
    with pytest.raises(ValueError, match="No project 'nope'"):
        nbtrack.browse("nope")


def test_browser_shows_a_run_training_elsewhere_as_running(notebook, store_dir):
    store = open_store(store_dir)
    store.create_run(
        run_id="elsewhere1",
        project="remote",
        name="remote-run",
        config={},
        tags=(),
        notes=None,
        created=time.time(),
        host="another-host",
        pid=1,
    )
    browser = nbtrack.browse("remote")
    assert browser.table.rows[0]["cells"]["state"] == "running"
    assert "1 running" in browser.projects.options[0][0]


def test_magic_runs_displays_the_browser(three_runs, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbtrack")
        shell.run_cell("%nbtrack runs cmp")
        assert type(shown[-1]).__name__ == "RunsBrowser" and shown[-1].projects.value == "cmp"
    finally:
        shell.run_cell("%unload_ext nbtrack")
        InteractiveShell.clear_instance()
