"""GPU check for the System pane (issue #4): on a machine with an NVIDIA GPU, run a GPU workload inside an
nbtrack run and show that NVML series were recorded and that they follow the load.

    python benchmarks/gpu_check.py            # needs nvidia-ml-py, psutil, numpy, and torch or jax for the load

Prints the recorded GPU series (idle vs loaded medians) and the run's environment GPU names; exits 1 when a
check fails. Not part of `make test`: CI has no GPU.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("NBTRACK_SYSTEM_INTERVAL", "0.25")
os.environ.setdefault("NBTRACK_SILENT", "1")


def load(seconds: float) -> str:
    """Busy the GPU with matrix products for `seconds`; returns what did the work."""
    try:
        import torch

        a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(20):
                a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()
        return f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}"
    except ImportError:
        import jax
        import jax.numpy as jnp

        a = jnp.ones((8192, 8192), jnp.float16)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = jnp.clip(a @ a, -1, 1).block_until_ready()
        return f"jax {jax.__version__} on {jax.devices()[0]}"


def main() -> int:
    import nbtrack

    store = tempfile.mkdtemp(prefix="nbtrack-gpu-")
    run = nbtrack.init(project="gpu-check", store=store)
    time.sleep(3.0)
    idle_end = time.time()
    worker = load(12.0)
    busy_end = time.time()
    time.sleep(2.0)
    run.finish()

    stored = nbtrack.get_run(run.id, store=store)
    gpu_keys = sorted(k for k in stored.metrics() if k.startswith("system/gpu/"))
    print(f"workload: {worker}")
    print(f"environment gpus: {(stored.environment.get('hardware') or {}).get('gpus')}")
    print(f"GPU series recorded: {gpu_keys}")
    failures = []
    if not gpu_keys:
        failures.append("no system/gpu/* series")
    for key in gpu_keys:
        h = stored.history(key)
        idle = [v for t, v in zip(h.time, h.value) if t < idle_end]
        busy = [v for t, v in zip(h.time, h.value) if idle_end + 2 < t < busy_end]
        med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
        print(
            f"  {key:42s} n={len(h):3d}  idle median {med(idle):10.1f}  loaded median {med(busy):10.1f}  max {max(h.value):10.1f}"
        )
        if key.endswith("utilization_percent") and not med(busy) > 50:
            failures.append(f"{key}: utilization under load {med(busy):.0f} % (expected > 50 %)")
        if key.endswith("memory_used_mb") and not med(busy) > med(idle) + 100:
            failures.append(f"{key}: memory did not rise under load")
    names = (stored.environment.get("hardware") or {}).get("gpus") or []
    if not names:
        failures.append("environment recorded no GPU names")
    print("FAIL: " + "; ".join(failures) if failures else "OK: NVML series recorded and follow the load")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
