"""GPU check for the System pane: on a machine with an NVIDIA GPU, sample inside an nbtrack run while a small
matmul loop runs on the GPU, print the GPU series recorded, and check they are plausible.

    python benchmarks/gpu_check.py          # needs psutil and nvidia-ml-py (nbtrack[system]); jax or tensorflow
                                            # (or torch) that sees the GPU for the load, else it only samples

About 20 s of sampling (3 s idle, 12 s loaded, 2 s after), under 2 minutes in all (a watchdog ends it with status
2 past 110 s). Exits 0 when the series are there and plausible, 1 when no GPU series appears or one is not
plausible. The suite checks the sampler against a stand-in NVML (tests/test_system.py); this is the real one.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("NBTRACK_SYSTEM_INTERVAL", "0.25")
os.environ.setdefault("NBTRACK_SILENT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IDLE_S, LOAD_S, TAIL_S, DEADLINE_S = 3.0, 12.0, 2.0, 110.0


def _jax_load() -> tuple[str, Callable[[float], None]] | None:
    try:
        import jax
        import jax.numpy as jnp

        device = jax.devices("gpu")[0]
    except Exception:  # not installed, or no GPU backend
        return None

    def run(seconds: float) -> None:
        a = jax.device_put(jnp.ones((4096, 4096), jnp.float32) / 4096, device)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = jnp.tanh(a @ a).block_until_ready()

    return f"jax {jax.__version__} on {device}", run


def _tensorflow_load() -> tuple[str, Callable[[float], None]] | None:
    try:
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
    except Exception:
        return None

    def run(seconds: float) -> None:
        with tf.device("/GPU:0"):
            a = tf.ones((4096, 4096)) / 4096
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                a = tf.tanh(a @ a)
                _ = a.numpy()[0, 0]  # wait for the GPU

    return f"tensorflow {tf.__version__} on /GPU:0", run


def _torch_load() -> tuple[str, Callable[[float], None]] | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
    except Exception:
        return None

    def run(seconds: float) -> None:
        a = torch.ones(4096, 4096, device="cuda") / 4096
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = torch.tanh(a @ a)
            torch.cuda.synchronize()

    return f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", run


def gpu_load() -> tuple[str, Callable[[float], None] | None]:
    """The first framework that sees the GPU, and a function that keeps the GPU busy for some seconds."""
    for find in (_jax_load, _tensorflow_load, _torch_load):
        found = find()
        if found is not None:
            return found
    return "none (no jax, tensorflow or torch sees a GPU): sampling only", None


def total_memory_mb() -> list[float]:
    import pynvml

    pynvml.nvmlInit()
    try:
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        return [pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20 for h in handles]
    finally:
        pynvml.nvmlShutdown()


def check(key: str, values: list[float], idle: list[float], busy: list[float], total_mb: float, loaded: bool):
    """What is implausible about one series (empty when nothing)."""
    problems = []
    low, high = min(values), max(values)
    if key.endswith("utilization_percent"):
        if not 0 <= low <= high <= 100:
            problems.append(f"{key}: {low}..{high} is not a percentage")
        if loaded and not (busy and statistics.median(busy) > 50):
            problems.append(f"{key}: median {_median(busy):.0f} % under load (expected > 50 %)")
    elif key.endswith("memory_used_mb"):
        if not 0 < low <= high <= total_mb:
            problems.append(f"{key}: {low:.0f}..{high:.0f} MB is outside 0..{total_mb:.0f} MB")
        if loaded and not (busy and idle and statistics.median(busy) > statistics.median(idle) + 50):
            problems.append(
                f"{key}: memory did not rise under load ({_median(idle):.0f} -> {_median(busy):.0f} MB)"
            )
    elif key.endswith("temperature_c"):
        if not 5 <= low <= high <= 110:
            problems.append(f"{key}: {low}..{high} C")
    elif key.endswith("power_w") and not 0 < low <= high <= 2000:
        problems.append(f"{key}: {low}..{high} W")
    return problems


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    watchdog = threading.Timer(
        DEADLINE_S, lambda: (print(f"FAIL: not done after {DEADLINE_S:.0f} s"), os._exit(2))
    )
    watchdog.daemon = True
    watchdog.start()
    import nbtrack

    worker, load = gpu_load()
    print(f"workload: {worker}", flush=True)
    store = tempfile.mkdtemp(prefix="nbtrack-gpu-")
    run = nbtrack.init(project="gpu-check", store=store)
    time.sleep(IDLE_S)
    idle_end = time.time()
    if load is not None:
        load(LOAD_S)
    else:
        time.sleep(LOAD_S)
    busy_end = time.time()
    time.sleep(TAIL_S)
    run.finish()

    stored = nbtrack.get_run(run.id, store=store)
    gpu_keys = sorted(k for k in stored.metrics() if k.startswith("system/gpu/"))
    names = (stored.environment.get("hardware") or {}).get("gpus") or []
    print(f"environment gpus: {names}")
    print(f"GPU series recorded: {gpu_keys}")
    if not gpu_keys:
        print("FAIL: no system/gpu/* series (is nvidia-ml-py installed, and does NVML see a GPU?)")
        return 1
    totals = total_memory_mb()
    failures = [] if names else ["the run's environment names no GPU"]
    for key in gpu_keys:
        h = stored.history(key)
        values = [float(v) for v in h.value]
        idle = [v for t, v in zip(h.time, values) if t < idle_end]
        busy = [v for t, v in zip(h.time, values) if idle_end + 2 < t < busy_end]  # 2 s to ramp up
        index = int(key.split("/")[2])
        print(
            f"  {key:40s} n={len(values):3d}  idle median {_median(idle):9.1f}  loaded median {_median(busy):9.1f}"
            f"  min {min(values):9.1f}  max {max(values):9.1f}"
        )
        failures += check(key, values, idle, busy, totals[index], load is not None and index == 0)
    print("FAIL: " + "; ".join(failures) if failures else "OK: the GPU series are there and plausible")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
