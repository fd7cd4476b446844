"""The live sweep view: the trials table, parameters -> metric as parallel coordinates, the best-so-far curve,
and the current trial's dashboard beneath, updated as trials start and finish."""

from __future__ import annotations

import html
import math
from typing import Any

from nbtrack.render.comparison import parallel_data, varying_config
from nbtrack.ui import widget_bundle
from nbtrack.ui.compare import ParallelView, RunsTableView

_KINDS = {"state": "state", "trial": "number", "duration": "duration", "run": "text"}


def trial_table(sweep: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Columns and rows of the trials table (run name, state, parameters, metric, duration)."""
    names = {run.id: run.name for run in sweep.runs}
    metric = sweep.spec.metric.name if sweep.spec.metric else None
    rows, keys = [], ["trial", "run", "state"]
    for row in sweep.rows():
        cells = {k: v for k, v in row.items() if k not in ("run_id", "rungs")}
        cells["run"] = names.get(row.get("run_id"), "")
        for key in cells:
            if key not in keys:
                keys.append(key)
        for key, value in list(cells.items()):
            if isinstance(value, float) and not math.isfinite(value):
                cells[key] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        rows.append({"id": str(row["trial"]), "color": None, "cells": cells})
    if metric and metric in keys:  # the metric right after the parameters, before the duration
        keys.remove(metric)
        keys.insert(len(keys) - (1 if "duration" in keys else 0), metric)
    columns = [
        {"key": k, "label": k, "kind": _KINDS.get(k, "number" if k == metric else "text")} for k in keys
    ]
    return columns, rows


def sort_rows(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Rows ordered by a column (``"-val_loss"`` descending); numbers before text, empty cells last."""
    key = sort.lstrip("-")
    if not key:
        return rows
    descending = sort.startswith("-")

    def rank(row: dict[str, Any]) -> tuple[int, Any]:
        value = row["cells"].get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, -value if descending else value)
        if value is None or value == "":
            return (2, 0)
        return (1, str(value))

    ordered = sorted(rows, key=rank)
    if descending:  # text sorts descending too; numbers are already negated
        numbers = [r for r in ordered if rank(r)[0] == 0]
        texts = sorted(
            (r for r in ordered if rank(r)[0] == 1), key=lambda r: str(r["cells"].get(key)), reverse=True
        )
        ordered = numbers + texts + [r for r in ordered if rank(r)[0] == 2]
    return ordered


class SweepView:
    def __init__(self, sweep: Any) -> None:
        import ipywidgets as W

        from nbtrack.ui.figures import FigureGrid

        self.sweep = sweep
        self.header = W.HTML()
        self.table = RunsTableView(sort="")
        self.parallel = ParallelView()
        self.best = FigureGrid(height="220px")
        self.current = W.Box(layout=W.Layout(width="100%"))
        self.tabs = W.Tab(children=[self.table, self.parallel, self.best.widget])
        for i, title in enumerate(("Trials", "Parameters", "Best so far")):
            self.tabs.set_title(i, title)
        self.widget = W.VBox([self.header, self.tabs, W.HTML("<b>Current trial</b>"), self.current])
        self._handle: Any = None
        self.table.observe(lambda _: self.refresh(), names="sort")
        self.refresh()

    def trial_started(self, sweep: Any, run: Any) -> None:
        """A new trial began: refresh the table and put its live dashboard beneath."""
        self.refresh()
        dashboard = run._dashboard()  # None, warned once, without the widget extra
        if dashboard is not None:
            dashboard.training_started()
            self.current.children = (dashboard.widget,)

    def refresh(self, final: bool = False) -> None:
        from nbtrack.reports.sections import best_so_far_chart

        sweep = self.sweep
        trials = sweep.trials()
        best = sweep.best_trial
        metric = sweep.spec.metric
        facts = f"{sweep.spec.method} · {len(trials)} trials · {sweep.state}"
        if metric is not None:
            facts += f" · {metric.goal} {metric.name}"
        if best is not None and metric is not None:
            facts += f" · best {best.value:.4g} (trial {best.number})"
        self.header.value = (
            f"<div style='font-size:13px'><b>Sweep {html.escape(sweep.name)}</b> · {html.escape(facts)}</div>"
        )
        columns, rows = trial_table(sweep)
        rows = sort_rows(rows, self.table.sort)
        with self.table.hold_sync():
            self.table.columns, self.table.rows, self.table.total = columns, rows, len(rows)
        runs = list(sweep.runs)
        if runs and metric is not None:
            params = varying_config(runs) or [f"config.{p.name}" for p in sweep.spec.parameters][:8]
            axes, lines = parallel_data(runs, params, f"summary.{metric.name}")
            with self.parallel.hold_sync():
                self.parallel.axes, self.parallel.lines = axes, lines
                self.parallel.color_label = f"summary.{metric.name}"
        chart = best_so_far_chart(sweep)
        if chart is not None:
            self.best.replace([chart])
        if final and self._handle is not None:
            data, metadata = self._bundle()
            self._handle.update(data, raw=True, metadata=metadata)

    def _bundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from nbtrack.reports.sections import sweep_section

        metadata = {
            "nbtrack": {"view": "sweep", "sweep_id": self.sweep.id, "store": self.sweep.store.location}
        }
        return widget_bundle(self.widget, sweep_section(self.sweep), repr(self.sweep)), metadata

    def show(self) -> None:
        from IPython.display import display

        data, metadata = self._bundle()
        self._handle = display(data, raw=True, metadata=metadata, display_id=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._bundle()
