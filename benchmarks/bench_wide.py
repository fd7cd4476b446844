"""The live dashboard's refresh with 10,000 metric keys (a metric per layer): how long one refresh takes on the
training thread when new points go to charts that are not drawn (they cost nothing), and when they go to the
24 drawn ones.

    python benchmarks/bench_wide.py [--keys 10000] [--refreshes 50] [--repeats 5]

The widgets talk to a recording comm (no browser), so only nbtrack's own work is timed. Each repeat is a fresh
run; its figure is the median refresh of that repeat. tests/test_scale.py checks what these refreshes send;
the time they take is measured here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Results, machine_lines, median, quiet_environment, table  # noqa: E402

quiet_environment()


def record_widgets() -> list[int]:
    """Widgets on a recording comm, as in a notebook; returns the list each message's size is appended to."""
    import comm
    import IPython.display
    from comm.base_comm import BaseComm

    import nbtrack.ui
    import nbtrack.ui.dashboard as dashboard_module

    sent: list[int] = []

    class Recording(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):  # type: ignore[no-untyped-def]
            sent.append(
                len(json.dumps(data or {}, default=str)) + sum(memoryview(b).nbytes for b in buffers or [])
            )

    class Handle:
        def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            pass

    comm.create_comm = lambda **kwargs: Recording(**kwargs)
    dashboard_module.in_notebook = nbtrack.ui.in_notebook = lambda: True
    IPython.display.display = lambda *args, **kwargs: Handle()
    return sent


def one_repeat(keys: int, refreshes: int, store: str) -> tuple[float, float, int]:
    """Median seconds of a refresh with points for hidden charts, then for drawn ones; messages of the latter."""
    import nbtrack

    sent = record_widgets()
    layer_keys = [f"layer_{i}/grad_norm" for i in range(keys)]
    run = nbtrack.init(project="wide", store=store)
    run.progress.training = True  # as during fit
    for step in range(20):
        run.log({"batch/loss": 1.0 / (step + 1)})
    run.log({"loss": 0.5, "val_loss": 0.6, "epoch": 0.0, **{key: 1.0 for key in layer_keys}}, step=19)
    run.refresh_views()
    hidden, drawn = [], []
    for step in range(20, 20 + refreshes):
        run.log({key: float(step) for key in layer_keys[keys // 2 :]}, step=step)  # none of them drawn
        started = time.perf_counter()
        run.refresh_views()  # what `log` calls when a refresh is due: ingest, then the panes
        hidden.append(time.perf_counter() - started)
    first = len(sent)
    for step in range(20 + refreshes, 20 + 2 * refreshes):
        run.log({"batch/loss": 1.0 / step, "loss": 0.4, "val_loss": 0.5}, step=step)
        started = time.perf_counter()
        run.refresh_views()
        drawn.append(time.perf_counter() - started)
    messages = len(sent) - first
    run.progress.training = False
    run.finish()
    return statistics.median(hidden), statistics.median(drawn), messages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--refreshes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines(["ipywidgets", "bqplot"])))
    hidden, drawn, messages = [], [], 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="nbtrack-bench-wide-") as store:
            h, d, messages = one_repeat(args.keys, args.refreshes, store)
        hidden.append(h)
        drawn.append(d)
    print()
    print(
        table(
            [f"refresh with {args.keys:,} keys", "median of repeats", "min - max"],
            [
                ("new points for hidden charts", f"{median(hidden) * 1000:.2f} ms", _range(hidden)),
                ("new points for drawn charts", f"{median(drawn) * 1000:.2f} ms", _range(drawn)),
            ],
        )
    )
    print(f"\nmessages sent by the last repeat's {args.refreshes} drawn refreshes: {messages}")
    results = Results("bench_wide")
    results.add(
        "wide.refresh_hidden",
        f"dashboard refresh, {args.keys:,} keys, new points only for charts not drawn",
        "s",
        hidden,
        note=f"median of {args.refreshes} refreshes per repeat",
    )
    results.add(
        "wide.refresh_drawn",
        f"dashboard refresh, {args.keys:,} keys, new points for drawn charts",
        "s",
        drawn,
        note=f"median of {args.refreshes} refreshes per repeat",
    )
    results.write(args.json)


def _range(values: list[float]) -> str:
    return f"{min(values) * 1000:.2f} - {max(values) * 1000:.2f} ms"


if __name__ == "__main__":
    main()
