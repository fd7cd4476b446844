"""Views of runs: the notebook dashboard (ipywidgets + bqplot + anywidget views), its static SVG snapshot,
and the console line."""

from __future__ import annotations

import sys
from pathlib import Path


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can render), False in scripts and terminal IPython.

    Lives here, not beside the dashboard, so scripts without the widget extra never import widget code."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def js_module(name: str) -> Path:
    """The ES module `name` of an anywidget view: packaged as nbtrack/_js in a wheel, js/ in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_js" / name, package.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nbtrack's view module {name} is missing (looked in nbtrack/_js and js/).")


def widget_bundle(widget: object, html: str, text: str, **more: str) -> dict[str, object]:
    """A display bundle: the widget's view, and a static HTML snapshot and a text line for where widgets can't render."""
    return {
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": widget.model_id,  # type: ignore[attr-defined]
        },
        **more,
        "text/html": html,
        "text/plain": text,
    }
