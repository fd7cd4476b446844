"""The run's background writer: batches what `Run.log` queued and commits it at least once a second.

The training thread appends each `log` call's values to per-metric columns under a short lock; this thread
swaps the columns out and hands one `WriteBatch` to the store per flush, together with changed config/summary, the
environment (captured here, off the training thread) and the heartbeat. A failing flush is warned about
once and retried with everything it held, backing off up to `MAX_BACKOFF_SECONDS` while the store is away (a
database server restarting); nothing raises into the training loop. At `finish` the writer keeps trying for
`FINAL_FLUSH_SECONDS`; if the store is still unreachable, what it holds is spilled to a local file
(``nbtrack push FILE`` writes it to the store later) and the warning says where. The side work after a good
flush (appending output.log) failing never sends the committed points again: its lines wait for the next
flush, or go into a spill file at the end.
"""

from __future__ import annotations

import errno
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from nbtrack.common.series import append_columns
from nbtrack.errors import NbtrackWarning, RunNotFoundError
from nbtrack.store.base import HEARTBEAT_SECONDS, SeriesBatch, Store, StoreLockedError, WriteBatch

FLUSH_SECONDS = 0.5
# While a flush is under way and more than this many `log` calls have queued behind it, each call gives
# up the GIL once: a loop that never releases it (pure Python, no compiled step) would otherwise starve the
# write, which releases and retakes the GIL around every SQL row, and the queue would grow without bound.
BACKLOG_CALLS = 100_000
MAX_BACKOFF_SECONDS = 5.0
FINAL_FLUSH_SECONDS = 60.0  # $NBTRACK_FINAL_FLUSH_SECONDS overrides
# One flush waits at most this long for a write lock another process holds (a long import, a user's sqlite3
# shell), then keeps its points and retries: `finish` must keep to its own deadline, not the lock holder's.
LOCK_WAIT_SECONDS = 2.0


def final_flush_seconds() -> float:
    import os

    try:
        return float(os.environ.get("NBTRACK_FINAL_FLUSH_SECONDS", FINAL_FLUSH_SECONDS))
    except ValueError:
        return FINAL_FLUSH_SECONDS


BACKGROUND_JOIN_SECONDS = (
    1.0  # how long `close(background=True)` waits before leaving the flush to its thread
)
_background: set[RunWriter] = set()  # writers whose final flush went on in the background


def wait_for_background_writers() -> None:
    """Wait for final flushes left to run in the background (each keeps to its own deadline, then spills)."""
    for writer in list(_background):
        writer._thread.join(final_flush_seconds() + 2 * LOCK_WAIT_SECONDS + 10.0)
        _background.discard(writer)


class RunWriter:
    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        collect_metadata: Callable[[bool], dict[str, Any]],
        on_first_flush: Callable[[], dict[str, Any]] | None = None,
        after_flush: Callable[[], None] | None = None,
        unwritten_output: Callable[[], list[str]] | None = None,
        interval: float | None = None,
        create: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        # `create_run`'s arguments while the run is not in the store yet (its write lock was held at `init`)
        self._create = create
        # Per-metric columns (steps, times, values), grouped as they are logged so this thread does no
        # per-point Python work and commits on time even while the training thread keeps the GIL busy. The
        # lock makes "append to the columns" and "take the columns" exclusive: no point is lost between them.
        self._lock = threading.Lock()
        self._taking = False  # the writer is waiting for the lock
        self._writing = False  # the writer holds columns it took and has not written yet
        self._columns: dict[str, tuple[list[int], list[float], list[float]]] = {}
        self._calls = 0
        self._collect_metadata = collect_metadata
        self._on_first_flush = on_first_flush
        self._after_flush = after_flush  # side work of each flush (appending output.log), on this thread
        self._unwritten_output = unwritten_output  # the lines `after_flush` could not write yet, taken
        self._interval = FLUSH_SECONDS if interval is None else interval
        self._carry: dict[str, tuple[list[int], list[float], list[float]]] = {}  # a failed flush's points
        self._carry_calls = 0
        self._carry_meta: dict[str, Any] = {}
        self._last_heartbeat = 0.0
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._generation = 0  # completed flushes
        self._final: dict[str, Any] | None = None
        self._warned = False
        self._failures = 0  # consecutive failed flushes (the wait between retries grows with them)
        self.spilled: str | None = None  # the file holding what could not be written at finish
        self.error: BaseException | None = None  # last flush error, None after a good flush
        self.deleted = False  # the run was deleted from the store while it ran: nothing more is written
        self._extra: dict[str, Any] | None = (
            None  # what `on_first_flush` produced, picked up by the next flush
        )
        self._thread = threading.Thread(target=self._loop, name=f"nbtrack-writer-{run_id}", daemon=True)
        self._thread.start()
        # Slow captures (package list, git) run beside the writer so flushing starts at once.
        self._side = None
        if on_first_flush is not None:
            self._side = threading.Thread(target=self._capture, name=f"nbtrack-capture-{run_id}", daemon=True)
            self._side.start()

    # -- called from the training thread (and the system sampler's) ---------------------------------
    def append(self, step: int, when: float, values: dict[str, float]) -> None:
        """Queue one `log` call's values at `step` and wall time `when`."""
        if self._taking or (self._writing and self._calls > BACKLOG_CALLS):
            # The writer waits for the lock (a plain Lock is not fair: a busy training thread would take it
            # again before the writer is scheduled, for seconds), or is writing with a backlog growing behind
            # it. Give up the GIL once so the writer gets it.
            time.sleep(0)
        with self._lock:
            try:
                append_columns(self._columns, step, when, values)
            except BaseException:  # a KeyboardInterrupt between a point's step and its value: drop the half
                _even_out(self._columns)
                raise
            self._calls += 1

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued before this call is committed; False if that failed or timed out."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            target = self._generation + 2  # the flush running now may have swapped its list before our data
            while self._generation < target and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._flushed.wait(min(remaining, 0.05))
        return self.error is None

    def close(
        self, state: str, ended: float, timeout: float | None = None, *, background: bool = False
    ) -> None:
        """Final flush with the run's end state, then stop the thread (by the final flush's deadline).

        With `background`, return after a moment even if the flush is still trying; the thread goes on, and
        `wait_for_background_writers` (at exit) waits for it."""
        if timeout is None:
            timeout = final_flush_seconds() + 2 * LOCK_WAIT_SECONDS + 10.0
        if self._side is not None:
            self._side.join(timeout)
        self._final = {"state": state, "ended": ended}
        self._wake.set()
        if background:
            self._thread.join(BACKGROUND_JOIN_SECONDS)
            if self._thread.is_alive():
                _background.difference_update([w for w in _background if not w.alive])
                _background.add(self)
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._warn(TimeoutError(f"the final flush took longer than {timeout:.0f} s"))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------------------
    def _capture(self) -> None:
        try:
            self._extra = self._on_first_flush()  # type: ignore[misc]
        except Exception as exc:
            self._warn(exc)

    def _loop(self) -> None:
        while True:
            wait = (
                self._interval
                if not self._failures
                else min(self._interval * 2**self._failures, MAX_BACKOFF_SECONDS)
            )
            self._wake.wait(wait)
            self._wake.clear()
            final = self._final
            if final is None:
                self._flush_once()
                continue
            deadline = time.monotonic() + final_flush_seconds()
            pause = 0.2
            while not self._flush_once(final):
                if time.monotonic() >= deadline:
                    self._spill(final)
                    break
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
            try:  # this thread's store connection ends with it (a sweep runs thousands of runs on one store)
                self.store.release_thread()
            except Exception:
                pass
            with self._flushed:
                self._generation += 1
                self._flushed.notify_all()
            return

    def _flush_once(self, final: dict[str, Any] | None = None) -> bool:
        self._taking = True
        with self._lock:
            columns, self._columns = self._columns, {}
            calls, self._calls = self._calls, 0
        self._taking = False
        if self.deleted:
            return self._discard(final)
        if self._carry:
            columns = merge_columns(self._carry, columns)
            calls += self._carry_calls
        meta = self._carry_meta
        if self._extra is not None:
            meta.update(self._extra)
            self._extra = None
        self._writing = True  # until the batch is written, a growing backlog slows `append` down
        try:
            fresh = self._collect_metadata(bool(columns))
            if "events" in meta and "events" in fresh:  # events of a failed flush go first
                fresh["events"] = meta["events"] + fresh["events"]
            if "labels" in meta and "labels" in fresh:  # a rename after a failed flush keeps its tags change
                fresh["labels"] = {**meta["labels"], **fresh["labels"]}
            meta.update(fresh)
            series = [SeriesBatch(key, *column) for key, column in columns.items()]
            batch = WriteBatch(self.run_id, series=series, **meta)
            now = time.time()
            if final is not None:
                batch.state, batch.ended, batch.heartbeat = final["state"], final["ended"], now
            elif now - self._last_heartbeat >= HEARTBEAT_SECONDS:
                batch.heartbeat = now
            with self.store.waiting_at_most(LOCK_WAIT_SECONDS):
                if self._create is not None:
                    self.store.create_run(**self._create)
                    self._create = None
                self.store.write_batch(batch)
            if batch.heartbeat is not None:
                self._last_heartbeat = now
        except RunNotFoundError:
            self._writing = False
            self.deleted = True
            warnings.warn(
                f"nbtrack: run {self.run_id} was deleted from {self.store.location} while it ran "
                "(nbtrack rm --force): what it logs from now on is not recorded. Training goes on.",
                NbtrackWarning,
                stacklevel=1,
            )
            return self._discard(final)
        except Exception as exc:
            self._writing = False
            self._carry, self._carry_calls, self._carry_meta = columns, calls, meta
            self.error = exc
            self._failures += 1
            self._warn(exc)
            ok = False
        else:
            self._writing = False
            self._carry, self._carry_calls, self._carry_meta = {}, 0, {}
            self.error = None
            self._failures = 0
            ok = True
            if self._after_flush is not None:
                try:  # the points are committed: a failure here must not send them again
                    self._after_flush()
                except Exception as exc:
                    self._warn(exc, what=f"the output of run {self.run_id} to {self.store.location}")
                    if final is not None:
                        self._spill_output(exc)
        if final is None:
            with self._flushed:
                self._generation += 1
                self._flushed.notify_all()
        return ok

    def _discard(self, final: dict[str, Any] | None) -> bool:
        """A deleted run: drop what was queued (its output too), so nothing recreates it; the flush is done."""
        self._carry, self._carry_calls, self._carry_meta, self._extra = {}, 0, {}, None
        self.error = None
        if self._unwritten_output is not None:
            self._unwritten_output()
        if final is None:  # the final flush's loop counts its own
            with self._flushed:
                self._generation += 1
                self._flushed.notify_all()
        return True

    def _spill(self, final: dict[str, Any]) -> None:
        """The store stayed away past the final flush's patience: keep what it could not take in a local file."""
        from nbtrack.run.spill import push_command, write_spill

        meta = dict(self._carry_meta)
        meta.update(final)
        if self._create is not None:  # the run itself never reached the store: `nbtrack push` creates it
            meta["create"] = {**self._create, "tags": list(self._create["tags"])}
        output = self._unwritten_output() if self._unwritten_output is not None else []
        if output:
            meta["output"] = output
        lines = f", {len(output)} lines of its output" if output else ""
        try:
            path = write_spill(self.store.location, self.run_id, self._carry, meta)
        except Exception as exc:  # even the local disk failed: say what is lost
            warnings.warn(
                f"nbtrack could not save the end of run {self.run_id} to {self.store.location} ({self.error}) nor "
                f"to a local file ({exc}); {self._carry_calls} log calls{lines} are not on disk.",
                NbtrackWarning,
                stacklevel=1,
            )
            return
        self.spilled = str(path)
        warnings.warn(
            f"nbtrack could not write to {self.store.location} for {final_flush_seconds():g} s ({self.error}). "
            f"The end of run {self.run_id} ({self._carry_calls} log calls{lines}, its state and summary) is kept "
            f"in {path}; when the store is back, write it there with: {push_command(self.store.location, path)}",
            NbtrackWarning,
            stacklevel=1,
        )

    def _spill_output(self, error: BaseException) -> None:
        """The run ended in the store, but its last output lines could not be appended: keep them in a file."""
        from nbtrack.run.spill import push_command, write_spill

        output = self._unwritten_output() if self._unwritten_output is not None else []
        if not output:
            return
        where = f"run {self.run_id}'s output.log in {self.store.location}"
        try:
            path = write_spill(self.store.location, self.run_id, {}, {"output": output})
        except Exception as exc:
            warnings.warn(
                f"nbtrack could not append {len(output)} lines to {where} ({error}) nor save them to a local file "
                f"({exc}); they are not on disk.",
                NbtrackWarning,
                stacklevel=1,
            )
            return
        self.spilled = str(path)
        warnings.warn(
            f"nbtrack could not append {len(output)} lines to {where} ({error}). They are kept in {path}; when "
            f"there is room, add them with: {push_command(self.store.location, path)}",
            NbtrackWarning,
            stacklevel=1,
        )

    def _warn(self, exc: BaseException, what: str | None = None) -> None:
        if self._warned:
            return
        if isinstance(exc, StoreLockedError) and self._failures < 2:
            return  # another process's transaction a little longer than one wait: ordinary, not worth a warning
        self._warned = True
        what = what or f"run {self.run_id} to {self.store.location}"
        full = getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc)
        warnings.warn(
            f"nbtrack could not write {what} ({type(exc).__name__}: {exc}). "
            + ("The disk is full: free some space there and nbtrack resumes writing. " if full else "")
            + "Training goes on; nbtrack keeps the data in memory and retries every "
            f"{self._interval:g}-{MAX_BACKOFF_SECONDS:g} s. This warning is shown once.",
            NbtrackWarning,
            stacklevel=1,
        )


def _even_out(columns: dict[str, tuple[list[int], list[float], list[float]]]) -> None:
    """Cut each metric's columns to their shortest: a KeyboardInterrupt inside `append_columns` can leave a
    point half-appended (its step without its value), which would shift every later point of that metric."""
    for step, when, value in columns.values():
        n = min(len(step), len(when), len(value))
        for column in (step, when, value):
            del column[n:]


def merge_columns(
    first: dict[str, tuple[list[int], list[float], list[float]]],
    then: dict[str, tuple[list[int], list[float], list[float]]],
) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """Columns of `first` followed by those of `then`, per metric, in logging order."""
    merged = {key: (list(a), list(b), list(c)) for key, (a, b, c) in first.items()}
    for key, (steps, times, values) in then.items():
        column = merged.setdefault(key, ([], [], []))
        column[0].extend(steps)
        column[1].extend(times)
        column[2].extend(values)
    return merged
