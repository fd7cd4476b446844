"""A notebook as a report: nbconvert renders code, markdown and outputs; every nbtrack output (a run's
dashboard, a compare widget) is replaced by a static rendering of its runs read from the store, or, where the
store no longer has them, by the snapshot saved in the notebook, with a note saying so."""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import Any

from nbtrack.errors import RunNotFoundError, StoreError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _open(chosen: Any, cache: dict[str, Any]) -> Any:
    """The store the user chose (`store=`, else $NBTRACK_STORE, else the default), opened once per report.

    Never the ``store`` field of an output's metadata: a notebook is a file someone may have mailed you, and
    opening its URL would let it choose the server libpq connects to (and sends $PGPASSWORD to).
    """
    from nbtrack.store import open_store
    from nbtrack.store.base import Store

    if isinstance(chosen, Store):
        return chosen
    if "store" not in cache:
        cache["store"] = open_store(chosen, create=False)
    return cache["store"]


def _hint(meta: dict[str, Any], store: Any, stores: dict[str, Any]) -> str:
    """Where the notebook says its runs were stored, when that is not the store opened: a hint, never opened."""
    from nbtrack.common.redact import mask

    recorded = meta.get("store")
    opened = stores.get("store", store)
    here = getattr(opened, "location", None)
    if not isinstance(recorded, str) or not recorded or recorded == here:
        return ""
    return f"; the notebook says it was stored in {mask(recorded)} (report with --store / store= to read that one)"


def _render_output(
    meta: dict[str, Any], saved_html: str, store: Any, stores: dict[str, Any], shown: set[str]
) -> tuple[str, str | None]:
    """HTML for one nbtrack output, and a note when the store could not supply it. A run shown several times
    (at `init`, then at `fit`) is rendered in full where it is shown last, after its training; `shown` holds
    the ids still to be shown further down."""
    from nbtrack.read.records import StoredRun
    from nbtrack.reports.sections import comparison_section, run_section

    view = meta.get("view")
    ids = [meta["run_id"]] if view == "run" else list(meta.get("run_ids") or [])
    if view == "sweep":
        from nbtrack.reports.sections import sweep_section
        from nbtrack.sweeps import Sweep

        try:
            opened = _open(store, stores)
            return sweep_section(Sweep(opened, opened.get_sweep(str(meta.get("sweep_id"))))), None
        except (RunNotFoundError, StoreError) as exc:
            note = f"Sweep {meta.get('sweep_id')} is not in the store ({exc}){_hint(meta, store, stores)}"
            return (
                f"<div class='nbtrack-missing'>{html.escape(note)}; showing the saved snapshot.</div>{saved_html}",
                note,
            )
    try:
        opened = _open(store, stores)
        records = [StoredRun(opened, opened.get_run(str(i))) for i in ids]
    except (RunNotFoundError, StoreError) as exc:
        what = "Run" if view == "run" else "A run of this comparison"
        note = f"{what} is not in the store ({exc}){_hint(meta, store, stores)}"
        fallback = saved_html or "<p><i>No snapshot was saved with this output.</i></p>"
        return (
            f"<div class='nbtrack-missing'>{html.escape(note)}; showing the snapshot saved in the notebook.</div>"
            f"{fallback}",
            note,
        )
    if view == "run":
        run = records[0]
        if run.id in shown:  # it is shown again further down
            return (
                f"<p class='meta'>Run {html.escape(run.name)}: its report is below, where it is shown last.</p>",
                None,
            )
        return run_section(run), None
    return comparison_section(records), None


def render_notebook(path: Path, *, execute: bool = False, store: Any = None) -> tuple[str, list[str]]:
    try:
        import nbformat
        from nbconvert import HTMLExporter
        from pygments.formatters import HtmlFormatter
    except ImportError as exc:
        raise ImportError(
            f"Notebook reports need nbconvert ({exc}). Install it with `pip install 'nbtrack[notebook]'`."
        ) from None
    from nbtrack.render.sanitize import sanitize_html
    from nbtrack.reports.sections import page

    if execute:
        from nbtrack.reports.execute import execute_notebook

        notebook = execute_notebook(path)
    else:
        notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)  # the report is static: no widget state, no widget manager script
    slots: dict[str, str] = {}
    notes: list[str] = []
    stores: dict[str, Any] = {}
    token = secrets.token_hex(6)
    tracked = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            meta = (output.get("metadata") or {}).get("nbtrack")
            if output.get("output_type") in ("display_data", "execute_result") and isinstance(meta, dict):
                tracked.append((output, meta))
    shown_later = [meta.get("run_id") if meta.get("view") == "run" else None for _, meta in tracked]
    for index, (output, meta) in enumerate(tracked):
        later = {rid for rid in shown_later[index + 1 :] if rid}
        data = output.get("data") or {}
        saved = sanitize_html(str(data.get("text/html") or ""))
        rendered, note = _render_output(meta, saved, store, stores, later)
        if note:
            notes.append(note)
        slot = f"nbtrack-slot-{token}-{len(slots)}"
        slots[slot] = rendered
        output["data"] = {
            "text/html": f"<div id='{slot}'></div>",
            "text/plain": str(data.get("text/plain", "")),
        }
    for cell in notebook.cells:
        for output in cell.get("outputs", []):  # widgets with no state left render as their text
            data = output.get("data") or {}
            if WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
    for store_obj in stores.values():
        store_obj.close()
    exporter = HTMLExporter(template_name="basic")
    body, _resources = exporter.from_notebook_node(notebook)
    body = sanitize_html(body)  # markdown and outputs are the notebook's: they may not navigate the report
    for slot, rendered in slots.items():
        body = body.replace(f"<div id='{slot}'></div>", rendered).replace(
            f'<div id="{slot}"></div>', rendered
        )
    pygments_css = HtmlFormatter(style="default").get_style_defs(".highlight")
    extra = (
        # contain:paint, beside the sanitiser's style allow-list: whatever a cell's HTML draws stays in its box
        ".cell{margin:10px 0;contain:paint}.input_area{background:#f7f7f7;border-left:3px solid #1f77b4;padding:2px 8px;overflow-x:auto}"
        ".input_prompt,.prompt{display:none}.output_area{padding:2px 8px;overflow-x:auto}"
        ".output_area pre{margin:4px 0}.output_stderr{background:#fdd}.anchor-link{display:none}"
        ".rendered_html table{border-collapse:collapse}.rendered_html td,.rendered_html th{padding:2px 6px}"
        + pygments_css
    )
    heading = f"<h1>{html.escape(path.stem)}</h1><p class='meta'>{html.escape(str(path))}</p>"
    if notes:
        heading += "".join(f"<div class='nbtrack-missing'>{html.escape(n)}</div>" for n in notes)
    return page(f"{path.stem} · nbtrack report", heading + body, extra_css=extra), notes
