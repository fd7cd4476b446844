"""The states a run can be in: the store records them, the `where` language checks them."""

from __future__ import annotations

STATES = ("running", "finished", "failed", "interrupted", "crashed", "stopped-early")
