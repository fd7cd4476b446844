"""The `nbtrack` command: list, show, compare and remove runs of a store.

nbtrack ls [--project P] [--where EXPR] [--sort FIELDS] [--columns C1,C2] [--limit N] [--json]
                                runs, newest first (or by --sort), filtered by a query (see nbtrack.store.query)
nbtrack show RUN                config, summary, metrics, environment, files (RUN: id, name or 'latest')
nbtrack diff RUN_A RUN_B [--all] [--json]
                                config and summary keys whose values differ between two runs
nbtrack rm RUN [RUN ...]        delete runs (a running run needs --force)
nbtrack push SPILL.json         write what a run could not write at finish (its store was away) to the store
nbtrack replicate RUN [-o replicate.ipynb] [--execute]
                                a notebook that re-runs RUN's recorded code with its seed; --execute runs it
nbtrack sweep CONFIG.yaml [--project P] [--name N]
                                store a new sweep (W&B sweep config) for agents; prints its id
nbtrack agent SWEEP --function module:train [--count N]
                                run trials of a stored sweep in this process (start several for parallel workers)
nbtrack report NOTEBOOK.ipynb [-o report.html] [--execute]
nbtrack report --run RUN | --runs A B C | --where EXPR [--project P] [-o report.html]
                                a self-contained HTML report of a notebook, a run, or a comparison
nbtrack export RUN [RUN ...] | --project P | --where EXPR -o runs.nbtrack.zip
                                runs, losslessly, to one bundle file (metrics, events, files, sweeps)
nbtrack import runs.nbtrack.zip add a bundle's runs to the store (runs it has already are skipped)
nbtrack sync --to LOCATION [--project P]
                                push the runs another store lacks (idempotent; running runs wait)

    nbtrack ls --where "config.lr < 0.01 and state == 'finished'" --sort -summary.val_accuracy --limit 5
    nbtrack diff latest lyric-dream-3

JSON output (``--json``) is strict: NaN and infinities are written as the strings "NaN", "Infinity" and
"-Infinity". A bad ``--where``, ``--sort`` or ``--columns`` exits with status 2 and says where it went wrong.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from nbtrack.common.values import clip
from nbtrack.common.version import __version__
from nbtrack.errors import NbtrackError
from nbtrack.read.records import StoredRun, flatten, get_run, runs
from nbtrack.render.format import INVALID_TIME, format_duration, format_time
from nbtrack.store import ENV_VAR, open_store
from nbtrack.store.base import RunRecord, Store
from nbtrack.store.query import MISSING, Field, QueryError, field_value, parse, parse_order

# Summary keys shown first in `ls`, when a run has them.
_KEY_METRICS = ("val_loss", "val_accuracy", "loss", "accuracy")
_LS_METRICS = 3


def format_value(value: Any, limit: int = 80) -> str:
    """A value as a terminal shows it, cut to `limit` characters (``--json`` prints everything)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return clip(json.dumps(value, ensure_ascii=False), limit)
    return clip(str(value), limit)


def key_metrics(summary: dict[str, Any], limit: int = _LS_METRICS) -> list[tuple[str, Any]]:
    numeric = [
        k
        for k, v in summary.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("_")
    ]
    preferred = [k for k in _KEY_METRICS if k in numeric]
    rest = sorted(k for k in numeric if k not in preferred)
    return [(k, summary[k]) for k in (preferred + rest)[:limit]]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def iso_time(epoch: float | None) -> str | None:
    """ISO 8601 in UTC with a Z, e.g. ``2026-11-01T14:30:00.250Z``."""
    if epoch is None:
        return None
    try:
        stamp = _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc).isoformat(timespec="milliseconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return INVALID_TIME
    return stamp.replace("+00:00", "Z")


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as the strings "NaN", "Infinity", "-Infinity" (strict JSON keeps them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dump_json(value: Any) -> str:
    return json.dumps(json_safe(value), indent=2, allow_nan=False)


def parse_columns(text: str) -> list[Field]:
    """``"config.lr,summary.val_accuracy"`` -> fields. Raises `QueryError` for a malformed name."""
    fields = []
    for item in text.split(","):
        name = item.strip()
        if not name:
            raise QueryError(f"empty column name in {text!r}; e.g. --columns config.lr,summary.val_accuracy")
        if name[0] in "+-":
            raise QueryError(
                f"column {name!r} has a sort sign; columns are plain fields such as {name[1:]!r}"
            )
        fields.extend(key.field for key in parse_order(name))
    return fields


# A missing key is told apart from a stored null: a run lacking a column shows "-" (JSON: null).
def format_column(field: Field, value: Any) -> str:
    if value is MISSING:
        return "-"
    if field.scope == "run" and field.path[0] in ("created", "ended"):
        return format_time(value)
    if field.scope == "run" and field.path[0] == "duration":
        return format_duration(value)
    return format_value(value)


def render_ls(runs: Sequence[RunRecord], columns: Sequence[Field] | None = None) -> str:
    """The `ls` table: key metrics, or the values of `columns` (``-`` where a run lacks one)."""
    now = time.time()
    rows = []
    for run in runs:
        if columns is None:
            extra = ["  ".join(f"{clip(k, 40)}={format_value(v)}" for k, v in key_metrics(run.summary))]
        else:
            extra = [format_column(f, field_value(run, f, now)) for f in columns]
        rows.append(
            (
                clip(run.name, 40),
                run.id,
                clip(run.project, 40),
                run.state,
                format_time(run.created),
                format_duration(run.duration),
                *extra,
            )
        )
    titles = ["METRICS"] if columns is None else [clip(f.text, 40) for f in columns]
    return table(rows, ("NAME", "ID", "PROJECT", "STATE", "STARTED", "DURATION", *titles))


def ls_json(runs: Sequence[RunRecord], columns: Sequence[Field] | None = None) -> list[dict[str, Any]]:
    """What ``ls --json`` prints: whole runs, or id, name, state and `columns` (null where a run lacks one)."""
    now = time.time()
    out = []
    for run in runs:
        if columns is None:
            out.append(
                {
                    "id": run.id,
                    "name": run.name,
                    "project": run.project,
                    "state": run.state,
                    "created": iso_time(run.created),
                    "created_ts": run.created,
                    "duration": run.duration,
                    "tags": list(run.tags),
                    "config": run.config,
                    "summary": {k: v for k, v in run.summary.items() if not k.startswith("_")},
                }
            )
            continue
        item: dict[str, Any] = {"id": run.id, "name": run.name, "state": run.state}
        for field in columns:
            value = field_value(run, field, now)
            if field.scope == "run" and field.path[0] in ("created", "ended"):
                value = iso_time(value)
            item[field.text] = None if value is MISSING else value
        out.append(item)
    return out


def render_show(store: Store, run: RunRecord) -> str:
    out = [
        f"Run {run.name} ({run.id})",
        f"  project   {run.project}",
        f"  state     {run.state}",
        f"  started   {format_time(run.created)}",
        f"  ended     {format_time(run.ended)}",
        f"  duration  {format_duration(run.duration)}",
        f"  host      {run.host} (pid {run.pid})",
    ]
    if run.tags:
        out.append(f"  tags      {', '.join(run.tags)}")
    if run.notes:
        out.append(f"  notes     {run.notes}")
    out.append(f"  files     {store.run_dir(run.id)}")

    def section(title: str, items: dict[str, Any]) -> None:
        out.append("")
        out.append(title)
        if not items:
            out.append("  (none)")
        width = min(max((len(k) for k in items), default=0), 40)
        for key, value in items.items():
            out.append(f"  {clip(key, 80).ljust(width)}  {format_value(value, 1000)}")

    section("Config", run.config)
    section("Summary", {k: v for k, v in run.summary.items() if not k.startswith("_")})
    stats = store.metric_stats(run.id)
    out.append("")
    out.append("Metrics")
    if stats:
        rows = [
            (
                clip(s.key, 80),
                str(s.count),
                format_value(s.last),
                format_value(s.min),
                format_value(s.max),
                f"{s.first_step}..{s.last_step}",
            )
            for s in stats.values()
        ]
        out.extend(
            "  " + line for line in table(rows, ("KEY", "POINTS", "LAST", "MIN", "MAX", "STEPS")).splitlines()
        )
    else:
        out.append("  (none)")
    overview = environment_overview(run.environment) if isinstance(run.environment, dict) else {}
    section("Environment", {k: v for k, v in overview.items() if v is not None})
    files = store.list_files(run.id)
    section("Files", {f.name: f"{f.size:,} bytes" for f in files})
    return "\n".join(out)


def environment_overview(env: dict[str, Any]) -> dict[str, Any]:
    """What `show` prints of a run's environment. A field of the wrong type (a record written by hand, or by
    something else than nbtrack) is shown as invalid instead of stopping the command."""
    if not env:
        return {}
    bad: dict[str, Any] = {}

    def part(name: str) -> dict[str, Any]:
        value = env.get(name)
        if value is not None and not isinstance(value, dict):
            bad[name] = f"invalid: {clip(repr(value), 60)}"
        return value if isinstance(value, dict) else {}

    def text(items: Any, sep: str) -> str | None:
        if isinstance(items, list):
            return sep.join(map(str, items)) or None
        return None if items is None else f"invalid: {clip(repr(items), 60)}"

    python, osinfo, host, hw, prog, git = map(part, ("python", "os", "host", "hardware", "program", "git"))
    memory = hw.get("memory_total")
    packages = env.get("packages")
    overview = {
        "python": python.get("version"),
        "os": osinfo.get("platform"),
        "hostname": host.get("hostname"),
        "cpu": f"{hw.get('cpu_count')} x {hw.get('cpu_model')}",
        "memory": f"{memory / 2**30:.1f} GiB"
        if isinstance(memory, (int, float)) and math.isfinite(memory) and memory
        else (None if not memory else f"invalid: {clip(repr(memory), 60)}"),
        "gpus": text(hw.get("gpus"), ", ") or "none",
        "notebook": prog.get("notebook"),
        "command": _command(prog.get("argv")) or text(prog.get("argv"), " "),  # masked; or shown as invalid
        "git": f"{git.get('commit')} ({git.get('branch')}{', dirty' if git.get('dirty') else ''})"
        if git.get("commit")
        else None,
        "packages": f"{len(packages or {})} installed (requirements.txt)"
        if packages is None or isinstance(packages, dict)
        else f"invalid: {clip(repr(packages), 60)}",
        **bad,
    }
    return overview


def diff_rows(a: StoredRun, b: StoredRun, *, everything: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Config and summary rows ``{key, a, b, missing, equal}``: differing keys, or all keys with `everything`.

    A key one run lacks has the value None and names that run ("a" or "b") in `missing`.
    """
    from nbtrack.render.comparison import config_diff, summary_diff  # numpy: only when diffing

    def visible(summary: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in summary.items() if not k.startswith("_")}

    out = {}
    for scope, differing, values_a, values_b in (
        ("config", config_diff(a, b), a.config, b.config),
        ("summary", summary_diff(a, b), visible(a.summary), visible(b.summary)),
    ):
        changed = {key for key, _, _ in differing}
        flat_a, flat_b = flatten(scope, values_a), flatten(scope, values_b)
        keys = sorted(flat_a.keys() | flat_b.keys()) if everything else [key for key, _, _ in differing]
        out[scope] = [
            {
                "key": key,
                "a": flat_a.get(key),
                "b": flat_b.get(key),
                "missing": [side for side, flat in (("a", flat_a), ("b", flat_b)) if key not in flat],
                "equal": key not in changed,
            }
            for key in keys
        ]
    return out


def render_diff(a: StoredRun, b: StoredRun, rows: dict[str, list[dict[str, Any]]]) -> str:
    """``KEY | A (name) | B (name)``, config keys first; ``-`` where a run lacks the key."""

    def cell(row: dict[str, Any], side: str) -> str:
        return "-" if side in row["missing"] else format_value(row[side])

    lines = [(clip(r["key"], 80), cell(r, "a"), cell(r, "b")) for r in [*rows["config"], *rows["summary"]]]
    return table(lines, ("KEY", f"A ({clip(a.name, 40)})", f"B ({clip(b.name, 40)})"))


def _run_json(run: StoredRun) -> dict[str, Any]:
    return {"id": run.id, "name": run.name, "project": run.project, "state": run.state}


def _command(argv: Any) -> str | None:
    """A recorded command line, credentials masked again (runs recorded by older versions, imported bundles)."""
    from nbtrack.common.redact import mask_argv

    if not isinstance(argv, list) or not argv:
        return None
    return " ".join(mask_argv(argv))


def _sort_value_follows(argv: Sequence[str]) -> list[str]:
    """``--sort -created`` -> ``--sort=-created``: argparse would read ``-created`` as an unknown option."""
    out: list[str] = []
    for token in argv:
        if (
            out
            and out[-1] == "--sort"
            and token.startswith("-")
            and not token.startswith("--")
            and len(token) > 2
        ):
            out[-1] = f"--sort={token}"
        else:
            out.append(token)
    return out


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs, 1 or more; got {text!r}")
    return value


_JSON_HELP = 'print strict JSON; NaN and infinities are written as the strings "NaN", "Infinity", "-Infinity"'


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrack", description="List, show, compare and remove nbtrack runs."
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    parser.add_argument(
        "--store", default=None, help=f"the run store directory (default: ${ENV_VAR}, else ./nbtrack-runs)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The order here is the order `nbtrack --help` lists the commands in.
    for add_group in (
        _add_reading_commands,
        _add_report_commands,
        _add_push_command,
        _add_sweep_commands,
        _add_bundle_commands,
        _add_rm_command,
    ):
        add_group(sub)
    return parser


def _add_reading_commands(sub: Any) -> None:
    _add_ls(sub)
    show = sub.add_parser("show", help="show one run: config, summary, metrics, environment, files")
    show.add_argument("run", metavar="RUN", help="run id, name, or 'latest'")
    _add_diff(sub)


def _add_ls(sub: Any) -> None:
    ls = sub.add_parser(
        "ls",
        help="list runs, newest first; filter with --where, sort with --sort",
        description='List runs, newest first. Example: nbtrack ls --where "config.lr < 0.01 and '
        "state == 'finished'\" --sort -summary.val_accuracy --columns config.lr,summary.val_accuracy",
    )
    ls.add_argument("--project", "-p", default=None, help="only runs of this project")
    ls.add_argument(
        "--where",
        "-w",
        metavar="EXPR",
        default=None,
        help="only runs matching a query, e.g. \"config.lr < 0.01 and 'baseline' in tags\" "
        "(fields: config.<key>, summary.<key>, state, name, id, project, host, notes, tags, created, "
        "ended, duration)",
    )
    ls.add_argument(
        "--sort",
        metavar="FIELDS",
        default=None,
        help="sort by comma-separated fields; a leading '-' sorts descending, e.g. --sort -summary.val_accuracy "
        "or --sort=config.lr,-created. Runs lacking a field come last either way (default: newest first)",
    )
    ls.add_argument(
        "--columns",
        "-c",
        metavar="C1,C2",
        default=None,
        help="show these fields instead of the key metrics, e.g. config.lr,summary.val_accuracy "
        "(a run lacking one shows '-')",
    )
    ls.add_argument("--limit", "-n", type=_limit, metavar="N", default=None, help="show at most N runs")
    ls.add_argument(
        "--json", action="store_true", help=_JSON_HELP + " (with --columns: id, name, state, columns)"
    )


def _add_diff(sub: Any) -> None:
    diff = sub.add_parser(
        "diff",
        help="config and summary differences between two runs",
        description="Config and summary keys whose values differ between two runs, config keys first. "
        "A key one run lacks shows as '-'.",
    )
    diff.add_argument("run_a", metavar="RUN_A", help="run id, name, or 'latest'")
    diff.add_argument("run_b", metavar="RUN_B", help="run id, name, or 'latest'")
    diff.add_argument("--project", "-p", default=None, help="look the runs up in this project")
    diff.add_argument("--all", action="store_true", help="also show keys whose values are equal")
    diff.add_argument(
        "--json",
        action="store_true",
        help=_JSON_HELP + '. Rows are {"key", "a", "b", "missing", "equal"}; a key a run lacks is null '
        'with that run ("a" or "b") listed in "missing"',
    )


def _add_report_commands(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a notebook, one run, or a comparison",
        description="One offline HTML file (inline CSS and SVG, no script, no network request): a notebook with "
        "its nbtrack outputs re-rendered from the store, one run's full page (--run), or a comparison (--runs, --where).",
    )
    report.add_argument("notebook", nargs="?", metavar="NOTEBOOK.ipynb", help="the notebook to export")
    report.add_argument(
        "-o", "--output", help="where to write the HTML (default: beside the notebook, or ./NAME.report.html)"
    )
    report.add_argument(
        "--execute", action="store_true", help="run the notebook first (nbclient, a fresh kernel)"
    )
    report.add_argument("--run", metavar="RUN", help="one run's report (id, name or 'latest')")
    report.add_argument("--runs", metavar="RUN", nargs="+", help="a comparison of these runs")
    report.add_argument("--where", metavar="EXPR", help="a comparison of the runs matching this query")
    report.add_argument("--project", "-p", help="only runs of this project (with --run, --runs, --where)")
    replicate = sub.add_parser(
        "replicate",
        help="write a notebook that re-runs a run (its code, seed and config); --execute runs it and compares",
    )
    replicate.add_argument("run", metavar="RUN", help="run id, name or 'latest'")
    replicate.add_argument("-o", "--output", help="the notebook to write (default replicate-NAME.ipynb)")
    replicate.add_argument(
        "--execute", action="store_true", help="run it now (nbclient) as a new run and compare final metrics"
    )


def _add_push_command(sub: Any) -> None:
    push = sub.add_parser(
        "push", help="write a spill file (what a run could not write when its store was away) to the store"
    )
    push.add_argument("spill", metavar="SPILL.json", help="the file the run's warning named")


def _add_sweep_commands(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="store a new sweep from a W&B-format sweep config, for agents")
    sweep.add_argument("config", metavar="CONFIG", help="a YAML or JSON sweep config file")
    sweep.add_argument("--project", "-p", help="the project its trials' runs go to")
    sweep.add_argument("--name", help="the sweep's name (default sweep-N)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of random and bayes search (default 0)")
    agent = sub.add_parser("agent", help="run trials of a stored sweep in this process")
    agent.add_argument("sweep", metavar="SWEEP", help="sweep id or name")
    agent.add_argument(
        "--function",
        "-f",
        required=True,
        metavar="MODULE:FUNCTION",
        help="the training function, called with each trial's config (e.g. train:main or path/to/train.py:main)",
    )
    agent.add_argument(
        "--count", "-n", type=int, help="stop after this many trials (default: until the sweep is done)"
    )


def _add_bundle_commands(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write runs, with their metrics, files and sweeps, to one bundle file",
        description="Write runs losslessly to a versioned zip bundle (see nbtrack.share.bundle): record, every "
        "metric's full history, events, files, and the sweep a run is a trial of. "
        "Example: nbtrack export latest lyric-dream-3 -o runs.nbtrack.zip",
    )
    export.add_argument("runs", metavar="RUN", nargs="*", help="run id, name, or 'latest'")
    export.add_argument("-o", "--output", required=True, help="the bundle to write, e.g. runs.nbtrack.zip")
    export.add_argument("--project", "-p", help="the project's runs (with RUN: look the runs up in it)")
    export.add_argument(
        "--where", "-w", metavar="EXPR", help="the runs matching a query (as in `nbtrack ls`)"
    )
    bundle_import = sub.add_parser(
        "import",
        help="add the runs of a bundle to the store (runs it already has are skipped)",
        description="Check a bundle whole (checksums, paths, version), then add its runs and sweeps to the "
        "store. Runs whose id the store has are skipped; a corrupt bundle imports nothing.",
    )
    bundle_import.add_argument("bundle", metavar="BUNDLE", help="a bundle written by `nbtrack export`")
    sync = sub.add_parser(
        "sync",
        help="push runs the target store lacks to it (again later: only the new ones)",
        description="Copy runs that the target store lacks, with their sweeps, one complete run at a time: a "
        "second sync pushes nothing, an interrupted one is finished by the next. Runs still running wait.",
    )
    sync.add_argument(
        "--to", required=True, metavar="LOCATION", help="the target store: a directory or a database URL"
    )
    sync.add_argument("--project", "-p", help="only runs of this project")


def _add_rm_command(sub: Any) -> None:
    rm = sub.add_parser("rm", help="delete runs with their metrics and files")
    rm.add_argument("runs", metavar="RUN", nargs="+", help="run id or name")
    rm.add_argument("--force", action="store_true", help="also delete runs that are still running")


def _ls(store: Store, args: argparse.Namespace) -> int:
    # Each option is checked on its own, so that the error names the option it came from.
    checks = (
        ("--where", args.where, parse),
        ("--sort", args.sort, parse_order),
        ("--columns", args.columns, parse_columns),
    )
    for option, text, check in checks:
        if text is None or (option == "--where" and not text.strip()):
            continue
        try:
            check(text)
        except QueryError as exc:
            print(f"nbtrack: {option}: {exc}", file=sys.stderr)
            return 2
    columns = parse_columns(args.columns) if args.columns is not None else None
    try:
        found = runs(args.project, args.where, args.sort, args.limit, store=store)
    except QueryError as exc:  # a key no run has, with a close one that runs do have
        print(f"nbtrack: --where: {exc}", file=sys.stderr)
        return 2
    records = found.records()
    if args.json:
        print(dump_json(ls_json(records, columns)))
        return 0
    if not records:
        scope = f" in project {args.project!r}" if args.project else ""
        match = f" matching {args.where}" if args.where and args.where.strip() else ""
        print(f"No runs{match}{scope} in {store.location}.")
        return 0
    print(render_ls(records, columns))
    if len(records) < found.total:
        print(f"{len(records)} of {found.total} runs")
    return 0


def _diff(store: Store, args: argparse.Namespace) -> int:
    a = get_run(args.run_a, project=args.project, store=store)
    b = get_run(args.run_b, project=args.project, store=store)
    rows = diff_rows(a, b, everything=args.all)
    if args.json:
        print(dump_json({"a": _run_json(a), "b": _run_json(b), **rows}))
        return 0
    if rows["config"] or rows["summary"]:
        print(render_diff(a, b, rows))
    if not any(not r["equal"] for r in [*rows["config"], *rows["summary"]]):
        print("No differences in config or summary.")
    return 0


def _show(store: Store, args: argparse.Namespace) -> int:
    print(render_show(store, store.get_run(args.run)))
    return 0


def _rm(store: Store, args: argparse.Namespace) -> int:
    records = [store.get_run(ref) for ref in args.runs]
    running = [r for r in records if r.state == "running"]
    if running and not args.force:
        names = ", ".join(f"{r.name} ({r.id})" for r in running)
        print(f"nbtrack: not deleting {names}: still running. Use --force to delete anyway.", file=sys.stderr)
        return 1
    for record in records:
        store.delete_run(record.id)
        print(f"Deleted {record.name} ({record.id}) from {store.location}.")
    return 0


def _push(args: argparse.Namespace) -> int:
    from nbtrack.run.spill import push_command, push_spill, read_spill, spill_store_matches
    from nbtrack.store import mask_password, resolve_location

    # The store is the one the user chose, never the one the file names: a spill file mailed to
    # someone must not make nbtrack connect to (and send PGPASSWORD to) its author's server.
    location = resolve_location(args.store)
    spilled = str(read_spill(args.spill).get("store") or "")
    if spilled and not spill_store_matches(spilled, location):
        print(
            f"nbtrack: {args.spill} holds a run of the store {mask_password(spilled)}, not of "
            f"{mask_password(location)} (the store this command uses). nbtrack writes only to the store "
            f"you name; to write it there: {push_command(spilled, args.spill)}",
            file=sys.stderr,
        )
        return 1
    with open_store(location, create=False) as store:
        batch = push_spill(args.spill, store)
    points = sum(len(s.value) for s in batch.series)
    print(
        f"Wrote {points} points{f', state {batch.state}' if batch.state else ''} of run {batch.run_id} to {mask_password(location)}."
    )
    return 0


def _replicate(args: argparse.Namespace) -> int:
    from nbtrack.share.replicate import comparison_text, replicate

    path, again = replicate(args.run, output=args.output, execute=args.execute, store=args.store)
    print(f"Wrote {path}")
    if args.execute:
        if again is None:
            print("nbtrack: the notebook ran but recorded no run tagged as a replicate.", file=sys.stderr)
            return 1
        original = get_run(args.run, store=args.store)
        print(f"Replicated {original.name} ({original.id}) as {again.name} ({again.id}):")
        print(comparison_text(original, again))
    return 0


def _report(args: argparse.Namespace) -> int:
    from nbtrack.reports import report

    given = [x for x in (args.notebook, args.run, args.runs, args.where) if x]
    if len(given) != 1:
        print(
            "nbtrack: report takes one of: a notebook path, --run RUN, --runs A B ..., --where EXPR.",
            file=sys.stderr,
        )
        return 2
    if args.where:
        try:
            parse(args.where)
        except QueryError as exc:
            print(f"nbtrack: --where: {exc}", file=sys.stderr)
            return 2
    if args.execute and not args.notebook:
        print("nbtrack: --execute runs a notebook: give its path.", file=sys.stderr)
        return 2
    path = report(
        args.notebook,
        run=args.run,
        runs=args.runs,
        where=args.where,
        project=args.project,
        output=args.output,
        execute=args.execute,
        store=args.store,
    )
    print(f"Wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


def load_function(spec: str) -> Any:
    """``module:function`` or ``path/to/file.py:function`` -> the function (the working directory is importable)."""
    import importlib
    import importlib.util
    import os

    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--function takes MODULE:FUNCTION (e.g. train:main), got {spec!r}")
    if module_name.endswith(".py") or os.sep in module_name:
        location = importlib.util.spec_from_file_location("nbtrack_agent_target", module_name)
        if location is None or location.loader is None or not os.path.isfile(module_name):
            raise ValueError(f"--function: no Python file at {module_name}")
        module = importlib.util.module_from_spec(location)
        location.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"--function: {module_name} has no function {attribute!r}")
    return function


def _sweep(store: Store, args: argparse.Namespace) -> int:
    from nbtrack import sweeps

    created = sweeps.create(args.config, project=args.project, name=args.name, seed=args.seed, store=store)
    print(
        f"Created sweep {created.name} ({created.id}) in project {created.project!r}: "
        f"{created.spec.method} search"
        + (f", {created.spec.grid_size()} grid points" if created.spec.method == "grid" else "")
    )
    print(f"Run trials with: nbtrack agent {created.id} --function MODULE:FUNCTION")
    return 0


def _agent(store: Store, args: argparse.Namespace) -> int:
    from nbtrack import sweeps

    function = load_function(args.function)
    if args.count is not None and args.count <= 0:
        print(f"nbtrack: --count must be positive, got {args.count}", file=sys.stderr)
        return 2
    ran = sweeps.agent(args.sweep, function, count=args.count, store=store)
    print(f"Ran {ran} trial{'s' if ran != 1 else ''} of sweep {args.sweep}.")
    return 0


def _names(records: Sequence[RunRecord]) -> str:
    return ", ".join(f"{r.name} ({r.id})" for r in records)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _import(args: argparse.Namespace) -> int:
    from nbtrack.share import bundle

    with open_store(args.store) as store:
        result = bundle.import_bundle(args.bundle, store)
        imported = [store.get_run(rid) for rid in result.imported]
    print(
        f"Imported {_plural(len(imported), 'run')} into {store.location}"
        + (f": {_names(imported)}" if imported else ".")
    )
    if result.skipped:
        print(
            f"Skipped {_plural(len(result.skipped), 'run')} already in the store: {', '.join(result.skipped)}"
        )
    return 0


def _sync(args: argparse.Namespace) -> int:
    from nbtrack.share import bundle

    with open_store(args.store, create=False) as store:
        result = bundle.sync(store, args.to, project=args.project)
        running = [store.get_run(rid) for rid in result.running]
    print(
        f"Pushed {_plural(len(result.pushed), 'run')} to {args.to}"
        + (f": {', '.join(result.pushed)}" if result.pushed else ".")
    )
    if result.present:
        print(f"{_plural(len(result.present), 'run')} already there.")
    for record in running:
        print(
            f"note: skipped {record.name} ({record.id}): still running; the next sync pushes it once it ends."
        )
    return 0


def _export_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with export's choice of runs, before any store is opened (None: nothing)."""
    if not args.runs and args.where is None and args.project is None:
        return "export needs runs: RUN names or ids, --project P, or --where EXPR."
    if args.runs and args.where is not None:
        return "export takes RUN names or --where, not both."
    if args.where is not None:
        try:
            parse(args.where)
        except QueryError as exc:
            return f"--where: {exc}"
    return None


def _export(args: argparse.Namespace) -> int:
    from nbtrack.share import bundle

    problem = _export_usage_error(args)
    if problem is not None:
        print(f"nbtrack: {problem}", file=sys.stderr)
        return 2
    with open_store(args.store, create=False) as store:
        if args.runs:
            records = [store.get_run(ref, args.project) for ref in args.runs]
        else:
            records = runs(args.project, args.where, store=store).records()
        if not records:
            scope = f" in project {args.project!r}" if args.project else ""
            match = f" matching {args.where}" if args.where else ""
            print(f"nbtrack: no runs{match}{scope} in {store.location}: nothing exported.", file=sys.stderr)
            return 1
        path = bundle.export_runs(records, args.output, store)
    for record in records:
        if record.state == "running":
            print(
                f"note: {record.name} ({record.id}) is still running: the bundle holds what it logged so far.",
                file=sys.stderr,
            )
    unique = {r.id: r for r in records}
    print(
        f"Exported {_plural(len(unique), 'run')} to {path} ({path.stat().st_size:,} bytes): {_names(list(unique.values()))}"
    )
    return 0


# Terminal control characters in run names, config values, log lines... would be obeyed by the terminal (clear the
# screen, rewrite lines, set the title): everything the CLI prints shows them as \\uXXXX text instead. Tabs and
# newlines stay; inside JSON strings the same \\uXXXX form is a valid escape.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Printable:
    """A text stream that shows control characters as \\uXXXX (see `printable`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Printable(out), _Printable(err)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_sort_value_follows(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 2
    handler, errors = _COMMANDS[args.command]
    try:
        return handler(args)
    except errors as exc:
        print(f"nbtrack: {exc}", file=sys.stderr)
        return 1


_Handler = Callable[[argparse.Namespace], int]


def _in_store(command: Callable[[Store, argparse.Namespace], int], *, create: bool = False) -> _Handler:
    """A handler that runs `command` with the store `--store` names open."""

    def handler(args: argparse.Namespace) -> int:
        with open_store(args.store, create=create) as store:
            return command(store, args)

    return handler


# Each command: its handler, and the errors it reports as "nbtrack: ..." with exit status 1 (others are bugs).
_ERRORS = (NbtrackError,)
_FILE_ERRORS = (NbtrackError, OSError)
_CODE_ERRORS = (NbtrackError, ImportError, OSError)  # it imports or runs the user's notebook or function
_COMMANDS: dict[str, tuple[_Handler, tuple[type[Exception], ...]]] = {
    "ls": (_in_store(_ls), _ERRORS),
    "show": (_in_store(_show), _ERRORS),
    "diff": (_in_store(_diff), _ERRORS),
    "rm": (_in_store(_rm), _ERRORS),
    "report": (_report, _CODE_ERRORS),  # a notebook names its own stores: none is opened here
    "replicate": (_replicate, _CODE_ERRORS),
    "push": (_push, _ERRORS),
    "sweep": (_in_store(_sweep, create=True), (*_CODE_ERRORS, ValueError)),
    "agent": (_in_store(_agent), (*_CODE_ERRORS, ValueError)),
    "export": (_export, _FILE_ERRORS),
    "import": (_import, _FILE_ERRORS),
    "sync": (_sync, _FILE_ERRORS),
}

if __name__ == "__main__":
    sys.exit(main())
