"""Run every benchmark and write benchmarks/RESULTS.md afresh (what `make bench` does).

Each benchmark script runs in its own process with `--json`, in the interpreter running this script (so
the peers measured are the ones installed beside it: `make bench` uses .venv-bench). From the JSON it writes
RESULTS.md: the machine and versions, the issue's targets (each figure a median with its min-max and number of
runs, a verdict), then one section per benchmark with its figures, each peer's figure from the same run and
the ratio, and the script's printed output. A benchmark whose prerequisite is missing is listed as not run,
with what to install; a peer that is not installed shows as "not installed" in its script's tables.

    python benchmarks/run_all.py                       # everything, ~30-45 min on 2 cores
    python benchmarks/run_all.py --quick               # smoke sizes (NOT the targets' sizes), ~3 min
    python benchmarks/run_all.py --only log,store --out /tmp/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import QUIET_ENV, REPO_ROOT, cpu_model, fmt_ratio, package_version  # noqa: E402

VERSIONS = (
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "tensorboard",
    "wandb",
    "mlflow",
    "numpy",
    "ipython",
    "ipywidgets",
    "bqplot",
    "optuna",
    "psycopg",
    "psutil",
    "nbclient",
)


# -- prerequisites --------------------------------------------------------------------------------
def missing_modules(*modules: str, install: str) -> str | None:
    """Why a benchmark cannot run: the modules not importable here and what to install; None if all are."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed here (`{install}`)"


def needs_postgres() -> str | None:
    found = shutil.which("initdb") or sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        return "PostgreSQL's initdb not found (`apt-get install postgresql`)"
    return missing_modules("psycopg", install="pip install 'nbtrack[postgres]'")


def needs_gpu() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except ImportError:
        return "nvidia-ml-py not installed, so no GPU can be seen (`pip install 'nbtrack[system]'`)"
    except Exception as exc:  # pynvml.NVMLError: no driver, no device
        return f"no NVIDIA GPU seen by NVML ({type(exc).__name__}: {exc})"
    if not count:
        return "NVML sees no GPU"
    # gpu_check.py loads the GPU with jax, tensorflow or torch when one sees it, else it only samples.
    return None


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    what: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    requires: Callable[[], str | None] = lambda: None
    timeout_s: float = 900.0
    json: bool = True  # gpu_check.py prints and exits 0/1, no --json


BENCHES = (
    Bench(
        "log",
        "bench_log.py",
        "`run.log` throughput vs a plain dict append, raw SQLite, W&B offline, tf.summary and MLflow",
        ("--tf-calls", "5000"),
        ("--calls", "2000", "--wandb-calls", "500", "--tf-calls", "200", "--mlflow-calls", "50"),
    ),
    Bench(
        "store",
        "bench_store.py",
        "import and `%load_ext` times vs `import wandb` / `import mlflow`; bytes on disk per point vs raw SQLite, "
        "MLflow and W&B offline; read speed",
        (),
        ("--points", "20000", "--import-runs", "5", "--peer-import-runs", "5", "--peer-points", "1000"),
    ),
    Bench(
        "lag",
        "bench_lag.py",
        "durability lag under a tight logging loop",
        ("--calls", "1000000"),
        ("--calls", "50000"),
    ),
    Bench(
        "fit",
        "bench_fit.py",
        "Keras `fit` overhead (seed MLP, batch 16) vs no callback, W&B offline, TensorBoard and MLflow; the live "
        "widget's messages/s and bytes/refresh at 10k / 100k / 1M steps",
        ("--only", "noop,nbtrack-widget,wandb,tensorboard,mlflow", "--mlflow-steps", "1250"),
        (
            "--only",
            "noop,nbtrack-widget,wandb,tensorboard,mlflow",
            "--samples",
            "800",
            "--val-samples",
            "160",
            "--warmup-steps",
            "10",
            "--mlflow-steps",
            "20",
            "--no-diagnose",
            "--traffic-steps",
            "1000,10000",
            "--traffic-seconds",
            "0.5",
        ),
        lambda: missing_modules(
            "keras", "ipywidgets", "bqplot", install="pip install 'nbtrack[keras,widgets]'"
        ),
        timeout_s=3600.0,
    ),
    Bench(
        "system",
        "bench_system.py",
        "CPU cost of the system sampler",
        ("--seconds", "10"),
        ("--seconds", "1"),
        lambda: missing_modules("psutil", install="pip install 'nbtrack[system]'"),
    ),
    Bench("logs", "bench_logs.py", "cost of capturing printed output", (), ("--lines", "5000")),
    Bench(
        "wide",
        "bench_wide.py",
        "the live dashboard's refresh with 10,000 metric keys (points for hidden charts, for drawn ones)",
        (),
        ("--keys", "2000", "--refreshes", "10", "--repeats", "3"),
        lambda: missing_modules("ipywidgets", "bqplot", install="pip install 'nbtrack[widgets]'"),
    ),
    Bench(
        "model_graph",
        "bench_model_graph.py",
        "the Model pane's graph of a ~500-layer model",
        (),
        ("--blocks", "10"),
        lambda: missing_modules("keras", install="pip install 'nbtrack[keras]'"),
    ),
    Bench(
        "query",
        "bench_query.py",
        "search at 10k runs vs MLflow `search_runs`; reduced history; compare data preparation",
        (),
        ("--quick", "--mlflow-repeats", "5"),
    ),
    Bench(
        "report",
        "bench_report.py",
        "report size and time: the executed quickstart, a 50-run comparison, short vs long runs",
        (),
        ("--quick",),
        lambda: missing_modules(
            "nbclient", "nbconvert", "ipykernel", "keras", install="pip install 'nbtrack[notebook,keras]'"
        ),
        timeout_s=1800.0,
    ),
    Bench(
        "sweep",
        "bench_sweep.py",
        "sweep controller overhead per trial vs Optuna alone; agents' throughput",
        ("--grid", "150"),
        ("--quick", "--grid", "20"),
        lambda: missing_modules("optuna", install="pip install 'nbtrack[sweeps]'"),
        timeout_s=1800.0,
    ),
    Bench(
        "postgres",
        "bench_postgres.py",
        "the PostgreSQL store vs the SQLite store and MLflow on PostgreSQL",
        (),
        ("--quick", "--repeats", "5", "--mlflow-repeats", "5"),
        needs_postgres,
    ),
    Bench(
        "gpu",
        "gpu_check.py",
        "NVML GPU series recorded and plausible under a GPU load (GPU machines only)",
        requires=needs_gpu,
        json=False,
    ),
)


# -- the targets of issue #9 ----------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    what: str
    bench: str  # the Bench that measures it
    measurement: str  # a measurement id in its JSON
    op: str  # "<=", "<" or ">="
    threshold: float
    unit: str
    context: tuple[str, ...] = ()  # other measurement ids shown beside the figure


TARGETS = (
    Target(
        "fit overhead <= 2 % (seed MLP, batch 16, live widget)",
        "fit",
        "fit.overhead.nbtrack-widget",
        "<=",
        2.0,
        "%",
        ("fit.hooks.nbtrack-widget", "fit.overhead.noop"),
    ),
    Target("`log` >= 200k calls/s", "log", "log.loop_rate", ">=", 200_000, "calls/s", ("log.durable_rate",)),
    Target("`%load_ext nbtrack` <= 0.2 s", "store", "store.load_ext", "<=", 0.2, "s", ("store.import",)),
    Target(
        "<= 20 msgs/s at 1M steps",
        "fit",
        "traffic.msgs_per_s.1000000",
        "<=",
        20.0,
        "msgs/s",
        ("traffic.updates_per_s.1000000",),
    ),
    Target(
        "<= 64 kB/refresh at 1M steps (largest refresh of each run)",
        "fit",
        "traffic.bytes_per_refresh_max.1000000",
        "<=",
        64_000,
        "B",
        ("traffic.bytes_per_refresh_median.1000000",),
    ),
    Target("10k-run query <= 100 ms", "query", "query.search", "<=", 0.1, "s"),
    Target(
        "<= 24 B/point (1M points)",
        "store",
        "store.bytes_per_point",
        "<=",
        24.0,
        "B/point",
        ("store.bytes_per_point_api",),
    ),
    Target(
        "quickstart report < 1 MB",
        "report",
        "report.quickstart.size",
        "<",
        1_000_000,
        "B",
        ("report.quickstart.time",),
    ),
)


def _fig(found: dict[str, tuple[Outcome, dict[str, Any]]], key: str) -> str:
    return fmt_figure(found[key][1]) if key in found else "not measured"


def _why_fit(found: dict[str, tuple[Outcome, dict[str, Any]]]) -> str:
    outcome, _ = found["fit.overhead.nbtrack-widget"]
    hooks = found.get("fit.hooks.nbtrack-widget", (None, {}))[1].get("median")
    where = "under" if hooks is not None and hooks <= 2.0 else "at or over"
    return (
        f"nbtrack's own hooks, timed on the training thread in every live-widget fit, took "
        f"{_fig(found, 'fit.hooks.nbtrack-widget')} of the same repeat's baseline fit: {where} the target. "
        f"A no-op callback measured {_fig(found, 'fit.overhead.noop')} over the no-callback baseline fit of "
        f"{_fig(found, 'fit.time.baseline')}; other processes used {outcome.others_cpu_s:,.0f} CPU-seconds "
        f"during the {outcome.wall_s / 60:.0f} min of bench_fit (on {os.cpu_count() or 1} logical cores)."
    )


def _why_messages(found: dict[str, tuple[Outcome, dict[str, Any]]]) -> str:
    return (
        "the figure counts every comm message of the loop, the openings of widgets created during the run "
        f"included; trait updates alone: {_fig(found, 'traffic.updates_per_s.1000000')}."
    )


# Shown under the targets table when a target is not met (not for --quick runs): the measurements of the same
# run that bear on it. A callable gets every measurement by id: (outcome, measurement). Explanations from
# profiles belong in FINDINGS.md, written by hand, not in every RESULTS.md.
WHY_NOT_MET: dict[str, str | Callable[[dict[str, tuple[Outcome, dict[str, Any]]]], str]] = {
    "fit.overhead.nbtrack-widget": _why_fit,
    "traffic.msgs_per_s.1000000": _why_messages,
}


def meets(value: float, op: str, threshold: float) -> bool:
    if op == "<=":
        return value <= threshold
    if op == "<":
        return value < threshold
    if op == ">=":
        return value >= threshold
    if op == ">":
        return value > threshold
    raise ValueError(f"unknown comparison {op!r}; expected one of <=, <, >=, >")


def verdict(measurement: dict[str, Any] | None, target: Target) -> str:
    """'met' or 'not met' on the median; 'not measured' when there is no figure."""
    if measurement is None or measurement.get("median") is None:
        return "not measured"
    return "met" if meets(measurement["median"], target.op, target.threshold) else "not met"


# -- formatting -----------------------------------------------------------------------------------
def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit, scaled for reading: 0.0123 s -> '12.3 ms', 65536 B -> '65.5 kB'."""
    if value is None or value != value:
        return "-"
    if unit == "s":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.0f} us"
        if abs(value) < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    if unit == "B":
        if abs(value) >= 1e6:
            return f"{value / 1e6:.3g} MB"
        if abs(value) >= 1e3:
            return f"{value / 1e3:.3g} kB"
        return f"{value:.0f} B"
    if unit == "%":
        return f"{value:+.2f} %"
    if unit.endswith("/s") and abs(value) >= 10_000:
        return f"{value / 1e3:,.0f}k {unit}" if abs(value) < 1e7 else f"{value / 1e6:,.1f}M {unit}"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.4g} {unit}"


def fmt_figure(m: dict[str, Any] | None, unit: str | None = None) -> str:
    """'median (min - max, n=N)', or why there is no figure."""
    if m is None:
        return "-"
    if m.get("median") is None:
        return m.get("unavailable") or "no samples"
    unit = unit or m.get("unit", "")
    return f"{fmt_value(m['median'], unit)} ({fmt_range(m['min'], m['max'], unit)}, n={m['n']})"


def fmt_range(low: float | None, high: float | None, unit: str) -> str:
    """'1.2 - 3.4 ms': the unit once when both ends share it."""
    a, b = fmt_value(low, unit), fmt_value(high, unit)
    head, _, tail = a.rpartition(" ")
    if head and b.endswith(" " + tail):
        return f"{head} - {b}"
    return f"{a} - {b}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- running --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    bench: Bench
    status: str  # "ok", "failed: ...", "not run: ..."
    args: tuple[str, ...] = ()
    wall_s: float = 0.0
    output: str = ""
    document: dict[str, Any] | None = None
    others_cpu_s: float = float("nan")  # CPU time other processes used meanwhile (noise)
    load: tuple[str, str] = ("", "")
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)


def busy_cpu_seconds() -> float:
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


NOISE_LINE = re.compile(r"^(?:[IWE]\d{4} |WARNING: All log messages before absl)")


def run_bench(bench: Bench, quick: bool, json_dir: Path) -> Outcome:
    reason = bench.requires()
    if reason:
        print(f"\n=== {bench.name}: not run: {reason}", flush=True)
        return Outcome(bench, f"not run: {reason}")
    args = bench.quick_args if quick else bench.args
    json_path = json_dir / f"{bench.name}.json"
    command = [sys.executable, str(HERE / bench.script), *args]
    if bench.json:
        command += ["--json", str(json_path)]
    print(f"\n=== {bench.name}: {' '.join(['python', f'benchmarks/{bench.script}', *args])}", flush=True)
    # Every process the benchmark starts (import timings, kernels, agents) measures the nbtrack of this checkout.
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, **QUIET_ENV, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    lines: list[str] = []
    load_before, busy_before = loadavg(), busy_cpu_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    watchdog = threading.Timer(bench.timeout_s, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if not NOISE_LINE.match(line):
                lines.append(line.rstrip("\n"))
        code = proc.wait()
    finally:
        watchdog.cancel()
    wall = time.perf_counter() - started
    timed_out = code != 0 and wall >= bench.timeout_s
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    outcome = Outcome(
        bench,
        "ok",
        args,
        wall,
        "\n".join(lines),
        others_cpu_s=max(0.0, busy_cpu_seconds() - busy_before - own),
        load=(load_before, loadavg()),
    )
    if timed_out:
        outcome.status = f"failed: timed out after {bench.timeout_s:.0f} s"
    elif code != 0:
        outcome.status = f"failed: exit status {code}"
    if bench.json and json_path.exists():
        try:
            outcome.document = json.loads(json_path.read_text())
            outcome.measurements = {m["id"]: m for m in outcome.document["measurements"]}
        except (ValueError, KeyError) as exc:
            outcome.status = f"failed: unreadable --json output ({exc})"
    elif bench.json and outcome.status == "ok":
        outcome.status = "failed: no --json output"
    return outcome


# -- RESULTS.md -----------------------------------------------------------------------------------
def git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def memory() -> str:
    try:
        return f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        return "?"


def postgres_version() -> str:
    found = shutil.which("postgres") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))), None
    )
    if not found:
        return "not installed"
    try:
        return subprocess.run([str(found), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def header(outcomes: list[Outcome], meta: dict[str, Any]) -> list[str]:
    wall_s, quick, command, commit = meta["wall_s"], meta["quick"], meta["command"], meta["commit"]
    dirty_note = (
        f", {meta['dirty']} file(s) in nbtrack/ with uncommitted changes"
        if meta["dirty"]
        else ", no uncommitted changes in nbtrack/"
    )
    versions = ", ".join(
        f"{name} {package_version(name)}" for name in VERSIONS if package_version(name) != "not installed"
    )
    missing = ", ".join(name for name in VERSIONS if package_version(name) == "not installed")
    others = sum(o.others_cpu_s for o in outcomes if o.others_cpu_s == o.others_cpu_s)
    cores = os.cpu_count() or 1
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`benchmarks/run_all.py`); do not edit by hand: every run writes this file afresh.",
        "Findings, profiles and the history of earlier runs are in [FINDINGS.md](FINDINGS.md); how to run the",
        "benchmarks and read their JSON is in [README.md](README.md).",
        "",
    ]
    if quick:
        lines += [
            "**`--quick` run: smoke-test sizes, NOT the targets' sizes. The verdicts below mean nothing.**",
            "",
        ]
    lines += [
        "## Machine and versions",
        "",
        f"- date: {meta['started']}; whole run {wall_s / 60:.1f} min; command: `{command}`",
        f"- machine: {cpu_model()}, {cores} logical cores ({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else cores} usable), "
        f"{memory()} memory; {platform.platform()}",
        f"- Python {platform.python_version()} ({sys.executable}); SQLite {sqlite3.sqlite_version}; {postgres_version()}",
        f"- nbtrack {package_version('nbtrack')} from `{meta.get('source', REPO_ROOT)}` at commit {commit}{dirty_note}",
        f"- packages: {versions}" + (f"; not installed: {missing}" if missing else ""),
        f"- noise: other processes used {others:,.0f} CPU-seconds while the benchmarks ran "
        f"({100 * others / max(wall_s * cores, 1):.0f} % of the {cores} cores over {wall_s / 60:.1f} min; per "
        "benchmark below).",
        "",
    ]
    return lines


def targets_section(outcomes: list[Outcome], quick: bool) -> list[str]:
    found: dict[str, tuple[Outcome, dict[str, Any]]] = {}
    ran: dict[str, Outcome] = {}
    for o in outcomes:
        for key, m in o.measurements.items():
            found[key] = (o, m)
        ran[o.bench.name] = o
    rows = []
    missed = []
    for t in TARGETS:
        outcome, m = found.get(t.measurement, (None, None))
        result = verdict(m, t)
        if result == "not met" and not quick:
            missed.append(t)
        if m is None:
            owner = ran.get(t.bench)
            if owner is None:
                figure = f"not measured: {t.bench} not run (--only)"
            elif owner.status == "ok":
                figure = "not measured at these sizes" + (" (--quick)" if quick else "")
            else:
                figure = f"not measured: {t.bench} {owner.status}"
        else:
            figure = fmt_figure(m, t.unit)
        context = []
        for key in t.context:
            _, extra = found.get(key, (None, None))
            if extra is not None and extra.get("median") is not None:
                context.append(f"{extra['name']}: {fmt_figure(extra)}")
        verdict_text = f"**{result}**" + (" (quick sizes)" if quick and m is not None else "")
        rows.append(
            [
                t.what,
                figure,
                verdict_text,
                f"`{outcome.bench.script}`" if outcome else "-",
                "; ".join(context) or "-",
            ]
        )
    return [
        "## Targets (issue #9)",
        "",
        "Verdicts are on the median; the figure is median (min - max, n runs).",
        "",
        md_table(["target", "figure", "verdict", "benchmark", "beside it"], rows),
        "",
        *why_missed(missed, found),
    ]


def why_missed(missed: Sequence[Target], found: dict[str, tuple[Outcome, dict[str, Any]]]) -> list[str]:
    """For each target not met that WHY_NOT_MET knows: the measurements of this run that bear on it."""
    explained = [t for t in missed if t.measurement in WHY_NOT_MET]
    if not explained:
        return []
    lines = ["### Targets not met: what this run measured beside them", ""]
    for t in explained:
        reason = WHY_NOT_MET[t.measurement]
        lines += [f"- **{t.what}**: {reason(found) if callable(reason) else reason}", ""]
    return lines


def section(o: Outcome) -> list[str]:
    b = o.bench
    lines = [f"## {b.name}: `{b.script}`", "", f"{b.what}."]
    if o.status.startswith("not run"):
        return lines + ["", f"**{o.status}**", ""]
    command = " ".join(["python", f"benchmarks/{b.script}", *o.args])
    lines += [
        "",
        f"`{command}` - {o.status}, {o.wall_s:.0f} s; other processes used {o.others_cpu_s:.0f} CPU-s meanwhile "
        f"(load average {o.load[0]} before, {o.load[1]} after).",
        "",
    ]
    doc = o.document or {}
    for note in doc.get("notes", []):
        lines += [f"- {note}"]
    ms = list(o.measurements.values())
    if ms:
        lines += [
            md_table(
                ["measurement", "median", "min - max", "n", "note"],
                [
                    [
                        m["name"],
                        fmt_value(m["median"], m["unit"])
                        if m.get("median") is not None
                        else m.get("unavailable", "-"),
                        fmt_range(m["min"], m["max"], m["unit"]) if m["n"] else "-",
                        m["n"],
                        m.get("note", ""),
                    ]
                    for m in ms
                ],
            ),
            "",
        ]
    comparisons = [(m, c) for m in ms for c in m.get("comparisons", [])]
    if comparisons:
        rows = []
        for m, c in comparisons:
            ours = fmt_value(m["median"], m["unit"]) if m.get("median") is not None else "-"
            if c.get("unavailable"):
                rows.append([m["name"], c["peer"], c["unavailable"], ours, "-", c.get("note", "")])
            else:
                ratio = fmt_ratio(c["ratio"]) if c.get("ratio") is not None else "-"
                rows.append([m["name"], c["peer"], fmt_figure(c, m["unit"]), ours, ratio, c.get("note", "")])
        lines += [
            "Peers, measured in the same run (ratio of medians, > 1: nbtrack is better: peer / nbtrack for times, "
            "sizes and overheads, nbtrack / peer for rates):",
            "",
            md_table(
                ["measurement", "peer", "peer: median (min - max, n)", "nbtrack median", "ratio", "note"],
                rows,
            ),
            "",
        ]
    if o.output:
        lines += [
            "<details><summary>the script's printed output</summary>",
            "",
            "```text",
            o.output.replace("```", "'''"),
            "```",
            "",
            "</details>",
            "",
        ]
    return lines


def render(outcomes: list[Outcome], meta: dict[str, Any]) -> str:
    """RESULTS.md. meta: command, started, wall_s, quick, commit, dirty (files changed in nbtrack/)."""
    quick = bool(meta.get("quick"))
    lines = header(outcomes, meta)
    lines += targets_section(outcomes, quick)
    lines += [
        "## Benchmarks",
        "",
        md_table(
            ["benchmark", "status", "wall time"],
            [
                [
                    f"[{o.bench.name}](#{o.bench.name}-{o.bench.script.replace('.', '')})",
                    o.status,
                    f"{o.wall_s:.0f} s" if o.wall_s else "-",
                ]
                for o in outcomes
            ],
        ),
        "",
    ]
    for o in outcomes:
        lines += section(o)
    return "\n".join(lines).rstrip() + "\n"


def save_outcome(o: Outcome, json_dir: Path) -> None:
    """What RESULTS.md needs besides the script's JSON, so that --from-json can write it again."""
    record = {
        "bench": o.bench.name,
        "status": o.status,
        "args": list(o.args),
        "wall_s": o.wall_s,
        "output": o.output,
        "others_cpu_s": o.others_cpu_s if o.others_cpu_s == o.others_cpu_s else None,
        "load": list(o.load),
    }
    (json_dir / f"{o.bench.name}.run.json").write_text(json.dumps(record, indent=1) + "\n")


def load_outcomes(json_dir: Path) -> tuple[list[Outcome], dict[str, Any]]:
    meta = json.loads((json_dir / "run.json").read_text())
    by_name = {b.name: b for b in BENCHES}
    outcomes = []
    for name in meta["benches"]:
        record = json.loads((json_dir / f"{name}.run.json").read_text())
        o = Outcome(
            by_name[name],
            record["status"],
            tuple(record["args"]),
            record["wall_s"],
            record["output"],
            others_cpu_s=record["others_cpu_s"] if record["others_cpu_s"] is not None else float("nan"),
            load=tuple(record["load"]),  # type: ignore[arg-type]
        )
        data = json_dir / f"{name}.json"
        if data.exists():
            o.document = json.loads(data.read_text())
            o.measurements = {m["id"]: m for m in o.document["measurements"]}
        outcomes.append(o)
    return outcomes, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (not the targets' sizes)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated benchmarks: {', '.join(b.name for b in BENCHES)}"
    )
    parser.add_argument(
        "--out", default=str(HERE / "RESULTS.md"), help="where to write (default benchmarks/RESULTS.md)"
    )
    parser.add_argument(
        "--json-dir", default=None, help="keep each script's JSON here (default: a temporary directory)"
    )
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="DIR",
        help="run nothing: write the results of an earlier run kept with --json-dir DIR",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        outcomes, meta = load_outcomes(Path(args.from_json))
        Path(args.out).write_text(render(outcomes, meta))
        print(f"wrote {args.out} from {args.from_json}")
        return 0
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(wanted) - {b.name for b in BENCHES}
    if unknown:
        parser.error(
            f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(b.name for b in BENCHES)}"
        )
    benches = [b for b in BENCHES if not wanted or b.name in wanted]
    dirty = git("status", "--porcelain", "--", "nbtrack")
    meta: dict[str, Any] = {
        "command": " ".join(
            ["python", "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "commit": git("rev-parse", "--short", "HEAD") or "?",
        "dirty": len(dirty.splitlines()) if dirty else 0,
        "source": str(REPO_ROOT),
        "benches": [b.name for b in benches],
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-json-") as tmp:
        json_dir = Path(args.json_dir) if args.json_dir else Path(tmp)
        json_dir.mkdir(parents=True, exist_ok=True)
        outcomes = []
        for bench in benches:
            outcomes.append(run_bench(bench, args.quick, json_dir))
            save_outcome(outcomes[-1], json_dir)
        meta["wall_s"] = time.perf_counter() - t0
        (json_dir / "run.json").write_text(json.dumps(meta, indent=1) + "\n")
    Path(args.out).write_text(render(outcomes, meta))
    print(f"\nwrote {args.out} ({meta['wall_s'] / 60:.1f} min)")
    for o in outcomes:
        print(f"  {o.bench.name:<12} {o.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
