"""Stored runs, read back: `nbtrack.get_run("lyric-dream-3")`, `nbtrack.runs(where=...)` and what they return."""

from __future__ import annotations

import difflib
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from nbtrack.store.base import FileInfo, MetricStats, RunEvent, RunQuery, RunRecord, Store
from nbtrack.store.query import Field, QueryError, fields_of, parse, parse_order


class StoredRun:
    """A run as the store has it, read-only: config, summary, metrics, events and files."""

    def __init__(self, store: Store, record: RunRecord, *, has_environment: bool = True) -> None:
        self.store = store
        self.record = record
        self._has_environment = has_environment

    def __getattr__(self, name: str) -> Any:  # id, name, project, state, config, summary, tags, created, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.record, name)

    @property
    def environment(self) -> dict[str, Any]:
        """Python, OS, host, packages, git state (read on first use: search results leave it out)."""
        if not self._has_environment:
            self.record = self.store.get_run(self.record.id)
            self._has_environment = True
        return self.record.environment

    def __repr__(self) -> str:
        return f"<StoredRun {self.record.name} ({self.record.id}) project={self.record.project!r} state={self.record.state}>"

    def metrics(self) -> dict[str, MetricStats]:
        return self.store.metric_stats(self.record.id)

    def history(self, keys: str | Sequence[str] | None = None, samples: int | None = None) -> Any:
        """One metric's `History` (a key), or a dict of them (a list of keys; all metrics when None)."""
        if isinstance(keys, str):
            return self.store.history(self.record.id, keys, samples)
        names = list(keys) if keys is not None else list(self.metrics())
        return {key: self.store.history(self.record.id, key, samples) for key in names}

    def events(self) -> list[RunEvent]:
        return self.store.events(self.record.id)

    def files(self) -> list[FileInfo]:
        return self.store.list_files(self.record.id)

    def file(self, name: str) -> Path:
        """The local path of one of the run's files, e.g. ``run.file("model-best.keras")``."""
        root = self.store.run_dir(self.record.id).resolve()
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            listing = ", ".join(f.name for f in self.files()) or "(none)"
            raise FileNotFoundError(f"run {self.record.name} has no file {name!r}; its files: {listing}")
        return path


class RunList(Sequence[StoredRun]):
    """Runs from `nbtrack.runs`, in order: index, slice, iterate; ``to_pandas()`` for a table."""

    def __init__(
        self, runs: Sequence[StoredRun], *, total: int | None = None, query: str | None = None
    ) -> None:
        self._runs = list(runs)
        self.total = len(self._runs) if total is None else total  # matches before the limit
        self.query = query

    @overload
    def __getitem__(self, index: int) -> StoredRun: ...
    @overload
    def __getitem__(self, index: slice) -> RunList: ...
    def __getitem__(self, index: int | slice) -> StoredRun | RunList:
        if isinstance(index, slice):
            return RunList(self._runs[index])
        return self._runs[index]

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[StoredRun]:
        return iter(self._runs)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self._runs]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._runs]

    def records(self) -> list[RunRecord]:
        return [r.record for r in self._runs]

    def __repr__(self) -> str:
        more = f" of {self.total}" if self.total != len(self._runs) else ""
        head = ", ".join(r.name for r in self._runs[:5]) + (", ..." if len(self._runs) > 5 else "")
        return f"<RunList {len(self._runs)}{more} runs: {head}>"

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per run: id, name, project, state, created, duration, tags, config.*, summary.*."""
        now = time.time()
        rows = []
        for run in self._runs:
            record = run.record
            row: dict[str, Any] = {
                "id": record.id,
                "name": record.name,
                "project": record.project,
                "state": record.state,
                "created": record.created,
                "duration": record.duration if record.ended is not None else elapsed(record.created, now),
                "tags": list(record.tags),
            }
            row.update(flatten("config", record.config))
            row.update(flatten("summary", {k: v for k, v in record.summary.items() if not k.startswith("_")}))
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """A DataFrame indexed by run id, with ``config.*`` and ``summary.*`` columns (pandas needed)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "RunList.to_pandas needs pandas. Install it with `pip install pandas`."
            ) from None
        frame = pd.DataFrame(self.to_rows())
        if frame.empty:
            return pd.DataFrame(
                columns=["id", "name", "project", "state", "created", "duration", "tags"]
            ).set_index("id")
        frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
        return frame.set_index("id")

    def _repr_html_(self) -> str:
        from nbtrack.common import views

        return views.view("runs_table_html")(self)  # the table is drawn in render/, a layer above


def elapsed(created: Any, now: float) -> float:
    """Seconds from `created` to `now`; NaN when the stored time is not a time (a bad record)."""
    try:
        seconds = max(0.0, now - created)
    except TypeError:
        return math.nan
    return seconds if math.isfinite(seconds) else math.nan


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``{"optimizer": {"lr": 1}}`` -> ``{"config.optimizer.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(name, value))
        else:
            out[name] = value
    return out


def runs(
    project: str | None = None,
    where: str | None = None,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    *,
    store: str | os.PathLike[str] | Store | None = None,
) -> RunList:
    """Stored runs matching `where`, sorted by `order_by` (newest first by default). See `nbtrack.store.query`."""
    from nbtrack.store import open_store

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if project is not None and not isinstance(project, str):
        raise TypeError(f"project must be a string or None, got {type(project).__name__}")
    node = parse(where) if where is not None and (not isinstance(where, str) or where.strip()) else None
    query = RunQuery(project=project, where=node, order=parse_order(order_by), limit=limit)
    opened = store if isinstance(store, Store) else open_store(store, create=False)
    records, total = opened.search_runs_counted(query)
    if not records and node is not None:
        _check_keys(opened, project, fields_of(node))
    return RunList([StoredRun(opened, r, has_environment=False) for r in records], total=total, query=where)


def _check_keys(store: Store, project: str | None, fields: list[Field]) -> None:
    """An empty result from a key no run has is usually a typo: name the nearest key that runs do have."""
    for field in fields:
        if field.scope == "run":
            continue
        known = store.keys(field.scope, project)
        if field.path[0] in known:
            continue
        close = difflib.get_close_matches(field.path[0], known, n=1, cutoff=0.75)
        if close:
            scope = f" in project {project!r}" if project else ""
            raise QueryError(
                f"No run{scope} has {field.text}. Did you mean {field.scope}.{close[0]}? "
                f"({field.scope} keys: {', '.join(known[:20])}{', ...' if len(known) > 20 else ''})"
            )


def get_run(
    ref: str, *, project: str | None = None, store: str | os.PathLike[str] | Store | None = None
) -> StoredRun:
    """A stored run by id, name or ``"latest"``, from `store` (default $NBTRACK_STORE or ./nbtrack-runs)."""
    from nbtrack.store import open_store

    opened = store if isinstance(store, Store) else open_store(store, create=False)
    return StoredRun(opened, opened.get_run(ref, project))
