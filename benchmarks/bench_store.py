"""The store and the package: import time, bytes on disk per point, and read speed.

(a) import time    `python -c "import nbtrack"` minus `python -c "pass"`, median over fresh subprocesses,
                   plus `-X importtime`'s cumulative figure for nbtrack, and which heavy modules
                   (numpy, tensorflow, keras, ipywidgets, ...) are loaded after `import nbtrack`
(b) disk           one metric, --points points (default 1,000,000) of a noisy decaying loss logged through
                   `run.log`; after `finish` the WAL is checkpointed and the db file size divided by the
                   points. Compared with raw SQLite one row per point (run_id, key, step, timestamp, value)
                   plus an index, and with MLflow's `metrics` table layout (its DDL read from a database
                   MLflow creates itself) filled with the same points
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
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    REPO_ROOT,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    table,
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
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(
        prefix="nbtrack-bench-import-"
    ) as cwd:  # not the repo: the installed package
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


def write_mlflow_layout(root: Path, values: list[float], run_id: str) -> Layout:
    ddl, source = mlflow_metrics_ddl(root)
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
    return first, median(times), result


def bench_reads(store_dir: Path, run_id: str, raw_db: Path, values: list[float], reads: int) -> float:
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
    return reduced_s


def main(argv: list[str] | None = None) -> int:
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
        "--python", default=sys.executable, help="interpreter for the import measurement (default: this one)"
    )
    parser.add_argument("--tmp", default=None, help="directory for the stores (default: the system temp dir)")
    parser.add_argument("--skip-import", action="store_true", help="skip (a)")
    args = parser.parse_args(argv)
    if args.points <= 0 or args.import_runs <= 0 or args.reads <= 0:
        parser.error("--points, --import-runs and --reads must be positive")

    print("# bench_store\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "mlflow"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")

    verdicts = []
    if not args.skip_import:
        result = bench_import(args.python, args.import_runs)
        report_import(result)
        delta = float(result["delta_s"])  # type: ignore[arg-type]
        verdicts.append(
            f"- import nbtrack <= {TARGET_IMPORT_S * 1000:.0f} ms: {fmt_seconds(delta)} -> {verdict(delta <= TARGET_IMPORT_S)}"
        )
        heavy = result["modules"]["heavy_after_import"]  # type: ignore[index]
        verdicts.append(
            f"- import nbtrack loads no heavy module: {', '.join(heavy) or 'none loaded'} -> {verdict(not heavy)}"
        )

    values = noisy_loss(args.points)
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-store-", dir=args.tmp) as tmp:
        root = Path(tmp)
        nb_layout, run_id = write_nbtrack(root, values)
        raw_layout = write_raw_rows(root, values, run_id)
        mlflow_layout = write_mlflow_layout(root, values, run_id)
        per_point = report_disk([nb_layout, raw_layout, mlflow_layout])
        print(
            f"\nnbtrack logged {args.points:,} run.log calls + finish in {nb_layout.write_s:.2f} s "
            f"({args.points / nb_layout.write_s:,.0f} calls/s)."
        )
        verdicts.append(
            f"- <= {TARGET_BYTES_PER_POINT:g} bytes/point at {args.points:,} points: {per_point:.2f} -> "
            f"{verdict(per_point <= TARGET_BYTES_PER_POINT)}"
        )
        reduced_s = bench_reads(nb_layout.db.parent, run_id, raw_layout.db, values, args.reads)
        verdicts.append(
            f"- history(samples={REDUCED_SAMPLES}) over {args.points:,} points <= "
            f"{TARGET_REDUCED_READ_S * 1000:.0f} ms: {fmt_seconds(reduced_s)} -> {verdict(reduced_s <= TARGET_REDUCED_READ_S)}"
        )

    print("\n## Targets\n")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
