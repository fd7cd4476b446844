"""The dashboard as one self-contained HTML fragment (no script, inline SVG, CSS-only tabs) for the places
widgets cannot render: saved notebooks on GitHub or nbviewer, nbconvert's HTML, exported reports."""

from __future__ import annotations

import html
import secrets
from typing import Any

from nbtrack.render.logs import render_lines
from nbtrack.render.model import graph_svg, layer_table_html, summary_html
from nbtrack.render.svg import charts_svg

LOG_TAIL = 200


def _files_table(files: list[Any]) -> str:
    if not files:
        return "<p><i>No files.</i></p>"
    rows = "".join(
        f"<tr><td>{html.escape(f.name)}</td><td style='text-align:right'>{f.size:,} bytes</td></tr>"
        for f in files
    )
    return f"<table style='border-collapse:collapse;font-size:12px'>{rows}</table>"


def dashboard_html(dashboard: Any) -> str:
    """Header and the five panes of `dashboard` as static HTML; every user string escaped."""
    run = dashboard.run
    uid = f"nbt-{secrets.token_hex(4)}"
    model = dashboard.model.graph
    model_html = (
        summary_html(model) + graph_svg(model) + layer_table_html(model)
        if model is not None
        else "<p><i>No model recorded (the Model tab fills when a Keras fit runs).</i></p>"
    )
    lines = list(run.output.recent)
    logs_html, _ = render_lines(lines, limit=LOG_TAIL)
    if len(lines) > LOG_TAIL:
        logs_html = (
            f"<p style='font-size:12px;color:#666'>The last {LOG_TAIL} of {run.output.count:,} lines; all of them are in output.log.</p>"
            + logs_html
        )
    panes = [
        ("Charts", charts_svg(dashboard.charts.charts(), note=dashboard.charts.left_out_note())),
        (
            "System",
            charts_svg(dashboard.system.charts())
            if dashboard.system.charts()
            else "<p><i>No system samples.</i></p>",
        ),
        ("Model", model_html),
        ("Logs", logs_html),
        ("Files", _files_table(run.store.list_files(run.id))),
    ]
    # The same snapshot can sit in two outputs of one notebook (a display updated in place): no element ids,
    # and each copy's radio buttons live in a form of their own, so the copies' tabs never steer each other.
    css = "".join(
        f".{uid}-tabs:has(.{uid}-r{i}:checked) .{uid}-p{i}{{display:block}}"
        f".{uid}-tabs label:has(.{uid}-r{i}:checked){{background:#fff;border-bottom-color:#fff;font-weight:600}}"
        for i in range(len(panes))
    )
    parts = [
        "<div class='nbtrack-snapshot' style='font-family:system-ui,sans-serif;max-width:100%'>",
        f"<style>.{uid}-pane{{display:none;padding:8px;border:1px solid #ccc;overflow:auto}}"
        f".{uid}-tabs input{{position:absolute;opacity:0;pointer-events:none}}.{uid}-tabs label{{display:inline-block;padding:4px 12px;border:1px solid #ccc;"
        f"background:#f3f3f3;cursor:pointer;margin-right:2px}}{css}</style>",
        dashboard.header.value,
        f"<form class='{uid}-tabs'>",
    ]
    for i, (title, _) in enumerate(panes):
        checked = " checked" if i == 0 else ""
        parts.append(f"<label><input type='radio' name='tab' class='{uid}-r{i}'{checked}>{title}</label>")
    for i, (_, body) in enumerate(panes):
        parts.append(f"<div class='{uid}-pane {uid}-p{i}'>{body}</div>")
    parts.append("</form></div>")
    return "".join(parts)
