"""System metrics beside the run (W&B's System tab): CPU, memory, disk, network, and NVIDIA GPUs.

A sampler thread samples at once, then every `interval` seconds, and only appends to the run's queue (a
thread-safe deque); the main thread never waits for it. psutil and nvidia-ml-py are optional: a counter a
platform lacks is a missing series, never an exception.

Series (all under ``system/``): ``cpu_percent``, ``cpu/<i>_percent``, ``process_cpu_percent`` and
``process_rss_mb`` (the process and its children), ``memory_used_mb``, ``memory_available_mb``,
``disk_read_mbps``, ``disk_write_mbps``, ``net_sent_mbps``, ``net_recv_mbps``, and per GPU
``gpu/<i>/utilization_percent``, ``gpu/<i>/memory_used_mb``, ``gpu/<i>/temperature_c``, ``gpu/<i>/power_w``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024
PREFIX = "system/"
DEFAULT_INTERVAL = 1.0


@dataclass(frozen=True)
class Counters:
    """Cumulative I/O counters at one moment (bytes); None where the platform has none."""

    time: float
    disk_read: int | None = None
    disk_write: int | None = None
    net_sent: int | None = None
    net_recv: int | None = None


def io_rates(previous: Counters | None, current: Counters) -> dict[str, float]:
    """MB/s between two counter readings; empty for the first reading or a missing counter."""
    if previous is None:
        return {}
    elapsed = current.time - previous.time
    if elapsed <= 0:
        return {}
    rates = {}
    for name, key in (
        ("disk_read", "disk_read_mbps"),
        ("disk_write", "disk_write_mbps"),
        ("net_sent", "net_sent_mbps"),
        ("net_recv", "net_recv_mbps"),
    ):
        before, after = getattr(previous, name), getattr(current, name)
        if before is not None and after is not None and after >= before:
            rates[PREFIX + key] = (after - before) / MB / elapsed
    return rates


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None


@dataclass
class _ProcessTree:
    """The process and its children, each primed once so cpu_percent is real from the second sample."""

    psutil: Any
    root: Any
    known: dict[int, Any] = field(default_factory=dict)

    def sample(self) -> dict[str, float]:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except Exception:
            return {}
        cpu = rss = 0.0
        alive = {}
        for process in processes:
            cached = self.known.get(process.pid, process)
            try:
                with cached.oneshot():
                    percent = cached.cpu_percent(None)
                    rss += cached.memory_info().rss
            except Exception:
                continue
            if process.pid in self.known:
                cpu += percent  # a new process' first reading is meaningless
            alive[process.pid] = cached
        self.known = alive
        return {PREFIX + "process_cpu_percent": cpu, PREFIX + "process_rss_mb": rss / MB}


class _Gpus:
    """NVIDIA GPUs through NVML (nvidia-ml-py); no GPU or no driver means no series."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self.nvml = None

    def sample(self) -> dict[str, float]:
        nvml, out = self.nvml, {}
        if nvml is None:
            return out
        for index, handle in enumerate(self.handles):
            prefix = f"{PREFIX}gpu/{index}/"
            util = _safe(lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            memory = _safe(lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h).used)
            temperature = _safe(lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
            power = _safe(lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h))
            if util is not None:
                out[prefix + "utilization_percent"] = float(util)
            if memory is not None:
                out[prefix + "memory_used_mb"] = memory / MB
            if temperature is not None:
                out[prefix + "temperature_c"] = float(temperature)
            if power is not None:
                out[prefix + "power_w"] = power / 1000.0
        return out

    def close(self) -> None:
        if self.nvml is not None:
            _safe(self.nvml.nvmlShutdown)


class SystemSampler:
    """Samples system metrics on a daemon thread and hands each sample to `sink(index, time, values)`."""

    def __init__(
        self,
        sink: Callable[[int, float, dict[str, float]], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        name: str = "run",
    ) -> None:
        import psutil  # the caller checks it is installed

        if interval <= 0:
            raise ValueError(f"the system sampling interval must be positive, got {interval}.")
        self.psutil = psutil
        self.sink = sink
        self.interval = interval
        self.samples = 0
        self._stop = threading.Event()
        self._tree = _ProcessTree(psutil, psutil.Process(os.getpid()))
        self._previous: Counters | None = None
        self._gpus: _Gpus | None = None
        # Prime the counters so that the first sample's percentages are real, not psutil's 0.0.
        _safe(lambda: psutil.cpu_percent(None))
        _safe(lambda: psutil.cpu_percent(None, percpu=True))
        self._tree.sample()
        self._primed_at = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=f"nbtrack-system-{name}", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, float]:
        psutil, values = self.psutil, {}
        total = _safe(lambda: psutil.cpu_percent(None))
        if total is not None:
            values[PREFIX + "cpu_percent"] = float(total)
        for index, percent in enumerate(_safe(lambda: psutil.cpu_percent(None, percpu=True)) or []):
            values[f"{PREFIX}cpu/{index}_percent"] = float(percent)
        values.update(self._tree.sample())
        memory = _safe(psutil.virtual_memory)
        if memory is not None:
            values[PREFIX + "memory_used_mb"] = (memory.total - memory.available) / MB
            values[PREFIX + "memory_available_mb"] = memory.available / MB
        disk = _safe(psutil.disk_io_counters)
        net = _safe(psutil.net_io_counters)
        counters = Counters(
            time.monotonic(),
            getattr(disk, "read_bytes", None),
            getattr(disk, "write_bytes", None),
            getattr(net, "bytes_sent", None),
            getattr(net, "bytes_recv", None),
        )
        values.update(io_rates(self._previous, counters))
        self._previous = counters
        if self._gpus is not None:
            values.update(self._gpus.sample())
        return values

    def _loop(self) -> None:
        self._gpus = _Gpus()
        # psutil needs a short interval since priming for the first percentages to mean something.
        self._stop.wait(max(0.0, 0.1 - (time.monotonic() - self._primed_at)))
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                values = self.sample()
                if values:
                    self.sink(self.samples, time.time(), values)
                    self.samples += 1
            except Exception as exc:  # a sampling fault loses one sample, never the run
                self._warn_once(exc)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        self._gpus.close()

    def _warn_once(self, exc: BaseException) -> None:
        if getattr(self, "_warned", False):
            return
        self._warned = True
        import warnings

        from nbtrack.errors import NbtrackWarning

        warnings.warn(
            f"nbtrack: a system sample failed ({type(exc).__name__}: {exc}); samples go on being tried, training "
            "goes on. This warning is shown once.",
            NbtrackWarning,
            stacklevel=1,
        )

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def psutil_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("psutil") is not None
