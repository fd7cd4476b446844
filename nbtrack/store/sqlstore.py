"""One SQL implementation of `Store`, shared by the SQLite and PostgreSQL backends.

Every query and every transaction is written here, once: the search, the flush (`write_batch`), the chunk merge,
the sweep claim, the bundle imports. A backend adds only its `Dialect` (how to connect, how a write transaction
starts and waits for another's lock, what its errors mean, the few JSON functions it spells its own way, its
migrations) and where a run's files live.

The SQL below marks a parameter ``?`` and a JSON parameter ``?::json``; `Dialect.sql` rewrites both for the
database (``%s`` and ``%s::json`` on PostgreSQL, ``?`` on SQLite). The `where` language compiles to SQL in
`nbtrack.store.sql`, through the backend's JSON dialect (`Dialect.query`).
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nbtrack.common.names import new_display_name
from nbtrack.common.series import History, reduce_history
from nbtrack.errors import RunNotFoundError, StoreError
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
from nbtrack.store.chunks import (
    CHUNK_POINTS,
    decode_chunk,
    merge_series,
    none_to_nan,
    rounds_of_distinct_keys,
)
from nbtrack.store.query import dump_json, load_json
from nbtrack.store.sql import Compiler, JSONFunctions

_T = TypeVar("_T")

RUN_COLUMNS = "id, project, name, state, created, ended, heartbeat, host, pid, notes, tags, config, summary, environment"
_SWEEP_COLUMNS = "id, project, name, config, method, state, created, ended"
_TRIAL_COLUMNS = "sweep_id, number, params, state, run_id, grid_index, worker, value, rungs, created, ended"
_RUN_JSON = ("tags", "config", "summary", "environment")


def _insert(table: str, columns: str, json: Sequence[str] = (), conflict: str = "") -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)``, JSON columns as ``?::json``; with `conflict` (the key's
    columns), a row with that key is replaced by the new one."""
    names = [c.strip() for c in columns.split(",")]
    marks = ", ".join("?::json" if c in json else "?" for c in names)
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
    if conflict:
        keys = {c.strip() for c in conflict.split(",")}
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    return sql


_INSERT_EVENT = _insert("events", "run_id, time, step, kind, message, data", json=["data"])
_UPSERT_CHUNK = _insert(
    "chunks",
    "run_id, key, seq, n, first_step, last_step, t0, steps, times, vals",
    conflict="run_id, key, seq",
)
_UPSERT_METRIC = _insert(
    "metrics", "run_id, key, count, last, min, max, first_step, last_step, chunks", conflict="run_id, key"
)
_UPSERT_TRIAL = _insert("trials", _TRIAL_COLUMNS, json=["params", "rungs"], conflict="sweep_id, number")
_NEXT_SEQ = (
    "INSERT INTO projects (name, next_seq) VALUES (?, 2) ON CONFLICT (name) "
    "DO UPDATE SET next_seq = projects.next_seq + 1 RETURNING next_seq - 1"
)


class Dialect(ABC):
    """What one database does its own way. `SQLStore` holds one and asks it only these things."""

    #: The `where` language's JSON functions for this database (`nbtrack.store.sql`), a fresh one per query.
    query: Callable[[], JSONFunctions]
    #: Named, numbered migrations: (number, name, SQL). Never edit one that has shipped: add the next.
    migrations: tuple[tuple[int, str, str], ...]
    #: Appended to a read whose rows the transaction then writes: row locks, where the database has them.
    for_update = ""
    #: The column that orders events logged at the same time (insertion order).
    event_order = "rowid"
    #: A LIMIT that limits nothing.
    no_limit = "-1"
    #: Keys per ``key IN (...)`` statement of a flush.
    keys_per_statement = 500
    #: What a writer waiting too long on another's lock is told, after "The run store LOCATION is ".
    locked = "locked by another process (its write lock was held for more than {wait:g} s)"

    def __init__(self, location: str) -> None:
        self.location = location

    # -- statements --------------------------------------------------------------------------------
    @abstractmethod
    def sql(self, text: str) -> str:
        """`text` with its ``?`` and ``?::json`` marks written as this database's parameters."""

    def execute(self, conn: Any, sql: str, params: Any = ()) -> Any:
        return conn.execute(sql, params)

    def executemany(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(sql, rows)

    def key_list(self, keys: list[str]) -> tuple[str, list[Any]]:
        """``IN (?, ...)`` (after ``key``) and its parameters: is the key one of `keys`?"""
        return f"IN ({', '.join('?' * len(keys))})", keys

    @abstractmethod
    def object_keys(self, column: str) -> str:
        """A FROM item ``e`` whose ``e.key`` are the top-level keys of the JSON object `column`."""

    @abstractmethod
    def member(self, column: str, key: str) -> tuple[str, str, Any]:
        """(value, present, parameter): SQL reading member `key` of the JSON object `column` (its value, and an
        expression NULL only when the member is missing), each with one ``?`` that `parameter` fills."""

    @abstractmethod
    def member_float(self, value: Any) -> float:
        """A member's value as `member` read it, as a float: numbers (and booleans) as floats, anything else NaN."""

    # -- transactions ------------------------------------------------------------------------------
    @abstractmethod
    def connect(self) -> Any:
        """A new connection in autocommit mode (`transaction` opens each transaction), or `StoreError`."""

    def usable(self, conn: Any) -> bool:
        """False when `conn` was closed under us and a new one is needed."""
        return True

    @abstractmethod
    def close(self, conn: Any) -> None:
        """Close `conn`, ignoring the database's errors."""

    @abstractmethod
    def transaction(self, conn: Any, wait: float | None) -> contextlib.AbstractContextManager[None]:
        """One write transaction on `conn`, committed when the block ends; with `wait`, waiting at most that long
        for a lock another writer holds."""

    @abstractmethod
    def failure(self, exc: Exception, conn: Any, wait: float | None) -> str | None:
        """What `exc` means: ``locked`` (the `wait` ran out), ``retry`` (contention: try again shortly),
        ``reconnect`` (the connection broke), ``error``, or None when it is not the database's error."""

    def describe(self, exc: Exception) -> str:
        """`exc` as a message (secrets masked)."""
        return str(exc)

    def lock_sweep(self, tx: Transaction, sweep_id: str) -> None:  # noqa: B027 - optional
        """Serialize this transaction with every other one that touches the sweep's trials (not needed where a
        write transaction holds the whole database)."""

    def lock_import(self, tx: Transaction, run_id: str) -> None:  # noqa: B027 - optional
        """Make a second import of the run wait here until the first commits (likewise)."""

    # -- schema ------------------------------------------------------------------------------------
    #: Told when the store is opened without `create` and has no schema.
    missing = "There is no nbtrack run store at {location}."

    @abstractmethod
    def version(self, conn: Any) -> int | None:
        """The schema version, None when there is no nbtrack schema; `StoreError` when it cannot be read."""

    @abstractmethod
    def begin_migration(self, conn: Any) -> int:
        """Inside the migration's transaction: wait for other clients' migrations, return the current version."""

    @abstractmethod
    def migrate(self, conn: Any, number: int, name: str, sql: str) -> None:
        """Apply one migration and record its number."""


class Transaction:
    """A write transaction's connection: statements in the `Dialect.sql` form."""

    __slots__ = ("conn", "dialect")

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.dialect.execute(self.conn, self.dialect.sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.dialect.executemany(self.conn, self.dialect.sql(sql), rows)


class SQLStore(Store):
    """A `Store` over an SQL database whose `Dialect` the backend gives; subclasses set `location` and say
    where run files live (`run_dir`).

    Each thread has its own connection (`_conn`), closed by `release_thread` or, once its thread has ended, when
    another thread connects. Every write is one transaction through `_write`, retried on contention.
    """

    def __init__(self, dialect: Dialect, *, create: bool = True) -> None:
        self.dialect = dialect
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, Any]] = []
        self._lock = threading.Lock()
        self._migrate(create)

    # -- connections --------------------------------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or not self.dialect.usable(conn):
            conn = self.dialect.connect()
            self._local.conn = conn
            with self._lock:
                # A connection per thread, and a server allows only so many: close those of threads that ended
                # (each run's writer thread, each sweep trial's) instead of keeping them until `close`.
                for thread, other in [(t, c) for t, c in self._connections if not t.is_alive()]:
                    self._connections.remove((thread, other))
                    self.dialect.close(other)
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _forget(self, conn: Any) -> None:
        """Close `conn` and forget it, so that this thread's next call connects again."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            self._connections = [(t, c) for t, c in self._connections if c is not conn]
        self.dialect.close(conn)

    def release_thread(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._forget(conn)

    def close(self) -> None:
        with self._lock:
            for _thread, conn in self._connections:
                self.dialect.close(conn)
            self._connections.clear()
            self._local = threading.local()

    def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn(transaction, *args)` in one write transaction, retrying on contention for up to two minutes
        and once on a broken connection.

        Inside `waiting_at_most(seconds)`, a lock held longer by another writer is `StoreLockedError` (a new run
        must not hang behind another process's long transaction: its writer keeps the points until the lock
        frees)."""
        wait = self.lock_wait()
        delay = 0.01
        deadline = time.monotonic() + 120.0
        reconnected = False
        while True:
            conn = self._conn()
            try:
                with self.dialect.transaction(conn, wait):
                    return fn(Transaction(conn, self.dialect), *args)
            except StoreError:
                raise
            except Exception as exc:
                failure = self._recover(
                    exc, conn, wait, "Writing", retry=time.monotonic() < deadline, reconnect=not reconnected
                )
                if failure == "retry":
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.5)
                reconnected = reconnected or failure == "reconnect"

    def _read(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement in the `Dialect.sql` form."""
        return self._query(self.dialect.sql(sql), params)

    def _query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement already in the database's own form (a compiled query)."""
        for attempt in range(2):
            conn = self._conn()
            try:
                return self.dialect.execute(conn, sql, params).fetchall()
            except StoreError:
                raise
            except Exception as exc:
                self._recover(exc, conn, None, "Reading", retry=False, reconnect=attempt == 0)
        raise AssertionError("unreachable")

    def _recover(
        self, exc: Exception, conn: Any, wait: float | None, doing: str, *, retry: bool, reconnect: bool
    ) -> str:
        """What a failed statement calls for, when the caller may do it: ``retry`` (after a pause) or
        ``reconnect`` (the broken connection is forgotten). Otherwise raises what the caller should: the error
        itself when it is not the database's, `StoreLockedError` when the `wait` ran out, else `StoreError`."""
        failure = self.dialect.failure(exc, conn, wait)
        if failure is None:
            raise exc
        if failure == "locked" and wait is not None:
            raise StoreLockedError(
                f"The run store {self.location} is {self.dialect.locked.format(wait=wait)}."
            ) from None
        if failure == "reconnect":
            self._forget(conn)
        if (failure == "retry" and retry) or (failure == "reconnect" and reconnect):
            return failure
        raise StoreError(
            f"{doing} the run store {self.location} failed: {self.dialect.describe(exc)}"
        ) from None

    # -- schema -------------------------------------------------------------------------------------
    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The run store at {self.location} was written by a newer nbtrack (schema version {version}; "
                f"this nbtrack reads up to {SCHEMA_VERSION}). Upgrade with `pip install -U nbtrack`."
            )

    def _migrate(self, create: bool) -> None:
        version = self.dialect.version(self._conn())
        if version is None and not create:
            raise StoreError(self.dialect.missing.format(location=self.location))
        if version is not None:
            self._check_version(version)
            if version == SCHEMA_VERSION:
                return

        def apply(tx: Transaction) -> None:
            current = self.dialect.begin_migration(tx.conn)  # another client may have migrated meanwhile
            self._check_version(current)
            for number, name, sql in self.dialect.migrations:
                if number > current:
                    self.dialect.migrate(tx.conn, number, name, sql)

        self._write(apply)

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
        def insert(tx: Transaction) -> str:
            seq = int(tx.execute(_NEXT_SEQ, (project,)).fetchone()[0])
            display = name if name is not None else new_display_name(seq)
            tx.execute(
                "INSERT INTO runs (id, project, name, seq, state, created, heartbeat, host, pid, notes, tags, config) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?::json, ?::json)",
                (run_id, project, display, seq, created, created, host, pid, notes, dump_json(list(tags)),
                 dump_json(config)),
            )  # fmt: skip
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

    @staticmethod
    def _record(row: tuple[Any, ...], crashed: set[str] | None = None) -> RunRecord:
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
            tags=tuple(load_json(tags)),
            config=load_json(config),
            summary=load_json(summary),
            environment=load_json(env),
        )

    def get_run(self, ref: str, project: str | None = None) -> RunRecord:
        where, params = ("", []) if project is None else (" AND project = ?", [project])
        if ref == "latest":
            rows = self._read(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE TRUE{where} ORDER BY created DESC LIMIT 1", params
            )
        else:
            rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?{where}", [ref, *params])
            if not rows:
                rows = self._read(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE name = ?{where} ORDER BY created DESC",
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
            rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created DESC")
        else:
            rows = self._read(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE project = ? ORDER BY created DESC", [project]
            )
        return [self._record(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        def delete(tx: Transaction) -> int:
            count = tx.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            for table in ("metrics", "chunks", "events"):
                tx.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return count

        if not self._write(delete):
            raise RunNotFoundError(f"No run with id {run_id!r} in the store at {self.location}.")
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    @abstractmethod
    def run_dir(self, run_id: str) -> Path: ...

    # -- searching ----------------------------------------------------------------------------------
    def _crashed_ids(self, now: float) -> list[str]:
        rows = self._read("SELECT id, host, pid, heartbeat FROM runs WHERE state = 'running'")
        return [
            rid for rid, host, pid, hb in rows if effective_state("running", host, pid, hb, now) == "crashed"
        ]

    def _compile(self, query: RunQuery) -> tuple[str, dict[str, Any], Compiler]:
        now = time.time()
        compiler = Compiler(self.dialect.query(), now, self._crashed_ids(now))
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
        columns = RUN_COLUMNS if environment else RUN_COLUMNS.replace("environment", "CAST('{}' AS TEXT)")
        if counted:  # sorting has to see every match anyway, so counting them in the same pass is free
            columns += ", COUNT(*) OVER ()"
        sql = f"SELECT {columns} FROM runs{where} ORDER BY {order}"
        if query.limit is not None or query.offset:
            # a negative limit reads as none and a negative offset as 0 (SQLite's reading; PostgreSQL refuses them)
            none = query.limit is None or int(query.limit) < 0
            sql += f" LIMIT {self.dialect.no_limit if none else int(query.limit)} OFFSET {max(0, int(query.offset))}"  # type: ignore[arg-type]
        rows = self._query(sql, params)
        crashed = set(compiler.crashed_ids)
        if not counted:
            return [self._record(r, crashed) for r in rows], len(rows)
        if not rows and query.offset:  # past the end: the window saw no rows to count
            return [], self.count_runs(query)
        total = int(rows[0][-1]) if rows else 0
        return [self._record(r[:-1], crashed) for r in rows], total

    def count_runs(self, query: RunQuery) -> int:
        where, params, _ = self._compile(query)
        return int(self._query(f"SELECT COUNT(*) FROM runs{where}", params)[0][0])

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
        query = self.dialect.query()
        where = "" if project is None else f" WHERE project = {query.bind(project)}"
        rows = self._query(
            f"SELECT DISTINCT e.key FROM runs, {self.dialect.object_keys(scope)}{where}", query.params
        )
        return sorted(r[0] for r in rows)

    # -- sweeps -------------------------------------------------------------------------------------
    @staticmethod
    def _sweep(row: tuple[Any, ...]) -> SweepRecord:
        sid, project, name, config, method, state, created, ended = row
        return SweepRecord(sid, project, name, load_json(config), method, state, created, ended)

    @staticmethod
    def _trial(row: tuple[Any, ...]) -> TrialRecord:
        sid, number, params, state, run_id, grid_index, worker, value, rungs, created, ended = row
        return TrialRecord(
            sid, number, load_json(params), state, run_id, grid_index, worker, value, load_json(rungs), created,
            ended,
        )  # fmt: skip

    def create_sweep(
        self, *, sweep_id: str, project: str, name: str, config: dict[str, Any], method: str, created: float
    ) -> SweepRecord:
        self._write(
            lambda tx: tx.execute(
                "INSERT INTO sweeps (id, project, name, config, method, state, created) "
                "VALUES (?, ?, ?, ?::json, ?, 'running', ?)",
                (sweep_id, project, name, dump_json(config), method, created),
            )
        )
        return SweepRecord(sweep_id, project, name, config, method, "running", created)

    def get_sweep(self, ref: str) -> SweepRecord:
        rows = self._read(f"SELECT {_SWEEP_COLUMNS} FROM sweeps WHERE id = ?", [ref]) or self._read(
            f"SELECT {_SWEEP_COLUMNS} FROM sweeps WHERE name = ? ORDER BY created DESC", [ref]
        )
        if not rows:
            raise RunNotFoundError(f"No sweep with id or name {ref!r} in the store at {self.location}.")
        return self._sweep(rows[0])

    def list_sweeps(self, project: str | None = None) -> list[SweepRecord]:
        where, params = ("", []) if project is None else (" WHERE project = ?", [project])
        rows = self._read(f"SELECT {_SWEEP_COLUMNS} FROM sweeps{where} ORDER BY created DESC", params)
        return [self._sweep(r) for r in rows]

    def set_sweep_state(self, sweep_id: str, state: str, ended: float | None = None) -> None:
        self._write(
            lambda tx: tx.execute(
                "UPDATE sweeps SET state = ?, ended = ? WHERE id = ?", (state, ended, sweep_id)
            )
        )

    def _trials(self, tx: Transaction, sweep_id: str) -> list[TrialRecord]:
        rows = tx.execute(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
        ).fetchall()
        return [self._trial(r) for r in rows]

    def claim_trial(self, sweep_id: str, worker: str, propose: Any) -> TrialRecord | None:
        def claim(tx: Transaction) -> TrialRecord | None:
            self.dialect.lock_sweep(tx, sweep_id)
            trials = self._trials(tx, sweep_id)
            now = time.time()
            for trial in trials:  # a worker that died mid-trial: its grid point goes back to the pool
                if trial.state != "running" or trial.run_id is None:
                    continue
                run = tx.execute(
                    "SELECT state, host, pid, heartbeat FROM runs WHERE id = ?", (trial.run_id,)
                ).fetchone()
                if run is not None and effective_state(*run, now) == "crashed":
                    tx.execute(
                        "UPDATE trials SET state = 'crashed', ended = ? WHERE sweep_id = ? AND number = ?",
                        (now, sweep_id, trial.number),
                    )
            if any(t.state == "running" and t.run_id is not None for t in trials):
                trials = self._trials(tx, sweep_id)
            proposal = propose(trials)
            if proposal is None:
                return None
            params, grid_index = proposal
            number = (trials[-1].number + 1) if trials else 0
            tx.execute(
                "INSERT INTO trials (sweep_id, number, params, state, grid_index, worker, created) "
                "VALUES (?, ?, ?::json, 'running', ?, ?, ?)",
                (sweep_id, number, dump_json(params), grid_index, worker, now),
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
                sets.append(f"{column} = ?")
                params.append(None if isinstance(given, float) and math.isnan(given) else given)
        if sets:
            self._write(
                lambda tx: tx.execute(
                    f"UPDATE trials SET {', '.join(sets)} WHERE sweep_id = ? AND number = ?",
                    (*params, sweep_id, number),
                )
            )

    def record_rung(self, sweep_id: str, number: int, rung: int, value: float) -> list[float]:
        def record(tx: Transaction) -> list[float]:
            self.dialect.lock_sweep(tx, sweep_id)
            row = tx.execute(
                "SELECT rungs FROM trials WHERE sweep_id = ? AND number = ?", (sweep_id, number)
            ).fetchone()
            rungs = load_json(row[0]) if row else {}
            rungs[str(rung)] = value
            tx.execute(
                "UPDATE trials SET rungs = ?::json WHERE sweep_id = ? AND number = ?",
                (dump_json(rungs), sweep_id, number),
            )
            at_rung, present, key = self.dialect.member("rungs", str(rung))
            others = tx.execute(
                f"SELECT {at_rung} FROM trials WHERE sweep_id = ? AND number <> ? AND {present} IS NOT NULL",
                (key, sweep_id, number, key),
            ).fetchall()
            return [self.dialect.member_float(v) for (v,) in others]

        return self._write(record)

    def trials(self, sweep_id: str) -> list[TrialRecord]:
        rows = self._read(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number", [sweep_id]
        )
        return [self._trial(r) for r in rows]

    # -- writing ------------------------------------------------------------------------------------
    def write_batch(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        self._write(self._apply_batch, batch)

    def _apply_batch(self, tx: Transaction, batch: WriteBatch) -> None:
        rid = batch.run_id
        # The row lock (where there are row locks) makes a concurrent delete_run wait until this batch is in (it
        # then deletes it too); elsewhere the write transaction holds the whole database.
        if tx.execute(f"SELECT 1 FROM runs WHERE id = ?{self.dialect.for_update}", (rid,)).fetchone() is None:
            raise RunNotFoundError(
                f"Run {rid!r} is no longer in the store at {self.location} (it was deleted)."
            )
        self._append_series(tx, rid, batch.series)
        sets: list[str] = []
        params: list[Any] = []
        for column in ("config", "summary", "environment"):
            value = getattr(batch, column)
            if value is not None:
                sets.append(f"{column} = ?::json")
                params.append(dump_json(value))
        for column in ("heartbeat", "state", "ended"):
            value = getattr(batch, column)
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        for column in (
            "name",
            "notes",
        ):  # assigned on the live run (fixed names: a spill file holds the dict)
            if column in batch.labels:
                sets.append(f"{column} = ?")
                params.append(batch.labels[column])
        if "tags" in batch.labels:
            sets.append("tags = ?::json")
            params.append(dump_json(list(batch.labels["tags"])))
        if sets:
            tx.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, rid))
        if batch.events:
            tx.executemany(_INSERT_EVENT, [_event_row(rid, e) for e in batch.events])

    def _append_series(self, tx: Transaction, rid: str, batch: list[SeriesBatch]) -> None:
        """Append every series of a flush with a few statements, however many keys it holds.

        Each statement gives up the GIL, and a training thread that never sleeps can keep it for a switch
        interval (5 ms) each time: one read of the series' metric rows and unfilled last chunks, then one
        ``executemany`` per table (a flush of 10,000 keys was ~40,000 statements). A key given twice in one
        batch is applied in a second round, after the first is written.
        """
        for round_ in rounds_of_distinct_keys(batch):
            stats, tails = self._series_state(tx, rid, [s.key for s in round_])
            chunk_rows: list[tuple[Any, ...]] = []
            metric_rows: list[tuple[Any, ...]] = []
            for series in round_:
                chunks, metric = merge_series(rid, series, stats.get(series.key), tails.get(series.key))
                chunk_rows.extend(chunks)
                metric_rows.append(metric)
            tx.executemany(_UPSERT_CHUNK, chunk_rows)
            tx.executemany(_UPSERT_METRIC, metric_rows)

    def _series_state(
        self, tx: Transaction, rid: str, keys: list[str]
    ) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
        """The metric rows of `keys` (locked, where rows lock) and their last chunks that still have room."""
        stats: dict[str, tuple[Any, ...]] = {}
        tails: dict[str, tuple[Any, ...]] = {}
        step = self.dialect.keys_per_statement
        for start in range(0, len(keys), step):
            among, part = self.dialect.key_list(keys[start : start + step])
            for key, *row in tx.execute(
                "SELECT key, count, min, max, first_step, chunks FROM metrics "
                f"WHERE run_id = ? AND key {among}{self.dialect.for_update}",
                (rid, *part),
            ):
                stats[key] = tuple(row)
            for key, *tail in tx.execute(
                "SELECT c.key, c.n, c.first_step, c.t0, c.steps, c.times, c.vals FROM metrics m "
                "JOIN chunks c ON c.run_id = m.run_id AND c.key = m.key AND c.seq = m.chunks - 1 "
                f"WHERE m.run_id = ? AND m.key {among} AND c.n < ?",
                (rid, *part, CHUNK_POINTS),
            ):
                tails[key] = tuple(tail)
        return stats, tails

    # -- reading metrics ----------------------------------------------------------------------------
    def metric_stats(self, run_id: str) -> dict[str, MetricStats]:
        rows = self._read(
            "SELECT key, count, last, min, max, first_step, last_step FROM metrics WHERE run_id = ? ORDER BY key",
            [run_id],
        )
        return {
            key: MetricStats(
                key, int(count), none_to_nan(last), none_to_nan(lo), none_to_nan(hi), first, last_step
            )
            for key, count, last, lo, hi, first, last_step in rows
        }

    def events(self, run_id: str) -> list[RunEvent]:
        rows = self._read(
            "SELECT time, kind, message, step, data FROM events WHERE run_id = ? "
            f"ORDER BY time, {self.dialect.event_order}",
            [run_id],
        )
        return [
            RunEvent(t, kind, message, step, load_json(data or "{}")) for t, kind, message, step, data in rows
        ]

    def history(self, run_id: str, key: str, samples: int | None = None) -> History:
        rows = self._read(
            "SELECT n, first_step, t0, steps, times, vals FROM chunks WHERE run_id = ? AND key = ? ORDER BY seq",
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

    # -- imports (nbtrack.share.bundle) ------------------------------------------------------------------
    def import_run(
        self,
        record: RunRecord,
        series: Callable[[], Iterator[list[SeriesBatch]]],
        events: Sequence[RunEvent],
        place_files: Callable[[], None],
    ) -> bool:
        def write(tx: Transaction) -> bool:
            # A second import of this run waits for the first's lock, then sees the committed row.
            self.dialect.lock_import(tx, record.id)
            if tx.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
                return False
            seq = tx.execute(_NEXT_SEQ, (record.project,)).fetchone()[0]
            tx.execute(_insert("runs", f"{RUN_COLUMNS}, seq", json=_RUN_JSON), (*_import_row(record), seq))
            for batch in series():
                self._append_series(tx, record.id, batch)
            tx.executemany(_INSERT_EVENT, [_event_row(record.id, e) for e in events])
            place_files()
            return True

        return bool(self._write(write))

    def import_sweep(
        self, sweep_id: str, merge: Callable[[SweepRecord | None, list[TrialRecord]], SweepMerge]
    ) -> bool:
        def write(tx: Transaction) -> bool:
            self.dialect.lock_sweep(tx, sweep_id)
            rows = tx.execute(f"SELECT {_SWEEP_COLUMNS} FROM sweeps WHERE id = ?", (sweep_id,)).fetchall()
            plan = merge(self._sweep(rows[0]) if rows else None, self._trials(tx, sweep_id))
            if plan.sweep is not None:
                s = plan.sweep
                tx.execute(
                    _insert("sweeps", _SWEEP_COLUMNS, json=["config"]),
                    (s.id, s.project, s.name, dump_json(s.config), s.method, s.state, s.created, s.ended),
                )
            tx.executemany(_UPSERT_TRIAL, [_trial_row(t) for t in plan.trials])
            if plan.state is not None:
                tx.execute("UPDATE sweeps SET state = ?, ended = ? WHERE id = ?", (*plan.state, sweep_id))
            return not plan.is_empty()

        return bool(self._write(write))


def _event_row(rid: str, e: RunEvent) -> tuple[Any, ...]:
    return (rid, e.time, e.step, e.kind, e.message, dump_json(e.data))


def _import_row(record: RunRecord) -> tuple[Any, ...]:
    """An imported run's values in `RUN_COLUMNS` order."""
    r = record
    return (
        r.id, r.project, r.name, r.state, r.created, r.ended, r.heartbeat, r.host, r.pid, r.notes,
        dump_json(list(r.tags)), dump_json(r.config), dump_json(r.summary), dump_json(r.environment),
    )  # fmt: skip


def _trial_row(t: TrialRecord) -> tuple[Any, ...]:
    """A trial's values in `_TRIAL_COLUMNS` order (a NaN metric is stored as NULL, as `update_trial` does)."""
    value = None if t.value is None or math.isnan(t.value) else t.value
    return (
        t.sweep_id, t.number, dump_json(t.params), t.state, t.run_id, t.grid_index, t.worker, value,
        dump_json(t.rungs), t.created, t.ended,
    )  # fmt: skip
