"""The System pane: the run's system metrics charted against wall time, with the training span shaded.

`system_charts` (pure) groups the ``system/*`` series into charts; `SystemPane` draws them, per-core CPU in a
collapsed section that is only sent while open.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nbtrack.live import LiveHistory
from nbtrack.ui.charts import ChartData, LineData

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


class SystemPane:
    def __init__(self, live: LiveHistory, *, started: float) -> None:
        import ipywidgets as W

        from nbtrack.ui.figures import FigureGrid

        self.live = live
        self.started = started
        self.spans: list[tuple[float, float]] = []
        self.grid = FigureGrid(height="220px")
        self.cores = FigureGrid(columns="1fr", height="260px")
        self.per_core = W.Accordion(
            children=[self.cores.widget], titles=["CPU % per core"], selected_index=None
        )
        self.per_core.observe(
            lambda change: self.refresh(set(self.live.keys()), force=True), names="selected_index"
        )
        self.empty = W.HTML(
            "<i>No system samples yet. They come every second while a run is open "
            "(psutil is needed: <code>pip install 'nbtrack[system]'</code>).</i>"
        )
        self.widget = W.VBox([self.empty, self.grid.widget, self.per_core])
        self._sent: dict[str, int] = {}

    def charts(self) -> list[ChartData]:
        charts = system_charts(self.live, self.started, self.spans)
        cores = core_chart(self.live, self.started, self.spans)
        return charts + ([cores] if cores is not None else [])

    def refresh(self, changed: set[str], force: bool = False) -> int:
        stale = {k for k in changed if k.startswith("system/")}
        if not stale and not force:
            return 0
        messages = self.grid.update(
            system_charts(self.live, self.started, self.spans), None if force else stale
        )
        if self.per_core.selected_index is not None:  # sent only while the section is open
            cores = core_chart(self.live, self.started, self.spans)
            if cores is not None:
                messages += self.cores.update([cores], None if force else stale)
        if self.grid.figures and self.empty.layout.display != "none":
            self.empty.layout.display = "none"
            messages += 1
        return messages
