"""What live views read: the training progress and the bounded, growing history of every metric.

Pure and thread-free: the training thread feeds them (through `Run.log`'s throttled refresh), views read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nbtrack.common.series import History, MinMaxDownsampler, append_columns

MAX_POINTS = 2000


@dataclass
class Progress:
    """Where training is; set by the Keras callback, read by views. Unknown totals stay None."""

    epochs: int | None = None
    steps_per_epoch: int | None = None
    epoch: int = 0  # the epoch in progress, 0-based
    step_in_epoch: int = 0  # batches done in the epoch in progress
    started: float = field(default_factory=time.time)
    ended: float | None = None  # when the last fit ended
    training: bool = False

    def span(self, now: float | None = None) -> tuple[float, float] | None:
        """Wall-time span of the current or last fit; None before any."""
        if self.training:
            return (self.started, now or time.time())
        return (self.started, self.ended) if self.ended is not None else None

    def fraction(self) -> float | None:
        if not self.epochs or not self.steps_per_epoch:
            return None
        done = self.epoch * self.steps_per_epoch + self.step_in_epoch
        return min(1.0, done / (self.epochs * self.steps_per_epoch))

    def eta(self, now: float | None = None) -> float | None:
        fraction = self.fraction()
        if not fraction:
            return None
        elapsed = (now or time.time()) - self.started
        return max(0.0, elapsed * (1 - fraction) / fraction)


class LiveHistory:
    """Every metric's points, each kept at ≤ `max_points` by a `MinMaxDownsampler`, with a version counter
    per metric so views resend only what changed.

    One made by `from_store(..., lazy=True)` knows every key at once but reads a metric from the store only when
    it is first asked for, so opening a stored run with thousands of metrics reads just the charts it shows.
    """

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self._series: dict[str, MinMaxDownsampler | None] = {}  # None: in the store, not read yet
        self._counts: dict[str, int] = {}  # points of metrics not read yet
        self._read: Callable[[str], History] | None = None
        self.version: dict[str, int] = {}

    def add(self, points: list[tuple[int, float, dict[str, float]]]) -> set[str]:
        """Append queued `log` calls; returns the metrics that changed."""
        changed: set[str] = set()
        for key, (steps, times, values) in _columns(points).items():
            sampler = self._sampler(key)
            if sampler is None:
                sampler = self._series[key] = MinMaxDownsampler(self.max_points)
            sampler.extend(steps, times, values)
            self.version[key] = self.version.get(key, 0) + 1
            changed.add(key)
        return changed

    def keys(self) -> list[str]:
        return list(self._series)

    def get(self, key: str) -> History:
        sampler = self._sampler(key)
        if sampler is None:
            return History.empty(key)
        points = sampler.points()
        return History(key, points.step, points.time, points.value)

    def count(self, key: str) -> int:
        if key in self._counts:
            return self._counts[key]
        sampler = self._series.get(key)
        return len(sampler) if sampler is not None else 0

    def _sampler(self, key: str) -> MinMaxDownsampler | None:
        sampler = self._series.get(key)
        if sampler is None and key in self._counts and self._read is not None:
            history = self._read(key)
            sampler = self._series[key] = MinMaxDownsampler(self.max_points)
            sampler.extend(history.step, history.time, history.value)
            del self._counts[key]
        return sampler

    @classmethod
    def from_store(
        cls, store, run_id: str, max_points: int = MAX_POINTS, *, lazy: bool = False
    ) -> LiveHistory:  # type: ignore[no-untyped-def]
        """The history of a stored run, for reopening its dashboard; `lazy` reads each metric on first use
        (only for a run nothing logs to any more: points logged later would be read twice)."""
        live = cls(max_points)
        for key, stats in store.metric_stats(run_id).items():
            live.version[key] = 1
            if lazy:
                live._series[key] = None
                live._counts[key] = stats.count
                continue
            history = store.history(run_id, key)
            sampler = live._series[key] = MinMaxDownsampler(max_points)
            sampler.extend(history.step, history.time, history.value)
        if lazy:
            live._read = lambda key: store.history(run_id, key)
        return live


def _columns(points: list[tuple[int, float, dict[str, float]]]) -> dict[str, tuple[list, list, list]]:
    """Per-metric steps, times and values of queued `log` calls, in logging order.

    Consecutive calls that log the same keys (a loop logging the same metrics each step) are taken together, a
    list per key, which costs a fraction of adding point by point.
    """
    columns: dict[str, tuple[list, list, list]] = {}
    start, count = 0, len(points)
    while start < count:
        names = points[start][2].keys()
        end = start + 1
        while end < count and points[end][2].keys() == names:
            end += 1
        if end == start + 1:  # one call (a metric per layer, logged now and then): no lists to build
            append_columns(columns, *points[start])
            start = end
            continue
        run = points[start:end]
        steps = [p[0] for p in run]
        times = [p[1] for p in run]
        for key in names:
            values = [p[2][key] for p in run]
            column = columns.get(key)
            if column is None:
                columns[key] = (steps.copy(), times.copy(), values)
            else:
                column[0].extend(steps)
                column[1].extend(times)
                column[2].extend(values)
        start = end
    return columns
