"""Outside notebooks (scripts, terminal IPython) the Keras callback prints one concise line per epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbtrack.ui.dashboard import format_clock


def epoch_line(epoch: int, epochs: int | None, elapsed: float, values: Mapping[str, Any]) -> str:
    total = f"/{epochs}" if epochs else ""
    metrics = " - ".join(
        f"{k} {v:.4g}" for k, v in values.items() if k not in ("epoch",) and isinstance(v, (int, float))
    )
    return f"nbtrack: epoch {epoch + 1}{total} - {format_clock(elapsed)} - {metrics}"
