"""The `nbtrack` command: list, show and remove runs of a store.

nbtrack ls [--project P]        runs, newest first
nbtrack show RUN                config, summary, metrics, environment, files (RUN: id, name or 'latest')
nbtrack rm RUN [RUN ...]        delete runs (a running run needs --force)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from nbtrack import __version__
from nbtrack.errors import NbtrackError
from nbtrack.store import ENV_VAR, open_store
from nbtrack.store.base import RunRecord, Store

# Summary keys shown first in `ls`, when a run has them.
_KEY_METRICS = ("val_loss", "val_accuracy", "loss", "accuracy")
_LS_METRICS = 3


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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


def render_ls(runs: Sequence[RunRecord]) -> str:
    rows = []
    for run in runs:
        metrics = "  ".join(f"{k}={format_value(v)}" for k, v in key_metrics(run.summary))
        rows.append(
            (
                run.name,
                run.id,
                run.project,
                run.state,
                format_time(run.created),
                format_duration(run.duration),
                metrics,
            )
        )
    return table(rows, ("NAME", "ID", "PROJECT", "STATE", "STARTED", "DURATION", "METRICS"))


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
        width = max((len(k) for k in items), default=0)
        for key, value in items.items():
            out.append(f"  {key.ljust(width)}  {format_value(value)}")

    section("Config", run.config)
    section("Summary", {k: v for k, v in run.summary.items() if not k.startswith("_")})
    stats = store.metric_stats(run.id)
    out.append("")
    out.append("Metrics")
    if stats:
        rows = [
            (
                s.key,
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
    env = run.environment
    overview: dict[str, Any] = {}
    if env:
        python, osinfo, host, hw = (env.get(k, {}) for k in ("python", "os", "host", "hardware"))
        prog, git = env.get("program") or {}, env.get("git") or {}
        overview = {
            "python": python.get("version"),
            "os": osinfo.get("platform"),
            "hostname": host.get("hostname"),
            "cpu": f"{hw.get('cpu_count')} x {hw.get('cpu_model')}",
            "memory": f"{hw['memory_total'] / 2**30:.1f} GiB" if hw.get("memory_total") else None,
            "gpus": ", ".join(hw.get("gpus") or []) or "none",
            "notebook": prog.get("notebook"),
            "command": " ".join(prog.get("argv") or []) or None,
            "git": f"{git.get('commit')} ({git.get('branch')}{', dirty' if git.get('dirty') else ''})"
            if git.get("commit")
            else None,
            "packages": f"{len(env.get('packages') or {})} installed (requirements.txt)",
        }
    section("Environment", {k: v for k, v in overview.items() if v is not None})
    files = store.list_files(run.id)
    section("Files", {f.name: f"{f.size:,} bytes" for f in files})
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbtrack", description="List, show and remove nbtrack runs.")
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    parser.add_argument(
        "--store", default=None, help=f"the run store directory (default: ${ENV_VAR}, else ./nbtrack-runs)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ls = sub.add_parser("ls", help="list runs, newest first")
    ls.add_argument("--project", "-p", default=None, help="only runs of this project")
    show = sub.add_parser("show", help="show one run: config, summary, metrics, environment, files")
    show.add_argument("run", metavar="RUN", help="run id, name, or 'latest'")
    rm = sub.add_parser("rm", help="delete runs with their metrics and files")
    rm.add_argument("runs", metavar="RUN", nargs="+", help="run id or name")
    rm.add_argument("--force", action="store_true", help="also delete runs that are still running")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with open_store(args.store, create=False) as store:
            if args.command == "ls":
                runs = store.list_runs(args.project)
                if not runs:
                    scope = f" in project {args.project!r}" if args.project else ""
                    print(f"No runs{scope} in {store.location}.")
                else:
                    print(render_ls(runs))
            elif args.command == "show":
                print(render_show(store, store.get_run(args.run)))
            elif args.command == "rm":
                records = [store.get_run(ref) for ref in args.runs]
                running = [r for r in records if r.state == "running"]
                if running and not args.force:
                    names = ", ".join(f"{r.name} ({r.id})" for r in running)
                    print(
                        f"nbtrack: not deleting {names}: still running. Use --force to delete anyway.",
                        file=sys.stderr,
                    )
                    return 1
                for record in records:
                    store.delete_run(record.id)
                    print(f"Deleted {record.name} ({record.id}) from {store.location}.")
    except NbtrackError as exc:
        print(f"nbtrack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
