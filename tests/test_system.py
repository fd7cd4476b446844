"""System metrics: pure rate maths, the sampler against real psutil, and samples stored with the run."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

import nbtrack
from nbtrack.system import Counters, SystemSampler, io_rates

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


def test_sampler_against_real_psutil_for_three_seconds():
    samples, sink = collect()
    burner = threading.Event()

    def burn():  # some CPU in this process, so process_cpu_percent has something to see
        while not burner.is_set():
            sum(range(20_000))
            time.sleep(0.0005)  # like training, which gives up the GIL inside its kernels

    worker = threading.Thread(target=burn)
    worker.start()
    started = time.time()
    sampler = SystemSampler(sink, interval=0.5, name="test")
    time.sleep(3.0)
    sampler.stop()
    burner.set()
    worker.join()
    assert not sampler.alive
    assert 4 <= len(samples) <= 8  # at once, then every 0.5 s (a loaded 2-core box may lose one)
    assert [s[0] for s in samples] == list(range(len(samples)))
    assert samples[0][1] - started < 0.5  # the first sample comes at once
    cores = psutil.cpu_count()
    for _, _, values in samples:
        assert 0.0 <= values["system/cpu_percent"] <= 100.0
        assert len([k for k in values if k.startswith("system/cpu/")]) == cores
        assert values["system/memory_available_mb"] > 0 and values["system/memory_used_mb"] > 0
        assert values["system/process_rss_mb"] > 10
    assert max(v["system/process_cpu_percent"] for _, _, v in samples[1:]) > 20  # the burner is seen
    assert "system/disk_read_mbps" not in samples[0][2]  # rates need two readings
    assert all(v["system/net_recv_mbps"] >= 0 for _, _, v in samples[1:])


def test_missing_counters_are_missing_series(monkeypatch):
    def unsupported(*args, **kwargs):
        raise NotImplementedError("not on this platform")

    monkeypatch.setattr(psutil, "disk_io_counters", unsupported)
    monkeypatch.setattr(psutil, "net_io_counters", lambda *a, **k: None)
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=0.2, name="test")
    time.sleep(0.7)
    sampler.stop()
    keys = set().union(*(v for _, _, v in samples))
    assert "system/cpu_percent" in keys
    assert not any("disk" in k or "net" in k for k in keys)


def test_no_gpu_means_no_gpu_series():
    samples, sink = collect()
    sampler = SystemSampler(sink, interval=0.2, name="test")
    time.sleep(0.3)
    sampler.stop()
    if not os.path.exists("/proc/driver/nvidia"):
        assert not any("gpu" in k for _, _, v in samples for k in v)


def test_samples_are_stored_with_the_run(monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0.5")
    run = nbtrack.init(project="p")
    for i in range(5):
        run.log({"loss": float(i)})
        time.sleep(0.3)
    run.finish()
    history = run.store.history(run.id, "system/cpu_percent")
    assert len(history) >= 3
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
