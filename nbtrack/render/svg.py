"""Static SVG charts, rendered in Python (no browser), for saved notebooks, GitHub, nbviewer and reports.

Every user string goes through `escape`; numbers are formatted, never interpolated raw.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape as _escape

import numpy as np

from nbtrack.render.charts import MAX_CHARTS, ChartData

PANEL_WIDTH, PANEL_HEIGHT = 380, 240
_MARGIN = {"left": 58, "right": 14, "top": 30, "bottom": 34}
_FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"


# Characters XML 1.0 forbids (C0 controls but tab, newline, carriage return; lone surrogates; U+FFFE/FFFF): a
# name holding one would make a standalone SVG unreadable, so they are shown as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: object) -> str:
    """`text` safe inside XML/HTML text and attributes: markup escaped, characters XML forbids replaced."""
    return _escape(_NOT_XML.sub("\ufffd", str(text)), {'"': "&quot;", "'": "&#39;"})


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9 and len(ticks) < 20:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    """A polyline path with breaks at non-finite points (gaps stay gaps)."""
    parts: list[str] = []
    pen_down = False
    for x, y in zip(xs.tolist(), ys.tolist()):
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return "".join(parts)


def chart_panel(chart: ChartData, x0: float = 0, y0: float = 0) -> str:
    """One chart as an SVG group at (x0, y0)."""
    left, top = x0 + _MARGIN["left"], y0 + _MARGIN["top"]
    width = PANEL_WIDTH - _MARGIN["left"] - _MARGIN["right"]
    height = PANEL_HEIGHT - _MARGIN["top"] - _MARGIN["bottom"]
    out = [
        f"<g class='chart'><text x='{x0 + 10}' y='{y0 + 18}' font-size='13' font-weight='600' {_FONT}>{escape(chart.family)}</text>"
    ]
    xs = [line.x[np.isfinite(line.x) & np.isfinite(line.y)] for line in chart.lines]
    ys = [line.y[np.isfinite(line.x) & np.isfinite(line.y)] for line in chart.lines]
    all_x = np.concatenate(xs) if xs else np.empty(0)
    all_y = np.concatenate(ys) if ys else np.empty(0)
    log = chart.log_y
    if log:
        all_y = all_y[all_y > 0]
    if all_x.size == 0 or all_y.size == 0:
        out.append(
            f"<text x='{left + width / 2}' y='{top + height / 2}' text-anchor='middle' font-size='12' fill='#888' {_FONT}>no data</text></g>"
        )
        return "".join(out)
    x_low, x_high = float(all_x.min()), float(all_x.max())
    y_low, y_high = float(all_y.min()), float(all_y.max())
    if log:
        y_low, y_high = math.log10(y_low), math.log10(y_high)
    if x_high == x_low:
        x_low, x_high = x_low - 0.5, x_high + 0.5
    if y_high == y_low:
        pad = abs(y_low) * 0.05 or 0.5
        y_low, y_high = y_low - pad, y_high + pad
    else:
        pad = (y_high - y_low) * 0.05
        y_low, y_high = y_low - pad, y_high + pad

    def sx(v: np.ndarray) -> np.ndarray:
        return left + (v - x_low) / (x_high - x_low) * width

    def sy(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log10(np.where(v > 0, v, np.nan)) if log else v
        return top + height - (v - y_low) / (y_high - y_low) * height

    out.append(f"<rect x='{left}' y='{top}' width='{width}' height='{height}' fill='none' stroke='#ccc'/>")
    for start, end in chart.spans:  # the training span, shaded
        a, b = (float(v) for v in sx(np.clip(np.array([start, end]), x_low, x_high)))
        if b > a:
            out.append(
                f"<rect x='{a:.1f}' y='{top}' width='{b - a:.1f}' height='{height}' fill='#2ca02c' fill-opacity='0.08'/>"
            )
    for tick in nice_ticks(x_low, x_high):
        px = float(sx(np.array([tick]))[0])
        out.append(f"<line x1='{px:.1f}' y1='{top}' x2='{px:.1f}' y2='{top + height}' stroke='#eee'/>")
        out.append(
            f"<text x='{px:.1f}' y='{top + height + 14}' text-anchor='middle' font-size='10' fill='#555' {_FONT}>{_fmt(tick)}</text>"
        )
    for tick in nice_ticks(y_low, y_high):
        value = 10**tick if log else tick
        py = top + height - (tick - y_low) / (y_high - y_low) * height
        out.append(f"<line x1='{left}' y1='{py:.1f}' x2='{left + width}' y2='{py:.1f}' stroke='#eee'/>")
        out.append(
            f"<text x='{left - 5}' y='{py + 3:.1f}' text-anchor='end' font-size='10' fill='#555' {_FONT}>{_fmt(value)}</text>"
        )
    out.append(
        f"<text x='{left + width / 2}' y='{top + height + 28}' text-anchor='middle' font-size='10' fill='#555' {_FONT}>{escape(chart.x_label)}</text>"
    )
    for i, line in enumerate(chart.lines):
        px, py = sx(line.x), sy(line.y)
        width_px = 1 if line.role == "batch" else 2
        out.append(f"<path d='{_path(px, py)}' fill='none' stroke='{line.color}' stroke-width='{width_px}'/>")
        if line.markers and len(px) <= 200:  # epoch points
            for cx, cy in zip(px.tolist(), py.tolist()):
                if math.isfinite(cx) and math.isfinite(cy):
                    out.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='2.5' fill='{line.color}'/>")
        lx, ly = left + width - 4, top + 12 + 13 * i
        out.append(
            f"<text x='{lx}' y='{ly}' text-anchor='end' font-size='10' fill='{line.color}' {_FONT}>{escape(line.name)}</text>"
        )
    out.append("</g>")
    return "".join(out)


def charts_svg(
    charts: Sequence[ChartData], title: str = "", columns: int = 2, *, note: str = "", limit: int = MAX_CHARTS
) -> str:
    """The charts in a grid, as one standalone SVG document: at most `limit` of them, then a line saying how
    many more there were, and `note` (what the caller left out) at the bottom."""
    left_out = max(0, len(charts) - limit)
    charts = list(charts[:limit])
    if left_out:
        note = (note + " " if note else "") + f"{left_out:,} more charts not drawn."
    columns = max(1, min(columns, len(charts) or 1))
    rows = max(1, math.ceil(len(charts) / columns))
    header = 26 if title else 0
    footer = 22 if note else 0
    width, height = columns * PANEL_WIDTH, rows * PANEL_HEIGHT + header + footer
    body = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
    ]
    if title:
        body.append(f"<text x='10' y='18' font-size='14' font-weight='600' {_FONT}>{escape(title)}</text>")
    if not charts:
        empty = "No charts drawn." if note else "No metrics logged."
        body.append(f"<text x='10' y='{header + 20}' font-size='12' fill='#888' {_FONT}>{empty}</text>")
    for i, chart in enumerate(charts):
        body.append(chart_panel(chart, (i % columns) * PANEL_WIDTH, header + (i // columns) * PANEL_HEIGHT))
    if note:
        body.append(
            f"<text class='left-out' x='10' y='{height - 7}' font-size='12' fill='#555' {_FONT}>{escape(note)}</text>"
        )
    body.append("</svg>")
    return "".join(body)


def _viridis(t: float) -> str:
    """A viridis-like ramp (five stops, linear between them), as js/parallel_coords.js colours its lines."""
    stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    t = min(1.0, max(0.0, t)) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(stops[i], stops[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def parallel_svg(axes: Sequence[dict], lines: Sequence[dict], width: int = 900, height: int = 320) -> str:
    """Parallel coordinates as a static SVG: the axes and lines `nbtrack.render.comparison.parallel_data` returns."""
    if not axes or not lines:
        return ""
    left, right, top, bottom = 60, 60, 40, 20
    span = (width - left - right) / max(1, len(axes) - 1)
    plot_h = height - top - bottom
    scales, axis_labels = [], []
    for index, axis in enumerate(axes):
        values = [line["values"][index] for line in lines if line["values"][index] is not None]
        if axis["kind"] == "number":
            log = bool(axis.get("log")) and all(v > 0 for v in values)
            tx = (lambda v: math.log10(v)) if log else (lambda v: v)  # noqa: E731
            low, high = (min(map(tx, values)), max(map(tx, values))) if values else (0.0, 1.0)
            if high == low:
                low, high = low - 0.5, high + 0.5
            scales.append(lambda v, tx=tx, low=low, high=high: (tx(v) - low) / (high - low))
            ticks = [(0.0, low), (1.0, high)]
            labels = [(p, 10**v if log else v) for p, v in ticks]
        else:
            categories = axis.get("categories") or sorted({str(v) for v in values})
            position = {
                c: (1.0 - i / max(1, len(categories) - 1)) if len(categories) > 1 else 0.5
                for i, c in enumerate(categories)
            }
            scales.append(lambda v, position=position: position.get(v))
            labels = [(p, c) for c, p in position.items()]
        axis_labels.append(labels)
    colors = [line.get("color_value") for line in lines]
    known = [c for c in colors if c is not None]
    c_low, c_high = (min(known), max(known)) if known else (0.0, 1.0)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' height='{height}' {_FONT} font-size='11'>",
        "<rect width='100%' height='100%' fill='white'/>",
    ]
    for line, color in zip(lines, colors):
        points, path = [], []
        for index, value in enumerate(line["values"]):
            y = scales[index](value) if value is not None else None
            if y is None:
                if points:
                    path.append(points)
                points = []
                continue
            points.append((left + index * span, top + (1 - y) * plot_h))
        if points:
            path.append(points)
        d = "".join("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in segment) for segment in path)
        stroke = (
            _viridis((color - c_low) / (c_high - c_low) if color is not None and c_high > c_low else 0.5)
            if color is not None
            else "#999"
        )
        parts.append(
            f"<path d='{d}' fill='none' stroke='{stroke}' stroke-width='1.5' opacity='0.8'><title>{escape(line['name'])}</title></path>"
        )
    for index, axis in enumerate(axes):
        x = left + index * span
        parts.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{top + plot_h}' stroke='#333'/>")
        parts.append(
            f"<text x='{x:.1f}' y='{top - 14}' text-anchor='middle' font-weight='600'>{escape(str(axis['label'])[:24])}</text>"
        )
        for p, value in axis_labels[index]:
            text = _fmt(float(value)) if isinstance(value, (int, float)) else str(value)[:16]
            parts.append(
                f"<text x='{x + 4:.1f}' y='{top + (1 - p) * plot_h + 4:.1f}' fill='#555'>{escape(text)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
