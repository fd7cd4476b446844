"""How both SQL stores keep metric points: chunks of up to `MAX_CHUNK_POINTS` points per (run, metric) row.

Values are raw float64, wall times int32 milliseconds from the chunk's first point, steps omitted when they are
consecutive (the usual case) and raw int64 otherwise. That is 12 bytes a point typically, 20 at most, and reading a
million points back is a few hundred `frombuffer` calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from nbtrack.store.base import SeriesBatch

CHUNK_POINTS = 1024  # a chunk smaller than this is topped up by the next flush
MAX_CHUNK_POINTS = 65_536  # big flushes are split into chunks of up to this many points
_INT32_MS = 2**31 - 1


def encode_chunks(
    step: np.ndarray, tm: np.ndarray, value: np.ndarray, size: int
) -> list[tuple[int, int, int, float, bytes | None, bytes, bytes]]:
    """Encode a series as chunks of up to `size` points: (n, first step, last step, t0, steps, times, values).

    Every array operation runs once over the whole series, then chunks are byte slices: numpy gives up the GIL
    inside large operations, and under a busy training thread each hand-off back costs a switch interval.
    """
    n = int(value.shape[0])
    starts = list(range(0, n, size))
    steps = np.ascontiguousarray(step, dtype="<i8")
    values = np.ascontiguousarray(value, dtype="<f8")
    breaks = np.flatnonzero(np.diff(steps) != 1) if n > 1 else np.empty(0, np.int64)  # non-consecutive steps
    ms = np.rint(np.asarray(tm, dtype=np.float64) * 1000.0)
    offsets = ms - np.repeat(ms[starts], [min(size, n - s) for s in starts])
    small = bool(np.abs(offsets).max() <= _INT32_MS) if n else True
    times32 = offsets.astype("<i4") if small else None
    times64 = None if small else np.ascontiguousarray(tm, dtype="<f8")
    chunks = []
    for start in starts:
        end = min(start + size, n)
        # consecutive within [start, end) unless a break falls at an index in [start, end - 1)
        cut = int(np.searchsorted(breaks, start)) if len(breaks) else 0
        consecutive = not (len(breaks) and cut < len(breaks) and breaks[cut] < end - 1)
        times = times32[start:end].tobytes() if times32 is not None else times64[start:end].tobytes()  # type: ignore[index]
        chunks.append(
            (
                end - start,
                int(steps[start]),
                int(steps[end - 1]),
                float(ms[start]) / 1000.0,
                None if consecutive else steps[start:end].tobytes(),
                times,
                values[start:end].tobytes(),
            )
        )
    return chunks


def decode_chunk(
    n: int, first: int, t0: float, steps: bytes | None, times: bytes, vals: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = np.arange(first, first + n, dtype=np.int64) if steps is None else np.frombuffer(steps, "<i8")
    if len(times) == 4 * n:
        tm = np.frombuffer(times, "<i4") / 1000.0 + t0
    else:
        tm = np.frombuffer(times, "<f8")
    return step, tm, np.frombuffer(vals, "<f8")


def rounds_of_distinct_keys(batch: list[SeriesBatch]) -> Iterator[list[SeriesBatch]]:
    """The non-empty series of a batch in rounds where each key appears once (in order): a key given twice
    is appended in a later round, after the earlier one is written."""
    pending = [s for s in batch if s.value]
    while pending:
        seen: set[str] = set()
        round_, later = [], []
        for series in pending:
            (later if series.key in seen else round_).append(series)
            seen.add(series.key)
        yield round_
        pending = later


def merge_series(
    rid: str, series: SeriesBatch, stats: tuple[Any, ...] | None, tail: tuple[Any, ...] | None
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    """The chunk rows and the metric row that append `series` to a metric whose row is `stats` (count, min,
    max, first_step, chunks; None when new) and whose last chunk, when it has room, is `tail`."""
    step = np.asarray(series.step, dtype=np.int64)
    tm = np.asarray(series.time, dtype=np.float64)
    value = np.asarray(series.value, dtype=np.float64)
    finite_min = float(np.fmin.reduce(value))
    finite_max = float(np.fmax.reduce(value))
    if stats is None:
        count, lo, hi, first_step, chunks = 0, finite_min, finite_max, int(step[0]), 0
    else:
        count, old_lo, old_hi, first_step, chunks = stats
        lo = _nan_if_all(old_lo, finite_min, min)
        hi = _nan_if_all(old_hi, finite_max, max)
    seq = chunks
    # Merge into the last chunk while it has room, so slow runs don't leave one tiny row per flush.
    if chunks and tail is not None:
        t_step, t_time, t_value = decode_chunk(*tail)
        step = np.concatenate([t_step, step])
        tm = np.concatenate([t_time, tm])
        value = np.concatenate([t_value, value])
        seq = chunks - 1
    rows = [
        (rid, series.key, seq + k, *chunk)
        for k, chunk in enumerate(encode_chunks(step, tm, value, MAX_CHUNK_POINTS))
    ]
    metric = (
        rid,
        series.key,
        count + len(series.value),
        nan_to_none(series.value[-1]),
        nan_to_none(lo),
        nan_to_none(hi),
        first_step,
        int(series.step[-1]),
        seq + len(rows),
    )
    return rows, metric


def _nan_if_all(old: float | None, new: float, pick) -> float:  # type: ignore[no-untyped-def]
    if old is None:
        return new
    if math.isnan(new):
        return old
    return pick(old, new)


def nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
