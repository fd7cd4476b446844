"""A monotonic clock the test moves, for code whose behaviour depends on elapsed time (the refresh throttle)."""

from __future__ import annotations

import time
from typing import Any


class VirtualClock:
    """Stands in for the `time` module inside one nbtrack module: `monotonic()` returns `now`, which the test
    sets; everything else is the real `time`. So a rate (refreshes a second) is checked against the seconds the
    test says passed, whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
