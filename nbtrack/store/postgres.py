"""A shared store in a PostgreSQL database: ``NBTRACK_STORE=postgresql://user@host/db`` (or ``postgres://``).

    nbtrack.init(store="postgresql://me@db.example.org/experiments")

Same tables and semantics as the SQLite store (`nbtrack.store.sqlite`), with these decisions:

- JSON columns (config, summary, environment, tags, event data, sweep config, trial params and rungs) are of type
  ``json``, not ``jsonb``: ``json`` keeps the exact text `nbtrack.query.dump_json` wrote, so ``1e999`` (infinity)
  reads back as infinity and sub-values sort by their `dump_json` text, as on SQLite. ``jsonb`` would store
  ``1e999`` as a 1000-digit integer. Queries compare JSON numbers as float8 through ``nbtrack_float(json)``
  (±1e999 is ±Infinity); text compares with ``COLLATE "C"`` (code point order, as SQLite's BINARY collation).
  The database should be UTF8-encoded; text cannot hold NUL characters in PostgreSQL.
- Metric points are the SQLite store's chunks (``encode_chunks``) in BYTEA columns.
- Files stay on a file system, not in the database: a run's files are in ``$NBTRACK_FILES/<run id>/``, by default
  ``~/.nbtrack/files/<db host>_<db name>/<run id>/``. Point NBTRACK_FILES at a shared directory (NFS, a mounted
  bucket) when several machines write to one database and should see each other's files.
- Schema versions follow `nbtrack.store.base.SCHEMA_VERSION`: the first PostgreSQL migration is number 3 (what
  SQLite's migrations 1-3 build). Applied versions are rows of ``schema_version``; migrations run under
  ``pg_advisory_xact_lock``, so clients starting at once are safe.
- `claim_trial` and `record_rung` hold a per-sweep advisory lock for their transaction: concurrent agents never get
  the same trial.
- The location shown in every message hides the password: ``postgresql://user:***@host/db``. Opening such a
  masked location connects without a password, so libpq takes it from PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

try:
    import psycopg
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The PostgreSQL run store needs psycopg. Install it with `pip install 'nbtrack[postgres]'`."
    ) from None

from nbtrack._redact import mask, url_secrets
from nbtrack.errors import RunNotFoundError, StoreError
from nbtrack.names import new_display_name
from nbtrack.query import dump_json, load_json
from nbtrack.series import History, reduce_history
from nbtrack.store import mask_password
from nbtrack.store.base import (
    SCHEMA_VERSION,
    MetricStats,
    ProjectInfo,
    RunEvent,
    RunQuery,
    RunRecord,
    SeriesBatch,
    Store,
    StoreLockedError,
    SweepMerge,
    SweepRecord,
    TrialRecord,
    WriteBatch,
    effective_state,
)
from nbtrack.store.sql import Compiler, PostgresDialect, pg_json_column
from nbtrack.store.sqlite import (
    CHUNK_POINTS,
    _import_row,
    _merge_series,
    _none_to_nan,
    _rounds_of_distinct_keys,
    _trial_row,
    decode_chunk,
)

FILES_ENV_VAR = "NBTRACK_FILES"
_T = TypeVar("_T")
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

_RUN_COLUMNS = "id, project, name, state, created, ended, heartbeat, host, pid, notes, tags, config, summary, environment"
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)

_dumps = dump_json
_loads = load_json


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


class PostgresStore(Store):
    """A store in a PostgreSQL database. See the module docstring for the decisions it makes."""

    def __init__(self, url: str, *, create: bool = True, files: str | Path | None = None) -> None:
        # A location copied from a message (password ``***``) connects without one: libpq then reads
        # PGPASSWORD or ~/.pgpass.
        self.url = _unmask(url)
        self.location = mask_password(url)
        files = files if files is not None else os.environ.get(FILES_ENV_VAR)
        self.files_root = Path(files).expanduser().absolute() if files else default_files_root(url)
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, psycopg.Connection[Any]]] = []
        self._lock = threading.Lock()
        self._migrate(create)

    # -- connections --------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
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

    def _conn(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                # A connection per thread, and a server allows only so many: close those of threads that ended
                # (each run's writer thread, each sweep trial's) instead of keeping them until `close`.
                for thread, other in [(t, c) for t, c in self._connections if not t.is_alive()]:
                    self._connections.remove((thread, other))
                    _close_quietly(other)
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _drop_broken(self, conn: psycopg.Connection[Any]) -> bool:
        """Forget this thread's connection when it broke (server restart, network), so the next call reconnects."""
        if not (conn.broken or conn.closed):
            return False
        self._local.conn = None
        with self._lock:
            self._connections = [(t, c) for t, c in self._connections if c is not conn]
        _close_quietly(conn)
        return True

    def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn(conn, *args)` in one transaction, retrying on serialization failures, deadlocks and a broken
        connection (once). Inside `waiting_at_most`, a lock held longer by another session is `StoreLockedError`."""
        wait = self.lock_wait()
        delay = 0.01
        deadline = time.monotonic() + 120.0
        reconnected = False
        while True:
            conn = self._conn()
            try:
                with conn.transaction():
                    if wait is not None:
                        conn.execute(f"SET LOCAL lock_timeout = '{max(1, int(wait * 1000))}ms'")
                    return fn(conn, *args)
            except StoreError:
                raise
            except psycopg.errors.LockNotAvailable:
                raise StoreLockedError(
                    f"The run store {self.location} is locked by another session (a lock it needs was held for "
                    f"more than {wait:g} s)."
                ) from None
            except _RETRYABLE as exc:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"Writing the run store {self.location} failed: {_message(exc)}"
                    ) from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
            except psycopg.Error as exc:
                if self._drop_broken(conn) and not reconnected:
                    reconnected = True
                    continue
                raise StoreError(f"Writing the run store {self.location} failed: {_message(exc)}") from None

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        for attempt in range(2):
            conn = self._conn()
            try:
                return conn.execute(sql, params or None).fetchall()
            except StoreError:
                raise
            except psycopg.Error as exc:
                if self._drop_broken(conn) and attempt == 0:
                    continue
                raise StoreError(f"Reading the run store {self.location} failed: {_message(exc)}") from None
        raise AssertionError("unreachable")

    @staticmethod
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

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The run store at {self.location} was written by a newer nbtrack (schema version {version}; "
                f"this nbtrack reads up to {SCHEMA_VERSION}). Upgrade with `pip install -U nbtrack`."
            )

    def _migrate(self, create: bool) -> None:
        try:
            version = self._version(self._conn())
        except psycopg.Error as exc:
            raise StoreError(f"Reading the run store {self.location} failed: {_message(exc)}") from None
        if version is None and not create:
            raise StoreError(
                f"There is no nbtrack run store in the database {self.location} (no schema_version table). "
                "Runs are stored where `nbtrack.init(store=...)` or NBTRACK_STORE points."
            )
        if version is not None:
            self._check_version(version)
            if version == SCHEMA_VERSION:
                return

        def apply(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _MIGRATION_LOCK)
            current = self._version(conn)  # another client may have migrated while we waited
            if current is None:
                conn.execute(
                    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied DOUBLE PRECISION NOT NULL)"
                )
                current = 0
            self._check_version(current)
            for number, name, sql in MIGRATIONS:
                if number > current:
                    conn.execute(sql)  # type: ignore[arg-type]  # our own constant SQL
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied) VALUES (%s, %s, %s)",
                        (number, name, time.time()),
                    )

        self._write(apply)

    def close(self) -> None:
        with self._lock:
            for _thread, conn in self._connections:
                _close_quietly(conn)
            self._connections.clear()
            self._local = threading.local()

    # -- runs ---------------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        run_id: str,
        project: str,
        name: str | None,
        config: dict[str, Any],
        tags: Sequence[str],
        notes: str | None,
        created: float,
        host: str,
        pid: int,
    ) -> RunRecord:
        def insert(conn: psycopg.Connection[Any]) -> str:
            row = conn.execute(
                "INSERT INTO projects (name, next_seq) VALUES (%s, 2) ON CONFLICT (name) "
                "DO UPDATE SET next_seq = projects.next_seq + 1 RETURNING next_seq - 1",
                (project,),
            ).fetchone()
            seq = int(row[0])  # type: ignore[index]
            display = name if name is not None else new_display_name(seq)
            conn.execute(
                "INSERT INTO runs (id, project, name, seq, state, created, heartbeat, host, pid, notes, tags, config) "
                "VALUES (%s, %s, %s, %s, 'running', %s, %s, %s, %s, %s, %s::json, %s::json)",
                (
                    run_id,
                    project,
                    display,
                    seq,
                    created,
                    created,
                    host,
                    pid,
                    notes,
                    _dumps(list(tags)),
                    _dumps(config),
                ),
            )
            return display

        display = self._write(insert)
        return RunRecord(
            id=run_id,
            project=project,
            name=display,
            state="running",
            created=created,
            heartbeat=created,
            host=host,
            pid=pid,
            notes=notes,
            tags=tuple(tags),
            config=dict(config),
        )

    def _record(self, row: tuple[Any, ...], crashed: set[str] | None = None) -> RunRecord:
        rid, project, name, state, created, ended, heartbeat, host, pid, notes, tags, config, summary, env = (
            row
        )
        if crashed is not None:  # the state the query saw
            state = "crashed" if rid in crashed else state
        return RunRecord(
            id=rid,
            project=project,
            name=name,
            state=effective_state(state, host, pid, heartbeat),
            created=created,
            ended=ended,
            heartbeat=heartbeat,
            host=host,
            pid=pid,
            notes=notes,
            tags=tuple(_loads(tags)),
            config=_loads(config),
            summary=_loads(summary),
            environment=_loads(env),
        )

    def get_run(self, ref: str, project: str | None = None) -> RunRecord:
        where, params = ("", []) if project is None else (" AND project = %s", [project])
        if ref == "latest":
            rows = self._read(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE TRUE{where} ORDER BY created DESC LIMIT 1", params
            )
        else:
            rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = %s{where}", [ref, *params])
            if not rows:
                rows = self._read(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE name = %s{where} ORDER BY created DESC",
                    [ref, *params],
                )
        if not rows:
            scope = f" in project {project!r}" if project else ""
            raise RunNotFoundError(f"No run with id or name {ref!r}{scope} in the store at {self.location}.")
        if len(rows) > 1:
            listing = ", ".join(f"{r[0]} ({r[1]})" for r in rows[:10])
            raise RunNotFoundError(
                f"{len(rows)} runs are named {ref!r} in the store at {self.location}: {listing}. Use the run id."
            )
        return self._record(rows[0])

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        if project is None:
            rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created DESC")
        else:
            rows = self._read(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE project = %s ORDER BY created DESC", [project]
            )
        return [self._record(r) for r in rows]

    # -- searching ----------------------------------------------------------------------------------
    def _crashed_ids(self, now: float) -> list[str]:
        rows = self._read("SELECT id, host, pid, heartbeat FROM runs WHERE state = 'running'")
        return [
            rid for rid, host, pid, hb in rows if effective_state("running", host, pid, hb, now) == "crashed"
        ]

    def _compile(self, query: RunQuery) -> tuple[str, dict[str, Any], Compiler]:
        now = time.time()
        compiler = Compiler(PostgresDialect(), now, self._crashed_ids(now))
        clauses = []
        if query.project is not None:
            clauses.append(f"project = {compiler.d.bind(query.project)}")
        if query.where is not None:
            clauses.append(compiler.where(query.where))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", compiler.d.params, compiler

    def search_runs(self, query: RunQuery, *, environment: bool = False) -> list[RunRecord]:
        return self._search(query, environment, counted=False)[0]

    def search_runs_counted(self, query: RunQuery) -> tuple[list[RunRecord], int]:
        return self._search(query, False, counted=True)

    def _search(self, query: RunQuery, environment: bool, counted: bool) -> tuple[list[RunRecord], int]:
        where, params, compiler = self._compile(query)
        order = compiler.order(query.order)
        columns = _RUN_COLUMNS if environment else _RUN_COLUMNS.replace("environment", "'{}'::text")
        if counted:  # sorting has to see every match anyway, so counting them in the same pass is free
            columns += ", COUNT(*) OVER ()"
        sql = f"SELECT {columns} FROM runs{where} ORDER BY {order}"
        if query.limit is not None or query.offset:
            # SQLite reads a negative limit as none and a negative offset as 0; PostgreSQL refuses them
            limit = "ALL" if query.limit is None or int(query.limit) < 0 else str(int(query.limit))
            sql += f" LIMIT {limit} OFFSET {max(0, int(query.offset))}"
        rows = self._read(sql, params)
        crashed = set(compiler.crashed_ids)
        if not counted:
            return [self._record(r, crashed) for r in rows], len(rows)
        if not rows and query.offset:  # past the end: the window saw no rows to count
            return [], self.count_runs(query)
        total = int(rows[0][-1]) if rows else 0
        return [self._record(r[:-1], crashed) for r in rows], total

    def count_runs(self, query: RunQuery) -> int:
        where, params, _ = self._compile(query)
        return int(self._read(f"SELECT COUNT(*) FROM runs{where}", params)[0][0])

    def projects(self) -> list[ProjectInfo]:
        rows = self._read(
            "SELECT project, COUNT(*), MAX(created) FROM runs GROUP BY project ORDER BY MAX(created) DESC"
        )
        running: dict[str, int] = {}
        now = time.time()
        for project, host, pid, hb in self._read(
            "SELECT project, host, pid, heartbeat FROM runs WHERE state = 'running'"
        ):
            if effective_state("running", host, pid, hb, now) == "running":
                running[project] = running.get(project, 0) + 1
        return [ProjectInfo(name, int(count), last, running.get(name, 0)) for name, count, last in rows]

    def keys(self, scope: str, project: str | None = None) -> list[str]:
        if scope not in ("config", "summary"):
            raise ValueError(f"scope must be 'config' or 'summary', not {scope!r}")
        where, params = ("", []) if project is None else (" WHERE project = %s", [project])
        rows = self._read(
            f"SELECT DISTINCT key FROM (SELECT json_object_keys({pg_json_column(scope)}) AS key FROM runs{where}) AS k",
            params,
        )
        return sorted(r[0] for r in rows)

    # -- sweeps -------------------------------------------------------------------------------------
    _SWEEP_COLUMNS = "id, project, name, config, method, state, created, ended"
    _TRIAL_COLUMNS = (
        "sweep_id, number, params, state, run_id, grid_index, worker, value, rungs, created, ended"
    )

    @staticmethod
    def _sweep(row: tuple[Any, ...]) -> SweepRecord:
        sid, project, name, config, method, state, created, ended = row
        return SweepRecord(sid, project, name, _loads(config), method, state, created, ended)

    @staticmethod
    def _trial(row: tuple[Any, ...]) -> TrialRecord:
        sid, number, params, state, run_id, grid_index, worker, value, rungs, created, ended = row
        return TrialRecord(
            sid,
            number,
            _loads(params),
            state,
            run_id,
            grid_index,
            worker,
            value,
            _loads(rungs),
            created,
            ended,
        )

    def create_sweep(
        self, *, sweep_id: str, project: str, name: str, config: dict[str, Any], method: str, created: float
    ) -> SweepRecord:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO sweeps (id, project, name, config, method, state, created) "
                "VALUES (%s, %s, %s, %s::json, %s, 'running', %s)",
                (sweep_id, project, name, _dumps(config), method, created),
            )
        )
        return SweepRecord(sweep_id, project, name, config, method, "running", created)

    def get_sweep(self, ref: str) -> SweepRecord:
        rows = self._read(f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE id = %s", [ref]) or self._read(
            f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE name = %s ORDER BY created DESC", [ref]
        )
        if not rows:
            raise RunNotFoundError(f"No sweep with id or name {ref!r} in the store at {self.location}.")
        return self._sweep(rows[0])

    def list_sweeps(self, project: str | None = None) -> list[SweepRecord]:
        where, params = ("", []) if project is None else (" WHERE project = %s", [project])
        rows = self._read(f"SELECT {self._SWEEP_COLUMNS} FROM sweeps{where} ORDER BY created DESC", params)
        return [self._sweep(r) for r in rows]

    def set_sweep_state(self, sweep_id: str, state: str, ended: float | None = None) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE sweeps SET state = %s, ended = %s WHERE id = %s", (state, ended, sweep_id)
            )
        )

    @staticmethod
    def _lock_sweep(conn: psycopg.Connection[Any], sweep_id: str) -> None:
        """Serialize this transaction with every other one that touches the sweep's trials."""
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SWEEP_LOCK_CLASS, sweep_id))

    def _trials(self, conn: psycopg.Connection[Any], sweep_id: str) -> list[TrialRecord]:
        rows = conn.execute(
            f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = %s ORDER BY number", (sweep_id,)
        ).fetchall()
        return [self._trial(r) for r in rows]

    def claim_trial(self, sweep_id: str, worker: str, propose: Any) -> TrialRecord | None:
        def claim(conn: psycopg.Connection[Any]) -> TrialRecord | None:
            self._lock_sweep(conn, sweep_id)
            trials = self._trials(conn, sweep_id)
            now = time.time()
            for trial in trials:  # a worker that died mid-trial: its grid point goes back to the pool
                if trial.state != "running" or trial.run_id is None:
                    continue
                run = conn.execute(
                    "SELECT state, host, pid, heartbeat FROM runs WHERE id = %s", (trial.run_id,)
                ).fetchone()
                if run is not None and effective_state(*run, now) == "crashed":
                    conn.execute(
                        "UPDATE trials SET state = 'crashed', ended = %s WHERE sweep_id = %s AND number = %s",
                        (now, sweep_id, trial.number),
                    )
            if any(t.state == "running" and t.run_id is not None for t in trials):
                trials = self._trials(conn, sweep_id)
            proposal = propose(trials)
            if proposal is None:
                return None
            params, grid_index = proposal
            number = (trials[-1].number + 1) if trials else 0
            conn.execute(
                "INSERT INTO trials (sweep_id, number, params, state, grid_index, worker, created) "
                "VALUES (%s, %s, %s::json, 'running', %s, %s, %s)",
                (sweep_id, number, _dumps(params), grid_index, worker, now),
            )
            return TrialRecord(sweep_id, number, params, "running", None, grid_index, worker, None, {}, now)

        return self._write(claim)

    def update_trial(
        self,
        sweep_id: str,
        number: int,
        *,
        run_id: str | None = None,
        state: str | None = None,
        value: float | None = None,
        ended: float | None = None,
    ) -> None:
        sets, params = [], []
        for column, given in (("run_id", run_id), ("state", state), ("value", value), ("ended", ended)):
            if given is not None:
                sets.append(f"{column} = %s")
                params.append(None if isinstance(given, float) and math.isnan(given) else given)
        if sets:
            self._write(
                lambda conn: conn.execute(
                    f"UPDATE trials SET {', '.join(sets)} WHERE sweep_id = %s AND number = %s",
                    (*params, sweep_id, number),
                )
            )

    def record_rung(self, sweep_id: str, number: int, rung: int, value: float) -> list[float]:
        def record(conn: psycopg.Connection[Any]) -> list[float]:
            self._lock_sweep(conn, sweep_id)
            row = conn.execute(
                "SELECT rungs FROM trials WHERE sweep_id = %s AND number = %s", (sweep_id, number)
            ).fetchone()
            rungs = _loads(row[0]) if row else {}
            rungs[str(rung)] = value
            conn.execute(
                "UPDATE trials SET rungs = %s::json WHERE sweep_id = %s AND number = %s",
                (_dumps(rungs), sweep_id, number),
            )
            others = conn.execute(
                "SELECT (rungs -> %s)::text FROM trials WHERE sweep_id = %s AND number <> %s "
                "AND (rungs -> %s) IS NOT NULL",
                (str(rung), sweep_id, number, str(rung)),
            ).fetchall()
            return [_rung_value(_loads(text)) for (text,) in others]

        return self._write(record)

    def trials(self, sweep_id: str) -> list[TrialRecord]:
        rows = self._read(
            f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = %s ORDER BY number", [sweep_id]
        )
        return [self._trial(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        def delete(conn: psycopg.Connection[Any]) -> int:
            count = conn.execute("DELETE FROM runs WHERE id = %s", (run_id,)).rowcount
            for table in ("metrics", "chunks", "events"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = %s", (run_id,))
            return count

        if not self._write(delete):
            raise RunNotFoundError(f"No run with id {run_id!r} in the store at {self.location}.")
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        return self.files_root / run_id

    # -- writing ------------------------------------------------------------------------------------
    def write_batch(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        self._write(self._apply_batch, batch)

    def _apply_batch(self, conn: psycopg.Connection[Any], batch: WriteBatch) -> None:
        rid = batch.run_id
        # the row lock makes a concurrent delete_run wait until this batch is in (it then deletes it too)
        if conn.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (rid,)).fetchone() is None:
            raise RunNotFoundError(
                f"Run {rid!r} is no longer in the store at {self.location} (it was deleted)."
            )
        self._append_series(conn, rid, batch.series)
        sets: list[str] = []
        params: list[Any] = []
        for column in ("config", "summary", "environment"):
            value = getattr(batch, column)
            if value is not None:
                sets.append(f"{column} = %s::json")
                params.append(_dumps(value))
        for column in ("heartbeat", "state", "ended"):
            value = getattr(batch, column)
            if value is not None:
                sets.append(f"{column} = %s")
                params.append(value)
        for column in (
            "name",
            "notes",
        ):  # assigned on the live run (fixed names: a spill file holds the dict)
            if column in batch.labels:
                sets.append(f"{column} = %s")
                params.append(batch.labels[column])
        if "tags" in batch.labels:
            sets.append("tags = %s::json")
            params.append(_dumps(list(batch.labels["tags"])))
        if sets:
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = %s", (*params, rid))
        if batch.events:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO events (run_id, time, step, kind, message, data) "
                    "VALUES (%s, %s, %s, %s, %s, %s::json)",
                    [(rid, e.time, e.step, e.kind, e.message, _dumps(e.data)) for e in batch.events],
                )

    def _append_series(self, conn: psycopg.Connection[Any], rid: str, batch: list[SeriesBatch]) -> None:
        """Append every series of a flush with four statements per round of distinct keys, not four per key
        (the SQLite store's `_append_series` explains why)."""
        for round_ in _rounds_of_distinct_keys(batch):
            keys = [s.key for s in round_]
            stats = {
                key: tuple(row)
                for key, *row in conn.execute(
                    "SELECT key, count, min, max, first_step, chunks FROM metrics "
                    "WHERE run_id = %s AND key = ANY(%s) FOR UPDATE",
                    (rid, keys),
                )
            }
            tails = {
                key: tuple(tail)
                for key, *tail in conn.execute(
                    "SELECT c.key, c.n, c.first_step, c.t0, c.steps, c.times, c.vals FROM metrics m "
                    "JOIN chunks c ON c.run_id = m.run_id AND c.key = m.key AND c.seq = m.chunks - 1 "
                    "WHERE m.run_id = %s AND m.key = ANY(%s) AND c.n < %s",
                    (rid, keys, CHUNK_POINTS),
                )
            }
            chunk_rows: list[tuple[Any, ...]] = []
            metric_rows: list[tuple[Any, ...]] = []
            for series in round_:
                chunks, metric = _merge_series(rid, series, stats.get(series.key), tails.get(series.key))
                chunk_rows.extend(chunks)
                metric_rows.append(metric)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO chunks (run_id, key, seq, n, first_step, last_step, t0, steps, times, vals) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, key, seq) DO UPDATE SET "
                    "n = EXCLUDED.n, first_step = EXCLUDED.first_step, last_step = EXCLUDED.last_step, "
                    "t0 = EXCLUDED.t0, steps = EXCLUDED.steps, times = EXCLUDED.times, vals = EXCLUDED.vals",
                    chunk_rows,
                )
                cursor.executemany(
                    "INSERT INTO metrics (run_id, key, count, last, min, max, first_step, last_step, chunks) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, key) DO UPDATE SET "
                    "count = EXCLUDED.count, last = EXCLUDED.last, min = EXCLUDED.min, max = EXCLUDED.max, "
                    "first_step = EXCLUDED.first_step, last_step = EXCLUDED.last_step, chunks = EXCLUDED.chunks",
                    metric_rows,
                )

    # -- reading metrics ----------------------------------------------------------------------------
    def metric_stats(self, run_id: str) -> dict[str, MetricStats]:
        rows = self._read(
            "SELECT key, count, last, min, max, first_step, last_step FROM metrics WHERE run_id = %s ORDER BY key",
            [run_id],
        )
        return {
            key: MetricStats(
                key, int(count), _none_to_nan(last), _none_to_nan(lo), _none_to_nan(hi), first, last_step
            )
            for key, count, last, lo, hi, first, last_step in rows
        }

    def events(self, run_id: str) -> list[RunEvent]:
        rows = self._read(
            "SELECT time, kind, message, step, data FROM events WHERE run_id = %s ORDER BY time, id", [run_id]
        )
        return [
            RunEvent(t, kind, message, step, _loads(data or "{}")) for t, kind, message, step, data in rows
        ]

    def history(self, run_id: str, key: str, samples: int | None = None) -> History:
        rows = self._read(
            "SELECT n, first_step, t0, steps, times, vals FROM chunks WHERE run_id = %s AND key = %s ORDER BY seq",
            [run_id, key],
        )
        if not rows:
            return History.empty(key)
        parts = [decode_chunk(*row) for row in rows]
        history = History(
            key,
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
        return reduce_history(history, samples)

    # -- imports (nbtrack.bundle) ------------------------------------------------------------------
    def import_run(
        self,
        record: RunRecord,
        series: Callable[[], Iterator[list[SeriesBatch]]],
        events: Sequence[RunEvent],
        place_files: Callable[[], None],
    ) -> bool:
        def write(conn: psycopg.Connection[Any]) -> bool:
            # A second import of this run waits on the lock; its next statement then sees the committed row.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_IMPORT_LOCK_CLASS, record.id))
            if conn.execute("SELECT 1 FROM runs WHERE id = %s", (record.id,)).fetchone():
                return False
            seq = conn.execute(
                "INSERT INTO projects (name, next_seq) VALUES (%s, 2) ON CONFLICT (name) "
                "DO UPDATE SET next_seq = projects.next_seq + 1 RETURNING next_seq - 1",
                (record.project,),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}, seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s::json, %s::json, %s::json, %s::json, %s)",
                (*_import_row(record), seq),
            )
            for batch in series():
                self._append_series(conn, record.id, batch)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO events (run_id, time, step, kind, message, data) "
                    "VALUES (%s, %s, %s, %s, %s, %s::json)",
                    [(record.id, e.time, e.step, e.kind, e.message, _dumps(e.data)) for e in events],
                )
            place_files()
            return True

        return bool(self._write(write))

    def import_sweep(
        self, sweep_id: str, merge: Callable[[SweepRecord | None, list[TrialRecord]], SweepMerge]
    ) -> bool:
        def write(conn: psycopg.Connection[Any]) -> bool:
            self._lock_sweep(conn, sweep_id)
            rows = conn.execute(
                f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE id = %s", (sweep_id,)
            ).fetchall()
            plan = merge(self._sweep(rows[0]) if rows else None, self._trials(conn, sweep_id))
            if plan.sweep is not None:
                s = plan.sweep
                conn.execute(
                    f"INSERT INTO sweeps ({self._SWEEP_COLUMNS}) VALUES (%s, %s, %s, %s::json, %s, %s, %s, %s)",
                    (s.id, s.project, s.name, _dumps(s.config), s.method, s.state, s.created, s.ended),
                )
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO trials ({self._TRIAL_COLUMNS}) VALUES (%s, %s, %s::json, %s, %s, %s, %s, %s, "
                    "%s::json, %s, %s) ON CONFLICT (sweep_id, number) DO UPDATE SET params = EXCLUDED.params, "
                    "state = EXCLUDED.state, run_id = EXCLUDED.run_id, grid_index = EXCLUDED.grid_index, "
                    "worker = EXCLUDED.worker, value = EXCLUDED.value, rungs = EXCLUDED.rungs, "
                    "created = EXCLUDED.created, ended = EXCLUDED.ended",
                    [_trial_row(t) for t in plan.trials],
                )
            if plan.state is not None:
                conn.execute(
                    "UPDATE sweeps SET state = %s, ended = %s WHERE id = %s", (*plan.state, sweep_id)
                )
            return not plan.is_empty()

        return bool(self._write(write))


def _rung_value(value: Any) -> float:
    """A rung's stored value as SQLite's json_extract reads it: numbers (and booleans) as floats, else NaN."""
    return float(value) if isinstance(value, (int, float)) else math.nan


def _unmask(url: str) -> str:
    """`url` without the masked (``***``) password and parameters that `mask_password` wrote."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*):\*\*\*@", r"\1@", url)
    url = re.sub(r"([?&])[A-Za-z0-9_.-]+=\*\*\*(?=&|#|$)&?", r"\1", url)
    return url[:-1] if url.endswith(("?", "&")) else url


def _close_quietly(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except psycopg.Error:
        pass


def _message(exc: BaseException, secrets: list[str] | None = None) -> str:
    """psycopg's message, on one line, credentials masked (`nbtrack._redact.mask`)."""
    return mask(" ".join(str(exc).split()), secrets or ()) or type(exc).__name__
