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


def mask_password(url: str) -> str:
    """`url` with its credentials (user part's password, ``password=``-like parameters) replaced by ``***``."""
    from nbtrack.common.redact import mask

    return mask(url)


def open_store(location: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
    """Open (and with `create`, make) the store at `location`; see `resolve_location`.

    A ``postgresql://`` or ``postgres://`` URL opens `nbtrack.store.postgres.PostgresStore` (needs psycopg:
    ``pip install 'nbtrack[postgres]'``); anything else is a directory for the embedded SQLite store.
    """
    if isinstance(location, Store):
        return location
    resolved = resolve_location(location)
    if resolved.startswith(("postgresql://", "postgres://")):
        from nbtrack.store.postgres import PostgresStore  # needs psycopg: imported only for PostgreSQL stores

        return PostgresStore(resolved, create=create)
    if "://" in resolved:
        raise StoreError(
            f"Unsupported run store location {mask_password(resolved)!r}: expected a directory path or a "
            "postgresql:// URL."
        )
    from nbtrack.store.sqlite import SQLiteStore

    return SQLiteStore(resolved, create=create)


__all__ = ["Store", "open_store", "resolve_location", "mask_password", "DEFAULT_DIRECTORY", "ENV_VAR"]
