"""The Model pane: the layer graph (an anywidget view, js/model_graph.js, with pan, zoom and hover details)
beside a sortable layer table, the parameter totals and the compile settings (`nbtrack.render.model` draws the
static SVG and tables for saved notebooks and reports). Layout comes from `nbtrack.capture.model_graph`, computed in Python.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from nbtrack.capture.model_graph import ModelGraph
from nbtrack.render.model import summary_html


class ModelView:
    """The anywidget view; made lazily so importing this module needs no anywidget."""

    def __new__(cls) -> Any:
        import anywidget
        import traitlets

        from nbtrack.ui import js_module

        class _ModelView(anywidget.AnyWidget):
            _esm = js_module("model_graph.js")
            graph = traitlets.Dict().tag(sync=True)

        return _ModelView()


class ModelPane:
    def __init__(self) -> None:
        import ipywidgets as W

        self.graph: ModelGraph | None = None
        self.summary = W.HTML("<i>The model appears when a Keras fit starts.</i>")
        self.view = ModelView()
        self.widget = W.VBox([self.summary, self.view])

    def show(self, graph: ModelGraph) -> int:
        self.graph = graph
        self.summary.value = summary_html(graph)
        self.view.graph = asdict(graph)
        return 2
