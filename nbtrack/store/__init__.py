"""Run stores: where runs live. `open_store` picks the backend from the location."""

from __future__ import annotations

import os
from pathlib import Path

from nbtrack.errors import StoreError
from nbtrack.store.base import Store

DEFAULT_DIRECTORY = "nbtrack-runs"
ENV_VAR = "NBTRACK_STORE"


def resolve_location(location: str | os.PathLike[str] | None = None) -> str:
    """`location`, else $NBTRACK_STORE, else ./nbtrack-runs under the working directory."""
    if location is None:
        location = os.environ.get(ENV_VAR) or DEFAULT_DIRECTORY
    location = os.fspath(location)
    if "://" in location:
        return location
    return str(Path(location).expanduser().absolute())


def open_store(location: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
    """Open (and with `create`, make) the store at `location`; see `resolve_location`."""
    if isinstance(location, Store):
        return location
    resolved = resolve_location(location)
    if resolved.startswith(("postgresql://", "postgres://")):
        raise StoreError(
            "PostgreSQL run stores are not available in this version of nbtrack yet; use a directory path "
            "(the embedded SQLite store)."
        )
    if "://" in resolved:
        raise StoreError(f"Unsupported run store location {resolved!r}: expected a directory path.")
    from nbtrack.store.sqlite import SQLiteStore

    return SQLiteStore(resolved, create=create)


__all__ = ["Store", "open_store", "resolve_location", "DEFAULT_DIRECTORY", "ENV_VAR"]
