"""System metrics: pure rate maths, the sampler against real psutil, and samples stored with the run."""

from __future__ import annotations

import sys
import threading
import time
import types

import psutil
import pytest

import nbtrack
from nbtrack.capture.system import Counters, SystemSampler, io_rates

MB = 1024 * 1024


def test_io_rates():
    first = Counters(10.0, disk_read=0, disk_write=MB, net_sent=None, net_recv=5 * MB)
    second = Counters(12.0, disk_read=4 * MB, disk_write=MB, net_sent=100, net_recv=3 * MB)
    assert io_rates(None, second) == {}
    assert io_rates(first, second) == {"system/disk_read_mbps": 2.0, "system/disk_write_mbps": 0.0}
    assert io_rates(second, Counters(12.0)) == {}  # no time passed


def collect():
    samples = []
    lock = threading.Lock()

    def sink(index, when, values):
        with lock:
            samples.append((index, when, values))

    return samples, sink


def wait_for_samples(samples: list, count: int) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not the thing tested
    while len(samples) < count:
        assert time.monotonic() < deadline, f"{len(samples)} samples after 60 s, expected {count}"
        time.sleep(0.02)


def test_sampler_against_real_psutil():
    samples, sink = collect()
    burner = threading.Event()

    def burn():  # some CPU in this process, so process_cpu_percent has something to see
        while not burner.is_set():
            sum(range(20_000))
            time.sleep(0.0005)  # like training, which gives up the GIL inside its kernels

    worker = threading.Thread(target=burn)
    worker.start()
    sampler = SystemSampler(sink, interval=0.25, name="test")
    wait_for_samples(samples, 6)
    sampler.stop()
    burner.set()
    worker.join()
    assert not sampler.alive
    assert [s[0] for s in samples] == list(range(len(samples)))
    cores = psutil.cpu_count()
    for _, _, values in samples:
        assert 0.0 <= values["system/cpu_percent"] <= 100.0
        assert len([k for k in values if k.startswith("system/cpu/")]) == cores
        assert values["system/memory_available_mb"] > 0 and values["system/memory_used_mb"] > 0
        assert values["system/process_rss_mb"] > 10
    assert max(v["system/process_cpu_percent"] for _, _, v in samples[1:]) > 20  # the burner is seen
    assert "system/disk_read_mbps" not in samples[0][2]  # rates need two readings
    assert all(v["system/net_recv_mbps"] >= 0 for _, _, v in samples[1:])


def test_the_first_sample_does_not_wait_for_the_interval():
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=600, name="test")
    try:
        wait_for_samples(samples, 1)  # within the hang guard: far less than the 600 s interval
    finally:
        sampler.stop()
    assert [s[0] for s in samples] == [0]


def test_missing_counters_are_missing_series(monkeypatch):
    def unsupported(*args, **kwargs):
        raise NotImplementedError("not on this platform")

    monkeypatch.setattr(psutil, "disk_io_counters", unsupported)
    monkeypatch.setattr(psutil, "net_io_counters", lambda *a, **k: None)
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=0.1, name="test")
    wait_for_samples(samples, 3)
    sampler.stop()
    keys = set().union(*(v for _, _, v in samples))
    assert "system/cpu_percent" in keys
    assert not any("disk" in k or "net" in k for k in keys)


# -- GPUs, through a stand-in for NVML (nvidia-ml-py's `pynvml`) where the sampler imports it ----------------
class FakeNvml(types.ModuleType):
    """Two GPUs whose readings are scripted per sample: reading k of GPU i is utilization 10k + i %, memory
    (100k + i) MiB used, temperature 40 + k C, power (50k + i) W; GPU 1 has no power sensor (NVML says
    "Not Supported", as consumer cards do)."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, gpus: int = 2, init_error: str | None = None) -> None:
        super().__init__("pynvml")
        self.gpus, self.init_error = gpus, init_error
        self.reads = [0] * gpus  # utilization readings so far, per GPU: the sample index
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        return ("handle", index)

    def nvmlDeviceGetUtilizationRates(self, handle):
        index = handle[1]
        k = self.reads[index]
        self.reads[index] += 1
        return types.SimpleNamespace(gpu=10 * k + index, memory=0)

    def _k(self, handle) -> int:
        return self.reads[handle[1]] - 1  # the other readings of a sample follow its utilization reading

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=(100 * self._k(handle) + handle[1]) * MB, total=80_000 * MB)

    def nvmlDeviceGetTemperature(self, handle, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 40 + self._k(handle)

    def nvmlDeviceGetPowerUsage(self, handle) -> int:
        if handle[1] == 1:
            raise self.NVMLError("Not Supported")
        return (50 * self._k(handle) + handle[1]) * 1000  # milliwatts


def gpu_series(samples) -> list[dict[str, float]]:
    return [{k: v for k, v in values.items() if k.startswith("system/gpu/")} for _, _, values in samples]


def test_gpu_series_from_nvml(monkeypatch):
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=0.1, name="test")
    wait_for_samples(samples, 3)
    sampler.stop()
    expected = [
        {
            "system/gpu/0/utilization_percent": 10.0 * k,
            "system/gpu/0/memory_used_mb": 100.0 * k,
            "system/gpu/0/temperature_c": 40.0 + k,
            "system/gpu/0/power_w": 50.0 * k,
            "system/gpu/1/utilization_percent": 10.0 * k + 1,
            "system/gpu/1/memory_used_mb": 100.0 * k + 1,
            "system/gpu/1/temperature_c": 40.0 + k,
        }
        for k in range(len(samples))
    ]
    assert gpu_series(samples) == expected
    assert nvml.calls == ["init", "shutdown"]  # NVML released when sampling stops


@pytest.mark.parametrize(
    "nvml",
    [None, FakeNvml(init_error="Driver Not Loaded"), FakeNvml(gpus=0)],
    ids=["not-installed", "no-driver", "no-gpu"],
)
def test_no_nvml_no_driver_or_no_gpu_means_no_gpu_series(monkeypatch, nvml):
    monkeypatch.setitem(
        sys.modules, "pynvml", nvml
    )  # None: `import pynvml` fails, as when it is not installed
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=0.1, name="test")
    wait_for_samples(samples, 2)
    sampler.stop()
    assert gpu_series(samples) == [{}] * len(samples)
    assert "system/cpu_percent" in samples[0][2]


def test_samples_are_stored_with_the_run(monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0.2")
    run = nbtrack.init(project="p")
    deadline = time.monotonic() + 60  # a hang guard, not the thing tested
    for i in range(5):
        run.log({"loss": float(i)})
    while run._system.samples < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    run.finish()
    history = run.store.history(run.id, "system/cpu_percent")
    assert len(history) == run._system.samples >= 3  # every sample taken is stored
    assert history.step.tolist() == list(range(len(history)))
    assert run.created <= history.time[0] and history.time[-1] <= run.ended
    assert run.step == 5  # samples do not move the training step
    assert "system/cpu_percent" not in run.summary
    assert not any(t.name.startswith("nbtrack-system") for t in threading.enumerate())


def test_sampling_can_be_turned_off_and_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")
    run = nbtrack.init(project="p")
    run.finish()
    assert run.store.metric_stats(run.id) == {}
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "often")
    with pytest.raises(ValueError, match="NBTRACK_SYSTEM_INTERVAL must be a number of seconds"):
        nbtrack.init(project="p")
