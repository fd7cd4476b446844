"""Bundles: runs exported to one zip file, imported into another store, or synced store to store.

    from nbtrack.share.bundle import export_runs, import_bundle
    export_runs(["latest", "lyric-dream-3"], "runs.nbtrack.zip", store)
    import_bundle("runs.nbtrack.zip", other_store)   # ImportResult(imported=[...], skipped=[...])

Nothing is lost: a run's record (id, name, project, state, created, ended, heartbeat, host, pid, notes, tags,
config, summary, environment), every metric's full history (``system/...`` series included) with NaN and ±inf
kept bit for bit, its events, all its files, and the sweep it is a trial of (the sweep and all its trials).

Format, version 1. A zip file (``.nbtrack.zip``) holding::

    manifest.json                    {"format": "nbtrack-bundle", "version": 1, "created": ISO 8601 UTC,
                                      "nbtrack_version", "runs": [{"id", "name", "project", "state"}],
                                      "sweeps": [sweep ids],
                                      "members": {member path: {"sha256", "size"}} (every other member)}
    runs/<run id>/run.json           {"record": {RunRecord fields}, "events": [{time, kind, message, step, data}],
                                      "metrics": [{"key", "count", "folder": "metrics/<n>"}],
                                      "files": [{"name", "size"}]}
    runs/<run id>/metrics/<n>/step.npy   int64 global steps      (NumPy .npy, little-endian; one folder per
    runs/<run id>/metrics/<n>/time.npy   float64 wall times (s)   metric, numbered in run.json's order, so
    runs/<run id>/metrics/<n>/value.npy  float64 values           keys such as ``system/cpu/0_percent`` are safe)
    runs/<run id>/files/<name>       the run's files as stored (output.log, model-best.keras, artifacts/...)
    sweeps/<sweep id>.json           {"sweep": {SweepRecord fields}, "trials": [{TrialRecord fields}]}

JSON members are strict JSON as `nbtrack.store.query.dump_json` writes it: NaN as ``{"$float": "NaN"}``, ±inf as
``±1e999``. A reader refuses, before writing anything: a bundle whose version is newer than it knows, any member
whose sha256 or size differs from the manifest, any member path that is absolute or climbs out (``..``), run and
sweep ids that nbtrack does not make (8 characters of a-z and 0-9; sweeps 8 hex digits) or that name another
run or sweep of the store (``latest``, or a local run's name: an id is never a name), times that are not times
(NaN, infinite, text, before 1970 or after 9999, a run that ends before it starts), an environment whose fields
have the wrong types, and JSON members larger than their compressed size makes plausible (a zip bomb).
Metrics are read in slices, so an import's memory does not grow with a bundle's size.

Importing skips runs whose id the store already has (ids are the identity; a name may repeat). Each run is
written in one transaction, its files moved into place just before the commit, so a run is in the store whole
or not at all: two imports of one bundle at once write it once (the other reports it as already there), and an
import killed at any point leaves nothing that a later import mistakes for the run. If a write fails midway,
the runs the import had written are deleted again. A sweep is merged in one transaction too. `sync` is the same
path store to store, without a zip: each run it pushes stays pushed, so an interrupted sync resumes.

Export and sync never follow a symbolic link out of a run's folder: a link to a file inside the folder is
exported as that file's bytes, any other link is refused (the target's bytes never enter a bundle).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from nbtrack.common.values import clip
from nbtrack.errors import NbtrackError, RunNotFoundError
from nbtrack.store.base import (
    STATES,
    SWEEP_STATES,
    TRIAL_DONE,
    RunEvent,
    RunQuery,
    RunRecord,
    SeriesBatch,
    Store,
    SweepMerge,
    SweepRecord,
    TrialRecord,
)
from nbtrack.store.query import dump_json, load_json, parse

FORMAT = "nbtrack-bundle"
VERSION = 1
MANIFEST = "manifest.json"
# Points per store write: an import holds about this many points (as Python lists) in memory at a time.
_BATCH_POINTS = 250_000
_COPY_BYTES = 1 << 20
# The ids nbtrack makes: `nbtrack.common.names.new_run_id` and `nbtrack.sweeps.create` (secrets.token_hex(4)).
_RUN_ID = re.compile(r"[a-z0-9]{8}")
_SWEEP_ID = re.compile(r"[0-9a-f]{8}")
# A JSON member may hold this much, or this many times its compressed size (text compresses 3-20x; a zip bomb
# ~1000x). The manifest's own bound follows from the members the zip lists (see `_manifest_cap`).
_JSON_FLOOR = 4 << 20
_JSON_RATIO = 100
# Times are seconds since 1970 that a datetime can show: up to the end of year 9999.
_TIME_MAX = 253_402_300_799.0
_INT64 = (-(2**63), 2**63 - 1)


class BundleError(NbtrackError):
    """A bundle that cannot be read (corrupt, truncated, tampered with, from a newer nbtrack) or written."""


@dataclass(frozen=True)
class ImportResult:
    """What `import_bundle` did: run ids written, and run ids the store already had."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)  # sweep ids created or brought up to date


@dataclass(frozen=True)
class SyncResult:
    """What `sync` did: run ids pushed, already in the target, and left out because they are still running."""

    pushed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _File:
    name: str  # relative to the run's folder, with "/" separators
    size: int
    open: Callable[[], IO[bytes]]


Slices = Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (step, time, value) pieces of one metric


@dataclass(frozen=True)
class _RunData:
    """Everything one run is, read from a store or a bundle; `metrics()` yields (key, slices) lazily."""

    record: RunRecord
    metrics: Callable[[], Iterator[tuple[str, Slices]]]
    events: list[RunEvent]
    files: list[_File]


@dataclass(frozen=True)
class _SweepData:
    record: SweepRecord
    trials: list[TrialRecord]


# -- checking values (bundles and sync sources alike) -----------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _time_problem(value: Any, optional: bool = False) -> str | None:
    """Why `value` is not a time nbtrack stores (seconds since 1970 up to year 9999), or None."""
    if value is None and optional:
        return None
    if not _is_number(value):
        return f"{value!r} is not a number of seconds"
    if not math.isfinite(value) or not 0 <= value <= _TIME_MAX:
        return f"{value!r} is not a time between 1970 and 9999"
    return None


def _int_problem(value: Any, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{value!r} is not a whole number"
    if not _INT64[0] <= value <= _INT64[1]:
        return f"{value!r} does not fit in 64 bits"
    return None


# Environment fields the readers (`nbtrack show`, replicate) use, and the types they may hold.
_TEXT = (str, type(None))
_ENVIRONMENT_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "python": {"version": _TEXT, "implementation": _TEXT},
    "os": {"system": _TEXT, "release": _TEXT, "platform": _TEXT},
    "host": {"hostname": _TEXT, "user": _TEXT},
    "hardware": {
        "cpu_count": (int, type(None)),
        "cpu_model": _TEXT,
        "memory_total": (int, float, type(None)),
    },
    "program": {"notebook": _TEXT, "executable": _TEXT, "cwd": _TEXT},
    "git": {"root": _TEXT, "commit": _TEXT, "branch": _TEXT, "remote": _TEXT, "dirty": (bool, type(None))},
    "packages": {},
    "environment_variables": {},
    "seed": {},
}
_ENVIRONMENT_LISTS = {("hardware", "gpus"), ("program", "argv")}  # lists of text


def _environment_problem(env: dict[str, Any]) -> str | None:
    """Why `env` is not an environment as nbtrack captures it (see `nbtrack.capture.environment.capture`), or None."""
    if "started" in env and (problem := _time_problem(env["started"])):
        return f"environment.started: {problem}"
    for section, fields in _ENVIRONMENT_FIELDS.items():
        value = env.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"environment.{section} is {type(value).__name__}, not an object"
        for name, kinds in fields.items():
            item = value.get(name)
            if name not in value or (item is None and type(None) in kinds):
                continue
            if not isinstance(item, kinds) or (isinstance(item, bool) and bool not in kinds):
                return f"environment.{section}.{name} is {clip(repr(item), 80)}"
        textual = section in ("packages", "environment_variables") and "error" not in value
        if textual and not all(isinstance(v, str) for v in value.values()):
            return f"environment.{section} holds a value that is not text"
    for section, name in _ENVIRONMENT_LISTS:
        items = (env.get(section) or {}).get(name)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items)):
            return f"environment.{section}.{name} is not a list of text"
    memory = (env.get("hardware") or {}).get("memory_total")
    if memory is not None and not (math.isfinite(memory) and memory >= 0):
        return f"environment.hardware.memory_total is {memory!r}"
    return None


def _record_problem(record: RunRecord) -> str | None:
    """Why `record` is not a run nbtrack could have stored, or None: types, times, ids."""
    checks: tuple[tuple[bool, str], ...] = (
        (isinstance(record.id, str) and bool(_RUN_ID.fullmatch(record.id)), "an id nbtrack does not make"),
        (isinstance(record.project, str) and bool(record.project), "no project"),
        (isinstance(record.name, str) and bool(record.name), "no name"),
        (record.state in STATES, f"an unknown state {record.state!r}"),
        (isinstance(record.host, str), f"a host {record.host!r} that is not text"),
        (record.notes is None or isinstance(record.notes, str), "notes that are not text"),
        (
            isinstance(record.tags, tuple) and all(isinstance(t, str) for t in record.tags),
            "tags that are not text",
        ),
        (
            all(isinstance(x, dict) for x in (record.config, record.summary, record.environment)),
            "a config, summary or environment that is not an object",
        ),
    )
    for ok, why in checks:
        if not ok:
            return f"the run has {why}"
    for name, value, optional in (
        ("created", record.created, False),
        ("ended", record.ended, True),
        ("heartbeat", record.heartbeat, True),
    ):
        if problem := _time_problem(value, optional):
            return f"its {name} time {problem}"
    if problem := _int_problem(record.pid):
        return f"its pid {problem}"
    if record.ended is not None and record.ended < record.created:
        return f"it ends ({record.ended!r}) before it starts ({record.created!r}): a negative duration"
    return _environment_problem(record.environment)


def _event_problem(event: RunEvent) -> str | None:
    if problem := _time_problem(event.time):
        return f"an event's time {problem}"
    if problem := _int_problem(event.step, optional=True):
        return f"an event's step {problem}"
    return None


def _sweep_problem(sweep: _SweepData) -> str | None:
    record = sweep.record
    if not _SWEEP_ID.fullmatch(record.id):
        return f"the sweep id {record.id!r} is not one nbtrack makes (8 hex digits)"
    if record.state not in SWEEP_STATES:
        return f"an unknown sweep state {record.state!r}"
    for name, value, optional in (("created", record.created, False), ("ended", record.ended, True)):
        if problem := _time_problem(value, optional):
            return f"the sweep's {name} time {problem}"
    for t in sweep.trials:
        if problem := _int_problem(t.number):
            return f"a trial number {problem}"
        for name, value, optional in (("created", t.created, False), ("ended", t.ended, True)):
            if problem := _time_problem(value, optional):
                return f"trial {t.number}'s {name} time {problem}"
        if problem := _int_problem(t.grid_index, optional=True):
            return f"trial {t.number}'s grid index {problem}"
        if t.grid_index is not None and not 0 <= t.grid_index < 2**31:  # PostgreSQL keeps it in an INTEGER
            return f"trial {t.number}'s grid index {t.grid_index} is not a grid point (0 to 2**31 - 1)"
        if t.state not in STATES:  # a trial ends as its run did
            return f"trial {t.number} has an unknown state {t.state!r}"
        if t.run_id is not None and not (isinstance(t.run_id, str) and _RUN_ID.fullmatch(t.run_id)):
            return f"trial {t.number} names a run id {t.run_id!r} that nbtrack does not make"
        if t.value is not None and not _is_number(t.value):
            return f"trial {t.number}'s value {t.value!r} is not a number"
        if any(not k.isdigit() or len(k) > 9 or not _is_number(v) for k, v in t.rungs.items()):
            return f"trial {t.number} has a Hyperband rung that is not (epochs, number)"
    return None


# -- reading a store --------------------------------------------------------------------------------
def _run_files(root: Path, run: str) -> list[_File]:
    """The files under `root`, without following a symbolic link out of it.

    A link to a file inside the folder is read as that file; a link that leaves the folder (or dangles, or
    names a directory outside) is refused: a bundle never carries what lies outside a run."""
    if not root.is_dir():
        return []
    real_root = root.resolve()
    out: list[_File] = []
    for folder, dirs, names in os.walk(root, onerror=_raise, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs):
            path = here / name
            if path.is_symlink() and not _inside(path, real_root):
                raise _link_error(run, root, path)
        for name in sorted(names):
            path = here / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                if not _inside(path, real_root) or not path.resolve().is_file():
                    raise _link_error(run, root, path)
                source = path.resolve()
            elif stat.S_ISREG(mode):
                source = path
            else:
                continue  # sockets, FIFOs: not files a run has
            relative = PurePosixPath(*path.relative_to(root).parts).as_posix()
            out.append(_File(relative, source.stat().st_size, lambda p=source: _open_no_follow(p)))
    return sorted(out, key=lambda f: f.name)


def _raise(error: OSError) -> None:
    raise error  # a folder that cannot be listed: its files would be missing from the copy


def _inside(path: Path, real_root: Path) -> bool:
    return real_root in path.resolve().parents


def _open_no_follow(path: Path) -> IO[bytes]:
    """Open a regular file, refusing a link swapped in since the folder was listed."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _link_error(run: str, root: Path, path: Path) -> BundleError:
    target = os.readlink(path)
    return BundleError(
        f"Run {run}'s file {path.relative_to(root)} is a symbolic link to {target}, outside the run's folder "
        f"{root}: nbtrack never copies what lies outside a run into a bundle or another store. Replace the "
        "link with a copy of the file (or delete it) and try again."
    )


def _store_run(store: Store, record: RunRecord) -> _RunData:
    keys = list(store.metric_stats(record.id))

    def metrics() -> Iterator[tuple[str, Slices]]:
        for key in keys:
            history = store.history(record.id, key)
            yield key, iter([(history.step, history.time, history.value)])

    files = _run_files(store.run_dir(record.id), f"{record.name} ({record.id})")
    return _RunData(record, metrics, store.events(record.id), files)


def _sweeps_of(store: Store, run_ids: Iterable[str]) -> list[_SweepData]:
    """The sweeps that any of `run_ids` is a trial of, each with all its trials."""
    wanted = set(run_ids)
    out = []
    for sweep in store.list_sweeps():
        trials = store.trials(sweep.id)
        if any(t.run_id in wanted for t in trials):
            out.append(_SweepData(sweep, trials))
    return out


def _resolve(store: Store, runs: Iterable[Any], project: str | None = None) -> list[RunRecord]:
    """Full records (environment included) of `runs`: ids, names, ``"latest"``, records or run objects."""
    if isinstance(runs, (str, RunRecord)) or hasattr(runs, "id"):
        runs = [runs]
    records: dict[str, RunRecord] = {}
    for ref in runs:
        rid = ref if isinstance(ref, str) else getattr(ref, "id", None)
        if not isinstance(rid, str):
            raise TypeError(f"export_runs: expected run ids, names or runs, got {type(ref).__name__}")
        record = store.get_run(rid, project)
        records.setdefault(record.id, record)
    return list(records.values())


def _open(store: Any, *, create: bool) -> tuple[Store, bool]:
    """(store, whether we opened it and so must close it)."""
    if isinstance(store, Store):
        return store, False
    from nbtrack.store import open_store

    return open_store(store, create=create), True


# -- writing a bundle -------------------------------------------------------------------------------
def _npy(array: np.ndarray, dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=dtype), allow_pickle=False)
    return buffer.getvalue()


def _record_json(record: RunRecord) -> dict[str, Any]:
    out = asdict(record)
    out["tags"] = list(record.tags)
    return out


def _event_json(event: RunEvent) -> dict[str, Any]:
    return {
        "time": event.time,
        "kind": event.kind,
        "message": event.message,
        "step": event.step,
        "data": event.data,
    }


class _ZipWriter:
    """Members written one by one, each hashed on the way in, then the manifest naming them all."""

    def __init__(self, target: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.members: dict[str, dict[str, Any]] = {}

    def write(self, name: str, data: bytes) -> None:
        self.zip.writestr(name, data)
        self.members[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def copy(self, name: str, source: IO[bytes]) -> None:
        digest, size = hashlib.sha256(), 0
        with self.zip.open(name, "w", force_zip64=True) as out:
            while chunk := source.read(_COPY_BYTES):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        self.members[name] = {"sha256": digest.hexdigest(), "size": size}

    def add_run(self, run: _RunData) -> None:
        folder = f"runs/{run.record.id}"
        metrics = []
        for n, (key, slices) in enumerate(run.metrics()):
            parts = list(slices)
            step, tm, value = (
                np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(3)
            )
            sub = f"metrics/{n}"
            self.write(f"{folder}/{sub}/step.npy", _npy(step, "<i8"))
            self.write(f"{folder}/{sub}/time.npy", _npy(tm, "<f8"))
            self.write(f"{folder}/{sub}/value.npy", _npy(value, "<f8"))
            metrics.append({"key": key, "count": len(value), "folder": sub})
        files = []
        for item in run.files:
            with item.open() as source:
                self.copy(f"{folder}/files/{item.name}", source)
            files.append({"name": item.name, "size": self.members[f"{folder}/files/{item.name}"]["size"]})
        document = {
            "record": _record_json(run.record),
            "events": [_event_json(e) for e in run.events],
            "metrics": metrics,
            "files": files,
        }
        self.write(f"{folder}/run.json", dump_json(document).encode())

    def add_sweep(self, sweep: _SweepData) -> None:
        document = {"sweep": asdict(sweep.record), "trials": [asdict(t) for t in sweep.trials]}
        self.write(f"sweeps/{sweep.record.id}.json", dump_json(document).encode())

    def finish(self, runs: list[RunRecord], sweeps: list[_SweepData]) -> None:
        from nbtrack.common.version import __version__

        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created": _iso_now(),
            "nbtrack_version": __version__,
            "runs": [{"id": r.id, "name": r.name, "project": r.project, "state": r.state} for r in runs],
            "sweeps": [s.record.id for s in sweeps],
            "members": self.members,
        }
        self.zip.writestr(MANIFEST, json.dumps(manifest, indent=1, allow_nan=False, ensure_ascii=False))
        self.zip.close()


def _iso_now() -> str:
    stamp = _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


def export_runs(runs: Iterable[Any] | Any, path: str | os.PathLike[str], store: Any = None) -> Path:
    """Write `runs` (ids, names, ``"latest"``, or run objects) with their sweeps to the bundle at `path`.

    The file appears whole or not at all. Returns its path.

        export_runs(nbtrack.runs(project="mnist"), "mnist.nbtrack.zip", "nbtrack-runs")

    Raises:
        RunNotFoundError: a run is not in the store.
        BundleError: no runs were given, a run's folder holds a link leading out of it, or the file cannot be
            written.
    """
    opened, close = _open(store, create=False)
    try:
        records = _resolve(opened, runs)
        if not records:
            raise BundleError("Nothing to export: no runs were given (or none matched).")
        target = Path(path).expanduser().absolute()
        sweeps = _sweeps_of(opened, [r.id for r in records])
        data = [_store_run(opened, record) for record in records]  # refuses a link out before writing
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as exc:
            raise BundleError(f"Cannot write the bundle {target}: {exc.strerror or exc}.") from None
        try:
            with os.fdopen(handle, "wb") as out:
                writer = _ZipWriter(out)
                for run in data:
                    writer.add_run(run)
                for sweep in sweeps:
                    writer.add_sweep(sweep)
                writer.finish(records, sweeps)
            os.replace(temporary, target)
        except OSError as exc:
            raise BundleError(f"Cannot write the bundle {target}: {exc.strerror or exc}.") from None
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return target
    finally:
        if close:
            opened.close()


# -- reading a bundle -------------------------------------------------------------------------------
def _safe_member(name: str) -> bool:
    """A relative path of plain segments: nothing absolute, no ``..``, no backslash or drive letter."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or re.match(r"[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


class _Counted:
    """A stream that counts the bytes read from it (where an .npy header ends)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


class _BundleReader:
    """A bundle opened and checked whole (`check`) before anything is handed out."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.label = str(self.path)
        if not self.path.is_file():
            raise BundleError(f"No bundle at {self.label}: the file does not exist.")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise self.error(f"it is not a readable zip file ({exc})") from None
        self.infos = {info.filename: info for info in self.zip.infolist()}
        self.runs: dict[str, dict[str, Any]] = {}
        self.sweeps: list[_SweepData] = []
        self.manifest: dict[str, Any] = {}

    def error(self, why: str) -> BundleError:
        return BundleError(
            f"{self.label} is not a valid nbtrack bundle: {why}. Nothing was imported. "
            "Export the runs again with `nbtrack export`."
        )

    def close(self) -> None:
        self.zip.close()

    def read(self, name: str, cap: int) -> bytes:
        """A member whole, refused when it is (or claims to be) larger than `cap` bytes; read in pieces, so a
        member that decompresses past its claim stops at the cap."""
        info = self.infos.get(name)
        if info is None:
            raise self.error(f"it lacks {name}")
        if info.file_size > cap:
            raise self.error(
                f"{name} would decompress to {info.file_size:,} bytes from {info.compress_size:,}, more than "
                f"nbtrack reads for it ({cap:,}): a zip bomb, or not a bundle nbtrack wrote"
            )
        parts, size = [], 0
        try:
            with self.zip.open(info) as member:
                while chunk := member.read(min(_COPY_BYTES, cap + 1 - size)):
                    parts.append(chunk)
                    size += len(chunk)
                    if size > cap:
                        raise self.error(f"{name} decompresses past its size ({cap:,} bytes)")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise self.error(f"{name} cannot be read ({exc})") from None
        return b"".join(parts)

    def json(self, name: str, cap: int | None = None) -> Any:
        if cap is None:
            info = self.infos.get(name)
            cap = max(_JSON_FLOOR, _JSON_RATIO * (info.compress_size if info else 0))
        try:
            return load_json(self.read(name, cap).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.error(f"{name} is not valid JSON ({type(exc).__name__}: {exc})") from None

    def _manifest_cap(self) -> int:
        """The most a manifest listing this zip's members can take: each member's name (JSON-escaped, at most
        6 bytes a character), its sha256 and size; a run's id, name, project and state; a sweep's id."""
        per_member = sum(6 * len(name) + 160 for name in self.infos)
        runs = sum(1 for name in self.infos if name.endswith("/run.json"))
        return 64 * 1024 + per_member + runs * 64 * 1024

    def check(self) -> None:
        try:
            self._check()
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
            raise self.error(f"a malformed entry ({type(exc).__name__}: {exc})") from None

    def _check(self) -> None:
        names = self.zip.namelist()
        bad = [n for n in names if not _safe_member(n)]
        if bad:
            raise self.error(f"member path {bad[0]!r} is absolute or leaves the bundle")
        if len(set(names)) != len(names):
            raise self.error("it names a member twice")
        if MANIFEST not in names:
            raise self.error(f"it has no {MANIFEST}")
        manifest = self.json(MANIFEST, self._manifest_cap())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.error(f'{MANIFEST} does not say "format": "{FORMAT}"')
        version = manifest.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise self.error(f"{MANIFEST} has no whole-number version")
        if version > VERSION:
            from nbtrack.common.version import __version__

            raise BundleError(
                f"{self.label} is an nbtrack bundle of format version {version}, written by nbtrack "
                f"{manifest.get('nbtrack_version', '(unknown)')}; this nbtrack {__version__} reads version "
                f"{VERSION}. Upgrade with `pip install -U nbtrack`. Nothing was imported."
            )
        if version < 1:
            raise self.error(f"format version {version} does not exist")
        members = manifest.get("members")
        runs = manifest.get("runs")
        sweeps = manifest.get("sweeps", [])
        if not isinstance(members, dict) or not isinstance(runs, list) or not isinstance(sweeps, list):
            raise self.error(f"{MANIFEST} lacks its members, runs or sweeps list")
        listed = set(members)
        present = set(names) - {MANIFEST}
        if listed != present:
            missing, extra = sorted(listed - present), sorted(present - listed)
            what = f"missing {missing[0]}" if missing else f"an unlisted member {extra[0]}"
            raise self.error(f"it does not match its manifest ({what}; truncated or altered)")
        for name in names:
            if name != MANIFEST:
                self._verify(name, members[name])
        self.manifest = manifest
        for entry in runs:
            rid = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(rid, str) or not _RUN_ID.fullmatch(rid):
                raise self.error(
                    f"{MANIFEST} lists a run with an unusable id {rid!r} (nbtrack's ids are 8 characters "
                    "of a-z and 0-9)"
                )
            if rid in self.runs:
                raise self.error(f"{MANIFEST} lists run {rid} twice")
            self.runs[rid] = self._check_run(rid)
        for sid in sweeps:
            if not isinstance(sid, str) or not _SWEEP_ID.fullmatch(sid):
                raise self.error(f"{MANIFEST} lists a sweep with an unusable id {sid!r} (8 hex digits)")
            self.sweeps.append(self._check_sweep(sid))

    def _verify(self, name: str, expected: Any) -> None:
        if not isinstance(expected, dict) or not isinstance(expected.get("sha256"), str):
            raise self.error(f"{MANIFEST} has no sha256 for {name}")
        if self.infos[name].file_size != expected.get("size"):
            raise self.error(f"{name} does not match its size in the manifest")
        digest, size = hashlib.sha256(), 0
        try:
            with self.zip.open(name) as member:
                while chunk := member.read(_COPY_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise self.error(f"{name} cannot be read ({exc})") from None
        if digest.hexdigest() != expected["sha256"] or size != expected.get("size"):
            raise self.error(f"{name} does not match its sha256 checksum in the manifest")

    def _check_run(self, rid: str) -> dict[str, Any]:
        folder = f"runs/{rid}"
        where = f"{folder}/run.json"
        document = self.json(where)
        if not isinstance(document, dict):
            raise self.error(f"{where} is not an object")
        record = self._record(document.get("record"), rid, where)
        events = document.get("events", [])
        metrics = document.get("metrics", [])
        files = document.get("files", [])
        if not all(isinstance(x, list) for x in (events, metrics, files)):
            raise self.error(f"{where}: events, metrics and files must be lists")
        parsed_events = [self._event(e, where) for e in events]
        keys = []
        for metric in metrics:
            if not isinstance(metric, dict) or not isinstance(metric.get("key"), str):
                raise self.error(f"{where}: a metric without a key")
            sub = metric.get("folder")
            if not isinstance(sub, str) or not _safe_member(sub):
                raise self.error(f"{where}: metric {metric['key']!r} has an unusable folder {sub!r}")
            count = self._check_metric(f"{folder}/{sub}")
            if count != metric.get("count"):
                raise self.error(
                    f"{where}: metric {metric['key']!r} has {count} points, not {metric.get('count')}"
                )
            keys.append((metric["key"], f"{folder}/{sub}", count))
        if len({k for k, _, _ in keys}) != len(keys):
            raise self.error(f"{where}: a metric is listed twice")
        names = []
        for item in files:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not _safe_member(name):
                raise self.error(f"{where}: file name {name!r} is absolute or leaves the run's folder")
            if f"{folder}/files/{name}" not in self.manifest["members"]:
                raise self.error(f"{where}: lists the file {name} that the bundle lacks")
            names.append(name)
        paths = set(names)
        if len(paths) != len(names):
            raise self.error(f"{where}: a file is listed twice")
        for name in names:  # "a" and "a/b" cannot both be files
            parts = name.split("/")
            clash = next(
                ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in paths), None
            )
            if clash:
                raise self.error(f"{where}: {clash} is listed as a file and as the folder of {name}")
        return {"record": record, "events": parsed_events, "metrics": keys, "files": names}

    def _event(self, data: Any, where: str) -> RunEvent:
        if not isinstance(data, dict):
            raise self.error(f"{where}: an event that is not an object")
        try:
            event = RunEvent(
                data["time"],
                str(data["kind"]),
                None if data.get("message") is None else str(data["message"]),
                data.get("step"),
                dict(data.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(f"{where}: a malformed event ({exc})") from None
        if problem := _event_problem(event):
            raise self.error(f"{where}: {problem}")
        return event

    def _record(self, data: Any, rid: str, where: str) -> RunRecord:
        if not isinstance(data, dict):
            raise self.error(f"{where} has no record")
        if not isinstance(data.get("tags") or [], list):
            raise self.error(f"{where}: the run's tags are not a list")
        try:
            record = RunRecord(
                id=data["id"],
                project=data["project"],
                name=data["name"],
                state=data["state"],
                created=data["created"],
                ended=data.get("ended"),
                heartbeat=data.get("heartbeat"),
                host=data.get("host", ""),
                pid=data.get("pid", 0),
                notes=data.get("notes"),
                tags=tuple(data.get("tags") or ()),
                config=data.get("config") or {},
                summary=data.get("summary") or {},
                environment=data.get("environment") or {},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(f"{where}: a malformed record ({exc})") from None
        if record.id != rid:
            raise self.error(f"{where}: its id {record.id!r} is not the folder's {rid!r}")
        if problem := _record_problem(record):
            raise self.error(f"{where}: {problem}")
        return record

    def _npy_header(self, name: str, kind: str) -> tuple[np.dtype, int, int]:
        """(dtype, points, header bytes) of an .npy member, read without reading its data."""
        try:
            with self.zip.open(name) as raw:
                counted = _Counted(raw)
                version = np.lib.format.read_magic(counted)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _fortran, dtype = read(counted)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, SyntaxError) as exc:
            raise self.error(f"{name} is not a NumPy array ({exc})") from None
        if len(shape) != 1 or dtype.kind != kind or dtype.itemsize != 8 or dtype.hasobject:
            raise self.error(f"{name} is not a 1-d {'int64' if kind == 'i' else 'float64'} array")
        if self.infos[name].file_size != counted.count + 8 * shape[0]:
            raise self.error(f"{name} holds more or fewer bytes than its {shape[0]} points")
        return dtype, shape[0], counted.count

    def _check_metric(self, folder: str) -> int:
        counts = {self._npy_header(f"{folder}/{part}.npy", kind)[1] for part, kind in _PARTS}
        if len(counts) != 1:
            raise self.error(f"{folder}: step, time and value have different lengths")
        for _step, tm, _value in self.slices(folder):
            if not (np.isfinite(tm).all() and (tm >= 0).all() and (tm <= _TIME_MAX).all()):
                raise self.error(f"{folder}/time.npy holds a time that is not a time between 1970 and 9999")
        return counts.pop()

    def slices(self, folder: str) -> Slices:
        """A metric's (step, time, value) in pieces of `_BATCH_POINTS`, read from the three members in step."""
        headers = [self._npy_header(f"{folder}/{part}.npy", kind) for part, kind in _PARTS]
        streams = [self.zip.open(f"{folder}/{part}.npy") for part, _ in _PARTS]
        try:
            for stream, (_dtype, _n, offset) in zip(streams, headers):
                stream.read(offset)
            left = headers[0][1]
            while left:
                take = min(left, _BATCH_POINTS)
                arrays = []
                for stream, (dtype, _n, _offset), (_part, kind) in zip(streams, headers, _PARTS):
                    data = stream.read(8 * take)
                    if len(data) != 8 * take:
                        raise self.error(f"{folder}: a member ends early")
                    arrays.append(np.frombuffer(data, dtype).astype(np.int64 if kind == "i" else np.float64))
                left -= take
                yield arrays[0], arrays[1], arrays[2]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise self.error(f"{folder} cannot be read ({exc})") from None
        finally:
            for stream in streams:
                stream.close()

    def _check_sweep(self, sid: str) -> _SweepData:
        where = f"sweeps/{sid}.json"
        document = self.json(where)
        try:
            data = document["sweep"]
            record = SweepRecord(
                id=data["id"],
                project=str(data["project"]),
                name=str(data["name"]),
                config=dict(data["config"]),
                method=str(data["method"]),
                state=str(data["state"]),
                created=data["created"],
                ended=data.get("ended"),
            )
            trials = [
                TrialRecord(
                    sweep_id=sid,
                    number=t["number"],
                    params=dict(t["params"]),
                    state=str(t["state"]),
                    run_id=t.get("run_id"),
                    grid_index=t.get("grid_index"),
                    worker=str(t.get("worker", "")),
                    value=t.get("value"),
                    rungs={str(k): v for k, v in (t.get("rungs") or {}).items()},
                    created=t.get("created", 0.0),
                    ended=t.get("ended"),
                )
                for t in document["trials"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.error(f"{where}: a malformed sweep ({exc})") from None
        if record.id != sid:
            raise self.error(f"{where}: its id {record.id!r} is not {sid!r}")
        if [t.number for t in trials] != list(range(len(trials))):
            raise self.error(f"{where}: trials are not numbered 0, 1, 2, ...")
        sweep = _SweepData(record, trials)
        if problem := _sweep_problem(sweep):
            raise self.error(f"{where}: {problem}")
        return sweep

    def run_data(self, rid: str) -> _RunData:
        checked = self.runs[rid]
        folder = f"runs/{rid}"

        def metrics() -> Iterator[tuple[str, Slices]]:
            for key, sub, _count in checked["metrics"]:
                yield key, self.slices(sub)

        members = self.manifest["members"]
        files = [
            _File(
                name,
                members[f"{folder}/files/{name}"]["size"],
                lambda m=f"{folder}/files/{name}": self.zip.open(m),
            )
            for name in checked["files"]
        ]
        return _RunData(checked["record"], metrics, checked["events"], files)


_PARTS = (("step", "i"), ("time", "f"), ("value", "f"))


# -- writing a store --------------------------------------------------------------------------------
def _in_slices(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), 500):
        yield ids[start : start + 500]


def _present_ids(store: Store, ids: Iterable[str]) -> set[str]:
    """The ids among `ids` (nbtrack run ids, checked) that the store has as ids; names do not count."""
    present: set[str] = set()
    for part in _in_slices(list(ids)):
        query = RunQuery(where=parse("id in [" + ", ".join(f"'{rid}'" for rid in part) + "]"))
        present.update(r.id for r in store.search_runs(query))
    return present


def _check_ids(
    store: Store, ids: list[str], sweeps: list[_SweepData], label: str, arriving: Iterable[RunRecord] = ()
) -> None:
    """Refuse ids that would answer for another run or sweep: the name of one in `store`, or of another run
    `arriving` with them. (``latest`` never is an id: it does not have an id's form.)"""
    for record in arriving:
        if record.name in ids and record.name != record.id:
            raise BundleError(
                f"{label} holds a run with id {record.name} and another run named {record.name} ({record.id}): "
                f"`nbtrack show {record.name}` would pick the first. Nothing was imported."
            )
    for part in _in_slices(ids):
        query = RunQuery(where=parse("name in [" + ", ".join(f"'{rid}'" for rid in part) + "]"))
        for other in store.search_runs(query):
            raise BundleError(
                f"{label} holds a run with id {other.name}, which is the name of the run {other.name} "
                f"({other.id}) in {store.location}: imported, `nbtrack show {other.name}` (and rm, replicate) "
                f"would pick the imported run. Rename the local run first (or import into another store). "
                "Nothing was imported."
            )
    names = {s.name: s for s in store.list_sweeps()}
    for sweep in sweeps:
        other = names.get(sweep.record.id)
        if other is not None and other.id != sweep.record.id:
            raise BundleError(
                f"{label} holds a sweep with id {sweep.record.id}, which is the name of the sweep {other.name} "
                f"({other.id}) in {store.location}. Nothing was imported."
            )


def _batches(run: _RunData) -> Iterator[list[SeriesBatch]]:
    """The run's points as store writes of about `_BATCH_POINTS` points each."""
    series: list[SeriesBatch] = []
    points = 0
    for key, slices in run.metrics():
        for step, tm, value in slices:
            for start in range(0, len(value), _BATCH_POINTS):
                part = slice(start, start + _BATCH_POINTS)
                series.append(SeriesBatch(key, step[part].tolist(), tm[part].tolist(), value[part].tolist()))
                points += len(series[-1].value)
                if points >= _BATCH_POINTS:
                    yield series
                    series, points = [], 0
    if series:
        yield series


def _staging_prefix(run_id: str) -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    return f".import-{run_id}-{host}-"


def _clear_stale_staging(root: Path) -> None:
    """Remove what imports of this run on this host left when they were killed (their process is gone)."""
    prefix = _staging_prefix(root.name)
    if not root.parent.is_dir():
        return
    for entry in root.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _stage_files(root: Path, files: list[_File]) -> Path:
    """The run's files written to a new folder beside its final place; `_write_run` renames it there."""
    _clear_stale_staging(root)
    staging = root.parent / f"{_staging_prefix(root.name)}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        staging.mkdir(parents=True)
        for item in files:
            target = staging.joinpath(*item.name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            with item.open() as source, open(target, "xb") as out:
                shutil.copyfileobj(source, out, _COPY_BYTES)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(
            f"Cannot write the files of run {root.name} under {root.parent}: {exc.strerror or exc}. Nothing of "
            "this run was written; free space (or fix the folder's permissions) and import again."
        ) from None
    return staging


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _write_run(store: Store, run: _RunData) -> bool:
    """Write one run in one transaction (files moved into place just before its commit). False when the store
    already has it: another import committed it first."""
    record = run.record
    root = store.run_dir(record.id)
    staging = _stage_files(root, run.files)
    placed: list[int] = []

    def place() -> None:
        if placed:  # a transaction retried after the files were moved
            return
        if os.path.lexists(root):  # an import killed after moving files, before its commit; or stray files
            _remove(root)
        os.rename(staging, root)
        placed.append(os.stat(root).st_ino)

    try:
        return store.import_run(record, lambda: _batches(run), run.events, place)
    except BaseException:
        if placed and _same_inode(root, placed[0]) and not _present_ids(store, [record.id]):
            shutil.rmtree(root, ignore_errors=True)  # the commit failed: the files go with it
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # not moved: an error, or the run was there already


def _same_inode(path: Path, inode: int) -> bool:
    try:
        return os.lstat(path).st_ino == inode
    except OSError:
        return False


def _forget_run(store: Store, run_id: str) -> None:
    try:
        store.delete_run(run_id)
    except RunNotFoundError:
        shutil.rmtree(store.run_dir(run_id), ignore_errors=True)


def _merge(sweep: _SweepData, location: str) -> Callable[[SweepRecord | None, list[TrialRecord]], SweepMerge]:
    """What importing `sweep` writes, given the store's copy (None) and trials: new trials, trials that moved
    forward (a finished trial, or a newer copy, is never set back to running), and the sweep's end."""
    record = sweep.record

    def plan(existing: SweepRecord | None, have_list: list[TrialRecord]) -> SweepMerge:
        if existing is None:
            return SweepMerge(sweep=record, trials=tuple(sweep.trials))
        mine = (existing.project, existing.name, existing.method, dump_json(existing.config))
        theirs = (record.project, record.name, record.method, dump_json(record.config))
        if mine != theirs:
            raise BundleError(
                f"The sweep {record.name} ({record.id}) to import differs from the sweep {existing.name} with the "
                f"same id in {location} (project, name, method or config): they cannot be merged. Nothing was "
                "imported."
            )
        have = {t.number: t for t in have_list}
        changed = []
        for trial in sweep.trials:
            stored = have.get(trial.number)
            if stored is None:
                changed.append(trial)
                continue
            if dump_json(stored.params) != dump_json(trial.params):
                raise BundleError(
                    f"Sweep {record.name} ({record.id}) in {location} has a trial {trial.number} with other "
                    "parameters than the imported copy: its trials cannot be merged. Nothing was imported."
                )
            if stored.state in TRIAL_DONE or trial.state == "running" or _same_trial(stored, trial):
                continue
            changed.append(
                replace(
                    stored,
                    state=trial.state,
                    run_id=trial.run_id if trial.run_id is not None else stored.run_id,
                    value=trial.value if trial.value is not None else stored.value,
                    ended=trial.ended if trial.ended is not None else stored.ended,
                    rungs={**stored.rungs, **trial.rungs},
                )
            )
        state = None
        if record.state != "running" and existing.state == "running":
            state = (record.state, record.ended)
        return SweepMerge(trials=tuple(changed), state=state)

    return plan


def _same_trial(a: TrialRecord, b: TrialRecord) -> bool:
    return (a.run_id, a.state, a.value, a.ended, a.rungs) == (b.run_id, b.state, b.value, b.ended, b.rungs)


def _precheck_sweeps(store: Store, sweeps: list[_SweepData]) -> None:
    """Refuse a sweep that cannot be merged before any run is written (`import_sweep` checks again)."""
    known = {s.id: s for s in store.list_sweeps()}
    for sweep in sweeps:
        existing = known.get(sweep.record.id)
        _merge(sweep, store.location)(existing, store.trials(sweep.record.id) if existing else [])


def _transfer(
    store: Store, runs: Iterable[_RunData], sweeps: list[_SweepData], *, atomic: bool
) -> tuple[list[str], list[str], list[str]]:
    """Write `runs` then `sweeps` to `store`, each run whole in one transaction. With `atomic`, a failure deletes
    every run this call wrote, then re-raises. Returns (run ids written, run ids another writer had written
    meanwhile, sweep ids written)."""
    written: list[str] = []
    raced: list[str] = []
    try:
        for run in runs:
            (written if _write_run(store, run) else raced).append(run.record.id)
        touched = [s.record.id for s in sweeps if store.import_sweep(s.record.id, _merge(s, store.location))]
    except BaseException:
        for rid in written if atomic else []:
            try:
                _forget_run(store, rid)
            except Exception:  # the original error is the one to report
                pass
        raise
    return written, raced, touched


def import_bundle(path: str | os.PathLike[str], store: Any = None) -> ImportResult:
    """Import the runs (and sweeps) of the bundle at `path` into `store`; runs it already has are skipped.

    The whole bundle is checked before anything is written, each run is written whole or not at all, and a
    failed write undoes the import.

        result = import_bundle("runs.nbtrack.zip", "nbtrack-runs")
        result.imported, result.skipped

    Raises:
        BundleError: the bundle is corrupt, altered, unsafe, from a newer nbtrack, or its ids would take over
            names in the store.
    """
    reader = _BundleReader(path)
    try:
        reader.check()
        opened, close = _open(store, create=True)
        try:
            present = _present_ids(opened, reader.runs)
            todo = [rid for rid in reader.runs if rid not in present]
            wanted = set(reader.runs)
            sweeps = [s for s in reader.sweeps if any(t.run_id in wanted for t in s.trials)]
            arriving = [reader.runs[rid]["record"] for rid in todo]
            _check_ids(opened, todo, sweeps, f"The bundle {reader.label}", arriving)
            _precheck_sweeps(opened, sweeps)
            written, raced, touched = _transfer(
                opened, (reader.run_data(r) for r in todo), sweeps, atomic=True
            )
            skipped = set(present) | set(raced)
            return ImportResult(written, [r for r in reader.runs if r in skipped], touched)
        finally:
            if close:
                opened.close()
    finally:
        reader.close()


def _check_source(store: Store, record: RunRecord, *, events: bool) -> None:
    """Refuse to sync a run whose record (or events) nbtrack could not have written."""
    problem = _record_problem(record)
    if problem is None and events:
        problem = next(filter(None, map(_event_problem, store.events(record.id))), None)
    if problem:
        raise BundleError(
            f"Cannot sync run {record.name} ({record.id}) from {store.location}: {problem}. It was not pushed; "
            "fix or `nbtrack rm` it and sync again."
        )


def sync(
    source: Any, target: Any, *, project: str | None = None, on_run: Callable[[RunRecord], None] | None = None
) -> SyncResult:
    """Push the runs of `source` (in `project`) that `target` lacks, with their sweeps; running runs wait.

    Each pushed run is complete in `target` before the next starts (one transaction each), so a second sync
    pushes nothing and an interrupted one is finished by the next. A copy left unended by an older nbtrack's
    interrupted sync (reading running or crashed) is pushed again once the local run has ended. Runs whose record
    nbtrack could not have written, or whose id names a run in `target`, are refused before anything is pushed.

        sync("nbtrack-runs", "/shared/nbtrack-runs", project="mnist")
    """
    source_store, close_source = _open(source, create=False)
    try:
        target_store, close_target = _open(target, create=True)
        try:
            if source_store.location == target_store.location:
                raise BundleError(f"Cannot sync {source_store.location} to itself.")
            local = source_store.search_runs(RunQuery(project=project))
            local.reverse()  # oldest first: an interrupted sync has pushed a prefix
            theirs = {r.id: r for r in target_store.search_runs(RunQuery(project=project))}
            running = [r.id for r in local if r.state == "running"]
            present, todo, stale = [], [], []
            for record in local:
                if record.state == "running":
                    continue
                copy = theirs.get(record.id)
                if copy is None:
                    todo.append(record)
                elif copy.state in ("running", "crashed") and record.state not in ("running", "crashed"):
                    stale.append(record.id)
                    todo.append(record)
                else:
                    present.append(record.id)
            for record in todo:
                _check_source(source_store, record, events=False)
            synced = {r.id for r in local if r.state != "running"}
            sweeps = [s for s in _sweeps_of(source_store, synced) if _sweep_problem(s) is None]
            _check_ids(
                target_store, [r.id for r in todo if r.id not in theirs], sweeps, source_store.location
            )
            for rid in stale:
                _forget_run(target_store, rid)  # a copy an interrupted sync left half written

            def runs() -> Iterator[_RunData]:
                for record in todo:
                    full = source_store.get_run(record.id)
                    _check_source(source_store, full, events=True)
                    if on_run is not None:
                        on_run(full)
                    yield _store_run(source_store, full)

            pushed, raced, touched = _transfer(target_store, runs(), sweeps, atomic=False)
            return SyncResult(pushed, present + raced, running, touched)
        finally:
            if close_target:
                target_store.close()
    finally:
        if close_source:
            source_store.close()


__all__ = [
    "BundleError",
    "ImportResult",
    "SyncResult",
    "export_runs",
    "import_bundle",
    "sync",
    "FORMAT",
    "VERSION",
]
