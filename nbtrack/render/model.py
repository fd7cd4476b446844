"""The model graph drawn without widgets: the static SVG, the layer table and the parameter totals, as HTML for
the saved snapshot and the reports. Layout comes from `nbtrack.capture.model_graph`, computed in Python.
"""

from __future__ import annotations

import html

from nbtrack.capture.model_graph import NODE_HEIGHT, NODE_WIDTH, ModelGraph
from nbtrack.render.svg import escape

_FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
MARGIN = 12


def _params(n: int) -> str:
    return f"{n:,}"


def summary_html(graph: ModelGraph) -> str:
    totals = graph.totals
    parts = [
        f"<b>{html.escape(graph.name)}</b> ({html.escape(graph.cls)}) · {len(graph.nodes)} layers",
        f"{_params(totals.get('total', 0))} parameters ({_params(totals.get('trainable', 0))} trainable, "
        f"{_params(totals.get('non_trainable', 0))} non-trainable)",
    ]
    for key in ("optimizer", "loss", "metrics"):
        if key in graph.compile:
            value = graph.compile[key]
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{key}: {html.escape(text)}")
    note = f"<div style='color:#a15c00'>{html.escape(graph.reason)}</div>" if graph.reason else ""
    return "<div style='font-size:13px'>" + " · ".join(parts) + "</div>" + note


def layer_table_html(graph: ModelGraph) -> str:
    """Like model.summary(): name, class, output shape, parameters."""
    rows = "".join(
        f"<tr><td>{html.escape(n.name)}</td><td>{html.escape(n.cls)}</td><td>{html.escape(n.output_shape)}</td>"
        f"<td style='text-align:right'>{_params(n.params)}</td></tr>"
        for n in graph.nodes
    )
    return (
        "<table style='border-collapse:collapse;font-size:12px'><thead><tr><th>Layer</th><th>Class</th>"
        f"<th>Output shape</th><th>Params</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def graph_svg(graph: ModelGraph, max_nodes: int = 400) -> str:
    """The laid-out graph as a standalone SVG (big graphs keep their first `max_nodes` nodes, and say so)."""
    if not graph.traced:
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='560' height='40'><text x='8' y='24' font-size='12' "
            f"{_FONT}>{escape(graph.reason or 'No graph.')}</text></svg>"
        )
    nodes = graph.nodes[:max_nodes]
    shown = {n.id for n in nodes}
    by_id = {n.id: n for n in nodes}
    height = (
        max((n.y for n in nodes), default=0)
        + NODE_HEIGHT
        + 2 * MARGIN
        + (20 if len(graph.nodes) > max_nodes else 0)
    )
    width = graph.width + 2 * MARGIN
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}'><rect width='100%' height='100%' fill='white'/>"
    ]
    for source, target in graph.edges:
        if source in shown and target in shown:
            a, b = by_id[source], by_id[target]
            x1, y1 = a.x + NODE_WIDTH / 2 + MARGIN, a.y + NODE_HEIGHT + MARGIN
            x2, y2 = b.x + NODE_WIDTH / 2 + MARGIN, b.y + MARGIN
            mid = (y1 + y2) / 2
            out.append(
                f"<path d='M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}' "
                "fill='none' stroke='#999' stroke-width='1.2'/>"
            )
    for n in nodes:
        x, y = n.x + MARGIN, n.y + MARGIN
        fill = "#eef4fb" if n.children is None else "#fdf1e3"
        out.append(
            f"<g><title>{escape(n.name)} ({escape(n.cls)}) output {escape(n.output_shape)}, {_params(n.params)} params</title>"
            f"<rect x='{x:.1f}' y='{y:.1f}' width='{NODE_WIDTH}' height='{NODE_HEIGHT}' rx='6' fill='{fill}' stroke='#5b8cc6'/>"
            f"<text x='{x + 8:.1f}' y='{y + 18:.1f}' font-size='12' font-weight='600' {_FONT}>{escape(n.name[:26])}</text>"
            f"<text x='{x + 8:.1f}' y='{y + 35:.1f}' font-size='10' fill='#555' {_FONT}>"
            f"{escape(n.cls[:16])} · {escape(n.output_shape[:18])} · {_params(n.params)}</text></g>"
        )
    if len(graph.nodes) > max_nodes:
        out.append(
            f"<text x='8' y='{height - 6:.0f}' font-size='11' fill='#777' {_FONT}>… and "
            f"{len(graph.nodes) - max_nodes} more layers (see the layer table)</text>"
        )
    out.append("</svg>")
    return "".join(out)
