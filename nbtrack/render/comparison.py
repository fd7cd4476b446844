"""What comparing runs shows, as plain data: overlay charts, config and summary differences, parallel
coordinates and scatter points. Pure functions over stored runs; `nbtrack.ui.compare` draws them.

    rs = nbtrack.runs(project="mnist", order_by="-summary.val_accuracy", limit=10)
    charts = prepare(rs, keys=["loss", "val_loss"], samples=2000)   # one ChartData per metric, a line per run
    config_diff(rs[0], rs[1])                                        # [(key, value in a, value in b), ...]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbtrack.common.series import History
from nbtrack.read.records import StoredRun, flatten
from nbtrack.render.charts import ChartData, LineData, ema, epoch_of_steps, group_families

# Tableau 10, then its light variants: one colour per run, the same in every chart, table row and legend.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
X_AXES = ("step", "epoch", "time")
MAX_SAMPLES = 2000
MISSING = "—"  # how a key a run lacks is shown in diffs


def run_colors(ids: Iterable[str]) -> dict[str, str]:
    """A colour per run id, by position: runs keep their colour while the selection changes."""
    return {rid: PALETTE[i % len(PALETTE)] for i, rid in enumerate(ids)}


def metric_keys(runs: Sequence[StoredRun]) -> list[str]:
    """Metrics any of `runs` logged, chartable ones only (no system/, no epoch), loss and accuracy first."""
    keys: set[str] = set()
    for run in runs:
        keys.update(run.metrics())
    return [k for keys_ in group_families(sorted(keys)).values() for k in keys_]


@dataclass(frozen=True)
class CompareSettings:
    x: str = "step"  # step | epoch | time (seconds since the run started)
    smoothing: float = 0.0  # TensorBoard-style EMA weight, applied to the reduced series
    samples: int = MAX_SAMPLES  # points per run and metric, reduced by min/max buckets
    log_y: bool = False

    def __post_init__(self) -> None:
        if self.x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}, not {self.x!r}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), not {self.smoothing!r}")
        if not 2 <= self.samples <= 100_000:
            raise ValueError(f"samples must be between 2 and 100000, not {self.samples!r}")


def _read(run: StoredRun, keys: Sequence[str], settings: CompareSettings) -> dict[str, History]:
    logged = run.metrics()  # one query, not one per key
    wanted = [k for k in keys if k in logged]
    histories = {k: run.store.history(run.id, k, settings.samples) for k in wanted}
    if settings.x == "epoch":
        histories["\0epoch"] = run.store.history(run.id, "epoch")
    return histories


def prepare(
    runs: Sequence[StoredRun],
    keys: Sequence[str] | None = None,
    *,
    x: str = "step",
    samples: int = MAX_SAMPLES,
    smoothing: float = 0.0,
    log_y: bool = False,
    colors: dict[str, str] | None = None,
) -> list[ChartData]:
    """One chart per metric with one line per run (at most `samples` points each), coloured by `colors`."""
    settings = CompareSettings(x, smoothing, samples, log_y)
    keys = list(keys) if keys is not None else metric_keys(runs)
    colors = colors or run_colors(r.id for r in runs)
    # Histories are read in two threads: decoding and reducing release the GIL for most of the work.
    with ThreadPoolExecutor(max_workers=2) as pool:
        read = list(pool.map(lambda run: _read(run, keys, settings), runs))
    charts = []
    for key in keys:
        lines = []
        for run, histories in zip(runs, read):
            history = histories.get(key)
            if history is None or len(history) == 0:
                continue
            lines.append(_line(run, key, history, histories.get("\0epoch"), settings, colors))
        if lines:
            label = {"step": "step", "epoch": "epoch", "time": "seconds"}[settings.x]
            charts.append(ChartData(key, tuple(lines), label, log_y))
    return charts


def _line(
    run: StoredRun,
    key: str,
    history: History,
    epochs: History | None,
    settings: CompareSettings,
    colors: dict[str, str],
) -> LineData:
    if settings.x == "epoch":
        x = epoch_of_steps(history.step, epochs if epochs is not None else History.empty("epoch"))
        if x is None:  # no epoch logged: fall back to steps rather than drop the run
            x = history.step.astype(np.float64)
    elif settings.x == "time":
        x = history.time - run.created
    else:
        x = history.step.astype(np.float64)
    y = ema(history.value, settings.smoothing) if settings.smoothing > 0 else history.value
    if settings.log_y:
        y = np.where(y > 0, y, np.nan)
    return LineData(
        f"{run.id}:{key}",
        "series",
        np.asarray(x, np.float64),
        np.asarray(y, np.float64),
        stroke=colors.get(run.id, PALETTE[0]),
        label=run.name,
    )


# -- differences ------------------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "config") -> list[tuple[str, Any, Any]]:
    """Keys (flattened, ``config.optimizer.lr``) whose values differ, with both values; `MISSING` when absent."""
    flat_a, flat_b = flatten(prefix, a), flatten(prefix, b)
    rows = []
    for key in sorted(set(flat_a) | set(flat_b)):
        u, v = flat_a.get(key, MISSING), flat_b.get(key, MISSING)
        if not _same(u, v):
            rows.append((key, u, v))
    return rows


def config_diff(a: StoredRun, b: StoredRun) -> list[tuple[str, Any, Any]]:
    return diff(a.config, b.config, "config")


def summary_diff(a: StoredRun, b: StoredRun) -> list[tuple[str, Any, Any]]:
    def visible(summary: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in summary.items() if not k.startswith("_")}

    return diff(visible(a.summary), visible(b.summary), "summary")


# -- parallel coordinates and scatter ---------------------------------------------------------------
def _value(run: StoredRun, column: str) -> Any:
    scope, _, key = column.partition(".")
    values = run.config if scope == "config" else run.summary
    for part in key.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def varying_config(runs: Sequence[StoredRun], limit: int = 8) -> list[str]:
    """Config columns whose value differs between runs (the ones worth an axis), numeric ones first."""
    seen: dict[str, set[str]] = {}
    numeric: dict[str, bool] = {}
    for run in runs:
        for key, value in flatten("config", run.config).items():
            if isinstance(value, (list, dict)):
                continue
            seen.setdefault(key, set()).add(repr(value))
            numeric[key] = numeric.get(key, True) and _number(value) is not None
    varying = [k for k, values in seen.items() if len(values) > 1]
    return sorted(varying, key=lambda k: (not numeric[k], k))[:limit]


def summary_metrics(runs: Sequence[StoredRun]) -> list[str]:
    """Numeric summary columns, validation metrics first."""
    keys = {
        f"summary.{k}"
        for run in runs
        for k, v in run.summary.items()
        if not k.startswith("_") and _number(v) is not None
    }
    return sorted(keys, key=lambda k: (not k.startswith("summary.val_"), k.startswith("summary.batch/"), k))


def parallel_data(
    runs: Sequence[StoredRun], columns: Sequence[str], metric: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Axes and lines for the parallel-coordinates view: `columns` then `metric`, lines coloured by `metric`."""
    axes = []
    all_columns = [*columns, metric]
    for column in all_columns:
        values = [_value(run, column) for run in runs]
        present = [v for v in values if v is not None]
        is_number = bool(present) and all(_number(v) is not None for v in present)
        if is_number:
            numbers = [_number(v) for v in present]
            # a log axis once values span more than about one and a half decades (learning rates, weight decay)
            log = len(numbers) > 1 and min(numbers) > 0 and max(numbers) / min(numbers) >= 30  # type: ignore[type-var, operator]
            axes.append({"key": column, "label": column, "kind": "number", "log": log, "categories": None})
        else:
            categories = sorted({_category(v) for v in present})
            axes.append(
                {"key": column, "label": column, "kind": "category", "log": False, "categories": categories}
            )
    lines = []
    for run in runs:
        row: list[Any] = []
        for axis in axes:
            value = _value(run, axis["key"])
            if value is None:
                row.append(None)
            elif axis["kind"] == "number":
                row.append(_number(value))
            else:
                row.append(_category(value))
        lines.append(
            {"id": run.id, "name": run.name, "values": row, "color_value": _number(_value(run, metric))}
        )
    return axes, lines


def _category(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def passes(line: dict[str, Any], axes: Sequence[dict[str, Any]], brushes: dict[str, Any]) -> bool:
    """Whether a parallel-coordinates line passes every brush (the Python twin of js/parallel_coords.js)."""
    for index, axis in enumerate(axes):
        brush = brushes.get(axis["key"])
        if brush is None:
            continue
        value = line["values"][index]
        if value is None:
            return False
        if axis["kind"] == "number":
            low, high = min(brush), max(brush)
            if not low <= value <= high:
                return False
        elif value not in brush:
            return False
    return True


def scatter_data(runs: Sequence[StoredRun], x: str, y: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Points (x, y) of runs that have both as numbers, and their run ids."""
    xs, ys, ids = [], [], []
    for run in runs:
        u, v = _number(_value(run, x)), _number(_value(run, y))
        if u is not None and v is not None:
            xs.append(u)
            ys.append(v)
            ids.append(run.id)
    return np.asarray(xs, np.float64), np.asarray(ys, np.float64), ids
