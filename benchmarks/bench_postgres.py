"""Issue #8: nbtrack's PostgreSQL store side by side with its SQLite store and with MLflow on PostgreSQL.

One run starts one throwaway PostgreSQL cluster (`tests.pg_server.PgServer`: a temporary directory, a Unix
socket, ``fsync=off``; as root it runs as the ``postgres`` user) and measures:

(1) logging    `run.log` with 2 float scalars per call (``{"loss": ..., "accuracy": ...}``), --calls calls
               (default 20,000): loop calls/s and end-to-end durable calls/s (loop + `run.finish()`), for
               nbtrack on SQLite (a fresh directory per repeat) and nbtrack on PostgreSQL (a fresh database
               per repeat), and MLflow `log_metrics({...}, step=i)` on its PostgreSQL backend
               (``postgresql+psycopg://``, a fresh database per repeat; --mlflow-calls, default 1,000: it is
               slow). Medians of --repeats (default 5), order reversed every other repeat, after one untimed
               warm-up each. Every nbtrack run is checked to hold --calls points per metric.
(2) query      --runs runs (default 10,000) x 20 config keys x 10 summary metrics, bench_query.py's generated
               data, written through the store API (`create_run` + `write_batch`) into a SQLite store and a
               PostgreSQL store; issue #5's query
               ``nbtrack.runs("bench", where=<lr, val_accuracy, state, tag>, order_by="-summary.val_accuracy",
               limit=20, store=<location>)`` timed end to end (the store opened per call) and on an open
               store; both results checked against a pure-Python filter and against each other (same ids in the
               same order). Then MLflow `search_runs` on PostgreSQL against the closest nbtrack query: MLflow
               params are strings, so both sides filter on ``optimizer == 'adam'`` instead of ``lr < 0.01``
               (as bench_query.py does). MLflow's database is populated through its API for the first 200 runs
               and through its SQLAlchemy models for the rest (the rows its API writes), unless --mlflow-populate.

    .venv-bench/bin/python benchmarks/bench_postgres.py           # ~5 min on 2 cores
    .venv-bench/bin/python benchmarks/bench_postgres.py --quick   # smoke run, NOT the issue's sizes
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    REPO_ROOT,
    Results,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    short_reason,
    table,
)

quiet_environment()

from bench_log import Payload, Sample  # noqa: E402
from bench_query import (  # noqa: E402
    MAIN_ORDER,
    MAIN_WHERE,
    PEER_FILTER,
    PEER_ORDER,
    PEER_WHERE,
    GenRun,
    _mlflow_populate_api,
    _mlflow_populate_bulk,
    build_store,
    check,
    check_runs,
    expected,
    generate_runs,
    main_filter,
    peer_filter,
    spread,
)


def _import_pg_server() -> Any:
    """tests.pg_server, which imports pytest only for its fixture: .venv-bench has no pytest, so stand in for it."""
    try:
        import pytest  # noqa: F401
    except ImportError:
        import types

        stub = types.ModuleType("pytest")
        stub.fixture = lambda *a, **k: lambda fn: fn  # type: ignore[attr-defined]
        stub.fail = lambda msg, pytrace=True: (_ for _ in ()).throw(RuntimeError(msg))  # type: ignore[attr-defined]
        sys.modules["pytest"] = stub
        try:
            import tests.pg_server as module
        finally:
            del sys.modules["pytest"]
        return module
    import tests.pg_server as module

    return module


_pg_server = _import_pg_server()
PgServer = _pg_server.PgServer
find_pg_bin = _pg_server.find_pg_bin


def mlflow_url(server: Any, nbtrack_url: str) -> str:
    """The SQLAlchemy form of a PgServer database URL: postgresql+psycopg://postgres@/DB?host=/socket/dir."""
    database = nbtrack_url.split("@/", 1)[1].split("?", 1)[0]
    return f"postgresql+psycopg://postgres@/{database}?host={server.socket_dir}"


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


# -- (1) logging --------------------------------------------------------------------------------------
@dataclass
class LogEntry:
    key: str
    label: str
    calls: int
    bench: Callable[[int, Payload, Path], Sample]
    unavailable: str | None = None
    samples: list[Sample] = field(default_factory=list)


def _check_points(location: str | Path, run_id: str, n: int) -> None:
    from nbtrack.store import open_store

    store = open_store(location, create=False)
    try:
        stats = store.metric_stats(run_id)
        counts = {key: stats[key].count if key in stats else 0 for key in ("loss", "accuracy")}
        if counts != {"loss": n, "accuracy": n}:
            raise AssertionError(f"nbtrack stored {counts} points at {location}, expected {n} per metric")
    finally:
        store.close()


def nbtrack_bench(location_for: Callable[[Path], str | Path]) -> Callable[[int, Payload, Path], Sample]:
    def bench(n: int, payload: Payload, workdir: Path) -> Sample:
        import nbtrack

        loss, accuracy = payload.loss, payload.accuracy
        location = location_for(workdir)  # untimed: a fresh directory or a fresh database
        t0 = time.perf_counter()
        run = nbtrack.init(project="bench", config={"calls": n}, store=location)
        t1 = time.perf_counter()
        log = run.log
        for i in range(n):
            log({"loss": loss[i], "accuracy": accuracy[i]})
        t2 = time.perf_counter()
        run.finish()
        t3 = time.perf_counter()
        run.store.close()
        _check_points(location, run.id, n)
        return Sample(n, t1 - t0, t2 - t1, t3 - t2)

    return bench


def mlflow_bench(server: Any) -> Callable[[int, Payload, Path], Sample]:
    def bench(n: int, payload: Payload, workdir: Path) -> Sample:
        import mlflow
        from mlflow import MlflowClient

        _quiet_mlflow()
        loss, accuracy = payload.loss, payload.accuracy
        uri = mlflow_url(server, server.new_database())
        t0 = time.perf_counter()
        mlflow.set_tracking_uri(uri)  # the first call on a fresh database runs MLflow's migrations: in init
        mlflow.set_experiment("bench")
        run = mlflow.start_run()
        t1 = time.perf_counter()
        log_metrics = mlflow.log_metrics
        for i in range(n):
            log_metrics({"loss": loss[i], "accuracy": accuracy[i]}, step=i)
        t2 = time.perf_counter()
        mlflow.end_run()
        t3 = time.perf_counter()
        history = MlflowClient(uri).get_metric_history(run.info.run_id, "loss")
        if len(history) != n:
            raise AssertionError(f"MLflow stored {len(history)} loss points, expected {n}")
        return Sample(n, t1 - t0, t2 - t1, t3 - t2)

    return bench


def run_one(entry: LogEntry, calls: int, payload: Payload, root: Path, tag: str) -> Sample | None:
    workdir = Path(tempfile.mkdtemp(prefix=f"{entry.key}-{tag}-", dir=root))
    gc.collect()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return entry.bench(calls, payload, workdir)
    except Exception as exc:
        entry.unavailable = f"failed: {short_reason(exc)}"
        print(f"  {entry.label}: {entry.unavailable}", flush=True)
        traceback.print_exc(limit=4)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bench_logging(server: Any, args: argparse.Namespace, root: Path, out: Results) -> None:
    entries = [
        LogEntry("nb-sqlite", "nbtrack, SQLite store", args.calls, nbtrack_bench(lambda w: w / "store")),
        LogEntry(
            "nb-postgres",
            "nbtrack, PostgreSQL store",
            args.calls,
            nbtrack_bench(lambda w: server.new_database()),
        ),
    ]
    if not args.skip_mlflow:
        entries.append(
            LogEntry("mlflow-pg", "MLflow, PostgreSQL backend", args.mlflow_calls, mlflow_bench(server))
        )
    measure_logging(entries, args, root)
    stats = print_logging(entries, args.repeats)
    print_logging_ratios(stats)
    record_logging(entries, args.calls, out)


def measure_logging(entries: list[LogEntry], args: argparse.Namespace, root: Path) -> None:
    """A warm-up of each contestant, then --repeats runs of each, the order reversed every other repeat."""
    payload = Payload.make(max(e.calls for e in entries))
    warm = Payload.make(args.warmup_calls, seed=1)
    print(f"\n(1) logging: warm-up {args.warmup_calls} calls each", flush=True)
    for entry in entries:
        run_one(entry, min(args.warmup_calls, entry.calls), warm, root, "warmup")
    for repeat in range(args.repeats):
        order = entries if repeat % 2 == 0 else entries[::-1]
        print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
        for entry in order:
            if entry.unavailable is not None:
                continue
            sample = run_one(entry, entry.calls, payload, root, f"r{repeat}")
            if sample is not None:
                entry.samples.append(sample)
                print(
                    f"    {entry.key:<12} loop {sample.calls / sample.loop_s:>12,.0f} calls/s   "
                    f"close {sample.close_s:7.3f} s   durable {sample.calls / sample.end_to_end_s:>10,.0f} calls/s"
                    f"   init {sample.init_s:6.3f} s",
                    flush=True,
                )


def print_logging(entries: list[LogEntry], repeats: int) -> dict[str, dict[str, float]]:
    """The throughput table; returns each contestant's medians (loop, durable, close, init) by key."""
    stats: dict[str, dict[str, float]] = {}
    rows = []
    for e in entries:
        if not e.samples:
            rows.append([e.label, f"{e.calls:,}", "-", e.unavailable or "unavailable", "-", "-", "-", "-", 0])
            continue
        loop = [s.calls / s.loop_s for s in e.samples]
        durable = [s.calls / s.end_to_end_s for s in e.samples]
        st = {
            "loop": median(loop),
            "durable": median(durable),
            "close": median([s.close_s for s in e.samples]),
            "init": median([s.init_s for s in e.samples]),
        }
        stats[e.key] = st
        rows.append(
            [
                e.label,
                f"{e.calls:,}",
                fmt_seconds(st["init"]),
                fmt_rate(st["loop"]),
                f"{fmt_rate(min(loop))} - {fmt_rate(max(loop))}",
                fmt_seconds(st["close"]),
                fmt_rate(st["durable"]),
                f"{fmt_rate(min(durable))} - {fmt_rate(max(durable))}",
                len(e.samples),
            ]
        )
    print(f"\n## (1) `run.log` throughput: 2 float scalars per call, medians of {repeats} repeats\n")
    print(
        table(
            [
                "contestant",
                "calls",
                "init",
                "loop calls/s",
                "loop min - max",
                "close (finish / end_run)",
                "durable calls/s (loop + close)",
                "durable min - max",
                "n",
            ],
            rows,
        )
    )
    print(
        "\ninit (not in the rates) includes opening the store: schema creation on the fresh database/directory; "
        "MLflow's includes its alembic migrations.\nMLflow logs fewer calls; its rates are per call all the same."
    )
    return stats


def print_logging_ratios(stats: dict[str, dict[str, float]]) -> None:
    pairs = (
        ("nbtrack-PostgreSQL / nbtrack-SQLite", "nb-postgres", "nb-sqlite"),
        ("nbtrack-PostgreSQL / MLflow-PostgreSQL", "nb-postgres", "mlflow-pg"),
        ("nbtrack-SQLite / MLflow-PostgreSQL", "nb-sqlite", "mlflow-pg"),
    )
    ratio_rows = [
        [
            label,
            fmt_ratio(stats[a]["loop"] / stats[b]["loop"]),
            fmt_ratio(stats[a]["durable"] / stats[b]["durable"]),
        ]
        for label, a, b in pairs
        if stats.get(a) and stats.get(b)
    ]
    if ratio_rows:
        print("\n## (1) ratios (> 1: the first is faster)\n")
        print(table(["ratio", "loop calls/s", "durable calls/s"], ratio_rows))


def record_logging(entries: list[LogEntry], calls: int, out: Results) -> None:
    """The PostgreSQL store's loop and durable rates as --json measurements, the others beside them."""
    by_key = {e.key: e for e in entries}
    for what, rate in (
        ("loop", lambda x: x.calls / x.loop_s),
        ("durable", lambda x: x.calls / x.end_to_end_s),
    ):
        pg_entry = by_key["nb-postgres"]
        name = f"`run.log` {what} calls/s on a PostgreSQL store ({calls:,} calls of 2 scalars)"
        if not pg_entry.samples:
            out.unavailable(f"postgres.log_{what}", name, "calls/s", pg_entry.unavailable or "no samples")
            continue
        entry = out.add(
            f"postgres.log_{what}", name, "calls/s", [rate(x) for x in pg_entry.samples], better="higher"
        )
        for key in ("nb-sqlite", "mlflow-pg"):
            peer = by_key.get(key)
            if peer is None:
                out.compare(entry, "MLflow, PostgreSQL backend", unavailable="skipped (--skip-mlflow)")
            elif peer.samples:
                note = f"{peer.calls:,} calls" if peer.calls != calls else ""
                out.compare(entry, peer.label, [rate(x) for x in peer.samples], note=note)
            else:
                out.compare(entry, peer.label, unavailable=peer.unavailable or "no samples")


# -- (2) query ------------------------------------------------------------------------------------------
def populate_mlflow(uri: str, runs: list[GenRun], root: Path, mode: str) -> tuple[str, str]:
    """An MLflow experiment "bench" holding `runs` in the database at `uri`; (experiment id, how it was filled)."""
    from mlflow import MlflowClient

    _quiet_mlflow()
    artifact_root = str(root / "mlflow-artifacts")
    started = time.perf_counter()
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("bench", artifact_location=artifact_root)
    setup_s = time.perf_counter() - started
    head = runs if mode == "api" else [] if mode == "bulk" else runs[: min(200, len(runs))]
    started = time.perf_counter()
    _mlflow_populate_api(client, experiment_id, head)
    api_s = time.perf_counter() - started
    how = []
    if head:
        how.append(
            f"{len(head):,} runs via MlflowClient (create_run + log_batch + set_terminated) in {api_s:.1f} s "
            f"({len(head) / api_s:,.0f} runs/s; all {len(runs):,} that way: ~{api_s / len(head) * len(runs):.0f} s)"
        )
    rest = runs[len(head) :]
    if rest:
        started = time.perf_counter()
        _mlflow_populate_bulk(uri, experiment_id, artifact_root, rest)
        how.append(
            f"{len(rest):,} runs inserted through MLflow's SQLAlchemy models in one session in "
            f"{time.perf_counter() - started:.1f} s"
        )
    how.append(f"schema creation (alembic migrations) {setup_s:.1f} s")
    return experiment_id, "; ".join(how)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """`repeats` timed calls of each function, the order rotated every repeat."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for i in range(repeats):
        order = keys[i % len(keys) :] + keys[: i % len(keys)]
        for key in order:
            started = time.perf_counter()
            fns[key]()
            times[key].append(time.perf_counter() - started)
    return times


@dataclass
class QueryStores:
    """The same generated runs in a SQLite and a PostgreSQL store, and each store opened once."""

    gen: list[GenRun]
    sqlite_dir: Path
    pg_url: str
    opened: dict[str, Any]
    want_main: list[GenRun]
    want_peer: list[GenRun]


def query(where: str, store: Any, limit: int | None = 20) -> Callable[[], Any]:
    import nbtrack

    return lambda: nbtrack.runs(project="bench", where=where, order_by=MAIN_ORDER, limit=limit, store=store)


def bench_query(server: Any, args: argparse.Namespace, root: Path, out: Results) -> None:
    stores = build_query_stores(server, args, root)
    check_backends(stores)
    search = time_backends(stores, args, out)
    if args.skip_mlflow:
        print("\nMLflow: skipped (--skip-mlflow)")
    else:
        try:
            beside_mlflow(server, stores, args, root, out)
        except Exception as exc:
            print(f"\nMLflow on PostgreSQL failed: {short_reason(exc)}")
            traceback.print_exc(limit=4)
            out.compare(search, "MLflow `search_runs`, PostgreSQL backend", unavailable=exc)
    for store in stores.opened.values():
        store.close()


def build_query_stores(server: Any, args: argparse.Namespace, root: Path) -> QueryStores:
    from nbtrack.store import open_store

    started = time.perf_counter()
    gen = generate_runs(args.runs, args.seed)
    print(f"\n(2) query: generated {args.runs:,} runs in {time.perf_counter() - started:.1f} s", flush=True)
    sqlite_dir = root / "query-store"
    pg_url = server.new_database()
    build_sqlite = build_store(sqlite_dir, gen)
    build_pg = build_store(pg_url, gen)  # type: ignore[arg-type]  # open_store takes a URL too
    print(
        f"built through the store API (create_run + write_batch per run): SQLite {build_sqlite:.1f} s "
        f"({args.runs / build_sqlite:,.0f} runs/s), PostgreSQL {build_pg:.1f} s ({args.runs / build_pg:,.0f} runs/s)",
        flush=True,
    )
    locations: dict[str, Any] = {"SQLite": sqlite_dir, "PostgreSQL": pg_url}
    opened = {name: open_store(loc, create=False) for name, loc in locations.items()}
    want_main = expected(gen, main_filter, "val_accuracy")
    want_peer = expected(gen, peer_filter, "val_accuracy")
    return QueryStores(gen, sqlite_dir, pg_url, opened, want_main, want_peer)


def check_backends(stores: QueryStores) -> None:
    """Correctness first: each store against the pure-Python filter, then the two against each other."""
    locations = {"SQLite": stores.sqlite_dir, "PostgreSQL": stores.pg_url}
    results = {}
    for name in locations:
        for label, store in (("per call", locations[name]), ("open", stores.opened[name])):
            for where, want in ((MAIN_WHERE, stores.want_main), (PEER_WHERE, stores.want_peer)):
                for limit in (20, None):
                    result = query(where, store, limit)()
                    check_runs(result, want, limit, f"{name} ({label}), {where!r}, limit {limit}")
                    results[(name, label, where, limit)] = result.ids
    for where in (MAIN_WHERE, PEER_WHERE):
        for limit in (20, None):
            check(
                results[("SQLite", "per call", where, limit)]
                == results[("PostgreSQL", "per call", where, limit)],
                f"SQLite and PostgreSQL disagree on {where!r} limit {limit}",
            )
    print(
        f"checked: SQLite and PostgreSQL return the same ids in the same order (issue query: {len(stores.want_main)} "
        f"matches; MLflow-comparable query: {len(stores.want_peer)} matches), both equal to a pure-Python filter",
        flush=True,
    )


def _pair(a: list[float], b: list[float]) -> list[str]:
    """'median (min - max)' of a and of b, and b's median over a's."""
    return [
        f"{fmt_seconds(median(a))} ({spread(a)})",
        f"{fmt_seconds(median(b))} ({spread(b)})",
        fmt_ratio(median(b) / median(a)),
    ]


def time_opens(location: Any, repeats: int) -> list[float]:
    """`open_store(location, create=False)` + close, `repeats` times."""
    from nbtrack.store import open_store

    opens = []
    for _ in range(repeats):
        started = time.perf_counter()
        open_store(location, create=False).close()
        opens.append(time.perf_counter() - started)
    return opens


def time_backends(stores: QueryStores, args: argparse.Namespace, out: Results) -> dict[str, Any]:
    """The issue's query on SQLite and on PostgreSQL, interleaved; returns the --json measurement of the search."""
    sqlite_dir, pg_url, opened = stores.sqlite_dir, stores.pg_url, stores.opened
    fns = {
        "SQLite per call": query(MAIN_WHERE, sqlite_dir),
        "PostgreSQL per call": query(MAIN_WHERE, pg_url),
        "SQLite open": query(MAIN_WHERE, opened["SQLite"]),
        "PostgreSQL open": query(MAIN_WHERE, opened["PostgreSQL"]),
        "SQLite open, no limit": query(MAIN_WHERE, opened["SQLite"], None),
        "PostgreSQL open, no limit": query(MAIN_WHERE, opened["PostgreSQL"], None),
    }
    times = interleaved(fns, args.query_repeats)
    rows = [
        [what, *_pair(times[f"SQLite {how}"], times[f"PostgreSQL {how}"])]
        for what, how in (
            ("`nbtrack.runs(..., limit=20, store=<location>)` (store opened per call)", "per call"),
            ("same, on an already-open `Store`", "open"),
            (f"same, open store, no limit ({len(stores.want_main)} runs)", "open, no limit"),
        )
    ]
    # Where the PostgreSQL time goes: opening (connect + schema check) vs the query on an open store.
    pg_opens = time_opens(pg_url, args.query_repeats)
    lite_opens = time_opens(sqlite_dir, args.query_repeats)
    rows.append(["of which `open_store(location, create=False)` + close", *_pair(lite_opens, pg_opens)])
    print(
        f"\n## (2) issue #5's query at {args.runs:,} runs: nbtrack SQLite vs PostgreSQL, median (min - max) of "
        f"{args.query_repeats} interleaved calls after a warm-up\n"
    )
    print(table(["measurement", "nbtrack SQLite", "nbtrack PostgreSQL", "PostgreSQL / SQLite"], rows))
    print(f'\nwhere="{MAIN_WHERE}", order_by="{MAIN_ORDER}"')
    search = out.add(
        "postgres.search",
        f"issue #5's query, limit=20, {args.runs:,} runs, PostgreSQL store opened per call",
        "s",
        times["PostgreSQL per call"],
    )
    out.compare(search, "nbtrack, SQLite store (opened per call)", times["SQLite per call"])
    return search


def beside_mlflow(
    server: Any, stores: QueryStores, args: argparse.Namespace, root: Path, out: Results
) -> None:
    """The MLflow-comparable query on both stores and through MLflow `search_runs` on PostgreSQL, interleaved."""
    import mlflow
    from mlflow import MlflowClient

    uri = mlflow_url(server, server.new_database())
    started = time.perf_counter()
    experiment_id, how = populate_mlflow(uri, stores.gen, root, args.mlflow_populate)
    print(
        f"\nMLflow {mlflow.__version__} on PostgreSQL populated in {time.perf_counter() - started:.1f} s: {how}"
    )
    client = MlflowClient(uri)

    def ml_search(limit: int | None) -> Callable[[], Any]:
        return lambda: client.search_runs(
            experiment_ids=[experiment_id],
            filter_string=PEER_FILTER,
            order_by=PEER_ORDER,
            max_results=limit if limit is not None else 50_000,
        )

    peer_rows = []
    for limit in (20, None):
        shown = stores.want_peer if limit is None else stores.want_peer[:limit]
        names = [r.info.run_name for r in ml_search(limit)()]
        check(
            names == [f"bench-{r.index}" for r in shown],
            f"MLflow returned {len(names)} runs, not the {len(shown)} expected (limit {limit})",
        )
        t = interleaved(
            {
                "sqlite": query(PEER_WHERE, stores.sqlite_dir, limit),
                "pg": query(PEER_WHERE, stores.pg_url, limit),
                "mlflow": ml_search(limit),
            },
            args.mlflow_repeats,
        )
        what = "top 20" if limit else f"all {len(shown)} matches"
        entry = out.add(
            f"postgres.peer_{'top20' if limit else 'all'}",
            f"`nbtrack.runs` with MLflow's closest filter, {what}, PostgreSQL store, {args.runs:,} runs",
            "s",
            t["pg"],
        )
        out.compare(entry, "MLflow `search_runs`, PostgreSQL backend", t["mlflow"], note="same filter")
        peer_rows.append(
            [
                what,
                f"{fmt_seconds(median(t['sqlite']))} ({spread(t['sqlite'])})",
                f"{fmt_seconds(median(t['pg']))} ({spread(t['pg'])})",
                f"{fmt_seconds(median(t['mlflow']))} ({spread(t['mlflow'])})",
                fmt_ratio(median(t["mlflow"]) / median(t["pg"])),
                fmt_ratio(median(t["mlflow"]) / median(t["sqlite"])),
            ]
        )
    print_beside_mlflow(peer_rows, args.mlflow_repeats)


def print_beside_mlflow(peer_rows: list[list[str]], repeats: int) -> None:
    print(
        f"\n## (2) side by side with MLflow `search_runs` on PostgreSQL, same filter, median (min - max) of "
        f"{repeats} interleaved calls\n"
    )
    print(
        table(
            [
                "query",
                "nbtrack SQLite (per call)",
                "nbtrack PostgreSQL (per call)",
                "MLflow PostgreSQL",
                "MLflow / nbtrack-PG",
                "MLflow / nbtrack-SQLite",
            ],
            peer_rows,
        )
    )
    print(f'\n- nbtrack: where="{PEER_WHERE}", order_by="{MAIN_ORDER}", store=<location> (opened per call)')
    print(
        f'- MLflow:  MlflowClient(uri).search_runs(filter_string="{PEER_FILTER}", order_by={PEER_ORDER}, '
        "max_results=20 / 50000); MLflow params are strings, so `config.lr < 0.01` has no MLflow filter and "
        "both sides filter on `optimizer == 'adam'` instead. MLflow's results were checked to be the "
        "expected runs in the expected order."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help="runs in the query stores (default 10,000)")
    parser.add_argument(
        "--calls", type=int, default=None, help="nbtrack log calls per repeat (default 20,000)"
    )
    parser.add_argument(
        "--mlflow-calls", type=int, default=None, help="MLflow log calls per repeat (default 1,000)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="logging repeats (default 5)")
    parser.add_argument("--warmup-calls", type=int, default=500)
    parser.add_argument("--query-repeats", type=int, default=None, help="timed nbtrack queries (default 15)")
    parser.add_argument("--mlflow-repeats", type=int, default=None, help="timed MLflow searches (default 7)")
    parser.add_argument(
        "--mlflow-populate",
        choices=["auto", "api", "bulk"],
        default="auto",
        help="auto: 200 runs via MlflowClient, the rest through MLflow's SQLAlchemy models (default)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 500 runs, 2,000 / 200 calls, 3 repeats"
    )
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--only", choices=["log", "query"], default=None, help="one part only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tmp", default=None, help="directory for stores and files (default: system temp dir)"
    )
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    q = args.quick
    args.runs = args.runs if args.runs is not None else 500 if q else 10_000
    args.calls = args.calls if args.calls is not None else 2_000 if q else 20_000
    args.mlflow_calls = args.mlflow_calls if args.mlflow_calls is not None else 200 if q else 1_000
    args.repeats = args.repeats if args.repeats is not None else 3 if q else 5
    args.query_repeats = args.query_repeats if args.query_repeats is not None else 5 if q else 15
    args.mlflow_repeats = args.mlflow_repeats if args.mlflow_repeats is not None else 3 if q else 7
    if (
        min(args.runs, args.calls, args.mlflow_calls, args.repeats, args.query_repeats, args.mlflow_repeats)
        <= 0
    ):
        parser.error("sizes and repeats must be positive")

    print("# bench_postgres\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "psycopg", "psycopg-binary", "mlflow", "sqlalchemy"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")
    sizes = (
        f"logging {args.calls:,} calls (MLflow {args.mlflow_calls:,}) x {args.repeats} repeats; query "
        f"{args.runs:,} runs, {args.query_repeats} repeats (MLflow {args.mlflow_repeats})"
    )
    print(f"sizes:    {sizes}{' (--quick: NOT the issue sizes)' if q else ''}")
    results = Results("bench_postgres", quick=q)
    bin_dir = find_pg_bin()
    if bin_dir is None:
        print("PostgreSQL (initdb) not found: install it with `apt-get install postgresql`.")
        return 1
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-pg-", dir=args.tmp) as tmp:
        root = Path(tmp)
        os.environ["NBTRACK_FILES"] = str(root / "files")  # the PostgreSQL stores' run files, not ~/.nbtrack
        server = PgServer(bin_dir)
        started = time.perf_counter()
        try:
            server.start()
            version = subprocess_version(bin_dir)
            print(
                f"postgres: {version}, throwaway cluster on a Unix socket (fsync=off, full_page_writes=off, "
                f"shared_buffers=64MB), started in {time.perf_counter() - started:.1f} s"
            )
            if args.only in (None, "log"):
                bench_logging(server, args, root, results)
            if args.only in (None, "query"):
                bench_query(server, args, root, results)
        finally:
            server.stop()
    results.write(args.json)
    return 0


def subprocess_version(bin_dir: Path) -> str:
    import subprocess

    result = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True)
    return result.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
