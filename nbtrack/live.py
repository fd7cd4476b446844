"""What live views read: the training progress and the bounded, growing history of every metric.

Pure and thread-free: the training thread feeds them (through `Run.log`'s throttled refresh), views read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from nbtrack.series import Columns, History, MinMaxDownsampler, append_columns

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
    per metric so views resend only what changed."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self._series: dict[str, MinMaxDownsampler] = {}
        self.version: dict[str, int] = {}

    def add(self, points: list[tuple[int, float, dict[str, float]]]) -> set[str]:
        """Append queued `log` calls; returns the metrics that changed."""
        columns: Columns = {}
        for step, when, values in points:
            append_columns(columns, step, when, values)
        for key, (steps, times, values) in columns.items():
            sampler = self._series.get(key)
            if sampler is None:
                sampler = self._series[key] = MinMaxDownsampler(self.max_points)
            sampler.extend(np.asarray(steps), np.asarray(times), np.asarray(values))
            self.version[key] = self.version.get(key, 0) + 1
        return set(columns)

    def keys(self) -> list[str]:
        return list(self._series)

    def get(self, key: str) -> History:
        sampler = self._series.get(key)
        if sampler is None:
            return History.empty(key)
        points = sampler.points()
        return History(key, points.step, points.time, points.value)

    def count(self, key: str) -> int:
        sampler = self._series.get(key)
        return len(sampler) if sampler is not None else 0

    @classmethod
    def from_store(cls, store, run_id: str, max_points: int = MAX_POINTS) -> LiveHistory:  # type: ignore[no-untyped-def]
        """The history of a stored run, for reopening its dashboard."""
        live = cls(max_points)
        for key in store.metric_stats(run_id):
            history = store.history(run_id, key)
            sampler = live._series[key] = MinMaxDownsampler(max_points)
            sampler.extend(history.step, history.time, history.value)
            live.version[key] = 1
        return live
