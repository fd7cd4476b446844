"""Metric series: the in-memory form of one metric's history and its reduction for charts.

Pure functions over numpy arrays, shared by every store backend and by the chart panes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


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


Columns = dict[str, tuple[list[int], list[float], list[float]]]  # metric -> (steps, wall times, values)


def append_columns(columns: Columns, step: int, when: float, values: dict[str, float]) -> None:
    """Add one `log` call's values to per-metric columns (how the writer and live views queue points)."""
    for key, value in values.items():
        column = columns.get(key)
        if column is None:
            column = columns[key] = ([], [], [])
        column[0].append(step)
        column[1].append(when)
        column[2].append(value)


def reduce_indices(values: np.ndarray, samples: int) -> np.ndarray:
    """Indices of at most `samples` points that keep each bucket's minimum and maximum (spikes survive).

    Buckets are equal runs of consecutive points. A bucket holding NaN also keeps its first NaN, so gaps
    stay visible; ±inf are extremes and are kept as such. The first and last points are kept too (when
    `samples` leaves room), so a reduced line spans the same steps as the full one.
    """
    n = int(values.shape[0])
    if samples <= 0:
        raise ValueError(f"samples must be a positive number of points, got {samples}.")
    if n <= samples:
        return np.arange(n)
    nan = np.isnan(values)
    has_nan = bool(nan.any())
    per_bucket = 3 if has_nan else 2
    ends = samples >= 2 * per_bucket + 2
    buckets = max(1, (samples - 2 if ends else samples) // per_bucket)
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
    if ends:
        picks.append(np.array([0, n - 1]))
    index = np.unique(np.concatenate(picks))
    return index[index < n]


def reduce_history(history: History, samples: int | None) -> History:
    """`history` itself when it fits in `samples` points, else its min/max-bucket reduction."""
    if samples is None or len(history) <= samples:
        return history
    return history.take(reduce_indices(history.value, samples))


class MinMaxDownsampler:
    """A growing series kept at a bounded size for live charts, updated in O(new points).

    Up to `max_points` points are kept as they are (24 bytes each). Past that, points fall into buckets of
    `width` consecutive points; each bucket keeps its minimum, its maximum and its first NaN (so gaps stay
    visible). When there are more than `max_points // 3` buckets, neighbours merge pairwise and the width
    doubles, so `points()` never returns more than `max_points` points, however long the run. The first and the
    last point are kept too, so a reduced line spans the same steps as the full one. Thousands of
    short series (a metric per layer) cost little: nothing is set aside before points come.
    """

    _FIELDS = ("index", "step", "time", "value")

    def __init__(self, max_points: int = 2000) -> None:
        if max_points < 6:
            raise ValueError(f"max_points must be at least 6, got {max_points}.")
        self.max_points = max_points
        self.max_buckets = (max_points - 5) // 3  # 3 points a bucket, 3 for the tail, the first and the last
        self.width = 1
        self.count = 0  # points seen
        self._raw: np.ndarray | None = None  # rows step, time, value; the first `count` columns are used
        # Once past max_points, per bucket: the chosen low / high / first-NaN point (index -1 when no NaN).
        self._low: dict[str, np.ndarray] = {}
        self._high: dict[str, np.ndarray] = {}
        self._nan: dict[str, np.ndarray] = {}
        self._tail: dict[str, np.ndarray] = {}
        self._ends: dict[str, np.ndarray] = {}  # the first and the last point, once past max_points

    def __len__(self) -> int:
        return self.count

    def extend(self, step: ArrayLike, time: ArrayLike, value: ArrayLike) -> None:
        """Add points in logging order (arrays or lists of equal length)."""
        n = len(value)
        if n == 0:
            return
        first = self._first_point(step, time, value) if self.count == 0 else None
        if self._raw is not None or self.count == 0:
            if self.count + n <= self.max_points:
                self._append_raw(step, time, value, n)
                return
            self._to_buckets(first)
        new = {
            "index": np.arange(self.count, self.count + n, dtype=np.float64),
            "step": np.asarray(step, np.float64),
            "time": np.asarray(time, np.float64),
            "value": np.asarray(value, np.float64),
        }
        self.count += n
        self._add_to_buckets(new)
        self._ends = {f: np.array([self._ends[f][0], new[f][-1]]) for f in self._FIELDS}

    @staticmethod
    def _first_point(step: ArrayLike, time: ArrayLike, value: ArrayLike) -> dict[str, np.ndarray]:
        return {
            "index": np.zeros(1),
            "step": np.asarray(step, np.float64)[:1],
            "time": np.asarray(time, np.float64)[:1],
            "value": np.asarray(value, np.float64)[:1],
        }

    def _append_raw(self, step: ArrayLike, time: ArrayLike, value: ArrayLike, n: int) -> None:
        raw, used = self._raw, self.count
        if raw is None or used + n > raw.shape[1]:
            grown = np.empty((3, min(self.max_points, max(8, 2 * (used + n)))), np.float64)
            if raw is not None:
                grown[:, :used] = raw[:, :used]
            raw = self._raw = grown
        raw[0, used : used + n] = step
        raw[1, used : used + n] = time
        raw[2, used : used + n] = value
        self.count = used + n

    def _to_buckets(self, first: dict[str, np.ndarray] | None) -> None:
        """Leave the exact form: the points so far become buckets of width 1 (merged as they overflow)."""
        raw, used = self._raw, self.count
        empty = {f: np.empty(0) for f in self._FIELDS}
        self._low, self._high, self._nan, self._tail = dict(empty), dict(empty), dict(empty), dict(empty)
        if first is None:  # the first point is the raw form's first column
            first = {
                "index": np.zeros(1),
                **{f: raw[i, :1].copy() for i, f in enumerate(("step", "time", "value"))},
            }
        self._ends = {f: np.concatenate([first[f], first[f]]) for f in self._FIELDS}
        self._raw = None
        if raw is not None and used:
            self._add_to_buckets(
                {
                    "index": np.arange(used, dtype=np.float64),
                    "step": raw[0, :used].copy(),
                    "time": raw[1, :used].copy(),
                    "value": raw[2, :used].copy(),
                }
            )

    def _add_to_buckets(self, new: dict[str, np.ndarray]) -> None:
        tail = {f: np.concatenate([self._tail[f], new[f]]) for f in self._FIELDS}
        full = len(tail["value"]) // self.width
        if full:
            cut = full * self.width
            low, high, nan = _bucket_extremes({f: tail[f][:cut] for f in self._FIELDS}, self.width)
            for mine, theirs in ((self._low, low), (self._high, high), (self._nan, nan)):
                for f in self._FIELDS:
                    mine[f] = np.concatenate([mine[f], theirs[f]])
            tail = {f: tail[f][cut:] for f in self._FIELDS}
        self._tail = tail
        while len(self._low["value"]) > self.max_buckets:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        buckets = len(self._low["value"])
        even = buckets - buckets % 2

        def pick(side: dict[str, np.ndarray], better: np.ndarray) -> dict[str, np.ndarray]:
            a = {f: side[f][0:even:2] for f in self._FIELDS}
            b = {f: side[f][1:even:2] for f in self._FIELDS}
            take_b = better(a, b)
            merged = {f: np.where(take_b, b[f], a[f]) for f in self._FIELDS}
            return {f: np.concatenate([merged[f], side[f][even:]]) for f in self._FIELDS}

        def lower(a, b):  # type: ignore[no-untyped-def]
            return _key(b["value"], +1) < _key(a["value"], +1)

        def higher(a, b):  # type: ignore[no-untyped-def]
            return _key(b["value"], -1) > _key(a["value"], -1)

        def first_nan(a, b):  # type: ignore[no-untyped-def]
            return (a["index"] < 0) & (b["index"] >= 0)

        self._low = pick(self._low, lower)
        self._high = pick(self._high, higher)
        self._nan = pick(self._nan, first_nan)
        self.width *= 2

    def points(self) -> History:
        """The kept points in order: at most `max_points`, spikes and NaN gaps included."""
        if not self._low:  # still exact
            raw, used = self._raw, self.count
            if raw is None:
                return History("", np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))
            return History("", raw[0, :used].astype(np.int64), raw[1, :used].copy(), raw[2, :used].copy())
        parts = [self._low, self._high, self._nan, self._ends]
        if len(self._tail["value"]):
            parts.extend(_bucket_extremes(self._tail, len(self._tail["value"])))
        index = np.concatenate([p["index"] for p in parts])
        keep = index >= 0
        order = np.unique(index[keep], return_index=True)[1]
        columns = {f: np.concatenate([p[f] for p in parts])[keep][order] for f in ("step", "time", "value")}
        return History("", columns["step"].astype(np.int64), columns["time"], columns["value"])


def _key(values: np.ndarray, sign: int) -> np.ndarray:
    """Values with NaN moved out of the way: +inf for a minimum search (sign +1), -inf for a maximum."""
    return np.where(np.isnan(values), sign * np.inf, values)


def _bucket_extremes(columns: dict[str, np.ndarray], width: int) -> tuple[dict[str, np.ndarray], ...]:
    """Low, high and first-NaN point of each run of `width` points (the length is a multiple of width)."""
    values = columns["value"].reshape(-1, width)
    base = np.arange(values.shape[0]) * width
    low_at = base + _key(values, +1).argmin(axis=1)
    high_at = base + _key(values, -1).argmax(axis=1)
    nan = np.isnan(values)
    nan_at = base + nan.argmax(axis=1)
    has_nan = nan.any(axis=1)
    low = {f: columns[f][low_at] for f in columns}
    high = {f: columns[f][high_at] for f in columns}
    nan_points = {f: columns[f][nan_at] for f in columns}
    nan_points["index"] = np.where(has_nan, nan_points["index"], -1.0)
    return low, high, nan_points
