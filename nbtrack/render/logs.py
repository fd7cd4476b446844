"""Log lines as HTML, filtered and cut to their last lines: for the Logs pane, the snapshot and the reports."""

from __future__ import annotations

import html
from collections.abc import Iterable


def render_lines(lines: Iterable[str], pattern: str = "", limit: int | None = None) -> tuple[str, int]:
    """HTML of the lines containing `pattern` (case-insensitive), the last `limit` of them; and how many matched."""
    needle = pattern.lower()
    matched = [line for line in lines if needle in line.lower()] if needle else list(lines)
    shown = matched[-limit:] if limit else matched
    body = "\n".join(html.escape(line) for line in shown)
    return (
        "<pre style='max-height:420px;overflow:auto;font-size:12px;line-height:1.35;margin:0;"
        f"white-space:pre-wrap;word-break:break-all'>{body}</pre>",
        len(matched),
    )
