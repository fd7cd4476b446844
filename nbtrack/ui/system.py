"""The System pane: the run's system metrics charted against wall time, with the training span shaded.

`nbtrack.render.system.system_charts` (pure) groups the ``system/*`` series into charts; `SystemPane` draws them, per-core CPU in a
collapsed section that is only sent while open.
"""

from __future__ import annotations

from nbtrack.render.charts import ChartData
from nbtrack.render.system import core_chart, system_charts
from nbtrack.run.live import LiveHistory


class SystemPane:
    def __init__(self, live: LiveHistory, *, started: float) -> None:
        import ipywidgets as W

        from nbtrack.ui.figures import FigureGrid

        self.live = live
        self.started = started
        self.spans: list[tuple[float, float]] = []
        self.grid = FigureGrid(height="220px")
        self.cores = FigureGrid(columns="1fr", height="260px")
        self.per_core = W.Accordion(
            children=[self.cores.widget], titles=["CPU % per core"], selected_index=None
        )
        self.per_core.observe(
            lambda change: self.refresh(set(self.live.keys()), force=True), names="selected_index"
        )
        self.empty = W.HTML(
            "<i>No system samples yet. They come every second while a run is open "
            "(psutil is needed: <code>pip install 'nbtrack[system]'</code>).</i>"
        )
        self.widget = W.VBox([self.empty, self.grid.widget, self.per_core])
        self._sent: dict[str, int] = {}

    def charts(self) -> list[ChartData]:
        charts = system_charts(self.live, self.started, self.spans)
        cores = core_chart(self.live, self.started, self.spans)
        return charts + ([cores] if cores is not None else [])

    def refresh(self, changed: set[str], force: bool = False) -> int:
        stale = {k for k in changed if k.startswith("system/")}
        if not stale and not force:
            return 0
        messages = self.grid.update(
            system_charts(self.live, self.started, self.spans), None if force else stale
        )
        if self.per_core.selected_index is not None:  # sent only while the section is open
            cores = core_chart(self.live, self.started, self.spans)
            if cores is not None:
                messages += self.cores.update([cores], None if force else stale)
        if self.grid.figures and self.empty.layout.display != "none":
            self.empty.layout.display = "none"
            messages += 1
        return messages
