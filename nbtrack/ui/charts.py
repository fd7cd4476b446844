"""The Charts pane: one chart per metric family, batch line plus epoch points, live while `fit` runs.

The pure functions at the top turn a `LiveHistory` into `ChartData` (what is drawn); `ChartsPane` only copies
that into bqplot marks inside `hold_sync()`, and `nbtrack.ui.svg` draws the same `ChartData` as a static image.
"""

from __future__ import annotations

import heapq
import html
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
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


class ChartsPane:
    """bqplot figures, one per family, with x-axis, smoothing, log-y and filter controls.

    At most `MAX_CHARTS` families are charted: the filter box picks which. Families not shown cost nothing per
    refresh (no comm message, no reduction); their figures stay cached for a while, then are closed.
    """

    def __init__(self, live: LiveHistory, *, started: float, steps_per_epoch=None) -> None:  # type: ignore[no-untyped-def]
        import ipywidgets as W

        from nbtrack.ui.figures import FigureGrid

        self.live = live
        self.started = started
        self.steps_per_epoch = steps_per_epoch
        self.settings = ChartSettings()
        self.families = Families()
        self.selection = ChartSelection((), 0, 0)
        self.pattern = ""
        self._settings_dirty = False
        self._filter_dirty = True
        self._lock = threading.RLock()
        self._sent_version: dict[str, int] = {}
        # family -> the settings its figure was last drawn with, and the refresh that last sent it
        self._drawn_with: dict[str, ChartSettings] = {}
        self._sent_at: dict[str, int] = {}
        self._shown: set[str] = set()  # the families the last refresh showed
        self._refreshes = 0
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
        # Applied on Enter (or when the box loses focus): each change may build up to MAX_CHARTS figures.
        self.filter = W.Text(
            placeholder="Filter charts: a name or a regular expression (loss|acc), then Enter",
            continuous_update=False,
            layout=W.Layout(width="420px"),
        )
        self.filter.observe(self._on_filter, names="value")
        self.status = W.HTML("", layout=W.Layout(margin="0 0 0 8px"))
        self.grid = FigureGrid()
        self.empty = W.HTML("<i>No metrics logged yet.</i>")
        self.widget = W.VBox(
            [
                W.HBox([self.axis, self.smoothing, self.log_y]),
                W.HBox([self.filter, self.status], layout=W.Layout(align_items="center")),
                self.empty,
                self.grid.widget,
            ]
        )

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
            self.refresh(set())

    def _on_filter(self, change) -> None:  # type: ignore[no-untyped-def]
        self.pattern = str(change["new"])
        self._filter_dirty = True
        if self.apply_now is not None and self.apply_now():
            self.refresh(set())

    apply_now = None  # set by the dashboard: True when no training thread will refresh soon

    def charts(self) -> list[ChartData]:
        """What the pane shows now, as data (the static snapshot draws it)."""
        with self._lock:
            self.families.update(self.live.keys())
            selection = select_charts(self.families.groups, self.pattern)
        return [
            chart_data(
                self.live,
                family,
                self.families.groups[family],
                self.settings,
                started=self.started,
                steps_per_epoch=self.steps_per_epoch,
            )
            for family in selection.shown
        ]

    def left_out_note(self) -> str:
        return left_out_note(select_charts(self.families.groups, self.pattern))

    # Set by the dashboard: at most this many lines, and about this many points (16 bytes each), are resent per
    # refresh for new points. None: no limit.
    line_budget: int | None = None
    point_budget: int | None = None

    def refresh(self, changed: set[str]) -> int:
        """Send what changed in the shown charts; returns how many widgets were updated (≈ comm messages).

        What the user asked for (charts newly shown, a filter, axis, smoothing or log scale) is sent at once.
        New points go out within `line_budget` and `point_budget`, the charts waiting longest first, so a grid
        of busy charts keeps to the message budget while the refresh rate stays the same.
        """
        # A control changed in the browser may refresh from a comm thread while a plain loop's `log` refreshes
        # on the main thread (no fit, so nothing defers it): one at a time.
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        redraw_all = self._settings_dirty
        self._settings_dirty = False
        self._refreshes += 1
        messages = 0
        grew = self.families.update(self.live.keys())
        if grew or self._filter_dirty:
            self._filter_dirty = False
            self.selection = select_charts(self.families.groups, self.pattern)
            status = self._status_html()
            if status != self.status.value:
                self.status.value = status
                messages += 1
        groups = self.families.groups
        shown_before, self._shown = self._shown, set(self.selection.shown)
        asked: list[tuple[str, set[str]]] = []
        waiting: list[tuple[str, set[str]]] = []  # only new points
        for family in self.selection.shown:
            keys = groups[family]
            if redraw_all or family not in shown_before or self._drawn_with.get(family) != self.settings:
                asked.append((family, set(keys)))
                continue
            family_stale = {k for k in keys if self._sent_version.get(k) != self.live.version.get(k)}
            if family_stale:
                waiting.append((family, family_stale))
        waiting = self._within_budget(waiting)
        charts, stale = [], set()
        for family, family_stale in asked + waiting:
            charts.append(
                chart_data(
                    self.live,
                    family,
                    groups[family],
                    self.settings,
                    started=self.started,
                    steps_per_epoch=self.steps_per_epoch,
                )
            )
            stale |= family_stale
            self._drawn_with[family] = self.settings
            self._sent_at[family] = self._refreshes
        messages += self.grid.update(charts, stale, relabel=True, arrange=False)
        for key in stale:
            self._sent_version[key] = self.live.version.get(key, 0)
        messages += self.grid.show(self.selection.shown)
        for family in self.grid.evict(keep=3 * MAX_CHARTS, protect=self.selection.shown):
            self._drawn_with.pop(family, None)
            self._sent_at.pop(family, None)
            for key in groups.get(family, ()):
                self._sent_version.pop(key, None)
        if self.grid.figures and self.empty.layout.display != "none":
            self.empty.layout.display = "none"
            messages += 1
        return messages

    def _within_budget(self, waiting: list[tuple[str, set[str]]]) -> list[tuple[str, set[str]]]:
        """The waiting charts to send now: those sent longest ago first, while the budgets last (one at least)."""
        if self.line_budget is None and self.point_budget is None:
            return waiting
        waiting = sorted(waiting, key=lambda item: self._sent_at.get(item[0], 0))
        lines = self.line_budget if self.line_budget is not None else math.inf
        points = self.point_budget if self.point_budget is not None else math.inf
        cap = self.live.max_points
        kept = []
        for family, stale in waiting:
            cost = sum(min(self.live.count(k), cap) for k in stale)
            if kept and (len(stale) > lines or cost > points):
                break
            kept.append((family, stale))
            lines -= len(stale)
            points -= cost
        return kept

    def _status_html(self) -> str:
        selection = self.selection
        parts = []
        if selection.error:
            parts.append(f"<span style='color:#d62728'>{html.escape(selection.error)}</span>")
        text = selection.status()
        if text:
            parts.append(f"<span style='color:#555'>{html.escape(text)}</span>")
        return "<div style='font-size:12px'>" + "<br>".join(parts) + "</div>" if parts else ""
