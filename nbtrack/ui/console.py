"""Outside notebooks (scripts, terminal IPython) the Keras callback prints one concise line per epoch.

Imports no widget code: a script works without the widgets extra (ipywidgets, anywidget, bqplot)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def format_clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "invalid time"  # a stored run whose times are not times
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(epoch: int, epochs: int | None, elapsed: float, values: Mapping[str, Any]) -> str:
    total = f"/{epochs}" if epochs else ""
    metrics = " - ".join(
        f"{k} {v:.4g}" for k, v in values.items() if k not in ("epoch",) and isinstance(v, (int, float))
    )
    return f"nbtrack: epoch {epoch + 1}{total} - {format_clock(elapsed)} - {metrics}"
