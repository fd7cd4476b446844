"""Helpers shared by the benchmark scripts: the machine description, statistics and table printing."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# Quiet every contestant before anything imports it.
QUIET_ENV = {
    "NBTRACK_SILENT": "1",
    "WANDB_SILENT": "true",
    "WANDB_MODE": "offline",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_CONSOLE": "off",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}

REPO_ROOT = Path(__file__).resolve().parent.parent


def quiet_environment() -> None:
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_lines(packages: Iterable[str] = ()) -> list[str]:
    """What ran the benchmark: date, CPU, cores, memory, OS, Python and package versions."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "?"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"date:     {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"cpu:      {cpu_model()} ({os.cpu_count()} logical cores, {affinity} usable)",
        f"memory:   {memory}",
        f"os:       {platform.platform()}",
        f"python:   {platform.python_version()} ({sys.executable})",
    ]
    versions = ", ".join(f"{name} {package_version(name)}" for name in packages)
    if versions:
        lines.append(f"packages: {versions}")
    return lines


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-markdown table; `align` is one of 'l'/'r' per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def fmt_rate(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 100_000:
        return f"{value / 1000:,.0f}k"
    if value >= 10_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}"


def fmt_seconds(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def fmt_ratio(value: float) -> str:
    if value != value:
        return "-"
    if value >= 10:
        return f"{value:,.1f}x"
    return f"{value:,.2f}x" if value >= 0.1 else f"{value:.3f}x"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def short_reason(exc: BaseException) -> str:
    """One line saying why a contestant is unavailable or failed."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def probe_all(entries: Sequence[Any]) -> None:
    """Import each contestant (its `probe`), recording its version or why it is unavailable."""
    for entry in entries:
        started = time.perf_counter()
        try:
            entry.version = entry.probe()
        except BaseException as exc:  # ImportError, but also whatever a broken install raises
            if isinstance(exc, KeyboardInterrupt):
                raise
            entry.unavailable = short_reason(exc)
            print(f"  {entry.label}: unavailable: {entry.unavailable}", flush=True)
        else:
            print(
                f"  {entry.label}: {entry.version} (import {time.perf_counter() - started:.2f} s)", flush=True
            )


# -- machine-readable output (--json) ----------------------------------------------------------------
def stats(samples: Sequence[float]) -> dict[str, Any]:
    """median, min, max and n of a list of per-repeat samples (NaN-free; None where empty)."""
    values = [float(v) for v in samples if v == v]
    if not values:
        return {"samples": [], "n": 0, "median": None, "min": None, "max": None}
    return {
        "samples": values,
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def unavailable_reason(exc: BaseException | str) -> str:
    """'not installed: ...' for an import failure, else 'failed: ...' (what RESULTS.md shows for a missing peer)."""
    text = exc if isinstance(exc, str) else short_reason(exc)
    if text.startswith(("not installed", "skipped", "not run")):
        return text
    bare = text.removeprefix("failed: ").removeprefix("failed ")
    if (
        isinstance(exc, ImportError)
        or bare.startswith(("ModuleNotFoundError", "ImportError"))
        or "not installed" in bare.lower()  # e.g. TensorFlow's TBNotInstalledError
    ):
        return f"not installed ({bare})"
    return text if text.startswith("failed") else f"failed ({text})"


class Results:
    """The measurements one script writes with --json PATH: a list of dicts, each a figure with its samples.

    A measurement: id (stable key), name, unit, better ("lower"/"higher"), samples + median/min/max/n, an
    optional note, and comparisons: a peer's samples from the same run and the ratio of the medians, oriented so
    that > 1 means nbtrack is better (peer / nbtrack for times and sizes, nbtrack / peer for rates). A figure or a
    peer that could not be measured carries `unavailable` instead of samples.
    """

    def __init__(self, script: str, quick: bool = False) -> None:
        self.script = script
        self.quick = quick
        self.measurements: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(
        self,
        id: str,
        name: str,
        unit: str,
        samples: Sequence[float],
        *,
        better: str = "lower",
        note: str = "",
    ) -> dict[str, Any]:
        if better not in ("lower", "higher"):
            raise ValueError(f"better must be 'lower' or 'higher', not {better!r}")
        entry = {"id": id, "name": name, "unit": unit, "better": better, **stats(samples), "comparisons": []}
        if note:
            entry["note"] = note
        if not entry["n"]:
            entry["unavailable"] = "no samples"
        self.measurements.append(entry)
        return entry

    def unavailable(self, id: str, name: str, unit: str, reason: BaseException | str) -> dict[str, Any]:
        entry = {
            "id": id,
            "name": name,
            "unit": unit,
            **stats([]),
            "unavailable": unavailable_reason(reason),
            "comparisons": [],
        }
        self.measurements.append(entry)
        return entry

    def compare(
        self,
        entry: dict[str, Any],
        peer: str,
        samples: Sequence[float] | None = None,
        *,
        unavailable: BaseException | str | None = None,
        note: str = "",
        ratio: float | None = None,
    ) -> None:
        """Add a peer measured in the same run to `entry`; the ratio is of the medians (> 1: nbtrack better)
        unless `ratio` gives another one computed from the same run (say how in `note`)."""
        comparison: dict[str, Any] = {"peer": peer}
        if unavailable is not None or not samples:
            comparison["unavailable"] = unavailable_reason(unavailable or "no samples")
        else:
            comparison.update(stats(samples))
            ours, theirs = entry.get("median"), comparison["median"]
            if ratio is None and ours and theirs:
                ratio = ours / theirs if entry.get("better") == "higher" else theirs / ours
            comparison["ratio"] = ratio if ratio is None or ratio == ratio else None
        if note:
            comparison["note"] = note
        entry["comparisons"].append(comparison)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, path: str | os.PathLike[str] | None) -> None:
        if not path:
            return
        import json

        document = {
            "script": self.script,
            "quick": self.quick,
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "notes": self.notes,
            "measurements": self.measurements,
        }
        Path(path).write_text(json.dumps(document, indent=1, allow_nan=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
