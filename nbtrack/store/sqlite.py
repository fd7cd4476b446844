"""The embedded store: one SQLite file in WAL mode plus a directory of run files.

Layout of a store directory::

    nbtrack-runs/
      nbtrack.db          runs, config, summary, environment, metric chunks, events
      files/<run id>/     the run's files (requirements.txt, git.diff, model-best.keras, ...)

Metric points are stored in chunks of up to `MAX_CHUNK_POINTS` points per (run, metric) row: values as raw
float64, wall times as int32 milliseconds from the chunk's first point, steps omitted when they are
consecutive (the usual case) and raw int64 otherwise. That is 12 bytes a point typically, 20 at most,
and reading a million points back is a few hundred `frombuffer` calls.
"""

from __future__ import annotations

import math
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nbtrack.errors import RunNotFoundError, StoreError
from nbtrack.names import new_display_name
from nbtrack.query import dump_json, load_json
from nbtrack.series import History, reduce_history
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
from nbtrack.store.sql import Compiler, SQLiteDialect

DB_NAME = "nbtrack.db"
_DAMAGED_HINT = (
    "nbtrack has not changed it. If it is damaged, move it aside (or restore it from a backup) and nbtrack starts a "
    "new store there; a bundle (`nbtrack export`) made earlier brings runs back with `nbtrack import`."
)
CHUNK_POINTS = 1024  # a chunk smaller than this is topped up by the next flush
MAX_CHUNK_POINTS = 65_536  # big flushes are split into chunks of up to this many points
_INT32_MS = 2**31 - 1

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

_RUN_COLUMNS = "id, project, name, state, created, ended, heartbeat, host, pid, notes, tags, config, summary, environment"


_dumps = dump_json
_loads = load_json


def _strict_json(conn: sqlite3.Connection) -> None:
    """Migration 2's data step: columns written with bare NaN/Infinity (not JSON) rewritten by `dump_json`."""
    rows = conn.execute("SELECT id, config, summary, environment FROM runs").fetchall()
    for rid, *columns in rows:
        fixed = [_dumps(_loads(text)) for text in columns]
        if fixed != columns:
            conn.execute(
                "UPDATE runs SET config = ?, summary = ?, environment = ? WHERE id = ?", (*fixed, rid)
            )
    for rowid, data in conn.execute("SELECT rowid, data FROM events WHERE data IS NOT NULL").fetchall():
        fixed_data = _dumps(_loads(data))
        if fixed_data != data:
            conn.execute("UPDATE events SET data = ? WHERE rowid = ?", (fixed_data, rowid))


# Data steps that go with a migration's SQL, by migration number.
MIGRATION_STEPS = {2: _strict_json}


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


# -- chunk codec ------------------------------------------------------------------------------------
def encode_chunks(
    step: np.ndarray, tm: np.ndarray, value: np.ndarray, size: int
) -> list[tuple[int, int, int, float, bytes | None, bytes, bytes]]:
    """Encode a series as chunks of up to `size` points: (n, first step, last step, t0, steps, times, values).

    Every array operation runs once over the whole series, then chunks are byte slices: numpy gives up the GIL
    inside large operations, and under a busy training thread each hand-off back costs a switch interval.
    """
    n = int(value.shape[0])
    starts = list(range(0, n, size))
    steps = np.ascontiguousarray(step, dtype="<i8")
    values = np.ascontiguousarray(value, dtype="<f8")
    breaks = np.flatnonzero(np.diff(steps) != 1) if n > 1 else np.empty(0, np.int64)  # non-consecutive steps
    ms = np.rint(np.asarray(tm, dtype=np.float64) * 1000.0)
    offsets = ms - np.repeat(ms[starts], [min(size, n - s) for s in starts])
    small = bool(np.abs(offsets).max() <= _INT32_MS) if n else True
    times32 = offsets.astype("<i4") if small else None
    times64 = None if small else np.ascontiguousarray(tm, dtype="<f8")
    chunks = []
    for start in starts:
        end = min(start + size, n)
        # consecutive within [start, end) unless a break falls at an index in [start, end - 1)
        cut = int(np.searchsorted(breaks, start)) if len(breaks) else 0
        consecutive = not (len(breaks) and cut < len(breaks) and breaks[cut] < end - 1)
        times = times32[start:end].tobytes() if times32 is not None else times64[start:end].tobytes()  # type: ignore[index]
        chunks.append(
            (
                end - start,
                int(steps[start]),
                int(steps[end - 1]),
                float(ms[start]) / 1000.0,
                None if consecutive else steps[start:end].tobytes(),
                times,
                values[start:end].tobytes(),
            )
        )
    return chunks


def decode_chunk(
    n: int, first: int, t0: float, steps: bytes | None, times: bytes, vals: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = np.arange(first, first + n, dtype=np.int64) if steps is None else np.frombuffer(steps, "<i8")
    if len(times) == 4 * n:
        tm = np.frombuffer(times, "<i4") / 1000.0 + t0
    else:
        tm = np.frombuffer(times, "<f8")
    return step, tm, np.frombuffer(vals, "<f8")


class SQLiteStore(Store):
    """A store in a local directory. See the module docstring for the layout."""

    def __init__(self, directory: str | Path, *, create: bool = True) -> None:
        self.directory = Path(directory).expanduser().absolute()
        self.location = str(self.directory)
        self.db_path = self.directory / DB_NAME
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if create:
            self._make_directory()
        elif not self.db_path.is_file():
            raise StoreError(
                f"There is no nbtrack run store at {self.location} (no {DB_NAME}). Runs are stored where "
                "`nbtrack.init(store=...)` or NBTRACK_STORE points, ./nbtrack-runs by default."
            )
        self._migrate()

    # -- connections --------------------------------------------------------------------------------
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

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA busy_timeout = 60000")
                self._ensure_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"Cannot open the run store database {self.db_path}: {exc}. {_DAMAGED_HINT}"
                ) from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @staticmethod
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

    def _write(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run `fn(conn, *args)` in one IMMEDIATE transaction, retrying briefly while another process holds the lock.

        Inside `waiting_at_most(seconds)`, give up after that long with `StoreLockedError` (a new run must not
        hang behind another process's long transaction: its writer keeps the points until the lock frees)."""
        wait = self.lock_wait()
        if wait is None:
            return self._write_until(fn, args, 120.0, None)
        conn = self._conn()
        conn.execute(f"PRAGMA busy_timeout = {max(1, int(wait * 1000))}")
        try:
            return self._write_until(fn, args, wait, wait)
        finally:
            conn.execute("PRAGMA busy_timeout = 60000")

    def _write_until(self, fn, args, patience: float, wait: float | None):  # type: ignore[no-untyped-def]
        conn = self._conn()
        delay = 0.01
        deadline = time.monotonic() + patience
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn, *args)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                message = str(exc)
                if ("locked" in message or "busy" in message) and wait is not None:
                    raise StoreLockedError(
                        f"The run store {self.location} is locked by another process (its write lock was held "
                        f"for more than {wait:g} s)."
                    ) from None
                if ("locked" in message or "busy" in message) and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                raise StoreError(f"Writing the run store {self.location} failed: {message}") from None
            except sqlite3.Error as exc:
                raise StoreError(f"Writing the run store {self.location} failed: {exc}") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"Reading the run store {self.location} failed: {exc}") from None

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.db_path} is not an nbtrack store database ({exc}). {_DAMAGED_HINT}"
            ) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The run store at {self.location} was written by a newer nbtrack (schema version {version}; "
                f"this nbtrack reads up to {SCHEMA_VERSION}). Upgrade with `pip install -U nbtrack`."
            )
        if version == SCHEMA_VERSION:
            return

        def apply(conn: sqlite3.Connection) -> None:
            current = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for number, _name, sql in MIGRATIONS:
                if number > current:
                    for statement in filter(str.strip, sql.split(";")):
                        conn.execute(statement)
                    if number in MIGRATION_STEPS:
                        MIGRATION_STEPS[number](conn)
                    conn.execute(f"PRAGMA user_version = {number}")

        self._write(apply)

    def release_thread(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
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
        def insert(conn: sqlite3.Connection) -> str:
            row = conn.execute(
                "INSERT INTO projects (name, next_seq) VALUES (?, 2) ON CONFLICT (name) "
                "DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq - 1",
                (project,),
            ).fetchone()
            seq = int(row[0])
            display = name if name is not None else new_display_name(seq)
            conn.execute(
                "INSERT INTO runs (id, project, name, seq, state, created, heartbeat, host, pid, notes, tags, config) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
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
        where, params = ("", []) if project is None else (" AND project = ?", [project])
        if ref == "latest":
            rows = self._read(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE 1{where} ORDER BY created DESC LIMIT 1", params
            )
        else:
            rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?{where}", [ref, *params])
            if not rows:
                rows = self._read(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE name = ?{where} ORDER BY created DESC",
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
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE project = ? ORDER BY created DESC", [project]
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
        compiler = Compiler(SQLiteDialect(), now, self._crashed_ids(now))
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
        columns = _RUN_COLUMNS if environment else _RUN_COLUMNS.replace("environment", "'{}'")
        if counted:  # sorting has to see every match anyway, so counting them in the same pass is free
            columns += ", COUNT(*) OVER ()"
        sql = f"SELECT {columns} FROM runs{where} ORDER BY {order}"
        if query.limit is not None or query.offset:
            sql += f" LIMIT {compiler.d.bind(-1 if query.limit is None else int(query.limit))}"
            sql += f" OFFSET {compiler.d.bind(int(query.offset))}"
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
        return [ProjectInfo(name, count, last, running.get(name, 0)) for name, count, last in rows]

    def keys(self, scope: str, project: str | None = None) -> list[str]:
        if scope not in ("config", "summary"):
            raise ValueError(f"scope must be 'config' or 'summary', not {scope!r}")
        where, params = ("", ()) if project is None else (" WHERE project = ?", (project,))
        rows = self._read(f"SELECT DISTINCT e.key FROM runs, json_each(runs.{scope}) AS e{where}", params)
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
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sweeps (id, project, name, config, method, state, created) VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (sweep_id, project, name, _dumps(config), method, created),
            )

        self._write(insert)
        return SweepRecord(sweep_id, project, name, config, method, "running", created)

    def get_sweep(self, ref: str) -> SweepRecord:
        rows = self._read(f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE id = ?", [ref]) or self._read(
            f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE name = ? ORDER BY created DESC", [ref]
        )
        if not rows:
            raise RunNotFoundError(f"No sweep with id or name {ref!r} in the store at {self.location}.")
        return self._sweep(rows[0])

    def list_sweeps(self, project: str | None = None) -> list[SweepRecord]:
        where, params = ("", []) if project is None else (" WHERE project = ?", [project])
        rows = self._read(f"SELECT {self._SWEEP_COLUMNS} FROM sweeps{where} ORDER BY created DESC", params)
        return [self._sweep(r) for r in rows]

    def set_sweep_state(self, sweep_id: str, state: str, ended: float | None = None) -> None:
        self._write(
            lambda conn: conn.execute(
                "UPDATE sweeps SET state = ?, ended = ? WHERE id = ?", (state, ended, sweep_id)
            )
        )

    def claim_trial(self, sweep_id: str, worker: str, propose: Any) -> TrialRecord | None:
        def claim(conn: sqlite3.Connection) -> TrialRecord | None:
            rows = conn.execute(
                f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
            ).fetchall()
            trials = [self._trial(r) for r in rows]
            now = time.time()
            for trial in trials:  # a worker that died mid-trial: its grid point goes back to the pool
                if trial.state != "running" or trial.run_id is None:
                    continue
                run = conn.execute(
                    "SELECT state, host, pid, heartbeat FROM runs WHERE id = ?", (trial.run_id,)
                ).fetchone()
                if run is not None and effective_state(*run, now) == "crashed":
                    conn.execute(
                        "UPDATE trials SET state = 'crashed', ended = ? WHERE sweep_id = ? AND number = ?",
                        (now, sweep_id, trial.number),
                    )
            if any(t.state == "running" and t.run_id is not None for t in trials):
                trials = [
                    self._trial(r)
                    for r in conn.execute(
                        f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number",
                        (sweep_id,),
                    ).fetchall()
                ]
            proposal = propose(trials)
            if proposal is None:
                return None
            params, grid_index = proposal
            number = (trials[-1].number + 1) if trials else 0
            conn.execute(
                "INSERT INTO trials (sweep_id, number, params, state, grid_index, worker, created) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?)",
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
                sets.append(f"{column} = ?")
                params.append(None if isinstance(given, float) and math.isnan(given) else given)
        if sets:
            self._write(
                lambda conn: conn.execute(
                    f"UPDATE trials SET {', '.join(sets)} WHERE sweep_id = ? AND number = ?",
                    (*params, sweep_id, number),
                )
            )

    def record_rung(self, sweep_id: str, number: int, rung: int, value: float) -> list[float]:
        def record(conn: sqlite3.Connection) -> list[float]:
            row = conn.execute(
                "SELECT rungs FROM trials WHERE sweep_id = ? AND number = ?", (sweep_id, number)
            ).fetchone()
            rungs = _loads(row[0]) if row else {}
            rungs[str(rung)] = value
            conn.execute(
                "UPDATE trials SET rungs = ? WHERE sweep_id = ? AND number = ?",
                (_dumps(rungs), sweep_id, number),
            )
            others = conn.execute(
                "SELECT json_extract(rungs, ?) FROM trials WHERE sweep_id = ? AND number != ? "
                "AND json_type(rungs, ?) IS NOT NULL",
                (f'$."{rung}"', sweep_id, number, f'$."{rung}"'),
            ).fetchall()
            return [math.nan if v is None or isinstance(v, str) else float(v) for (v,) in others]

        return self._write(record)

    def trials(self, sweep_id: str) -> list[TrialRecord]:
        rows = self._read(
            f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number", [sweep_id]
        )
        return [self._trial(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> int:
            count = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            for table in ("metrics", "chunks", "events"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return count

        if not self._write(delete):
            raise RunNotFoundError(f"No run with id {run_id!r} in the store at {self.location}.")
        shutil.rmtree(self.directory / "files" / run_id, ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        return self.directory / "files" / run_id

    # -- writing ------------------------------------------------------------------------------------
    def write_batch(self, batch: WriteBatch) -> None:
        if batch.is_empty():
            return
        self._write(self._apply_batch, batch)

    def _apply_batch(self, conn: sqlite3.Connection, batch: WriteBatch) -> None:
        rid = batch.run_id
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (rid,)).fetchone() is None:
            raise RunNotFoundError(
                f"Run {rid!r} is no longer in the store at {self.location} (it was deleted)."
            )
        self._append_series(conn, rid, batch.series)
        sets: list[str] = []
        params: list[Any] = []
        for column in ("config", "summary", "environment"):
            value = getattr(batch, column)
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(_dumps(value))
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
            sets.append("tags = ?")
            params.append(_dumps(list(batch.labels["tags"])))
        if sets:
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*params, rid))
        if batch.events:
            conn.executemany(
                "INSERT INTO events (run_id, time, step, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                [(rid, e.time, e.step, e.kind, e.message, _dumps(e.data)) for e in batch.events],
            )

    def _append_series(self, conn: sqlite3.Connection, rid: str, batch: list[SeriesBatch]) -> None:
        """Append every series of a flush with a few statements, however many keys it holds.

        Each statement gives up the GIL, and a training thread that never sleeps can keep it for a switch
        interval (5 ms) each time: one read of the series' metric rows and unfilled last chunks, then one
        ``executemany`` per table (a flush of 10,000 keys was ~40,000 statements). A key given twice in one
        batch is applied in a second round, after the first is written.
        """
        for round_ in _rounds_of_distinct_keys(batch):
            stats, tails = self._series_state(conn, rid, [s.key for s in round_])
            chunk_rows: list[tuple[Any, ...]] = []
            metric_rows: list[tuple[Any, ...]] = []
            for series in round_:
                chunks, metric = _merge_series(rid, series, stats.get(series.key), tails.get(series.key))
                chunk_rows.extend(chunks)
                metric_rows.append(metric)
            conn.executemany(
                "INSERT OR REPLACE INTO chunks (run_id, key, seq, n, first_step, last_step, t0, steps, times, vals) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                chunk_rows,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, key, count, last, min, max, first_step, last_step, chunks) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                metric_rows,
            )

    @staticmethod
    def _series_state(
        conn: sqlite3.Connection, rid: str, keys: list[str]
    ) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
        """The metric rows of `keys` and their last chunks that still have room, read in slices of 500 keys."""
        stats: dict[str, tuple[Any, ...]] = {}
        tails: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ", ".join("?" * len(part))
            for key, *row in conn.execute(
                f"SELECT key, count, min, max, first_step, chunks FROM metrics WHERE run_id = ? AND key IN ({marks})",
                (rid, *part),
            ):
                stats[key] = tuple(row)
            for key, *tail in conn.execute(
                "SELECT c.key, c.n, c.first_step, c.t0, c.steps, c.times, c.vals FROM metrics m "
                "JOIN chunks c ON c.run_id = m.run_id AND c.key = m.key AND c.seq = m.chunks - 1 "
                f"WHERE m.run_id = ? AND m.key IN ({marks}) AND c.n < ?",
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
                key, count, _none_to_nan(last), _none_to_nan(lo), _none_to_nan(hi), first, last_step
            )
            for key, count, last, lo, hi, first, last_step in rows
        }

    def events(self, run_id: str) -> list[RunEvent]:
        rows = self._read(
            "SELECT time, kind, message, step, data FROM events WHERE run_id = ? ORDER BY time, rowid",
            [run_id],
        )
        return [
            RunEvent(t, kind, message, step, _loads(data or "{}")) for t, kind, message, step, data in rows
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

    # -- imports (nbtrack.bundle) ------------------------------------------------------------------
    def import_run(
        self,
        record: RunRecord,
        series: Callable[[], Iterator[list[SeriesBatch]]],
        events: Sequence[RunEvent],
        place_files: Callable[[], None],
    ) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            # BEGIN IMMEDIATE holds the write lock: a second import of this run waits here, then sees the row.
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
                return False
            seq = conn.execute(
                "INSERT INTO projects (name, next_seq) VALUES (?, 2) ON CONFLICT (name) "
                "DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq - 1",
                (record.project,),
            ).fetchone()[0]
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_import_row(record), seq),
            )
            for batch in series():
                self._append_series(conn, record.id, batch)
            conn.executemany(
                "INSERT INTO events (run_id, time, step, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                [(record.id, e.time, e.step, e.kind, e.message, _dumps(e.data)) for e in events],
            )
            place_files()
            return True

        return bool(self._write(write))

    def import_sweep(
        self, sweep_id: str, merge: Callable[[SweepRecord | None, list[TrialRecord]], SweepMerge]
    ) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(
                f"SELECT {self._SWEEP_COLUMNS} FROM sweeps WHERE id = ?", (sweep_id,)
            ).fetchall()
            trials = conn.execute(
                f"SELECT {self._TRIAL_COLUMNS} FROM trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
            ).fetchall()
            plan = merge(self._sweep(rows[0]) if rows else None, [self._trial(r) for r in trials])
            if plan.sweep is not None:
                s = plan.sweep
                conn.execute(
                    f"INSERT INTO sweeps ({self._SWEEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (s.id, s.project, s.name, _dumps(s.config), s.method, s.state, s.created, s.ended),
                )
            conn.executemany(
                f"INSERT OR REPLACE INTO trials ({self._TRIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_trial_row(t) for t in plan.trials],
            )
            if plan.state is not None:
                conn.execute("UPDATE sweeps SET state = ?, ended = ? WHERE id = ?", (*plan.state, sweep_id))
            return not plan.is_empty()

        return bool(self._write(write))


def _import_row(record: RunRecord) -> tuple[Any, ...]:
    """An imported run's values in `_RUN_COLUMNS` order."""
    r = record
    return (
        r.id, r.project, r.name, r.state, r.created, r.ended, r.heartbeat, r.host, r.pid, r.notes,
        _dumps(list(r.tags)), _dumps(r.config), _dumps(r.summary), _dumps(r.environment),
    )  # fmt: skip


def _trial_row(t: TrialRecord) -> tuple[Any, ...]:
    """A trial's values in `_TRIAL_COLUMNS` order (a NaN metric is stored as NULL, as `update_trial` does)."""
    value = None if t.value is None or math.isnan(t.value) else t.value
    return (
        t.sweep_id, t.number, _dumps(t.params), t.state, t.run_id, t.grid_index, t.worker, value,
        _dumps(t.rungs), t.created, t.ended,
    )  # fmt: skip


def _rounds_of_distinct_keys(batch: list[SeriesBatch]) -> Iterator[list[SeriesBatch]]:
    """The non-empty series of a batch in rounds where each key appears once (in order): a key given twice
    is appended in a later round, after the earlier one is written."""
    pending = [s for s in batch if s.value]
    while pending:
        seen: set[str] = set()
        round_, later = [], []
        for series in pending:
            (later if series.key in seen else round_).append(series)
            seen.add(series.key)
        yield round_
        pending = later


def _merge_series(
    rid: str, series: SeriesBatch, stats: tuple[Any, ...] | None, tail: tuple[Any, ...] | None
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    """The chunk rows and the metric row that append `series` to a metric whose row is `stats` (count, min,
    max, first_step, chunks; None when new) and whose last chunk, when it has room, is `tail`."""
    step = np.asarray(series.step, dtype=np.int64)
    tm = np.asarray(series.time, dtype=np.float64)
    value = np.asarray(series.value, dtype=np.float64)
    finite_min = float(np.fmin.reduce(value))
    finite_max = float(np.fmax.reduce(value))
    if stats is None:
        count, lo, hi, first_step, chunks = 0, finite_min, finite_max, int(step[0]), 0
    else:
        count, old_lo, old_hi, first_step, chunks = stats
        lo = _nan_if_all(old_lo, finite_min, min)
        hi = _nan_if_all(old_hi, finite_max, max)
    seq = chunks
    # Merge into the last chunk while it has room, so slow runs don't leave one tiny row per flush.
    if chunks and tail is not None:
        t_step, t_time, t_value = decode_chunk(*tail)
        step = np.concatenate([t_step, step])
        tm = np.concatenate([t_time, tm])
        value = np.concatenate([t_value, value])
        seq = chunks - 1
    rows = [
        (rid, series.key, seq + k, *chunk)
        for k, chunk in enumerate(encode_chunks(step, tm, value, MAX_CHUNK_POINTS))
    ]
    metric = (
        rid,
        series.key,
        count + len(series.value),
        _nan_to_none(series.value[-1]),
        _nan_to_none(lo),
        _nan_to_none(hi),
        first_step,
        int(series.step[-1]),
        seq + len(rows),
    )
    return rows, metric


def _nan_if_all(old: float | None, new: float, pick) -> float:  # type: ignore[no-untyped-def]
    if old is None:
        return new
    if math.isnan(new):
        return old
    return pick(old, new)
