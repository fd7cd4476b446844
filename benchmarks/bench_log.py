"""Logging throughput: nbtrack's `run.log` side by side with the trackers people compare it with.

Every contestant logs the same payload, two float scalars per call (``{"loss": ..., "accuracy": ...}``),
N times in a plain Python loop, and is timed in three parts:

    init   start a run (not part of the comparison, shown for reference)
    loop   the N logging calls: what the training loop pays           -> calls/s
    close  finish / flush / commit until everything is on disk         -> end-to-end = loop + close

Contestants:

    python dict append   appending the payload to a list: the ceiling, nothing is stored
    raw SQLite           (step, key, value) rows, executemany every 1024 calls, one commit: the floor a
                         SQLite-backed tracker can reach (WAL, synchronous=NORMAL, like nbtrack's store)
    nbtrack              nbtrack.init(store=<fresh dir>) / run.log / run.finish()
    nbtrack (flush)      the same, with end-to-end measured to run.flush() (points durable; finish untimed)
    W&B offline          wandb.init(mode="offline", dir=<fresh dir>) / run.log / run.finish()
    tf.summary           tf.summary.scalar x2 per call into create_file_writer / writer.flush(); close()
    MLflow (SQLite)      mlflow.log_metrics(step=i) into a sqlite:/// tracking store / end_run()

All contestants run in one process, `--repeats` times, the order reversed on every other repeat; every number
reported is the median over repeats. A peer that cannot be imported or fails is reported as unavailable and
the others are still measured.

    python benchmarks/bench_log.py                       # 20,000 calls, 5 repeats
    python benchmarks/bench_log.py --calls 100000 --repeats 7 --only nbtrack,raw-sqlite
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    Results,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    machine_lines,
    median,
    probe_all,
    quiet_environment,
    short_reason,
    table,
    verdict,
)

quiet_environment()

RAW_SQLITE_BATCH = 1024  # calls per executemany, the size of one nbtrack chunk

# Targets from the issue.
TARGET_CALLS_PER_S = 200_000
TARGET_VS_WANDB = 25.0
TARGET_VS_RAW_SQLITE = 0.5


@dataclass
class Payload:
    """The values logged: a noisy decaying loss and a noisy rising accuracy, as Python floats."""

    loss: list[float]
    accuracy: list[float]

    @classmethod
    def make(cls, n: int, seed: int = 0) -> Payload:
        rng = random.Random(seed)
        loss = [2.3 * math.exp(-5.0 * i / n) + 0.05 + abs(rng.gauss(0.0, 0.02)) for i in range(n)]
        accuracy = [
            min(1.0, 0.1 + 0.85 * (1.0 - math.exp(-5.0 * i / n)) + rng.gauss(0.0, 0.01)) for i in range(n)
        ]
        return cls(loss, accuracy)


@dataclass
class Sample:
    calls: int
    init_s: float
    loop_s: float
    close_s: float

    @property
    def end_to_end_s(self) -> float:
        return self.loop_s + self.close_s


# A contestant's benchmark: (calls, payload, fresh working directory) -> Sample.
BenchFn = Callable[[int, Payload, Path], Sample]


@dataclass
class Contestant:
    key: str
    label: str
    probe: Callable[[], str]  # imports what it needs, returns a version string; raises when unavailable
    bench: BenchFn
    calls: int = 0
    version: str = ""
    unavailable: str | None = None
    samples: list[Sample] = field(default_factory=list)


# -- contestants ------------------------------------------------------------------------------------
def probe_python() -> str:
    return f"Python {sys.version.split()[0]}"


def bench_python(n: int, payload: Payload, workdir: Path) -> Sample:
    loss, accuracy = payload.loss, payload.accuracy
    t0 = time.perf_counter()
    history: list[tuple[int, dict[str, float]]] = []
    t1 = time.perf_counter()
    append = history.append
    for i in range(n):
        append((i, {"loss": loss[i], "accuracy": accuracy[i]}))
    t2 = time.perf_counter()
    return Sample(n, t1 - t0, t2 - t1, 0.0)


def probe_sqlite() -> str:
    return f"SQLite {sqlite3.sqlite_version}"


def bench_raw_sqlite(n: int, payload: Payload, workdir: Path) -> Sample:
    loss, accuracy = payload.loss, payload.accuracy
    t0 = time.perf_counter()
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE points (step INTEGER NOT NULL, key TEXT NOT NULL, value REAL)")
    insert = "INSERT INTO points (step, key, value) VALUES (?, ?, ?)"
    t1 = time.perf_counter()
    conn.execute("BEGIN")
    rows: list[tuple[int, str, float]] = []
    for i in range(n):
        rows.append((i, "loss", loss[i]))
        rows.append((i, "accuracy", accuracy[i]))
        if len(rows) >= 2 * RAW_SQLITE_BATCH:
            conn.executemany(insert, rows)
            rows = []
    t2 = time.perf_counter()
    if rows:
        conn.executemany(insert, rows)
    conn.execute("COMMIT")
    conn.close()
    t3 = time.perf_counter()
    check = sqlite3.connect(workdir / "raw.db")
    stored = check.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    check.close()
    if stored != 2 * n:
        raise AssertionError(f"raw SQLite stored {stored} rows, expected {2 * n}")
    return Sample(n, t1 - t0, t2 - t1, t3 - t2)


def probe_nbtrack() -> str:
    import nbtrack

    return f"nbtrack {nbtrack.__version__}"


def _check_nbtrack(store_dir: Path, run_id: str, n: int) -> None:
    """Everything logged must be in the store, with the right last value (outside the timed part)."""
    from nbtrack.store import open_store

    store = open_store(store_dir, create=False)
    try:
        stats = store.metric_stats(run_id)
        counts = {key: stats[key].count if key in stats else 0 for key in ("loss", "accuracy")}
        if counts != {"loss": n, "accuracy": n}:
            raise AssertionError(f"nbtrack stored {counts} points, expected {n} per metric")
    finally:
        store.close()


def _bench_nbtrack(n: int, payload: Payload, workdir: Path, *, close_with_flush: bool) -> Sample:
    import nbtrack

    loss, accuracy = payload.loss, payload.accuracy
    store_dir = workdir / "store"
    t0 = time.perf_counter()
    run = nbtrack.init(project="bench", config={"calls": n}, store=store_dir)
    t1 = time.perf_counter()
    log = run.log
    for i in range(n):
        log({"loss": loss[i], "accuracy": accuracy[i]})
    t2 = time.perf_counter()
    if close_with_flush:
        if not run.flush():
            raise RuntimeError("nbtrack run.flush() reported a failure")
        t3 = time.perf_counter()
        run.finish()
    else:
        run.finish()
        t3 = time.perf_counter()
    run.store.close()
    _check_nbtrack(store_dir, run.id, n)
    return Sample(n, t1 - t0, t2 - t1, t3 - t2)


def bench_nbtrack(n: int, payload: Payload, workdir: Path) -> Sample:
    return _bench_nbtrack(n, payload, workdir, close_with_flush=False)


def bench_nbtrack_flush(n: int, payload: Payload, workdir: Path) -> Sample:
    return _bench_nbtrack(n, payload, workdir, close_with_flush=True)


def probe_wandb() -> str:
    import wandb

    return f"wandb {wandb.__version__}"


def bench_wandb(n: int, payload: Payload, workdir: Path) -> Sample:
    import wandb

    loss, accuracy = payload.loss, payload.accuracy
    settings = wandb.Settings(
        console="off", disable_git=True, disable_code=True, save_code=False, x_disable_stats=True, silent=True
    )
    t0 = time.perf_counter()
    run = wandb.init(
        project="bench", dir=str(workdir), mode="offline", config={"calls": n}, settings=settings
    )
    t1 = time.perf_counter()
    log = run.log
    for i in range(n):
        log({"loss": loss[i], "accuracy": accuracy[i]})
    t2 = time.perf_counter()
    run.finish()
    t3 = time.perf_counter()
    return Sample(n, t1 - t0, t2 - t1, t3 - t2)


def probe_tensorflow() -> str:
    import tensorflow as tf

    return f"tensorflow {tf.__version__}"


def bench_tensorflow(n: int, payload: Payload, workdir: Path) -> Sample:
    import tensorflow as tf

    loss, accuracy = payload.loss, payload.accuracy
    t0 = time.perf_counter()
    writer = tf.summary.create_file_writer(str(workdir / "tb"))
    t1 = time.perf_counter()
    scalar = tf.summary.scalar
    with writer.as_default():
        for i in range(n):
            scalar("loss", loss[i], step=i)
            scalar("accuracy", accuracy[i], step=i)
    t2 = time.perf_counter()
    writer.flush()
    writer.close()
    t3 = time.perf_counter()
    return Sample(n, t1 - t0, t2 - t1, t3 - t2)


def probe_mlflow() -> str:
    import mlflow

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return f"mlflow {mlflow.__version__}"


def bench_mlflow(n: int, payload: Payload, workdir: Path) -> Sample:
    import mlflow

    loss, accuracy = payload.loss, payload.accuracy
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    mlflow.start_run()
    t1 = time.perf_counter()
    log_metrics = mlflow.log_metrics
    for i in range(n):
        log_metrics({"loss": loss[i], "accuracy": accuracy[i]}, step=i)
    t2 = time.perf_counter()
    mlflow.end_run()
    t3 = time.perf_counter()
    return Sample(n, t1 - t0, t2 - t1, t3 - t2)


def contestants(args: argparse.Namespace) -> list[Contestant]:
    every = [
        Contestant("python", "python dict append (ceiling)", probe_python, bench_python, args.calls),
        Contestant(
            "raw-sqlite", "raw SQLite executemany (floor)", probe_sqlite, bench_raw_sqlite, args.calls
        ),
        Contestant("nbtrack", "nbtrack", probe_nbtrack, bench_nbtrack, args.calls),
        Contestant(
            "nbtrack-flush", "nbtrack, e2e to flush()", probe_nbtrack, bench_nbtrack_flush, args.calls
        ),
        Contestant("wandb", "W&B offline", probe_wandb, bench_wandb, args.wandb_calls or args.calls),
        Contestant(
            "tensorflow",
            "tf.summary file writer",
            probe_tensorflow,
            bench_tensorflow,
            args.tf_calls or args.calls,
        ),
        Contestant("mlflow", "MLflow (SQLite backend)", probe_mlflow, bench_mlflow, args.mlflow_calls),
    ]
    if args.only:
        wanted = {k.strip() for k in args.only.split(",")}
        unknown = wanted - {c.key for c in every}
        if unknown:
            raise SystemExit(
                f"--only: unknown contestant(s) {', '.join(sorted(unknown))}; known: {', '.join(c.key for c in every)}"
            )
        every = [c for c in every if c.key in wanted]
    return every


# -- running ----------------------------------------------------------------------------------------
def run_one(entry: Contestant, calls: int, payload: Payload, root: Path, tag: str) -> Sample | None:
    """One timed run of one contestant in a fresh directory; marks the contestant unavailable on failure."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{entry.key}-{tag}-", dir=root))
    gc.collect()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return entry.bench(calls, payload, workdir)
    except Exception as exc:
        entry.unavailable = f"failed: {short_reason(exc)}"
        print(f"  {entry.label}: {entry.unavailable}", flush=True)
        traceback.print_exc(limit=3)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_all(entries: list[Contestant], args: argparse.Namespace, root: Path) -> None:
    payload = Payload.make(max([args.calls, *(c.calls for c in entries)]))
    warm = Payload.make(args.warmup_calls, seed=1)
    print(f"\nwarm-up: {args.warmup_calls} calls each", flush=True)
    for entry in entries:
        if entry.unavailable is None:
            run_one(entry, min(args.warmup_calls, entry.calls), warm, root, "warmup")
    for repeat in range(args.repeats):
        order = entries if repeat % 2 == 0 else entries[::-1]
        print(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(c.key for c in order if c.unavailable is None),
            flush=True,
        )
        for entry in order:
            if entry.unavailable is not None:
                continue
            sample = run_one(entry, entry.calls, payload, root, f"r{repeat}")
            if sample is not None:
                entry.samples.append(sample)
                print(
                    f"    {entry.key:<14} loop {sample.calls / sample.loop_s:>12,.0f} calls/s   "
                    f"end-to-end {sample.end_to_end_s:8.3f} s   init {sample.init_s:7.3f} s",
                    flush=True,
                )


# -- reporting --------------------------------------------------------------------------------------
@dataclass
class Summary:
    label: str
    calls: int
    init_s: float
    loop_rate: float
    loop_rate_min: float
    loop_rate_max: float
    close_s: float
    end_to_end_s: float

    @property
    def durable_rate(self) -> float:
        return self.calls / self.end_to_end_s if self.end_to_end_s > 0 else float("inf")


def summarize(entry: Contestant) -> Summary | None:
    if not entry.samples:
        return None
    rates = [s.calls / s.loop_s for s in entry.samples]
    return Summary(
        label=entry.label,
        calls=entry.calls,
        init_s=median([s.init_s for s in entry.samples]),
        loop_rate=median(rates),
        loop_rate_min=min(rates),
        loop_rate_max=max(rates),
        close_s=median([s.close_s for s in entry.samples]),
        end_to_end_s=median([s.end_to_end_s for s in entry.samples]),
    )


def report(entries: list[Contestant], args: argparse.Namespace) -> None:
    summaries = {c.key: summarize(c) for c in entries}
    print_throughput(entries, summaries, args.repeats)
    nb = summaries.get("nbtrack")
    if nb is None:
        print("\nnbtrack was not measured; no ratios.")
        return
    ratio_rows = []
    for entry in entries:
        s = summaries[entry.key]
        if entry.key == "nbtrack":
            continue
        if s is None:
            ratio_rows.append([entry.label, "-", "-"])
            continue
        ratio_rows.append(
            [entry.label, fmt_ratio(nb.loop_rate / s.loop_rate), fmt_ratio(nb.durable_rate / s.durable_rate)]
        )
    print("\n## nbtrack relative to each contestant (nbtrack / contestant; > 1 means nbtrack is faster)\n")
    print(table(["contestant", "loop calls/s ratio", "durable calls/s ratio"], ratio_rows))
    print_targets(entries, summaries, nb)


def print_throughput(entries: list[Contestant], summaries: dict[str, Summary | None], repeats: int) -> None:
    rows = []
    for entry in entries:
        s = summaries[entry.key]
        if s is None:
            rows.append([entry.label, f"{entry.calls:,}", "-", "unavailable", "-", "-", "-", "-", 0])
            continue
        rows.append(
            [
                s.label,
                f"{s.calls:,}",
                fmt_seconds(s.init_s),
                fmt_rate(s.loop_rate),
                f"{fmt_rate(s.loop_rate_min)} - {fmt_rate(s.loop_rate_max)}",
                fmt_seconds(s.close_s),
                fmt_seconds(s.end_to_end_s),
                fmt_rate(s.durable_rate),
                len(entry.samples),
            ]
        )
    print(f"\n## Logging throughput: 2 float scalars per call, medians of {repeats} repeats\n")
    print(
        table(
            [
                "contestant",
                "calls",
                "init",
                "loop calls/s",
                "loop range (min - max)",
                "close",
                "end-to-end (loop+close)",
                "durable calls/s",
                "n",
            ],
            rows,
        )
    )
    for entry in entries:
        if summaries[entry.key] is None:
            print(f"\n{entry.label} unavailable: {entry.unavailable}", end="")
    print()
    print(
        "\nloop calls/s = calls / loop time; close = finish/flush/commit until on disk; durable calls/s = calls / "
        "end-to-end.\nEnd-to-end excludes init. Peers with fewer calls pay their fixed close cost over fewer calls."
    )


def print_targets(entries: list[Contestant], summaries: dict[str, Summary | None], nb: Summary) -> None:
    print("\n## Targets\n")
    print(
        f"- nbtrack >= {TARGET_CALLS_PER_S:,} calls/s (loop): {fmt_rate(nb.loop_rate)} calls/s -> "
        f"{verdict(nb.loop_rate >= TARGET_CALLS_PER_S)}"
    )
    wb = summaries.get("wandb")
    if wb is None:
        reason = next((c.unavailable for c in entries if c.key == "wandb"), None) or "not run (--only)"
        print(f"- nbtrack >= {TARGET_VS_WANDB:g}x W&B offline (loop calls/s): W&B not measured: {reason}")
    else:
        ratio = nb.loop_rate / wb.loop_rate
        print(
            f"- nbtrack >= {TARGET_VS_WANDB:g}x W&B offline (loop calls/s): {fmt_ratio(ratio)} -> "
            f"{verdict(ratio >= TARGET_VS_WANDB)} (durable calls/s: {fmt_ratio(nb.durable_rate / wb.durable_rate)})"
        )
    raw = summaries.get("raw-sqlite")
    if raw is None:
        print(f"- nbtrack >= {TARGET_VS_RAW_SQLITE:g}x raw SQLite: raw SQLite not measured")
        return
    durable = nb.durable_rate / raw.durable_rate
    loop = nb.loop_rate / raw.loop_rate
    line = (
        f"- nbtrack >= {TARGET_VS_RAW_SQLITE:g}x the raw SQLite floor (durable calls/s, loop+finish): "
        f"{fmt_ratio(durable)} -> {verdict(durable >= TARGET_VS_RAW_SQLITE)}; loop calls/s: {fmt_ratio(loop)} -> "
        f"{verdict(loop >= TARGET_VS_RAW_SQLITE)}"
    )
    flush = summaries.get("nbtrack-flush")
    if flush is not None:
        line += f"; durable to flush(): {fmt_ratio(flush.durable_rate / raw.durable_rate)}"
    print(line)


def record(entries: list[Contestant], results: Results) -> None:
    """nbtrack's loop and durable rates, each with every peer's from the same run (for --json)."""
    by_key = {c.key: c for c in entries}
    nb = by_key.get("nbtrack")
    peers = [c for c in entries if c.key not in ("nbtrack", "nbtrack-flush")]
    for what, rate in (
        ("loop", lambda s: s.calls / s.loop_s),
        ("durable", lambda s: s.calls / s.end_to_end_s),
    ):
        name = (
            "`run.log` calls/s in the loop (2 scalars per call)"
            if what == "loop"
            else "`run.log` durable calls/s (loop + `finish()`)"
        )
        if nb is None or not nb.samples:
            results.unavailable(
                f"log.{what}_rate", name, "calls/s", nb.unavailable if nb else "not run (--only)"
            )
            continue
        entry = results.add(
            f"log.{what}_rate",
            name,
            "calls/s",
            [rate(s) for s in nb.samples],
            better="higher",
            note=f"{nb.calls:,} calls per repeat",
        )
        for peer in peers:
            calls = f"{peer.calls:,} calls" + (" (fewer: it is slow)" if peer.calls != nb.calls else "")
            if peer.samples:
                results.compare(entry, peer.label, [rate(s) for s in peer.samples], note=calls)
            else:
                results.compare(entry, peer.label, unavailable=peer.unavailable or "no samples", note=calls)
    flush = by_key.get("nbtrack-flush")
    if flush is not None and flush.samples:
        entry = results.add(
            "log.flush_durable_rate",
            "`run.log` durable calls/s to `run.flush()` (points committed; `finish()` untimed)",
            "calls/s",
            [s.calls / s.end_to_end_s for s in flush.samples],
            better="higher",
        )
        raw = by_key.get("raw-sqlite")
        if raw is not None and raw.samples:
            results.compare(entry, raw.label, [s.calls / s.end_to_end_s for s in raw.samples])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=int, default=20_000, help="log calls per contestant and repeat (default 20,000)"
    )
    parser.add_argument("--wandb-calls", type=int, default=0, help="log calls for W&B (default: --calls)")
    parser.add_argument("--tf-calls", type=int, default=0, help="log calls for tf.summary (default: --calls)")
    parser.add_argument(
        "--mlflow-calls", type=int, default=1_000, help="log calls for MLflow (default 1,000; it is slow)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats; medians are reported (default 5)"
    )
    parser.add_argument(
        "--warmup-calls", type=int, default=500, help="calls of the untimed warm-up run per contestant"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contestant keys: python, raw-sqlite, nbtrack, "
        "nbtrack-flush, wandb, tensorflow, mlflow",
    )
    parser.add_argument(
        "--tmp", default=None, help="directory for the runs' files (default: the system temp dir)"
    )
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    if args.calls <= 0 or args.repeats <= 0 or args.mlflow_calls <= 0:
        parser.error("--calls, --repeats and --mlflow-calls must be positive")

    print("# bench_log\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "wandb", "tensorflow-cpu", "tensorboard", "mlflow"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    entries = contestants(args)
    print("\ncontestants:")
    probe_all(entries)
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-log-", dir=args.tmp) as tmp:
        print(f"working directory: {tmp}")
        run_all(entries, args, Path(tmp))
    report(entries, args)
    results = Results("bench_log")
    record(entries, results)
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
