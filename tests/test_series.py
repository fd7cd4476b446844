"""Pure functions over metric series: min/max bucket reduction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbtrack.common.series import History, reduce_history, reduce_indices


def test_small_series_is_untouched():
    assert reduce_indices(np.arange(10.0), 2000).tolist() == list(range(10))


@pytest.mark.parametrize("n", [2001, 10_000, 1_000_003])
@pytest.mark.parametrize("samples", [2, 3, 100, 2000])
def test_never_more_than_samples_and_sorted(n, samples):
    values = np.random.default_rng(n).normal(size=n)
    index = reduce_indices(values, samples)
    assert 0 < len(index) <= samples
    assert (np.diff(index) > 0).all() and index[0] >= 0 and index[-1] < n
    assert values[index].max() == values.max() and values[index].min() == values.min()


def test_every_bucket_keeps_its_min_and_max():
    values = np.random.default_rng(1).normal(size=10_000)
    index = set(reduce_indices(values, 202).tolist())  # 2 for the ends, 100 buckets of min and max
    for bucket in np.array_split(np.arange(10_000), 100):
        assert int(bucket[values[bucket].argmin()]) in index
        assert int(bucket[values[bucket].argmax()]) in index


@pytest.mark.parametrize("samples", [6, 100, 2000])
def test_reduction_keeps_the_first_and_last_point(samples):
    values = np.random.default_rng(3).normal(size=10_001)
    index = reduce_indices(values, samples)
    assert index[0] == 0 and index[-1] == 10_000 and len(index) <= samples


def test_nan_gaps_survive_reduction():
    values = np.ones(100_000)
    values[40_000:40_010] = np.nan
    values[77_777] = np.inf
    index = reduce_indices(values, 2000)
    assert len(index) <= 2000
    assert np.isnan(values[index]).any()
    assert np.isinf(values[index]).any()


def test_all_nan():
    index = reduce_indices(np.full(10_000, np.nan), 300)
    assert 0 < len(index) <= 300


def test_bad_samples():
    with pytest.raises(ValueError, match="positive number of points"):
        reduce_indices(np.arange(5000.0), 0)


def test_reduce_history_takes_matching_steps_and_times():
    n = 50_000
    history = History("x", np.arange(n) * 2, np.arange(n) * 0.5, np.sin(np.arange(n) / 100))
    reduced = reduce_history(history, 1000)
    assert len(reduced) <= 1000
    np.testing.assert_array_equal(reduced.step, reduced.time * 4)
    np.testing.assert_array_equal(reduced.value, np.sin(reduced.step / 200))
    assert reduce_history(history, None) is history
    assert math.isclose(reduced.value.max(), history.value.max())


from nbtrack.common.series import MinMaxDownsampler  # noqa: E402


def feed(sampler, values, chunk):
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        steps = np.arange(start, start + len(part))
        sampler.extend(steps, steps * 0.1, part)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 100_000])
def test_downsampler_is_bounded_and_keeps_extremes(chunk):
    n = 100_000 if chunk > 1 else 20_000
    values = np.sin(np.arange(n) / 500.0)
    values[n // 3] = 9.0
    values[n // 2] = -9.0
    values[n // 4 : n // 4 + 5] = np.nan
    sampler = MinMaxDownsampler(2000)
    feed(sampler, values, chunk)
    points = sampler.points()
    assert len(sampler) == n
    assert 0 < len(points) <= 2000
    assert (np.diff(points.step) > 0).all()
    np.testing.assert_allclose(points.time, points.step * 0.1)
    np.testing.assert_array_equal(np.isnan(points.value), np.isnan(values[points.step]))
    finite = points.value[np.isfinite(points.value)]
    assert finite.max() == 9.0 and finite.min() == -9.0
    assert np.isnan(points.value).any()
    assert points.step[-1] == n - 1 or values[n - 1] not in (finite.max(), finite.min())


def test_downsampler_small_series_is_exact():
    sampler = MinMaxDownsampler(2000)
    feed(sampler, np.arange(10.0), 3)
    points = sampler.points()
    assert points.step.tolist() == list(range(10)) and points.value.tolist() == list(map(float, range(10)))


def test_downsampler_million_points_stays_bounded():
    sampler = MinMaxDownsampler(2000)
    rng = np.random.default_rng(0)
    for start in range(0, 1_000_000, 4096):
        values = rng.normal(size=4096)
        steps = np.arange(start, start + 4096)
        sampler.extend(steps, steps.astype(float), values)
        assert len(sampler.points()) <= 2000
    assert sampler.width >= 1_000_000 // 2000


def test_downsampler_is_exact_up_to_max_points_then_reduces():
    sampler = MinMaxDownsampler(100)
    values = np.cos(np.arange(250) / 7.0)
    feed(sampler, values[:100], 9)
    assert sampler.points().value.tolist() == values[:100].tolist()  # every point, as logged
    feed_from = 100
    for start in range(feed_from, 250, 9):
        part = values[start : start + 9]
        steps = np.arange(start, start + len(part))
        sampler.extend(steps.tolist(), (steps * 0.1).tolist(), part.tolist())  # lists work too
    points = sampler.points()
    assert len(points) <= 100 and len(sampler) == 250
    assert points.value.max() == values.max() and points.value.min() == values.min()


@pytest.mark.parametrize("chunk", [1, 13, 5000])
def test_downsampler_keeps_the_first_and_the_last_point(chunk):
    """A reduced live line spans the same steps as the full one, whatever the values (a loss curve whose
    first point is neither its bucket's minimum nor its maximum included)."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=10_007)
    values[0] = np.median(values[:40])  # not an extreme of the first bucket
    values[-1] = np.median(values[-40:])
    sampler = MinMaxDownsampler(2000)
    feed(sampler, values, chunk)
    points = sampler.points()
    assert len(points) <= 2000
    assert points.step[0] == 0 and points.value[0] == values[0]
    assert points.step[-1] == len(values) - 1 and points.value[-1] == values[-1]
    assert (np.diff(points.step) > 0).all()
