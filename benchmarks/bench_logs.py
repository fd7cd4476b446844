"""Cost of capturing what a run prints: 100,000 printed lines with and without nbtrack's capture.

    python benchmarks/bench_logs.py [--lines 100000] [--repeats 5]

stdout goes to an in-memory stream in both cases, so only the capture's own work is measured (line collapsing,
the bounded deque, the queue to output.log). Memory: the kept lines stay at 5,000 whatever the count.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Results, machine_lines, median, quiet_environment, table  # noqa: E402

quiet_environment()


def printing(lines: int, capture: bool) -> tuple[float, int]:
    from nbtrack.capture.logs import OutputCapture, RunLog

    sink = io.StringIO()
    saved = sys.stdout
    sys.stdout = sink
    log = RunLog()
    tee = OutputCapture(log) if capture else None
    try:
        started = time.perf_counter()
        for i in range(lines):
            print(f"step {i} - loss: 0.{i % 1000:03d} - accuracy: 0.9")
        elapsed = time.perf_counter() - started
    finally:
        if tee is not None:
            tee.stop()
        sys.stdout = saved
    return elapsed, len(log.recent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines([])))
    plain, captured, kept = [], [], 0
    for _ in range(args.repeats):
        plain.append(printing(args.lines, False)[0])
        seconds, kept = printing(args.lines, True)
        captured.append(seconds)
    cost_us = (median(captured) - median(plain)) / args.lines * 1e6
    print()
    print(
        table(
            ["", f"{args.lines:,} print() calls (median)", "per line"],
            [
                (
                    "plain print",
                    f"{median(plain) * 1000:.0f} ms",
                    f"{median(plain) / args.lines * 1e6:.2f} us",
                ),
                (
                    "print, captured by nbtrack",
                    f"{median(captured) * 1000:.0f} ms",
                    f"{median(captured) / args.lines * 1e6:.2f} us",
                ),
            ],
        )
    )
    print()
    print(f"capture cost: {cost_us:.2f} us per printed line; lines kept in memory: {kept:,}")
    results = Results("bench_logs")
    entry = results.add(
        "logs.captured_print",
        f"`print()` of one line with nbtrack's output capture ({args.lines:,} lines per repeat)",
        "us/line",
        [t / args.lines * 1e6 for t in captured],
        note=f"lines kept in memory: {kept:,}",
    )
    results.compare(entry, "plain print (no capture)", [t / args.lines * 1e6 for t in plain])
    results.add(
        "logs.capture_cost",
        "capture cost per printed line (captured - plain, paired per repeat)",
        "us/line",
        [(c - p) / args.lines * 1e6 for c, p in zip(captured, plain)],
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
