"""System metrics (CPU, memory, GPU) as `ChartData`, for the System pane, the snapshot and the reports."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nbtrack.render.charts import ChartData, LineData
from nbtrack.run.live import LiveHistory

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("CPU %", (("system/cpu_percent", "system"), ("system/process_cpu_percent", "process tree"))),
    (
        "Memory (MB)",
        (
            ("system/memory_used_mb", "used"),
            ("system/memory_available_mb", "available"),
            ("system/process_rss_mb", "process tree RSS"),
        ),
    ),
    ("Disk (MB/s)", (("system/disk_read_mbps", "read"), ("system/disk_write_mbps", "write"))),
    ("Network (MB/s)", (("system/net_sent_mbps", "sent"), ("system/net_recv_mbps", "received"))),
)
GPU_FIELDS = (
    ("utilization_percent", "GPU {i} utilization %"),
    ("memory_used_mb", "GPU {i} memory (MB)"),
    ("temperature_c", "GPU {i} temperature (°C)"),
    ("power_w", "GPU {i} power (W)"),
)
_CORE = re.compile(r"^system/cpu/(\d+)_percent$")
_GPU = re.compile(r"^system/gpu/(\d+)/")


def _line(live: LiveHistory, key: str, label: str, index: int, started: float) -> LineData:
    history = live.get(key)
    return LineData(
        key,
        "series",
        history.time - started,
        history.value,
        stroke=PALETTE[index % len(PALETTE)],
        label=label,
    )


def system_charts(
    live: LiveHistory, started: float, spans: Sequence[tuple[float, float]] = ()
) -> list[ChartData]:
    """The main system charts (CPU, memory, disk, network, each GPU); x is seconds since `started`."""
    keys = set(live.keys())
    shaded = tuple((a - started, b - started) for a, b in spans)
    charts = []
    for title, members in GROUPS:
        present = [(key, label) for key, label in members if key in keys]
        if present:
            lines = tuple(_line(live, key, label, i, started) for i, (key, label) in enumerate(present))
            charts.append(ChartData(title, lines, "seconds", spans=shaded))
    gpus = sorted({int(m.group(1)) for key in keys if (m := _GPU.match(key))})
    for gpu in gpus:
        for i, (field, title) in enumerate(GPU_FIELDS):
            key = f"system/gpu/{gpu}/{field}"
            if key in keys:
                charts.append(
                    ChartData(
                        title.format(i=gpu),
                        (_line(live, key, title.split(" ", 2)[-1], i, started),),
                        "seconds",
                        spans=shaded,
                    )
                )
    return charts


def core_chart(
    live: LiveHistory, started: float, spans: Sequence[tuple[float, float]] = ()
) -> ChartData | None:
    """Every core's CPU % in one chart; None when the platform gave no per-core numbers."""
    cores = sorted((int(m.group(1)), key) for key in live.keys() if (m := _CORE.match(key)))
    if not cores:
        return None
    lines = tuple(_line(live, key, f"core {n}", n, started) for n, key in cores)
    return ChartData(
        "CPU % per core", lines, "seconds", spans=tuple((a - started, b - started) for a, b in spans)
    )
