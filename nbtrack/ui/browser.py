"""The runs browser: `nbtrack.browse()` / `%nbtrack runs`. Projects and their runs (newest first, state, key
metrics); a click on a run's name opens its dashboard read from the store, a selection opens the compare
widget. Refresh re-reads the store, so a run training in another kernel shows its progress."""

from __future__ import annotations

from typing import Any

from nbtrack.read.records import StoredRun, runs
from nbtrack.render.tables import default_columns, runs_table_html, table_columns, table_rows
from nbtrack.store import open_store
from nbtrack.store.base import Store

PAGE = 500


class RunsBrowser:
    def __init__(self, project: str | None = None, *, store: Any = None) -> None:
        import ipywidgets as W

        from nbtrack.ui.compare import RunsTableView

        self.store: Store = store if isinstance(store, Store) else open_store(store, create=False)
        self.projects = W.Dropdown(description="Project", layout=W.Layout(width="auto"))
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="auto"))
        self.compare_button = W.Button(description="Compare selected", layout=W.Layout(width="auto"))
        self.status = W.HTML("")
        self.table = RunsTableView()
        self.detail = W.Box(layout=W.Layout(width="100%"))
        self.widget = W.VBox(
            [
                W.HBox([self.projects, self.refresh_button, self.compare_button, self.status]),
                self.table,
                self.detail,
            ],
            layout=W.Layout(width="100%"),
        )
        self.runs: list[StoredRun] = []
        self.opened: str | None = None  # the run whose dashboard is open
        self.comparing: list[str] | None = None
        self.dashboard: Any = None
        self.comparison: Any = None
        self._load_projects(project)
        self.projects.observe(lambda _: self.load_runs(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.compare_button.on_click(lambda _: self.compare_selected())
        self.table.on_msg(self._on_message)
        self.load_runs()

    def _load_projects(self, wanted: str | None = None) -> None:
        infos = self.store.projects()
        options = [
            (f"{p.name} ({p.runs} runs{f', {p.running} running' if p.running else ''})", p.name)
            for p in infos
        ]
        current = wanted if wanted is not None else self.projects.value
        names = [name for _, name in options]
        if wanted is not None and wanted not in names:
            raise ValueError(
                f"No project {wanted!r} in the store at {self.store.location}. Projects: {', '.join(names) or '(none)'}"
            )
        self.projects.options = options
        if names:
            self.projects.value = current if current in names else names[0]

    def load_runs(self) -> None:
        project = self.projects.value
        found = runs(project=project, limit=PAGE, store=self.store) if project else []
        self.runs = list(found)
        columns = default_columns(self.runs, config=3, metrics=3)
        with self.table.hold_sync():
            self.table.columns = table_columns(columns, self.runs)
            self.table.rows = table_rows(self.runs, columns)
            self.table.total = getattr(found, "total", len(self.runs))
            self.table.selected = [i for i in self.table.selected if any(r.id == i for r in self.runs)]
        self.status.value = "" if project else "<i>No runs in this store yet.</i>"

    def refresh(self) -> None:
        """Re-read projects, runs and whatever is open below the table."""
        self._load_projects()
        self.load_runs()
        if self.opened is not None:
            self.open(self.opened)
        elif self.comparing is not None:
            self.compare_selected(self.comparing)

    def open(self, run_id: str) -> None:
        from nbtrack.read.records import get_run
        from nbtrack.ui.stored import stored_dashboard

        self.dashboard = stored_dashboard(get_run(run_id, store=self.store))
        self.opened, self.comparing = run_id, None
        self.detail.children = (self.dashboard.widget,)

    def compare_selected(self, ids: list[str] | None = None) -> None:
        import ipywidgets as W

        from nbtrack.read.records import get_run
        from nbtrack.ui.compare import CompareWidget

        ids = list(ids if ids is not None else self.table.selected)
        if not ids:
            self.detail.children = (W.HTML("<i>Select runs with the checkboxes to compare them.</i>"),)
            return
        self.comparison = CompareWidget([get_run(i, store=self.store) for i in ids])
        self.comparing, self.opened = ids, None
        self.detail.children = (self.comparison.widget,)

    def _on_message(self, widget: Any, content: Any, buffers: Any) -> None:
        if (
            isinstance(content, dict)
            and content.get("event") == "open"
            and isinstance(content.get("id"), str)
        ) and any(r.id == content["id"] for r in self.runs):
            self.open(content["id"])

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        from nbtrack.ui import widget_bundle

        return widget_bundle(
            self.widget,
            runs_table_html(self.runs, default_columns(self.runs, config=3, metrics=3)),
            f"<nbtrack runs browser: project {self.projects.value!r}, {len(self.runs)} runs>",
        )


def browse(project: str | None = None, *, store: Any = None) -> RunsBrowser:
    return RunsBrowser(project, store=store)
