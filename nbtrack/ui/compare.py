"""The compare widget: a runs table (filter, sort, select), overlay charts of the selected runs, parallel
coordinates whose brushes filter the table, a scatter of a parameter against a metric, and a config diff.

    nbtrack.compare(nbtrack.runs(project="mnist", order_by="-summary.val_accuracy", limit=20))

What is drawn comes from `nbtrack.render.comparison` (pure functions); this module copies it into widgets.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets

from nbtrack.read.records import RunList, StoredRun
from nbtrack.render.charts import ChartSelection, left_out_note, select_charts
from nbtrack.render.comparison import (
    metric_keys,
    parallel_data,
    passes,
    prepare,
    run_colors,
    scatter_data,
    summary_metrics,
    varying_config,
)
from nbtrack.render.tables import (
    available_columns,
    default_columns,
    diff_html,
    runs_table_html,
    table_columns,
    table_rows,
)
from nbtrack.store.query import QueryError, parse, parse_order, sort_records
from nbtrack.ui import js_module

DEFAULT_SELECTED = 5
DEFAULT_METRICS = 4
METRIC_DISCOVERY = 200  # metric names are gathered from the selected runs and this many of the others


class RunsTableView(anywidget.AnyWidget):
    """js/runs_table.js: rows, `selected` and `sort` are two-way; a click on a name sends {event: open, id}."""

    _esm = js_module("runs_table.js")
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sort = traitlets.Unicode("").tag(sync=True)
    highlight = traitlets.List(traitlets.Unicode(), allow_none=True, default_value=None).tag(sync=True)


class ParallelView(anywidget.AnyWidget):
    """js/parallel_coords.js: `brushes` is two-way ({axis key: [lo, hi]} or {axis key: [category, ...]})."""

    _esm = js_module("parallel_coords.js")
    axes = traitlets.List(traitlets.Dict()).tag(sync=True)
    lines = traitlets.List(traitlets.Dict()).tag(sync=True)
    color_label = traitlets.Unicode("").tag(sync=True)
    brushes = traitlets.Dict().tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)


class CompareWidget:
    """Everything about comparing a set of runs; ``.widget`` is the ipywidgets tree."""

    def __init__(self, runs: Sequence[StoredRun]) -> None:
        import ipywidgets as W

        self.runs = list(runs)
        self.by_id = {r.id: r for r in self.runs}
        self.colors = run_colors(r.id for r in self.runs)
        self.where = ""
        self.visible: list[StoredRun] = list(self.runs)
        self.columns = default_columns(self.runs)

        self._build_table(W)
        self._build_charts(W)
        params, scores = varying_config(self.runs), summary_metrics(self.runs)
        self._build_parallel(W, params, scores)
        self._build_scatter(W, params, scores)
        self.diff = W.HTML("")
        self.tabs = self._tabs(W)
        self.widget = W.VBox(
            [W.HBox([self.filter, self.filter_error]), self.column_picker, self.table, self.tabs],
            layout=W.Layout(width="100%"),
        )
        self._observe()

        self.refresh_table()
        self.refresh_parallel()
        self._on_selection()
        self.refresh_scatter()

    def _build_table(self, W: Any) -> None:
        self.filter = W.Text(
            placeholder="filter: config.lr < 0.01 and state == 'finished'",
            continuous_update=False,
            layout=W.Layout(width="60%"),
        )
        self.filter_error = W.HTML("")
        self.column_picker = W.TagsInput(
            value=self.columns, allowed_tags=available_columns(self.runs), allow_duplicates=False
        )
        self.table = RunsTableView(columns=table_columns(self.columns, self.runs))
        self.table.selected = [r.id for r in self.runs[:DEFAULT_SELECTED]]

    def _build_charts(self, W: Any) -> None:
        from nbtrack.ui.figures import FigureGrid

        metrics = metric_keys([*self.selected_runs(), *self.runs[:METRIC_DISCOVERY]])
        plain = [k for k in metrics if not k.startswith("batch/")]
        self.metric_picker = W.TagsInput(value=(plain or metrics)[:DEFAULT_METRICS], allowed_tags=metrics)
        self.x_axis = W.ToggleButtons(options=[("Step", "step"), ("Epoch", "epoch"), ("Wall time", "time")])
        self.x_axis.style.button_width = "90px"
        self.smoothing = W.FloatSlider(
            value=0.0, min=0.0, max=0.99, step=0.01, description="Smoothing", continuous_update=False
        )
        self.grid = FigureGrid()
        self.no_charts = W.HTML("")
        # Runs with thousands of metrics: the filter charts those whose name matches (at most MAX_CHARTS).
        self.chart_filter = W.Text(
            placeholder="Filter metrics: a name or a regular expression (loss|acc), then Enter",
            continuous_update=False,
            layout=W.Layout(width="420px"),
        )
        self.chart_status = W.HTML("")

    def _build_parallel(self, W: Any, params: list[str], scores: list[str]) -> None:
        self.param_picker = W.TagsInput(
            value=params, allowed_tags=[c for c in available_columns(self.runs) if c.startswith("config.")]
        )
        self.metric = W.Dropdown(options=scores or ["(no numeric summary)"], description="Metric")
        self.parallel = ParallelView()
        self.clear_brushes = W.Button(description="Clear brushes", layout=W.Layout(width="auto"))
        self.brush_note = W.HTML("")

    def _build_scatter(self, W: Any, params: list[str], scores: list[str]) -> None:
        columns = [c for c in available_columns(self.runs) if c.startswith(("config.", "summary."))]
        self.scatter_x = W.Dropdown(
            options=columns or ["-"], value=params[0] if params else (columns or ["-"])[0], description="x"
        )
        self.scatter_y = W.Dropdown(options=scores or ["-"], description="y")
        self.scatter_figure, self.scatter_mark = self._make_scatter()

    def _tabs(self, W: Any) -> Any:
        charts = W.VBox(
            [
                W.HBox([self.x_axis, self.smoothing]),
                self.metric_picker,
                W.HBox([self.chart_filter, self.chart_status], layout=W.Layout(align_items="center")),
                self.no_charts,
                self.grid.widget,
            ]
        )
        parallel = W.VBox(
            [W.HBox([self.metric, self.clear_brushes, self.brush_note]), self.param_picker, self.parallel]
        )
        scatter = W.VBox([W.HBox([self.scatter_x, self.scatter_y]), self.scatter_figure])
        tabs = W.Tab(children=[charts, parallel, scatter, self.diff])
        for i, title in enumerate(("Charts", "Parallel coordinates", "Scatter", "Diff")):
            tabs.set_title(i, title)
        return tabs

    def _observe(self) -> None:
        self.filter.observe(lambda _: self.apply_filter(self.filter.value), names="value")
        self.column_picker.observe(lambda _: self.set_columns(list(self.column_picker.value)), names="value")
        self.table.observe(lambda _: self._on_sort(), names="sort")
        self.table.observe(lambda _: self._on_selection(), names="selected")
        for control in (self.metric_picker, self.x_axis, self.smoothing, self.chart_filter):
            control.observe(lambda _: self.refresh_charts(), names="value")
        for control in (self.metric, self.param_picker):
            control.observe(lambda _: self.refresh_parallel(), names="value")
        self.parallel.observe(lambda _: self._on_brush(), names="brushes")
        self.clear_brushes.on_click(lambda _: setattr(self.parallel, "brushes", {}))
        for control in (self.scatter_x, self.scatter_y):
            control.observe(lambda _: self.refresh_scatter(), names="value")

    # -- table ----------------------------------------------------------------------------------------
    def apply_filter(self, where: str) -> bool:
        """Filter the table with the `where` language; a bad expression shows its error and changes nothing."""
        try:
            node = parse(where) if where.strip() else None
        except QueryError as exc:
            self.filter_error.value = (
                f"<pre style='color:#d62728;font-size:11px;margin:0'>{html.escape(str(exc))}</pre>"
            )
            return False
        self.filter_error.value = ""
        self.where = where
        self._node = node
        self.refresh_table()
        return True

    _node = None

    def matching(self) -> list[StoredRun]:
        """Runs passing the filter and every parallel-coordinates brush, in the table's sort order."""
        import time

        now = time.time()
        from nbtrack.store.query import evaluate

        records = [r for r in self.runs if self._node is None or evaluate(self._node, r.record, now)]
        brushes = self.parallel.brushes
        if brushes:
            lines = {line["id"]: line for line in self.parallel.lines}
            records = [
                r for r in records if r.id in lines and passes(lines[r.id], self.parallel.axes, brushes)
            ]
        if self.table.sort:
            try:
                order = parse_order(self.table.sort)
            except QueryError:
                order = ()
            by_record = {id(r.record): r for r in records}
            records = [by_record[id(rec)] for rec in sort_records([r.record for r in records], order, now)]
        return records

    def refresh_table(self) -> None:
        self.visible = self.matching()
        with self.table.hold_sync():
            self.table.columns = table_columns(self.columns, self.runs)
            self.table.rows = table_rows(self.visible, self.columns, self.colors)
            self.table.total = len(self.visible)

    def set_columns(self, columns: list[str]) -> None:
        self.columns = columns or default_columns(self.runs)
        self.refresh_table()

    def _on_sort(self) -> None:
        self.refresh_table()

    def _on_selection(self) -> None:
        self.parallel.selected = list(self.table.selected)
        self.refresh_charts()
        self.refresh_diff()

    def selected_runs(self) -> list[StoredRun]:
        return [self.by_id[i] for i in self.table.selected if i in self.by_id]

    # -- charts ---------------------------------------------------------------------------------------
    def charted(self) -> ChartSelection:
        """The metrics charted: those matching the chart filter, or else the picked ones; `MAX_CHARTS` at most."""
        pattern = self.chart_filter.value.strip()
        names = list(self.metric_picker.allowed_tags) if pattern else list(self.metric_picker.value)
        return select_charts({name: [name] for name in names}, pattern)

    def charts(self) -> list[Any]:
        return prepare(
            self.selected_runs(),
            list(self.charted().shown),
            x=self.x_axis.value,
            smoothing=float(self.smoothing.value),
            colors=self.colors,
        )

    def refresh_charts(self) -> None:
        selection = self.charted()
        charts = self.charts()
        self.grid.replace(charts)
        self.no_charts.value = (
            "" if charts else "<i>Select runs in the table (and metrics above) to overlay their charts.</i>"
        )
        notes = (
            [f"<span style='color:#d62728'>{html.escape(selection.error)}</span>"] if selection.error else []
        )
        if selection.status():
            notes.append(f"<span style='color:#555'>{html.escape(selection.status())}</span>")
        self.chart_status.value = (
            "<div style='font-size:12px'>" + "<br>".join(notes) + "</div>" if notes else ""
        )

    # -- parallel coordinates and scatter -------------------------------------------------------------
    def refresh_parallel(self) -> None:
        metric = self.metric.value if str(self.metric.value).startswith("summary.") else None
        if metric is None or not self.param_picker.value:
            self.parallel.lines = []
            return
        axes, lines = parallel_data(self.runs, list(self.param_picker.value), metric)
        with self.parallel.hold_sync():
            self.parallel.brushes = {
                k: v for k, v in self.parallel.brushes.items() if any(a["key"] == k for a in axes)
            }
            self.parallel.axes, self.parallel.lines = axes, lines
            self.parallel.color_label = metric

    def _on_brush(self) -> None:
        brushes = self.parallel.brushes
        self.brush_note.value = (
            f"<span style='font-size:12px'>Table filtered by {len(brushes)} brush{'es' if len(brushes) != 1 else ''}</span>"
            if brushes
            else ""
        )
        self.refresh_table()

    def _make_scatter(self) -> tuple[Any, Any]:
        import bqplot as bq
        import ipywidgets as W

        x_scale, y_scale = bq.LinearScale(), bq.LinearScale()
        mark = bq.Scatter(
            x=[],
            y=[],
            scales={"x": x_scale, "y": y_scale},
            default_size=48,
            tooltip=bq.Tooltip(fields=["name"]),
        )
        figure = bq.Figure(
            marks=[mark],
            axes=[
                bq.Axis(scale=x_scale, label=""),
                bq.Axis(scale=y_scale, orientation="vertical", label="", tick_format=".3g"),
            ],
            fig_margin={"top": 20, "bottom": 50, "left": 70, "right": 20},
            layout=W.Layout(height="320px", width="100%"),
        )
        return figure, mark

    def refresh_scatter(self) -> None:
        xs, ys, ids = scatter_data(self.runs, str(self.scatter_x.value), str(self.scatter_y.value))
        with self.scatter_mark.hold_sync():
            self.scatter_mark.x, self.scatter_mark.y = xs, ys
            self.scatter_mark.colors = [self.colors[i] for i in ids] or ["#1f77b4"]
            self.scatter_mark.names = [self.by_id[i].name for i in ids]
        self.scatter_figure.axes[0].label = str(self.scatter_x.value)
        self.scatter_figure.axes[1].label = str(self.scatter_y.value)

    def refresh_diff(self) -> None:
        chosen = self.selected_runs()
        if len(chosen) < 2:
            self.diff.value = (
                "<p><i>Select two runs in the table to see how their config and summary differ.</i></p>"
            )
            return
        note = (
            ""
            if len(chosen) == 2
            else "<p style='font-size:12px;color:#555'>The first two selected runs:</p>"
        )
        self.diff.value = note + diff_html(chosen[0], chosen[1])

    # -- display --------------------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        """The table, the overlay charts and the diff as static HTML (saved notebooks, nbviewer, reports)."""
        from nbtrack.render.svg import charts_svg, parallel_svg

        chosen = self.selected_runs()
        parallel = parallel_svg(self.parallel.axes, self.parallel.lines)
        parts = [
            "<div class='nbtrack-compare' style='font-family:system-ui,sans-serif'>",
            runs_table_html(self.visible, self.columns, total=len(self.visible)),
            charts_svg(
                self.charts(), title=f"{len(chosen)} selected runs", note=left_out_note(self.charted())
            )
            if chosen
            else "",
            f"<p style='font-size:12px;margin:8px 0 2px'>Parallel coordinates, coloured by {html.escape(self.parallel.color_label)}</p>{parallel}"
            if parallel
            else "",
            diff_html(chosen[0], chosen[1]) if len(chosen) >= 2 else "",
            "</div>",
        ]
        return "".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        from nbtrack.ui import widget_bundle

        store = self.runs[0].store.location if self.runs else None
        metadata = {"nbtrack": {"view": "compare", "run_ids": [r.id for r in self.runs], "store": store}}

        bundle = widget_bundle(
            self.widget,
            self.snapshot_html(),
            f"<nbtrack compare: {len(self.runs)} runs, {len(self.table.selected)} selected>",
        )
        return bundle, metadata


def resolve_runs(runs: Any, store: Any = None) -> list[StoredRun]:
    """A RunList, StoredRuns, run ids/names, or None (the 20 newest runs) -> StoredRuns."""
    from nbtrack.read.records import get_run
    from nbtrack.read.records import runs as query_runs

    if runs is None:
        return list(query_runs(limit=20, store=store))
    if isinstance(runs, (RunList, StoredRun)):
        return list(runs) if isinstance(runs, RunList) else [runs]
    if isinstance(runs, str):
        raise TypeError(
            "compare takes several runs: a RunList from nbtrack.runs(...), or a list of ids or names"
        )
    out = []
    for item in runs:
        if isinstance(item, StoredRun):
            out.append(item)
        elif isinstance(item, str):
            out.append(get_run(item, store=store))
        elif hasattr(item, "id") and hasattr(item, "store"):  # a live Run
            out.append(get_run(item.id, store=item.store))
        else:
            raise TypeError(
                f"compare: cannot compare {type(item).__name__} {item!r}; pass runs, ids or names"
            )
    return out


def compare(runs: Any = None, *, store: Any = None) -> CompareWidget:
    """The compare widget for `runs`; shows itself when it is a cell's value."""
    return CompareWidget(resolve_runs(runs, store))
