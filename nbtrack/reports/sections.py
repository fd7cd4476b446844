"""Run reports: a notebook, a run or a comparison as one self-contained HTML file.

    nbtrack.report("train.ipynb")                      # the notebook, its nbtrack outputs re-rendered from the store
    nbtrack.report(run="lyric-dream-3")                # one run's full page
    nbtrack.report(runs=["a", "b"], output="cmp.html") # a comparison (or where="config.lr < 0.01")

A report is one HTML file: inline CSS and SVG, images as data URIs, no script, no request to any address (a
Content-Security-Policy meta tag forbids them), CSS-only tabs that print as sections. Every string that came from
a run (names, config, metric names, log lines, file names) is escaped: it appears as text and runs nothing.
"""

from __future__ import annotations

import base64
import math
import secrets
import time
from collections.abc import Sequence
from typing import Any

from nbtrack.errors import NbtrackError
from nbtrack.read.records import StoredRun, flatten

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
LOG_TAIL = 200
LOG_ATTACH_MAX = 5 * 2**20  # output.log is attached (as a data: link) up to this size
COMPARE_METRICS = 4

STYLE = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:12px;color:#222}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:18px 0 6px}h3{font-size:15px;margin:12px 0 4px}
.meta{color:#555;font-size:12px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px;max-width:100%}
td,th{padding:2px 8px;vertical-align:top;text-align:left;border-bottom:1px solid #eee;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px}
.badge{color:#fff;border-radius:8px;padding:0 7px;font-size:12px}
.tabs>input{position:absolute;opacity:0;pointer-events:none}
.tabs>label{display:inline-block;padding:5px 12px;border:1px solid #ccc;background:#f3f3f3;cursor:pointer;margin:0 2px -1px 0;font-size:13px}
.tabs>.pane{display:none;padding:10px;border:1px solid #ccc;overflow-x:auto}
.tabs>.pane>h2.print{display:none}
.cell{margin:10px 0}.cell .input{background:#f7f7f7;border-left:3px solid #1f77b4;padding:4px 8px;overflow-x:auto}
.cell .output{padding:4px 8px;overflow-x:auto}.prompt{display:none}
.nbtrack-missing{border:1px solid #e0a800;background:#fff8e1;padding:4px 8px;font-size:12px}
@media (max-width:600px){body{padding:6px}.tabs>label{padding:4px 8px;font-size:12px}}
@media print{
  body{max-width:none;padding:0}.tabs>label{display:none}
  .tabs>.pane{display:block!important;border:none;padding:0;break-inside:avoid-page}
  .tabs>.pane>h2.print{display:block}
  .cell .input{border-left-color:#999}
}
"""


class ReportError(NbtrackError):
    """A report cannot be made from what was given."""


def esc(value: Any) -> str:
    """Text for HTML: markup escaped, characters XML forbids (NUL, ANSI escapes...) shown as U+FFFD."""
    from nbtrack.render.svg import escape

    return escape(value)


# -- the page --------------------------------------------------------------------------------------
def page(title: str, body: str, *, extra_css: str = "") -> str:
    """A whole HTML document: CSP, viewport, inline CSS, `body` (already escaped HTML)."""
    generated = time.strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='referrer' content='no-referrer'>"
        f"<meta name='generator' content='nbtrack'><title>{esc(title)}</title>"
        f"<style>{STYLE}{extra_css}</style></head><body>"
        f"{body}<p class='meta'>Report made by nbtrack on {esc(generated)}.</p></body></html>\n"
    )


def tabs(panes: Sequence[tuple[str, str]]) -> str:
    """CSS-only tabs (radio buttons); printed, every pane shows under its own heading."""
    uid = f"t{secrets.token_hex(4)}"
    css = "".join(
        f"#{uid}-{i}:checked~.{uid}-p{i}{{display:block}}#{uid}-{i}:checked+label{{background:#fff;font-weight:600}}"
        for i in range(len(panes))
    )
    parts = [f"<style>{css}</style><div class='tabs'>"]
    for i, (title, _) in enumerate(panes):
        checked = " checked" if i == 0 else ""
        parts.append(
            f"<input type='radio' name='{uid}' id='{uid}-{i}'{checked}><label for='{uid}-{i}'>{esc(title)}</label>"
        )
    for i, (title, body) in enumerate(panes):
        parts.append(f"<div class='pane {uid}-p{i}'><h2 class='print'>{esc(title)}</h2>{body}</div>")
    parts.append("</div>")
    return "".join(parts)


def _format(value: Any) -> str:
    """A table cell; text past 2,000 characters is cut (the run's config.json and summary.json hold it all)."""
    from nbtrack.common.values import clip

    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return clip(str(value), 2000)


def key_value_table(values: dict[str, Any], empty: str = "none") -> str:
    if not values:
        return f"<p class='meta'>{esc(empty)}</p>"
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_format(v))}</td></tr>" for k, v in values.items())
    return f"<div class='scroll'><table>{rows}</table></div>"


SUMMARY_ROWS = 100  # summary values shown open; more go in a collapsed table
SUMMARY_MORE = 2000  # and at most this many there (summary.json holds them all)


def summary_table(summary: dict[str, Any]) -> str:
    """A run's summary; with thousands of metrics, the first `SUMMARY_ROWS` open and a bounded rest collapsed."""
    if len(summary) <= SUMMARY_ROWS:
        return key_value_table(summary, "No summary.")
    items = list(summary.items())
    rest = dict(items[SUMMARY_ROWS : SUMMARY_ROWS + SUMMARY_MORE])
    unlisted = len(items) - SUMMARY_ROWS - len(rest)
    note = f"<p class='meta'>{unlisted:,} more are in the run's summary.json.</p>" if unlisted else ""
    return (
        key_value_table(dict(items[:SUMMARY_ROWS]))
        + f"<details><summary>{len(items) - SUMMARY_ROWS:,} more summary values</summary>"
        + key_value_table(rest)
        + note
        + "</details>"
    )


def state_badge(state: str) -> str:
    from nbtrack.render.tables import STATE_COLORS

    return f"<span class='badge' style='background:{STATE_COLORS.get(state, '#7f7f7f')}'>{esc(state)}</span>"


def _duration(seconds: float) -> str:
    from nbtrack.render.format import format_duration

    return format_duration(seconds)


def _when(epoch: float | None) -> str:
    from nbtrack.render.format import format_time  # "invalid time" for a bad record's time

    return format_time(epoch)


def _joined(items: Any, sep: str) -> str:
    """A list of an environment's texts joined; anything else (a bad record) as it is."""
    return sep.join(map(str, items)) if isinstance(items, list) else ("" if items is None else str(items))


def _section(env: Any, name: str) -> dict[str, Any]:
    """One part of a run's environment; {} when a bad record holds something else there."""
    value = env.get(name) if isinstance(env, dict) else None
    return value if isinstance(value, dict) else {}


# -- one run ---------------------------------------------------------------------------------------
def overview_html(run: StoredRun) -> str:
    record = run.record
    facts = {
        "name": record.name,
        "id": record.id,
        "project": record.project,
        "state": record.state,
        "started": _when(record.created),
        "ended": _when(record.ended),
        "duration": _duration(record.duration),
        "tags": ", ".join(record.tags) or "-",
    }
    if record.notes:
        facts["notes"] = record.notes
    env = run.environment
    hardware = _section(env, "hardware")
    memory = hardware.get("memory_total")
    environment = {
        "python": _section(env, "python").get("version", "-"),
        "os": _section(env, "os").get("platform", "-"),
        "host": _section(env, "host").get("hostname", "-"),
        "cpus": f"{hardware.get('cpu_count', '-')} x {hardware.get('cpu_model') or '?'}",
        "memory": f"{memory / 2**30:.1f} GiB" if isinstance(memory, (int, float)) and memory else "-",
        "gpus": _joined(hardware.get("gpus"), ", ") or "none",
    }
    git = _section(env, "git")
    if git.get("commit"):
        environment["git"] = f"{git.get('commit', '')[:12]} on {git.get('branch') or '?'}" + (
            " (uncommitted changes in git.diff)" if git.get("dirty") else ""
        )
    program = _section(env, "program")
    if program:
        environment["program"] = program.get("notebook") or _command(program.get("argv")) or "-"
    packages = _section(env, "packages")
    summary = {k: v for k, v in record.summary.items() if not k.startswith("_")}
    parts = [
        "<h3>Run</h3>",
        key_value_table(facts),
        "<h3>Config</h3>",
        key_value_table(flatten("config", record.config), "No config."),
        "<h3>Summary</h3>",
        summary_table(summary),
        "<h3>Environment</h3>",
        key_value_table(environment),
    ]
    if packages:
        listing = "".join(f"<tr><td>{esc(n)}</td><td>{esc(v)}</td></tr>" for n, v in sorted(packages.items()))
        parts.append(
            f"<details><summary>{len(packages)} installed packages</summary><table>{listing}</table></details>"
        )
    return "".join(parts)


def _command(argv: Any) -> str:
    """A recorded command line as text, credentials masked again (runs recorded by older versions, bundles)."""
    from nbtrack.common.redact import mask_argv

    return " ".join(mask_argv(argv)) if isinstance(argv, list) else ""


def _data_link(data: bytes, name: str, mime: str = "text/plain;charset=utf-8") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f"<a download='{esc(name)}' href='data:{mime};base64,{encoded}'>{esc(name)}</a>"


def logs_html(run: StoredRun) -> str:
    from collections import deque

    from nbtrack.render.logs import render_lines

    try:
        path = run.file("output.log")
    except FileNotFoundError:
        return "<p class='meta'>No output was captured for this run.</p>"
    with open(path, encoding="utf-8", errors="replace") as log:
        tail = deque(log, maxlen=LOG_TAIL)
    size = path.stat().st_size
    lines, _ = render_lines([line.rstrip("\n") for line in tail])
    if size <= LOG_ATTACH_MAX:
        attached = (
            f"The whole log is attached: {_data_link(path.read_bytes(), 'output.log')} ({size:,} bytes)."
        )
    else:
        attached = f"The whole log ({size:,} bytes) is too big to attach; it is the run's file output.log."
    return f"<p class='meta'>The last {len(tail)} lines. {attached}</p>{lines}"


def files_html(run: StoredRun) -> str:
    files = run.files()
    if not files:
        return "<p class='meta'>No files.</p>"
    rows = "".join(
        f"<tr><td>{esc(f.name)}</td><td style='text-align:right'>{f.size:,} bytes</td></tr>" for f in files
    )
    return (
        f"<p class='meta'>Stored with the run in {esc(run.store.run_dir(run.id))}.</p>"
        f"<div class='scroll'><table><tr><th>file</th><th>size</th></tr>{rows}</table></div>"
    )


def model_html(run: StoredRun) -> str:
    from nbtrack.capture.model_graph import ModelGraph
    from nbtrack.render.model import graph_svg, layer_table_html, summary_html

    try:
        graph = ModelGraph.from_json(run.file("model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "<p class='meta'>No model recorded (the Model tab fills when a Keras fit runs).</p>"
    return summary_html(graph) + f"<div class='scroll'>{graph_svg(graph)}</div>" + layer_table_html(graph)


def charts_html(run: StoredRun) -> tuple[str, str]:
    """The metric charts and the system charts of a run, as SVG.

    At most `MAX_CHARTS` metric charts are drawn (loss and accuracy first); the names of the metrics left out
    follow in a collapsed list. Only the metrics drawn are read from the store.
    """
    from nbtrack.render.charts import ChartSettings, drawn_charts, left_out_note
    from nbtrack.render.svg import charts_svg
    from nbtrack.render.system import system_charts
    from nbtrack.run.live import LiveHistory

    live = LiveHistory.from_store(run.store, run.id, lazy=True)
    record = run.record
    charts, selection = drawn_charts(
        live, ChartSettings(), started=record.created, steps_per_epoch=record.config.get("steps_per_epoch")
    )
    fits = [e.data for e in run.events() if e.kind == "fit"]
    spans = tuple((f["started"], f["ended"]) for f in fits if f.get("started") and f.get("ended"))
    system = system_charts(live, record.created, spans)
    metric_part = (
        charts_svg(charts, note=left_out_note(selection))
        if charts
        else "<p class='meta'>No metrics logged.</p>"
    )
    if selection.left_out:
        metric_part += _left_out_list(live.keys(), set(selection.shown), run.id)
    system_part = charts_svg(system) if system else "<p class='meta'>No system samples.</p>"
    return metric_part, system_part


LEFT_OUT_NAMES = 2000  # metric names listed under the charts at most
LEFT_OUT_CHARS = 64_000  # and at most this many characters of them


def _left_out_list(keys: Sequence[str], shown: set[str], run_id: str) -> str:
    """The metrics whose charts were not drawn, as a collapsed list of at most `LEFT_OUT_NAMES` names."""
    from nbtrack.render.charts import metric_family

    left = [k for k in keys if (family := metric_family(k)) is not None and family not in shown]
    names, size = [], 0
    for key in left[:LEFT_OUT_NAMES]:
        size += len(key) + 2
        if size > LEFT_OUT_CHARS:
            break
        names.append(key)
    more = len(left) - len(names)
    listing = ", ".join(f"<code>{esc(k)}</code>" for k in names)
    if more:
        listing += f" and {more:,} more"
    return (
        f"<details class='left-out'><summary>{len(left):,} metrics not charted</summary>"
        f"<p class='meta'>Read any of them with <code>nbtrack.get_run({esc(repr(run_id))}).history(name)</code>."
        f"</p><p style='font-size:12px;overflow-wrap:anywhere'>{listing}</p></details>"
    )


def run_section(run: StoredRun, *, heading: bool = True) -> str:
    """One run's full page: overview, charts, system, model, logs and files."""
    record = run.record
    metrics, system = charts_html(run)
    head = (
        f"<h2>{esc(record.name)} {state_badge(record.state)}</h2>"
        f"<p class='meta'>{esc(record.project)} · {esc(record.id)} · started {esc(_when(record.created))} · "
        f"{esc(_duration(record.duration))}</p>"
        if heading
        else ""
    )
    return head + tabs(
        [
            ("Overview", overview_html(run)),
            ("Charts", metrics),
            ("System", system),
            ("Model", model_html(run)),
            ("Logs", logs_html(run)),
            ("Files", files_html(run)),
        ]
    )


# -- a comparison ----------------------------------------------------------------------------------
def comparison_section(runs: Sequence[StoredRun]) -> str:
    """Table, overlay charts, parallel coordinates and config differences of `runs`."""
    from nbtrack.render.comparison import metric_keys, parallel_data, prepare, summary_metrics, varying_config
    from nbtrack.render.svg import charts_svg, parallel_svg
    from nbtrack.render.tables import default_columns, diff_html, runs_table_html

    runs = list(runs)
    if not runs:
        return "<p class='meta'>No runs to compare.</p>"
    keys = [k for k in metric_keys(runs) if not k.startswith("batch/")][:COMPARE_METRICS]
    # Points per line shrink as runs grow (2,000 each up to 30 runs), so a report of many runs stays a few MB.
    charts = prepare(runs, keys, samples=max(200, min(2000, 60_000 // len(runs))))
    params, scores = varying_config(runs), summary_metrics(runs)
    parallel = ""
    if params and scores:
        axes, lines = parallel_data(runs, params, scores[0])
        parallel = f"<p class='meta'>Coloured by {esc(scores[0])}.</p>" + parallel_svg(axes, lines)
    diffs = "".join(diff_html(runs[0], other) for other in runs[1:4]) if len(runs) > 1 else ""
    if len(runs) > 4:
        diffs += f"<p class='meta'>Differences of {esc(runs[0].name)} with the next three runs; the table shows every run.</p>"
    return tabs(
        [
            ("Runs", runs_table_html(runs, default_columns(runs, config=8, metrics=6))),
            ("Charts", charts_svg(charts) if charts else "<p class='meta'>No metrics to overlay.</p>"),
            (
                "Parallel coordinates",
                parallel or "<p class='meta'>No config key differs between these runs.</p>",
            ),
            ("Config diff", diffs or "<p class='meta'>One run: nothing to compare it with.</p>"),
        ]
    )


def run_report(run: StoredRun) -> str:
    return page(f"{run.name} · nbtrack run report", f"<h1>Run report</h1>{run_section(run)}")


def comparison_report(runs: Sequence[StoredRun], title: str = "") -> str:
    names = ", ".join(r.name for r in list(runs)[:5]) + (" ..." if len(runs) > 5 else "")
    heading = title or f"Comparison of {len(runs)} runs"
    return page(
        f"{heading} · nbtrack",
        f"<h1>{esc(heading)}</h1><p class='meta'>{esc(names)}</p>{comparison_section(runs)}",
    )


# -- a sweep ---------------------------------------------------------------------------------------
def _trial_table(sweep: Any) -> str:
    rows = sweep.rows()
    if not rows:
        return "<p class='meta'>No trials yet.</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row if k not in ("run_id", "rungs")))
    names = {}
    for run in sweep.runs:
        names[run.id] = run.name
    head = "".join(f"<th>{esc(c)}</th>" for c in ["run", *columns])
    body = []
    for row in rows:
        cells = [f"<td>{esc(names.get(row.get('run_id'), '-'))}</td>"]
        for column in columns:
            value = row.get(column)
            text = state_badge(value) if column == "state" else esc("" if value is None else _format(value))
            if column == "duration" and isinstance(value, (int, float)):
                text = esc(_duration(value))
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def best_so_far_chart(sweep: Any) -> Any:
    """The best-so-far curve as `ChartData` (x = trial number), or None before any trial has a value."""
    import numpy as np

    from nbtrack.render.charts import ChartData, LineData

    points = sweep.best_so_far()
    metric = sweep.spec.metric
    if not points or metric is None:
        return None
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    line = LineData("best", "series", xs, ys, stroke="#2ca02c", label=f"best {metric.name} so far")
    return ChartData(f"best {metric.name} ({metric.goal})", (line,), "trial")


def sweep_section(sweep: Any) -> str:
    """A sweep: its trials (state, parameters, metric), the best-so-far curve and parameters -> metric."""
    from nbtrack.render.comparison import parallel_data, varying_config
    from nbtrack.render.svg import charts_svg, parallel_svg

    spec = sweep.spec
    trials = sweep.trials()
    best = sweep.best_trial
    metric = spec.metric
    facts = f"{esc(spec.method)} search · {len(trials)} trials · {esc(sweep.state)}"
    if metric is not None:
        facts += f" · {esc(metric.goal)} {esc(metric.name)}"
    if best is not None and metric is not None:
        facts += f" · best {esc(f'{best.value:.4g}')} (trial {best.number})"
    chart = best_so_far_chart(sweep)
    runs = list(sweep.runs)
    parallel = ""
    if runs and metric is not None:
        params = varying_config(runs) or [f"config.{p.name}" for p in spec.parameters][:8]
        axes, lines = parallel_data(runs, params, f"summary.{metric.name}")
        parallel = parallel_svg(axes, lines)
    return (
        f"<h2>Sweep {esc(sweep.name)}</h2><p class='meta'>{facts} · {esc(sweep.project)} · {esc(sweep.id)}</p>"
        + tabs(
            [
                ("Trials", _trial_table(sweep)),
                (
                    "Best so far",
                    charts_svg([chart]) if chart else "<p class='meta'>No trial has a value yet.</p>",
                ),
                ("Parameters", parallel or "<p class='meta'>No finished trials to plot.</p>"),
            ]
        )
    )
