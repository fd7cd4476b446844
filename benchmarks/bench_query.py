"""Searching, reading and comparing stored runs at scale (issue #5's targets), with MLflow side by side.

(a) search     a store of --runs runs (default 10,000) x 20 config keys x 10 summary metrics, built through
               the store API (no `nbtrack.init` per run); `nbtrack.runs(project, where, order_by, limit,
               store=<path>)` timed end to end (opening the store included), median of --repeats calls
               after one warm-up. Target: the issue's query with limit=20 <= 100 ms. Informational: the same
               without a limit, a where on config only, every run + `to_pandas()`, and the query on an
               already-open store. Every result is checked against a pure-Python filter over the generated
               data, so a query that silently matches nothing fails the script instead of timing it.
(b) history    one run with --history-points points (default 1,000,000) of one metric;
               `nbtrack.get_run(id, store=<path>).history("loss", samples=2000)`. Target <= 50 ms.
(c) compare    --compare-runs runs (default 50) x --compare-points points (default 100,000) of "loss" and
               "val_loss"; the compare widget's data preparation
               `nbtrack.render.comparison.prepare(nbtrack.runs(project="compare", store=...), keys=[...],
               samples=2000)` (`nbtrack.compare.prepare` in the first version of that module), or, where neither
               exists, `[r.history(keys, samples=2000) for r in runs]` (the row says which; that loop is also
               timed as an informational row). Target <= 1 s.
(d) MLflow     the same runs in an MLflow SQLite tracking database (config as params, summary as metrics,
               tags as tags); `MlflowClient().search_runs` against the closest nbtrack query. MLflow params
               are strings, so `config.lr < 0.01` has no MLflow equivalent: both sides run
               `optimizer == 'adam'` instead (see the printed filters). Median of --mlflow-repeats calls,
               interleaved with nbtrack's. The populated MLflow database is cached under --cache (keyed by
               the parameters), since filling it through MLflow's API takes minutes.

python benchmarks/bench_query.py
python benchmarks/bench_query.py --quick
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import uuid
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
    fmt_ratio,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    short_reason,
    table,
    verdict,
)

quiet_environment()

TARGET_SEARCH_S = 0.100
TARGET_HISTORY_S = 0.050
TARGET_COMPARE_S = 1.0
SAMPLES = 2000
DATA_VERSION = 1  # bump when the generated data changes: it keys the MLflow cache
T0 = 1_700_000_000.0  # fixed, so the data (and the cache) do not depend on when the script runs

# The query, and the filters of the informational rows.
MAIN_WHERE = "config.lr < 0.01 and summary.val_accuracy > 0.9 and state == 'finished' and 'baseline' in tags"
MAIN_ORDER = "-summary.val_accuracy"
CONFIG_WHERE = "config.optimizer == 'adam' and config.batch_size >= 64 and config.augment == true"
# The closest pair MLflow can run: its params are strings, so no numeric comparison on config.
PEER_WHERE = (
    "summary.val_accuracy > 0.9 and config.optimizer == 'adam' and 'baseline' in tags and state == 'finished'"
)
PEER_FILTER = (
    "metrics.val_accuracy > 0.9 and params.optimizer = 'adam' and tags.baseline = 'true' "
    "and attributes.status = 'FINISHED'"
)
PEER_ORDER = ["metrics.val_accuracy DESC"]

STATES = (("finished", 0.90), ("failed", 0.07), ("interrupted", 0.03))
MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


# -- generated data -------------------------------------------------------------------------------
@dataclass
class GenRun:
    index: int
    id: str
    created: float
    duration: float
    state: str
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, float]


def generate_runs(n: int, seed: int) -> list[GenRun]:
    """`n` runs of a plausible sweep: 20 config keys (floats, ints, strings, bools), 10 summary floats."""
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        lr = 10 ** rng.uniform(-5, -1)
        config: dict[str, Any] = {
            "lr": lr,
            "batch_size": rng.choice([16, 32, 64, 128, 256]),
            "epochs": rng.randint(5, 100),
            "units": rng.choice([32, 64, 128, 256, 512]),
            "layers": rng.randint(1, 8),
            "dropout": round(rng.uniform(0.0, 0.5), 3),
            "weight_decay": 10 ** rng.uniform(-6, -2),
            "momentum": rng.choice([0.0, 0.9, 0.95, 0.99]),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
            "activation": rng.choice(["relu", "gelu", "tanh", "swish"]),
            "augment": rng.random() < 0.5,
            "early_stopping": rng.random() < 0.3,
            "patience": rng.randint(2, 10),
            "seed": rng.randint(0, 2**31 - 1),
            "warmup_steps": rng.choice([0, 100, 500, 1000]),
            "label_smoothing": rng.choice([0.0, 0.05, 0.1]),
            "model": rng.choice(["mlp", "cnn", "resnet18", "vit-tiny"]),
            "dataset": rng.choice(["mnist", "fashion_mnist", "cifar10"]),
            "scheduler": rng.choice(["none", "cosine", "step", "plateau"]),
            "loss": "categorical_crossentropy",
        }
        val_accuracy = rng.betavariate(6, 2)  # P(> 0.9) ~ 0.15
        accuracy = min(0.9999, val_accuracy + abs(rng.gauss(0.0, 0.03)))
        val_loss = -math.log(val_accuracy) * 1.5 + abs(rng.gauss(0.0, 0.05))
        summary = {
            "val_accuracy": val_accuracy,
            "accuracy": accuracy,
            "val_loss": val_loss,
            "loss": max(0.001, val_loss - abs(rng.gauss(0.0, 0.1))),
            "val_precision": min(1.0, val_accuracy + rng.gauss(0.0, 0.02)),
            "val_recall": min(1.0, val_accuracy + rng.gauss(0.0, 0.02)),
            "val_auc": min(1.0, 0.5 + val_accuracy / 2 + rng.gauss(0.0, 0.01)),
            "lr_final": lr * rng.choice([1.0, 0.1, 0.01]),
            "epoch_time": rng.uniform(2.0, 120.0),
            "best_epoch": float(rng.randint(1, config["epochs"])),
        }
        tags = ["baseline"] if rng.random() < 0.2 else []
        tags.append(rng.choice(["sweep-a", "sweep-b", "sweep-c"]))
        r = rng.random()
        state = (
            "finished" if r < STATES[0][1] else "failed" if r < STATES[0][1] + STATES[1][1] else "interrupted"
        )
        run_id = "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(8))
        created = T0 + i * 60.0 + rng.uniform(0.0, 30.0)
        runs.append(GenRun(i, run_id, created, rng.uniform(30.0, 3600.0), state, tags, config, summary))
    return runs


def expected(runs: list[GenRun], where: Callable[[GenRun], bool], by: str | None) -> list[GenRun]:
    """The matches in nbtrack's order: `by` descending (summary key), then newest first, then by id."""
    hits = [r for r in runs if where(r)]
    hits.sort(key=lambda r: r.id)
    hits.sort(key=lambda r: r.created, reverse=True)
    if by is not None:
        hits.sort(key=lambda r: r.summary[by], reverse=True)
    return hits


def main_filter(r: GenRun) -> bool:
    return (
        r.config["lr"] < 0.01
        and r.summary["val_accuracy"] > 0.9
        and r.state == "finished"
        and "baseline" in r.tags
    )


def config_filter(r: GenRun) -> bool:
    return r.config["optimizer"] == "adam" and r.config["batch_size"] >= 64 and r.config["augment"] is True


def peer_filter(r: GenRun) -> bool:
    return (
        r.summary["val_accuracy"] > 0.9
        and r.config["optimizer"] == "adam"
        and "baseline" in r.tags
        and r.state == "finished"
    )


def noisy_curve(n: int, seed: int, scale: float = 2.3) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    return scale * np.exp(-5.0 * x / n) + 0.05 + np.abs(rng.normal(0.0, 0.02, n))


# -- building the nbtrack store -------------------------------------------------------------------
def build_store(store_dir: Path, runs: list[GenRun]) -> float:
    from nbtrack.store import open_store
    from nbtrack.store.base import WriteBatch

    started = time.perf_counter()
    store = open_store(store_dir)
    try:
        for r in runs:
            store.create_run(
                run_id=r.id,
                project="bench",
                name=None,
                config=r.config,
                tags=r.tags,
                notes=None,
                created=r.created,
                host="bench",
                pid=0,
            )
            end = r.created + r.duration
            store.write_batch(WriteBatch(r.id, summary=r.summary, state=r.state, ended=end, heartbeat=end))
    finally:
        store.close()
    return time.perf_counter() - started


def add_series_run(store: Any, project: str, run_id: str, created: float, keys: dict[str, Any]) -> None:
    """One finished run holding the given metric arrays (one `write_batch`, steps 0..n-1, 10 ms apart)."""
    import numpy as np

    from nbtrack.store.base import SeriesBatch, WriteBatch

    store.create_run(
        run_id=run_id,
        project=project,
        name=None,
        config={"points": len(next(iter(keys.values())))},
        tags=[],
        notes=None,
        created=created,
        host="bench",
        pid=0,
    )
    series = []
    for key, values in keys.items():
        n = len(values)
        steps = list(range(n))
        times = (created + 0.01 * np.arange(n)).tolist()
        series.append(SeriesBatch(key, steps, times, values.tolist()))
    end = created + 0.01 * n
    last = {key: float(values[-1]) for key, values in keys.items()}
    store.write_batch(
        WriteBatch(run_id, series=series, summary=last, state="finished", ended=end, heartbeat=end)
    )


# -- timing ---------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """(first call, the next `repeats` calls, last result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return first, times, result


def spread(times: list[float]) -> str:
    return f"{fmt_seconds(min(times))} - {fmt_seconds(max(times))}" if times else "-"


def check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(message)


def check_runs(result: Any, want: list[GenRun], limit: int | None, label: str, ordered: bool = True) -> None:
    shown = want if limit is None else want[:limit]
    check(len(want) > 0, f"{label}: the generated data has no match, the query would measure nothing")
    check(len(result) == len(shown), f"{label}: {len(result)} runs returned, {len(shown)} expected")
    check(result.total == len(want), f"{label}: total {result.total}, {len(want)} expected")
    if ordered:
        check(
            result.ids == [r.id for r in shown], f"{label}: runs returned in a different order than expected"
        )
    else:
        check(set(result.ids) == {r.id for r in shown}, f"{label}: different runs than expected")


# -- MLflow ---------------------------------------------------------------------------------------
@dataclass
class Peer:
    version: str = ""
    unavailable: str = ""
    uri: str = ""
    experiment_id: str = ""
    notes: list[str] = field(default_factory=list)


def _mlflow_quiet() -> None:
    import logging

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def _mlflow_payload(r: GenRun) -> tuple[list[Any], list[Any], dict[str, str], int, int]:
    from mlflow.entities import Metric, Param

    start = int(r.created * 1000)
    end = int((r.created + r.duration) * 1000)
    params = [Param(k, str(v)) for k, v in r.config.items()]
    metrics = [Metric(k, float(v), end, 0) for k, v in r.summary.items()]
    tags = {tag: "true" for tag in r.tags}
    return params, metrics, tags, start, end


def _mlflow_populate_api(client: Any, experiment_id: str, runs: list[GenRun]) -> None:
    """MLflow's public client: create_run, one log_batch, set_terminated per run."""
    for r in runs:
        params, metrics, tags, start, end = _mlflow_payload(r)
        run = client.create_run(experiment_id, start_time=start, tags=tags, run_name=f"bench-{r.index}")
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.set_terminated(run.info.run_id, MLFLOW_STATUS[r.state], end_time=end)


def _mlflow_populate_bulk(uri: str, experiment_id: str, artifact_root: str, runs: list[GenRun]) -> None:
    """The rows MLflow's own create_run/log_batch/set_terminated write, inserted through MLflow's SQLAlchemy models
    in one session (runs, tags incl. mlflow.runName, params, metrics, latest_metrics)."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, artifact_root)
    rng = random.Random(len(runs))
    run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
    for r in runs:
        params, metrics, tags, start, end = _mlflow_payload(r)
        run_uuid = uuid.UUID(int=rng.getrandbits(128)).hex
        name = f"bench-{r.index}"
        run_rows.append(
            {
                "run_uuid": run_uuid,
                "name": name,
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "unknown",
                "status": MLFLOW_STATUS[r.state],
                "start_time": start,
                "end_time": end,
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"{artifact_root}/{run_uuid}/artifacts",
                "experiment_id": int(experiment_id),
            }
        )
        tag_rows.append({"key": "mlflow.runName", "value": name, "run_uuid": run_uuid})
        tag_rows += [{"key": k, "value": v, "run_uuid": run_uuid} for k, v in tags.items()]
        param_rows += [{"key": p.key, "value": p.value, "run_uuid": run_uuid} for p in params]
        metric_rows += [
            {
                "key": m.key,
                "value": m.value,
                "timestamp": m.timestamp,
                "step": m.step,
                "is_nan": False,
                "run_uuid": run_uuid,
            }
            for m in metrics
        ]
    with store.ManagedSessionMaker(read_only=False) as session:
        session.bulk_insert_mappings(SqlRun, run_rows)
        session.bulk_insert_mappings(SqlTag, tag_rows)
        session.bulk_insert_mappings(SqlParam, param_rows)
        session.bulk_insert_mappings(SqlMetric, metric_rows)
        session.bulk_insert_mappings(SqlLatestMetric, metric_rows)


def mlflow_database(
    runs: list[GenRun], seed: int, cache: Path | None, tmp: Path, mode: str, budget_s: float
) -> Peer:
    """An MLflow SQLite tracking database holding `runs`: from the cache, or populated now (then cached)."""
    peer = Peer()
    try:
        import mlflow
        from mlflow import MlflowClient

        _mlflow_quiet()
        peer.version = mlflow.__version__
    except BaseException as exc:  # ImportError, or whatever a broken install raises
        if isinstance(exc, KeyboardInterrupt):
            raise
        peer.unavailable = short_reason(exc)
        return peer
    key = f"mlflow{peer.version}-runs{len(runs)}-seed{seed}-v{DATA_VERSION}"
    folder = cache if cache is not None else tmp
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"{key}.db"
    done = folder / f"{key}.done"
    artifact_root = str(folder / f"{key}-artifacts")
    peer.uri = f"sqlite:///{db}"
    if cache is not None and db.exists() and done.exists():
        client = MlflowClient(peer.uri)
        peer.experiment_id = client.get_experiment_by_name("bench").experiment_id
        peer.notes.append(f"MLflow database reused from the cache: {db} ({done.read_text().strip()})")
        return peer
    for stale in (db, done):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    client = MlflowClient(peer.uri)
    peer.experiment_id = client.create_experiment("bench", artifact_location=artifact_root)
    setup_s = time.perf_counter() - started
    head = runs if mode == "api" else runs[: min(200, len(runs))] if mode == "auto" else []
    started = time.perf_counter()
    _mlflow_populate_api(client, peer.experiment_id, head)
    api_s = time.perf_counter() - started
    rest = runs[len(head) :]
    how = (
        f"{len(head):,} runs via MlflowClient (create_run + log_batch + set_terminated) in {api_s:.1f} s"
        if head
        else ""
    )
    if head:
        projected = api_s / len(head) * len(runs)
        how += f" ({len(head) / api_s:,.0f} runs/s; all {len(runs):,} that way: ~{projected:.0f} s)"
    if rest:
        projected = api_s / len(head) * len(rest) if head else math.inf
        started = time.perf_counter()
        if mode == "bulk" or projected > budget_s:
            _mlflow_populate_bulk(peer.uri, peer.experiment_id, artifact_root, rest)
            how += f"{'; the other ' if head else ''}{len(rest):,} runs inserted through MLflow's SQLAlchemy models in one session"
        else:
            _mlflow_populate_api(client, peer.experiment_id, rest)
            how += f"; the other {len(rest):,} via MlflowClient as well"
        how += f" in {time.perf_counter() - started:.1f} s"
    how += f" (schema creation {setup_s:.1f} s)"
    peer.notes.append(f"MLflow database populated: {how}")
    if cache is not None:
        done.write_text(how + "\n")
        peer.notes.append(f"cached as {db}")
    return peer


# -- the benchmark --------------------------------------------------------------------------------
@dataclass
class Row:
    what: str
    target: str
    median_s: float
    times: list[float]
    first_s: float
    result: str
    ok: bool | None = None  # None: informational


def row(
    what: str, first: float, times: list[float], result: str, target: str = "-", limit_s: float | None = None
) -> Row:
    """A timed row; with `limit_s` it has a verdict (median <= limit_s), else it is informational."""
    ok = None if limit_s is None else median(times) <= limit_s
    return Row(what, target, median(times), times, first, result, ok)


@dataclass(frozen=True)
class Sizes:
    n_runs: int
    repeats: int
    peer_repeats: int
    history_points: int
    compare_runs: int
    compare_points: int
    quick: bool


@dataclass
class Setup:
    """What every measurement reads: the generated runs, the store holding them, the function timed."""

    sizes: Sizes
    gen: list[GenRun]
    store_dir: Path
    runs_fn: Callable[..., Any]
    runs_name: str
    history_values: Any = None

    @property
    def path(self) -> str:
        return str(self.store_dir)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help="runs in the search store (default 10,000)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per nbtrack row after a warm-up (default 15)"
    )
    parser.add_argument("--mlflow-repeats", type=int, default=None, help="timed MLflow searches (default 7)")
    parser.add_argument(
        "--history-points", type=int, default=None, help="points of the history run (default 1,000,000)"
    )
    parser.add_argument(
        "--compare-runs", type=int, default=None, help="runs in the compare project (default 50)"
    )
    parser.add_argument(
        "--compare-points", type=int, default=None, help="points per metric per compare run (default 100,000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small smoke run (500 runs, 100k history points, 5 x 10k compare)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow peer")
    parser.add_argument(
        "--mlflow-populate",
        choices=["auto", "api", "bulk"],
        default="auto",
        help="auto: 200 runs via MlflowClient, the rest too if that projects under --mlflow-budget "
        "seconds, else through MLflow's SQLAlchemy models (default auto)",
    )
    parser.add_argument(
        "--mlflow-budget",
        type=float,
        default=300.0,
        help="seconds MLflow's API may take to populate (default 300)",
    )
    parser.add_argument(
        "--cache",
        default=os.path.join(tempfile.gettempdir(), "nbtrack-bench-query-cache"),
        help="where the populated MLflow database is kept between runs (default: <tmp>/nbtrack-bench-query-cache)",
    )
    parser.add_argument("--no-cache", action="store_true", help="populate MLflow afresh and do not keep it")
    parser.add_argument(
        "--tmp", default=None, help="directory for the nbtrack store (default: the system temp dir)"
    )
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    sizes = sizes_of(args)
    if (
        min(
            sizes.n_runs,
            sizes.repeats,
            sizes.peer_repeats,
            sizes.history_points,
            sizes.compare_runs,
            sizes.compare_points,
        )
        <= 0
    ):
        parser.error("sizes and repeats must be positive")
    return args, sizes


def sizes_of(args: argparse.Namespace) -> Sizes:
    """The given sizes, else the --quick or full defaults."""
    quick = args.quick

    def given(value: int | None, small: int, full: int) -> int:
        return value if value is not None else small if quick else full

    return Sizes(
        n_runs=given(args.runs, 500, 10_000),
        repeats=given(args.repeats, 5, 15),
        peer_repeats=given(args.mlflow_repeats, 3, 7),
        history_points=given(args.history_points, 100_000, 1_000_000),
        compare_runs=given(args.compare_runs, 5, 50),
        compare_points=given(args.compare_points, 10_000, 100_000),
        quick=quick,
    )


def print_header(sizes: Sizes) -> tuple[Callable[..., Any], str]:
    """Print the machine and the sizes; returns the search function timed, and its name."""
    print("# bench_query\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "pandas", "mlflow", "sqlalchemy"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")
    import sqlite3

    import nbtrack
    import nbtrack.read.records

    runs_fn = getattr(nbtrack, "runs", None)
    runs_name = "nbtrack.runs"
    if runs_fn is None:
        runs_fn = nbtrack.read.records.runs
        runs_name = "nbtrack.read.records.runs"
        print(
            "note:     `nbtrack.runs` is not exported by this nbtrack; timing `nbtrack.read.records.runs` (the same function)"
        )
    print(f"sqlite:   {sqlite3.sqlite_version}")
    described = (
        f"{sizes.n_runs:,} runs x 20 config keys x 10 summary metrics; history run {sizes.history_points:,} points; "
        f"compare {sizes.compare_runs} runs x {sizes.compare_points:,} points x 2 metrics; {sizes.repeats} repeats"
    )
    print(f"sizes:    {described}{' (--quick: NOT the target sizes)' if sizes.quick else ''}")
    return runs_fn, runs_name


def build_stores(setup: Setup, seed: int) -> None:
    """The search runs, the history run and the compare project, in one store; prints what it took."""
    sizes, store_dir = setup.sizes, setup.store_dir
    build_s = build_store(store_dir, setup.gen)
    print(
        f"nbtrack store: {sizes.n_runs:,} runs created + finished through the store API in {build_s:.1f} s "
        f"({sizes.n_runs / build_s:,.0f} runs/s)"
    )

    from nbtrack.store import open_store

    store = open_store(store_dir)
    started = time.perf_counter()
    setup.history_values = noisy_curve(sizes.history_points, seed)
    add_series_run(store, "history", "history1", T0 - 3600.0, {"loss": setup.history_values})
    history_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(sizes.compare_runs):
        add_series_run(
            store,
            "compare",
            f"cmp{i:05d}",
            T0 - 7200.0 + i * 10.0,
            {
                "loss": noisy_curve(sizes.compare_points, seed + 1 + 2 * i),
                "val_loss": noisy_curve(sizes.compare_points, seed + 2 + 2 * i, scale=2.5),
            },
        )
    compare_build_s = time.perf_counter() - started
    store.close()
    print(
        f"history run: {sizes.history_points:,} points written in {history_s:.1f} s; compare project: "
        f"{sizes.compare_runs} x {sizes.compare_points:,} x 2 points written in {compare_build_s:.1f} s"
    )
    db_size = (store_dir / "nbtrack.db").stat().st_size + sum(
        p.stat().st_size for p in store_dir.glob("nbtrack.db-*")
    )
    print(f"store size: {db_size / 2**20:,.1f} MiB (db + WAL)")


def mlflow_peer(args: argparse.Namespace, gen: list[GenRun], tmp: Path) -> Peer:
    """The MLflow database of the same runs, or why there is none (printed either way)."""
    if args.skip_mlflow:
        return Peer(unavailable="skipped (--skip-mlflow)")
    started = time.perf_counter()
    cache = None if args.no_cache else Path(args.cache)
    try:
        peer = mlflow_database(
            gen, args.seed, cache, tmp / "mlflow", args.mlflow_populate, args.mlflow_budget
        )
    except Exception as exc:
        peer = Peer(unavailable=f"failed: {short_reason(exc)}")
    for note in peer.notes:
        print(note)
    if peer.unavailable:
        print(f"MLflow: unavailable: {peer.unavailable}")
    else:
        print(f"MLflow {peer.version} database ready in {time.perf_counter() - started:.1f} s")
    return peer


# -- (a) search -----------------------------------------------------------------------------------
def measure_search(setup: Setup) -> list[Row]:
    """The issue's query through `runs` (limited, unlimited, on an open store) and where its time goes."""
    runs_fn, path, repeats = setup.runs_fn, setup.path, setup.sizes.repeats
    want_main = expected(setup.gen, main_filter, "val_accuracy")
    want_config = expected(setup.gen, config_filter, None)
    want_peer = expected(setup.gen, peer_filter, "val_accuracy")
    print(
        f"\nmatches in the generated data: issue query {len(want_main):,}, config-only {len(want_config):,}, "
        f"MLflow-comparable query {len(want_peer):,} (of {setup.sizes.n_runs:,})"
    )
    rows = []
    first, times, result = timed(
        lambda: runs_fn(project="bench", where=MAIN_WHERE, order_by=MAIN_ORDER, limit=20, store=path), repeats
    )
    check_runs(result, want_main, 20, "issue query, limit 20")
    what = f"`{setup.runs_name}(where=<issue query>, order_by='{MAIN_ORDER}', limit=20)`"
    target = f"<= {TARGET_SEARCH_S * 1000:.0f} ms"
    rows.append(
        row(what, first, times, f"{len(result)} of {result.total:,} matches", target, TARGET_SEARCH_S)
    )

    first, times, result = timed(
        lambda: runs_fn(project="bench", where=MAIN_WHERE, order_by=MAIN_ORDER, store=path), repeats
    )
    check_runs(result, want_main, None, "issue query, no limit")
    rows.append(row("same, no limit (every match materialised)", first, times, f"{len(result):,} runs"))
    rows += measure_open_store(setup, want_main)
    first, times, result = timed(lambda: runs_fn(project="bench", where=CONFIG_WHERE, store=path), repeats)
    check_runs(result, want_config, None, "config-only query")
    rows.append(
        row(f'`where="{CONFIG_WHERE}"` (config only, no limit)', first, times, f"{len(result):,} runs")
    )
    return rows + measure_all_runs(setup)


def measure_open_store(setup: Setup, want_main: list[GenRun]) -> list[Row]:
    """The issue's query on an already-open store, and its two halves: `runs` with a limit also counts every
    match (RunList.total)."""
    from nbtrack.store import open_store
    from nbtrack.store.base import RunQuery
    from nbtrack.store.query import parse, parse_order

    repeats = setup.sizes.repeats
    opened = open_store(setup.store_dir, create=False)
    first, times, result = timed(
        lambda: setup.runs_fn(project="bench", where=MAIN_WHERE, order_by=MAIN_ORDER, limit=20, store=opened),
        repeats,
    )
    check_runs(result, want_main, 20, "issue query, open store")
    rows = [
        row(
            "same as the first row, on an already-open `Store` (no open/migrate check per call)",
            first,
            times,
            f"{len(result)} of {result.total:,}",
        )
    ]
    query = RunQuery(project="bench", where=parse(MAIN_WHERE), order=parse_order(MAIN_ORDER), limit=20)
    first, times, records = timed(lambda: opened.search_runs(query), repeats)
    check([r.id for r in records] == [r.id for r in want_main[:20]], "store.search_runs: unexpected runs")
    rows.append(
        row(
            "of which `store.search_runs(query, limit=20)` (open store)", first, times, f"{len(records)} runs"
        )
    )
    first, times, count = timed(lambda: opened.count_runs(query), repeats)
    check(count == len(want_main), f"store.count_runs: {count}, {len(want_main)} expected")
    rows.append(
        row("of which `store.count_runs(query)` (RunList.total, open store)", first, times, f"{count:,}")
    )
    return rows


def measure_all_runs(setup: Setup) -> list[Row]:
    """Every run of the project, then the same as a pandas frame."""
    n_runs, repeats = setup.sizes.n_runs, setup.sizes.repeats

    def all_runs() -> Any:
        return setup.runs_fn(project="bench", limit=None, store=setup.path)

    first, times, result = timed(all_runs, repeats)
    check(
        len(result) == n_runs and result.total == n_runs,
        f"all runs: {len(result)} returned, {n_runs} expected",
    )
    rows = [row("`runs(project='bench', limit=None)` (every run)", first, times, f"{len(result):,} runs")]
    pandas_repeats = max(3, repeats // 3)
    try:
        first, times, frame = timed(lambda: all_runs().to_pandas(), pandas_repeats)
    except ImportError as exc:
        unavailable = f"unavailable: {short_reason(exc)}"
        return [*rows, Row("same + `.to_pandas()`", "-", math.nan, [], math.nan, unavailable, None)]
    config_cols = [c for c in frame.columns if c.startswith("config.")]
    summary_cols = [c for c in frame.columns if c.startswith("summary.")]
    check(
        frame.shape[0] == n_runs and len(config_cols) == 20 and len(summary_cols) == 10,
        f"to_pandas: shape {frame.shape}, {len(config_cols)} config and {len(summary_cols)} summary columns",
    )
    what = f"same + `.to_pandas()` (median of {pandas_repeats})"
    return [*rows, row(what, first, times, f"{frame.shape[0]:,} x {frame.shape[1]} frame")]


# -- (b) history ----------------------------------------------------------------------------------
def measure_history(setup: Setup) -> Row:
    """One metric of --history-points points reduced to SAMPLES for a chart."""
    import nbtrack

    def history() -> Any:
        return nbtrack.get_run("history1", store=setup.path).history("loss", samples=SAMPLES)

    first, times, reduced = timed(history, setup.sizes.repeats)
    values = setup.history_values
    check(0 < len(reduced) <= SAMPLES, f"history: {len(reduced)} points returned for samples={SAMPLES}")
    check(
        float(reduced.value.min()) == float(values.min())
        and float(reduced.value.max()) == float(values.max()),
        "history: the reduced series lost the minimum or the maximum",
    )
    what = f"`get_run(id, store=path).history('loss', samples={SAMPLES})` over {setup.sizes.history_points:,} points"
    target = f"<= {TARGET_HISTORY_S * 1000:.0f} ms"
    return row(what, first, times, f"{len(reduced):,} points", target, TARGET_HISTORY_S)


# -- (c) compare ----------------------------------------------------------------------------------
COMPARE_KEYS = ["loss", "val_loss"]


def compare_prepare(setup: Setup) -> tuple[Callable[[], Any] | None, str]:
    """`prepare` from nbtrack.render.comparison (or nbtrack.compare, its first name), and where it came from."""
    import importlib

    reasons = []
    for module in ("nbtrack.render.comparison", "nbtrack.compare"):
        try:
            prepare = importlib.import_module(module).prepare
        except (ImportError, AttributeError, TypeError) as exc:
            reasons.append(f"{module}: {short_reason(exc)}")
            continue
        return (
            lambda prepare=prepare: prepare(
                setup.runs_fn(project="compare", store=setup.path), keys=COMPARE_KEYS, samples=SAMPLES
            )
        ), module
    return None, "; ".join(reasons)


def check_charts(charts: Any, compare_runs: int) -> None:
    check(
        len(charts) == len(COMPARE_KEYS),
        f"compare.prepare: {len(charts)} charts, {len(COMPARE_KEYS)} expected",
    )
    for chart in charts:
        check(
            len(chart.lines) == compare_runs,
            f"compare.prepare: {len(chart.lines)} lines in {chart.family}, {compare_runs} expected",
        )
        check(
            all(0 < len(line.y) <= SAMPLES for line in chart.lines),
            f"compare.prepare: a line of {chart.family} is empty or over {SAMPLES} points",
        )


def measure_compare(setup: Setup) -> list[Row]:
    """The compare widget's data preparation, and reading the same histories without it."""
    sizes, keys, repeats = setup.sizes, COMPARE_KEYS, setup.sizes.repeats
    size = f"{sizes.compare_runs} runs x {sizes.compare_points:,} points x {len(keys)} metrics"
    target = f"<= {TARGET_COMPARE_S:.0f} s"
    prepare_fn, prepare_from = compare_prepare(setup)
    print(
        f"\ncompare data preparation: {prepare_from + '.prepare' if prepare_fn else 'unavailable (' + prepare_from + ')'}"
    )
    rows = []
    if prepare_fn is not None:
        try:
            first, times, charts = timed(prepare_fn, repeats)
            check_charts(charts, sizes.compare_runs)
            what = (
                f"`{prepare_from}.prepare(runs(project='compare'), keys={keys}, samples={SAMPLES})`, {size}"
            )
            charted = f"{len(charts)} charts x {sizes.compare_runs} lines"
            rows.append(row(what, first, times, charted, target, TARGET_COMPARE_S))
        except Exception as exc:
            print(
                f"\n{prepare_from}.prepare failed ({short_reason(exc)}); timing the fallback as the target row"
            )

    def compare_fallback() -> Any:
        return [r.history(keys, samples=SAMPLES) for r in setup.runs_fn(project="compare", store=setup.path)]

    first, times, prepared = timed(compare_fallback, repeats)
    check(
        len(prepared) == sizes.compare_runs, f"compare: {len(prepared)} runs, {sizes.compare_runs} expected"
    )
    check(
        all(0 < len(h[k]) <= SAMPLES for h in prepared for k in keys),
        "compare: a history is empty or too long",
    )
    fallback_label = f"`[r.history({keys}, samples={SAMPLES}) for r in runs(project='compare')]`"
    read = f"{sizes.compare_runs} runs x {len(keys)} series"
    if rows:
        return [
            *rows,
            row(f"reading the same histories without `prepare`: {fallback_label}", first, times, read),
        ]
    what = f"FALLBACK, no working `nbtrack.render.comparison.prepare`: {fallback_label}, {size}"
    return [row(what, first, times, read, target, TARGET_COMPARE_S)]


# -- (d) MLflow -----------------------------------------------------------------------------------
PeerSample = tuple[int | None, int, list[float], list[float]]  # limit, matches, nbtrack times, MLflow times


def measure_peer(setup: Setup, peer: Peer) -> tuple[list[list[str]], list[PeerSample]]:
    """MLflow's `search_runs` and nbtrack's closest query side by side, interleaved: table rows and samples."""
    from mlflow import MlflowClient

    client = MlflowClient(peer.uri)
    want_peer = expected(setup.gen, peer_filter, "val_accuracy")

    def ml_search(limit: int | None) -> Any:
        return client.search_runs(
            experiment_ids=[peer.experiment_id],
            filter_string=PEER_FILTER,
            order_by=PEER_ORDER,
            max_results=limit if limit is not None else 50_000,
        )

    def nb_search(limit: int | None) -> Any:
        return setup.runs_fn(
            project="bench", where=PEER_WHERE, order_by=MAIN_ORDER, limit=limit, store=setup.path
        )

    peer_rows, peer_samples = [], []
    for limit in (20, None):
        shown = want_peer if limit is None else want_peer[:limit]
        ml_names = [run.info.run_name for run in ml_search(limit)]  # warm-up, and the check
        check(
            ml_names == [f"bench-{r.index}" for r in shown],
            f"MLflow returned {len(ml_names)} runs, not the {len(shown)} expected (limit {limit})",
        )
        check_runs(nb_search(limit), want_peer, limit, f"MLflow-comparable query, limit {limit}")
        nb_times, ml_times = interleaved(nb_search, ml_search, limit, setup.sizes.peer_repeats)
        peer_samples.append((limit, len(shown), nb_times, ml_times))
        peer_rows.append(
            [
                "top 20" if limit else f"all {len(shown):,} matches",
                f"{fmt_seconds(median(nb_times))} ({spread(nb_times)})",
                f"{fmt_seconds(median(ml_times))} ({spread(ml_times)})",
                fmt_ratio(median(ml_times) / median(nb_times)),
            ]
        )
    return peer_rows, peer_samples


def interleaved(
    ours: Callable[[Any], Any], theirs: Callable[[Any], Any], arg: Any, repeats: int
) -> tuple[list[float], list[float]]:
    """Times of `ours(arg)` and `theirs(arg)`, called in turn (which goes first alternates)."""
    times: dict[Any, list[float]] = {ours: [], theirs: []}
    for i in range(repeats):
        for fn in (theirs, ours) if i % 2 else (ours, theirs):
            started = time.perf_counter()
            fn(arg)
            times[fn].append(time.perf_counter() - started)
    return times[ours], times[theirs]


# -- printing -------------------------------------------------------------------------------------
def print_rows(rows: list[Row], repeats: int) -> None:
    print(f"\n## (a)-(c) nbtrack: median of {repeats} calls after a warm-up (first call shown apart)\n")
    print(
        table(
            ["measurement", "target", "median", "min - max", "first call", "result", "verdict"],
            [
                [
                    r.what,
                    r.target,
                    fmt_seconds(r.median_s),
                    spread(r.times),
                    fmt_seconds(r.first_s),
                    r.result,
                    "-" if r.ok is None else verdict(r.ok),
                ]
                for r in rows
            ],
            align="lllrrrl",
        )
    )
    print(f'\nissue query: where="{MAIN_WHERE}"')
    print(
        "every result above was checked against a pure-Python filter over the generated data "
        "(ids, order and totals)"
    )


def print_peer(setup: Setup, peer: Peer, peer_rows: list[list[str]]) -> None:
    print(
        f"\n## (d) side by side: MLflow (SQLite backend) on the same {setup.sizes.n_runs:,} runs, median of "
        f"{setup.sizes.peer_repeats} interleaved calls each\n"
    )
    if peer.unavailable:
        reason = peer.unavailable
        if reason.startswith(("ModuleNotFoundError", "ImportError")):
            reason = f"not installed ({reason})"
        print(
            table(
                ["query", f"nbtrack ({setup.runs_name})", "MLflow search_runs", "MLflow / nbtrack"],
                [["-", "-", reason, "-"]],
            )
        )
        return
    print(
        table(
            [
                "query (same filter both sides, ordered by val_accuracy desc)",
                f"nbtrack {setup.runs_name}",
                "MLflow search_runs",
                "MLflow / nbtrack",
            ],
            peer_rows,
        )
    )
    print(f'\n- nbtrack: where="{PEER_WHERE}", order_by="{MAIN_ORDER}", store=<path> (opened per call)')
    print(
        f'- MLflow:  MlflowClient().search_runs(filter_string="{PEER_FILTER}", order_by={PEER_ORDER}, '
        "max_results=20 / 50000)"
    )
    print(
        "- MLflow params are strings, so the issue's `config.lr < 0.01` has no MLflow filter; both sides filter on "
        "`optimizer == 'adam'` instead. nbtrack's tag list ['baseline', 'sweep-a'] is MLflow tags "
        "baseline=true, sweep-a=true; config is params (str(value)), summary is metrics (step 0), states are "
        "FINISHED/FAILED/KILLED. Both return full runs (config/params, summary/metrics, tags); MLflow's were "
        "checked to be the expected runs in the expected order."
    )


def print_targets(rows: list[Row], peer_rows: list[list[str]], quick: bool) -> None:
    print("\n## Targets\n")
    for r in rows:
        if r.ok is not None:
            size_note = " (--quick sizes, not the target's)" if quick else ""
            print(f"- {r.what} {r.target}: {fmt_seconds(r.median_s)} median -> {verdict(r.ok)}{size_note}")
    if peer_rows:
        print(
            f"- MLflow search_runs / nbtrack, same filter: {peer_rows[0][3]} (top 20), {peer_rows[1][3]} (all matches)"
        )


def main(argv: list[str] | None = None) -> int:
    args, sizes = parse_args(argv)
    runs_fn, runs_name = print_header(sizes)
    started = time.perf_counter()
    gen = generate_runs(sizes.n_runs, args.seed)
    print(f"\ngenerated {sizes.n_runs:,} runs in {time.perf_counter() - started:.1f} s (seed {args.seed})")

    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-query-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        setup = Setup(sizes, gen, tmp / "store", runs_fn, runs_name)
        build_stores(setup, args.seed)
        peer = mlflow_peer(args, gen, tmp)
        rows = [*measure_search(setup), measure_history(setup), *measure_compare(setup)]
        peer_rows, peer_samples = measure_peer(setup, peer) if not peer.unavailable else ([], [])

    print_rows(rows, sizes.repeats)
    print_peer(setup, peer, peer_rows)
    print_targets(rows, peer_rows, sizes.quick)
    record(rows, peer, peer_samples, sizes.n_runs, sizes.quick).write(args.json)
    return 0


def record(
    rows: list[Row],
    peer: Peer | None,
    peer_samples: list[tuple[int | None, int, list[float], list[float]]],
    n_runs: int,
    quick: bool,
) -> Results:
    """The rows and the MLflow comparison as --json measurements."""
    results = Results("bench_query", quick=quick)
    for i, r in enumerate(rows):
        if i == 0:
            key = "query.search"
        elif r.what.startswith("`get_run("):
            key = "query.history"
        elif r.ok is not None and "compare" in r.what or "FALLBACK" in r.what:
            key = "query.compare"
        else:
            key = f"query.row{i}"
        if not r.times:
            results.unavailable(key, r.what, "s", r.result)
            continue
        results.add(key, f"{r.what} ({n_runs:,} runs)" if i == 0 else r.what, "s", r.times, note=r.result)
    for limit, matches, nb_times, ml_times in peer_samples:
        what = "top 20" if limit else f"all {matches:,} matches"
        entry = results.add(
            f"query.peer_{'top20' if limit else 'all'}",
            f"`nbtrack.runs` with MLflow's closest filter (optimizer == 'adam' for lr < 0.01), {what}, {n_runs:,} runs",
            "s",
            nb_times,
        )
        results.compare(
            entry, "MLflow `search_runs` (SQLite backend)", ml_times, note="same filter, interleaved"
        )
    if not peer_samples:
        reason = peer.unavailable if peer is not None and peer.unavailable else "not run"
        for entry in results.measurements[:1]:
            results.compare(entry, "MLflow `search_runs` (SQLite backend)", unavailable=reason)
    return results


if __name__ == "__main__":
    sys.exit(main())
