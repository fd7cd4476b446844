"""Cost of the system sampler: CPU time of its thread at a 1 s interval, as % of one core (target < 1 %).

    python benchmarks/bench_system.py [--seconds 30] [--interval 1.0]

The sampler's own thread measures its CPU time (time.thread_time) around each sample; the script also
reports the whole process's CPU time while the main thread sleeps, and the same with no sampler, so the
difference is the sampler's cost including wake-ups.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Results, machine_lines, median, quiet_environment, table  # noqa: E402

quiet_environment()


def process_cpu(seconds: float, sampler_interval: float | None) -> tuple[float, int, float]:
    """Process CPU seconds over `seconds` of an idle main thread, with or without a sampler."""
    from nbtrack.capture.system import SystemSampler

    samples = []
    thread_cpu = []
    sampler = None
    if sampler_interval:
        original = SystemSampler.sample

        def timed(self):  # measure the sampler thread's own CPU time per sample
            started = time.thread_time()
            values = original(self)
            thread_cpu.append(time.thread_time() - started)
            return values

        SystemSampler.sample = timed  # type: ignore[method-assign]
        sampler = SystemSampler(lambda i, t, v: samples.append(v), interval=sampler_interval, name="bench")
    before = time.process_time()
    time.sleep(seconds)
    used = time.process_time() - before
    if sampler is not None:
        sampler.stop()
        SystemSampler.sample = original  # type: ignore[method-assign]
    return used, len(samples), sum(thread_cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines(["psutil", "nvidia-ml-py"])))
    rows = []
    idle, with_sampler, thread = [], [], []
    for _ in range(args.repeats):
        used, _, _ = process_cpu(args.seconds, None)
        idle.append(used)
        used, count, own = process_cpu(args.seconds, args.interval)
        with_sampler.append(used)
        thread.append(own / max(count, 1))
    idle_pct = median(idle) / args.seconds * 100
    sampler_pct = median(with_sampler) / args.seconds * 100
    per_sample_ms = median(thread) * 1000
    rows.append(("process, no sampler", f"{idle_pct:.3f} %", "-"))
    rows.append(
        (f"process, sampler every {args.interval:g} s", f"{sampler_pct:.3f} %", f"{per_sample_ms:.2f} ms")
    )
    cost = sampler_pct - idle_pct
    print()
    print(table(["", "CPU (% of one core)", "sampler thread CPU per sample"], rows))
    print()
    print(f"Sampler cost: {cost:.3f} % of one core (target < 1 %): {'met' if cost < 1 else 'NOT met'}")
    results = Results("bench_system")
    results.add(
        "system.sampler_cost",
        f"system sampler every {args.interval:g} s: process CPU with it - without it ({args.seconds:g} s windows, paired)",
        "% of a core",
        [(w - i) / args.seconds * 100 for w, i in zip(with_sampler, idle)],
    )
    results.add(
        "system.per_sample",
        "sampler thread CPU per sample",
        "ms",
        [t * 1000 for t in thread],
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
