"""Sweep controller overhead and agent throughput (issue #7's benchmark), with Optuna alone side by side.

(1) overhead   a random and a bayes sweep (5 parameters: log-uniform, uniform, int, two categoricals) whose store
               already holds --trials finished trials with values (default 1,000), filled either by
               `run_trials` with a function that only logs the metric (--fill trials, the default: every trial
               is a real run; the fill is timed in blocks, so it also shows how the per-trial rate changes as the
               sweep grows) or by `store.claim_trial` + `store.update_trial` without runs (--fill store). Then
               the controller's work per additional trial, median of --repeats:
                 claim only   `store.claim_trial(sweep.id, worker, planner.propose)` with a fresh `Planner` (cold:
                              what the first trial of every `run_trials` call / agent start / resume pays) and
                              with a warm one (what later trials of the same call pay); the trial is then marked
                              finished with a value, untimed.
                 whole loop   `run_trials` with a function that logs the metric once: claim + `nbtrack.init` +
                              `update_trial` + the function + `run.finish` + `update_trial`, minus the function's
                              own time. Cold: one `run_trials(count=1)` call. Warm: the time between consecutive
                              trials of one `run_trials(count=repeats + 1)` call (its `on_trial` hook).
               Target: < 50 ms per trial. Side by side, Optuna alone: an in-memory study holding the same
               trials, `study.ask(distributions)` + `study.tell(trial, value)` with the TPE settings nbtrack uses
               (`TPESampler(seed, n_startup_trials=5, multivariate=True)`) and with Optuna's default TPE; and what
               a cold planner does (a new study, `add_trial` x N, ask + tell).
(2) agents     a grid sweep of --grid points (default 300 = 15 x 20) `create`d in one SQLite store; W processes
               `python -m nbtrack agent ID --function agent_target:train` (train logs the metric once), for W in
               --workers (default 1 and 3). Trials/s overall (first claim to last trial end, from the store's
               trial times) and per worker; every grid point must have run exactly once (asserted).

Both parts run with a fresh temporary git repository (one commit) as the working directory, as a project
would: every run captures its git state (4 `git` calls) on a side thread that `finish` waits for (--no-git: a
plain directory). Optuna must be importable (bayes needs it).

python benchmarks/bench_sweep.py
python benchmarks/bench_sweep.py --quick
python benchmarks/bench_sweep.py --profile      # + cProfile of a cold bayes claim and of warm bayes trials
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    QUIET_ENV,
    REPO_ROOT,
    Results,
    fmt_ratio,
    fmt_seconds,
    machine_lines,
    median,
    quiet_environment,
    table,
    verdict,
)

quiet_environment()

TARGET_S = 0.050
METRIC = "val_loss"
PARAMETERS: dict[str, Any] = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "dropout": {"min": 0.0, "max": 0.5},
    "units": {"values": [32, 64, 128, 256, 512]},
    "layers": {"distribution": "int_uniform", "min": 1, "max": 8},
    "optimizer": {"values": ["adam", "sgd", "rmsprop"]},
}
OPTIMIZER_PENALTY = {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.1}

AGENT_MODULE = """
import nbtrack


def train(config):
    nbtrack.log({"val_loss": config["a"] * 100 + config["b"]})
"""


def sweep_config(method: str) -> dict[str, Any]:
    return {"method": method, "metric": {"name": METRIC, "goal": "minimize"}, "parameters": PARAMETERS}


def objective(config: dict[str, Any]) -> float:
    """A smooth synthetic loss with its optimum at lr=1e-3, dropout=0.2, 128 units, adam."""
    return (
        (math.log10(config["lr"]) + 3) ** 2
        + 4 * (config["dropout"] - 0.2) ** 2
        + 0.1 * abs(math.log2(config["units"]) - 7)
        + 0.05 * config["layers"]
        + OPTIMIZER_PENALTY[config["optimizer"]]
    )


class Train:
    """The sweep function: logs the objective once; keeps its own duration, so it can be taken out."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, config: dict[str, Any]) -> None:
        import nbtrack

        started = time.perf_counter()
        nbtrack.log({METRIC: objective(config)})
        self.times.append(time.perf_counter() - started)


def spread(times: list[float]) -> str:
    return f"{fmt_seconds(min(times))} - {fmt_seconds(max(times))}" if times else "-"


def check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(message)


# -- instrumentation: wraps store methods, nbtrack.init and Run.finish (nbtrack itself is not changed) ----
@contextmanager
def instrumented(store: Any) -> Any:
    """Record the duration of each claim_trial (and of the propose inside it), update_trial, init and finish."""
    import nbtrack
    import nbtrack.capture.environment
    import nbtrack.run

    calls: dict[str, list[float]] = {
        k: [] for k in ("claim", "propose", "init", "update", "finish", "finish_writer", "capture")
    }
    real_claim, real_update = store.claim_trial, store.update_trial
    real_init, real_finish = nbtrack.init, nbtrack.run.Run.finish
    real_capture = nbtrack.capture.environment.capture

    def capture(*a: Any, **k: Any) -> Any:  # on the run's side thread; Run.__init__ imports it per run
        started = time.perf_counter()
        try:
            return real_capture(*a, **k)
        finally:
            calls["capture"].append(time.perf_counter() - started)

    def claim_trial(sweep_id: str, worker: str, propose: Callable[..., Any]) -> Any:
        def timed_propose(trials: Any) -> Any:
            started = time.perf_counter()
            try:
                return propose(trials)
            finally:
                calls["propose"].append(time.perf_counter() - started)

        started = time.perf_counter()
        try:
            return real_claim(sweep_id, worker, timed_propose)
        finally:
            calls["claim"].append(time.perf_counter() - started)

    def update_trial(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_update(*a, **k)
        finally:
            calls["update"].append(time.perf_counter() - started)

    def init(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_init(*a, **k)
        finally:
            calls["init"].append(time.perf_counter() - started)

    def finish(self: Any, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        writer = self._writer  # the final flush and the environment capture it waits for
        real_close = writer.close

        def close(*ca: Any, **ck: Any) -> Any:
            began = time.perf_counter()
            try:
                return real_close(*ca, **ck)
            finally:
                calls["finish_writer"].append(time.perf_counter() - began)

        writer.close = close
        try:
            return real_finish(self, *a, **k)
        finally:
            calls["finish"].append(time.perf_counter() - started)

    store.claim_trial, store.update_trial = claim_trial, update_trial
    nbtrack.init, nbtrack.run.Run.finish = init, finish
    nbtrack.capture.environment.capture = capture
    try:
        yield calls
    finally:
        del store.claim_trial, store.update_trial  # back to the class's methods
        nbtrack.init, nbtrack.run.Run.finish = real_init, real_finish
        nbtrack.capture.environment.capture = real_capture


# -- (1) controller overhead ----------------------------------------------------------------------
@dataclass
class Measure:
    what: str
    times: list[float]
    first: float | None = None  # a warm-up call, shown apart
    target: bool = True
    note: str = ""


@dataclass
class MethodResult:
    method: str
    fill_how: str = ""
    fill_s: float = math.nan
    fill_blocks: list[tuple[str, float, float]] = field(default_factory=list)  # (trials, rate, median)
    trials_at_start: int = 0
    trials_at_end: int = 0
    rows: list[Measure] = field(default_factory=list)
    breakdown: list[tuple[str, float, float]] = field(
        default_factory=list
    )  # (part, cold median, warm median)
    optuna_trials: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    resources: str = ""


def resources(store: Any) -> str:
    """What the process holds after the fill: the store's SQLite connections, open file descriptors, peak RSS."""
    import resource

    held = len(getattr(store, "_connections", []))
    try:
        fds = str(len(os.listdir("/proc/self/fd")))
    except OSError:
        fds = "?"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"store connections open {held:,}, process file descriptors {fds}, peak RSS {rss:,.0f} MB"


def fill_with_trials(sweep: Any, n: int, block: int) -> tuple[float, list[tuple[str, float, float]]]:
    """`run_trials(sweep, train, count=n)`, timed per block of trials through the on_trial hook."""
    from nbtrack.sweeps import run_trials

    marks: list[float] = []
    started = time.perf_counter()
    ran = run_trials(sweep, Train(), count=n, on_trial=lambda s, r: marks.append(time.perf_counter()))
    total = time.perf_counter() - started
    check(ran == n, f"fill: {ran} trials ran, {n} expected")
    marks.append(started + total)
    blocks = []
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        steps = [marks[i + 1] - marks[i] for i in range(lo, hi)]
        span = marks[hi] - marks[lo]
        blocks.append((f"{lo:,}-{hi:,}", (hi - lo) / span if span > 0 else math.nan, median(steps)))
    return total, blocks


def fill_with_store(sweep: Any, n: int, seed: int) -> float:
    """`store.claim_trial` (parameters sampled) + `store.update_trial` (finished, with a value), no runs."""
    import numpy as np

    store, spec = sweep.store, sweep.spec
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(n):
        trial = store.claim_trial(sweep.id, "filler", lambda trials: (spec.sample(rng), None))
        store.update_trial(
            sweep.id, trial.number, state="finished", value=objective(trial.params), ended=time.time()
        )
    return time.perf_counter() - started


def finish_claimed(sweep: Any, trial: Any) -> None:
    sweep.store.update_trial(
        sweep.id, trial.number, state="finished", value=objective(trial.params), ended=time.time()
    )


def measure_method(
    method: str, n: int, repeats: int, fill: str, block: int, seed: int, tmp: Path
) -> MethodResult:
    from nbtrack.store import open_store
    from nbtrack.sweeps import create

    result = MethodResult(method)
    store = open_store(tmp / f"store-{method}")
    sweep = create(sweep_config(method), project=f"bench-{method}", seed=seed, store=store)
    fill_sweep(result, sweep, n, fill, block, seed)
    cold_propose, warm_propose = measure_claims(result, sweep, repeats)
    # reading + decoding every trial (what each claim does before proposing), outside a transaction
    reads = []
    for _ in range(repeats):
        started = time.perf_counter()
        store.trials(sweep.id)
        reads.append(time.perf_counter() - started)
    cold_calls, warm_calls = measure_loops(result, sweep, repeats)
    trials = sweep.trials()
    check(
        all(t.state == "finished" and t.value is not None for t in trials), "a measured trial did not finish"
    )
    result.trials_at_end = len(trials)

    # where the per-trial time goes (medians of the instrumented calls)
    cold_parts, warm_parts = loop_parts(cold_calls, False), loop_parts(warm_calls, True)
    result.breakdown = [(name, cold_parts[name], warm_parts[name]) for name in cold_parts]
    result.breakdown.append(
        ("(claim only) `planner.propose`, in the claims above", median(cold_propose), median(warm_propose))
    )
    result.breakdown.append(
        ("(claim only) `store.trials(id)`: read + decode every trial", math.nan, median(reads))
    )
    store.close()
    return result


def fill_sweep(result: MethodResult, sweep: Any, n: int, fill: str, block: int, seed: int) -> None:
    """Give the sweep `n` finished trials with values, the --fill way; note how and what the process holds."""
    method = result.method
    print(f"\n[{method}] filling sweep {sweep.id} with {n:,} trials ({fill}) ...", flush=True)
    if fill == "trials":
        result.fill_s, result.fill_blocks = fill_with_trials(sweep, n, block)
        result.fill_how = (
            f"`run_trials(sweep, train, count={n:,})`, train logs the metric once (each trial a full run)"
        )
    else:
        result.fill_s = fill_with_store(sweep, n, seed)
        result.fill_how = f"`store.claim_trial` + `store.update_trial` x {n:,}, no runs"
    trials = sweep.trials()
    check(
        len(trials) == n and all(t.state == "finished" and t.value is not None for t in trials),
        f"fill: {len(trials)} trials, not {n} finished ones with values",
    )
    result.trials_at_start = len(trials)
    result.resources = resources(sweep.store)
    result.optuna_trials = [(t.params, float(t.value)) for t in trials]  # type: ignore[arg-type]
    print(f"[{method}] filled in {result.fill_s:.1f} s ({n / result.fill_s:,.1f} trials/s)", flush=True)


def measure_claims(result: MethodResult, sweep: Any, repeats: int) -> tuple[list[float], list[float]]:
    """Claim only, with a cold and with a warm planner; returns the times `planner.propose` took in each."""
    from nbtrack.sweeps import Planner

    store, worker = sweep.store, "bench:claim"
    cold = []
    with instrumented(store) as calls:
        for _ in range(repeats):
            planner = Planner(sweep.spec, sweep.seed)
            started = time.perf_counter()
            trial = store.claim_trial(sweep.id, worker, planner.propose)
            cold.append(time.perf_counter() - started)
            check(trial is not None, "claim returned no trial")
            finish_claimed(sweep, trial)
        cold_propose = list(calls["propose"])
    result.rows.append(Measure("claim only, cold `Planner` (first trial of a `run_trials` call)", cold))

    warm = []
    planner = Planner(sweep.spec, sweep.seed)
    with instrumented(store) as calls:
        started = time.perf_counter()
        trial = store.claim_trial(sweep.id, worker, planner.propose)
        first = time.perf_counter() - started
        finish_claimed(sweep, trial)
        for _ in range(repeats):
            started = time.perf_counter()
            trial = store.claim_trial(sweep.id, worker, planner.propose)
            warm.append(time.perf_counter() - started)
            finish_claimed(sweep, trial)
        warm_propose = calls["propose"][1:]
    result.rows.append(Measure("claim only, warm `Planner` (later trials of the call)", warm, first))
    return cold_propose, warm_propose


def measure_loops(
    result: MethodResult, sweep: Any, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The whole per-trial loop, cold (`run_trials(count=1)`) and warm (between trials of one call), minus the
    trial function's own time; returns the instrumented calls of each."""
    from nbtrack.sweeps import run_trials

    loop_cold: list[float] = []
    with instrumented(sweep.store) as cold_calls:
        for _ in range(repeats):
            train = Train()
            started = time.perf_counter()
            ran = run_trials(sweep, train, count=1)
            loop_cold.append(time.perf_counter() - started - sum(train.times))
            check(ran == 1, "run_trials(count=1) ran no trial")
    result.rows.append(Measure("per-trial loop, cold (`run_trials(count=1)` minus the function)", loop_cold))

    train = Train()
    marks: list[float] = []
    with instrumented(sweep.store) as warm_calls:
        ran = run_trials(
            sweep, train, count=repeats + 1, on_trial=lambda s, r: marks.append(time.perf_counter())
        )
        check(ran == repeats + 1, f"run_trials ran {ran} trials, {repeats + 1} expected")
    loop_warm = [marks[i + 1] - marks[i] - train.times[i] for i in range(repeats)]
    result.rows.append(
        Measure(
            "per-trial loop, warm (between trials of one `run_trials` call, minus the function)", loop_warm
        )
    )
    return cold_calls, warm_calls


def loop_parts(calls: dict[str, list[float]], skip_first: bool) -> dict[str, float]:
    """Median time of each part of the per-trial loop, from instrumented calls."""
    k = 1 if skip_first else 0
    updates = calls["update"][2 * k :]
    return {
        "claim_trial (store transaction)": median(calls["claim"][k:]),
        "  of which `planner.propose` (inside the transaction)": median(calls["propose"][k:]),
        "`nbtrack.init` (run row, writer + capture threads, system sampler)": median(calls["init"][k:]),
        "`update_trial` x 2 (run id; end state + value)": median(updates[0::2]) + median(updates[1::2]),
        "`run.finish`": median(calls["finish"][k:]),
        "  of which the writer's close (waits for the env capture + final flush)": median(
            calls["finish_writer"][k:]
        ),
        "  environment capture (git, packages...; side thread from init, finish waits for it)": median(
            calls["capture"][k:]
        ),
    }


def optuna_side(method_result: MethodResult, repeats: int, seed: int) -> tuple[list[Measure], str]:
    """Optuna alone on the same trials: ask + tell on an in-memory study, and what a cold planner does."""
    import optuna
    import optuna.distributions as D

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {
        "lr": D.FloatDistribution(1e-5, 1e-1, log=True),
        "dropout": D.FloatDistribution(0.0, 0.5),
        "units": D.CategoricalDistribution([32, 64, 128, 256, 512]),
        "layers": D.IntDistribution(1, 8),
        "optimizer": D.CategoricalDistribution(["adam", "sgd", "rmsprop"]),
    }
    history = method_result.optuna_trials
    n = len(history)

    def new_study(sampler: Any) -> Any:
        study = optuna.create_study(direction="minimize", sampler=sampler)
        for params, value in history:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
        return study

    def ask_tell(study: Any) -> None:
        trial = study.ask(dists)
        study.tell(trial, objective(trial.params))

    rows = []
    for label, make in (
        (
            "nbtrack's TPE settings (multivariate, 5 startup trials)",
            lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True),
        ),
        ("Optuna's default TPE", lambda: optuna.samplers.TPESampler(seed=seed)),
    ):
        build_started = time.perf_counter()
        study = new_study(make())
        build = time.perf_counter() - build_started
        started = time.perf_counter()
        ask_tell(study)
        first = time.perf_counter() - started
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            ask_tell(study)
            times.append(time.perf_counter() - started)
        rows.append(
            Measure(
                f"Optuna alone: `ask` + `tell`, in-memory study of {n:,}+ trials, {label}",
                times,
                first,
                note=f"{label}: study built with add_trial x {n:,} in {fmt_seconds(build)}",
            )
        )
    # a cold nbtrack planner rebuilds its study: new study + add_trial x n + ask + tell
    cold = []
    for _ in range(max(3, repeats // 3)):
        started = time.perf_counter()
        study = new_study(optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True))
        ask_tell(study)
        cold.append(time.perf_counter() - started)
    rows.append(
        Measure(
            f"Optuna alone: new study + `add_trial` x {n:,} + `ask` + `tell` (a cold planner's Optuna work)",
            cold,
        )
    )
    return rows, optuna.__version__


# -- (2) agents -----------------------------------------------------------------------------------
@dataclass
class AgentResult:
    workers: int
    trials: int
    wall_s: float
    startup_s: float
    span_s: float
    per_worker: list[tuple[str, int, float, int]]  # (worker, trials, trials/s over its span, "Ran N")
    trial_median_s: float
    checks: str


def grid_config(points: int) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    a = max(1, int(math.sqrt(points * 3 / 4)))
    while points % a:
        a -= 1
    b = points // a
    config = {
        "method": "grid",
        "metric": {"name": METRIC, "goal": "minimize"},
        "parameters": {"a": {"values": list(range(a))}, "b": {"values": list(range(b))}},
    }
    return config, [(i, j) for i in range(a) for j in range(b)]


def run_agents(workers: int, points: int, project_dir: Path, store_dir: Path, timeout: float) -> AgentResult:
    from nbtrack.store import open_store
    from nbtrack.sweeps import create

    config, expected = grid_config(points)
    store = open_store(store_dir)
    sweep = create(config, project=f"agents-{workers}", seed=0, store=store)
    env = {**os.environ, **QUIET_ENV, "NBTRACK_STORE": str(store_dir)}
    command = [sys.executable, "-m", "nbtrack", "agent", sweep.id, "--function", "agent_target:train"]
    print(f"\n[agents] {workers} worker(s) on grid sweep {sweep.id} ({points} points) ...", flush=True)
    launched = time.time()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            command, cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    outputs = [p.communicate(timeout=timeout) for p in procs]
    wall = time.perf_counter() - started
    for p, (out, err) in zip(procs, outputs):
        check(p.returncode == 0, f"an agent exited with {p.returncode}:\n{out}\n{err}")

    trials = sweep.trials()
    # every grid point exactly once, each a finished trial with a finished run
    check(len(trials) == points, f"{len(trials)} trials for {points} grid points")
    check(
        sorted(t.grid_index for t in trials) == list(range(points)),  # type: ignore[type-var]
        "grid indexes are not each grid point exactly once",
    )
    check(
        sorted((t.params["a"], t.params["b"]) for t in trials) == expected,
        "trial parameters are not the grid, each point once",
    )
    check(all(t.state == "finished" and t.value is not None for t in trials), "a trial did not finish")
    runs = [store.get_run(t.run_id) for t in trials]  # type: ignore[arg-type]
    check(len({r.id for r in runs}) == points, "two trials share a run")
    check(all(r.state == "finished" for r in runs), "a trial's run did not finish")
    ran = [int(out.split("Ran ")[1].split(" ")[0]) for out, _ in outputs]
    check(sum(ran) == points, f"the agents report {sum(ran)} trials run, {points} expected")
    check(store.get_sweep(sweep.id).state == "finished", "the sweep is not marked finished")
    checks = (
        f"{points} grid points each run once (indexes, params), every trial and run finished, "
        f"agents report {'+'.join(map(str, ran))} = {sum(ran)}"
    )

    first_claim = min(t.created for t in trials)
    last_end = max(t.ended for t in trials)  # type: ignore[type-var]
    by_worker: dict[str, list[Any]] = {}
    for t in trials:
        by_worker.setdefault(t.worker, []).append(t)
    pid_ran = {}
    for p, count in zip(procs, ran):
        pid_ran[str(p.pid)] = count
    per_worker = []
    for name, mine in sorted(by_worker.items(), key=lambda kv: -len(kv[1])):
        span = max(t.ended for t in mine) - min(t.created for t in mine)
        pid = name.rsplit(":", 1)[-1]
        per_worker.append((name, len(mine), len(mine) / span if span > 0 else math.nan, pid_ran.get(pid, -1)))
    check(len(by_worker) <= workers, f"{len(by_worker)} worker names for {workers} processes")
    store.close()
    return AgentResult(
        workers=workers,
        trials=points,
        wall_s=wall,
        startup_s=first_claim - launched,
        span_s=last_end - first_claim,
        per_worker=per_worker,
        trial_median_s=median([t.ended - t.created for t in trials]),  # type: ignore[operator]
        checks=checks,
    )


# -- setup and profile ----------------------------------------------------------------------------
def make_project(directory: Path, git: bool) -> str:
    directory.mkdir(parents=True)
    (directory / "agent_target.py").write_text(textwrap.dedent(AGENT_MODULE).lstrip())
    if not git:
        return "a plain directory (--no-git): no git state captured"
    if shutil.which("git") is None:
        return "a plain directory: git is not installed, so no git state is captured"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["git", "init", "-q", str(directory)], **quiet)  # type: ignore[call-overload]
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "-C", str(directory), "add", "agent_target.py"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["git", "-C", str(directory), *ident, "commit", "-q", "-m", "bench"], **quiet)  # type: ignore[call-overload]
    return "a fresh git repository with one commit (each run captures its git state)"


def profile_bayes(n: int, trials: int, seed: int, tmp: Path, fill: str) -> str:
    """cProfile of one cold bayes claim and of `trials` warm bayes trials, on a sweep of n finished trials."""
    from nbtrack.store import open_store
    from nbtrack.sweeps import Planner, create, run_trials

    store = open_store(tmp / "store-profile")
    sweep = create(sweep_config("bayes"), project="bench-profile", seed=seed, store=store)
    if fill == "trials":
        run_trials(sweep, Train(), count=n)
    else:
        fill_with_store(sweep, n, seed)
    out = io.StringIO()
    profiler = cProfile.Profile()
    planner = Planner(sweep.spec, sweep.seed)
    profiler.enable()
    trial = store.claim_trial(sweep.id, "bench:profile", planner.propose)
    profiler.disable()
    finish_claimed(sweep, trial)
    out.write(f"### cold bayes claim at {n:,} trials (cumulative, top 25)\n\n")
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    run_trials(sweep, Train(), count=2)
    profiler = cProfile.Profile()
    profiler.enable()
    run_trials(sweep, Train(), count=trials + 1)
    profiler.disable()
    out.write(
        f"\n### run_trials(count={trials + 1}) with a warm planner after the first (cumulative, top 45)\n\n"
    )
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    out.write("\n### same, by own time (top 20)\n\n")
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    store.close()
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


# -- main -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What to measure, at which sizes."""

    trials: int
    repeats: int
    points: int
    methods: list[str]
    workers: list[int]
    quick: bool


@dataclass
class Measured:
    results: list[MethodResult] = field(default_factory=list)
    optuna_rows: list[Measure] = field(default_factory=list)
    optuna_version: str = ""
    agent_results: list[AgentResult] = field(default_factory=list)
    profile_text: str = ""


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="finished trials before timing (default 1,000)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed trials per measurement (default 25)")
    parser.add_argument(
        "--fill",
        choices=["trials", "store"],
        default="trials",
        help="trials: run_trials with a trivial function (real runs, default); store: claim_trial + update_trial",
    )
    parser.add_argument("--methods", default="random,bayes", help="comma-separated (default random,bayes)")
    parser.add_argument("--grid", type=int, default=None, help="grid points of the agent sweep (default 300)")
    parser.add_argument(
        "--workers", default="1,3", help="agent process counts, comma-separated (default 1,3)"
    )
    parser.add_argument(
        "--agent-timeout", type=float, default=900.0, help="seconds per agent run (default 900)"
    )
    parser.add_argument("--skip-overhead", action="store_true", help="only part (2)")
    parser.add_argument("--skip-agents", action="store_true", help="only part (1)")
    parser.add_argument(
        "--no-git", action="store_true", help="a plain working directory, not a git repository"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile of cold and warm bayes claims"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run (100 trials, 7 repeats, 60-point grid)"
    )
    parser.add_argument(
        "--agent-repeats", type=int, default=5, help="agent runs per worker count (default 5)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="directory for the stores (default: the system temp dir)")
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(
        trials=args.trials if args.trials is not None else 100 if quick else 1000,
        repeats=args.repeats if args.repeats is not None else 7 if quick else 25,
        points=args.grid if args.grid is not None else 60 if quick else 300,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        workers=[int(w) for w in args.workers.split(",") if w.strip()],
        quick=quick,
    )
    if min(plan.trials, plan.repeats, plan.points, args.agent_repeats, *plan.workers) <= 0 or any(
        m not in ("random", "bayes") for m in plan.methods
    ):
        parser.error("sizes must be positive and methods random/bayes")
    return args, plan


def print_header(args: argparse.Namespace, plan: Plan) -> None:
    print("# bench_sweep\n")
    print("\n".join(machine_lines(["nbtrack", "numpy", "optuna", "psutil"])))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"repository: {REPO_ROOT}")
    import sqlite3

    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        head = "?"
    print(f"commit:   {head or '?'}")
    print(f"sqlite:   {sqlite3.sqlite_version}")
    sizes = (
        f"{plan.trials:,} finished trials before timing ({args.fill} fill), {plan.repeats} timed trials per row; "
        f"agents: {plan.points}-point grid, workers {', '.join(map(str, plan.workers))}"
    )
    print(f"sizes:    {sizes}{' (--quick: NOT the target sizes)' if plan.quick else ''}")


def measure(args: argparse.Namespace, plan: Plan, tmp: Path, project_dir: Path) -> Measured:
    """Part (1), then part (2), then the profile, as the arguments ask."""
    measured = Measured()
    n, repeats = plan.trials, plan.repeats
    if not args.skip_overhead:
        for method in plan.methods:
            measured.results.append(
                measure_method(method, n, repeats, args.fill, max(1, n // 10), args.seed, tmp)
            )
        bayes = [r for r in measured.results if r.method == "bayes"]
        if bayes:
            measured.optuna_rows, measured.optuna_version = optuna_side(bayes[0], repeats, args.seed)
    if not args.skip_agents:
        for repeat in range(args.agent_repeats):
            for count in plan.workers if repeat % 2 == 0 else plan.workers[::-1]:
                store_dir = tmp / f"store-agents-{count}-{repeat}"
                measured.agent_results.append(
                    run_agents(count, plan.points, project_dir, store_dir, args.agent_timeout)
                )
    measured.profile_text = profile_bayes(n, 20, args.seed, tmp, args.fill) if args.profile else ""
    return measured


def _first(m: Measure) -> str:
    return fmt_seconds(m.first) if m.first is not None else "-"


def print_overhead(measured: Measured, plan: Plan) -> None:
    """Part (1): the overhead table, how each sweep was filled, where the time goes, nbtrack over Optuna."""
    results, optuna_rows, n = measured.results, measured.optuna_rows, plan.trials
    print(
        f"\n## (1) controller overhead per trial at {n:,} finished trials: medians of {plan.repeats} "
        "(first call of a warm series shown apart)\n"
    )
    target = f"< {TARGET_S * 1000:.0f} ms"
    rows = [
        [
            r.method,
            m.what,
            target,
            fmt_seconds(median(m.times)),
            spread(m.times),
            _first(m),
            verdict(median(m.times) < TARGET_S),
        ]
        for r in results
        for m in r.rows
    ]
    rows += [
        ["bayes", m.what, "-", fmt_seconds(median(m.times)), spread(m.times), _first(m), "-"]
        for m in optuna_rows
    ]
    print(
        table(
            ["method", "measurement", "target", "median", "min - max", "first", "verdict"],
            rows,
            align="lllrrrl",
        )
    )
    print()
    for r in results:
        print(
            f"- {r.method}: filled with {r.fill_how} in {r.fill_s:.1f} s ({n / r.fill_s:,.1f} trials/s); "
            f"the sweep held {r.trials_at_start:,} trials when timing began and {r.trials_at_end:,} at the end; "
            f"after the fill: {r.resources}"
        )
    if optuna_rows:
        notes = "; ".join(m.note for m in optuna_rows if m.note)
        print(
            f"- Optuna {measured.optuna_version}, in-memory storage, the same {n:,} (params, value) pairs as the bayes "
            f"sweep, real categorical values; each timed ask is told its objective value ({notes})"
        )
    print("\n### Where the per-trial time goes (medians of instrumented calls; cold: run_trials(count=1))\n")
    part_rows = [
        [r.method, name, fmt_seconds(cold), fmt_seconds(warm)]
        for r in results
        for name, cold, warm in r.breakdown
    ]
    print(table(["method", "part", "cold", "warm"], part_rows, align="llrr"))
    print_fill_blocks(results)
    bayes = [r for r in results if r.method == "bayes"]
    if bayes and optuna_rows:
        print_over_optuna(bayes[0], optuna_rows, n)


def print_fill_blocks(results: list[MethodResult]) -> None:
    """How the fill's per-trial rate changed as the sweep grew (--fill trials)."""
    methods_with_blocks = [r for r in results if r.fill_blocks]
    if not methods_with_blocks:
        return
    print("\n### Filling: `run_trials` throughput as the sweep grows (trial function logs one metric)\n")
    headers = ["trials"] + [f"{r.method} trials/s (median per trial)" for r in methods_with_blocks]
    block_rows = []
    for i, (label, _, _) in enumerate(methods_with_blocks[0].fill_blocks):
        block_rows.append(
            [label]
            + [
                f"{r.fill_blocks[i][1]:,.1f} ({fmt_seconds(r.fill_blocks[i][2])})"
                for r in methods_with_blocks
            ]
        )
    print(table(headers, block_rows))


def print_over_optuna(bayes: MethodResult, optuna_rows: list[Measure], n: int) -> None:
    """The bayes sweep's claims and loop over Optuna's ask + tell alone."""
    claim_cold, claim_warm, loop_cold, loop_warm = (median(m.times) for m in bayes.rows[:4])
    ask_tell, ask_tell_default, optuna_cold = (median(m.times) for m in optuna_rows[:3])
    same, default, cold = (
        "ask + tell (same TPE settings)",
        "ask + tell (default TPE)",
        "new study + add_trial x N + ask + tell",
    )
    pairs = [
        ("claim, warm planner", claim_warm, same, ask_tell),
        ("per-trial loop, warm", loop_warm, same, ask_tell),
        ("claim, warm planner", claim_warm, default, ask_tell_default),
        ("claim, cold planner", claim_cold, cold, optuna_cold),
        ("per-trial loop, cold", loop_cold, cold, optuna_cold),
    ]
    print(f"\n### bayes: nbtrack over Optuna alone ({n:,} trials; > 1 means nbtrack takes longer)\n")
    print(
        table(
            ["nbtrack", "nbtrack", "Optuna alone", "Optuna", "nbtrack / Optuna"],
            [[a, fmt_seconds(x), b, fmt_seconds(y), fmt_ratio(x / y)] for a, x, b, y in pairs],
            align="lrlrr",
        )
    )
    print(
        f"\nOptuna alone at {n:,} trials: {1 / ask_tell:,.0f} ask+tell/s with nbtrack's TPE settings, "
        f"{1 / ask_tell_default:,.0f}/s with the default TPE; nbtrack's warm loop {1 / loop_warm:,.1f} trials/s "
        "(controller only, no training)."
    )


def print_agents(agent_results: list[AgentResult], points: int) -> None:
    """Part (2): throughput per agent run, then per worker."""
    print(
        f"\n## (2) agents: `python -m nbtrack agent ID --function agent_target:train` on one SQLite store, {points}-point grid\n"
    )
    base = next((a for a in agent_results if a.workers == 1), None)
    rows = []
    for a in agent_results:
        rate = a.trials / a.span_s
        rows.append(
            [
                a.workers,
                a.trials,
                f"{a.wall_s:.2f} s",
                f"{a.startup_s:.2f} s",
                f"{a.span_s:.2f} s",
                f"{rate:,.1f}",
                f"{a.trials / a.wall_s:,.1f}",
                fmt_seconds(a.trial_median_s),
                fmt_ratio(rate / (base.trials / base.span_s)) if base is not None else "-",
                "yes",
            ]
        )
    print(
        table(
            [
                "workers",
                "trials",
                "wall (launch to last exit)",
                "start-up (launch to first claim)",
                "first claim to last trial end",
                "trials/s (that span)",
                "trials/s (wall)",
                "median trial (claim to end)",
                "speed-up vs 1",
                "each grid point once",
            ],
            rows,
        )
    )
    print("\n### Per worker\n")
    wrows = [
        [a.workers, name, count, f"{rate:,.1f}", reported]
        for a in agent_results
        for name, count, rate, reported in a.per_worker
    ]
    print(
        table(
            [
                "workers",
                "worker (host:pid)",
                "trials",
                "trials/s (its first claim to last end)",
                "its 'Ran N'",
            ],
            wrows,
            align="llrrr",
        )
    )
    print()
    for a in agent_results:
        print(f"- {a.workers} worker(s), checked: {a.checks}")
    print(
        f"- cores usable: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
    )


def print_targets(measured: Measured, quick: bool) -> None:
    print("\n## Targets\n")
    for r in measured.results:
        for m in r.rows:
            note = " (--quick sizes, not the target's)" if quick else ""
            print(
                f"- {r.method}: {m.what} < {TARGET_S * 1000:.0f} ms: {fmt_seconds(median(m.times))} median -> {verdict(median(m.times) < TARGET_S)}{note}"
            )
    for a in measured.agent_results:
        print(
            f"- agents, {a.workers} worker(s): {a.trials / a.span_s:,.1f} trials/s, every grid point exactly once -> checked"
        )


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_args(argv)
    print_header(args, plan)
    if "bayes" in plan.methods:
        try:
            import optuna  # noqa: F401
        except ImportError as exc:
            print(
                f"\noptuna is not importable ({exc}): bayes sweeps need it; install it or use --methods random"
            )
            return 2
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-sweep-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        project_dir = tmp / "project"
        where = make_project(project_dir, not args.no_git)
        print(f"workdir:  {where}")
        os.chdir(project_dir)
        try:
            measured = measure(args, plan, tmp, project_dir)
        finally:
            os.chdir(previous)

    if measured.results:
        print_overhead(measured, plan)
    if measured.agent_results:
        print_agents(measured.agent_results, plan.points)
    if args.profile:
        print("\n## cProfile (bayes)\n")
        print(textwrap.indent(measured.profile_text, "    "))
    print_targets(measured, plan.quick)
    m = measured
    record(
        m.results, m.optuna_rows, m.optuna_version, m.agent_results, plan.trials, plan.points, plan.quick
    ).write(args.json)
    return 0


ROW_KEYS = ("claim_cold", "claim_warm", "loop_cold", "loop_warm")


def record(
    results: list[MethodResult],
    optuna_rows: list[Measure],
    optuna_version: str,
    agents: list[AgentResult],
    n: int,
    points: int,
    quick: bool,
) -> Results:
    """Part (1) per method and part (2) per worker count as --json measurements; Optuna alone beside bayes."""
    out = Results("bench_sweep", quick=quick)
    for r in results:
        for key, m in zip(ROW_KEYS, r.rows):
            entry = out.add(
                f"sweep.{r.method}.{key}", f"{r.method}: {m.what}, at {n:,} finished trials", "s", m.times
            )
            if r.method == "bayes" and key == "claim_warm" and optuna_rows:
                for o in optuna_rows[:2]:
                    out.compare(entry, f"Optuna {optuna_version}: {o.what}", o.times)
            if r.method == "bayes" and key in ("claim_cold", "loop_cold") and len(optuna_rows) > 2:
                out.compare(entry, f"Optuna {optuna_version}: {optuna_rows[2].what}", optuna_rows[2].times)
    for count in sorted({a.workers for a in agents}):
        mine = [a for a in agents if a.workers == count]
        out.add(
            f"sweep.agents.{count}",
            f"`nbtrack agent` x {count} on one SQLite store, {points}-point grid: trials/s (first claim to last end)",
            "trials/s",
            [a.trials / a.span_s for a in mine],
            better="higher",
            note="every grid point exactly once, checked in every run",
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
