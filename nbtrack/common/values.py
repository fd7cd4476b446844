"""Turning what users pass to `log` and `config` into what the store keeps.

Metrics are numbers. `log` accepts ints, floats, bools, numpy scalars, 0-d arrays and anything else with
``__float__`` that is not text (e.g. a scalar tensor); NaN and ±inf are kept as they are. Nested dicts are
flattened to ``outer/inner`` keys, as W&B does. Text, lists, None and arrays with more than one element are
rejected with a TypeError naming the key: they belong in ``run.config`` or ``run.summary``.

Config and summary values are kept as JSON; anything JSON cannot hold (numpy types, paths, objects) is stored
in a readable form instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import enum
import os
from collections.abc import Mapping
from typing import Any

_NUMBER_TYPES = (float, int)


def shown(text: str, limit: int = 60) -> str:
    """`text` for an error message: its repr, cut to `limit` characters with its length when longer."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def clip(text: str, limit: int) -> str:
    """`text` for display: its start and how long it really is when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text):,} chars)"
    return text[: max(limit - len(note), 8)] + note


def check_key(key: object, where: str = "run.log") -> str:
    if type(key) is not str:
        raise TypeError(f"{where}: metric names must be strings, got {type(key).__name__} {repr(key)[:60]}.")
    if not key or key.isspace():
        raise ValueError(f"{where}: metric names must not be empty.")
    return key


def element_count(value: object) -> int | None:
    """How many elements an array or tensor holds (numpy, TF, torch, JAX), from its shape; None if it has none."""
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, (str, bytes)):
        return None
    try:
        count = 1
        for dim in shape:
            count *= int(dim)
        return count
    except (TypeError, ValueError):  # an unknown dimension (a symbolic tensor)
        return None


def _to_float(key: str, value: object) -> float:
    name = shown(key)
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"run.log: the value of {name} is text ({value!r:.40}); only numbers can be logged as metrics. "
            "Put text in run.config or run.summary instead."
        )
    if value is None:
        raise TypeError(f"run.log: the value of {name} is None; log a number, or float('nan') for a gap.")
    size = element_count(value)
    if size is not None and size != 1:
        raise TypeError(
            f"run.log: the value of {name} is an array of shape {tuple(value.shape)}; only scalars can be "  # type: ignore[attr-defined]
            "logged. Log a reduction (e.g. its mean) or one key per element."
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(
            f"run.log: the value of {name} is an integer too large for a 64-bit float ({len(str(abs(int(value))))} "  # type: ignore[call-overload]
            "digits); log it scaled, or put it in run.summary."
        ) from None
    except (TypeError, ValueError):
        if size == 1 and hasattr(value, "item"):  # a one-element array: numpy >= 2.4 refuses float() on it
            try:
                return float(value.item())  # type: ignore[union-attr]
            except (TypeError, ValueError):
                pass
        raise TypeError(
            f"run.log: the value of {name} is {_article(type(value).__name__)}, which is not a number. Metrics must be "
            "int, float, bool, a numpy scalar or a 0-d array."
        ) from None


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def flatten_metrics(data: Mapping[Any, Any], prefix: str = "") -> dict[str, float]:
    """Validate and convert one `log` payload; the slow path behind `Run.log`'s fast one."""
    out: dict[str, float] = {}
    for key, value in data.items():
        check_key(key)
        name = prefix + key
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, name + "/"))
        elif type(value) is float:
            out[name] = value
        else:
            out[name] = _to_float(name, value)
    return out


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-ready, readable form of a config or summary value; never raises."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)  # NaN and ±inf included: the store writes them as JSON's NaN/Infinity extension
    if _depth > 20:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v, _depth + 1) for v in items]
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    # numpy, JAX, torch and TF scalars and arrays (up to 10,000 elements), without importing any of them.
    size = element_count(value) if hasattr(value, "dtype") else None
    if size is not None and size <= 10_000:
        try:
            if hasattr(value, "numpy") and not hasattr(value, "tolist"):  # a TF tensor
                value = value.numpy()
            elif hasattr(value, "detach"):  # a torch tensor, perhaps on a GPU
                value = value.detach().cpu()
            return to_jsonable(value.tolist() if hasattr(value, "tolist") else value.item(), _depth + 1)
        except Exception:
            pass
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 1000 else text[:997] + "..."


def is_number(value: object) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)
