"""The Keras callback: a thin adapter from Keras events to `Run.log`, for Keras 3 on any backend.

    model.fit(x, y, epochs=5, callbacks=[NbtrackCallback()])   # or just `%load_ext nbtrack`

It imports only `keras` (never tensorflow), so it works on the TensorFlow, JAX and PyTorch backends.
Batch metrics go to ``batch/<name>`` at the global step; epoch metrics (train and ``val_*``) keep their
names, with ``epoch`` and ``learning_rate``, at the epoch's last step.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from nbtrack.capture.interrupt import InterruptWatch
from nbtrack.errors import NbtrackWarning
from nbtrack.run import Run, current_run, infer_goal, init

MODES = ("auto", "min", "max")
BEST_MODEL_FILE = "model-best.keras"


class NbtrackCallback(keras.callbacks.Callback):
    """Log a Keras `fit` to an nbtrack run, show the live dashboard, keep the best model.

    Args:
        run: the run to log to; default the current run, else a new one (`nbtrack.init`), finished with `fit`.
        log_batches: log every batch's metrics (``batch/loss``...), not only each epoch's.
        monitor: the metric whose best value is kept (``best_<monitor>``, ``best_epoch``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name: losses are minimized, accuracies maximized).
        save_best: save ``model-best.keras`` into the run's files whenever `monitor` improves.
        display: show the live dashboard in the notebook cell (a line per epoch outside notebooks).
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_batches: bool = True,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best: bool = True,
        display: bool = True,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"NbtrackCallback(mode=...): expected one of {', '.join(MODES)}, got {mode!r}.")
        if run is not None and not isinstance(run, Run):
            raise TypeError(f"NbtrackCallback(run=...): expected an nbtrack Run, got {type(run).__name__}.")
        self.run = run
        self.log_batches = log_batches
        self.monitor = monitor
        self.mode = mode
        self.save_best = save_best
        self.display = display
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.fit_config: dict[str, Any] = {}  # filled by the %load_ext patch from fit's arguments
        self.peers: Sequence[Any] = ()  # the other callbacks of this fit, when known
        self._owns_run = False
        self._in_fit = False
        self._fit_model: int | None = None
        self._stop = None
        self._batch_keys: dict[str, str] = {}
        self._step = 0
        self._last_logs: Mapping[str, Any] = {}
        self._lr: float | None = None
        self._warned: set[str] = set()
        self._console = False
        self._stopped_by_user = False
        self._stopped_epoch = 0
        self._interrupts = InterruptWatch()  # a Ctrl-C that a finalizer swallows is raised at the next hook
        self.patched = False  # True when attached by the %load_ext patch, which reports fit's exceptions

    # -- fit lifecycle ------------------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._guard(self._train_begin)

    def _train_begin(self) -> None:
        self._fit_model = id(self.model)  # the guard below matches a failing fit to its callbacks by this
        _fitting.add(self)
        run = self.run or current_run()
        if run is None or run.state != "running":
            run = init(config=self.fit_config)
            self._owns_run = True
        self.run = run
        self._in_fit = True
        self._interrupts.start()
        self._stopped_by_user = False
        params = self.params or {}
        progress = run.progress
        progress.epochs = params.get("epochs")
        progress.steps_per_epoch = params.get("steps")
        progress.epoch, progress.step_in_epoch = 0, 0
        progress.started = time.time()
        progress.ended = None
        progress.training = True
        self._step = run.step
        from_params = {"epochs": params.get("epochs"), "steps_per_epoch": params.get("steps")}
        known = {k: v for k, v in from_params.items() if v is not None}
        for key, value in {**known, **self.fit_config, **self._model_config()}.items():
            if key not in run.config:
                run.config[key] = value
        self._lr = self._learning_rate()
        self._stop = None
        self._console = False
        if self.display:
            import nbtrack.ui

            if nbtrack.ui.in_notebook():
                dashboard = run._dashboard()
                if dashboard is not None:
                    dashboard.training_started()
                    dashboard.show()
                    self._stop = dashboard.stop_requested
            else:
                self._console = True
        self._register_cell_watch()
        self._guard(self._describe_model)

    def _describe_model(self) -> None:
        from nbtrack.capture.model_graph import describe_model

        self.run.set_model_graph(describe_model(self.model))  # type: ignore[union-attr]

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.run is not None:
            self.run.progress.epoch = epoch
            self.run.progress.step_in_epoch = 0

    # The batch path: convert the names, append, check the Stop flag. Nothing else.
    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        run = self.run
        if run is None:
            return
        step = self._step
        self._step = step + 1
        run.progress.step_in_epoch = batch + 1
        if logs:
            self._last_logs = logs
            if self.log_batches:
                names = self._batch_keys
                try:
                    run.log({names.get(k) or self._batch_key(k): v for k, v in logs.items()}, step=step)
                except Exception as exc:  # a value Keras produced that we cannot store: warn, go on
                    self._warn_once("batch", f"a batch could not be logged ({exc})")
        if self._stop is not None and self._stop.is_set():
            if not self._stopped_by_user:  # Keras still ends this epoch (on_epoch_end moves progress on)
                self._stopped_epoch = run.progress.epoch
            self._stopped_by_user = True
            self.model.stop_training = True
        self._interrupts.check()

    def _batch_key(self, key: str) -> str:
        name = self._batch_keys[key] = f"batch/{key}"
        return name

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._guard(self._epoch_end, epoch, dict(logs or {}))
        self._interrupts.check()

    def _epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        run = self.run
        if run is None:
            return
        lr = self._learning_rate()  # from the optimizer: after any change a callback made this epoch
        values = {k: v for k, v in logs.items() if _is_number(v)}
        values["epoch"] = epoch
        if lr is not None:
            values["learning_rate"] = lr
            if (
                self._lr is not None
                and not math.isclose(lr, self._lr, rel_tol=1e-9)
                and not self._scheduled()
            ):
                source = self._peer_named("ReduceLROnPlateau") or "a callback"
                run.event(
                    "learning_rate",
                    f"learning rate {self._lr:.4g} -> {lr:.4g} ({source})",
                    step=self._step - 1,
                    epoch=epoch,
                    old=self._lr,
                    new=lr,
                )
            self._lr = lr
        run.log(values, step=max(self._step - 1, 0))
        if run.stop_requested:  # an epoch hook (a sweep's Hyperband rung) asked to stop
            self.model.stop_training = True
        run.progress.epoch = epoch + 1
        run.progress.step_in_epoch = 0
        self._track_best(epoch, values)
        if self._console:
            from nbtrack.ui.console import epoch_line

            print(
                epoch_line(epoch, run.progress.epochs, time.time() - run.progress.started, values), flush=True
            )

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._guard(self._train_end)

    def _train_end(self) -> None:
        run = self.run
        _fitting.discard(self)
        self._interrupts.stop()
        if run is None or not self._in_fit:
            return
        self._in_fit = False
        self._end_progress(run)
        self._record_stop_reason()
        if self._owns_run:
            run.finish(state="interrupted" if self._stopped_by_user else "finished")
        else:
            run.refresh_views()
            dashboard = run._dashboard_obj
            if dashboard is not None:
                dashboard.close(run.state)  # the final snapshot of this fit; the run goes on

    def fit_failed(self, exc: BaseException) -> None:
        """Called when `fit` raised: the run is marked interrupted (KeyboardInterrupt) or failed, and ends."""
        _fitting.discard(self)
        run = self.run
        self._interrupts.stop()
        if run is None or not self._in_fit:
            return
        self._in_fit = False
        self._end_progress(run)
        interrupted = isinstance(exc, KeyboardInterrupt)
        state = "interrupted" if interrupted else "failed"
        import traceback

        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
        run.output.add_lines(lines)  # the notebook shows it as an error message, which nothing else captures
        try:
            if run.state == "running":
                from nbtrack.capture.logs import clean

                # one line: Keras wraps a layer's error in several, with ANSI bold around the message
                message = clean(" ".join(str(exc).split()))
                run.event(
                    state,
                    f"fit {state}: {type(exc).__name__}: {message}".rstrip(": "),
                    step=max(self._step - 1, 0),
                )
                run.finish(state=state)
        except Exception as inner:  # never hide the user's exception behind ours
            self._warn_once("fail", f"could not mark the run {state} ({inner})")

    # -- helpers ------------------------------------------------------------------------------------
    def _end_progress(self, run: Run) -> None:
        """The fit is over: its wall-time span is kept (live views shade it) and recorded as an event."""
        progress = run.progress
        progress.training = False
        progress.ended = time.time()
        if run.state == "running":
            run.event(
                "fit",
                f"fit ran {progress.ended - progress.started:.1f} s",
                step=max(self._step - 1, 0),
                started=progress.started,
                ended=progress.ended,
                epochs=progress.epoch,
            )

    def _guard(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        """Faults inside nbtrack are warned about once; training goes on."""
        try:
            fn(*args)
        except Exception as exc:
            self._warn_once(fn.__name__, f"{type(exc).__name__}: {exc}")

    def _warn_once(self, what: str, message: str) -> None:
        if what in self._warned:
            return
        self._warned.add(what)
        warnings.warn(f"nbtrack: {message}. Training goes on.", NbtrackWarning, stacklevel=3)

    def _track_best(self, epoch: int, values: dict[str, Any]) -> None:
        monitor = self.monitor
        if monitor not in values:
            fallback = monitor[4:] if monitor.startswith("val_") else None
            if fallback in values:
                if monitor != "val_loss":  # the default falls back quietly; a chosen monitor is worth a word
                    self._warn_once(
                        "monitor",
                        f"{monitor!r} is not logged (no validation data?); keeping the best {fallback!r} instead",
                    )
                monitor = fallback
            else:
                self._warn_once(
                    "monitor",
                    f"{monitor!r} is not among the logged metrics ({', '.join(values)}); no best model is kept",
                )
                return
        value = float(values[monitor])
        if math.isnan(value):
            return
        mode = self.mode if self.mode != "auto" else ("max" if infer_goal(monitor) == "maximize" else "min")
        if self.best is not None and not (value < self.best if mode == "min" else value > self.best):
            return
        self.best, self.best_epoch = value, epoch
        run = self.run
        assert run is not None
        run.summary[f"best_{monitor}"] = value
        run.summary["best_epoch"] = epoch
        if self.save_best:
            partial = run.dir / f".partial-{BEST_MODEL_FILE}"  # Keras wants the .keras suffix
            try:
                run.dir.mkdir(parents=True, exist_ok=True)
                # a save cut off by a full disk must not destroy the last good best model
                self.model.save(partial)
                os.replace(partial, run.dir / BEST_MODEL_FILE)
            except Exception as exc:
                partial.unlink(missing_ok=True)
                self._warn_once(
                    "save",
                    f"the best model (epoch {epoch + 1}) could not be saved to {run.dir / BEST_MODEL_FILE} "
                    f"({type(exc).__name__}: {exc}); a best model saved before is kept",
                )

    def _record_stop_reason(self) -> None:
        run = self.run
        assert run is not None
        step = max(self._step - 1, 0)
        loss = self._last_logs.get("loss") if self._last_logs else None
        if self._stopped_by_user:
            run.event(
                "stopped",
                f"training stopped from the dashboard at epoch {self._stopped_epoch + 1}",
                step=step,
                epoch=self._stopped_epoch,
            )
        elif isinstance(loss, float) and (math.isnan(loss) or math.isinf(loss)):
            run.event("nan_loss", f"training ended on a {loss} loss at step {step}", step=step)
        elif getattr(self.model, "stop_training", False):
            stopper = next((p for p in self.peers if type(p).__name__ == "EarlyStopping"), None)
            if stopper is not None and getattr(stopper, "stopped_epoch", 0):
                epoch = int(stopper.stopped_epoch)
                run.event(
                    "early_stopping",
                    f"EarlyStopping stopped training at epoch {epoch + 1} (monitor {stopper.monitor})",
                    step=step,
                    epoch=epoch,
                    monitor=stopper.monitor,
                )
            else:
                run.event("stop_training", "a callback set model.stop_training", step=step)

    def _peer_named(self, name: str) -> str | None:
        return name if any(type(p).__name__ == name for p in self.peers) else None

    def _optimizer(self) -> Any:
        return getattr(self.model, "optimizer", None)

    def _scheduled(self) -> bool:
        optimizer = self._optimizer()
        schedule = getattr(optimizer, "_learning_rate", None)
        return isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) or callable(schedule)

    def _learning_rate(self) -> float | None:
        optimizer = self._optimizer()
        if optimizer is None:
            return None
        try:
            value = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:
            return None
        return float(f"{value:.7g}")  # float32's digits: 0.001, not 0.0010000000474974513

    def _model_config(self) -> dict[str, Any]:
        """The optimizer's name, config and learning rate, and the loss, as run config."""
        config: dict[str, Any] = {}
        optimizer = self._optimizer()
        if optimizer is not None:
            try:
                opt_config = dict(optimizer.get_config())
                # Keras numbers auto-named optimizers (adam, adam_1, ...): that name says nothing about the
                # training and would show as a difference between otherwise identical runs. The class stays.
                if opt_config.get("name", "").startswith(type(optimizer).__name__.lower()):
                    opt_config.pop("name")
                config["optimizer"] = {"class": type(optimizer).__name__, **opt_config}
            except Exception:
                config["optimizer"] = {"class": type(optimizer).__name__}
            lr = self._learning_rate()
            if lr is not None:
                config["learning_rate"] = lr
        loss = getattr(self.model, "loss", None)
        if loss is not None:
            config["loss"] = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
        return config

    def _register_cell_watch(self) -> None:
        """A fallback for a fit the guard below cannot see (a `model.fit` bound before nbtrack.integrations.keras was
        imported): in IPython, a fit still open when the cell ends has failed."""
        if self.patched:
            return
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            return
        if shell is None:
            return

        def after_cell(result: Any) -> None:
            shell.events.unregister("post_run_cell", after_cell)
            if self._in_fit:
                error = getattr(result, "error_in_exec", None) or RuntimeError("fit did not finish")
                self.fit_failed(error)

        shell.events.register("post_run_cell", after_cell)


# -- fit's exceptions --------------------------------------------------------------------------------
# Keras 3 has no hook for a fit that raises: `fit` calls `on_train_begin`, and `on_train_end` only when training
# ends normally, so a callback alone never learns that training failed (a caught exception left the run
# `running`, later `finished`). Importing this module therefore wraps the backend trainer's `fit` (the class
# that defines it, below `keras.Model`) in a try/except that hands the exception, as it leaves `fit`, to the
# NbtrackCallbacks of that fit, then re-raises it untouched. The wrapper does nothing else: no arguments are
# read or changed, a fit without an NbtrackCallback is not affected, and `%load_ext`'s own patch of
# `keras.Model.fit` (restored by `%unload_ext`) sits above it independently.
_fitting: weakref.WeakSet[NbtrackCallback] = weakref.WeakSet()  # callbacks between train begin and end


def guard_fit(model_class: type) -> None:
    """Wrap the `fit` that `model_class` inherits (once) so an exception leaving it marks our runs failed."""
    owner = next((c for c in model_class.__mro__[1:] if "fit" in c.__dict__), None)
    if owner is None or getattr(owner.__dict__["fit"], "_nbtrack_guard", False):
        return
    original = owner.__dict__["fit"]

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            for callback in [c for c in _fitting if c._fit_model == id(self)]:
                callback._guard(
                    callback.fit_failed, exc
                )  # a fault of ours never replaces the user's exception
            raise

    fit._nbtrack_guard = True  # type: ignore[attr-defined]
    owner.fit = fit  # type: ignore[attr-defined]


guard_fit(keras.Model)


def fit_config(bound: Mapping[str, Any]) -> dict[str, Any]:
    """Run config from `fit`'s arguments (epochs, batch size, steps...), skipping data and callbacks."""
    keys = (
        "epochs",
        "batch_size",
        "steps_per_epoch",
        "validation_split",
        "validation_steps",
        "validation_freq",
        "shuffle",
        "initial_epoch",
    )
    config = {k: bound[k] for k in keys if k in bound and bound[k] is not None}
    if "batch_size" not in config and "x" in bound and hasattr(bound["x"], "shape"):
        config["batch_size"] = 32  # Keras' default for arrays
    return config


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
