"""Run reports (issue #6): how long `nbtrack.report(...)` takes and how big the HTML file it writes is.

(i)   quickstart  notebooks/01_quickstart.ipynb executed once by nbclient in a real kernel
                  (NBTRACK_DEMO_EPOCHS=--epochs, default 5) into a temporary store; then
                  `nbtrack.report(<executed notebook>, output=...)` timed. Target: < 2 s, < 1 MB.
(ii)  comparison  --compare-runs runs (default 50) x --compare-points points (default 100,000) of "loss" and
                  "val_loss", built through the store API (create_run + one write_batch of SeriesBatch each), with
                  a config of a few varying keys and summary metrics; `nbtrack.report(runs=<ids>, output=...)`
                  timed. Target: < 5 s, < 3 MB.
(iii) run length  `nbtrack.report(run=<id>, output=...)` of one run of --short-points (default 10,000) and one of
                  --long-points (default 1,000,000) points of "loss" and "val_loss". Informational; the check is
                  that the file does not grow with the run's length (long/short size <= 1.25).

Each report is made once (first call: imports, cold caches), then --repeats times (default 7, at least 5); the table
shows the median and the min-max. Sizes are of the file written, in bytes (1 MB = 1,000,000 bytes), with how much
of it is inline SVG and data: URIs. Every report is checked: one CSP meta tag, no <script>, every run named.

Needs nbconvert, nbclient and ipykernel (the `notebook` extra) besides the `keras` and `widgets` extras.

python benchmarks/bench_report.py
python benchmarks/bench_report.py --quick
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    REPO_ROOT,
    Results,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    short_reason,
    table,
    verdict,
)

quiet_environment()

TARGET_NOTEBOOK_S = 2.0
TARGET_NOTEBOOK_BYTES = 1_000_000
TARGET_COMPARE_S = 5.0
TARGET_COMPARE_BYTES = 3_000_000
MAX_GROWTH = 1.25  # long-run report size / short-run report size
T0 = 1_700_000_000.0


@dataclass
class Row:
    what: str
    target: str
    times: list[float]
    first_s: float
    size: int
    composition: str
    ok: bool | None  # None: informational
    sizes: list[int] = field(default_factory=list)  # the file written by each timed call
    key: str = ""


def fmt_bytes(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:,.2f} MB"
    if n >= 1_000:
        return f"{n / 1_000:,.1f} kB"
    return f"{n:,.0f} B"


def composition(text: str) -> str:
    """How much of a report is inline SVG and data: URIs (attached logs, images)."""
    svg = sum(len(m.encode("utf-8")) for m in re.findall(r"<svg\b.*?</svg>", text, re.DOTALL))
    data = sum(len(m) for m in re.findall(r"data:[a-z]+/[^'\"\s)]+", text))
    paths = len(re.findall(r"<path\b", text))
    return f"SVG {fmt_bytes(svg)} ({paths} paths), data: URIs {fmt_bytes(data)}"


def check_report(path: Path, must_name: list[str]) -> str:
    text = path.read_text(encoding="utf-8")
    if text.count("http-equiv='Content-Security-Policy'") != 1:
        raise AssertionError(f"{path}: not exactly one CSP meta tag")
    if "<script" in text.lower():
        raise AssertionError(f"{path}: holds a <script>")
    missing = [name for name in must_name if name not in text]
    if missing:
        raise AssertionError(f"{path}: {len(missing)} runs not named, e.g. {missing[:3]}")
    return text


def timed(fn: Callable[[], Path], repeats: int) -> tuple[float, list[float], Path]:
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    SIZES.clear()
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
        SIZES.append(result.stat().st_size)
    return first, times, result


SIZES: list[int] = []  # the size of each file the last `timed` call wrote (for --json)


def spread(times: list[float]) -> str:
    return f"{fmt_seconds(min(times))} - {fmt_seconds(max(times))}" if times else "-"


def noisy_curve(n: int, seed: int, scale: float = 2.3) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    return scale * np.exp(-5.0 * x / n) + 0.05 + np.abs(rng.normal(0.0, 0.02, n))


def add_run(store: Any, project: str, run_id: str, created: float, points: int, seed: int) -> None:
    """One finished run: "loss" and "val_loss" of `points` points each, a config and summary metrics."""
    import numpy as np

    from nbtrack.store.base import SeriesBatch, WriteBatch

    rng = random.Random(seed)
    config = {
        "lr": 10 ** rng.uniform(-4, -1),
        "batch_size": rng.choice([16, 32, 64, 128]),
        "optimizer": rng.choice(["adam", "sgd", "adamw"]),
        "dropout": round(rng.uniform(0.0, 0.5), 2),
        "layers": [256, 128],
        "epochs": 20,
        "seed": seed,
    }
    store.create_run(
        run_id=run_id,
        project=project,
        name=None,
        config=config,
        tags=["bench"],
        notes=None,
        created=created,
        host="bench",
        pid=0,
    )
    loss = noisy_curve(points, seed, scale=2.3)
    val_loss = noisy_curve(points, seed + 10_000, scale=2.5)
    steps = list(range(points))
    times = (created + 0.01 * np.arange(points)).tolist()
    series = [
        SeriesBatch("loss", steps, times, loss.tolist()),
        SeriesBatch("val_loss", steps, times, val_loss.tolist()),
    ]
    summary = {
        "loss": float(loss[-1]),
        "val_loss": float(val_loss[-1]),
        "val_accuracy": rng.uniform(0.8, 0.99),
        "best_val_loss": float(val_loss.min()),
    }
    end = created + 0.01 * points
    store.write_batch(
        WriteBatch(run_id, series=series, summary=summary, state="finished", ended=end, heartbeat=end)
    )


def execute_quickstart(tmp: Path, epochs: int) -> tuple[Path, str, float]:
    """The quickstart executed by nbclient into tmp/store; returns the executed notebook, its run's name, seconds."""
    from nbtrack.reports.execute import execute_notebook
    from nbtrack.store import open_store

    source = tmp / "01_quickstart.ipynb"
    shutil.copy(REPO_ROOT / "notebooks" / "01_quickstart.ipynb", source)
    executed = tmp / "01_quickstart.executed.ipynb"
    saved = {k: os.environ.get(k) for k in ("NBTRACK_STORE", "NBTRACK_DEMO_EPOCHS", "NBTRACK_SILENT")}
    os.environ["NBTRACK_STORE"] = str(tmp / "store")
    os.environ["NBTRACK_DEMO_EPOCHS"] = str(epochs)
    os.environ.pop("NBTRACK_SILENT", None)
    started = time.perf_counter()
    try:
        execute_notebook(source, executed, timeout=1800)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - started
    store = open_store(tmp / "store", create=False)
    try:
        (run,) = store.list_runs("test_project")
        if run.config.get("epochs") != epochs or run.state != "finished":
            raise AssertionError(f"the quickstart's run: {run.state}, {run.config.get('epochs')} epochs")
        return executed, run.name, seconds
    finally:
        store.close()


@dataclass(frozen=True)
class Sizes:
    repeats: int
    epochs: int
    compare_runs: int
    compare_points: int
    short_points: int
    long_points: int
    quick: bool


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls after the first (default 7, min 5)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="quickstart epochs (default 5)")
    parser.add_argument("--compare-runs", type=int, default=None, help="runs compared (default 50)")
    parser.add_argument(
        "--compare-points", type=int, default=None, help="points per metric per run (default 100,000)"
    )
    parser.add_argument(
        "--short-points", type=int, default=None, help="points of the short run (default 10,000)"
    )
    parser.add_argument(
        "--long-points", type=int, default=None, help="points of the long run (default 1,000,000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 epoch, 5 runs x 10k points, 10k vs 100k points, 5 repeats",
    )
    parser.add_argument("--skip-notebook", action="store_true", help="no kernel: skip (i)")
    parser.add_argument(
        "--tmp", default=None, help="directory for the stores and reports (default: system temp)"
    )
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = Sizes(
        repeats=max(5, args.repeats if args.repeats is not None else 5 if quick else 7),
        epochs=args.epochs if args.epochs is not None else 1 if quick else 5,
        compare_runs=args.compare_runs if args.compare_runs is not None else 5 if quick else 50,
        compare_points=args.compare_points
        if args.compare_points is not None
        else 10_000
        if quick
        else 100_000,
        short_points=args.short_points if args.short_points is not None else 10_000,
        long_points=args.long_points if args.long_points is not None else 100_000 if quick else 1_000_000,
        quick=quick,
    )
    if (
        min(sizes.epochs, sizes.compare_runs, sizes.compare_points, sizes.short_points, sizes.long_points)
        <= 0
    ):
        parser.error("sizes must be positive")
    return args, sizes


def print_header(sizes: Sizes) -> Callable[..., Path]:
    """Print the machine and the sizes; returns the report function timed."""
    print("# bench_report\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "nbconvert", "nbclient", "ipykernel", "keras"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")
    described = (
        f"quickstart {sizes.epochs} epoch(s); comparison {sizes.compare_runs} runs x {sizes.compare_points:,} "
        f"points x 2 metrics; run reports {sizes.short_points:,} vs {sizes.long_points:,} points x 2 metrics; "
        f"{sizes.repeats} repeats"
    )
    print(f"sizes:    {described}{' (--quick: NOT the target sizes)' if sizes.quick else ''}")

    import nbtrack

    report = nbtrack.report  # taken once: the function, whatever importing its module does to the attribute
    if not callable(report):
        report = report.report
        print(
            "note:     `nbtrack.report` is a module here (its import shadowed the function); timing nbtrack.report.report"
        )
    return report


def measure_quickstart(report: Callable[..., Path], tmp: Path, sizes: Sizes) -> tuple[Row | None, str]:
    """(i) the report of the executed quickstart notebook; or None and why it could not be executed."""
    try:
        executed, run_name, seconds = execute_quickstart(tmp, sizes.epochs)
    except Exception as exc:
        failure = short_reason(exc)
        print(f"\n(i) the quickstart could not be executed: {failure}")
        return None, failure
    print(
        f"\n(i) quickstart executed by nbclient in {seconds:.1f} s ({sizes.epochs} epoch(s)); run {run_name}"
    )
    out = tmp / "quickstart.report.html"
    first, times, path = timed(lambda: report(executed, output=out, store=str(tmp / "store")), sizes.repeats)
    text = check_report(path, [run_name])
    size = path.stat().st_size
    row = Row(
        f"`nbtrack.report(<executed quickstart>)`, {sizes.epochs} epoch(s)",
        "< 2 s, < 1 MB",
        times,
        first,
        size,
        composition(text),
        median(times) < TARGET_NOTEBOOK_S and size < TARGET_NOTEBOOK_BYTES,
        list(SIZES),
        "quickstart",
    )
    return row, ""


@dataclass(frozen=True)
class BenchStore:
    """The store of (ii) and (iii), and the names its runs were given."""

    directory: Path
    ids: list[str]
    names: dict[str, str]
    length_names: dict[str, str]


def build_bench_store(tmp: Path, sizes: Sizes) -> BenchStore:
    """(ii) --compare-runs long runs, (iii) one short and one long run; prints what writing them took."""
    from nbtrack.store import open_store

    store_dir = tmp / "bench-store"
    store = open_store(store_dir)
    started = time.perf_counter()
    ids = [f"cmp{i:05d}" for i in range(sizes.compare_runs)]
    for i, rid in enumerate(ids):
        add_run(store, "compare", rid, T0 + i * 60.0, sizes.compare_points, seed=i)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    add_run(store, "length", "short", T0 - 7200.0, sizes.short_points, seed=1001)
    add_run(store, "length", "long", T0 - 3600.0, sizes.long_points, seed=1002)
    length_s = time.perf_counter() - started
    names = {r.id: r.name for r in store.list_runs("compare")}
    length_names = {r.id: r.name for r in store.list_runs("length")}
    store.close()
    print(
        f"(ii) store: {sizes.compare_runs} runs x {sizes.compare_points:,} x 2 points written in {build_s:.1f} s; "
        f"(iii) {sizes.short_points:,}- and {sizes.long_points:,}-point runs in {length_s:.1f} s"
    )
    return BenchStore(store_dir, ids, names, length_names)


def measure_comparison(report: Callable[..., Path], bench: BenchStore, tmp: Path, sizes: Sizes) -> Row:
    """(ii) the report comparing --compare-runs long runs."""
    out = tmp / "comparison.report.html"
    first, times, path = timed(
        lambda: report(runs=bench.ids, output=out, store=str(bench.directory)), sizes.repeats
    )
    text = check_report(path, [bench.names[i] for i in bench.ids])
    size = path.stat().st_size
    return Row(
        f"`nbtrack.report(runs=<{sizes.compare_runs} ids>)`, {sizes.compare_points:,} points x 2 metrics per run",
        "< 5 s, < 3 MB",
        times,
        first,
        size,
        composition(text),
        median(times) < TARGET_COMPARE_S and size < TARGET_COMPARE_BYTES,
        list(SIZES),
        "compare",
    )


def measure_lengths(report: Callable[..., Path], bench: BenchStore, tmp: Path, sizes: Sizes) -> list[Row]:
    """(iii) one run's report, short and long: the long one's file may be at most MAX_GROWTH x the short one's."""
    rows: list[Row] = []
    for rid, points in (("short", sizes.short_points), ("long", sizes.long_points)):
        out = tmp / f"{rid}.report.html"
        first, times, path = timed(
            lambda rid=rid, out=out: report(run=rid, output=out, store=str(bench.directory)), sizes.repeats
        )
        text = check_report(path, [bench.length_names[rid]])
        size = path.stat().st_size
        rows.append(
            Row(
                f"`nbtrack.report(run=<id>)`, {points:,} points x 2 metrics",
                "-" if rid == "short" else f"size <= {MAX_GROWTH}x the short run's",
                times,
                first,
                size,
                composition(text),
                None if rid == "short" else size <= MAX_GROWTH * rows[0].size,
                list(SIZES),
                f"run_{rid}",
            )
        )
    return rows


def print_results(rows: list[Row], sizes: Sizes) -> None:
    print(f"\n## Report generation: median of {sizes.repeats} calls after a first one (shown apart)\n")
    print(
        table(
            ["report", "target", "median", "min - max", "first call", "file size", "of which", "verdict"],
            [
                [
                    r.what,
                    r.target,
                    fmt_seconds(median(r.times)),
                    spread(r.times),
                    fmt_seconds(r.first_s),
                    fmt_bytes(r.size),
                    r.composition,
                    "-" if r.ok is None else verdict(r.ok),
                ]
                for r in rows
            ],
            align="llrrrrll",
        )
    )
    by_key = {r.key: r for r in rows}
    short, long, compare = by_key["run_short"].size, by_key["run_long"].size, by_key["compare"].size
    print(
        f"\nrun report size, {sizes.long_points:,} vs {sizes.short_points:,} points: {long / short:.3f}x "
        f"({long:,} vs {short:,} bytes)"
    )
    print(
        f"comparison size per run: {fmt_bytes(compare / sizes.compare_runs)} "
        f"(the 3 MB target is reached at ~{TARGET_COMPARE_BYTES * sizes.compare_runs / compare:.0f} runs)"
    )
    print("every report above was checked: one CSP meta tag, no <script>, every run it shows named")

    print("\n## Targets\n")
    size_note = " (--quick sizes, not the target's)" if sizes.quick else ""
    for r in rows:
        if r.ok is not None:
            print(
                f"- {r.what} {r.target}: {fmt_seconds(median(r.times))} median, {fmt_bytes(r.size)} -> "
                f"{verdict(r.ok)}{size_note}"
            )


def record(rows: list[Row], skipped: bool, quickstart_failure: str, quick: bool) -> Results:
    """The rows as --json measurements; the quickstart's, when it did not run, with why."""
    results = Results("bench_report", quick=quick)
    if skipped:
        results.unavailable(
            "report.quickstart.time", "`nbtrack.report(<executed quickstart>)`", "s", "skipped"
        )
    elif not any(r.key == "quickstart" for r in rows):
        results.unavailable(
            "report.quickstart.time",
            "`nbtrack.report(<executed quickstart>)`",
            "s",
            f"not run: {quickstart_failure or 'the quickstart was not executed'}",
        )
    for r in rows:
        results.add(
            f"report.{r.key}.time",
            f"{r.what}: time",
            "s",
            r.times,
            note=f"first call {fmt_seconds(r.first_s)}",
        )
        results.add(f"report.{r.key}.size", f"{r.what}: file size", "B", r.sizes, note=r.composition)
    return results


def main(argv: list[str] | None = None) -> int:
    args, sizes = parse_args(argv)
    report = print_header(sizes)
    rows: list[Row] = []
    quickstart_failure = ""
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-report-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        if args.skip_notebook:
            print("\n(i) skipped (--skip-notebook)")
        else:
            row, quickstart_failure = measure_quickstart(report, tmp, sizes)
            rows += [row] if row is not None else []
        bench = build_bench_store(tmp, sizes)
        rows.append(measure_comparison(report, bench, tmp, sizes))
        rows += measure_lengths(report, bench, tmp, sizes)
    print_results(rows, sizes)
    record(rows, args.skip_notebook, quickstart_failure, sizes.quick).write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
