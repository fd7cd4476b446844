"""Property test: whatever `run.log` accepts comes back from the store exactly (values bit for bit, steps, keys),
and what it refuses is refused with a message naming the key, leaving the run usable."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack

keys = st.one_of(
    st.sampled_from(["loss", "val/acc", "a.b", "with space", "ünïcödé", "batch/loss", "x" * 300]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=20,
    ).filter(lambda k: k.strip() and not k.startswith("_")),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, float("nan"), float("-inf")]),
    st.floats(width=32).map(np.float32),
    st.integers(-1000, 1000).map(np.int64),
)
calls = st.lists(st.dictionaries(keys, values, min_size=1, max_size=4), min_size=1, max_size=30)


def as_float(value) -> float:
    return float(value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls)
def test_log_store_read_round_trip(calls, store_dir):
    run = nbtrack.init(project="roundtrip")
    expected: dict[str, list[tuple[int, float]]] = {}
    for step, payload in enumerate(calls):
        run.log(payload)
        for key, value in payload.items():
            expected.setdefault(key, []).append((step, as_float(value)))
    run.finish()
    stored = nbtrack.get_run(run.id)
    assert set(stored.metrics()) >= set(expected)
    for key, points in expected.items():
        history = stored.history(key)
        assert history.step.tolist() == [s for s, _ in points], key
        want = np.array([v for _, v in points], dtype=np.float64)
        assert np.array_equal(history.value.view(np.int64), want.view(np.int64)) or np.array_equal(
            history.value, want, equal_nan=True
        ), key  # bit for bit (NaN payloads aside), -0.0 kept
        assert np.array_equal(np.signbit(history.value), np.signbit(want))
        finite = [v for _, v in points if not math.isnan(v)]
        if finite:
            assert stored.summary[key] == points[-1][1] or math.isnan(points[-1][1])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**400, "integer too large for a 64-bit float"),
        ("0.5", "is text"),
        ([1.0, 2.0], "is a list"),
        (np.zeros(3), "array of shape (3,)"),
        (None, "is None"),
        ({"deep": "text"}, "is text"),
    ],
)
def test_refused_values_name_the_key_and_leave_the_run_usable(value, message):
    run = nbtrack.init(project="refused")
    with pytest.raises((TypeError, ValueError)) as info:
        run.log({"the_key": value})
    assert message in str(info.value) and "the_key" in str(info.value)
    run.log({"ok": 1.0})
    run.finish()
    assert nbtrack.get_run(run.id).history("ok").value.tolist() == [1.0]
