"""Durations and times as the CLI, the runs table and the reports show them."""

from __future__ import annotations

import datetime as _dt
import math

INVALID_TIME = "invalid time"  # what a reader shows for a stored time that is not one (text, inf, 1e300)


def format_duration(seconds: float) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "invalid"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):  # a bad record: the other runs still show
        return INVALID_TIME
