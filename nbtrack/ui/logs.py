"""The Logs pane: the run's last printed lines, escaped (never interpreted), with a filter box.

While training runs the view shows the last `LIVE_LINES` lines at most once a second; when idle, all the
lines the run keeps (5,000 by default). The full log is the run's ``output.log`` file.
"""

from __future__ import annotations

import html
import time

from nbtrack.capture.logs import RunLog
from nbtrack.render.logs import render_lines

LIVE_LINES = 500
LIVE_INTERVAL = 1.0


class LogsPane:
    def __init__(self, log: RunLog, *, training=lambda: False) -> None:  # type: ignore[no-untyped-def]
        import ipywidgets as W

        self.log = log
        self.training = training
        self.filter = W.Text(
            placeholder="filter lines", continuous_update=False, layout=W.Layout(width="280px")
        )
        self.filter.observe(lambda change: self._filter_changed(), names="value")
        self.status = W.HTML()
        self.view = W.HTML(render_lines([])[0])
        self.widget = W.VBox([W.HBox([self.filter, self.status]), self.view])
        self._shown_count = -1
        self._last = 0.0
        self._filter_dirty = False

    def _filter_changed(self) -> None:
        self._filter_dirty = True
        if not self.training():
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> int:
        now = time.monotonic()
        unchanged = self.log.count == self._shown_count or now - self._last < LIVE_INTERVAL
        if not force and not self._filter_dirty and unchanged:
            return 0
        self._filter_dirty = False
        self._shown_count, self._last = self.log.count, now
        limit = LIVE_LINES if self.training() else None
        body, matched = render_lines(list(self.log.recent), self.filter.value, limit)
        self.view.value = body
        kept = len(self.log.recent)
        note = f"{self.log.count:,} lines printed; the last {kept:,} kept here, all in output.log"
        if self.filter.value:
            note += f"; {matched:,} match"
        self.status.value = f"<span style='color:#666;font-size:12px'>{html.escape(note)}</span>"
        return 2
