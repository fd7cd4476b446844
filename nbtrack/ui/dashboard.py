"""The run dashboard shown in the cell: header (name, state, progress, Stop) and the run page's tabs.

It is displayed as a bundle holding the widget view plus a static SVG snapshot and a text summary, and the
display is updated when the run ends, so saved and exported notebooks show the final charts even where
widgets cannot render (GitHub, nbviewer, offline HTML).
"""

from __future__ import annotations

import html
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from nbtrack.render.svg import charts_svg
from nbtrack.ui import accept_clicks_during_fit, in_notebook
from nbtrack.ui.charts import ChartsPane
from nbtrack.ui.console import format_clock
from nbtrack.ui.files import FilesPane
from nbtrack.ui.logs import LogsPane
from nbtrack.ui.model import ModelPane
from nbtrack.ui.system import SystemPane

if TYPE_CHECKING:
    from nbtrack.run import Run

MIN_INTERVAL = 0.25  # at most 4 refreshes a second
MESSAGE_BUDGET = 20.0  # comm messages a second, all widgets together
MAX_INTERVAL = 2.0  # after a burst (new charts, a filter): the points queued for the views stay few
# While points stream in, a refresh resends at most 5 chart lines and about 4,000 points (64 KB): at 4 refreshes
# a second, 20 messages and 256 KB a second, however many charts are shown.
CHART_LINES = 5
CHART_POINTS = 4000
STATE_COLORS = {
    "running": "#1f77b4",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "interrupted": "#ff7f0e",
    "crashed": "#7f7f7f",
    "stopped-early": "#9467bd",
}
BAR_STYLES = {
    "running": "info",
    "finished": "success",
    "failed": "danger",
    "interrupted": "warning",
    "crashed": "danger",
    "stopped-early": "warning",
}


STOP_TOOLTIP = "End training after the current batch"
NO_CLICKS_NOTE = (
    "This front-end delivers clicks only when the cell ends: use Interrupt (■) to stop training. "
    "(Stop during fit needs kernel subshells: ipykernel >= 7 with JupyterLab >= 4.4 or Notebook >= 7.4.)"
)
LATE_STOP_NOTE = (
    "Stop arrived after training ended: this front-end delivers clicks only when the cell ends. "
    "Use Interrupt (■) to stop training."
)


def kernel_has_subshells() -> bool | None:
    """Whether this kernel can handle a widget click while the cell runs `fit`; None outside a kernel.

    Read from what the kernel tells front-ends in its kernel_info reply (the public ``supported_features``,
    JEP 91): without subshells every message, a click too, waits for the running cell to end. A front-end
    that does not use subshells (JupyterLab < 4.4) cannot be told from here: its click arrives after training,
    and the dashboard says so then.
    """
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return None
    try:
        info = kernel.kernel_info
    except Exception:
        return None
    features = info.get("supported_features") if isinstance(info, dict) else None
    return isinstance(features, (list, tuple)) and "kernel subshells" in features


def header_html(run: Run, state: str, now: float | None = None) -> str:
    progress = run.progress
    now = now or time.time()
    parts = [
        f"<b>{html.escape(run.name)}</b>",
        html.escape(run.project),
        f"<span style='background:{STATE_COLORS.get(state, '#777')};color:white;border-radius:8px;"
        f"padding:1px 8px'>{html.escape(state)}</span>",
    ]
    if progress.training:
        if progress.epochs:
            parts.append(f"epoch {min(progress.epoch + 1, progress.epochs)}/{progress.epochs}")
        if progress.steps_per_epoch:
            parts.append(f"step {progress.step_in_epoch}/{progress.steps_per_epoch}")
    elif progress.epochs:
        parts.append(f"{progress.epoch}/{progress.epochs} epochs")
    if progress.training or state != "running":
        end = run.ended if run.ended is not None else now
        try:
            elapsed = end - progress.started
        except TypeError:  # a bad stored record: the header says so below
            elapsed = math.nan
        parts.append(f"{format_clock(elapsed)} elapsed")
    if progress.training and state == "running":
        parts.append(f"ETA {format_clock(progress.eta(now))}")
    return "<div style='font-size:13px'>" + " · ".join(parts) + "</div>"


def text_summary(run: Run, state: str) -> str:
    last = ", ".join(f"{k}={v:.4g}" for k, v in list(run._last.items())[:6] if not k.startswith("batch/"))
    return f"nbtrack run {run.name} ({run.id}) · project {run.project} · {state}" + (
        f" · {last}" if last else ""
    )


class Dashboard:
    """The widget; one per run, displayable in several cells (every view is live)."""

    def __init__(self, run: Run) -> None:
        import ipywidgets as W

        self.run = run
        self.state = run.state
        self.stop_requested = threading.Event()
        self.interval = MIN_INTERVAL
        self.messages = 0  # widgets updated, all refreshes together
        self.refreshes = 0
        self._handles: list[Any] = []
        self._shown_in_cell: int | None = None
        self.header = W.HTML(header_html(run, self.state), layout=W.Layout(flex="1 1 auto"))
        self.bar = W.FloatProgress(
            value=0.0, min=0.0, max=1.0, bar_style=BAR_STYLES["running"], layout=W.Layout(width="220px")
        )
        self.stop_button = W.Button(
            description="Stop",
            icon="stop",
            button_style="warning",
            tooltip=STOP_TOOLTIP,
            layout=W.Layout(width="90px"),
        )
        self.note = W.HTML("", layout=W.Layout(display="none"))  # why Stop cannot work here, when it cannot
        self.stop_button.on_click(self._on_stop)
        accept_clicks_during_fit(self.stop_button)
        self.charts = ChartsPane(
            run.live, started=run.progress.started, steps_per_epoch=run.progress.steps_per_epoch
        )
        self.charts.apply_now = lambda: not self.run.progress.training
        self.charts.line_budget, self.charts.point_budget = CHART_LINES, CHART_POINTS
        for control in (self.charts.filter, self.charts.axis, self.charts.smoothing, self.charts.log_y):
            accept_clicks_during_fit(control)  # typed or clicked during fit: applied at the next refresh
        self.system = SystemPane(run.live, started=run.created)
        self.model = ModelPane()
        self.logs = LogsPane(run.output, training=lambda: self.run.progress.training)
        self.files = FilesPane(run)
        self.tabs = W.Tab(
            children=[
                self.charts.widget,
                self.system.widget,
                self.model.widget,
                self.logs.widget,
                self.files.widget,
            ],
            titles=["Charts", "System", "Model", "Logs", "Files"],
        )
        self.widget = W.VBox(
            [
                W.HBox(
                    [self.header, self.bar, self.stop_button],
                    layout=W.Layout(align_items="center", justify_content="space-between"),
                ),
                self.note,
                self.tabs,
            ]
        )

    # The click arrives on another thread while fit runs (JupyterLab >= 4.4 subshells): only set the flag.
    # Where the front-end holds clicks until the cell ends, it arrives after training: say so, stop nothing.
    def _on_stop(self, _button: Any) -> None:
        progress = self.run.progress
        if self.run.state != "running" or (not progress.training and progress.ended is not None):
            self._show_note(LATE_STOP_NOTE)  # (a plain run.log loop, fit-less, still takes the flag)
            return
        self.stop_requested.set()
        self.stop_button.description = "Stopping"
        self.stop_button.disabled = True

    def _show_note(self, text: str) -> None:
        self.note.value = (
            f"<span style='font-size:12px;color:#8a6d3b'>{html.escape(text)}</span>" if text else ""
        )
        self.note.layout.display = None if text else "none"

    def training_started(self) -> None:
        """A new `fit` on this run: the Stop button is back and the state is the run's."""
        self.stop_requested.clear()
        self.state = self.run.state
        self.stop_button.description = "Stop"
        self.stop_button.disabled = False
        self.stop_button.layout.display = None
        clicks_wait = kernel_has_subshells() is False
        self.stop_button.tooltip = NO_CLICKS_NOTE if clicks_wait else STOP_TOOLTIP
        self._show_note(NO_CLICKS_NOTE if clicks_wait else "")
        self.bar.bar_style = BAR_STYLES["running"]
        accept_clicks_during_fit(self.stop_button)

    def bundle(self) -> dict[str, Any]:
        from nbtrack.ui import widget_bundle

        return widget_bundle(
            self.widget,
            self.snapshot_html(),
            text_summary(self.run, self.state),
            **{"image/svg+xml": self.snapshot_svg()},
        )

    def output_metadata(self) -> dict[str, Any]:
        """Saved with the output: which run it shows, so `nbtrack report` can re-render it from the store."""
        return {"nbtrack": {"view": "run", "run_id": self.run.id, "store": self.run.store.location}}

    def snapshot_html(self) -> str:
        from nbtrack.render.snapshot import dashboard_html

        return dashboard_html(self)

    def snapshot_svg(self) -> str:
        title = f"{self.run.name} · {self.run.project} · {self.state}"
        charts, system = self.charts.charts(), self.system.charts()
        return charts_svg(
            [*charts, *system], title=title, note=self.charts.left_out_note(), limit=len(charts) + len(system)
        )

    def show(self) -> None:
        """Display the dashboard in the running cell (once per cell: a fit that starts its run shows it once)."""
        from IPython import get_ipython
        from IPython.display import display

        import nbtrack.run

        if nbtrack.run._embedded:  # a container (the sweep view) shows this dashboard
            return
        shell = get_ipython()
        cell = getattr(shell, "execution_count", None)
        if cell is not None and cell == self._shown_in_cell:
            return
        self._shown_in_cell = cell
        self._handles.append(
            display(self.bundle(), raw=True, display_id=True, metadata=self.output_metadata())
        )

    def refresh(self, changed: set[str]) -> None:
        progress = self.run.progress
        self.charts.steps_per_epoch = progress.steps_per_epoch
        widgets_before = _widget_count()
        sent = 0
        header = header_html(self.run, self.state)
        if header != self.header.value:
            self.header.value = header
            sent += 1
        fraction = progress.fraction()
        if fraction is not None and abs(fraction - self.bar.value) > 1e-4:
            self.bar.value = fraction
            sent += 1
        sent += self.charts.refresh(changed)
        span = progress.span()
        spans = [span] if span is not None else []
        force_system = spans != self.system.spans
        self.system.spans = spans
        sent += self.system.refresh(changed, force=force_system)
        sent += self.logs.refresh(
            force=not progress.training and self.logs.log.count != self.logs._shown_count
        )
        sent += self.files.refresh(force=not progress.training)
        # A new chart opens one comm per widget it is made of (figure, axes, scales, marks, layouts): count
        # those too, so the next refresh waits long enough to keep the budget.
        sent += max(0, _widget_count() - widgets_before)
        self.messages += sent
        self.refreshes += 1
        self.interval = min(MAX_INTERVAL, max(MIN_INTERVAL, sent / MESSAGE_BUDGET))

    def close(self, state: str) -> None:
        """Final state: header, bar, no Stop; the displays get the final snapshot; full state is resent so a
        notebook saved by nbclient holds the final widget state."""
        self.state = state
        self.charts._settings_dirty = True
        self.refresh(set(self.run.live.keys()))
        self.bar.bar_style = BAR_STYLES.get(state, "")
        if state == "finished":
            self.bar.value = 1.0 if self.run.progress.fraction() is not None else self.bar.value
        self.stop_button.disabled = True
        self.stop_button.layout.display = "none"
        if self.note.value and LATE_STOP_NOTE not in html.unescape(self.note.value):
            self._show_note("")  # training is over: a note about stopping it is moot
        for widget in self._all_widgets():
            widget.send_state()
        bundle = self.bundle()
        for handle in self._handles:
            handle.update(bundle, raw=True, metadata=self.output_metadata())

    def _all_widgets(self) -> list[Any]:
        import ipywidgets as W

        seen: dict[str, Any] = {}

        def walk(value: Any) -> None:
            if isinstance(value, W.Widget):
                if value.model_id in seen:
                    return
                seen[value.model_id] = value
                for name in value.keys:
                    walk(getattr(value, name, None))
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(self.widget)
        return list(seen.values())


def _widget_count() -> int:
    """How many widgets this kernel holds (each opened a comm); 0 where ipywidgets keeps no such table."""
    from ipywidgets.widgets import widget

    return len(getattr(widget, "_instances", ()))


def display(run: Run | None = None) -> Dashboard | None:
    """Show `run`'s live dashboard (default: the current run) in this cell; None outside a notebook."""
    from nbtrack.run import current_run

    run = run or current_run()
    if run is None:
        from nbtrack.errors import NbtrackError

        raise NbtrackError(
            "nbtrack.display() needs a run: call nbtrack.init(project=...) first, or pass one."
        )
    if not in_notebook():
        return None
    dashboard = run._dashboard()
    if dashboard is not None:
        dashboard.show()
    return dashboard
