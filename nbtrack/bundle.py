"""Bundles: runs exported to one zip file, imported into another store, or synced store to store.

    from nbtrack.bundle import export_runs, import_bundle
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

JSON members are strict JSON as `nbtrack.query.dump_json` writes it: NaN as ``{"$float": "NaN"}``, ±inf as
``±1e999``. A reader refuses a bundle whose version is newer than it knows, any member whose sha256 or size
differs from the manifest, and any member path that is absolute or climbs out (``..``), before writing anything.

Importing skips runs whose id the store already has (ids are the identity; a name may repeat). An import writes
all of a bundle or nothing: if a write fails midway, the runs it had written are deleted again. `sync` is the
same path store to store, without a zip: each run it pushes stays pushed, so an interrupted sync resumes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from nbtrack.errors import NbtrackError, RunNotFoundError
from nbtrack.query import dump_json, load_json
from nbtrack.series import History
from nbtrack.store.base import (
    STATES,
    TRIAL_DONE,
    RunEvent,
    RunQuery,
    RunRecord,
    SeriesBatch,
    Store,
    SweepRecord,
    TrialRecord,
    WriteBatch,
)

FORMAT = "nbtrack-bundle"
VERSION = 1
MANIFEST = "manifest.json"
# Points per write: a run's histories go to the store in batches of about this many points.
_BATCH_POINTS = 1_000_000
_COPY_BYTES = 1 << 20
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


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


@dataclass(frozen=True)
class _RunData:
    """Everything one run is, read from a store or a bundle; metrics are read when `histories` is iterated."""

    record: RunRecord
    histories: Callable[[], Iterator[History]]
    events: list[RunEvent]
    files: list[_File]


@dataclass(frozen=True)
class _SweepData:
    record: SweepRecord
    trials: list[TrialRecord]


# -- reading a store --------------------------------------------------------------------------------
def _store_run(store: Store, record: RunRecord) -> _RunData:
    keys = list(store.metric_stats(record.id))
    root = store.run_dir(record.id)

    def histories() -> Iterator[History]:
        for key in keys:
            yield store.history(record.id, key)

    files = [
        _File(PurePosixPath(*Path(f.name).parts).as_posix(), f.size, partial(Path.open, root / f.name, "rb"))
        for f in store.list_files(record.id)
    ]
    return _RunData(record, histories, store.events(record.id), files)


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
        for n, history in enumerate(run.histories()):
            sub = f"metrics/{n}"
            self.write(f"{folder}/{sub}/step.npy", _npy(history.step, "<i8"))
            self.write(f"{folder}/{sub}/time.npy", _npy(history.time, "<f8"))
            self.write(f"{folder}/{sub}/value.npy", _npy(history.value, "<f8"))
            metrics.append({"key": history.key, "count": len(history), "folder": sub})
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
        from nbtrack import __version__

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
        BundleError: no runs were given, or the file cannot be written.
    """
    opened, close = _open(store, create=False)
    try:
        records = _resolve(opened, runs)
        if not records:
            raise BundleError("Nothing to export: no runs were given (or none matched).")
        target = Path(path).expanduser().absolute()
        sweeps = _sweeps_of(opened, [r.id for r in records])
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as exc:
            raise BundleError(f"Cannot write the bundle {target}: {exc.strerror or exc}.") from None
        try:
            with os.fdopen(handle, "wb") as out:
                writer = _ZipWriter(out)
                for record in records:
                    writer.add_run(_store_run(opened, record))
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


def _safe_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_SAFE_ID.fullmatch(value)) and ".." not in value


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

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except KeyError:
            raise self.error(f"it lacks {name}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise self.error(f"{name} cannot be read ({exc})") from None

    def json(self, name: str) -> Any:
        try:
            return load_json(self.read(name).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.error(f"{name} is not valid JSON ({exc})") from None

    def check(self) -> None:
        names = self.zip.namelist()
        bad = [n for n in names if not _safe_member(n)]
        if bad:
            raise self.error(f"member path {bad[0]!r} is absolute or leaves the bundle")
        if len(set(names)) != len(names):
            raise self.error("it names a member twice")
        if MANIFEST not in names:
            raise self.error(f"it has no {MANIFEST}")
        manifest = self.json(MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.error(f'{MANIFEST} does not say "format": "{FORMAT}"')
        version = manifest.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise self.error(f"{MANIFEST} has no whole-number version")
        if version > VERSION:
            from nbtrack import __version__

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
            if not _safe_id(rid):
                raise self.error(f"{MANIFEST} lists a run with an unusable id {rid!r}")
            if rid in self.runs:
                raise self.error(f"{MANIFEST} lists run {rid} twice")
            self.runs[rid] = self._check_run(rid)
        for sid in sweeps:
            if not _safe_id(sid):
                raise self.error(f"{MANIFEST} lists a sweep with an unusable id {sid!r}")
            self.sweeps.append(self._check_sweep(sid))

    def _verify(self, name: str, expected: Any) -> None:
        if not isinstance(expected, dict) or not isinstance(expected.get("sha256"), str):
            raise self.error(f"{MANIFEST} has no sha256 for {name}")
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
        document = self.json(f"{folder}/run.json")
        where = f"{folder}/run.json"
        if not isinstance(document, dict):
            raise self.error(f"{where} is not an object")
        record = self._record(document.get("record"), rid, where)
        events = document.get("events", [])
        metrics = document.get("metrics", [])
        files = document.get("files", [])
        if not all(isinstance(x, list) for x in (events, metrics, files)):
            raise self.error(f"{where}: events, metrics and files must be lists")
        try:
            parsed_events = [
                RunEvent(
                    float(e["time"]),
                    str(e["kind"]),
                    None if e.get("message") is None else str(e["message"]),
                    None if e.get("step") is None else int(e["step"]),
                    dict(e.get("data") or {}),
                )
                for e in events
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(f"{where}: a malformed event ({exc})") from None
        keys = []
        for metric in metrics:
            if not isinstance(metric, dict) or not isinstance(metric.get("key"), str):
                raise self.error(f"{where}: a metric without a key")
            sub = metric.get("folder")
            if not isinstance(sub, str) or not _safe_member(sub):
                raise self.error(f"{where}: metric {metric['key']!r} has an unusable folder {sub!r}")
            history = self._history(f"{folder}/{sub}", metric["key"])
            if len(history) != metric.get("count"):
                raise self.error(
                    f"{where}: metric {metric['key']!r} has {len(history)} points, not {metric.get('count')}"
                )
            keys.append((metric["key"], f"{folder}/{sub}"))
        if len({k for k, _ in keys}) != len(keys):
            raise self.error(f"{where}: a metric is listed twice")
        names = []
        for item in files:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not _safe_member(name):
                raise self.error(f"{where}: file name {name!r} is absolute or leaves the run's folder")
            if f"{folder}/files/{name}" not in self.manifest["members"]:
                raise self.error(f"{where}: lists the file {name} that the bundle lacks")
            names.append(name)
        return {"record": record, "events": parsed_events, "metrics": keys, "files": names}

    def _record(self, data: Any, rid: str, where: str) -> RunRecord:
        if not isinstance(data, dict):
            raise self.error(f"{where} has no record")
        try:
            record = RunRecord(
                id=data["id"],
                project=data["project"],
                name=data["name"],
                state=data["state"],
                created=float(data["created"]),
                ended=None if data.get("ended") is None else float(data["ended"]),
                heartbeat=None if data.get("heartbeat") is None else float(data["heartbeat"]),
                host=str(data.get("host", "")),
                pid=int(data.get("pid", 0)),
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
        checks = (
            (isinstance(record.project, str) and bool(record.project), "no project"),
            (isinstance(record.name, str) and bool(record.name), "no name"),
            (record.state in STATES, f"an unknown state {record.state!r}"),
            (record.notes is None or isinstance(record.notes, str), "notes that are not text"),
            (all(isinstance(t, str) for t in record.tags), "tags that are not text"),
            (
                all(isinstance(x, dict) for x in (record.config, record.summary, record.environment)),
                "a config, summary or environment that is not an object",
            ),
        )
        for ok, why in checks:
            if not ok:
                raise self.error(f"{where}: the run has {why}")
        return record

    def _npy(self, name: str, kind: str) -> np.ndarray:
        try:
            array = np.load(io.BytesIO(self.read(name)), allow_pickle=False)
        except ValueError as exc:
            raise self.error(f"{name} is not a NumPy array ({exc})") from None
        if array.ndim != 1 or array.dtype.kind != kind or array.dtype.itemsize != 8:
            raise self.error(f"{name} is not a 1-d {'int64' if kind == 'i' else 'float64'} array")
        return array

    def _history(self, folder: str, key: str) -> History:
        step = self._npy(f"{folder}/step.npy", "i").astype(np.int64, copy=False)
        tm = self._npy(f"{folder}/time.npy", "f").astype(np.float64, copy=False)
        value = self._npy(f"{folder}/value.npy", "f").astype(np.float64, copy=False)
        if not len(step) == len(tm) == len(value):
            raise self.error(f"{folder}: step, time and value have different lengths")
        return History(key, step, tm, value)

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
                created=float(data["created"]),
                ended=None if data.get("ended") is None else float(data["ended"]),
            )
            trials = [
                TrialRecord(
                    sweep_id=sid,
                    number=int(t["number"]),
                    params=dict(t["params"]),
                    state=str(t["state"]),
                    run_id=t.get("run_id"),
                    grid_index=None if t.get("grid_index") is None else int(t["grid_index"]),
                    worker=str(t.get("worker", "")),
                    value=None if t.get("value") is None else float(t["value"]),
                    rungs={str(k): float(v) for k, v in (t.get("rungs") or {}).items()},
                    created=float(t.get("created", 0.0)),
                    ended=None if t.get("ended") is None else float(t["ended"]),
                )
                for t in document["trials"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(f"{where}: a malformed sweep ({exc})") from None
        if record.id != sid:
            raise self.error(f"{where}: its id {record.id!r} is not {sid!r}")
        if [t.number for t in trials] != list(range(len(trials))):
            raise self.error(f"{where}: trials are not numbered 0, 1, 2, ...")
        if any(not k.isdigit() for t in trials for k in t.rungs):
            raise self.error(f"{where}: a Hyperband rung that is not a number of epochs")
        return _SweepData(record, trials)

    def run_data(self, rid: str) -> _RunData:
        checked = self.runs[rid]
        folder = f"runs/{rid}"

        def histories() -> Iterator[History]:
            for key, sub in checked["metrics"]:
                yield self._history(sub, key)

        members = self.manifest["members"]
        files = [
            _File(
                name,
                members[f"{folder}/files/{name}"]["size"],
                lambda m=f"{folder}/files/{name}": self.zip.open(m),
            )
            for name in checked["files"]
        ]
        return _RunData(checked["record"], histories, checked["events"], files)


# -- writing a store --------------------------------------------------------------------------------
def _present_ids(store: Store, ids: Iterable[str]) -> set[str]:
    present = set()
    for rid in ids:
        try:
            if store.get_run(rid).id == rid:
                present.add(rid)
        except RunNotFoundError:  # absent, or several runs *named* like this id
            continue
    return present


def _write_files(store: Store, run: _RunData) -> None:
    root = store.run_dir(run.record.id)
    if root.exists():  # left over from an import that died before creating the run
        shutil.rmtree(root)
    resolved = root.resolve()
    for item in run.files:
        target = root / item.name
        if resolved not in target.resolve().parents:
            raise BundleError(f"Refusing to write {item.name!r}: it would leave the run's folder {root}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with item.open() as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, _COPY_BYTES)


def _write_run(store: Store, run: _RunData) -> None:
    """Files, then the run, then its metrics; the record's state, times and summary go in the last batch."""
    record = run.record
    _write_files(store, run)
    store.create_run(
        run_id=record.id,
        project=record.project,
        name=record.name,
        config=record.config,
        tags=record.tags,
        notes=record.notes,
        created=record.created,
        host=record.host,
        pid=record.pid,
    )
    series: list[SeriesBatch] = []
    points = 0
    for history in run.histories():
        for start in range(0, max(len(history), 1), _BATCH_POINTS):
            part = slice(start, start + _BATCH_POINTS)
            if len(history):
                series.append(
                    SeriesBatch(
                        history.key,
                        history.step[part].tolist(),
                        history.time[part].tolist(),
                        history.value[part].tolist(),
                    )
                )
                points += len(series[-1].value)
            if points >= _BATCH_POINTS:
                store.write_batch(WriteBatch(record.id, series=series))
                series, points = [], 0
    store.write_batch(
        WriteBatch(
            record.id,
            series=series,
            summary=record.summary,
            environment=record.environment,
            heartbeat=record.heartbeat,
            state=record.state,
            ended=record.ended,
            events=list(run.events),
        )
    )


def _forget_run(store: Store, run_id: str) -> None:
    try:
        store.delete_run(run_id)
    except RunNotFoundError:
        shutil.rmtree(store.run_dir(run_id), ignore_errors=True)


def _write_sweep(store: Store, sweep: _SweepData) -> bool:
    """Create the sweep with its trials, or bring an existing one up to date. True when anything was written."""
    record = sweep.record
    known = {s.id: s for s in store.list_sweeps()}
    existing = known.get(record.id)
    if existing is None:
        store.create_sweep(
            sweep_id=record.id,
            project=record.project,
            name=record.name,
            config=record.config,
            method=record.method,
            created=record.created,
        )
        have: dict[int, TrialRecord] = {}
    else:
        have = {t.number: t for t in store.trials(record.id)}
    changed = existing is None
    new = [t for t in sweep.trials if t.number not in have]
    # Claim every new trial before linking any run: a claim marks "running" trials whose run is gone as crashed.
    for trial in new:
        claimed = store.claim_trial(
            record.id, trial.worker, lambda _trials, t=trial: (t.params, t.grid_index)
        )
        if claimed is None or claimed.number != trial.number:
            raise BundleError(
                f"Sweep {record.name} ({record.id}) in {store.location} has trials that the imported copy lacks; "
                "its trials cannot be merged."
            )
    for trial in sweep.trials:
        mine = have.get(trial.number)
        # Trials only move forward: a finished trial, or a newer copy, is never set back to running.
        if mine is not None and (
            mine.state in TRIAL_DONE or trial.state == "running" or _same_trial(mine, trial)
        ):
            continue
        store.update_trial(
            record.id,
            trial.number,
            run_id=trial.run_id,
            state=trial.state,
            value=trial.value,
            ended=trial.ended,
        )
        for rung, value in trial.rungs.items():
            if mine is None or mine.rungs.get(rung) != value:
                store.record_rung(record.id, trial.number, int(rung), value)
        changed = True
    if new:
        _restore_trial_times(store, record.id, new)
    if record.state != "running" and (existing is None or existing.state == "running"):
        store.set_sweep_state(record.id, record.state, record.ended)
        changed = True
    return changed


def _same_trial(a: TrialRecord, b: TrialRecord) -> bool:
    return (a.run_id, a.state, a.value, a.ended, a.rungs) == (b.run_id, b.state, b.value, b.ended, b.rungs)


def _restore_trial_times(store: Store, sweep_id: str, trials: list[TrialRecord]) -> None:
    """Put back when each trial started: `Store.claim_trial` stamps the claim time, and the contract has no other
    way to write a trial. Only the SQLite store can be reached here; elsewhere trials keep their import time."""
    from nbtrack.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        rows = [(t.created, sweep_id, t.number) for t in trials]
        store._write(
            lambda conn: conn.executemany(
                "UPDATE trials SET created = ? WHERE sweep_id = ? AND number = ?", rows
            )
        )


def _transfer(
    store: Store, runs: Iterable[_RunData], sweeps: list[_SweepData], *, atomic: bool
) -> tuple[list[str], list[str]]:
    """Write `runs` then `sweeps` to `store`. A failure deletes the run being written, and with `atomic` every run
    written before it too, then re-raises. Returns (run ids written, sweep ids written)."""
    written: list[str] = []
    current: str | None = None
    try:
        for run in runs:
            current = run.record.id
            _write_run(store, run)
            written.append(current)
            current = None
        touched = [s.record.id for s in sweeps if _write_sweep(store, s)]
    except BaseException:
        for rid in ([current] if current else []) + (written if atomic else []):
            try:
                _forget_run(store, rid)
            except Exception:  # the original error is the one to report
                pass
        raise
    return written, touched


def import_bundle(path: str | os.PathLike[str], store: Any = None) -> ImportResult:
    """Import the runs (and sweeps) of the bundle at `path` into `store`; runs it already has are skipped.

    The whole bundle is checked before anything is written, and a failed write undoes the import.

        result = import_bundle("runs.nbtrack.zip", "nbtrack-runs")
        result.imported, result.skipped

    Raises:
        BundleError: the bundle is corrupt, altered, unsafe, or from a newer nbtrack.
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
            written, touched = _transfer(opened, (reader.run_data(r) for r in todo), sweeps, atomic=True)
            return ImportResult(written, [r for r in reader.runs if r in present], touched)
        finally:
            if close:
                opened.close()
    finally:
        reader.close()


def sync(
    source: Any, target: Any, *, project: str | None = None, on_run: Callable[[RunRecord], None] | None = None
) -> SyncResult:
    """Push the runs of `source` (in `project`) that `target` lacks, with their sweeps; running runs wait.

    Each pushed run is complete in `target` before the next starts, so a second sync pushes nothing and an
    interrupted one is finished by the next: a copy that a sync killed mid-run left unended (reading running or
    crashed) is pushed again once the local run has ended.

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
            present, todo = [], []
            for record in local:
                if record.state == "running":
                    continue
                copy = theirs.get(record.id)
                if copy is None:
                    todo.append(record)
                elif copy.state in ("running", "crashed") and record.state not in ("running", "crashed"):
                    _forget_run(target_store, record.id)  # a copy a killed sync left half written
                    todo.append(record)
                else:
                    present.append(record.id)

            def runs() -> Iterator[_RunData]:
                for record in todo:
                    full = source_store.get_run(record.id)
                    if on_run is not None:
                        on_run(full)
                    yield _store_run(source_store, full)

            synced = {r.id for r in local if r.state != "running"}
            sweeps = _sweeps_of(source_store, synced)
            pushed, touched = _transfer(target_store, runs(), sweeps, atomic=False)
            return SyncResult(pushed, present, running, touched)
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
