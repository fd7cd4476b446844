"""The embedded store: one SQLite file in WAL mode plus a directory of run files.

Layout of a store directory::

    nbtrack-runs/
      nbtrack.db          runs, config, summary, environment, metric chunks (`nbtrack.store.chunks`), events
      files/<run id>/     the run's files (requirements.txt, git.diff, model-best.keras, ...)

The queries are `nbtrack.store.sqlstore`'s, shared with PostgreSQL; this module is SQLite's dialect: a connection
per thread with a busy timeout, ``BEGIN IMMEDIATE`` write transactions (one writer at a time, so sweeps and imports
need no locks of their own), JSON1 functions, and the schema version in ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbtrack.errors import StoreError
from nbtrack.store.base import SCHEMA_VERSION
from nbtrack.store.query import QueryError, dump_json, load_json
from nbtrack.store.sqlstore import Dialect, SQLStore

DB_NAME = "nbtrack.db"
_DAMAGED_HINT = (
    "nbtrack has not changed it. If it is damaged, move it aside (or restore it from a backup) and nbtrack starts a "
    "new store there; a bundle (`nbtrack export`) made earlier brings runs back with `nbtrack import`."
)
_BUSY_MS = 60_000  # how long a statement waits for another process's lock, outside `waiting_at_most`

# Named, numbered migrations. Never edit one that has shipped: add the next.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "initial schema",
        """
        CREATE TABLE projects (name TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER,
            state TEXT NOT NULL, created REAL NOT NULL, ended REAL, heartbeat REAL,
            host TEXT NOT NULL, pid INTEGER NOT NULL, notes TEXT,
            tags TEXT NOT NULL DEFAULT '[]', config TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '{}', environment TEXT NOT NULL DEFAULT '{}');
        CREATE INDEX runs_project_created ON runs (project, created);
        CREATE INDEX runs_created ON runs (created);
        CREATE INDEX runs_name ON runs (name);
        CREATE TABLE metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL, last REAL, min REAL, max REAL,
            first_step INTEGER NOT NULL, last_step INTEGER NOT NULL, chunks INTEGER NOT NULL,
            PRIMARY KEY (run_id, key)) WITHOUT ROWID;
        CREATE TABLE chunks (
            run_id TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,
            first_step INTEGER NOT NULL, last_step INTEGER NOT NULL, t0 REAL NOT NULL,
            steps BLOB, times BLOB NOT NULL, vals BLOB NOT NULL,
            PRIMARY KEY (run_id, key, seq));
        CREATE TABLE events (
            run_id TEXT NOT NULL, time REAL NOT NULL, step INTEGER, kind TEXT NOT NULL,
            message TEXT, data TEXT);
        CREATE INDEX events_run ON events (run_id, time);
        """,
    ),
    (
        2,
        "strict JSON in config, summary, environment and event columns (NaN and infinity made queryable)",
        "CREATE INDEX runs_state ON runs (state)",
    ),
    (
        3,
        "sweeps and their trials",
        """
        CREATE TABLE sweeps (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL,
            method TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL, ended REAL);
        CREATE INDEX sweeps_name ON sweeps (name);
        CREATE TABLE trials (
            sweep_id TEXT NOT NULL, number INTEGER NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,
            run_id TEXT, grid_index INTEGER, worker TEXT NOT NULL DEFAULT '', value REAL,
            rungs TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, ended REAL,
            PRIMARY KEY (sweep_id, number));
        """,
    ),
)
assert MIGRATIONS[-1][0] == SCHEMA_VERSION


def _strict_json(conn: sqlite3.Connection) -> None:
    """Migration 2's data step: columns written with bare NaN/Infinity (not JSON) rewritten by `dump_json`."""
    rows = conn.execute("SELECT id, config, summary, environment FROM runs").fetchall()
    for rid, *columns in rows:
        fixed = [dump_json(load_json(text)) for text in columns]
        if fixed != columns:
            conn.execute(
                "UPDATE runs SET config = ?, summary = ?, environment = ? WHERE id = ?", (*fixed, rid)
            )
    for rowid, data in conn.execute("SELECT rowid, data FROM events WHERE data IS NOT NULL").fetchall():
        fixed_data = dump_json(load_json(data))
        if fixed_data != data:
            conn.execute("UPDATE events SET data = ? WHERE rowid = ?", (fixed_data, rowid))


# Data steps that go with a migration's SQL, by migration number.
MIGRATION_STEPS = {2: _strict_json}


# -- the `where` language's JSON functions -------------------------------------------------------------
_KIND_OF_JSON_TYPE = (
    "CASE {t} WHEN 'integer' THEN 'n' WHEN 'real' THEN 'n' WHEN 'text' THEN 't' WHEN 'true' THEN 'b' "
    "WHEN 'false' THEN 'b' WHEN 'array' THEN 'a' WHEN 'object' THEN {object_kind} ELSE NULL END"
)


# A key SQLite's JSON path can name: SQLite (3.40 at least) compares a path label with the key's JSON text as
# written, escapes included, and ends the label at the first '"', so keys holding '\\', '"' or control characters
# are found by `json_each`, whose `key` column is the decoded key.
_PATH_KEY = re.compile(r'[^"\\\x00-\x1f]*')


@dataclass
class SQLiteJSON:
    """SQLite's JSON1 functions. Paths are ``$."key"."sub"`` strings, passed as parameters."""

    params: dict[str, Any] = field(default_factory=dict)
    _aliases: int = 0

    def bind(self, value: Any) -> str:
        """A named placeholder for `value` (named, so an expression can appear twice in the SQL)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    @staticmethod
    def path(keys: tuple[str, ...]) -> str:
        for key in keys:
            if '"' in key:
                raise QueryError(f"Keys containing '\"' cannot be queried: {key!r}")
        return "$" + "".join(f'."{key}"' for key in keys)

    def kind(self, column: str, keys: tuple[str, ...]) -> str:
        """One of n/b/t/a/o/x (see `nbtrack.store.query.kind_of`), NULL for null or missing."""
        nan = self.lookup(column, (*keys, "$float"), "value")
        object_kind = f"(CASE WHEN {nan} = 'NaN' THEN 'x' ELSE 'o' END)"
        return _KIND_OF_JSON_TYPE.format(t=self.lookup(column, keys, "type"), object_kind=object_kind)

    def value(self, column: str, keys: tuple[str, ...]) -> str:
        return self.lookup(column, keys, "value")

    def lookup(self, document: str, keys: tuple[str, ...], what: str) -> str:
        """The SQL ``value`` (as `json_extract`) or JSON ``type`` (as `json_type`) at `keys` in `document`."""
        odd = next((i for i, key in enumerate(keys) if not _PATH_KEY.fullmatch(key)), None)
        if odd is None:
            function = "json_extract" if what == "value" else "json_type"
            return f"{function}({document}, {self.bind(self.path(keys))})"
        alias = f"k{self._aliases}"
        self._aliases += 1
        rest = keys[odd + 1 :]
        # A member's value is its JSON text only when it is an object: text that looks like JSON is not walked.
        inner = f"{alias}.{what}" if not rest else self.lookup(f"{alias}.value", rest, what)
        guard = f" AND {alias}.type = 'object'" if rest else ""
        return (
            f"(SELECT {inner} FROM json_each({document}, {self.bind(self.path(keys[:odd]))}) AS {alias} "
            f"WHERE {alias}.key = {self.bind(keys[odd])}{guard})"
        )

    # SQLite compares values of any type, so these hooks only spell SQLite's functions.
    false = "0"
    greatest = "MAX"

    @staticmethod
    def typed(value: str, want: str) -> str:
        """`value` as a number (``n``), boolean as 1/0 (``b``) or text (``t``), for comparing with a literal."""
        return value

    @staticmethod
    def instr(value: str, needle: str) -> str:
        return f"instr({value}, {needle})"

    @staticmethod
    def startswith(value: str, prefix: str) -> str:
        return f"substr({value}, 1, length({prefix})) = {prefix}"

    @staticmethod
    def endswith(value: str, suffix: str) -> str:
        return f"(length({suffix}) = 0 OR substr({value}, -length({suffix})) = {suffix})"

    @staticmethod
    def order_terms(value: str, direction: str) -> list[str]:
        """ORDER BY terms that sort `value` within its sort class (numbers, text, other)."""
        return [f"{value} {direction}"]

    def elements(self, column: str, keys: tuple[str, ...]) -> tuple[str, str, str]:
        """A FROM clause over the array's elements, and the expressions of an element's kind and value."""
        if all(_PATH_KEY.fullmatch(key) for key in keys):
            source = f"json_each({column}, {self.bind(self.path(keys))}) AS e"
        else:
            array = (
                f"CASE WHEN {self.lookup(column, keys, 'type')} = 'array' THEN {self.value(column, keys)} END"
            )
            source = f"json_each({array}) AS e"
        kind = _KIND_OF_JSON_TYPE.format(t="e.type", object_kind="'o'")
        return source, kind, "e.value"

    def all_elements(self, column: str) -> tuple[str, str, str]:
        return (
            f"json_each({column}) AS e",
            _KIND_OF_JSON_TYPE.format(t="e.type", object_kind="'o'"),
            "e.value",
        )


class SQLiteDialect(Dialect):
    """SQLite's side of `SQLStore`: the database file `db_path`."""

    query = SQLiteJSON
    migrations = MIGRATIONS

    def __init__(self, location: str, db_path: Path) -> None:
        super().__init__(location)
        self.db_path = db_path

    def sql(self, text: str) -> str:
        return text.replace("?::json", "?")  # JSON columns are TEXT

    def object_keys(self, column: str) -> str:
        return f"json_each(runs.{column}) AS e"

    def member(self, column: str, key: str) -> tuple[str, str, Any]:
        return f"json_extract({column}, ?)", f"json_type({column}, ?)", f'$."{key}"'

    def member_float(self, value: Any) -> float:
        return math.nan if value is None or isinstance(value, str) else float(value)

    # -- transactions ------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            _ensure_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the run store database {self.db_path}: {exc}. {_DAMAGED_HINT}"
            ) from None
        return conn

    def close(self, conn: sqlite3.Connection) -> None:
        try:
            conn.close()
        except sqlite3.Error:
            pass

    @contextlib.contextmanager
    def transaction(self, conn: sqlite3.Connection, wait: float | None) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: the write lock is taken at the start, so two writers never deadlock midway."""
        if wait is not None:
            conn.execute(f"PRAGMA busy_timeout = {max(1, int(wait * 1000))}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if wait is not None:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")

    def failure(self, exc: Exception, conn: sqlite3.Connection, wait: float | None) -> str | None:
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            return "retry" if wait is None else "locked"  # with a wait, the busy timeout was that wait
        return "error" if isinstance(exc, sqlite3.Error) else None

    # -- schema ------------------------------------------------------------------------------------
    def version(self, conn: sqlite3.Connection) -> int:
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.db_path} is not an nbtrack store database ({exc}). {_DAMAGED_HINT}"
            ) from None

    def begin_migration(self, conn: sqlite3.Connection) -> int:
        return self.version(conn)  # BEGIN IMMEDIATE has made the other clients wait

    def migrate(self, conn: sqlite3.Connection, number: int, name: str, sql: str) -> None:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        if number in MIGRATION_STEPS:
            MIGRATION_STEPS[number](conn)
        conn.execute(f"PRAGMA user_version = {number}")


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """WAL mode is a property of the file: set it once. Switching needs a moment alone with the database,
    which another process can deny ("database is locked") despite the busy timeout, so retry."""
    deadline = time.monotonic() + 60.0
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05 * (1 + random.random()))


class SQLiteStore(SQLStore):
    """A store in a local directory. See the module docstring for the layout."""

    def __init__(self, directory: str | Path, *, create: bool = True) -> None:
        self.directory = Path(directory).expanduser().absolute()
        self.location = str(self.directory)
        self.db_path = self.directory / DB_NAME
        if create:
            self._make_directory()
        elif not self.db_path.is_file():
            raise StoreError(
                f"There is no nbtrack run store at {self.location} (no {DB_NAME}). Runs are stored where "
                "`nbtrack.init(store=...)` or NBTRACK_STORE points, ./nbtrack-runs by default."
            )
        super().__init__(SQLiteDialect(self.location, self.db_path), create=create)

    def _make_directory(self) -> None:
        try:
            if self.directory.exists() and not self.directory.is_dir():
                raise StoreError(f"Cannot use {self.location} as a run store: it is a file, not a directory.")
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".write-test-{threading.get_ident()}"
            probe.touch()
            probe.unlink()
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(
                f"Cannot write the run store at {self.location}: {exc.strerror or exc}. Point "
                "`nbtrack.init(store=...)` or the NBTRACK_STORE environment variable at a writable directory."
            ) from None

    def run_dir(self, run_id: str) -> Path:
        return self.directory / "files" / run_id
