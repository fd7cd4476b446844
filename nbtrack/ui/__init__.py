"""Views of runs: the notebook dashboard (ipywidgets + bqplot + anywidget views), its static SVG snapshot,
and the console line."""

from __future__ import annotations

from pathlib import Path


def js_module(name: str) -> Path:
    """The ES module `name` of an anywidget view: packaged as nbtrack/_js in a wheel, js/ in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_js" / name, package.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nbtrack's view module {name} is missing (looked in nbtrack/_js and js/).")
