"""Widgets: the notebook dashboard and its panes (ipywidgets + bqplot + anywidget views), the compare widget,
the runs browser, the live sweep view, and the console line. What they draw comes from `nbtrack.render`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


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


def accept_clicks_during_fit(widget: Any) -> None:
    """Let `widget`'s clicks be handled while the cell runs `fit`.

    JupyterLab >= 4.4 sends comm messages to a kernel subshell, whose thread handles them while the main shell
    is busy. But ipykernel 7 routes a comm's incoming messages back to the shell that last *sent* on that
    comm; after the main shell created or updated the button, a click would wait for the cell to end.
    Forgetting that route lets the frontend's own subshell handle the click. Call it after every update of
    the widget from the main thread.

    ipykernel has no public way to say this, so it clears the comm's private route (ipykernel 7.4), guarded: a
    kernel without it is left alone, and a click that then arrives only after training ends says so.
    """
    comm = getattr(widget, "comm", None)
    lock = getattr(comm, "_reply_subshell_lock", None)
    if lock is None:
        return
    with lock:
        vars(comm).pop("_reply_subshell_id", None)
