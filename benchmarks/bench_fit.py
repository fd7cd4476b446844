"""Fit overhead: what a tracker's Keras callback adds to `model.fit`, and the live widget's comm traffic.

Part 1, fit overhead. The seed model of the issue (an MNIST-shaped MLP 784-256-128-10, relu/relu/softmax,
Adam(1e-3), sparse categorical cross-entropy, accuracy) is trained with batch size 16 on 60,000 generated
samples (3,750 steps per epoch) with 10,000 validation samples, `verbose=0`, once per contestant and repeat.
Only the wall time of `model.fit(...)` is measured; every fit gets a fresh model built with the same seed.

    no callback            the baseline (Keras' own History callback only)
    no-op callback         a callback whose on_train_batch_end does nothing. Keras dispatches batch hooks to a
                           thread pool unless a callback overrides one (every tracker here does), then calls
                           them inline; this row is that mode's floor, so "vs no-op" is a tracker's own cost
    nbtrack, widget        NbtrackCallback() with its live dashboard on a recording comm (see below): the
                           notebook experience, per-batch logging, refreshes <= 4 Hz. The main row. Its hooks
                           are timed (a thin subclass, ~1 ms per fit): nbtrack's direct cost on the training
                           thread, which does not depend on how busy the machine is.
    nbtrack, no widget     NbtrackCallback(display=False): per-batch logging, no dashboard, no console lines
    nbtrack, auto-attached `nbtrack.integrations.ipython.patch_imported()` (what `%load_ext nbtrack` does): a plain
                           `fit` without callbacks gets an NbtrackCallback; widget on the recording comm
    W&B offline            WandbMetricsLogger(log_freq="batch"); wandb.init/finish around fit, not timed
    TensorBoard            keras.callbacks.TensorBoard(update_freq="batch")
    MLflow                 mlflow.keras.autolog(log_every_epoch=False, log_every_n_steps=1), SQLite tracking
                           store; models and datasets not logged (log_models=False, log_datasets=False)

nbtrack's callback runs with its defaults, so its rows include what users get: the run is started in
`on_train_begin` and finished in `on_train_end` (both inside the timed fit), and `model-best.keras` is saved
at the end of each epoch that improves val_loss (every epoch of a 1-epoch fit).

All contestants run in one process; the order is reversed on every other repeat. Before the repeats each
contestant does one untimed warm-up fit of --warmup-steps steps. Reported: the median fit time, the
overhead of the medians vs the baseline, the median of the per-repeat paired overheads, and the overhead vs
the no-op callback. With
--mlflow-steps N, MLflow fits only N steps and is compared with a baseline fit of the same N steps.

Part 2, widget traffic without a browser. `comm.create_comm` is replaced by a comm that records every message
it would send, `nbtrack.ui.dashboard.in_notebook` returns True and `IPython.display.display` returns a fake
handle, so `nbtrack.init` builds and shows the real dashboard (ipywidgets + bqplot). A plain loop then logs
2 batch metrics per step, and 5 epoch metrics every --epoch-every steps, for 10k, 100k and 1M steps; the
script reports comm update messages per second, refreshes per second and bytes per refresh.

    python benchmarks/bench_fit.py                      # ~20 min on 2 cores
    python benchmarks/bench_fit.py --repeats 3 --only baseline,nbtrack-widget --skip-traffic
    python benchmarks/bench_fit.py --skip-fit --traffic-steps 10000,100000
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib.util
import io
import json
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (  # noqa: E402
    REPO_ROOT,
    Results,
    fmt_seconds,
    machine_lines,
    median,
    probe_all,
    quiet_environment,
    short_reason,
    table,
    verdict,
)

quiet_environment()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TARGET_OVERHEAD = 0.02  # nbtrack <= 2 % over no callback
# Measured earlier on this kind of box (quoted by the issue), for comparison only.
REFERENCE_OVERHEAD = {"wandb": 0.17, "tensorboard": 0.34, "mlflow": 1.73}
MAX_REFRESH_HZ = 4.0  # nbtrack.ui.dashboard.MIN_INTERVAL = 0.25 s
MESSAGE_BUDGET = 20.0  # nbtrack.ui.dashboard.MESSAGE_BUDGET, comm messages a second
JSON_SLACK = 2_000  # bytes of JSON allowed per comm message on top of its binary buffers


def source_state() -> str:
    """The commit the benchmark ran on and whether nbtrack/ had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "nbtrack")
    except (OSError, subprocess.SubprocessError):
        return "git state unknown"
    system = "on (psutil installed)" if importlib.util.find_spec("psutil") else "off (psutil not installed)"
    changes = (
        f"{len(dirty.splitlines())} uncommitted file(s) in nbtrack/"
        if dirty
        else "no uncommitted changes in nbtrack/"
    )
    return f"commit {commit or '?'}, {changes}; system metrics sampling {system}"


# -- data and model ---------------------------------------------------------------------------------
@dataclass
class Data:
    x: Any
    y: Any
    x_val: Any
    y_val: Any

    def head(self, steps: int, batch_size: int) -> Data:
        """The first `steps` batches of the training data, the same validation data."""
        n = steps * batch_size
        return Data(self.x[:n], self.y[:n], self.x_val, self.y_val)


def make_data(samples: int, val_samples: int, seed: int = 0) -> Data:
    """MNIST-shaped data, no download: uniform [0, 1) images labelled by a fixed random linear teacher
    (so the model learns and the curves move like real ones)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((784, 10)).astype(np.float32)
    x = rng.random((samples + val_samples, 784), dtype=np.float32)
    y = np.argmax((x - 0.5) @ teacher, axis=1).astype(np.int32)
    return Data(x[:samples], y[:samples], x[samples:], y[samples:])


def build_model(seed: int = 0) -> Any:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


# -- a notebook without a browser: recording comm, fake display -------------------------------------
@dataclass
class Message:
    time: float
    msg_type: str
    data: dict
    buffers: list

    @property
    def buffer_bytes(self) -> int:
        return sum(memoryview(b).nbytes for b in self.buffers)

    @property
    def json_bytes(self) -> int:
        return len(json.dumps(self.data, default=str, separators=(",", ":")))

    @property
    def nbytes(self) -> int:
        """What goes over the wire, about: the JSON content plus the binary buffers (headers not counted)."""
        return self.json_bytes + self.buffer_bytes

    @property
    def is_update(self) -> bool:
        return self.msg_type == "comm_msg" and self.data.get("method") == "update"


@dataclass
class Refresh:
    """One `Run.refresh_views` call: when, how long (on the logging thread), which messages it sent."""

    start: float
    seconds: float
    first: int
    last: int


@dataclass
class Notebook:
    messages: list[Message] = field(default_factory=list)
    displays: list[Any] = field(default_factory=list)
    refreshes: list[Refresh] = field(default_factory=list)

    def updates(self, start: int = 0, end: int | None = None) -> list[Message]:
        return [m for m in self.messages[start:end] if m.is_update]


@contextlib.contextmanager
def recording_notebook() -> Iterator[Notebook]:
    """Pretend to be a Jupyter kernel: widgets open comms that record their messages, `display` returns a
    handle that records updates, and every `Run.refresh_views` is timed (two perf_counter calls)."""
    import comm
    import IPython.display
    from comm.base_comm import BaseComm

    import nbtrack.ui.dashboard as dashboard_module
    from nbtrack.run import Run

    notebook = Notebook()

    class RecordingComm(BaseComm):  # type: ignore[misc]
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):  # type: ignore[no-untyped-def]
            notebook.messages.append(Message(time.perf_counter(), msg_type, data or {}, list(buffers or [])))

    class Handle:
        def __init__(self, bundle: dict) -> None:
            self.bundles = [bundle]

        def update(self, bundle: dict, raw: bool = False, **kwargs: Any) -> None:
            self.bundles.append(bundle)

    def fake_display(bundle, raw=False, display_id=False, **kwargs):  # type: ignore[no-untyped-def]
        notebook.displays.append(Handle(bundle))
        return notebook.displays[-1]

    original_refresh = Run.refresh_views

    def timed_refresh(self: Run) -> None:
        first = len(notebook.messages)
        start = time.perf_counter()
        original_refresh(self)
        notebook.refreshes.append(Refresh(start, time.perf_counter() - start, first, len(notebook.messages)))

    # `in_notebook` is looked up from nbtrack.ui (newer) or imported into the dashboard module (older): patch both.
    import nbtrack.ui as ui_module

    checks = [m for m in (ui_module, dashboard_module) if hasattr(m, "in_notebook")]
    saved_checks = [m.in_notebook for m in checks]
    saved = (comm.create_comm, IPython.display.display)
    comm.create_comm = lambda **kwargs: RecordingComm(**kwargs)
    for module in checks:
        module.in_notebook = lambda: True
    IPython.display.display = fake_display
    Run.refresh_views = timed_refresh  # type: ignore[method-assign]
    try:
        yield notebook
    finally:
        comm.create_comm, IPython.display.display = saved
        for module, original in zip(checks, saved_checks):
            module.in_notebook = original
        Run.refresh_views = original_refresh  # type: ignore[method-assign]


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- part 1: contestants ----------------------------------------------------------------------------
@dataclass
class FitJob:
    data: Data
    batch_size: int
    epochs: int
    workdir: Path

    @property
    def steps(self) -> int:
        return -(-len(self.data.x) // self.batch_size)


@dataclass
class Sample:
    fit_s: float
    cpu_s: float  # process CPU time (all threads) during fit
    others_s: float = 0.0  # CPU time of other processes on the machine during fit (noise indicator)
    outside_s: float = 0.0  # setup + teardown a tracker needs outside fit (wandb.init/finish), not timed
    widget: dict[str, float] = field(default_factory=dict)
    repeat: int = -1
    hooks_s: float = float("nan")  # wall time inside nbtrack's callback hooks (the live-widget row only)


HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end")


def hook_timed_callback() -> type:
    """NbtrackCallback whose hooks add their wall time to `hooks_s`: two perf_counter calls per hook (~0.2 us a
    batch, ~1 ms a 3,750-step fit), so nbtrack's direct cost on the training thread is measured in every fit."""
    from nbtrack.keras import NbtrackCallback

    def wrap(name: str) -> Callable[..., Any]:
        base = getattr(NbtrackCallback, name)

        def hook(self: Any, *a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return base(self, *a, **k)
            finally:
                self.hooks_s += time.perf_counter() - started

        return hook

    return type("HookTimedCallback", (NbtrackCallback,), {"hooks_s": 0.0, **{n: wrap(n) for n in HOOKS}})


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes), from /proc/stat; NaN where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed_fit(model: Any, job: FitJob, callbacks: list[Any] | None) -> Sample:
    """Fit once; returns the wall time, this process's CPU time and the CPU time other processes used meanwhile."""
    d = job.data
    gc.collect()
    # No `callbacks=None`: MLflow's autolog patch appends to fit's `callbacks` argument and silently gives up
    # (logging nothing) when it is None.
    extra = {"callbacks": callbacks} if callbacks is not None else {}
    busy0, cpu0, t0 = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    model.fit(
        d.x,
        d.y,
        batch_size=job.batch_size,
        epochs=job.epochs,
        validation_data=(d.x_val, d.y_val),
        verbose=0,
        **extra,
    )
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return Sample(fit_s, cpu_s, others_s=max(0.0, busy_cpu_seconds() - busy0 - cpu_s))


def check_nbtrack_store(store_dir: Path, job: FitJob) -> None:
    """The run the fit made holds every batch (untimed sanity check)."""
    from nbtrack.store import open_store

    store = open_store(store_dir, create=False)
    try:
        runs = store.list_runs()
        if len(runs) != 1:
            raise RuntimeError(f"expected 1 nbtrack run in {store_dir}, found {len(runs)}")
        run = runs[0]
        points = len(store.history(run.id, "batch/loss"))
        expected = job.steps * job.epochs
        if points != expected or run.state != "finished":
            raise RuntimeError(
                f"nbtrack run {run.id}: {points} batch/loss points (expected {expected}), {run.state}"
            )
    finally:
        store.close()


def widget_stats(notebook: Notebook) -> dict[str, float]:
    """Refreshes (throttled, from `Run.log`, plus the one at finish) vs everything sent (widget creation, the
    final full-state resend at finish)."""
    in_refresh = [m for r in notebook.refreshes for m in notebook.messages[r.first : r.last]]
    return {
        "refreshes": len(notebook.refreshes),
        "refresh_s": sum(r.seconds for r in notebook.refreshes),
        "refresh_updates": sum(1 for m in in_refresh if m.is_update),
        "refresh_bytes": sum(m.nbytes for m in in_refresh),
        "updates": len(notebook.updates()),
        "messages": len(notebook.messages),
        "bytes": sum(m.nbytes for m in notebook.messages),
    }


def probe_keras() -> str:
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


def probe_nbtrack() -> str:
    import nbtrack
    from nbtrack.keras import NbtrackCallback  # noqa: F401

    return f"nbtrack {nbtrack.__version__}" if hasattr(nbtrack, "__version__") else "nbtrack"


def probe_nbtrack_widget() -> str:
    import bqplot
    import ipywidgets

    return f"{probe_nbtrack()}, ipywidgets {ipywidgets.__version__}, bqplot {bqplot.__version__}"


def fit_baseline(job: FitJob) -> Sample:
    return timed_fit(build_model(), job, None)


def fit_noop(job: FitJob) -> Sample:
    """A callback whose on_train_batch_end does nothing. Any callback that overrides a batch hook (all the
    trackers here do) switches Keras from dispatching batch hooks to a thread pool to calling them inline;
    this row is that mode's floor, so the difference to it is the tracker's own cost."""
    import keras

    class NoOp(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            pass

    return timed_fit(build_model(), job, [NoOp()])


def _fit_nbtrack(job: FitJob, *, widget: bool, patched: bool = False) -> Sample:
    from nbtrack.keras import NbtrackCallback

    store_dir = job.workdir / "nbtrack"
    model = build_model()
    with environ(NBTRACK_STORE=str(store_dir)):
        if not widget:
            sample = timed_fit(model, job, [NbtrackCallback(display=False)])
        else:
            with recording_notebook() as notebook:
                if patched:
                    from nbtrack.integrations.ipython import patch_imported, unpatch_all

                    patch_imported()
                    try:
                        sample = timed_fit(model, job, None)
                    finally:
                        unpatch_all()
                else:
                    callback = hook_timed_callback()()
                    sample = timed_fit(model, job, [callback])
                    sample.hooks_s = callback.hooks_s
            if not notebook.displays:
                raise RuntimeError("the dashboard was not displayed (is ipywidgets/bqplot installed?)")
            sample.widget = widget_stats(notebook)
    check_nbtrack_store(store_dir, job)
    return sample


def fit_nbtrack_widget(job: FitJob) -> Sample:
    return _fit_nbtrack(job, widget=True)


def fit_nbtrack_plain(job: FitJob) -> Sample:
    return _fit_nbtrack(job, widget=False)


def fit_nbtrack_patched(job: FitJob) -> Sample:
    return _fit_nbtrack(job, widget=True, patched=True)


def probe_wandb() -> str:
    import wandb
    from wandb.integration.keras import WandbMetricsLogger  # noqa: F401

    return f"wandb {wandb.__version__}"


def fit_wandb(job: FitJob) -> Sample:
    import wandb
    from wandb.integration.keras import WandbMetricsLogger

    # System metrics stay on (W&B's default), as nbtrack's do when psutil is installed.
    settings = wandb.Settings(
        console="off", disable_git=True, disable_code=True, save_code=False, silent=True
    )
    model = build_model()
    t0 = time.perf_counter()
    run = wandb.init(project="bench-fit", dir=str(job.workdir), mode="offline", settings=settings)
    setup = time.perf_counter() - t0
    try:
        sample = timed_fit(model, job, [WandbMetricsLogger(log_freq="batch")])
    finally:
        t1 = time.perf_counter()
        run.finish()
        teardown = time.perf_counter() - t1
    sample.outside_s = setup + teardown
    return sample


def probe_tensorboard() -> str:
    import tensorboard
    import tensorflow as tf

    return f"tensorflow {tf.__version__}, tensorboard {tensorboard.__version__}"


def fit_tensorboard(job: FitJob) -> Sample:
    import keras

    log_dir = job.workdir / "tb"
    sample = timed_fit(
        build_model(), job, [keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq="batch")]
    )
    if not any(log_dir.rglob("events.out.tfevents.*")):
        raise RuntimeError(f"TensorBoard wrote no event file under {log_dir}")
    return sample


def probe_mlflow() -> str:
    import mlflow
    import mlflow.keras

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not hasattr(mlflow.keras, "autolog"):
        raise RuntimeError(f"mlflow {mlflow.__version__} has no mlflow.keras.autolog (Keras 3)")
    return f"mlflow {mlflow.__version__}"


def fit_mlflow(job: FitJob) -> Sample:
    import mlflow
    import mlflow.keras

    model = build_model()
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{job.workdir / 'mlflow.db'}")
    mlflow.set_experiment("bench-fit")
    mlflow.keras.autolog(
        log_every_epoch=False, log_every_n_steps=1, log_models=False, log_datasets=False, silent=True
    )
    setup = time.perf_counter() - t0
    try:
        sample = timed_fit(model, job, None)  # autolog makes the run and adds its callback inside fit
    finally:
        mlflow.keras.autolog(disable=True)
        if mlflow.active_run() is not None:
            mlflow.end_run()
    run = mlflow.last_active_run()
    points = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) if run else 0
    if points < job.steps * job.epochs:
        raise RuntimeError(f"MLflow logged {points} 'loss' points, expected {job.steps * job.epochs}")
    sample.outside_s = setup
    return sample


@dataclass
class Contestant:
    key: str
    label: str
    probe: Callable[[], str]
    fit: Callable[[FitJob], Sample]
    steps: int  # steps per epoch it trains (the full epoch unless --mlflow-steps)
    baseline: str = "baseline"
    version: str = ""
    unavailable: str | None = None
    samples: list[Sample] = field(default_factory=list)


def contestants(args: argparse.Namespace, full_steps: int) -> list[Contestant]:
    mlflow_steps = min(args.mlflow_steps or full_steps, full_steps)
    every = [
        Contestant("baseline", "no callback (baseline)", probe_keras, fit_baseline, full_steps),
        Contestant("noop", "no-op batch callback (Keras inline dispatch)", probe_keras, fit_noop, full_steps),
        Contestant(
            "nbtrack-widget",
            "nbtrack NbtrackCallback(), live widget",
            probe_nbtrack_widget,
            fit_nbtrack_widget,
            full_steps,
        ),
        Contestant(
            "nbtrack", "nbtrack NbtrackCallback(display=False)", probe_nbtrack, fit_nbtrack_plain, full_steps
        ),
        Contestant(
            "nbtrack-patch",
            "nbtrack auto-attached (%load_ext patch), widget",
            probe_nbtrack_widget,
            fit_nbtrack_patched,
            full_steps,
        ),
        Contestant(
            "wandb", 'W&B offline WandbMetricsLogger(log_freq="batch")', probe_wandb, fit_wandb, full_steps
        ),
        Contestant(
            "tensorboard", 'TensorBoard(update_freq="batch")', probe_tensorboard, fit_tensorboard, full_steps
        ),
        Contestant(
            "mlflow",
            "MLflow keras autolog(log_every_n_steps=1), SQLite",
            probe_mlflow,
            fit_mlflow,
            mlflow_steps,
        ),
    ]
    if mlflow_steps < full_steps:
        every[-1].baseline = "baseline-short"
        every.append(
            Contestant(
                "baseline-short",
                f"no callback, {mlflow_steps:,} steps (MLflow's baseline)",
                probe_keras,
                fit_baseline,
                mlflow_steps,
            )
        )
    if args.only:
        wanted = {k.strip() for k in args.only.split(",")} | {"baseline"}
        if "mlflow" in wanted:
            wanted.add("baseline-short")
        known = {c.key for c in every}
        unknown = wanted - known - {"baseline-short"}
        if unknown:
            raise SystemExit(
                f"--only: unknown contestant(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        every = [c for c in every if c.key in wanted]
    return every


def run_one(entry: Contestant, job: FitJob) -> Sample | None:
    """One fit of one contestant in a fresh directory; marks the contestant unavailable on failure."""
    job.workdir.mkdir(parents=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return entry.fit(job)
    except Exception as exc:
        entry.unavailable = f"failed: {short_reason(exc)}"
        print(f"  {entry.label}: {entry.unavailable}", flush=True)
        traceback.print_exc(limit=4)
        return None
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)


def run_fits(entries: list[Contestant], data: Data, args: argparse.Namespace, root: Path) -> None:
    warm = data.head(args.warmup_steps, args.batch_size)
    print(f"\nwarm-up: one untimed fit of {args.warmup_steps} steps per contestant", flush=True)
    for entry in entries:
        if entry.unavailable is None:
            sample = run_one(entry, FitJob(warm, args.batch_size, 1, root / f"{entry.key}-warmup"))
            if sample is not None:
                print(f"    {entry.key:<15} {sample.fit_s:7.2f} s", flush=True)
    for repeat in range(args.repeats):
        order = entries if repeat % 2 == 0 else entries[::-1]
        print(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(c.key for c in order if c.unavailable is None),
            flush=True,
        )
        for entry in order:
            if entry.unavailable is not None:
                continue
            job = FitJob(
                data.head(entry.steps, args.batch_size),
                args.batch_size,
                args.epochs,
                root / f"{entry.key}-r{repeat}",
            )
            sample = run_one(entry, job)
            if sample is None:
                continue
            sample.repeat = repeat
            entry.samples.append(sample)
            extra = ""
            if sample.widget:
                w = sample.widget
                extra = (
                    f"   widget: {w['refreshes']:.0f} refreshes ({w['refresh_s'] * 1000:.0f} ms, "
                    f"{w['refresh_updates']:.0f} updates), {w['messages']:.0f} messages in all"
                )
            print(
                f"    {entry.key:<15} fit {sample.fit_s:7.2f} s   cpu {sample.cpu_s:7.2f} s   others {sample.others_s:6.2f} s{extra}",
                flush=True,
            )


# -- part 1: where nbtrack's time goes (one extra, untimed-for-the-table fit) -------------------------
def thread_cpu_seconds(prefix: str) -> dict[str, float]:
    """CPU time of this process's live threads whose name starts with `prefix` (Linux /proc; 10 ms ticks)."""
    import threading

    found = {}
    for thread in threading.enumerate():
        if not thread.name.startswith(prefix) or thread.native_id is None:
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            found[thread.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return found


DIAGNOSED_HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end")


def timed_callback(hooks: dict[str, list[float]], threads: dict[str, float]) -> type:
    """NbtrackCallback with each hook of DIAGNOSED_HOOKS timed into `hooks`; `threads` gets the CPU time of
    nbtrack's own threads just before finish() stops them."""
    from nbtrack.keras import NbtrackCallback

    def timed(name: str) -> Callable[..., None]:
        base = getattr(NbtrackCallback, name)

        def hook(self: Any, *a: Any, **k: Any) -> None:
            if name == "on_train_end":  # nbtrack's own threads, just before finish() stops them
                threads.update(thread_cpu_seconds("nbtrack"))
            t0 = time.perf_counter()
            base(self, *a, **k)
            hooks.setdefault(name, []).append(time.perf_counter() - t0)

        return hook

    return type("TimedCallback", (NbtrackCallback,), {n: timed(n) for n in DIAGNOSED_HOOKS})


def diagnose(data: Data, args: argparse.Namespace, root: Path, baseline: list[float]) -> None:
    """One fit with the widget, the callback's hooks timed by a thin subclass; optionally under cProfile.

    Wall-clock differences between fits are only as good as the machine is quiet; the time spent inside
    nbtrack's hooks on the training thread is a direct measure of what nbtrack adds there, whatever the noise.
    `baseline`: the fit times of the no-callback baseline, to put that time in proportion."""
    hooks: dict[str, list[float]] = {}
    threads: dict[str, float] = {}
    TimedCallback = timed_callback(hooks, threads)
    job = FitJob(data, args.batch_size, args.epochs, root / "diagnose")
    job.workdir.mkdir(parents=True)
    profiler = cProfile.Profile() if args.profile else None
    try:
        with environ(NBTRACK_STORE=str(job.workdir / "nbtrack")), recording_notebook() as notebook:
            model = build_model()
            if profiler is not None:
                profiler.enable()
            fit_s = timed_fit(model, job, [TimedCallback()]).fit_s
            if profiler is not None:
                profiler.disable()
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)

    print(
        f"\n## Where nbtrack's time goes on the training thread (one fit with the widget, {fit_s:.2f} s"
        f"{' under cProfile' if profiler else ''})\n"
    )
    total = print_hooks(hooks, notebook.refreshes)
    print(
        f"\nhooks total = {100 * total / fit_s:.2f} % of this fit's wall time"
        + (
            f", {100 * total / median(baseline):.2f} % of the median baseline fit ({fmt_seconds(median(baseline))}), "
            f"{100 * total / min(baseline):.2f} % of the fastest ({fmt_seconds(min(baseline))})"
            if baseline
            else ""
        )
        + " (on_train_begin: init + dashboard; on_epoch_end: epoch log + model-best.keras save; "
        "on_train_end: finish, final snapshot)."
    )
    if threads:
        cpu = sum(threads.values())
        print(
            f"nbtrack's background threads, CPU time until on_train_end: {fmt_seconds(cpu)} "
            f"({100 * cpu / fit_s:.2f} % of the fit's wall time; "
            + ", ".join(
                f"{name.split('-', 2)[1] if '-' in name else name} {fmt_seconds(v)}"
                for name, v in threads.items()
            )
            + ")"
        )
    print_capture_time()
    if profiler is not None:
        print_profile(profiler)


def print_hooks(hooks: dict[str, list[float]], refreshes: list[Any]) -> float:
    """The table of the timed hooks and the widget's refreshes among them; returns the hooks' total time."""
    rows = []
    for name in DIAGNOSED_HOOKS:
        times = hooks.get(name, [])
        rows.append(
            [
                name,
                f"{len(times):,}",
                fmt_seconds(sum(times)),
                fmt_seconds(median(times)),
                fmt_seconds(max(times, default=float("nan"))),
            ]
        )
    total = sum(sum(v) for v in hooks.values())
    rows.append(["all hooks", "", fmt_seconds(total), "", ""])
    rows.append(
        [
            "  of which Run.refresh_views (widget)",
            f"{len(refreshes):,}",
            fmt_seconds(sum(r.seconds for r in refreshes)),
            fmt_seconds(median([r.seconds for r in refreshes])),
            fmt_seconds(max((r.seconds for r in refreshes), default=float("nan"))),
        ]
    )
    print(table(["hook", "calls", "total", "median", "max"], rows))
    return total


def print_capture_time() -> None:
    try:
        from nbtrack.capture.environment import capture

        t0 = time.perf_counter()
        capture()
        print(
            f"environment capture (writer's side thread, CPU-bound, joined by finish): {fmt_seconds(time.perf_counter() - t0)}"
        )
    except Exception as exc:  # an internal helper: its absence is not an error of the benchmark
        print(f"environment capture not timed: {short_reason(exc)}")


def print_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"nbtrack", 25)
    print("\ncProfile, nbtrack functions by cumulative time:\n```")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    print("```")


# -- part 1: report ---------------------------------------------------------------------------------
def pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:+.1f} %"


def overhead(entry: Contestant, base: Contestant | None) -> tuple[float, float, float]:
    """Overhead of `entry` over `base`: (of the medians, median of the per-repeat pairs, of the minimums).

    Other processes on the machine only ever add time, so the minimums are the least disturbed estimate."""
    nan = float("nan")
    if base is None or not base.samples or not entry.samples or base is entry:
        return nan, nan, nan
    of_base = {s.repeat: s.fit_s for s in base.samples}
    fits = [s.fit_s for s in entry.samples]
    pairs = [s.fit_s / of_base[s.repeat] - 1 for s in entry.samples if s.repeat in of_base]
    ratio = median(fits) / median(list(of_base.values())) - 1
    return ratio, median(pairs), min(fits) / min(of_base.values()) - 1


def report_fits(entries: list[Contestant], args: argparse.Namespace) -> None:
    by_key = {c.key: c for c in entries}
    print_fit_table(entries, args)
    for entry in entries:
        if not entry.samples:
            print(f"{entry.label} unavailable: {entry.unavailable or 'not measured'}")
    print_mlflow_scaled(by_key)
    print_widget_during_fits(entries)
    print_fit_targets(by_key)


def fit_row(entry: Contestant, by_key: dict[str, Contestant], epochs: int) -> list[Any]:
    """One contestant's row of the fit table."""
    if not entry.samples:
        return [entry.label, f"{entry.steps:,}", "unavailable", *["-"] * 9, 0]
    noop = by_key.get("noop")
    fits = [s.fit_s for s in entry.samples]
    is_base = entry.key in ("baseline", "baseline-short")
    over, paired, of_min = overhead(entry, None if is_base else by_key.get(entry.baseline))
    vs_noop = float("nan")
    if entry.baseline == "baseline" and not is_base and entry is not noop:
        vs_noop = overhead(entry, noop)[0]
    outside = median([s.outside_s for s in entry.samples])
    return [
        entry.label,
        f"{entry.steps:,}",
        fmt_seconds(median(fits)),
        f"{fmt_seconds(min(fits))} - {fmt_seconds(max(fits))}",
        f"{1000 * median(fits) / (entry.steps * epochs):.3f} ms",
        pct(over),
        pct(paired),
        pct(of_min),
        pct(vs_noop),
        fmt_seconds(median([s.cpu_s for s in entry.samples])),
        fmt_seconds(median([s.others_s for s in entry.samples])),
        fmt_seconds(outside) if outside else "-",
        len(entry.samples),
    ]


def print_fit_table(entries: list[Contestant], args: argparse.Namespace) -> None:
    by_key = {c.key: c for c in entries}
    rows = [fit_row(entry, by_key, args.epochs) for entry in entries]
    print(
        f"\n## Fit overhead: seed MLP, batch size {args.batch_size}, {args.epochs} epoch(s), "
        f"{args.samples:,} + {args.val_samples:,} validation samples, medians of {args.repeats} repeats\n"
    )
    print(
        table(
            [
                "contestant",
                "steps/epoch",
                "fit (median)",
                "fit range (min - max)",
                "per step",
                "overhead",
                "paired overhead",
                "overhead of minimums",
                "vs no-op callback",
                "process CPU",
                "others' CPU",
                "outside fit",
                "n",
            ],
            rows,
        )
    )
    print(
        "\noverhead = median fit / median baseline fit - 1; paired overhead = median over repeats of fit / the same "
        "repeat's baseline - 1;\noverhead of minimums = fastest fit / fastest baseline fit - 1 (other processes only "
        "add time); vs no-op callback = median fit / median fit of the no-op callback - 1 (the tracker's "
        "own cost, with Keras calling batch hooks inline for both).\nper step = fit / steps (the fit includes "
        "validation). process CPU = CPU time of all threads during fit; others' CPU = CPU time other processes on "
        "the machine used meanwhile (/proc/stat; noise). outside fit = tracker setup + teardown\n"
        "that is not inside fit and not timed (wandb.init + run.finish; MLflow set_tracking_uri/set_experiment/autolog)."
    )


def print_mlflow_scaled(by_key: dict[str, Contestant]) -> None:
    """MLflow on fewer steps (--mlflow-steps): its extra time scaled to the full epoch."""
    mlflow = by_key.get("mlflow")
    if mlflow is None or mlflow.baseline != "baseline-short" or not mlflow.samples:
        return
    full = by_key.get("baseline")
    short = by_key.get("baseline-short")
    if full and full.samples and short and short.samples:
        base_full = median([s.fit_s for s in full.samples])
        extra = median([s.fit_s for s in mlflow.samples]) - median([s.fit_s for s in short.samples])
        scaled = extra * full.steps / mlflow.steps
        print(
            f"\nMLflow ran {mlflow.steps:,} of {full.steps:,} steps (--mlflow-steps); its overhead is "
            f"against a baseline of the same steps. Scaled to the full epoch (extra time x {full.steps / mlflow.steps:.2f}): "
            f"{fmt_seconds(base_full + scaled)} per fit, {pct(scaled / base_full)} (extrapolated, not measured)."
        )


def print_widget_during_fits(entries: list[Contestant]) -> None:
    widget_rows = []
    for entry in entries:
        stats = [s.widget for s in entry.samples if s.widget]
        if not stats:
            continue
        fit = median([s.fit_s for s in entry.samples])

        def med(k: str, stats: list[dict[str, float]] = stats) -> float:
            return median([w[k] for w in stats])

        widget_rows.append(
            [
                entry.label,
                f"{med('refreshes'):.0f}",
                f"{med('refreshes') / fit:.2f}",
                fmt_seconds(med("refresh_s")),
                f"{100 * med('refresh_s') / fit:.2f} %",
                f"{med('refresh_updates'):.0f}",
                f"{med('refresh_updates') / fit:.1f}",
                fmt_bytes(med("refresh_bytes") / max(med("refreshes"), 1)),
                f"{med('messages'):.0f}",
                f"{med('updates'):.0f}",
                fmt_bytes(med("bytes")),
            ]
        )
    if not widget_rows:
        return
    print("\n### The live widget during these fits (recording comm), medians\n")
    print(
        table(
            [
                "contestant",
                "refreshes",
                "refreshes/s",
                "time in refresh_views",
                "of fit",
                "updates by refreshes",
                "updates/s",
                "bytes/refresh",
                "all messages",
                "all updates",
                "all bytes",
            ],
            widget_rows,
        )
    )
    print(
        "\nrefreshes = Run.refresh_views calls (throttled from run.log, plus one at finish), timed on the training "
        "thread. all = also the widgets' creation\n(comm_open) and the full-state resend of every widget at finish "
        "(Dashboard.close), which happen once per fit."
    )


def print_fit_targets(by_key: dict[str, Contestant]) -> None:
    noop = by_key.get("noop")
    print("\n### Targets and references\n")
    for key in ("nbtrack-widget", "nbtrack", "nbtrack-patch"):
        entry = by_key.get(key)
        if entry is None:
            continue
        over, paired, of_min = overhead(entry, by_key.get("baseline"))
        if over != over:
            print(f"- {entry.label}: not measured ({entry.unavailable or 'no samples'})")
            continue
        line = (
            f"- {entry.label}: overhead <= {TARGET_OVERHEAD:.0%}: {pct(over)} -> {verdict(over <= TARGET_OVERHEAD)} "
            f"(paired {pct(paired)}; of the minimums {pct(of_min)} -> {verdict(of_min <= TARGET_OVERHEAD)})"
        )
        if noop is not None and noop.samples:
            vs = overhead(entry, noop)
            line += f"; vs the no-op callback: {pct(vs[0])} (of the minimums {pct(vs[2])})"
        print(line)
    for key, reference in REFERENCE_OVERHEAD.items():
        entry = by_key.get(key)
        if entry is None:
            continue
        over, paired, of_min = overhead(entry, by_key.get(entry.baseline))
        measured = (
            f"{pct(over)} (paired {pct(paired)}, of the minimums {pct(of_min)})"
            if over == over
            else f"unavailable: {entry.unavailable or 'no samples'}"
        )
        print(f"- {entry.label}: {measured}; reference from the issue: {pct(reference)}")


# -- part 2: widget traffic -------------------------------------------------------------------------
@dataclass
class Traffic:
    steps: int
    loop_s: float
    free: bool  # free-running (no pacing)
    refreshes: list[Refresh]
    updates_per_refresh: list[int]
    bytes_per_refresh: list[int]
    updates: int
    messages: int
    max_message_bytes: int
    total_bytes: int
    close_messages: int
    close_bytes: int
    points_per_series: int
    series: int  # charted series (lines)
    max_points: int  # nbtrack.run.live.MAX_POINTS: the cap on points per series


def log_loop(run: Any, steps: int, epoch_every: int, seconds: float) -> float:
    """`steps` log calls of 2 batch metrics, 5 epoch metrics every `epoch_every` steps. With `seconds`, paced so
    that step i ends no earlier than (i + 1) * seconds / steps (sleep, then spin): a stand-in for training
    compute, so that the run lasts long enough for the widget's throttle to matter. Returns the loop time."""
    log = run.log
    clock = time.perf_counter
    dt = seconds / steps if seconds > 0 else 0.0
    t0 = clock()
    for i in range(steps):
        log({"batch/loss": 1.0 / (1.0 + (i % 977)), "batch/accuracy": (i % 1013) / 1013.0})
        if i % epoch_every == epoch_every - 1:
            epoch = i // epoch_every
            log(
                {
                    "loss": 1.0 / (2 + epoch),
                    "accuracy": 1.0 - 1.0 / (2 + epoch),
                    "val_loss": 1.1 / (2 + epoch),
                    "val_accuracy": 1.0 - 1.2 / (2 + epoch),
                    "epoch": float(epoch),
                },
                step=i,
            )
        if dt:
            deadline = t0 + (i + 1) * dt
            remaining = deadline - clock()
            if remaining > 0.0005:
                time.sleep(remaining - 0.0003)  # releases the GIL, like a framework's compute
            while clock() < deadline:
                pass
    return clock() - t0


def traffic(steps: int, epoch_every: int, seconds: float, root: Path) -> Traffic:
    import nbtrack

    with recording_notebook() as notebook:
        run = nbtrack.init(project="bench-traffic", store=root / f"traffic-{steps}")
        if not notebook.displays or run._dashboard_obj is None:
            raise RuntimeError("nbtrack.init did not show the dashboard in the recording notebook")
        start_msg, start_refresh = len(notebook.messages), len(notebook.refreshes)
        loop_s = log_loop(run, steps, epoch_every, seconds)
        end_msg, end_refresh = len(notebook.messages), len(notebook.refreshes)
        run.finish()
        from nbtrack.render.charts import metric_family
        from nbtrack.run.live import MAX_POINTS

        live = run.live
        points = max(len(live.get(k).step) for k in live.keys())
        series = sum(1 for k in live.keys() if metric_family(k) is not None)
        stored = len(run.store.history(run.id, "batch/loss"))
        run.store.close()
    if stored != steps:
        raise RuntimeError(f"traffic run of {steps:,} steps stored {stored:,} batch/loss points")
    during = notebook.messages[start_msg:end_msg]
    refreshes = notebook.refreshes[start_refresh:end_refresh]
    windows = [notebook.messages[r.first : r.last] for r in refreshes]
    closing = notebook.messages[end_msg:]
    return Traffic(
        steps=steps,
        loop_s=loop_s,
        free=seconds <= 0,
        refreshes=refreshes,
        updates_per_refresh=[sum(1 for m in w if m.is_update) for w in windows],
        bytes_per_refresh=[sum(m.nbytes for m in w) for w in windows],
        updates=sum(1 for m in during if m.is_update),
        messages=len(during),
        max_message_bytes=max((m.nbytes for m in during), default=0),
        total_bytes=sum(m.nbytes for m in during),
        close_messages=len(closing),
        close_bytes=sum(m.nbytes for m in closing),
        points_per_series=points,
        series=series,
        max_points=MAX_POINTS,
    )


def fmt_bytes(value: float) -> str:
    if value != value:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f} MB"
    if value >= 1e3:
        return f"{value / 1e3:.1f} kB"
    return f"{value:.0f} B"


def report_traffic(results: list[Traffic], epoch_every: int, seconds: float) -> None:
    pacing = f"paced to >= {seconds:g} s per run" if seconds > 0 else "free-running"
    print(
        f"\n## Widget traffic without a browser: run.log loop (2 batch metrics per step, 5 epoch metrics every "
        f"{epoch_every:,} steps, {pacing}), dashboard on a recording comm\n"
    )
    print_traffic_table(results)
    print("\n### Targets\n")
    for t in results:
        # The throttle: a refresh, then none for max(0.25 s, messages sent / 20 per s); so over a loop of T seconds
        # at most 1 + 4 T refreshes and 20 T comm updates plus the last refresh's.
        refresh_bound = 1 + MAX_REFRESH_HZ * t.loop_s
        update_bound = MESSAGE_BUDGET * t.loop_s + max(t.updates_per_refresh, default=0)
        print(
            f"- {t.steps:,} steps in {fmt_seconds(t.loop_s)}: refreshes <= 1 + {MAX_REFRESH_HZ:g}/s x loop = "
            f"{refresh_bound:.0f}: {len(t.refreshes)} -> {verdict(len(t.refreshes) <= refresh_bound)}; "
            f"comm updates <= {MESSAGE_BUDGET:g}/s x loop + one refresh's = {update_bound:.0f}: {t.updates} -> "
            f"{verdict(t.updates <= update_bound)}"
        )
    if results:
        print_refresh_bound(results)
    if len(results) >= 2:
        print_refresh_trend(results)


def print_traffic_table(results: list[Traffic]) -> None:
    rows = []
    for t in results:
        refresh_times = [r.seconds for r in t.refreshes]
        rows.append(
            [
                f"{t.steps:,}",
                fmt_seconds(t.loop_s),
                f"{len(t.refreshes):,}",
                f"{len(t.refreshes) / t.loop_s:.2f}",
                f"{t.updates:,}",
                f"{t.updates / t.loop_s:.1f}",
                f"{t.messages / t.loop_s:.1f}",
                f"{median(t.updates_per_refresh):.0f} / {max(t.updates_per_refresh, default=0)}",
                fmt_bytes(median(t.bytes_per_refresh)),
                fmt_bytes(median(t.bytes_per_refresh[-10:])),
                fmt_bytes(max(t.bytes_per_refresh, default=0)),
                fmt_bytes(t.max_message_bytes),
                fmt_bytes(t.total_bytes),
                fmt_seconds(median(refresh_times)),
                f"{100 * sum(refresh_times) / t.loop_s:.2f} %",
                f"{t.points_per_series:,}",
            ]
        )
    print(
        table(
            [
                "steps",
                "loop",
                "refreshes",
                "refreshes/s",
                "comm updates",
                "updates/s",
                "all msgs/s",
                "updates/refresh (median / max)",
                "bytes/refresh (median)",
                "bytes/refresh (last 10)",
                "bytes/refresh (max)",
                "max bytes/msg",
                "bytes total",
                "refresh time (median)",
                "loop time in refreshes",
                "points/series sent (max)",
            ],
            rows,
        )
    )
    print(
        "\nbytes = JSON content + binary buffers of the comm messages (message headers not counted); one refresh = the "
        "messages sent by one Run.refresh_views.\nCounted from the first to the last log call; the final snapshot "
        "sent by finish() (every widget's full state) is not included: "
        + ", ".join(
            f"{t.steps:,} steps: {t.close_messages} messages, {fmt_bytes(t.close_bytes)}" for t in results
        )
        + "."
    )


def print_refresh_bound(results: list[Traffic]) -> None:
    """Target: bytes per refresh bounded independently of the run's length."""
    # A series update sends x and y as float64 arrays of at most MAX_POINTS points, plus its JSON.
    cap = max(t.max_points for t in results)
    per_message = 2 * cap * 8 + JSON_SLACK
    series = max(t.series for t in results)
    per_refresh = series * per_message + 2 * JSON_SLACK  # + the header and the progress bar
    points_ok = all(t.points_per_series <= cap for t in results)
    message_ok = all(t.max_message_bytes <= per_message for t in results)
    refresh_ok = all(max(t.bytes_per_refresh, default=0) <= per_refresh for t in results)
    sizes = ", ".join(
        f"{t.steps:,}: {t.points_per_series:,} points, {fmt_bytes(t.max_message_bytes)}/msg, "
        f"{fmt_bytes(max(t.bytes_per_refresh, default=0))}/refresh"
        for t in results
    )
    print(
        f"- bytes/refresh bounded independently of run length (points per series <= {cap:,}; bytes per message "
        f"<= 2 x {cap:,} x 8 B + {fmt_bytes(JSON_SLACK)} = {fmt_bytes(per_message)}; bytes per refresh <= "
        f"{series} series x that + header and bar = {fmt_bytes(per_refresh)}), max at each size: {sizes} -> "
        f"{verdict(points_ok and message_ok and refresh_ok)}"
    )


def print_refresh_trend(results: list[Traffic]) -> None:
    """For information: bytes per refresh of the shortest run against the longest."""
    cap = max(t.max_points for t in results)
    first, last = results[0], results[-1]
    a, b = median(first.bytes_per_refresh[-10:]), median(last.bytes_per_refresh[-10:])
    print(
        f"- for information: median bytes/refresh of the last 10 refreshes {fmt_bytes(a)} at {first.steps:,} steps, "
        f"{fmt_bytes(b)} at {last.steps:,} steps ({b / a if a else float('nan'):.2f}x). A refresh sends only the "
        f"series that changed since the last one (median {median(first.updates_per_refresh):.0f} vs "
        f"{median(last.updates_per_refresh):.0f} updates per refresh here: the epoch series change in every refresh "
        "once epochs end faster than refreshes), each reduced to <= "
        f"{cap:,} points; the reduced size cycles between about {cap // 3:,} and {2 * cap // 3:,} points as "
        "buckets merge, so it moves with the run length but has no trend."
    )


# -- --json -----------------------------------------------------------------------------------------
def paired_overhead(entry: Contestant, base: Contestant | None) -> list[float]:
    """Per repeat: this fit / the same repeat's baseline fit - 1, in %."""
    if base is None:
        return []
    of_base = {s.repeat: s.fit_s for s in base.samples}
    return [100 * (s.fit_s / of_base[s.repeat] - 1) for s in entry.samples if s.repeat in of_base]


def record_fits(entries: list[Contestant], args: argparse.Namespace, results: Results) -> None:
    by_key = {c.key: c for c in entries}
    base = by_key.get("baseline")
    size = f"seed MLP, batch {args.batch_size}, {args.samples:,} samples + {args.val_samples:,} validation"
    if base is not None and base.samples:
        results.add(
            "fit.time.baseline",
            f"`model.fit`, no callback (1 epoch, {base.steps:,} steps)",
            "s",
            [s.fit_s for s in base.samples],
            note=size,
        )
    overheads: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.key in ("baseline", "baseline-short"):
            continue
        name = f"fit overhead vs no callback: {entry.label}"
        if entry.steps != (base.steps if base else entry.steps):
            name += f" ({entry.steps:,} steps, against a baseline of the same steps)"
        if not entry.samples:
            results.unavailable(f"fit.overhead.{entry.key}", name, "%", entry.unavailable or "not measured")
            continue
        samples = paired_overhead(entry, by_key.get(entry.baseline))
        overheads[entry.key] = results.add(
            f"fit.overhead.{entry.key}",
            name,
            "%",
            samples,
            note="per repeat: fit / the same repeat's baseline fit - 1",
        )
    main = overheads.get("nbtrack-widget")
    if main is not None:
        nb_factor = median([1 + v / 100 for v in main["samples"]])
        for key in ("noop", "wandb", "tensorboard", "mlflow"):
            entry = by_key.get(key)
            if entry is None:
                continue
            if key not in overheads:
                results.compare(main, entry.label, unavailable=entry.unavailable or "not measured")
                continue
            peer = overheads[key]["samples"]
            results.compare(
                main,
                entry.label,
                peer,
                ratio=median([1 + v / 100 for v in peer]) / nb_factor,
                note="ratio = the peer's fit / baseline over nbtrack's fit / baseline (medians of the paired "
                "per-repeat factors; > 1: nbtrack slows fit less)",
            )
        widget = by_key["nbtrack-widget"]
        hooks = [
            100 * s.hooks_s / b
            for s in widget.samples
            for b in [next((x.fit_s for x in base.samples if x.repeat == s.repeat), float("nan"))]
            if base is not None and s.hooks_s == s.hooks_s
        ]
        results.add(
            "fit.hooks.nbtrack-widget",
            "time inside nbtrack's callback hooks on the training thread, % of the same repeat's baseline fit",
            "%",
            hooks,
            note="measured directly (a thin subclass times each hook); less sensitive to other load than the wall "
            "clock, though a hook's time includes waiting for a core",
        )


def record_traffic(runs: list[Traffic], results: Results, seconds: float) -> None:
    pacing = f"paced to >= {seconds:g} s" if seconds > 0 else "free-running"
    for steps in sorted({t.steps for t in runs}):
        mine = [t for t in runs if t.steps == steps]
        label = f"{steps:,} steps ({pacing})"
        results.add(
            f"traffic.msgs_per_s.{steps}",
            f"widget comm messages/s during the loop, {label}",
            "msgs/s",
            [t.messages / t.loop_s for t in mine],
        )
        results.add(
            f"traffic.updates_per_s.{steps}",
            f"widget comm updates/s during the loop, {label}",
            "msgs/s",
            [t.updates / t.loop_s for t in mine],
        )
        results.add(
            f"traffic.refreshes_per_s.{steps}",
            f"widget refreshes/s, {label}",
            "1/s",
            [len(t.refreshes) / t.loop_s for t in mine],
        )
        results.add(
            f"traffic.bytes_per_refresh_max.{steps}",
            f"largest refresh of the run (bytes of comm messages), {label}",
            "B",
            [max(t.bytes_per_refresh, default=0) for t in mine],
        )
        results.add(
            f"traffic.bytes_per_refresh_median.{steps}",
            f"median refresh of the run (bytes of comm messages), {label}",
            "B",
            [median(t.bytes_per_refresh) for t in mine],
        )


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=60_000,
        help="training samples (default 60,000: 3,750 steps at batch 16)",
    )
    parser.add_argument("--val-samples", type=int, default=10_000, help="validation samples (default 10,000)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fit (default 1)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed fits per contestant; medians are reported (default 5)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=300, help="steps of the untimed warm-up fit per contestant"
    )
    parser.add_argument(
        "--mlflow-steps",
        type=int,
        default=0,
        help="train MLflow on only this many steps per epoch, against a baseline of the same steps "
        "(default 0: the full epoch)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contestant keys (the baseline always runs): "
        "noop, nbtrack-widget, nbtrack, nbtrack-patch, wandb, tensorboard, mlflow",
    )
    parser.add_argument(
        "--no-diagnose", action="store_true", help="skip the extra fit that times nbtrack's hooks"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run that extra fit under cProfile and print nbtrack's functions",
    )
    parser.add_argument(
        "--traffic-steps", default="10000,100000,1000000", help="run lengths of part 2 (comma-separated)"
    )
    parser.add_argument(
        "--epoch-every", type=int, default=3_750, help="part 2: an epoch-level log every N steps"
    )
    parser.add_argument(
        "--traffic-seconds",
        type=float,
        default=5.0,
        help="part 2: pace each run to last at least this long (default 5; 0: free-running)",
    )
    parser.add_argument(
        "--traffic-repeats", type=int, default=5, help="part 2: runs per run length (default 5)"
    )
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    parser.add_argument("--skip-fit", action="store_true", help="skip part 1 (fit overhead)")
    parser.add_argument("--skip-traffic", action="store_true", help="skip part 2 (widget traffic)")
    parser.add_argument(
        "--tmp", default=None, help="directory for the runs' files (default: the system temp dir)"
    )
    args = parser.parse_args(argv)
    counts = (
        args.samples,
        args.val_samples,
        args.batch_size,
        args.epochs,
        args.repeats,
        args.warmup_steps,
        args.epoch_every,
        args.traffic_repeats,
    )
    if min(counts) <= 0:
        parser.error("sizes, --repeats, --warmup-steps and --epoch-every must be positive")
    return args


def print_header() -> None:
    print("# bench_fit\n")
    packages = [
        "nbtrack",
        "numpy",
        "keras",
        "tensorflow-cpu",
        "ipywidgets",
        "bqplot",
        "wandb",
        "tensorboard",
        "mlflow",
    ]
    print("\n".join(machine_lines(packages)))
    print(f"command:  {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"nbtrack:  {source_state()}")


def measure_fits(args: argparse.Namespace, root: Path, results: Results) -> None:
    """Part 1: every contestant's fits, their report, and the diagnosing fit with nbtrack's hooks timed."""
    full_steps = -(-args.samples // args.batch_size)
    entries = contestants(args, full_steps)
    print("\ncontestants:")
    probe_all(entries)
    data = make_data(args.samples, args.val_samples)
    run_fits(entries, data, args, root)
    report_fits(entries, args)
    record_fits(entries, args, results)
    if not args.no_diagnose and any(c.key.startswith("nbtrack") and c.samples for c in entries):
        base = next((c for c in entries if c.key == "baseline"), None)
        diagnose(data, args, root, [s.fit_s for s in base.samples] if base else [])


def measure_traffic(args: argparse.Namespace, steps_list: list[int], root: Path, results: Results) -> None:
    """Part 2: --traffic-repeats logging loops of each length, the dashboard on a recording comm."""
    runs = []
    for steps in steps_list:
        for repeat in range(args.traffic_repeats):
            print(f"\ntraffic: {steps:,} steps, run {repeat + 1}/{args.traffic_repeats}", flush=True)
            runs.append(traffic(steps, args.epoch_every, args.traffic_seconds, root))
    report_traffic(runs, args.epoch_every, args.traffic_seconds)
    record_traffic(runs, results, args.traffic_seconds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    traffic_steps = [int(s.replace("_", "")) for s in args.traffic_steps.split(",") if s.strip()]
    print_header()
    results = Results("bench_fit")
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-fit-", dir=args.tmp) as tmp:
        root = Path(tmp)
        print(f"working directory: {tmp}")
        if not args.skip_fit:
            measure_fits(args, root, results)
        if not args.skip_traffic and traffic_steps:
            measure_traffic(args, traffic_steps, root, results)
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
