"""Views the upper layers lend the lower ones, so a run, a run list or a sweep shows itself without importing
the UI.

`nbtrack/__init__.py` registers every view when nbtrack is imported (which happens before any module below it
runs); a lower layer asks for a view by name when it has something to show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_views: dict[str, Callable[..., Any]] = {}


def register(name: str, view: Callable[..., Any]) -> None:
    """Make `view` the one `view(name)` returns (the layer that draws it calls this)."""
    _views[name] = view


def view(name: str) -> Callable[..., Any]:
    """The view registered as `name`."""
    try:
        return _views[name]
    except KeyError:
        raise LookupError(
            f"No view is registered as {name!r} (registered: {', '.join(sorted(_views)) or 'none'}); "
            "nbtrack/__init__.py registers them when nbtrack is imported."
        ) from None
