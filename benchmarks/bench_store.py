"""The store and the package: import time, bytes on disk per point, and read speed.

(a) import time    `python -c "import nbtrack"` minus `python -c "pass"`, median over fresh subprocesses,
                   plus `-X importtime`'s cumulative figure for nbtrack, and which heavy modules
                   (numpy, tensorflow, keras, ipywidgets, ...) are loaded after `import nbtrack`.
                   Side by side, in fresh processes interleaved in the same run: the time of the `import`
                   statement itself (timed inside the process) for nbtrack, wandb and mlflow; and
                   `%load_ext nbtrack` in a fresh IPython `InteractiveShell` (the shell created before the
                   clock starts, as in a kernel), with the heavy modules it must not load (keras, tensorflow,
                   bqplot, ...)
(b) disk           one metric, --points points (default 1,000,000) of a noisy decaying loss logged through
                   `run.log`; after `finish` the WAL is checkpointed and the db file size divided by the
                   points. Compared with raw SQLite one row per point (run_id, key, step, timestamp, value)
                   plus an index, and with MLflow's `metrics` table layout (its DDL read from a database
                   MLflow creates itself) filled with the same points
                   (--disk-repeats runs, a different random seed each). Then the peers' own APIs at
                   --peer-points points (default 20,000; W&B and MLflow are slow) of one metric, --disk-repeats
                   each: nbtrack's db file, W&B offline's .wandb file(s) (`run.log({"loss": v})` per point) and
                   MLflow's SQLite tracking database (`MlflowClient.log_batch`, 1,000 points per call); file
                   size / points, the files' size for a run with no point shown apart
(c) read speed     `store.history(run_id, key)` in full and with samples=2000, median of --reads reads,
                   compared with selecting the same points from the raw SQLite table into numpy arrays

python benchmarks/bench_store.py
python benchmarks/bench_store.py --points 200000 --import-runs 7
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    REPO_ROOT,
    Results,
    fmt_ratio,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    short_reason,
    table,
    unavailable_reason,
    verdict,
)

quiet_environment()

TARGET_IMPORT_S = 0.1
TARGET_BYTES_PER_POINT = 24.0
TARGET_REDUCED_READ_S = 0.050
REDUCED_SAMPLES = 2000

# Modules `import nbtrack` should not load: optional integrations and anything slow to import.
HEAVY_MODULES = (
    "numpy",
    "pandas",
    "tensorflow",
    "keras",
    "torch",
    "jax",
    "ipywidgets",
    "bqplot",
    "anywidget",
    "IPython",
    "ipykernel",
    "matplotlib",
    "psutil",
    "pynvml",
    "psycopg",
    "optuna",
    "yaml",
    "sqlalchemy",
    "requests",
)

# MLflow's metrics table as of MLflow 3.x, used only when mlflow itself cannot be imported to create it.
MLFLOW_METRICS_FALLBACK_DDL = [
    'CREATE TABLE "metrics" ("key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL, '
    "run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL, "
    'CONSTRAINT metric_pk PRIMARY KEY ("key", timestamp, step, run_uuid, value, is_nan), CHECK (is_nan IN (0, 1)))',
    "CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid)",
    'CREATE INDEX index_metrics_run_uuid_key_step ON metrics (run_uuid, "key", step)',
]


# -- (a) import time --------------------------------------------------------------------------------
def _time_process(python: str, code: str, env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", code], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _importtime_cumulative(
    python: str, env: dict[str, str], cwd: str
) -> tuple[float, list[tuple[float, str]]]:
    """`-X importtime`: nbtrack's cumulative import seconds and the slowest modules it imported itself."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "import nbtrack"],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    total = math.nan
    selfs: list[tuple[float, str]] = []
    for line in lines:
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        self_us, cumulative_us, name = int(parts[0]), int(parts[1]), parts[2].rstrip()
        selfs.append((self_us / 1e6, name.strip()))
        if name.strip() == "nbtrack" and name.startswith(" ") and not name.startswith("  "):
            total = cumulative_us / 1e6
    selfs.sort(reverse=True)
    return total, selfs[:5]


def bench_import(python: str, runs: int) -> dict[str, object]:
    env = dict(os.environ)  # PYTHONPATH kept: run_all.py points it at the checkout being measured
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-import-") as cwd:  # not the repo's directory
        return _bench_import_in(python, runs, env, cwd)


def _bench_import_in(python: str, runs: int, env: dict[str, str], cwd: str) -> dict[str, object]:
    for code in ("pass", "import nbtrack"):  # warm the OS cache and the bytecode cache
        _time_process(python, code, env, cwd)
    bare, with_nbtrack = [], []
    for _ in range(runs):
        bare.append(_time_process(python, "pass", env, cwd))
        with_nbtrack.append(_time_process(python, "import nbtrack", env, cwd))
    importtimes = []
    slowest: list[tuple[float, str]] = []
    for _ in range(max(3, runs // 3)):
        total, slowest = _importtime_cumulative(python, env, cwd)
        importtimes.append(total)
    probe = (
        "import sys, json; before = set(sys.modules); import nbtrack; after = set(sys.modules); "
        "import nbtrack.store; from nbtrack.store import open_store; import nbtrack.run; "
        f"heavy = {list(HEAVY_MODULES)!r}; "
        "top = lambda names: sorted({n.split('.')[0] for n in names}); "
        "print(json.dumps({'file': nbtrack.__file__, 'new': len(after - before), "
        "'heavy_after_import': [m for m in heavy if m in after], "
        "'top_level_new': top(after - before), "
        "'heavy_after_store_import': [m for m in heavy if m in sys.modules]}))"
    )
    done = subprocess.run([python, "-c", probe], env=env, cwd=cwd, check=True, capture_output=True, text=True)
    modules = json.loads(done.stdout)
    return {
        "bare_s": median(bare),
        "import_s": median(with_nbtrack),
        "delta_s": median([b - a for a, b in zip(bare, with_nbtrack)]),
        "deltas": [b - a for a, b in zip(bare, with_nbtrack)],
        "importtime_s": median(importtimes),
        "slowest": slowest,
        "modules": modules,
        "runs": runs,
    }


def report_import(result: dict[str, object]) -> None:
    modules = result["modules"]
    assert isinstance(modules, dict)
    print(f"\n## (a) import time: median of {result['runs']} fresh processes each\n")
    print(
        table(
            ["measure", "median"],
            [
                ['python -c "pass"', fmt_seconds(result["bare_s"])],  # type: ignore[arg-type]
                ['python -c "import nbtrack"', fmt_seconds(result["import_s"])],  # type: ignore[arg-type]
                ["difference (paired per run)", fmt_seconds(result["delta_s"])],  # type: ignore[arg-type]
                ["-X importtime, nbtrack cumulative", fmt_seconds(result["importtime_s"])],  # type: ignore[arg-type]
            ],
        )
    )
    slowest = ", ".join(f"{name} {s * 1000:.1f} ms" for s, name in result["slowest"])  # type: ignore[union-attr]
    print(f"\nslowest modules (self time, -X importtime): {slowest}")
    print(f"imported from: {modules['file']}")
    print(
        f"modules added by `import nbtrack`: {modules['new']} (top-level packages: {', '.join(modules['top_level_new'])})"
    )
    heavy = modules["heavy_after_import"]
    print(
        f"heavy modules after `import nbtrack`: {', '.join(heavy) if heavy else 'none'} "
        f"(checked: {', '.join(HEAVY_MODULES)})"
    )
    after_store = modules["heavy_after_store_import"]
    print(
        f"heavy modules after also importing nbtrack.store: {', '.join(after_store) if after_store else 'none'}"
    )


# -- (a') import statements side by side, and %load_ext nbtrack ----------------------------------------
IMPORT_CODE = (
    "import time; started = time.perf_counter(); import {module}; print(time.perf_counter() - started)"
)
IMPORT_PEERS = ("wandb", "mlflow")

# Run in a fresh process: an IPython shell as a kernel has one, then `%load_ext nbtrack` timed.
LOAD_EXT_CODE = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
started = time.perf_counter()
shell.run_line_magic("load_ext", "nbtrack")
elapsed = time.perf_counter() - started
heavy = [m for m in HEAVY if m in sys.modules and m not in before]
print(json.dumps({"s": elapsed, "heavy": heavy, "new": len(set(sys.modules) - before)}))
"""
# `%load_ext nbtrack` must not import these (STYLE.md: heavy dependencies are lazy).
LOAD_EXT_HEAVY = (
    "keras",
    "tensorflow",
    "torch",
    "jax",
    "bqplot",
    "ipywidgets",
    "anywidget",
    "pandas",
    "psutil",
)


def _one_import(python: str, module: str, env: dict[str, str], cwd: str) -> float:
    done = subprocess.run(
        [python, "-c", IMPORT_CODE.format(module=module)], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        if last.startswith("ModuleNotFoundError: "):
            raise ModuleNotFoundError(last.split(": ", 1)[1])
        raise RuntimeError(last)
    return float(done.stdout.strip().splitlines()[-1])


def bench_import_peers(python: str, runs: int) -> dict[str, tuple[list[float], str]]:
    """The `import X` statement timed inside fresh processes, nbtrack and each peer interleaved per round.

    Returns module -> (seconds per run, why unavailable or '')."""
    env = dict(os.environ)
    modules = ("nbtrack", *IMPORT_PEERS)
    found: dict[str, tuple[list[float], str]] = {}
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-import-") as cwd:
        for module in modules:  # warm-up: OS cache and bytecode; finds out what is installed
            try:
                _one_import(python, module, env, cwd)
                found[module] = ([], "")
            except Exception as exc:
                found[module] = ([], unavailable_reason(exc))
        for _ in range(runs):
            for module in modules:
                times, why = found[module]
                if not why:
                    times.append(_one_import(python, module, env, cwd))
    return found


def bench_load_ext(python: str, runs: int) -> tuple[list[float], list[str], str]:
    """`%load_ext nbtrack` in fresh IPython shells: (seconds per run, heavy modules it loaded, why unavailable)."""
    env = dict(os.environ)
    code = f"HEAVY = {list(LOAD_EXT_HEAVY)!r}\n" + LOAD_EXT_CODE
    times: list[float] = []
    heavy: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-load-ext-") as cwd:
        env["NBTRACK_STORE"] = os.path.join(cwd, "store")
        for i in range(runs + 1):  # the first is a warm-up
            done = subprocess.run([python, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
                if last.startswith("ModuleNotFoundError: "):
                    return [], [], unavailable_reason(ModuleNotFoundError(last.split(": ", 1)[1]))
                return [], [], unavailable_reason(last)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            heavy.update(result["heavy"])
            if i:
                times.append(float(result["s"]))
    return times, sorted(heavy), ""


def report_import_peers(
    found: dict[str, tuple[list[float], str]], load_ext: tuple[list[float], list[str], str]
) -> None:
    base = found.get("nbtrack", ([], ""))[0]
    rows = []
    for module, (times, why) in found.items():
        if why:
            rows.append([f"import {module}", why, "-", "-", "-"])
            continue
        ratio = fmt_ratio(median(times) / median(base)) if base and module != "nbtrack" else "-"
        rows.append(
            [
                f"import {module}",
                fmt_seconds(median(times)),
                f"{fmt_seconds(min(times))} - {fmt_seconds(max(times))}",
                len(times),
                ratio,
            ]
        )
    times, heavy, why = load_ext
    if why:
        rows.append(["%load_ext nbtrack (fresh IPython shell)", why, "-", "-", "-"])
    else:
        rows.append(
            [
                "%load_ext nbtrack (fresh IPython shell)",
                fmt_seconds(median(times)),
                f"{fmt_seconds(min(times))} - {fmt_seconds(max(times))}",
                len(times),
                "-",
            ]
        )
    print("\n## (a') the import statement timed inside fresh processes, interleaved; `%load_ext nbtrack`\n")
    print(table(["statement", "median", "min - max", "n", "peer / nbtrack"], rows))
    if not why:
        print(
            f"\nheavy modules loaded by `%load_ext nbtrack`: {', '.join(heavy) if heavy else 'none'} "
            f"(checked: {', '.join(LOAD_EXT_HEAVY)})"
        )


# -- (b) bytes per point ----------------------------------------------------------------------------
def noisy_loss(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [2.3 * math.exp(-5.0 * i / n) + 0.05 + abs(rng.gauss(0.0, 0.02)) for i in range(n)]


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def db_facts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        conn.close()
    wal = db.with_name(db.name + "-wal")
    return {
        "size": db.stat().st_size,
        "page_size": page_size,
        "pages": pages,
        "free_pages": free,
        "wal": wal.stat().st_size if wal.exists() else 0,
    }


def table_sizes(db: Path) -> dict[str, int] | None:
    """Bytes per table and index (the dbstat virtual table), or None where SQLite was built without it."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return {name: int(size) for name, size in rows}


def vacuumed_size(db: Path) -> int:
    target = db.with_name(db.stem + "-vacuumed.db")
    conn = sqlite3.connect(db)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()
    size = target.stat().st_size
    target.unlink()
    return size


@dataclass
class Layout:
    name: str
    db: Path
    points: int
    write_s: float
    note: str = ""


def write_nbtrack(root: Path, values: list[float]) -> tuple[Layout, str]:
    import nbtrack

    store_dir = root / "nbtrack-store"
    run = nbtrack.init(project="bench-store", config={"points": len(values)}, store=store_dir)
    started = time.perf_counter()
    log = run.log
    for value in values:
        log({"loss": value})
    run.finish()
    elapsed = time.perf_counter() - started
    run.store.close()
    db = store_dir / "nbtrack.db"
    checkpoint(db)
    conn = sqlite3.connect(db)
    env_bytes = conn.execute(
        "SELECT length(environment) + length(summary) + length(config) FROM runs"
    ).fetchone()[0]
    chunks = conn.execute(
        "SELECT COUNT(*), SUM(length(vals) + length(times) + IFNULL(length(steps), 0)) FROM chunks"
    ).fetchone()
    conn.close()
    note = f"{chunks[0]:,} chunk rows, {chunks[1] / len(values):.2f} blob bytes/point; run record JSON {env_bytes:,} bytes"
    return Layout("nbtrack (chunked blobs)", db, len(values), elapsed, note), run.id


def write_raw_rows(root: Path, values: list[float], run_id: str) -> Layout:
    db = root / "raw-rows.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE points (run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, "
        "timestamp REAL NOT NULL, value REAL)"
    )
    conn.execute("CREATE INDEX points_run_key_step ON points (run_id, key, step)")
    t0 = time.time()
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO points (run_id, key, step, timestamp, value) VALUES (?, ?, ?, ?, ?)",
        ((run_id, "loss", i, t0 + i * 0.01, v) for i, v in enumerate(values)),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    checkpoint(db)
    return Layout(
        "raw SQLite, 1 row/point + index",
        db,
        len(values),
        elapsed,
        "(run_id, key, step, timestamp, value), index (run_id, key, step)",
    )


def mlflow_metrics_ddl(root: Path) -> tuple[list[str], str]:
    """The DDL of MLflow's `metrics` table and its indexes, from a tracking database MLflow creates."""
    try:
        import logging

        import mlflow

        for name in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        source = root / "mlflow-schema.db"
        mlflow.set_tracking_uri(f"sqlite:///{source}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.MlflowClient().search_experiments()
        conn = sqlite3.connect(source)
        rows = conn.execute(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'metrics' AND sql IS NOT NULL"
        ).fetchall()
        conn.close()
        ddl = [sql for kind, sql in sorted(rows, key=lambda r: r[0] != "table")]
        ddl = [re.sub(r",\s*FOREIGN KEY\([^)]*\) REFERENCES [^)]*\)", "", sql) for sql in ddl]
        if not ddl:
            raise RuntimeError("MLflow created no metrics table")
        return ddl, f"DDL from mlflow {mlflow.__version__}"
    except Exception as exc:
        return (
            MLFLOW_METRICS_FALLBACK_DDL,
            f"mlflow unavailable ({type(exc).__name__}: {exc}); MLflow 3.x DDL as written in this script",
        )


def write_mlflow_layout(
    root: Path, values: list[float], run_id: str, ddl_source: tuple[list[str], str] | None = None
) -> Layout:
    ddl, source = ddl_source or mlflow_metrics_ddl(root)
    db = root / "mlflow-layout.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in ddl:
        conn.execute(statement)
    run_uuid = (run_id * 4)[:32]
    t0 = int(time.time() * 1000)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        'INSERT INTO metrics ("key", value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)',
        (("loss", v, t0 + i * 10, run_uuid, i) for i, v in enumerate(values)),
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    checkpoint(db)
    return Layout(
        "MLflow metrics table layout",
        db,
        len(values),
        elapsed,
        f"{source}; rows inserted directly, not via MLflow's API",
    )


def report_disk(layouts: list[Layout]) -> float:
    print(f"\n## (b) bytes on disk per scalar point: {layouts[0].points:,} points of one metric\n")
    rows = []
    for layout in layouts:
        facts = db_facts(layout.db)
        vac = vacuumed_size(layout.db)
        rows.append(
            [
                layout.name,
                f"{facts['size']:,}",
                f"{facts['size'] / layout.points:.2f}",
                f"{vac / layout.points:.2f}",
                f"{facts['free_pages']:,} / {facts['pages']:,}",
                fmt_seconds(layout.write_s),
            ]
        )
    print(
        table(
            [
                "layout",
                "db bytes (WAL checkpointed)",
                "bytes/point",
                "bytes/point after VACUUM",
                "free / total pages",
                "write time",
            ],
            rows,
        )
    )
    print()
    for layout in layouts:
        sizes = table_sizes(layout.db)
        if sizes:
            big = {name: size for name, size in sizes.items() if size / layout.points >= 0.5}
            rest = sum(sizes.values()) - sum(big.values())
            parts = ", ".join(f"{name} {size / layout.points:.2f}" for name, size in big.items())
            parts += f", everything else {rest / layout.points:.2f}"
        else:
            parts = "dbstat unavailable"
        print(f"- {layout.name}: {layout.note}. bytes/point by table/index: {parts}")
    return db_facts(layouts[0].db)["size"] / layouts[0].points


# -- (b') bytes per point through each tracker's own API ---------------------------------------------
def file_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def disk_nbtrack(root: Path, values: list[float]) -> int:
    """nbtrack.db (WAL checkpointed) after `run.log({"loss": v})` per point and `finish()`."""
    import nbtrack

    store_dir = root / "nbtrack"
    run = nbtrack.init(project="bench-disk", store=store_dir)
    log = run.log
    for value in values:
        log({"loss": value})
    run.finish()
    run.store.close()
    db = store_dir / "nbtrack.db"
    checkpoint(db)
    return file_bytes([db, db.with_name(db.name + "-wal")])


def probe_wandb() -> str:
    import wandb

    return wandb.__version__


def disk_wandb(root: Path, values: list[float]) -> int:
    """The .wandb file(s) of an offline run after `run.log({"loss": v})` per point and `finish()`."""
    import wandb

    settings = wandb.Settings(
        console="off", disable_git=True, disable_code=True, save_code=False, x_disable_stats=True, silent=True
    )
    run = wandb.init(project="bench-disk", dir=str(root), mode="offline", settings=settings)
    log = run.log
    for value in values:
        log({"loss": value})
    run.finish()
    files = list(root.rglob("*.wandb"))
    if not files:
        raise RuntimeError(f"W&B wrote no .wandb file under {root}")
    return file_bytes(files)


def probe_mlflow() -> str:
    import logging

    import mlflow

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow.__version__


def disk_mlflow(root: Path, values: list[float]) -> int:
    """MLflow's SQLite tracking database after `MlflowClient.log_batch` (1,000 points a call) and set_terminated."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    db = root / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.create_experiment("bench-disk", artifact_location=str(root / "artifacts"))
    run = client.create_run(experiment)
    t0 = int(time.time() * 1000)
    for lo in range(0, len(values), 1000):
        batch = [Metric("loss", v, t0 + 10 * i, i) for i, v in enumerate(values[lo : lo + 1000], lo)]
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)
    stored = len(client.get_metric_history(run.info.run_id, "loss"))
    if stored != len(values):
        raise AssertionError(f"MLflow stored {stored} points, expected {len(values)}")
    try:
        client._tracking_client.store.engine.dispose()  # close its connections before measuring the file
    except AttributeError:
        pass
    checkpoint(db)
    return file_bytes([db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")])


PEER_DISK = (
    ("nbtrack", "nbtrack (db file)", None, disk_nbtrack),
    ("wandb", "W&B offline (.wandb file)", probe_wandb, disk_wandb),
    ("mlflow", "MLflow (SQLite tracking db, log_batch)", probe_mlflow, disk_mlflow),
)


def bench_peer_disk(points: int, repeats: int, root: Path) -> dict[str, dict[str, object]]:
    """Bytes per point at `points` points through each tracker's API, `repeats` times each, interleaved; plus the
    bytes of a run with no point (the fixed part). Returns key -> {label, per_point, empty, why}."""
    import warnings

    found: dict[str, dict[str, object]] = {}
    for key, label, probe, _ in PEER_DISK:
        found[key] = {"label": label, "per_point": [], "empty": None, "why": ""}
        if probe is not None:
            try:
                found[key]["version"] = probe()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                found[key]["why"] = unavailable_reason(exc)
    for repeat in range(-1, repeats):  # -1: the empty run
        values = noisy_loss(points, seed=100 + repeat) if repeat >= 0 else []
        order = PEER_DISK if repeat % 2 == 0 else PEER_DISK[::-1]
        for key, _, _, write in order:
            entry = found[key]
            if entry["why"]:
                continue
            workdir = root / f"disk-{key}-{repeat + 1}"
            workdir.mkdir(parents=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    size = write(workdir, values)
            except Exception as exc:
                entry["why"] = f"failed ({short_reason(exc)})"
                print(f"  {entry['label']}: {entry['why']}", flush=True)
                continue
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            if repeat < 0:
                entry["empty"] = size
            else:
                entry["per_point"].append(size / points)  # type: ignore[union-attr]
    return found


def report_peer_disk(found: dict[str, dict[str, object]], points: int) -> None:
    base = found["nbtrack"]["per_point"]
    rows = []
    for entry in found.values():
        per_point = entry["per_point"]
        if entry["why"] or not per_point:
            rows.append([entry["label"], entry["why"] or "no samples", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                entry["label"],
                f"{median(per_point):.2f}",  # type: ignore[arg-type]
                f"{min(per_point):.2f} - {max(per_point):.2f}",  # type: ignore[type-var]
                len(per_point),  # type: ignore[arg-type]
                f"{entry['empty']:,}" if entry["empty"] is not None else "-",
                fmt_ratio(median(per_point) / median(base))
                if base and entry is not found["nbtrack"]
                else "-",  # type: ignore[arg-type]
            ]
        )
    print(
        f"\n## (b') bytes on disk per point through each tracker's own API: {points:,} points of one metric, "
        "each repeat a fresh run\n"
    )
    print(
        table(
            [
                "tracker (what is measured)",
                "bytes/point",
                "min - max",
                "n",
                "bytes of a run with no point",
                "peer / nbtrack",
            ],
            rows,
        )
    )


# -- (c) read speed ---------------------------------------------------------------------------------
def time_reads(fn, reads: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """(first call seconds, median of the next `reads` calls, last result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    READ_TIMES.append(times)
    return first, median(times), result


READ_TIMES: list[list[float]] = []  # every time_reads call's timed reads, in order (for --json)


def bench_reads(
    store_dir: Path, run_id: str, raw_db: Path, values: list[float], reads: int
) -> dict[str, list[float]]:
    """Prints the read table; returns the timed reads: full, reduced (nbtrack) and raw (SQLite rows -> numpy)."""
    READ_TIMES.clear()
    import numpy as np

    from nbtrack.store import open_store

    store = open_store(store_dir, create=False)
    rows = []
    try:
        first, full_s, full = time_reads(lambda: store.history(run_id, "loss"), reads)
        if len(full) != len(values) or not np.array_equal(full.value, np.asarray(values)):  # type: ignore[arg-type, attr-defined]
            raise AssertionError(
                f"nbtrack read back {len(full)} points that differ from the {len(values)} logged"
            )  # type: ignore[arg-type]
        if not np.array_equal(full.step, np.arange(len(values))):  # type: ignore[attr-defined]
            raise AssertionError("nbtrack read back steps that are not 0..n-1")
        rows.append(["nbtrack history(), full", f"{len(full):,}", fmt_seconds(first), fmt_seconds(full_s)])  # type: ignore[arg-type]
        first, reduced_s, reduced = time_reads(
            lambda: store.history(run_id, "loss", samples=REDUCED_SAMPLES), reads
        )
        rows.append(
            [
                f"nbtrack history(samples={REDUCED_SAMPLES})",
                f"{len(reduced):,}",
                fmt_seconds(first),
                fmt_seconds(reduced_s),
            ]
        )  # type: ignore[arg-type]
    finally:
        store.close()

    conn = sqlite3.connect(raw_db)

    def raw_full() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fetched = conn.execute(
            "SELECT step, timestamp, value FROM points WHERE run_id = ? AND key = ? ORDER BY step",
            (run_id, "loss"),
        ).fetchall()
        step, tm, value = zip(*fetched)
        return np.asarray(step, np.int64), np.asarray(tm, np.float64), np.asarray(value, np.float64)

    raw_reads = max(3, reads // 2)
    first, raw_s, raw = time_reads(raw_full, raw_reads)
    conn.close()
    rows.append(
        [
            f"raw SQLite rows -> numpy (median of {raw_reads})",
            f"{len(raw[0]):,}",
            fmt_seconds(first),
            fmt_seconds(raw_s),
        ]
    )  # type: ignore[index]

    print(
        f"\n## (c) read speed over {len(values):,} points (OS cache warm), median of {reads} reads after a first one\n"
    )
    print(table(["read", "points returned", "first read", "median"], rows))
    full_times, reduced_times, raw_times = READ_TIMES
    return {"full": full_times, "reduced": reduced_times, "raw": raw_times}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--points",
        type=int,
        default=1_000_000,
        help="points of one metric for (b) and (c) (default 1,000,000)",
    )
    parser.add_argument(
        "--import-runs", type=int, default=15, help="fresh processes per import measurement (default 15)"
    )
    parser.add_argument("--reads", type=int, default=10, help="timed reads per read measurement (default 10)")
    parser.add_argument(
        "--peer-import-runs",
        type=int,
        default=7,
        help="fresh processes per `import X` of nbtrack, wandb and mlflow, and per `%%load_ext` (default 7)",
    )
    parser.add_argument(
        "--disk-repeats", type=int, default=5, help="runs per bytes-per-point layout and peer (default 5)"
    )
    parser.add_argument(
        "--peer-points",
        type=int,
        default=20_000,
        help="points per run for the W&B / MLflow / nbtrack API comparison (default 20,000)",
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for the import measurement (default: this one)"
    )
    parser.add_argument("--tmp", default=None, help="directory for the stores (default: the system temp dir)")
    parser.add_argument("--skip-import", action="store_true", help="skip (a) and (a')")
    parser.add_argument("--skip-peers", action="store_true", help="skip (b'), the peers' own APIs")
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    counts = (
        args.points,
        args.import_runs,
        args.reads,
        args.peer_import_runs,
        args.disk_repeats,
        args.peer_points,
    )
    if min(counts) <= 0:
        parser.error("sizes, runs and repeats must be positive")
    return args


def measure_imports(args: argparse.Namespace, results: Results) -> list[str]:
    """(a) `import nbtrack` in fresh processes, (a') beside `import wandb` / `import mlflow`, and `%load_ext`;
    returns the target lines."""
    result = bench_import(args.python, args.import_runs)
    report_import(result)
    delta = float(result["delta_s"])  # type: ignore[arg-type]
    heavy = result["modules"]["heavy_after_import"]  # type: ignore[index]
    verdicts = [
        f"- import nbtrack <= {TARGET_IMPORT_S * 1000:.0f} ms: {fmt_seconds(delta)} -> {verdict(delta <= TARGET_IMPORT_S)}",
        f"- import nbtrack loads no heavy module: {', '.join(heavy) or 'none loaded'} -> {verdict(not heavy)}",
    ]
    results.add(
        "store.import_process",
        '`python -c "import nbtrack"` minus `python -c "pass"` (paired fresh processes)',
        "s",
        result["deltas"],  # type: ignore[arg-type]
        note=f"heavy modules loaded: {', '.join(heavy) or 'none'}",
    )
    found = bench_import_peers(args.python, args.peer_import_runs)
    load_ext = bench_load_ext(args.python, args.peer_import_runs)
    report_import_peers(found, load_ext)
    times, why = found["nbtrack"]
    entry = (
        results.add("store.import", "`import nbtrack` (timed inside a fresh process)", "s", times)
        if not why
        else results.unavailable("store.import", "`import nbtrack`", "s", why)
    )
    for module in IMPORT_PEERS:
        peer_times, peer_why = found[module]
        results.compare(entry, f"import {module}", peer_times, unavailable=peer_why or None)
    ext_times, ext_heavy, ext_why = load_ext
    if ext_why:
        results.unavailable("store.load_ext", "`%load_ext nbtrack` in a fresh IPython shell", "s", ext_why)
    else:
        results.add(
            "store.load_ext",
            "`%load_ext nbtrack` in a fresh IPython shell (fresh process each)",
            "s",
            ext_times,
            note=f"heavy modules it loaded: {', '.join(ext_heavy) or 'none'} (checked: {', '.join(LOAD_EXT_HEAVY)})",
        )
    return verdicts


def measure_disk(
    args: argparse.Namespace, root: Path, results: Results, verdicts: list[str]
) -> tuple[Any, ...]:
    """(b) bytes per point of nbtrack's layout, raw rows and MLflow's `metrics` table, --disk-repeats times;
    returns the first repeat's (directory, nbtrack layout, raw layout, run id, values) for the reads."""
    ddl_source = mlflow_metrics_ddl(root)
    sizes: dict[str, list[float]] = {"nbtrack": [], "raw": [], "mlflow": []}
    write_s: list[float] = []
    for repeat in range(args.disk_repeats):
        values = noisy_loss(args.points, seed=repeat)
        here = root / f"r{repeat}"
        here.mkdir()
        nb_layout, run_id = write_nbtrack(here, values)
        raw_layout = write_raw_rows(here, values, run_id)
        mlflow_layout = write_mlflow_layout(here, values, run_id, ddl_source)
        write_s.append(nb_layout.write_s)
        if repeat == 0:
            report_disk([nb_layout, raw_layout, mlflow_layout])
            first = (here, nb_layout, raw_layout, run_id, values)
        for key, layout in (("nbtrack", nb_layout), ("raw", raw_layout), ("mlflow", mlflow_layout)):
            sizes[key].append(db_facts(layout.db)["size"] / layout.points)
        if repeat:
            shutil.rmtree(here)
        print(
            f"disk repeat {repeat + 1}/{args.disk_repeats}: nbtrack {sizes['nbtrack'][-1]:.2f}, raw rows "
            f"{sizes['raw'][-1]:.2f}, MLflow layout {sizes['mlflow'][-1]:.2f} bytes/point",
            flush=True,
        )
    per_point = median(sizes["nbtrack"])
    print(
        f"\nbytes/point over {args.disk_repeats} runs (seeds 0..{args.disk_repeats - 1}): nbtrack median "
        f"{per_point:.2f} ({min(sizes['nbtrack']):.2f} - {max(sizes['nbtrack']):.2f}); "
        f"nbtrack logged {args.points:,} run.log calls + finish in {fmt_seconds(median(write_s))} (median)."
    )
    verdicts.append(
        f"- <= {TARGET_BYTES_PER_POINT:g} bytes/point at {args.points:,} points: {per_point:.2f} -> "
        f"{verdict(per_point <= TARGET_BYTES_PER_POINT)}"
    )
    entry = results.add(
        "store.bytes_per_point",
        f"bytes on disk per point, {args.points:,} points of one metric (db file, WAL checkpointed)",
        "B/point",
        sizes["nbtrack"],
    )
    results.compare(
        entry, "raw SQLite, 1 row/point + index", sizes["raw"], note="same points, inserted directly"
    )
    results.compare(
        entry,
        "MLflow `metrics` table layout",
        sizes["mlflow"],
        note=f"{ddl_source[1]}; the same points inserted directly (MLflow's API is too slow for 1M points)",
    )
    return first


def measure_reads(
    args: argparse.Namespace, first: tuple[Any, ...], results: Results, verdicts: list[str]
) -> None:
    """(c) reading the first repeat's history back, reduced and whole, beside raw rows."""
    here, nb_layout, raw_layout, run_id, values = first
    reads = bench_reads(nb_layout.db.parent, run_id, raw_layout.db, values, args.reads)
    reduced_s = median(reads["reduced"])
    verdicts.append(
        f"- history(samples={REDUCED_SAMPLES}) over {args.points:,} points <= "
        f"{TARGET_REDUCED_READ_S * 1000:.0f} ms: {fmt_seconds(reduced_s)} -> {verdict(reduced_s <= TARGET_REDUCED_READ_S)}"
    )
    results.add(
        "store.history_reduced",
        f"`store.history(run, key, samples={REDUCED_SAMPLES})` over {args.points:,} points",
        "s",
        reads["reduced"],
    )
    entry = results.add(
        "store.history_full",
        f"`store.history(run, key)` of all {args.points:,} points",
        "s",
        reads["full"],
    )
    results.compare(entry, "raw SQLite rows -> numpy arrays", reads["raw"])
    shutil.rmtree(here)


def measure_peer_disk(args: argparse.Namespace, root: Path, results: Results) -> None:
    """(b') bytes per point through each tracker's own API: nbtrack, W&B offline, MLflow."""
    found_disk = bench_peer_disk(args.peer_points, args.disk_repeats, root)
    report_peer_disk(found_disk, args.peer_points)
    nb = found_disk["nbtrack"]
    name = f"bytes on disk per point through the API, {args.peer_points:,} points of one metric"
    if nb["why"]:
        entry = results.unavailable("store.bytes_per_point_api", name, "B/point", nb["why"])  # type: ignore[arg-type]
    else:
        entry = results.add(
            "store.bytes_per_point_api",
            name,
            "B/point",
            nb["per_point"],  # type: ignore[arg-type]
            note=f"nbtrack.db; a run with no point: {nb['empty']:,} bytes",
        )
    for key in ("wandb", "mlflow"):
        peer = found_disk[key]
        note = f"a run with no point: {peer['empty']:,} bytes" if peer["empty"] is not None else ""
        results.compare(
            entry,
            str(peer["label"]),
            peer["per_point"],  # type: ignore[arg-type]
            unavailable=str(peer["why"]) or None,
            note=note,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("# bench_store\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "ipython", "wandb", "mlflow"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")
    results = Results("bench_store")
    verdicts = [] if args.skip_import else measure_imports(args, results)
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-store-", dir=args.tmp) as tmp:
        root = Path(tmp)
        first = measure_disk(args, root, results, verdicts)
        measure_reads(args, first, results, verdicts)
        if not args.skip_peers:
            measure_peer_disk(args, root, results)
    print("\n## Targets\n")
    print("\n".join(verdicts))
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
