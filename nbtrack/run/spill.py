"""What a run's writer could not write when the store stayed unreachable at `finish` (a database server down for
longer than the writer's patience), kept in a local JSON file until ``nbtrack push FILE`` writes it to the store.

The file (``~/.nbtrack/spill/<run id>-<time>.json``, or under $NBTRACK_SPILL_DIR) holds the run id, the store's
location (password masked), every point not yet written (per metric: steps, wall times, values; NaN and ±inf kept),
the run's pending config, summary, events, state and end time, and the output lines not yet in its output.log;
and, when another process held the store's write lock from `init` to `finish`, what creates the run itself.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from nbtrack.errors import NbtrackError
from nbtrack.store.base import RunEvent, SeriesBatch, Store, WriteBatch
from nbtrack.store.query import dump_json, load_json

FORMAT = "nbtrack-spill"
VERSION = 1


class SpillError(NbtrackError):
    """A spill file that cannot be read or written back."""


def spill_dir() -> Path:
    return Path(os.environ.get("NBTRACK_SPILL_DIR") or Path.home() / ".nbtrack" / "spill")


def write_spill(location: str, run_id: str, series: dict[str, Any], meta: dict[str, Any]) -> Path:
    directory = spill_dir()
    directory.mkdir(parents=True, exist_ok=True)
    events = [
        {"time": e.time, "kind": e.kind, "message": e.message, "step": e.step, "data": e.data}
        for e in meta.get("events", [])
    ]
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "run_id": run_id,
        "store": location,
        "written": time.time(),
        "series": {
            key: [list(steps), list(times), list(values)] for key, (steps, times, values) in series.items()
        },
        "meta": {k: v for k, v in meta.items() if k != "events"} | {"events": events},
    }
    path = directory / f"{run_id}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    temporary = path.with_suffix(".partial")
    temporary.write_text(dump_json(payload), encoding="utf-8")
    temporary.replace(path)  # never a half-written spill file under the final name
    return path


def push_command(location: str, path: str | os.PathLike[str]) -> str:
    """The command that writes spill file `path` back to the store at `location` (its password masked)."""
    import shlex

    from nbtrack.store import mask_password

    return f"nbtrack --store {shlex.quote(mask_password(location))} push {shlex.quote(str(path))}"


def spill_store_matches(spilled: str, chosen: str) -> bool:
    """Whether the store a spill file was written for is the one the user chose (passwords aside)."""
    from nbtrack.store import mask_password, resolve_location

    return mask_password(resolve_location(spilled)) == mask_password(resolve_location(chosen))


def read_spill(path: str | os.PathLike[str]) -> dict[str, Any]:
    source = Path(path)
    try:
        payload = load_json(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpillError(f"No spill file at {source}.") from None
    except ValueError as exc:
        raise SpillError(f"{source} is not a readable nbtrack spill file ({exc}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpillError(f"{source} is not an nbtrack spill file.")
    if payload.get("version", 0) > VERSION:
        raise SpillError(
            f"{source} was written by a newer nbtrack (spill version {payload['version']}); upgrade nbtrack."
        )
    return payload


def push_spill(path: str | os.PathLike[str], store: Store) -> WriteBatch:
    """Write a spill file's points, end state and output lines into `store` (where the run already is), then
    remove the file."""
    payload = read_spill(path)
    run_id = payload["run_id"]
    meta = dict(payload["meta"])
    create = meta.pop("create", None)  # the run's store was locked from init to finish: it was never created
    if isinstance(create, dict) and not _exists(store, run_id):
        store.create_run(**{**_creation(create, path), "run_id": run_id})
    store.get_run(run_id)  # the run must be there: the spill holds only what came after its last good flush
    output = meta.pop("output", [])
    events = [
        RunEvent(e["time"], e["kind"], e["message"], e.get("step"), e.get("data") or {})
        for e in meta.pop("events", [])
    ]
    known = {"config", "summary", "environment", "heartbeat", "state", "ended", "labels"}
    batch = WriteBatch(
        run_id,
        series=[SeriesBatch(key, *columns) for key, columns in payload["series"].items()],
        events=events,
        **{k: v for k, v in meta.items() if k in known and (k != "labels" or isinstance(v, dict))},
    )
    store.write_batch(batch)
    if output:
        directory = store.run_dir(run_id)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "output.log", "a", encoding="utf-8", errors="replace") as log:
            log.write("\n".join(output) + "\n")
    Path(path).unlink()
    return batch


def _exists(store: Store, run_id: str) -> bool:
    from nbtrack.errors import RunNotFoundError

    try:
        return store.get_run(run_id).id == run_id
    except RunNotFoundError:
        return False


def _creation(create: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    """`create_run`'s arguments as the spill file holds them, checked (the file is data, not trusted code)."""
    fields = {"project": str, "name": str, "config": dict, "tags": list, "notes": (str, type(None))}
    numbers = {"created": (int, float), "pid": int}
    out: dict[str, Any] = {}
    for key, kind in {**fields, **numbers, "host": str}.items():
        value = create.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SpillError(f"{path}: the run's creation record has a bad {key!r} ({value!r}).")
        out[key] = value
    if not math.isfinite(out["created"]):
        raise SpillError(f"{path}: the run's creation record has a bad 'created' ({out['created']!r}).")
    if not all(isinstance(tag, str) for tag in out["tags"]):
        raise SpillError(f"{path}: the run's creation record has tags that are not strings.")
    return out
