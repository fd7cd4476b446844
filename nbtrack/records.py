"""Stored runs, read back: `nbtrack.get_run("lyric-dream-3")` and what it returns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbtrack.store.base import FileInfo, MetricStats, RunEvent, RunRecord, Store


class StoredRun:
    """A run as the store has it, read-only: config, summary, metrics, events and files."""

    def __init__(self, store: Store, record: RunRecord) -> None:
        self.store = store
        self.record = record

    def __getattr__(self, name: str) -> Any:  # id, name, project, state, config, summary, environment, ...
        return getattr(self.record, name)

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


def get_run(
    ref: str, *, project: str | None = None, store: str | os.PathLike[str] | Store | None = None
) -> StoredRun:
    """A stored run by id, name or ``"latest"``, from `store` (default $NBTRACK_STORE or ./nbtrack-runs)."""
    from nbtrack.store import open_store

    opened = store if isinstance(store, Store) else open_store(store, create=False)
    return StoredRun(opened, opened.get_run(ref, project))
