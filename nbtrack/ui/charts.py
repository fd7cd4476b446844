"""The Charts pane: one chart per metric family, batch line plus epoch points, live while `fit` runs.

The pure functions in `nbtrack.render.charts` turn a `LiveHistory` into `ChartData` (what is drawn); `ChartsPane`
only copies that into bqplot marks inside `hold_sync()`.
"""

from __future__ import annotations

import html
import math
import threading

from nbtrack.render.charts import (
    MAX_CHARTS,
    ChartData,
    ChartSelection,
    ChartSettings,
    Families,
    chart_data,
    left_out_note,
    select_charts,
)
from nbtrack.run.live import LiveHistory


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
