"""What the charts draw: one chart per metric family, batch line plus epoch points.

These pure functions turn a `LiveHistory` into `ChartData`; `nbtrack.ui.charts.ChartsPane` copies that into
bqplot marks inside `hold_sync()`, and `nbtrack.render.svg` draws the same `ChartData` as a static image.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nbtrack.common.series import History
from nbtrack.run.live import LiveHistory

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


def _family_rank(name: str) -> tuple[int, str]:
    if name in _FAMILY_ORDER:
        return (_FAMILY_ORDER.index(name), "")
    return (len(_FAMILY_ORDER) + (1 if name in _LAST_FAMILIES else 0), name)


def _role_rank(key: str) -> int:
    return ROLES.index(metric_role(key))


def group_families(keys: list[str]) -> dict[str, list[str]]:
    """Family -> its metrics (batch, train, val order); loss and accuracy first, learning rate last."""
    families = Families()
    families.update(keys)
    return dict(families.groups)


class Families:
    """Metric keys grouped into chart families, kept up to date as keys appear (work per update: the new keys)."""

    def __init__(self) -> None:
        self._members: dict[str, list[str]] = {}
        self._seen = 0
        self.groups: dict[str, list[str]] = {}  # family -> keys, families in chart order

    def update(self, keys: Sequence[str]) -> bool:
        """Take in `keys`, every key so far in the order they appeared; True when a family was added or grew."""
        new = keys[self._seen :]
        self._seen = len(keys)
        grew = False
        for key in new:
            family = metric_family(key)
            if family is None:
                continue
            members = self._members.setdefault(family, [])
            members.append(key)
            members.sort(key=_role_rank)
            grew = True
        if grew:
            self.groups = {name: self._members[name] for name in sorted(self._members, key=_family_rank)}
        return grew


MAX_CHARTS = 24  # charts drawn at once: the live grid, the static snapshot and the report


def _standard_tier(name: str, keys: Sequence[str]) -> int:
    """0 for loss and accuracy, 1 for metrics Keras logs per batch or on validation, 2 for learning rate, 3 else."""
    if name in _FAMILY_ORDER:
        return 0
    if name in _LAST_FAMILIES:
        return 2
    return 1 if any(metric_role(k) != "train" for k in keys) else 3


def name_filter(pattern: str) -> tuple[Callable[[str], bool], str | None]:
    """A case-insensitive test for names (TensorBoard's tag filter) and the error to show, None when all is well.

    `pattern` is a regular expression searched anywhere in a name, so a plain word is a substring match. A
    pattern that is not a valid expression is matched as plain text, and the error says so.
    """
    if not pattern:
        return (lambda name: True), None
    try:
        search = re.compile(pattern, re.IGNORECASE).search
    except re.error as exc:
        folded = pattern.casefold()
        return (lambda name: folded in name.casefold()), (
            f"{pattern!r} is not a valid regular expression ({exc}); it is matched as plain text."
        )
    return (lambda name: search(name) is not None), None


@dataclass(frozen=True)
class ChartSelection:
    """Which charts are drawn: at most `limit` of those whose name passes the filter."""

    shown: tuple[str, ...]  # in chart order
    matched: int  # charts passing the filter
    total: int  # charts in all
    pattern: str = ""
    error: str | None = None  # the filter is not a valid regular expression (matched as plain text)

    @property
    def left_out(self) -> int:
        return self.total - len(self.shown)

    def status(self) -> str:
        """The line under the filter box; empty when every chart is drawn and no filter is set."""
        if not self.pattern:
            if not self.left_out:
                return ""
            return f"showing {len(self.shown):,} of {self.total:,} charts — type in the filter to find others"
        if not self.matched:
            return f"no chart matches {self.pattern!r} ({self.total:,} in all)"
        return (
            f"showing {len(self.shown):,} of {self.matched:,} charts matching {self.pattern!r} "
            f"({self.total:,} in all)"
        )


def select_charts(
    groups: Mapping[str, Sequence[str]], pattern: str = "", limit: int = MAX_CHARTS
) -> ChartSelection:
    """The families to draw: those whose name or a metric passes `pattern`, the standard ones first.

    With more matches than `limit`, loss and accuracy, then the metrics Keras logs per batch or on validation,
    then the learning rate win the places; the rest go in `groups` order. What is drawn keeps `groups` order.
    """
    test, error = name_filter(pattern.strip())
    matched = [
        name for name, keys in groups.items() if test(name) or (pattern and any(test(k) for k in keys))
    ]
    if len(matched) <= limit:
        shown = matched
    else:
        position = {name: i for i, name in enumerate(matched)}
        best = heapq.nsmallest(limit, matched, key=lambda n: (_standard_tier(n, groups[n]), position[n]))
        shown = sorted(best, key=position.__getitem__)
    return ChartSelection(tuple(shown), len(matched), len(groups), pattern.strip(), error)


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


def drawn_charts(
    live: LiveHistory,
    settings: ChartSettings,
    *,
    started: float,
    steps_per_epoch: int | None = None,
    pattern: str = "",
    limit: int = MAX_CHARTS,
) -> tuple[list[ChartData], ChartSelection]:
    """The charts to draw (at most `limit`, chosen by `select_charts`) and the selection that says what was left out."""
    groups = group_families(live.keys())
    selection = select_charts(groups, pattern, limit)
    charts = [
        chart_data(live, family, groups[family], settings, started=started, steps_per_epoch=steps_per_epoch)
        for family in selection.shown
    ]
    return charts, selection


def left_out_note(selection: ChartSelection) -> str:
    """What a static picture says about the charts it does not draw; empty when it draws them all."""
    if not selection.left_out:
        return ""
    text = f"{len(selection.shown):,} of {selection.total:,} charts drawn"
    if selection.pattern:
        text += f" (filter {selection.pattern!r} matches {selection.matched:,})"
    return text + f"; {selection.left_out:,} left out."
