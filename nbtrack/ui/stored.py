"""Reopening a stored run: `nbtrack.show("lyric-dream-3")` builds the same dashboard from the store alone —
metrics, system samples, the model graph (model.json), the log's tail (output.log) and the files."""

from __future__ import annotations

import io
from collections import deque
from typing import Any

from nbtrack.capture.logs import KEEP_LINES, RunLog
from nbtrack.capture.model_graph import ModelGraph
from nbtrack.read.records import StoredRun
from nbtrack.run.live import LiveHistory, Progress


class StoredRunSource:
    """What the dashboard reads from a live `Run`, made from a stored one (read-only)."""

    def __init__(self, stored: StoredRun) -> None:
        record = stored.record
        self.stored = stored
        self.store = stored.store
        self.id, self.name, self.project = record.id, record.name, record.project
        self.state, self.created, self.ended = record.state, record.created, record.ended
        self.live = LiveHistory.from_store(stored.store, record.id, lazy=True)  # reads what is shown
        self._last = {
            k: v for k, v in record.summary.items() if isinstance(v, (int, float)) and not k.startswith("_")
        }
        self.progress = Progress(
            started=record.created,
            epochs=record.config.get("epochs"),
            steps_per_epoch=record.config.get("steps_per_epoch"),
        )
        fits = [e for e in stored.events() if e.kind == "fit"]
        if fits:
            last = fits[-1].data
            self.progress.started, self.progress.ended = last.get("started"), last.get("ended")
            self.progress.epoch = int(last.get("epochs") or 0)
        self.output = RunLog()
        try:
            with self._open("output.log") as log:
                tail = deque(log, maxlen=KEEP_LINES)
            self.output.recent.extend(line.rstrip("\n") for line in tail)
            self.output.count = len(tail)
        except FileNotFoundError:
            pass
        self.output.drain()

    def _open(self, name: str) -> io.TextIOWrapper:
        """One of the run's own files as text: a symlink in its place is never followed."""
        from nbtrack.store.base import open_run_file

        binary = open_run_file(self.store.run_dir(self.id), name)
        return io.TextIOWrapper(binary, encoding="utf-8", errors="replace")

    def model_graph(self) -> ModelGraph | None:
        try:
            with self._open("model.json") as file:
                return ModelGraph.from_json(file.read())
        except FileNotFoundError:
            return None


def show(ref: Any, *, store: Any = None) -> Any:
    """Display the dashboard of a stored run (an id, a name, ``"latest"``, or a `StoredRun`)."""
    from nbtrack.read.records import get_run
    from nbtrack.ui import in_notebook

    stored = ref if isinstance(ref, StoredRun) else get_run(ref, store=store)
    dashboard = stored_dashboard(stored)
    source = dashboard.run
    if in_notebook():
        dashboard.show()
        dashboard.close(source.state)
    return dashboard


def stored_dashboard(stored: StoredRun) -> Any:
    """The dashboard of a stored run, filled from the store, not displayed."""
    from nbtrack.ui.dashboard import Dashboard

    source = StoredRunSource(stored)
    dashboard = Dashboard(source)  # type: ignore[arg-type]
    graph = source.model_graph()
    if graph is not None:
        dashboard.model.show(graph)
    dashboard.close(source.state)  # a stored run is never training: final state, full refresh
    return dashboard
