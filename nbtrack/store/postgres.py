"""A shared store in a PostgreSQL database: ``NBTRACK_STORE=postgresql://user@host/db`` (or ``postgres://``).

    nbtrack.init(store="postgresql://me@db.example.org/experiments")

The same tables and the same queries as the SQLite store (`nbtrack.store.sqlstore` holds them once); this module
is PostgreSQL's dialect, with these decisions:

- JSON columns (config, summary, environment, tags, event data, sweep config, trial params and rungs) are of type
  ``json``, not ``jsonb``: ``json`` keeps the exact text `nbtrack.store.query.dump_json` wrote, so ``1e999`` (infinity)
  reads back as infinity and sub-values sort by their `dump_json` text, as on SQLite. ``jsonb`` would store
  ``1e999`` as a 1000-digit integer. Queries compare JSON numbers as float8 through ``nbtrack_float(json)``
  (±1e999 is ±Infinity); text compares with ``COLLATE "C"`` (code point order, as SQLite's BINARY collation).
  The database should be UTF8-encoded; text cannot hold NUL characters in PostgreSQL.
- Metric points are `nbtrack.store.chunks`' chunks, in BYTEA columns.
- Files stay on a file system, not in the database: a run's files are in ``$NBTRACK_FILES/<run id>/``, by default
  ``~/.nbtrack/files/<db host>_<db name>/<run id>/``. Point NBTRACK_FILES at a shared directory (NFS, a mounted
  bucket) when several machines write to one database and should see each other's files.
- Schema versions follow `nbtrack.store.base.SCHEMA_VERSION`: the first PostgreSQL migration is number 3 (what
  SQLite's migrations 1-3 build). Applied versions are rows of ``schema_version``; migrations run under
  ``pg_advisory_xact_lock``, so clients starting at once are safe.
- `claim_trial`, `record_rung` and `import_sweep` hold a per-sweep advisory lock for their transaction: concurrent
  agents never get the same trial. A flush locks its run's row and metric rows (``FOR UPDATE``); an import of a
  run holds a per-run advisory lock. Inside `waiting_at_most`, ``lock_timeout`` bounds the wait for a lock.
- The location shown in every message hides the password: ``postgresql://user:***@host/db``. Opening such a
  masked location connects without a password, so libpq takes it from PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import psycopg
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The PostgreSQL run store needs psycopg. Install it with `pip install 'nbtrack[postgres]'`."
    ) from None

from nbtrack.common.redact import mask, url_secrets
from nbtrack.errors import StoreError
from nbtrack.store.base import SCHEMA_VERSION
from nbtrack.store.query import load_json
from nbtrack.store.sql import Sql
from nbtrack.store.sqlstore import Dialect, SQLStore, Transaction

FILES_ENV_VAR = "NBTRACK_FILES"
# Advisory lock keys (int4 pairs): "nb" in the high half, then what the lock is for.
_MIGRATION_LOCK = (0x6E62_0001, 0)
_SWEEP_LOCK_CLASS = 0x6E62_0002  # with hashtext(sweep id)
_IMPORT_LOCK_CLASS = 0x6E62_0003  # with hashtext(run id): one import of a run at a time

# Named, numbered migrations. Never edit one that has shipped: add the next (with the same number as SQLite's).
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        3,
        "initial schema: runs, metrics, chunks, events, sweeps and trials (SQLite's schema 3)",
        """
        CREATE TABLE projects (name TEXT COLLATE "C" PRIMARY KEY, next_seq BIGINT NOT NULL);
        CREATE TABLE runs (
            id TEXT COLLATE "C" PRIMARY KEY, project TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
            seq BIGINT, state TEXT COLLATE "C" NOT NULL, created DOUBLE PRECISION NOT NULL,
            ended DOUBLE PRECISION, heartbeat DOUBLE PRECISION, host TEXT COLLATE "C" NOT NULL,
            pid BIGINT NOT NULL, notes TEXT COLLATE "C", tags JSON NOT NULL DEFAULT '[]',
            config JSON NOT NULL DEFAULT '{}', summary JSON NOT NULL DEFAULT '{}',
            environment JSON NOT NULL DEFAULT '{}');
        CREATE INDEX runs_project_created ON runs (project, created);
        CREATE INDEX runs_created ON runs (created);
        CREATE INDEX runs_name ON runs (name);
        CREATE INDEX runs_state ON runs (state);
        CREATE TABLE metrics (
            run_id TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, count BIGINT NOT NULL,
            last DOUBLE PRECISION, min DOUBLE PRECISION, max DOUBLE PRECISION, first_step BIGINT NOT NULL,
            last_step BIGINT NOT NULL, chunks INTEGER NOT NULL, PRIMARY KEY (run_id, key));
        CREATE TABLE chunks (
            run_id TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, seq INTEGER NOT NULL,
            n INTEGER NOT NULL, first_step BIGINT NOT NULL, last_step BIGINT NOT NULL,
            t0 DOUBLE PRECISION NOT NULL, steps BYTEA, times BYTEA NOT NULL, vals BYTEA NOT NULL,
            PRIMARY KEY (run_id, key, seq));
        CREATE TABLE events (
            id BIGSERIAL PRIMARY KEY, run_id TEXT COLLATE "C" NOT NULL, time DOUBLE PRECISION NOT NULL,
            step BIGINT, kind TEXT NOT NULL, message TEXT, data JSON);
        CREATE INDEX events_run ON events (run_id, time);
        CREATE TABLE sweeps (
            id TEXT COLLATE "C" PRIMARY KEY, project TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
            config JSON NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
            ended DOUBLE PRECISION);
        CREATE INDEX sweeps_name ON sweeps (name);
        CREATE TABLE trials (
            sweep_id TEXT COLLATE "C" NOT NULL, number INTEGER NOT NULL, params JSON NOT NULL,
            state TEXT NOT NULL, run_id TEXT COLLATE "C", grid_index INTEGER, worker TEXT NOT NULL DEFAULT '',
            value DOUBLE PRECISION, rungs JSON NOT NULL DEFAULT '{}', created DOUBLE PRECISION NOT NULL,
            ended DOUBLE PRECISION, PRIMARY KEY (sweep_id, number));
        -- A JSON number (±1e999 is ±Infinity) or boolean (1/0) as float8; NULL for anything else.
        CREATE FUNCTION nbtrack_float(v json) RETURNS double precision
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE json_typeof(v)
                WHEN 'number' THEN CASE
                    WHEN (v #>> '{}')::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8
                    WHEN (v #>> '{}')::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8
                    ELSE (v #>> '{}')::float8 END
                WHEN 'boolean' THEN CASE WHEN v::text = 'true' THEN 1.0::float8 ELSE 0.0::float8 END
            END
        $$;
        """,
    ),
)
assert MIGRATIONS[-1][0] == SCHEMA_VERSION


_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


@functools.lru_cache(maxsize=1024)
def _placeholders(text: str) -> str:
    return text.replace("?", "%s")


def default_files_root(url: str) -> Path:
    """``~/.nbtrack/files/<db host>_<db name>``, the files directory when NBTRACK_FILES is not set."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        info = {}
    host = str(info.get("host") or os.environ.get("PGHOST") or "localhost")
    dbname = str(info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or "postgres")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{host}_{dbname}").strip("_")
    return Path("~/.nbtrack/files").expanduser() / slug


# -- the `where` language's JSON functions -------------------------------------------------------------
_PG_KIND_OF_JSON_TYPE = (
    "CASE json_typeof({v}) WHEN 'number' THEN 'n' WHEN 'string' THEN 't' WHEN 'boolean' THEN 'b' "
    "WHEN 'array' THEN 'a' WHEN 'object' THEN {object_kind} ELSE NULL END"
)
_INDEX_LIKE = re.compile(r"\s*[+-]?\d+\s*")  # a key that PostgreSQL's #> would also read as an array index
_PG_CASTS = {str: "::text", float: "::float8", int: "::float8", bool: "::float8", list: "::text[]"}
_PG_NULL = {"n": "NULL::float8", "b": "NULL::float8", "t": "NULL::text"}


def _pg_text(value: str) -> str:
    return f"({value} #>> '{{}}')"


def pg_json_column(column: str) -> str:
    """A JSON column that PostgreSQL can walk: its JSON functions fail on a document holding ``\\u0000`` (text cannot
    hold NUL), so in such a (rare) document NUL reads as U+0001. Only an escape is replaced: in ``\\\\u0000`` (a
    backslash, then the text u0000) the backslash is escaped, so an even run of backslashes comes before a NUL."""
    return (
        f"(CASE WHEN strpos({column}::text, '\\u0000') > 0 "
        f"THEN regexp_replace({column}::text, '(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', '\\1\\\\u0001', 'g')::json "
        f"ELSE {column} END)"
    )


@dataclass
class PostgresJSON:
    """PostgreSQL's functions over ``json`` columns (which keep the exact text `dump_json` wrote, ``1e999``
    included). Paths are ``text[]`` parameters. Numbers and booleans compare as float8 through the store's
    ``nbtrack_float(json)`` (±1e999 reads as ±Infinity, booleans as 1/0), text with ``COLLATE "C"`` (code point
    order, as SQLite's BINARY collation)."""

    params: dict[str, Any] = field(default_factory=dict)
    _values: dict[tuple[str, tuple[str, ...]], Sql] = field(default_factory=dict)

    false = "FALSE"
    greatest = "GREATEST"

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s{_PG_CASTS.get(type(value), '')}"

    def value(self, column: str, keys: tuple[str, ...]) -> Sql:
        """The JSON value at `keys` (NULL when missing): one expression per path, its parameter bound once."""
        cached = self._values.get((column, keys))
        if cached is None:
            column = pg_json_column(column)
            expression = f"({column} #> {self.bind(list(keys))})"
            # #> indexes arrays with integer-like keys; nbtrack's fields only ever name object keys.
            guards = [
                f"json_typeof({column} #> {self.bind(list(keys[:i]))}) = 'object'"
                for i in range(1, len(keys))
                if _INDEX_LIKE.fullmatch(keys[i])
            ]
            if guards:
                expression = f"(CASE WHEN {' AND '.join(guards)} THEN {expression} END)"
            cached = self._values[(column, keys)] = Sql(expression, "j")
        return cached

    def kind(self, column: str, keys: tuple[str, ...]) -> str:
        """One of n/b/t/a/o/x (see `nbtrack.store.query.kind_of`), NULL for null or missing."""
        v = self.value(column, keys)
        object_kind = f"""(CASE WHEN ({v} -> '$float')::text = '"NaN"' THEN 'x' ELSE 'o' END)"""
        return _PG_KIND_OF_JSON_TYPE.format(v=v, object_kind=object_kind)

    def elements(self, column: str, keys: tuple[str, ...]) -> tuple[str, str, str]:
        v = self.value(column, keys)
        return (
            f"json_array_elements(CASE WHEN json_typeof({v}) = 'array' THEN {v} END) AS e(value)",
            _PG_KIND_OF_JSON_TYPE.format(v="e.value", object_kind="'o'"),
            Sql("e.value", "j"),
        )

    def all_elements(self, column: str) -> tuple[str, str, str]:
        return (
            f"json_array_elements({pg_json_column(column)}) AS e(value)",
            _PG_KIND_OF_JSON_TYPE.format(v="e.value", object_kind="'o'"),
            Sql("e.value", "j"),
        )

    @staticmethod
    def typed(value: str, want: str) -> str:
        have = getattr(value, "type", "t")
        if have == "j":
            return f'({_pg_text(value)} COLLATE "C")' if want == "t" else f"nbtrack_float({value})"
        if have == want == "t":
            return f'({value} COLLATE "C")'
        if have == want == "n":
            return value
        return _PG_NULL[want]  # a column of another type: its kind never matches, and the SQL must type-check

    def instr(self, value: str, needle: str) -> str:
        return f"strpos({self.typed(value, 't')}, {needle})"

    def startswith(self, value: str, prefix: str) -> str:
        return f"starts_with({self.typed(value, 't')}, {prefix})"

    def endswith(self, value: str, suffix: str) -> str:
        return f"right({self.typed(value, 't')}, length({suffix})) = {suffix}"

    @staticmethod
    def order_terms(value: str, direction: str) -> list[str]:
        """A number term and a text term: within a sort class only one of them is not NULL."""
        have = getattr(value, "type", "t")
        if have == "n":
            return [f"{value} {direction}"]
        if have == "j":
            text = (
                f"(CASE json_typeof({value}) WHEN 'string' THEN {_pg_text(value)} WHEN 'number' THEN NULL "
                f"WHEN 'boolean' THEN NULL WHEN 'null' THEN NULL ELSE {value}::text END)"
            )
            return [f"nbtrack_float({value}) {direction}", f'({text} COLLATE "C") {direction}']
        return [f'(({value})::text COLLATE "C") {direction}']


class PostgresDialect(Dialect):
    """PostgreSQL's side of `SQLStore`: the database at `url` (its password never in a message)."""

    query = PostgresJSON
    migrations = MIGRATIONS
    for_update = " FOR UPDATE"
    event_order = "id"
    no_limit = "ALL"
    keys_per_statement = 1 << 62  # one ``= ANY(array)`` whatever the number of keys
    locked = "locked by another session (a lock it needs was held for more than {wait:g} s)"
    missing = (
        "There is no nbtrack run store in the database {location} (no schema_version table). "
        "Runs are stored where `nbtrack.init(store=...)` or NBTRACK_STORE points."
    )

    def __init__(self, location: str, url: str) -> None:
        super().__init__(location)
        self.url = url

    def sql(self, text: str) -> str:
        return _placeholders(text)

    def execute(self, conn: psycopg.Connection[Any], sql: str, params: Any = ()) -> Any:
        return conn.execute(sql, params or None)

    def executemany(self, conn: psycopg.Connection[Any], sql: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def key_list(self, keys: list[str]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [keys]

    def object_keys(self, column: str) -> str:
        return f"json_object_keys({pg_json_column(column)}) AS e(key)"

    def member(self, column: str, key: str) -> tuple[str, str, Any]:
        return f"({column} -> ?)::text", f"({column} -> ?)", key

    def member_float(self, value: Any) -> float:
        """As SQLite's json_extract reads it: numbers (and booleans) as floats, anything else NaN."""
        value = load_json(value)
        return float(value) if isinstance(value, (int, float)) else math.nan

    def lock_sweep(self, tx: Transaction, sweep_id: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_SWEEP_LOCK_CLASS, sweep_id))

    def lock_import(self, tx: Transaction, run_id: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_IMPORT_LOCK_CLASS, run_id))

    # -- transactions ------------------------------------------------------------------------------
    def connect(self) -> psycopg.Connection[Any]:
        try:
            options: dict[str, Any] = {"application_name": "nbtrack"}
            if "connect_timeout" not in self.url:
                options["connect_timeout"] = 30
            conn = psycopg.connect(self.url, autocommit=True, **options)
        except psycopg.Error as exc:
            # libpq echoes parts of a malformed URL ("invalid percent-encoded token: ..."): mask what it carries.
            raise StoreError(
                f"Cannot connect to the run store {self.location}: {_message(exc, url_secrets(self.url))}. "
                "Check the URL given to "
                "`nbtrack.init(store=...)` or NBTRACK_STORE, and that the database exists (`createdb NAME`)."
            ) from None
        conn.adapters.register_loader("json", TextLoader)  # JSON columns are read by load_json, from text
        return conn

    def usable(self, conn: psycopg.Connection[Any]) -> bool:
        return not conn.closed

    def close(self, conn: psycopg.Connection[Any]) -> None:
        try:
            conn.close()
        except psycopg.Error:
            pass

    @contextlib.contextmanager
    def transaction(self, conn: psycopg.Connection[Any], wait: float | None) -> Iterator[None]:
        with conn.transaction():
            if wait is not None:
                conn.execute(f"SET LOCAL lock_timeout = '{max(1, int(wait * 1000))}ms'")
            yield

    def failure(self, exc: Exception, conn: psycopg.Connection[Any], wait: float | None) -> str | None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return "locked"
        if isinstance(exc, _RETRYABLE):
            return "retry"
        if isinstance(exc, psycopg.Error):  # a broken connection (server restart, network) is made again once
            return "reconnect" if conn.broken or conn.closed else "error"
        return None

    def describe(self, exc: Exception) -> str:
        return _message(exc)

    # -- schema ------------------------------------------------------------------------------------
    def version(self, conn: psycopg.Connection[Any]) -> int | None:
        try:
            return _version(conn)
        except psycopg.Error as exc:
            raise StoreError(f"Reading the run store {self.location} failed: {_message(exc)}") from None

    def begin_migration(self, conn: psycopg.Connection[Any]) -> int:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _MIGRATION_LOCK)
        current = _version(conn)  # another client may have migrated while we waited
        if current is None:
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied DOUBLE PRECISION NOT NULL)"
            )
            current = 0
        return current

    def migrate(self, conn: psycopg.Connection[Any], number: int, name: str, sql: str) -> None:
        conn.execute(sql)  # type: ignore[arg-type]  # our own constant SQL
        conn.execute(
            "INSERT INTO schema_version (version, name, applied) VALUES (%s, %s, %s)",
            (number, name, time.time()),
        )


def _version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version, None for a database without an nbtrack schema."""
    # pg_class read through the statement's snapshot, not to_regclass: after waiting on an advisory lock the
    # backend's catalog cache may not have seen the table another client just created.
    exists = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = 'schema_version' AND n.nspname = current_schema())"
    ).fetchone()[0]  # type: ignore[index]
    if not exists:
        return None
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0  # type: ignore[index]


class PostgresStore(SQLStore):
    """A store in a PostgreSQL database. See the module docstring for the decisions it makes."""

    def __init__(self, url: str, *, create: bool = True, files: str | Path | None = None) -> None:
        # A location copied from a message (password ``***``) connects without one: libpq then reads
        # PGPASSWORD or ~/.pgpass.
        self.url = _unmask(url)
        self.location = mask(url)  # as `nbtrack.store.mask_password`
        files = files if files is not None else os.environ.get(FILES_ENV_VAR)
        self.files_root = Path(files).expanduser().absolute() if files else default_files_root(url)
        super().__init__(PostgresDialect(self.location, self.url), create=create)

    def run_dir(self, run_id: str) -> Path:
        return self.files_root / run_id


def _unmask(url: str) -> str:
    """`url` without the masked (``***``) password and parameters that `mask_password` wrote."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*):\*\*\*@", r"\1@", url)
    url = re.sub(r"([?&])[A-Za-z0-9_.-]+=\*\*\*(?=&|#|$)&?", r"\1", url)
    return url[:-1] if url.endswith(("?", "&")) else url


def _message(exc: BaseException, secrets: list[str] | None = None) -> str:
    """psycopg's message, on one line, credentials masked (`nbtrack.common.redact.mask`)."""
    return mask(" ".join(str(exc).split()), secrets or ()) or type(exc).__name__
