"""pyinstrument over one seed-MLP fit with NbtrackCallback and its live widget (on bench_fit's recording comm):
where nbtrack's time on the training thread goes. The evidence behind FINDINGS.md's fit-overhead profile.

    .venv-bench/bin/python benchmarks/profile_fit.py [--out fit-profile.txt]

Needs pyinstrument (in the `bench` extra). Prints nbtrack's frames (and Keras' callback dispatch above them);
the whole tree goes to --out.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_fit  # noqa: E402  (sets up the quiet environment and KERAS_BACKEND)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="fit-profile.txt", help="where to write the whole call tree")
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval in seconds")
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    from nbtrack.keras import NbtrackCallback

    data = bench_fit.make_data(60_000, 10_000)
    with tempfile.TemporaryDirectory(prefix="nbtrack-profile-fit-") as tmp:
        os.environ["NBTRACK_STORE"] = str(Path(tmp) / "store")
        model = bench_fit.build_model()
        job = bench_fit.FitJob(data, 16, 1, Path(tmp) / "work")
        with bench_fit.recording_notebook() as notebook:
            profiler = Profiler(interval=args.interval, use_timing_thread=True)
            profiler.start()
            sample = bench_fit.timed_fit(model, job, [NbtrackCallback()])
            profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=True)
    Path(args.out).write_text(text)
    print(f"fit {sample.fit_s:.2f} s, {len(notebook.refreshes)} widget refreshes; call tree in {args.out}\n")
    for line in text.splitlines():  # nbtrack's frames of 5 ms or more, and Keras' dispatch to them
        found = re.search(r"(\d+\.\d+) ", line)
        if found and float(found.group(1)) >= 0.005 and ("nbtrack/" in line or "CallbackList.on_" in line):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
