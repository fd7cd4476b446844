"""The run store contract. Both backends, SQLite (`nbtrack.store.sqlite`) and PostgreSQL (`nbtrack.store.postgres`),
implement `Store` through one SQL implementation (`nbtrack.store.sqlstore.SQLStore`, each backend adding only its
dialect) and pass `tests/test_store_conformance.py`.

Threading: a store object may be used from several threads at once (the training thread creates and reads
runs, each run's writer thread appends). Each thread gets its own connection, closed by `release_thread` (a
writer thread, as it ends), when another thread connects after it ended, or by `close`.

Processes: several processes (or hosts, on PostgreSQL) may write different runs to one store at the same time; no
call fails with "database is locked" under ordinary contention (a write waits for the lock, then retries for up to
two minutes). Inside `waiting_at_most(seconds)` a write waits at most that long, then raises `StoreLockedError`.

Durability: when `write_batch` returns, what it was given is committed, in one transaction. The run's writer calls
it at least once a second, which is what makes "after kill -9, everything logged more than ~1 s earlier is on disk"
true.

Errors: every failure is a `StoreError` (or `RunNotFoundError`, `StoreLockedError`) whose message names the store's
location, a PostgreSQL password masked.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from nbtrack.common.series import History
from nbtrack.common.states import STATES
from nbtrack.errors import StoreError
from nbtrack.store.query import Node, OrderKey


class StoreLockedError(StoreError):
    """Another process held the store's write lock for longer than the caller chose to wait."""


SCHEMA_VERSION = 3
HEARTBEAT_SECONDS = 2.0
# A running run whose heartbeat is older than this is reported as crashed, even from another host.
HEARTBEAT_STALE_SECONDS = 15.0

FINAL_STATES = frozenset(STATES) - {"running"}


@dataclass(frozen=True)
class MetricStats:
    """What the store keeps about one metric besides its points."""

    key: str
    count: int
    last: float
    min: float  # NaN when every point is NaN
    max: float
    first_step: int
    last_step: int


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int


@dataclass(frozen=True)
class RunRecord:
    """One run as stored. `state` is as seen by the reader: a dead writer's run reads as ``crashed``."""

    id: str
    project: str
    name: str
    state: str
    created: float
    ended: float | None = None
    heartbeat: float | None = None
    host: str = ""
    pid: int = 0
    notes: str | None = None
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        end = (
            self.ended
            if self.ended is not None
            else (self.heartbeat if self.state != "running" else time.time())
        )
        try:
            seconds = max(0.0, (end or self.created) - self.created)
        except TypeError:  # a time stored as text: the run's duration is unknown, not an error
            return math.nan
        return seconds if math.isfinite(seconds) and abs(self.created) < 1e15 else math.nan


@dataclass(frozen=True)
class RunQuery:
    """Which runs `Store.search_runs` returns: `where` and `order` are `nbtrack.store.query` trees."""

    project: str | None = None
    where: Node | None = None
    order: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    runs: int
    last_created: float | None
    running: int = 0


SWEEP_STATES = ("running", "finished", "stopped")
TRIAL_DONE = frozenset({"finished", "failed", "stopped-early"})  # a trial in one of these is never run again


@dataclass(frozen=True)
class SweepRecord:
    id: str
    project: str
    name: str
    config: dict[str, Any]
    method: str
    state: str
    created: float
    ended: float | None = None


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep: its parameters, its run, its state and metric, and its Hyperband rung values."""

    sweep_id: str
    number: int
    params: dict[str, Any]
    state: str  # running | finished | failed | interrupted | stopped-early | crashed
    run_id: str | None = None
    grid_index: int | None = None
    worker: str = ""
    value: float | None = None
    rungs: dict[str, float] = field(default_factory=dict)  # rung (epochs, as text) -> metric there
    created: float = 0.0
    ended: float | None = None


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run: early stopping, a learning-rate change, an interruption."""

    time: float
    kind: str
    message: str
    step: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeriesBatch:
    """Points of one metric of one run, in logging order, handed from a writer to the store."""

    key: str
    step: list[int]
    time: list[float]
    value: list[float]


@dataclass
class WriteBatch:
    """Everything one writer flush commits for one run, in one transaction."""

    run_id: str
    series: list[SeriesBatch] = field(default_factory=list)
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    heartbeat: float | None = None
    state: str | None = None
    ended: float | None = None
    events: list[RunEvent] = field(default_factory=list)
    labels: dict[str, Any] = field(default_factory=dict)  # name, notes, tags assigned on the live run

    def is_empty(self) -> bool:
        return (
            not self.series
            and not self.events
            and not self.labels
            and all(
                v is None for v in (self.config, self.summary, self.environment, self.heartbeat, self.state)
            )
        )


@dataclass(frozen=True)
class SweepMerge:
    """What `Store.import_sweep` writes for a sweep brought in by an import, in one transaction."""

    sweep: SweepRecord | None = None  # inserted whole: the store has no sweep with this id
    trials: tuple[TrialRecord, ...] = ()  # each inserted, or replacing the stored trial of its number
    state: tuple[str, float | None] | None = None  # the stored sweep's new (state, ended)

    def is_empty(self) -> bool:
        return self.sweep is None and not self.trials and self.state is None


def open_run_file(root: Path, name: str) -> BinaryIO:
    """Open `name` (``a/b.txt``) in a run's folder `root` for reading, through no symlink and only if it is a
    regular file; else `FileNotFoundError`. Each folder is opened relative to the last without following links,
    so a link swapped in after a listing is not followed either."""
    parts = name.split("/")
    if (
        not name
        or os.path.isabs(name)
        or (os.sep == "\\" and "\\" in name)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise FileNotFoundError(f"{name!r} is not a file name inside the run's folder")
    nofollow = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    )  # a FIFO must not block
    try:
        if os.open in os.supports_dir_fd:
            folder = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                for part in parts[:-1]:
                    inner = os.open(part, nofollow | getattr(os, "O_DIRECTORY", 0), dir_fd=folder)
                    os.close(folder)
                    folder = inner
                fd = os.open(parts[-1], nofollow, dir_fd=folder)
            finally:
                os.close(folder)
        else:  # no dir_fd (Windows): check every step with lstat first
            path = root
            for part in parts:
                path = path / part
                if path.is_symlink():
                    raise FileNotFoundError(f"{name!r} is reached through a symlink")
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:  # ELOOP (a link), ENOTDIR, ENOENT...
        raise FileNotFoundError(f"{name!r} is not a regular file of the run ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(f"{name!r} is not a regular file of the run")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def effective_state(
    state: str, host: str, pid: int, heartbeat: float | None, now: float | None = None
) -> str:
    """The state a reader reports: a ``running`` run whose writer is gone reads as ``crashed``.

    Gone means its heartbeat is stale, or it ran on this host and its process no longer exists.
    """
    if state != "running":
        return state
    now = time.time() if now is None else now
    if heartbeat is not None and not isinstance(heartbeat, (int, float)):
        return "crashed"  # a bad record (a heartbeat held as text): no writer can be seen alive
    if heartbeat is not None and now - heartbeat > HEARTBEAT_STALE_SECONDS:
        return "crashed"
    if host == socket.gethostname() and isinstance(pid, int) and pid and not _process_exists(pid):
        return "crashed"
    return state


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class Store(ABC):
    """Where runs live. Open one with `nbtrack.store.open_store`."""

    #: Human-readable location (a directory, a URL without password) used in every message.
    location: str

    # -- how long a write waits for another process's lock ------------------------------------------
    @contextlib.contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Writes of this thread inside the block wait at most `seconds` for a lock another process holds,
        then raise `StoreLockedError` (`init` and the run's writer; everything else waits as long as it takes)."""
        local = self.__dict__.setdefault("_lock_waits", threading.local())
        previous = getattr(local, "seconds", None)
        local.seconds = seconds
        try:
            yield
        finally:
            local.seconds = previous

    def lock_wait(self) -> float | None:
        """The bound `waiting_at_most` set for this thread, None outside it."""
        local = self.__dict__.get("_lock_waits")
        return getattr(local, "seconds", None) if local is not None else None

    # -- runs ---------------------------------------------------------------------------------------
    @abstractmethod
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
        """Insert a new ``running`` run; assign ``adjective-noun-N`` (N per project) when `name` is None."""

    @abstractmethod
    def get_run(self, ref: str, project: str | None = None) -> RunRecord:
        """The run whose id, or name, is `ref`; ``latest`` is the newest run. Raises `RunNotFoundError`."""

    @abstractmethod
    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        """Runs, newest first."""

    @abstractmethod
    def search_runs(self, query: RunQuery, *, environment: bool = False) -> list[RunRecord]:
        """Runs matching `query.where`, in `query.order` (then newest first, then by id), with the semantics of
        `nbtrack.store.query.evaluate` and `sort_records`. Records carry an empty environment unless `environment`."""

    @abstractmethod
    def count_runs(self, query: RunQuery) -> int:
        """How many runs match `query.where` (ignoring its limit and offset)."""

    def search_runs_counted(self, query: RunQuery) -> tuple[list[RunRecord], int]:
        """`search_runs` and, in the same read where the backend can, how many match without the limit."""
        records = self.search_runs(query)
        if query.limit is None and not query.offset:
            return records, len(records)
        return records, self.count_runs(query)

    @abstractmethod
    def projects(self) -> list[ProjectInfo]:
        """Every project with its run count, newest run time and running count, most recently active first."""

    @abstractmethod
    def keys(self, scope: str, project: str | None = None) -> list[str]:
        """The top-level keys of ``config`` or ``summary`` (`scope`) that any run (in `project`) has, sorted."""

    # -- sweeps ------------------------------------------------------------------------------------
    @abstractmethod
    def create_sweep(
        self, *, sweep_id: str, project: str, name: str, config: dict[str, Any], method: str, created: float
    ) -> SweepRecord:
        """Record a new ``running`` sweep."""

    @abstractmethod
    def get_sweep(self, ref: str) -> SweepRecord:
        """The sweep whose id, or name, is `ref`. Raises `RunNotFoundError`."""

    @abstractmethod
    def list_sweeps(self, project: str | None = None) -> list[SweepRecord]:
        """Sweeps, newest first."""

    @abstractmethod
    def set_sweep_state(self, sweep_id: str, state: str, ended: float | None = None) -> None:
        """Mark a sweep running, finished or stopped."""

    @abstractmethod
    def claim_trial(self, sweep_id: str, worker: str, propose: Any) -> TrialRecord | None:
        """Atomically add the sweep's next trial, or return None when the sweep has none left.

        In one transaction (no two workers ever get the same trial): ``running`` trials whose run is gone are
        marked ``crashed``; `propose(trials)` gets every trial so far and returns ``(params, grid_index)`` for
        the next one, or None; the new trial is stored ``running`` under `worker` with the next number."""

    @abstractmethod
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
        """Attach a trial's run, or record how it ended and its metric."""

    @abstractmethod
    def record_rung(self, sweep_id: str, number: int, rung: int, value: float) -> list[float]:
        """Store a trial's metric at a Hyperband rung; returns the other trials' values at that rung."""

    @abstractmethod
    def trials(self, sweep_id: str) -> list[TrialRecord]:
        """The sweep's trials in order."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove a run, its metrics and its files."""

    @abstractmethod
    def write_batch(self, batch: WriteBatch) -> None:
        """Commit one writer flush (points, changed config/summary/environment, heartbeat, state) atomically.

        Raises `RunNotFoundError`, writing nothing, when the run is not in the store (deleted while it ran,
        by ``nbtrack rm --force``): a deleted run's later points must not leave rows no run owns.
        """

    # -- metrics ------------------------------------------------------------------------------------
    @abstractmethod
    def metric_stats(self, run_id: str) -> dict[str, MetricStats]:
        """Per-metric count, last, min, max and step range."""

    @abstractmethod
    def history(self, run_id: str, key: str, samples: int | None = None) -> History:
        """One metric's points; reduced to at most `samples` by min/max buckets when given."""

    @abstractmethod
    def events(self, run_id: str) -> list[RunEvent]:
        """The run's events, oldest first."""

    # -- files --------------------------------------------------------------------------------------
    @abstractmethod
    def run_dir(self, run_id: str) -> Path:
        """A local directory for the run's files (created on demand)."""

    def list_files(self, run_id: str) -> list[FileInfo]:
        """The regular files in the run's folder; symlinks are never followed (a link to ~/.ssh is not a file
        of the run)."""
        root = self.run_dir(run_id)
        if not root.is_dir():
            return []
        found = []
        for folder, _dirs, names in os.walk(root):  # os.walk does not descend into linked folders
            for name in names:
                path = Path(folder, name)
                try:
                    info = path.lstat()
                except (
                    FileNotFoundError
                ):  # renamed or removed while listing (a `.partial` file moved into place)
                    continue
                if stat.S_ISREG(info.st_mode):
                    found.append(FileInfo(path.relative_to(root).as_posix(), info.st_size))
        return sorted(found, key=lambda f: f.name.split("/"))

    # -- imports (nbtrack.share.bundle) ------------------------------------------------------------------
    def import_run(
        self,
        record: RunRecord,
        series: Callable[[], Iterator[list[SeriesBatch]]],
        events: Sequence[RunEvent],
        place_files: Callable[[], None],
    ) -> bool:
        """Write a whole run, as it ended elsewhere, in one transaction: its record (state, times, summary,
        environment), every batch of `series()` and its events; `place_files()` moves its files into
        `run_dir` last, before the commit. Returns False, writing nothing, when the store has a run with this id
        (another import got there first). A transaction retried from the start calls `series` again."""
        raise NotImplementedError(f"{type(self).__name__} cannot import runs")

    def import_sweep(
        self, sweep_id: str, merge: Callable[[SweepRecord | None, list[TrialRecord]], SweepMerge]
    ) -> bool:
        """In one transaction that no other change to the sweep interleaves with: read the sweep (None when
        absent) and its trials, and write what `merge` returns (it may raise to write nothing). True when
        anything was written."""
        raise NotImplementedError(f"{type(self).__name__} cannot import sweeps")

    # -- lifetime -----------------------------------------------------------------------------------
    def release_thread(self) -> None:  # noqa: B027 - optional: backends without per-thread connections skip it
        """Close the calling thread's connection, if it has one (a run's writer thread, as it ends)."""

    @abstractmethod
    def close(self) -> None:
        """Close this thread's and every other thread's connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def histories(self, run_id: str, keys: Iterable[str], samples: int | None = None) -> dict[str, History]:
        return {key: self.history(run_id, key, samples) for key in keys}
