"""Sweeps: W&B-format sweep configs run offline, every trial a full nbtrack run.

    sweep = nbtrack.sweep(sweep_config, train, project="mnist-sweep", count=20)
    sweep.best_run, sweep.runs, sweep.to_pandas()

The store keeps the sweep and its trials, so a sweep resumes (``nbtrack.sweep(resume=ID, function=train)``) and
several processes (``nbtrack agent ID --function module:train``) share one: each trial is claimed in a store
transaction, so none runs twice and a grid is covered exactly once. `grid` enumerates, `random` samples, `bayes`
asks Optuna's TPE sampler, fed with the finished trials. Hyperband (``early_terminate``) stops trials whose metric,
at a rung of min_iter * eta^k epochs, is not in the top 1/eta of the trials that reached that rung: the Keras
callback ends `fit`, a plain loop reads ``run.stop_requested``; the run is marked ``stopped-early``.

`config` parses and checks sweep configs, `hyperband` decides the early stops.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from nbtrack.errors import NbtrackError
from nbtrack.read.records import RunList, StoredRun
from nbtrack.run import embedded_views
from nbtrack.store.base import TRIAL_DONE, Store, SweepRecord, TrialRecord
from nbtrack.sweeps.config import Parameter, SweepSpec, nest, parse_sweep_config


class SweepError(NbtrackError):
    """A sweep cannot run as asked (nothing to resume, no function...)."""


# -- choosing the next trial -----------------------------------------------------------------------
def _counted(trials: list[TrialRecord]) -> int:
    """Trials that used up the budget: those that ended on their own, plus the ones running."""
    return sum(1 for t in trials if t.state in TRIAL_DONE or t.state == "running")


class Planner:
    """Proposes the next trial's parameters from the trials so far (called inside the store's claim)."""

    def __init__(self, spec: SweepSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self._grid: list[dict[str, Any]] | None = None
        self._study: Any = None
        self._told: set[int] = set()

    def propose(self, trials: list[TrialRecord]) -> tuple[dict[str, Any], int | None] | None:
        cap = self.spec.run_cap
        if cap is not None and _counted(trials) >= cap:
            return None
        number = (trials[-1].number + 1) if trials else 0
        if self.spec.method == "grid":
            if self._grid is None:
                self._grid = self.spec.grid()
            taken = {t.grid_index for t in trials if t.state in TRIAL_DONE or t.state == "running"}
            index = next((i for i in range(len(self._grid)) if i not in taken), None)
            return None if index is None else (self._grid[index], index)
        import numpy as np

        rng = np.random.default_rng([self.seed, number])
        if self.spec.method == "random":
            return self.spec.sample(rng), None
        return self._bayes(trials, rng), None

    # -- bayes: Optuna's TPE over the parameters it can model; the rest are sampled ---------------------
    def _distributions(self) -> dict[str, Any]:
        import optuna.distributions as D

        dists: dict[str, Any] = {}
        for p in self.spec.parameters:
            kind = p.distribution
            if kind == "categorical":
                dists[p.name] = D.CategoricalDistribution(list(range(len(p.values))))
            elif kind == "int_uniform":
                dists[p.name] = D.IntDistribution(int(p.min), int(p.max))  # type: ignore[arg-type]
            elif kind == "uniform":
                dists[p.name] = D.FloatDistribution(float(p.min), float(p.max))  # type: ignore[arg-type]
            elif kind == "log_uniform_values":
                dists[p.name] = D.FloatDistribution(float(p.min), float(p.max), log=True)  # type: ignore[arg-type]
            elif kind == "log_uniform":
                dists[p.name] = D.FloatDistribution(math.exp(p.min), math.exp(p.max), log=True)  # type: ignore[arg-type]
        return dists

    def _encode(self, p: Parameter, value: Any) -> Any:
        if p.distribution == "categorical":
            for index, candidate in enumerate(p.values):
                if candidate == value and type(candidate) is type(value):
                    return index
            return None
        return value

    @property
    def cold(self) -> bool:
        return self.spec.method == "bayes" and self._study is None

    def teach(self, trials: list[TrialRecord]) -> None:
        """Give the study every finished trial it has not seen. Called before a claim too, outside the store's
        transaction, so the claim itself only adds the few trials that finished in between."""
        if self.spec.method != "bayes":
            return
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        metric = self.spec.metric
        assert metric is not None  # the config parser requires it for bayes
        dists = self._distributions()
        if self._study is None:
            direction = "minimize" if metric.goal == "minimize" else "maximize"
            sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=5, multivariate=True)
            self._study = optuna.create_study(direction=direction, sampler=sampler)
        by_name = {p.name: p for p in self.spec.parameters}
        for trial in trials:
            if trial.number in self._told or trial.value is None or not math.isfinite(trial.value):
                continue
            if trial.state not in ("finished", "stopped-early"):
                continue
            flat = _flatten(trial.params)
            params = {name: self._encode(by_name[name], flat.get(name)) for name in dists if name in flat}
            if any(v is None for v in params.values()) or len(params) != len(dists):
                continue
            self._study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions={k: dists[k] for k in params}, value=trial.value
                )
            )
            self._told.add(trial.number)

    def _bayes(self, trials: list[TrialRecord], rng: Any) -> dict[str, Any]:
        import optuna

        dists = self._distributions()
        self.teach(trials)
        asked = self._study.ask(dists)
        chosen = dict(asked.params)
        self._study.tell(asked, state=optuna.trial.TrialState.FAIL)  # only told trials teach it
        flat: dict[tuple[str, ...], Any] = {}
        for p in self.spec.parameters:
            if p.name in chosen:
                value = chosen[p.name]
                flat[p.path] = p.values[value] if p.distribution == "categorical" else value
            else:
                flat[p.path] = p.sample(rng)
        return nest(flat)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


# -- Hyperband --------------------------------------------------------------------------------------
class HyperbandHook:
    """An epoch hook on a trial's run: at each rung, record the metric; stop when it is not in the top 1/eta."""

    def __init__(self, store: Store, sweep_id: str, number: int, spec: SweepSpec) -> None:
        assert spec.early_terminate is not None and spec.metric is not None
        self.store, self.sweep_id, self.number = store, sweep_id, number
        self.metric = spec.metric
        self.hyperband = spec.early_terminate
        self.rungs = self.hyperband.rungs()
        self.stopped_at: int | None = None

    def __call__(self, run: Any, values: dict[str, float]) -> bool:
        from nbtrack.sweeps.hyperband import rung_for, should_stop

        if self.metric.name not in values:
            return False
        rung = rung_for(int(values["epoch"]) + 1, self.rungs)
        if rung is None:
            return False
        value = float(values[self.metric.name])
        others = self.store.record_rung(self.sweep_id, self.number, rung, value)
        if not should_stop(value, others, goal=self.metric.goal, eta=self.hyperband.eta):
            return False
        self.stopped_at = rung
        run.event(
            "hyperband",
            f"stopped at rung {rung} (epoch {rung}): {self.metric.name}={value:.4g} is not in the top "
            f"1/{self.hyperband.eta:g} of the {len(others) + 1} trials there",
            rung=rung,
            value=value,
        )
        return True


# -- the sweep --------------------------------------------------------------------------------------
class Sweep:
    """A stored sweep: its spec, trials and runs. `nbtrack.sweep` returns one."""

    def __init__(self, store: Store, record: SweepRecord) -> None:
        self.store = store
        self.record = record
        self.spec = parse_sweep_config(record.config["sweep"])
        self.seed = int(record.config.get("seed", 0))

    id = property(lambda self: self.record.id)
    name = property(lambda self: self.record.name)
    project = property(lambda self: self.record.project)

    @property
    def state(self) -> str:
        return self.store.get_sweep(self.id).state

    def trials(self) -> list[TrialRecord]:
        return self.store.trials(self.id)

    @property
    def runs(self) -> RunList:
        """The trials' runs, in trial order."""
        from nbtrack.errors import RunNotFoundError

        found = []
        for trial in self.trials():
            if trial.run_id:
                try:
                    found.append(StoredRun(self.store, self.store.get_run(trial.run_id)))
                except RunNotFoundError:
                    continue
        return RunList(found)

    @property
    def best_trial(self) -> TrialRecord | None:
        metric = self.spec.metric
        best = None
        for trial in self.trials():
            if trial.value is None or not math.isfinite(trial.value) or metric is None:
                continue
            if best is None or metric.better(trial.value, best.value):  # type: ignore[arg-type]
                best = trial
        return best

    @property
    def best_run(self) -> StoredRun | None:
        trial = self.best_trial
        if trial is None or trial.run_id is None:
            return None
        return StoredRun(self.store, self.store.get_run(trial.run_id))

    def best_so_far(self) -> list[tuple[int, float]]:
        """(trial number, best metric up to it) for every trial with a value: the best-so-far curve."""
        metric = self.spec.metric
        out: list[tuple[int, float]] = []
        best: float | None = None
        for trial in self.trials():
            if trial.value is None or not math.isfinite(trial.value) or metric is None:
                continue
            if best is None or metric.better(trial.value, best):
                best = trial.value
            out.append((trial.number, best))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per trial: number, state, run, parameters, metric, duration."""
        metric = self.spec.metric.name if self.spec.metric else "metric"
        rows = []
        for trial in self.trials():
            row: dict[str, Any] = {
                "trial": trial.number,
                "state": trial.state,
                "run_id": trial.run_id,
                **{f"config.{k}": v for k, v in _flatten(trial.params).items()},
                metric: trial.value,
                "duration": (trial.ended - trial.created) if trial.ended else None,
            }
            if trial.rungs:
                row["rungs"] = dict(trial.rungs)
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Sweep.to_pandas needs pandas. Install it with `pip install pandas`.") from None
        return pd.DataFrame(self.rows()).set_index("trial") if self.trials() else pd.DataFrame()

    def __repr__(self) -> str:
        trials = self.trials()
        best = self.best_trial
        metric = self.spec.metric
        best_text = f", best {metric.name}={best.value:.4g} (trial {best.number})" if best and metric else ""
        return f"<Sweep {self.name} ({self.id}) {self.spec.method}, {len(trials)} trials, {self.state}{best_text}>"

    def _repr_html_(self) -> str:
        from nbtrack.common import views

        return views.view("sweep_html")(self)  # drawn by the reports layer, above


def _new_sweep_name(store: Store, project: str) -> str:
    existing = {s.name for s in store.list_sweeps(project)}
    n = len(existing) + 1
    while f"sweep-{n}" in existing:
        n += 1
    return f"sweep-{n}"


def _open(store: Any) -> Store:
    from nbtrack.store import open_store

    return store if isinstance(store, Store) else open_store(store)


def create(
    config: Any, *, project: str | None = None, name: str | None = None, seed: int = 0, store: Any = None
) -> Sweep:
    """Store a new sweep (validated) without running trials: for agents to pull from."""
    spec = parse_sweep_config(config)
    opened = _open(store)
    project = project or os.environ.get("NBTRACK_PROJECT") or "uncategorized"
    record = opened.create_sweep(
        sweep_id=secrets.token_hex(4),
        project=project,
        name=name or spec.name or _new_sweep_name(opened, project),
        config={"sweep": spec.raw, "seed": int(seed)},
        method=spec.method,
        created=time.time(),
    )
    return Sweep(opened, record)


_planners: dict[str, Planner] = {}  # per sweep, for this process: a resumed sweep's study stays warm


def run_trials(
    sweep: Sweep,
    function: Callable[..., Any],
    *,
    count: int | None = None,
    worker: str | None = None,
    on_trial: Callable[[Sweep, Any], None] | None = None,
) -> int:
    """Claim and run trials of `sweep` until it has none left, `count` were run, or the user interrupts."""
    from nbtrack.run import init

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count <= 0):
        raise ValueError(f"count must be a positive int or None, got {count!r}")
    if not callable(function):
        raise TypeError(f"the sweep function must be callable (train(config)), got {type(function).__name__}")
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    planner = _planners.get(sweep.id)
    if planner is None or planner.spec != sweep.spec:
        planner = _planners[sweep.id] = Planner(sweep.spec, sweep.seed)
    store = sweep.store
    metric = sweep.spec.metric
    done = 0
    warned_metric = False
    while count is None or done < count:
        if planner.cold:  # learn the finished trials before the claim's transaction, not inside it
            planner.teach(store.trials(sweep.id))
        trial = store.claim_trial(sweep.id, worker, planner.propose)
        if trial is None:
            store.set_sweep_state(sweep.id, "finished", time.time())
            break
        with embedded_views():
            run = init(
                project=sweep.project,
                config=trial.params,
                tags=[f"sweep:{sweep.name}"],
                notes=f"trial {trial.number} of sweep {sweep.name} ({sweep.id})",
                store=store,
            )
        store.update_trial(sweep.id, trial.number, run_id=run.id)
        hook = (
            HyperbandHook(store, sweep.id, trial.number, sweep.spec) if sweep.spec.early_terminate else None
        )
        if hook is not None:
            run.epoch_hooks.append(hook)
        if on_trial is not None:
            on_trial(sweep, run)
        state = "finished"
        try:
            with embedded_views():
                function(run.config.as_dict())
        except KeyboardInterrupt:
            return _stop(store, sweep, trial, run, metric, done)
        except Exception:
            print(traceback.format_exc(), end="")  # into the run's output.log and the cell
            state = "failed"
        dashboard = getattr(run, "_dashboard_obj", None)
        if dashboard is not None and dashboard.stop_requested.is_set():  # the Stop button: the sweep stops
            return _stop(store, sweep, trial, run, metric, done)
        if state == "finished" and run.stop_requested and hook is not None and hook.stopped_at is not None:
            state = "stopped-early"
        value = _end_trial(store, sweep, trial, run, state, metric)
        if metric is not None and value is None and state != "failed" and not warned_metric:
            warned_metric = True
            logged = (
                ", ".join(
                    sorted(
                        k for k in run.summary.as_dict() if not k.startswith(("_", "best_", "min_", "max_"))
                    )
                )
                or "nothing"
            )
            warnings.warn(
                f"nbtrack: trial {trial.number} of sweep {sweep.name} never logged the sweep's metric "
                f"{metric.name!r} (it logged: {logged}); its trial has no value, and bayes cannot learn from it.",
                stacklevel=2,
            )
        done += 1
    return done


def _stop(store: Store, sweep: Sweep, trial: TrialRecord, run: Any, metric: Any, done: int) -> int:
    _end_trial(store, sweep, trial, run, "interrupted", metric)
    store.set_sweep_state(sweep.id, "stopped", time.time())
    print(
        f"nbtrack: sweep {sweep.name} stopped; trial {trial.number} marked interrupted. "
        f"Resume it with nbtrack.sweep(resume={sweep.id!r}, function=...)."
    )
    return done


def _end_trial(
    store: Store, sweep: Sweep, trial: TrialRecord, run: Any, state: str, metric: Any
) -> float | None:
    value = None
    if metric is not None:
        raw = run.summary.as_dict().get(metric.name)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
    if not run._finished:  # noqa: SLF001 - the function may have finished it itself
        if metric is not None and value is None and state != "failed":
            run.event(
                "sweep_metric_missing", f"the sweep's metric {metric.name!r} was never logged by this trial"
            )
        run.finish(state=state)
    store.update_trial(sweep.id, trial.number, state=state, value=value, ended=time.time())
    return value


def sweep(
    config: Any = None,
    function: Callable[..., Any] | None = None,
    *,
    project: str | None = None,
    count: int | None = None,
    resume: str | None = None,
    seed: int = 0,
    store: Any = None,
    display: bool = True,
) -> Sweep:
    """Run a sweep in this process (see the module docstring); returns the `Sweep`."""
    if function is None:
        raise SweepError(
            "nbtrack.sweep needs the function each trial runs: nbtrack.sweep(config, train, ...)"
        )
    if resume is not None:
        if config is not None:
            raise SweepError("nbtrack.sweep: pass either a config (a new sweep) or resume=ID, not both.")
        opened = _open(store)
        the_sweep = Sweep(opened, opened.get_sweep(resume))
        opened.set_sweep_state(the_sweep.id, "running")
    else:
        if config is None:
            raise SweepError("nbtrack.sweep needs a sweep config (a dict, or a YAML/JSON path) or resume=ID.")
        the_sweep = create(config, project=project, seed=seed, store=store)
    view = None
    if display:
        from nbtrack.common import views

        try:
            view = views.view("sweep_view")(the_sweep)  # shown in a notebook, else None; lent by the UI layer
        except ImportError as exc:
            warnings.warn(f"nbtrack: the live sweep view needs the widget extra ({exc}).", stacklevel=2)
    try:
        run_trials(the_sweep, function, count=count, on_trial=view.trial_started if view else None)
    finally:
        if view is not None:
            view.refresh(final=True)
    return the_sweep


def agent(sweep_id: str, function: Callable[..., Any], *, count: int | None = None, store: Any = None) -> int:
    """Run trials of a stored sweep in this process (as `nbtrack agent` does); returns how many ran."""
    opened = _open(store)
    the_sweep = Sweep(opened, opened.get_sweep(sweep_id))
    return run_trials(the_sweep, function, count=count)
