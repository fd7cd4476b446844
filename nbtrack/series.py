"""Metric series: the in-memory form of one metric's history and its reduction for charts.

Pure functions over numpy arrays, shared by every store backend and by the chart panes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class History:
    """One metric's points in logging order: global step, wall time (epoch seconds) and value."""

    key: str
    step: np.ndarray  # int64
    time: np.ndarray  # float64
    value: np.ndarray  # float64; NaN and ±inf kept as logged

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def take(self, index: np.ndarray) -> History:
        return History(self.key, self.step[index], self.time[index], self.value[index])

    @classmethod
    def empty(cls, key: str) -> History:
        return cls(key, np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))


def reduce_indices(values: np.ndarray, samples: int) -> np.ndarray:
    """Indices of at most `samples` points that keep each bucket's minimum and maximum (spikes survive).

    Buckets are equal runs of consecutive points. A bucket holding NaN also keeps its first NaN, so gaps
    stay visible; ±inf are extremes and are kept as such.
    """
    n = int(values.shape[0])
    if samples <= 0:
        raise ValueError(f"samples must be a positive number of points, got {samples}.")
    if n <= samples:
        return np.arange(n)
    nan = np.isnan(values)
    has_nan = bool(nan.any())
    per_bucket = 3 if has_nan else 2
    buckets = max(1, samples // per_bucket)
    if buckets == 1 and samples < per_bucket:
        return np.array([int(np.argmax(np.where(nan, -np.inf, values)))])
    width = -(-n // buckets)  # ceil
    buckets = -(-n // width)
    padded = buckets * width
    low = np.full(padded, np.inf)
    high = np.full(padded, -np.inf)
    low[:n] = np.where(nan, np.inf, values)
    high[:n] = np.where(nan, -np.inf, values)
    base = np.arange(buckets) * width
    picks = [
        base + low.reshape(buckets, width).argmin(axis=1),
        base + high.reshape(buckets, width).argmax(axis=1),
    ]
    if has_nan:
        nan_padded = np.zeros(padded, bool)
        nan_padded[:n] = nan
        rows = nan_padded.reshape(buckets, width)
        any_nan = rows.any(axis=1)
        picks.append((base + rows.argmax(axis=1))[any_nan])
    index = np.unique(np.concatenate(picks))
    return index[index < n]


def reduce_history(history: History, samples: int | None) -> History:
    """`history` itself when it fits in `samples` points, else its min/max-bucket reduction."""
    if samples is None or len(history) <= samples:
        return history
    return history.take(reduce_indices(history.value, samples))
