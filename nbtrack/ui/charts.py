"""The Charts pane: one chart per metric family, batch line plus epoch points, live while `fit` runs.

The pure functions at the top turn a `LiveHistory` into `ChartData` (what is drawn); `ChartsPane` only copies
that into bqplot marks inside `hold_sync()`, and `nbtrack.ui.svg` draws the same `ChartData` as a static image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nbtrack.live import LiveHistory
from nbtrack.series import History

AXES = ("step", "epoch", "time")
ROLES = ("batch", "train", "val")
ROLE_COLORS = {"batch": "#9ecae1", "train": "#1f77b4", "val": "#ff7f0e"}
_NOT_CHARTED = {"epoch"}
_FAMILY_ORDER = ("loss", "accuracy")
_LAST_FAMILIES = ("learning_rate", "lr")


def metric_family(key: str) -> str | None:
    """The chart a metric belongs to: ``batch/loss``, ``loss`` and ``val_loss`` all go to ``loss``."""
    if key in _NOT_CHARTED or key.startswith(("_", "system/")):  # system metrics have a pane of their own
        return None
    name = key[len("batch/") :] if key.startswith("batch/") else key
    return name[len("val_") :] if name.startswith("val_") else name


def metric_role(key: str) -> str:
    if key.startswith("batch/"):
        return "batch"
    return "val" if key.startswith("val_") else "train"


def group_families(keys: list[str]) -> dict[str, list[str]]:
    """Family -> its metrics (batch, train, val order); loss and accuracy first, learning rate last."""
    families: dict[str, list[str]] = {}
    for key in keys:
        family = metric_family(key)
        if family is not None:
            families.setdefault(family, []).append(key)

    def family_rank(name: str) -> tuple[int, str]:
        if name in _FAMILY_ORDER:
            return (_FAMILY_ORDER.index(name), "")
        return (len(_FAMILY_ORDER) + (1 if name in _LAST_FAMILIES else 0), name)

    return {
        name: sorted(families[name], key=lambda k: ROLES.index(metric_role(k)))
        for name in sorted(families, key=family_rank)
    }


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); NaN points stay NaN, skipped by the average."""
    if weight <= 0 or len(values) == 0:
        return values
    out = np.empty_like(values, dtype=np.float64)
    last, debias = 0.0, 0.0
    for i, value in enumerate(values.tolist()):
        if math.isfinite(value):
            last = last * weight + (1 - weight) * value
            debias = debias * weight + (1 - weight)
            out[i] = last / debias
        else:
            out[i] = value
    return out


def epoch_of_steps(
    steps: np.ndarray, epoch_history: History, steps_per_epoch: int | None = None
) -> np.ndarray | None:
    """Fractional epochs for global steps, anchored on the logged ``epoch`` metric (value e at the end of epoch e).

    Batch n of epoch e maps into (e, e + 1]; the end of epoch e maps to e + 1. None when no epoch was logged.
    """
    if len(epoch_history) == 0:
        if steps_per_epoch:
            return (steps.astype(np.float64) + 1) / steps_per_epoch
        return None
    anchor_steps = np.concatenate([[-1.0], epoch_history.step.astype(np.float64)])
    anchor_epochs = np.concatenate([[0.0], epoch_history.value + 1])
    order = np.argsort(anchor_steps, kind="stable")
    anchor_steps, anchor_epochs = anchor_steps[order], anchor_epochs[order]
    x = np.interp(steps, anchor_steps, anchor_epochs)
    beyond = steps > anchor_steps[-1]
    if beyond.any():
        span = (
            steps_per_epoch or (anchor_steps[-1] - anchor_steps[-2] if len(anchor_steps) > 1 else 1.0) or 1.0
        )
        x[beyond] = anchor_epochs[-1] + (steps[beyond] - anchor_steps[-1]) / span
    return x


@dataclass(frozen=True)
class LineData:
    key: str
    role: str  # batch | train | val | series (a plain line, coloured by `stroke`)
    x: np.ndarray
    y: np.ndarray
    stroke: str | None = None
    label: str | None = None  # the legend's text; the metric key when None

    @property
    def name(self) -> str:
        return self.label or self.key

    @property
    def color(self) -> str:
        return self.stroke or ROLE_COLORS.get(self.role, "#1f77b4")

    @property
    def markers(self) -> bool:
        return self.role in ("train", "val")


@dataclass(frozen=True)
class ChartData:
    family: str
    lines: tuple[LineData, ...]
    x_label: str
    log_y: bool = False
    spans: tuple[tuple[float, float], ...] = ()  # shaded x ranges (the training span on system charts)


@dataclass(frozen=True)
class ChartSettings:
    axis: str = "step"
    smoothing: float = 0.0
    log_y: bool = False


def line_data(
    key: str, history: History, settings: ChartSettings, epochs: np.ndarray | None, started: float
) -> LineData:
    role = metric_role(key)
    if settings.axis == "epoch" and epochs is not None:
        x = epochs
    elif settings.axis == "time":
        x = history.time - started
    else:
        x = history.step.astype(np.float64)
    y = history.value
    if role == "batch" and settings.smoothing > 0:
        y = ema(y, settings.smoothing)
    if settings.log_y:
        y = np.where(y > 0, y, np.nan)
    return LineData(key, role, np.asarray(x, np.float64), np.asarray(y, np.float64))


def x_label(settings: ChartSettings, has_epochs: bool) -> str:
    if settings.axis == "epoch" and has_epochs:
        return "epoch"
    return "seconds" if settings.axis == "time" else "step"


def chart_data(
    live: LiveHistory,
    family: str,
    keys: list[str],
    settings: ChartSettings,
    *,
    started: float,
    steps_per_epoch: int | None = None,
) -> ChartData:
    epoch_history = live.get("epoch")
    lines = []
    has_epochs = True
    for key in keys:
        history = live.get(key)
        epochs = None
        if settings.axis == "epoch":
            epochs = epoch_of_steps(history.step, epoch_history, steps_per_epoch)
            has_epochs = has_epochs and epochs is not None
        lines.append(line_data(key, history, settings, epochs, started))
    return ChartData(family, tuple(lines), x_label(settings, has_epochs), settings.log_y)


def all_charts(
    live: LiveHistory, settings: ChartSettings, *, started: float, steps_per_epoch: int | None = None
) -> list[ChartData]:
    return [
        chart_data(live, family, keys, settings, started=started, steps_per_epoch=steps_per_epoch)
        for family, keys in group_families(live.keys()).items()
    ]


class ChartsPane:
    """bqplot figures, one per family, with x-axis, smoothing and log-y controls."""

    def __init__(self, live: LiveHistory, *, started: float, steps_per_epoch=None) -> None:  # type: ignore[no-untyped-def]
        import ipywidgets as W

        from nbtrack.ui.figures import FigureGrid

        self.live = live
        self.started = started
        self.steps_per_epoch = steps_per_epoch
        self.settings = ChartSettings()
        self._settings_dirty = False
        self._sent_version: dict[str, int] = {}
        self.axis = W.ToggleButtons(
            options=[("Step", "step"), ("Epoch", "epoch"), ("Wall time", "time")], value="step"
        )
        self.axis.style.button_width = "90px"
        self.smoothing = W.FloatSlider(
            value=0.0,
            min=0.0,
            max=0.99,
            step=0.01,
            description="Smoothing",
            continuous_update=False,
            readout_format=".2f",
        )
        self.log_y = W.Checkbox(value=False, description="Log y", indent=False)
        for control in (self.axis, self.smoothing, self.log_y):
            control.observe(self._on_control, names="value")
        self.grid = FigureGrid()
        self.empty = W.HTML("<i>No metrics logged yet.</i>")
        self.widget = W.VBox([W.HBox([self.axis, self.smoothing, self.log_y]), self.empty, self.grid.widget])

    @property
    def _figures(self) -> dict[str, object]:
        return self.grid.figures

    @property
    def _marks(self) -> dict[str, object]:
        return self.grid.marks

    # Control changes may arrive on another thread while fit runs (JupyterLab >= 4.4): only set a flag here;
    # the next refresh, on the training thread, applies it.
    def _on_control(self, change) -> None:  # type: ignore[no-untyped-def]
        self.settings = ChartSettings(self.axis.value, float(self.smoothing.value), bool(self.log_y.value))
        self._settings_dirty = True
        if self.apply_now is not None and self.apply_now():
            self.refresh(set(self.live.keys()))

    apply_now = None  # set by the dashboard: True when no training thread will refresh soon

    def charts(self) -> list[ChartData]:
        return all_charts(
            self.live, self.settings, started=self.started, steps_per_epoch=self.steps_per_epoch
        )

    def refresh(self, changed: set[str]) -> int:
        """Send changed series; returns how many widgets were updated (≈ comm messages)."""
        redraw_all = self._settings_dirty
        self._settings_dirty = False
        charts, stale = [], set()
        for family, keys in group_families(self.live.keys()).items():
            family_stale = {
                k for k in keys if redraw_all or self._sent_version.get(k) != self.live.version.get(k)
            }
            if family_stale or family not in self.grid.figures:
                charts.append(
                    chart_data(
                        self.live,
                        family,
                        keys,
                        self.settings,
                        started=self.started,
                        steps_per_epoch=self.steps_per_epoch,
                    )
                )
                stale |= family_stale
        messages = self.grid.update(charts, stale, relabel=redraw_all)
        for key in stale:
            self._sent_version[key] = self.live.version.get(key, 0)
        if self.grid.figures and self.empty.layout.display != "none":
            self.empty.layout.display = "none"
            messages += 1
        return messages
