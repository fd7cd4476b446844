"""What the runs table shows (js/runs_table.js draws it in the compare widget and the runs browser), and the
same table as static HTML: a `RunList` in a notebook, the compare widget's snapshot. No widget imports here."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from nbtrack.common.values import clip
from nbtrack.read.records import StoredRun, elapsed, flatten
from nbtrack.render.comparison import MISSING, config_diff, summary_diff, summary_metrics, varying_config
from nbtrack.render.svg import escape

MAX_ROWS = 500  # rows sent to the browser; the count of all matches is shown beside them
RUN_COLUMNS = {
    "state": ("state", "state"),
    "name": ("name", "text"),
    "created": ("created", "time"),
    "duration": ("duration", "duration"),
    "tags": ("tags", "tags"),
    "id": ("id", "text"),
    "project": ("project", "text"),
}
STATE_COLORS = {
    "running": "#1f77b4",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "crashed": "#ff7f0e",
    "interrupted": "#7f7f7f",
    "stopped-early": "#9467bd",
}


def column_kind(key: str, runs: Sequence[StoredRun] = ()) -> str:
    """How the table formats a column: run fields by their type, config/summary columns as numbers when
    every run that has the key holds a number there."""
    if key in RUN_COLUMNS:
        return RUN_COLUMNS[key][1]
    now = 0.0
    values = [v for v in (cell(r, key, now) for r in runs) if v is not None]
    if not runs:
        return "number" if key.startswith("summary.") else "text"
    numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return "number" if numeric else "text"


def default_columns(runs: Sequence[StoredRun], *, config: int = 4, metrics: int = 4) -> list[str]:
    """State, name, created, duration, the config keys that vary and the leading summary metrics."""
    return [
        "state",
        "name",
        "created",
        "duration",
        *varying_config(runs, config),
        *summary_metrics(runs)[:metrics],
    ]


def available_columns(runs: Sequence[StoredRun]) -> list[str]:
    keys: set[str] = set()
    for run in runs:
        keys.update(k for k, v in flatten("config", run.config).items() if not isinstance(v, (dict, list)))
        keys.update(
            k
            for k, v in flatten("summary", run.summary).items()
            if not k.startswith("summary._") and not isinstance(v, (dict, list))
        )
    return [*RUN_COLUMNS, *sorted(keys)]


def _jsonable(value: Any) -> Any:
    """A cell as the table view gets it: JSON-safe, and text cut to 1,000 characters (a table shows less)."""
    if isinstance(value, str):
        return clip(value, 1000)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def cell(run: StoredRun, column: str, now: float) -> Any:
    if column == "duration":
        record = run.record
        return (
            record.duration
            if record.ended is not None or record.state != "running"
            else elapsed(record.created, now)
        )
    if column == "tags":
        return list(run.tags)
    if column in RUN_COLUMNS:
        return getattr(run, column)
    scope, _, key = column.partition(".")
    value: Any = run.config if scope == "config" else run.summary
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _view_cell(run: StoredRun, column: str, now: float) -> Any:
    """A cell for the table view: a run time that is not a time (a bad record) is sent blank, not as a date the
    browser would draw as NaN-NaN-NaN."""
    value = cell(run, column, now)
    if column in RUN_COLUMNS and RUN_COLUMNS[column][1] == "time" and value is not None:
        showable = isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 253_402_300_799
        return value if showable else None
    return value


def table_columns(columns: Sequence[str], runs: Sequence[StoredRun] = ()) -> list[dict[str, str]]:
    return [{"key": c, "label": c, "kind": column_kind(c, runs)} for c in columns]


def table_rows(
    runs: Sequence[StoredRun], columns: Sequence[str], colors: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "id": run.id,
            "color": (colors or {}).get(run.id),
            "cells": {c: _jsonable(_view_cell(run, c, now)) for c in columns},
        }
        for run in runs[:MAX_ROWS]
    ]


def _format(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "time":
        try:
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
        except (
            TypeError,
            ValueError,
            OverflowError,
            OSError,
        ):  # a bad record shows as such; the rest as usual
            return "invalid time"
    if kind == "duration":
        from nbtrack.render.format import format_duration

        return format_duration(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return clip(", ".join(map(str, value)), 1000)
    return clip(str(value), 1000)


def runs_table_html(
    runs: Sequence[StoredRun], columns: Sequence[str] | None = None, total: int | None = None
) -> str:
    """The runs as a static HTML table, every value escaped."""
    runs = list(runs)
    columns = list(columns) if columns is not None else default_columns(runs)
    now = time.time()
    kinds = {c: column_kind(c, runs) for c in columns}
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px;border-bottom:1px solid #ccc'>{escape(c)}</th>"
        for c in columns
    )
    body = []
    for run in runs[:MAX_ROWS]:
        cells = []
        for column in columns:
            value = cell(run, column, now)
            text = escape(_format(value, kinds[column]))
            if column == "state":
                color = STATE_COLORS.get(str(value), "#7f7f7f")
                text = f"<span style='background:{color};color:#fff;border-radius:8px;padding:0 6px'>{text}</span>"
            cells.append(f"<td style='padding:2px 8px'>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    shown = min(len(runs), MAX_ROWS)
    count = total if total is not None else getattr(runs, "total", len(runs))
    note = f"{count} runs" if shown == count else f"Showing {shown} of {count} runs"
    return (
        f"<div class='nbtrack-runs'><p style='font-size:12px;color:#555;margin:2px 0'>{note}</p>"
        f"<table style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def diff_html(a: StoredRun, b: StoredRun) -> str:
    """Config and summary keys that differ between two runs, values side by side (escaped)."""
    rows = [*config_diff(a, b), *summary_diff(a, b)]
    if not rows:
        return f"<p>No differences in config or summary between {escape(a.name)} and {escape(b.name)}.</p>"

    def fmt(value: Any) -> str:
        text = (
            MISSING
            if value is MISSING
            else (
                f"{value:.6g}"
                if isinstance(value, float)
                else repr(value)
                if isinstance(value, str)
                else str(value)
            )
        )
        return escape(text)

    body = "".join(
        f"<tr><td style='padding:2px 8px'>{escape(key)}</td><td style='padding:2px 8px'>{fmt(u)}</td>"
        f"<td style='padding:2px 8px'>{fmt(v)}</td></tr>"
        for key, u, v in rows
    )
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px;border-bottom:1px solid #ccc'>{escape(t)}</th>"
        for t in ("key", a.name, b.name)
    )
    return f"<table class='nbtrack-diff' style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table>"
