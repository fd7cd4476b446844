"""Durability lag under a tight logging loop: how old can a logged point get before it is committed?

nbtrack's writer thread is meant to commit at least every 0.5 s, so that after a crash everything logged more
than about a second earlier is on disk. This script checks that from the outside: a separate process polls the
store's database (``SELECT SUM(count) FROM metrics``) every --poll seconds while this process calls `run.log`
(2 scalars per call) as fast as it can. For every poll it computes the age of the oldest logged but not yet
committed call; the maximum over the loop is the worst-case data loss window.

    python benchmarks/bench_lag.py                       # 2,000,000 calls, 5 repeats
    python benchmarks/bench_lag.py --calls 500000 --repeats 5
"""

from __future__ import annotations

import argparse
import bisect
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Results, fmt_seconds, machine_lines, median, quiet_environment, table, verdict  # noqa: E402

quiet_environment()
# Only the logged points are counted; the system sampler's own series would add to them.
os.environ.setdefault("NBTRACK_SYSTEM_INTERVAL", "0")

TARGET_LAG_S = 1.0  # "everything logged more than ~1 s earlier is on disk"
KEYS = 2

POLLER = r"""
import sqlite3, sys, time
db, run_id, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
conn = sqlite3.connect(db, timeout=60)
print("ready", flush=True)
while True:
    count = conn.execute("SELECT COALESCE(SUM(count), 0) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
    print(f"{time.time():.6f} {count}", flush=True)
    time.sleep(interval)
"""


def one_run(calls: int, poll: float, root: Path) -> dict[str, float]:
    import nbtrack

    store_dir = root / f"store-{time.monotonic_ns()}"
    run = nbtrack.init(project="bench-lag", store=store_dir)
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(store_dir / "nbtrack.db"), run.id, str(poll)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert poller.stdout is not None
    if poller.stdout.readline().strip() != "ready":
        raise RuntimeError("the poller process did not start")

    marks_t: list[float] = [time.time()]  # wall time when call marks_n[i] had been logged
    marks_n: list[int] = [0]
    every = 5_000
    log = run.log
    for i in range(calls):
        log({"loss": 1.0 / (i + 1), "accuracy": i / calls})
        if i % every == every - 1:
            marks_t.append(time.time())
            marks_n.append(i + 1)
    loop_end = time.time()
    marks_t.append(loop_end)
    marks_n.append(calls)
    run.finish()
    finished = time.time()
    time.sleep(max(0.2, 3 * poll))
    poller.terminate()
    out, _ = poller.communicate(timeout=30)
    run.store.close()

    samples = [(float(t), int(c)) for t, c in (line.split() for line in out.splitlines() if line.strip())]

    def logged_at(call: int) -> float:
        """Wall time by which `call` calls had been logged (the mark at or after it)."""
        index = bisect.bisect_left(marks_n, call)
        return marks_t[min(index, len(marks_t) - 1)]

    lags, commits, last_count, last_change = [], [], 0, marks_t[0]
    gaps = []
    for t, points in samples:
        durable = points // KEYS
        if points != last_count:
            gaps.append(t - last_change)
            last_change, last_count = t, points
            commits.append(t)
        if t > loop_end:
            continue
        logged = marks_n[bisect.bisect_right(marks_t, t) - 1]  # calls surely logged by t
        if logged > durable:
            lags.append(t - logged_at(durable + 1))
        else:
            lags.append(0.0)
    final = samples[-1][1] // KEYS if samples else 0
    return {
        "loop_s": loop_end - marks_t[0],
        "finish_s": finished - loop_end,
        "polls": len(samples),
        "commits_in_loop": sum(1 for t in commits if t <= loop_end),
        "max_lag_s": max(lags, default=float("nan")),
        "max_gap_s": max(gaps, default=float("nan")),
        "durable_calls": final,
        "calls": calls,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=int, default=2_000_000, help="run.log calls (2 scalars each) per repeat"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--poll", type=float, default=0.02, help="seconds between the poller's reads (default 0.02)"
    )
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> list[dict[str, float]]:
    """--repeats runs of the logging loop, each watched by a poller in another process."""
    results = []
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-lag-", dir=args.tmp) as tmp:
        for repeat in range(args.repeats):
            result = one_run(args.calls, args.poll, Path(tmp))
            results.append(result)
            print(
                f"repeat {repeat + 1}: loop {result['loop_s']:.2f} s, {result['commits_in_loop']} commits seen during "
                f"the loop, max lag {result['max_lag_s']:.2f} s, longest gap between commits {result['max_gap_s']:.2f} s",
                flush=True,
            )
    return results


def print_results(results: list[dict[str, float]], poll: float) -> None:
    rows = [
        [
            f"{r['calls']:,}",
            fmt_seconds(r["loop_s"]),
            f"{r['calls'] / r['loop_s']:,.0f}",
            int(r["commits_in_loop"]),
            fmt_seconds(r["max_lag_s"]),
            fmt_seconds(r["max_gap_s"]),
            fmt_seconds(r["finish_s"]),
            f"{int(r['durable_calls']):,}",
            int(r["polls"]),
        ]
        for r in results
    ]
    print(
        f"\n## Durability lag, {KEYS} scalars per call, polled every {poll * 1000:.0f} ms from another process\n"
    )
    print(
        table(
            [
                "calls",
                "loop",
                "calls/s",
                "commits during loop",
                "max lag",
                "longest commit gap",
                "finish",
                "calls durable at end",
                "polls",
            ],
            rows,
        )
    )
    worst = median([r["max_lag_s"] for r in results])
    lost = [r for r in results if r["durable_calls"] != r["calls"]]
    print("\n## Targets\n")
    print(
        f"- logged points committed within ~{TARGET_LAG_S:g} s (median of the per-repeat max lag): "
        f"{fmt_seconds(worst)} -> {verdict(worst <= TARGET_LAG_S)}"
    )
    print(
        f"- every logged call durable after finish(): {len(results) - len(lost)}/{len(results)} repeats -> {verdict(not lost)}"
    )


def record(results: list[dict[str, float]], args: argparse.Namespace) -> Results:
    out = Results("bench_lag")
    size = f"{args.calls:,} calls of 2 scalars as fast as Python goes, polled every {args.poll * 1000:.0f} ms"
    out.add(
        "lag.max_lag",
        "oldest logged but uncommitted point, worst of the run",
        "s",
        [r["max_lag_s"] for r in results],
        note=size,
    )
    out.add("lag.max_commit_gap", "longest gap between commits seen", "s", [r["max_gap_s"] for r in results])
    out.add(
        "lag.loop_rate",
        "`run.log` calls/s of that loop (the writer competing for the GIL)",
        "calls/s",
        [r["calls"] / r["loop_s"] for r in results],
        better="higher",
    )
    out.add(
        "lag.lost_calls",
        "logged calls not durable after `finish()`",
        "calls",
        [r["calls"] - r["durable_calls"] for r in results],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("# bench_lag\n")
    print("\n".join(machine_lines(["nbtrack", "numpy"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}\n")
    results = measure(args)
    print_results(results, args.poll)
    record(results, args).write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
