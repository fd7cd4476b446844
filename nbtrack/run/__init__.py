"""Runs: `init`, `Run.log`, config, summary and `finish`, shaped after the W&B API.

run = nbtrack.init(project="test_project", config={"lr": 1e-3})
run.log({"loss": 0.31, "accuracy": 0.9})
run.finish()

Beside it: `writer` (the background thread that batches writes to the store), `live` (the in-memory history
the live views read) and `spill` (where a final write goes when the store cannot take it). A run shows itself
only through views the UI layer lends it (`nbtrack.common.views`): it never imports the UI.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.common.values import check_key, flatten_metrics, to_jsonable
from nbtrack.errors import ConfigError, NbtrackError, RunFinishedError

if TYPE_CHECKING:
    from nbtrack.run.writer import RunWriter
    from nbtrack.store.base import MetricStats, Store

DEFAULT_PROJECT = "uncategorized"
_END_STATES = ("finished", "failed", "interrupted", "stopped-early")

# Words that say which way a metric improves, for `best_<metric>` when no goal was defined.
_LOWER_IS_BETTER = (
    "loss",
    "error",
    "err",
    "mse",
    "mae",
    "rmse",
    "perplexity",
    "ppl",
    "cer",
    "wer",
    "distance",
)
_HIGHER_IS_BETTER = (
    "acc",
    "accuracy",
    "auc",
    "precision",
    "recall",
    "f1",
    "iou",
    "dice",
    "map",
    "bleu",
    "r2",
    "score",
)

_current: Run | None = None
_active: set[Run] = set()
_lock = threading.RLock()


def infer_goal(key: str) -> str | None:
    """``"minimize"`` / ``"maximize"`` from a metric's name (``val_loss``, ``train/accuracy``), else None."""
    words = [w for w in key.lower().replace("/", "_").replace("-", "_").replace(".", "_").split("_") if w]
    for word in reversed(words):
        if word in _LOWER_IS_BETTER:
            return "minimize"
        if word in _HIGHER_IS_BETTER or word.endswith("accuracy"):
            return "maximize"
    return None


class Config(MutableMapping[str, Any]):
    """A run's hyper-parameters. Setting a key again to a different value raises `ConfigError`, since the
    run's record would no longer say how it was trained; use ``update(..., allow_val_change=True)`` on purpose.
    Keys can also be read as attributes: ``run.config.lr``.
    """

    def __init__(self, run: Run, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_data", {})
        self.update(values)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise ConfigError(f"Config keys cannot be removed once set (tried to remove {key!r}).")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"config has no key {name!r}; keys: {', '.join(self._data) or '(none)'}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

    def update(
        self, values: Mapping[str, Any] | Any = (), /, allow_val_change: bool = False, **kwargs: Any
    ) -> None:  # type: ignore[override]
        values = _as_mapping(values, "config")
        changes = {**values, **kwargs}
        converted: dict[str, Any] = {}
        for key, value in changes.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"config keys must be non-empty strings, got {key!r}.")
            new = to_jsonable(value)
            if key in self._data and self._data[key] != new and not allow_val_change:
                raise ConfigError(
                    f"config[{key!r}] is already {self._data[key]!r}; setting it to {new!r} would make the run's "
                    "record lie about how it was trained. If the change is intended, use "
                    f"run.config.update({{{key!r}: ...}}, allow_val_change=True)."
                )
            converted[key] = new
        if converted:
            self._run._check_open("change config")
            self._data.update(converted)
            self._run._config_dirty = True

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)


class Summary(MutableMapping[str, Any]):
    """A run's final numbers: the last logged value of every metric plus anything set here.

    ``best_<metric>``, ``min_<metric>`` and ``max_<metric>`` read the whole history's best, lowest and highest
    value of a logged metric (best follows `Run.define_metric`'s goal, or the name: ``loss`` is minimized,
    ``accuracy`` maximized) unless a key of that name was set.
    """

    def __init__(self, run: Run) -> None:
        self._run = run
        self._user: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._user:
            return self._user[key]
        last = self._run._last
        if key in last:
            return last[key]
        derived = self._derived(key)
        if derived is not None:
            return derived
        raise KeyError(key)

    def _derived(self, key: str) -> float | None:
        for prefix in ("best_", "min_", "max_"):
            if key.startswith(prefix) and key[len(prefix) :] in self._run._last:
                stats = self.stats(key[len(prefix) :])
                kind = prefix[:-1]
                if kind == "best":
                    goal = self._run._goals.get(stats.key) or infer_goal(stats.key)
                    if goal is None:
                        return None
                    kind = "min" if goal == "minimize" else "max"
                return stats.min if kind == "min" else stats.max
        return None

    def __setitem__(self, key: str, value: Any) -> None:
        check_key(key, "run.summary")
        self._run._check_open("change the summary")
        self._user[key] = to_jsonable(value)
        self._run._summary_dirty = True

    def __delitem__(self, key: str) -> None:
        del self._user[key]
        self._run._summary_dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter({**self._run._last, **self._user})

    def __len__(self) -> int:
        return len({**self._run._last, **self._user})

    def __repr__(self) -> str:
        return f"Summary({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        return {**self._run._last, **self._user}

    def stats(self, key: str) -> MetricStats:
        """Count, last, min, max and step range of one logged metric, over its whole history."""
        stats = self._run._metric_stats()
        if key not in stats:
            raise KeyError(f"no metric {key!r} has been logged; logged: {', '.join(stats) or '(none)'}")
        return stats[key]


def _as_mapping(values: Any, what: str) -> Mapping[str, Any]:
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return values
    if isinstance(values, (list, tuple)) and not values:
        return {}
    if hasattr(values, "__dict__") and not isinstance(values, type):  # argparse.Namespace and the like
        return {k: v for k, v in vars(values).items() if not k.startswith("_")}
    raise TypeError(f"{what} must be a dict (or an argparse.Namespace), got {type(values).__name__}.")


class Run:
    """One training run. Create it with `nbtrack.init`; see the module docstring for an example."""

    def __init__(
        self,
        store: Store,
        *,
        project: str,
        config: Mapping[str, Any],
        name: str | None,
        tags: Sequence[str],
        notes: str | None,
        system_interval: float = 0.0,
        seed_info: dict[str, Any] | None = None,
    ) -> None:
        from nbtrack.run.writer import RunWriter

        self._store = store
        self._last: dict[str, float] = {}
        # Called with the logged values whenever a log call holds "epoch" (a sweep's Hyperband rungs);
        # a hook returning True asks training to stop (the Keras callback stops fit; loops read stop_requested).
        self.epoch_hooks: list[Any] = []
        self.stop_requested = False
        self._known_keys: set[str] = set()
        self._events: list[Any] = []
        self._environment: dict[str, Any] = {}
        # Live views (the notebook dashboard): fed from `log` at most every `_views_interval` seconds.
        self._live_points: list[Any] | None = None
        self._views: list[Any] = []
        self._next_refresh = 0.0
        self._dashboard_obj: Any = None
        self.live: Any = None
        from nbtrack.run.live import Progress

        self.progress = Progress()
        self._goals: dict[str, str] = {}
        self._step = 0
        self._state = "running"
        self._config_dirty = self._summary_dirty = False
        self._finished = False
        self.config = Config(self, config)
        self._config_dirty = False
        self.summary = Summary(self)
        self.created: float = time.time()
        self.ended: float | None = None
        pending = self._open_record(store, project=project, name=name, tags=tags, notes=notes)
        self._labels_dirty: dict[str, Any] = {}  # name, notes, tags assigned since the last flush
        self._labels_lock = threading.Lock()  # assigned on the user's thread, taken by the writer's

        self.seed_info: dict[str, Any] = dict(seed_info or {})  # the seed in effect, for replicate
        try:  # W&B's run.dir exists at once: code may save files there before the first log
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _warn_files(self, exc)

        from nbtrack.capture.logs import OutputCapture, RunLog

        self.output = RunLog()  # what the run prints; its lines go to output.log
        self._unwritten: list[str] = []  # lines an append to output.log failed to write (a full disk)
        self._capture = OutputCapture(self.output) if os.environ.get("NBTRACK_CAPTURE", "1") != "0" else None
        self._writer: RunWriter = RunWriter(
            store,
            self.id,
            collect_metadata=self._dirty_metadata,
            on_first_flush=self._write_environment,
            after_flush=self._append_output,
            unwritten_output=self._take_output,
            create=pending,
        )
        self._system_live: deque[Any] = deque()  # samples for the live views, drained on the main thread
        self._system = _start_system_sampler(self, system_interval)

    def _open_record(
        self, store: Store, *, project: str, name: str | None, tags: Sequence[str], notes: str | None
    ) -> dict[str, Any] | None:
        """Create the run's record and take its id and labels; returns what the writer creates it with, if pending."""
        from nbtrack.common.names import new_run_id

        creation = {
            "run_id": new_run_id(),
            "project": project,
            "name": name,
            "config": self.config.as_dict(),
            "tags": tuple(tags),
            "notes": notes,
            "created": self.created,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        record, pending = _create_record(store, creation)
        self.id: str = record.id
        self._name: str = record.name
        self.project: str = record.project
        self._tags: tuple[str, ...] = record.tags
        self._notes: str | None = record.notes
        return pending

    def _write_environment(self) -> dict[str, Any]:
        """The writer's first flush: capture the environment, write its files beside the run, store it."""
        from nbtrack.capture.environment import capture, requirements_txt

        env = capture(self.created)
        env["seed"] = dict(self.seed_info)
        directory = self.dir
        directory.mkdir(parents=True, exist_ok=True)
        packages = env.get("packages")
        if isinstance(packages, dict) and "error" not in packages:
            _write_whole(directory / "requirements.txt", requirements_txt(packages))
        git = env.get("git")
        self._environment = env
        if isinstance(git, dict) and git.get("diff"):
            _write_whole(directory / "git.diff", git.pop("diff"))
        elif isinstance(git, dict):
            git.pop("diff", None)
        _write_json(directory / "environment.json", env)
        return {"environment": env}

    # -- logging ------------------------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int | None = None, *, commit: bool = True) -> None:
        """Record metrics at `step` (default: the next step). Nested dicts become ``outer/inner`` keys.

        Args:
            data: metric name -> number (int, float, bool, numpy scalar, 0-d array; NaN and ±inf are kept).
            step: the global step; omitted, it is one more than the last step used.
            commit: False keeps the step for the next call (several calls, one step).
        """
        if self._finished:
            raise RunFinishedError(
                f"run {self.name} ({self.id}) is {self._state}; start a new one with nbtrack.init()."
            )
        if type(data) is dict:
            # Fast path: float values under names already validated. Anything else is checked in full.
            known = self._known_keys
            for key, value in data.items():
                if type(value) is not float or key not in known:
                    values = flatten_metrics(data)
                    known.update(values)
                    break
            else:
                values = data.copy()
        elif isinstance(data, Mapping):
            values = flatten_metrics(data)
            self._known_keys.update(values)
        else:
            raise TypeError(
                f"run.log(data): data must be a dict of metric name -> number, got {type(data).__name__}."
                + (" Did you mean run.log({name: value})?" if isinstance(data, (int, float)) else "")
            )
        if step is None:
            step = self._step
        elif type(step) is not int:
            if isinstance(step, bool) or not hasattr(step, "__index__"):
                raise TypeError(
                    f"run.log(step=...): step must be an int, got {type(step).__name__} {step!r}."
                )
            step = int(step.__index__())
        if step >= self._step:
            self._step = step + 1 if commit else step
        self._last.update(values)
        when = time.time()
        self._writer.append(step, when, values)
        if self.epoch_hooks and "epoch" in values:
            self._run_epoch_hooks(values)
        live = self._live_points
        if live is not None:
            live.append((step, when, values))
            if time.monotonic() >= self._next_refresh:
                self.refresh_views()

    def _run_epoch_hooks(self, values: dict[str, float]) -> None:
        for hook in list(self.epoch_hooks):
            try:
                if hook(self, values):
                    self.stop_requested = True
            except Exception as exc:  # a hook's fault never stops training
                self._warn_hook(exc)

    def _warn_hook(self, exc: BaseException) -> None:
        if not getattr(self, "_hook_warned", False):
            self._hook_warned = True
            import warnings

            from nbtrack.errors import NbtrackWarning

            warnings.warn(
                f"nbtrack: an epoch hook failed ({exc!r}); training goes on.", NbtrackWarning, stacklevel=3
            )

    def event(self, kind: str, message: str, *, step: int | None = None, **data: Any) -> None:
        """Record something that happened (``"early_stopping"``, ``"interrupted"``...) with optional details."""
        from nbtrack.store.base import RunEvent

        check_key(kind, "run.event")
        self._check_open("record an event")
        self._events.append(RunEvent(time.time(), kind, str(message), step, to_jsonable(data)))

    def define_metric(self, key: str, goal: str) -> None:
        """Say which way `key` improves (``"minimize"`` or ``"maximize"``), for ``summary["best_<key>"]``."""
        check_key(key, "define_metric")
        if goal not in ("minimize", "maximize"):
            raise ValueError(f"define_metric: goal must be 'minimize' or 'maximize', got {goal!r}.")
        self._goals[key] = goal
        self._summary_dirty = True

    # -- name, notes and tags: assignable while the run is live, stored with the next flush (as in W&B) --
    @property
    def name(self) -> str:
        """The display name; ``run.name = "baseline"`` renames the run in the store."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._set_label("name", _check_name(value, "run.name"))

    @property
    def notes(self) -> str | None:
        """Free text about the run; ``run.notes = "..."`` is stored (None or "" clears it)."""
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"run.notes must be a string or None, got {type(value).__name__}.")
        self._set_label("notes", value or None)

    @property
    def tags(self) -> tuple[str, ...]:
        """The run's tags; ``run.tags = ["a"]`` or ``run.tags += ("b",)`` is stored."""
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._set_label("tags", _check_tags(value, "run.tags"))

    def _set_label(self, field: str, value: Any) -> None:
        self._check_open(f"change the run's {field}")
        setattr(self, f"_{field}", value)
        with self._labels_lock:
            self._labels_dirty[field] = value
        if self._views:
            self.refresh_views()  # the dashboard's header shows the name

    @property
    def step(self) -> int:
        """The step the next `log` call without `step=` will use."""
        return self._step

    @property
    def state(self) -> str:
        return self._state

    @property
    def dir(self) -> Path:
        """The directory of the run's files."""
        return self._store.run_dir(self.id)

    @property
    def store(self) -> Store:
        return self._store

    def save(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Copy a file into the run's files (W&B's ``run.save``); returns where it now is.

        Raises:
            FileNotFoundError: `path` is not a file.
            ValueError: `name` would leave the run's folder (``..``, an absolute path).
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"run.save: {source} is not a file.")
        target = self._file_target(name or source.name, "run.save")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != target.resolve():
            _copy_file(source, target)
        return target

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Copy a file or a folder into the run's ``artifacts/`` (copied, never referenced in place).

        The file or folder named is copied as `cp -r` does: symlinks inside a folder are copied as links,
        never their targets (a link to ``~/.ssh`` stays a link, which the Files pane and exports never follow).

        Args:
            path: the file or folder to keep with the run.
            name: its name in the run (may hold ``/`` subfolders); default the source's name.
        """
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"run.log_artifact: {source} does not exist.")
        target = self._file_target(f"artifacts/{name or source.name}", "run.log_artifact")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            _copy_tree(source, target)
        else:
            _copy_file(source, target)
        relative = target.relative_to(self.dir.resolve()).as_posix()  # `target` is resolved
        self.event("artifact", f"artifact {relative}", name=relative)
        return target

    def _file_target(self, name: str, where: str) -> Path:
        """`name` inside the run's folder; names that would escape it are refused."""
        self._check_open("add files")
        text = str(name)
        parts = text.replace("\\", "/").split("/")
        if "\x00" in text or not parts[-1].strip():
            raise ValueError(
                f"{where}: the name {name!r} is empty or holds a NUL character; give a file name."
            )
        if os.path.isabs(text) or ".." in parts or any(not part.strip() for part in parts):
            raise ValueError(
                f"{where}: the name {name!r} would leave the run's folder; use a relative name such as "
                "'model.keras' or 'checkpoints/last.keras' (no '..', no absolute path)."
            )
        root = self.dir.resolve()
        target = (root / text).resolve()
        if root not in target.parents:
            raise ValueError(f"{where}: the name {name!r} resolves outside the run's folder {root}.")
        return target

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything logged so far is committed to the store; False if that failed."""
        if self._finished:
            return self._writer.error is None
        return self._writer.flush(timeout)

    # -- live views ---------------------------------------------------------------------------------
    def attach_view(self, view: Any) -> None:
        """Feed `view` (``refresh(changed)``, ``close(state)``, ``interval``) from this run's `log` calls."""
        self._ensure_live()
        self._views.append(view)

    def _ensure_live(self) -> None:
        if self.live is None:
            from nbtrack.run.live import LiveHistory

            if self._last:  # nothing to read back before the first log (and the store may be locked)
                self.flush()
            self.live = LiveHistory.from_store(self._store, self.id)  # what was logged before a view existed
            self._live_points = []

    def refresh_views(self) -> None:
        """Hand points logged since the last refresh to the views; a failing view is warned about and dropped."""
        points = self._live_points or []
        if self._live_points is not None:
            self._live_points = []
        system = self._system_live
        if system:
            points = points + [system.popleft() for _ in range(len(system))]
        changed = self.live.add(points) if self.live is not None else set()
        for view in list(self._views):
            try:
                view.refresh(changed)
            except Exception as exc:
                self._drop_view(view, exc)
        self._next_refresh = time.monotonic() + max((v.interval for v in self._views), default=0.25)

    def _drop_view(self, view: Any, exc: BaseException) -> None:
        import warnings

        from nbtrack.errors import NbtrackWarning

        if view in self._views:
            self._views.remove(view)
        warnings.warn(
            f"nbtrack's live view of run {self.name} failed ({type(exc).__name__}: {exc}) and was switched off; "
            "the run is still being recorded.",
            NbtrackWarning,
            stacklevel=3,
        )

    def set_model_graph(self, graph: Any) -> None:
        """Keep a model's graph with the run (``model.json``) and show it in the dashboard's Model tab."""
        dashboard = self._dashboard_obj
        if dashboard is not None:
            dashboard.model.show(graph)
        directory = self.dir
        directory.mkdir(parents=True, exist_ok=True)
        _write_whole(directory / "model.json", graph.to_json())

    def _dashboard(self) -> Any:
        """This run's notebook dashboard, made on first use; None when widgets are not installed or fail."""
        if self._dashboard_obj is None:
            try:
                from nbtrack.common import views

                dashboard_class = views.view(
                    "dashboard"
                )()  # lent by the UI layer; ImportError without widgets
                self._ensure_live()
                dashboard = dashboard_class(self)
            except ImportError as exc:
                self._drop_view(None, ImportError(f"{exc}. Install it with `pip install 'nbtrack[widgets]'`"))
                return None
            except Exception as exc:
                self._drop_view(None, exc)
                return None
            self.attach_view(dashboard)
            self._dashboard_obj = dashboard
        return self._dashboard_obj

    def _close_views(self) -> None:
        if self._live_points is not None:
            self.refresh_views()
        for view in list(self._views):
            try:
                view.close(self._state)
            except Exception as exc:
                self._drop_view(view, exc)
        self._views = []

    def _metric_stats(self) -> dict[str, MetricStats]:
        self.flush()
        return self._store.metric_stats(self.id)

    def _dirty_metadata(self, new_points: bool) -> dict[str, Any]:
        """Called by the writer thread: config/summary snapshots changed since the last flush."""
        meta: dict[str, Any] = {}
        with self._labels_lock:
            if self._labels_dirty:
                meta["labels"], self._labels_dirty = self._labels_dirty, {}
        if self._events:
            events, self._events = self._events, []
            meta["events"] = events
        if self._config_dirty:
            self._config_dirty = False
            meta["config"] = self.config.as_dict()
        if self._summary_dirty or new_points:
            self._summary_dirty = False
            summary = self.summary.as_dict()
            if self._goals:
                summary = {**summary, "_goals": dict(self._goals)}
            meta["summary"] = summary
        return meta

    def _append_output(self) -> None:
        """Writer thread: append the lines printed since the last flush to output.log.

        If that fails (a full disk), the file is cut back to where it was and the lines wait for the next flush.
        """
        lines = self._take_output()
        if lines:
            try:
                directory = self.dir
                directory.mkdir(parents=True, exist_ok=True)
                data = ("\n".join(lines) + "\n").encode("utf-8", errors="replace")
                with open(directory / "output.log", "ab", buffering=0) as log:
                    start = log.seek(0, os.SEEK_END)
                    try:
                        written = 0
                        while written < len(data):
                            written += log.write(data[written:])
                    except BaseException:
                        log.truncate(start)  # no half-written line, and none written twice by the retry
                        raise
            except BaseException:
                self._unwritten = lines
                raise

    def _take_output(self) -> list[str]:
        """Lines printed and not yet in output.log (the writer spills them if the disk stays full)."""
        lines, self._unwritten = self._unwritten + self.output.drain(), []
        return lines

    def _write_record_files(self) -> None:
        """config.json, summary.json and the notebook's code (code.py, code.ipynb) into the run's files."""
        try:
            directory = self.dir
            directory.mkdir(parents=True, exist_ok=True)
            _write_json(directory / "config.json", self.config.as_dict())
            _write_json(directory / "summary.json", self.summary.as_dict())
            from nbtrack.capture.environment import session_code

            code = session_code()
            if code:
                _write_whole(directory / "code.py", code["py"])
                if code.get("ipynb"):
                    _write_whole(directory / "code.ipynb", code["ipynb"])
        except Exception as exc:  # the run is already safe in the store; its file copies are a convenience
            _warn_files(self, exc)

    def _check_open(self, action: str) -> None:
        if self._finished:
            raise RunFinishedError(f"cannot {action}: run {self.name} ({self.id}) is {self._state}.")

    # -- ending -------------------------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, *, state: str | None = None) -> None:
        """End the run: commit everything and record its state. Calling it again does nothing.

        Args:
            exit_code: as in W&B: non-zero marks the run ``failed``.
            state: ``finished``, ``failed``, ``interrupted`` or ``stopped-early`` (a sweep stopped it); overrides
                `exit_code`.
        """
        if state is None:
            state = "failed" if exit_code else "finished"
        if state not in _END_STATES:
            raise ValueError(f"finish(state=...): expected one of {', '.join(_END_STATES)}, got {state!r}.")
        self._end(state)

    def _end(self, state: str, background: bool = False) -> None:
        """`finish`; with `background`, a final write that takes more than a moment (another process holds the
        store's lock) goes on in the writer's thread, and the process waits for it at exit."""
        global _current
        with _lock:
            if self._finished:
                return
            self._finished = True
            self._state = state
            self.ended = time.time()
            self._summary_dirty = True
            self.progress.training = False
            if self._system is not None:
                self._system.stop()
            if self._capture is not None:
                self._capture.stop()
            else:
                self.output.close()
            self._writer.close(state, self.ended, background=background)
            if self._writer.deleted:  # `nbtrack rm --force` took it while it ran: files written since go too
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                self._write_record_files()
            self._close_views()
            _active.discard(self)
            if _current is self:
                _current = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            import traceback

            self.output.add_lines("".join(traceback.format_exception(exc_type, exc, tb)).splitlines())  # type: ignore[arg-type]
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish(state="interrupted")
        else:
            self.finish(state="failed")

    def __repr__(self) -> str:
        return f"<Run {self.name} ({self.id}) project={self.project!r} state={self._state}>"

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f"<div><b>nbtrack run</b> <code>{escape(self.name)}</code> ({escape(self.id)}) in project "
            f"<code>{escape(self.project)}</code>: <b>{escape(self._state)}</b>, stored in "
            f"<code>{escape(self._store.location)}</code></div>"
        )


INIT_LOCK_SECONDS = (
    1.0  # the most `init` waits for another process's write lock before starting the run anyway
)


def _create_record(store: Store, creation: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """The new run's record, and None; or, while another process holds the store's write lock, a record made
    here and the arguments the writer creates the run with once the lock frees (training does not wait)."""
    from nbtrack.store.base import RunRecord, StoreLockedError

    try:
        with store.waiting_at_most(INIT_LOCK_SECONDS):
            return store.create_run(**creation), None
    except StoreLockedError as exc:
        reason = str(exc)
        pending = {**creation, "name": creation["name"] or _provisional_name(store, creation["project"])}
    import warnings

    from nbtrack.errors import NbtrackWarning

    warnings.warn(
        f"nbtrack: {reason} Run {pending['name']} ({pending['run_id']}) starts anyway: what it logs is kept in "
        "memory and written when the lock frees (or kept in a local file for `nbtrack push` if it is still held "
        "when the run finishes).",
        NbtrackWarning,
        stacklevel=4,
    )
    fields = {k: v for k, v in pending.items() if k != "run_id"}
    return RunRecord(id=pending["run_id"], state="running", heartbeat=pending["created"], **fields), pending


def _provisional_name(store: Store, project: str) -> str:
    """``adjective-noun-N`` with N one more than the project's runs, read without the lock (a number another
    process takes meanwhile repeats; the random words keep the names apart)."""
    from nbtrack.common.names import new_display_name

    try:
        count = next((p.runs for p in store.projects() if p.name == project), 0)
    except NbtrackError:
        count = 0
    return new_display_name(count + 1)


def _copy_file(source: Path | str, target: Path) -> None:
    """Copy a file's content to `target`; a symlink already at `target` is replaced, never written through."""
    if target.is_symlink():
        target.unlink()
    shutil.copy2(source, target)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a folder into the run: links are copied as links, never followed, and nothing is written through a
    link already in the run's folder (it is replaced). Sockets and FIFOs are left out."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    target.mkdir(exist_ok=True)
    for entry in os.scandir(source):
        destination = target / entry.name
        if entry.is_symlink():
            if destination.is_symlink() or destination.is_file():
                destination.unlink()
            elif destination.is_dir():
                shutil.rmtree(destination)
            os.symlink(os.readlink(entry.path), destination)
        elif entry.is_dir(follow_symlinks=False):
            _copy_tree(Path(entry.path), destination)
        elif entry.is_file(follow_symlinks=False):
            _copy_file(entry.path, destination)


def _warn_files(run: Run, exc: BaseException) -> None:
    import warnings

    from nbtrack.errors import NbtrackWarning

    warnings.warn(f"nbtrack could not write the files of run {run.name}: {exc}", NbtrackWarning, stacklevel=4)


def _write_json(path: Path, value: Any) -> None:
    import json

    _write_whole(path, json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, allow_nan=True) + "\n")


def _write_whole(path: Path, text: str) -> None:
    """Write a run file whole or not at all: a full disk must not leave a cut-off model.json for readers."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # "[Errno 28] No space left on device: '.../model.json'"
        raise


def system_interval() -> float:
    """Seconds between system samples: $NBTRACK_SYSTEM_INTERVAL (0 turns sampling off), default 1."""
    from nbtrack.capture.system import DEFAULT_INTERVAL

    text = os.environ.get("NBTRACK_SYSTEM_INTERVAL", "").strip()
    try:
        return float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        raise ValueError(
            f"NBTRACK_SYSTEM_INTERVAL must be a number of seconds (0 turns sampling off), got {text!r}."
        ) from None


def _start_system_sampler(run: Run, interval: float) -> Any:
    """The run's system sampler, or None when sampling is off or psutil is not installed."""
    from nbtrack.capture.system import SystemSampler, psutil_available

    if interval <= 0 or not psutil_available():
        return None
    writer, live = run._writer, run._system_live

    def sink(index: int, when: float, values: dict[str, float]) -> None:
        writer.append(index, when, values)  # thread-safe
        if run.live is not None:
            live.append((index, when, values))  # a deque, drained by the main thread

    return SystemSampler(sink, interval=interval, name=run.id)


def init(
    project: str | None = None,
    config: Mapping[str, Any] | Any = None,
    name: str | None = None,
    tags: Sequence[str] = (),
    notes: str | None = None,
    store: Any = None,
    seed: int | None = None,
) -> Run:
    """Start a run and make it the current one (finishing the previous one in this process).

    Args:
        project: groups runs; default $NBTRACK_PROJECT or ``"uncategorized"``.
        config: hyper-parameters (a dict or argparse.Namespace); values JSON can't hold are stored readably.
        name: display name; default ``adjective-noun-N``.
        store: a directory (default $NBTRACK_STORE or ./nbtrack-runs).
        seed: seeds Python, NumPy and Keras (default $NBTRACK_SEED); recorded either way, for `nbtrack replicate`.

    Example:
        run = nbtrack.init(project="mnist", config={"lr": 1e-3})
        run.log({"loss": 0.3}); run.finish()
    """
    from nbtrack.store import open_store

    project = project if project is not None else os.environ.get("NBTRACK_PROJECT") or DEFAULT_PROJECT
    if not isinstance(project, str) or not project.strip():
        raise ValueError(f"init(project=...): project must be a non-empty string, got {project!r}.")
    if name is not None:
        name = _check_name(name, "init(name=...)")
    if notes is not None and not isinstance(notes, str):
        raise TypeError(f"init(notes=...): notes must be a string, got {type(notes).__name__}.")
    tags = _check_tags(tags, "init(tags=...)")
    if seed is None and os.environ.get("NBTRACK_SEED"):
        seed = _env_seed(os.environ["NBTRACK_SEED"])
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ValueError(f"init(seed=...): seed must be an int in [0, 2**32), got {seed!r}.")
    replicates = os.environ.get("NBTRACK_REPLICATES")  # set by a notebook `nbtrack replicate` wrote
    if replicates:
        tags = (*tags, f"replicates:{replicates}")
        notes = (notes + "\n" if notes else "") + f"Replicates run {replicates}."
    config = _as_mapping(config, "init(config=...)")
    interval = system_interval()

    global _current
    with _lock:
        if _current is not None:
            _current._end("finished", background=True)  # never held up by another process's lock
        opened = open_store(store)
        run = Run(
            opened,
            project=project.strip(),
            config=config,
            name=name,
            tags=tags,
            notes=notes,
            system_interval=interval,
            seed_info=_seed_everything(seed),
        )
        _current = run
        _active.add(run)
        _install_exit_hooks()
    if not os.environ.get("NBTRACK_SILENT"):
        print(f"nbtrack: run {run.name} ({run.id}) in project {run.project!r}, stored in {opened.location}")
    if not _embedded:
        from nbtrack.common import views

        views.view("show_run")(run)  # in a notebook: the run's live dashboard (the UI layer lends it)
    return run


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: name must be a non-empty string, got {name!r}.")
    return name


def _check_tags(tags: Any, where: str) -> tuple[str, ...]:
    """Tags as a tuple of non-empty strings; one string is one tag."""
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(tags or ())
    bad = [t for t in tags if not isinstance(t, str) or not t]
    if bad:
        raise TypeError(f"{where}: tags must be non-empty strings, got {bad!r}.")
    return tags


def _env_seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"NBTRACK_SEED must be an integer, got {text!r}.") from None


def _seed_everything(seed: int | None) -> dict[str, Any]:
    """Seed Python, NumPy and Keras with `seed` (Keras only when installed); what is in effect, for the record."""
    import importlib.util
    import random

    data: dict[str, Any] = {"seed": seed, "python_hash_seed": os.environ.get("PYTHONHASHSEED")}
    if seed is None:
        data["note"] = "no seed given: Python, NumPy and Keras used their own (not reproducible)"
        return data
    random.seed(seed)
    seeded = ["Python"]
    try:
        import numpy as np

        np.random.seed(seed)
        seeded.append("NumPy")
    except ImportError:
        pass
    if "keras" in sys.modules or importlib.util.find_spec("keras") is not None:
        try:
            import keras

            keras.utils.set_random_seed(seed)  # Python, NumPy and the backend's own generator
            seeded.append(f"Keras ({keras.backend.backend()})")
        except Exception as exc:  # a broken Keras install must not stop the run
            data["keras_error"] = repr(exc)
    data["seeded"] = seeded
    return data


_embedded = 0  # > 0 while a container (the sweep view) shows its runs' dashboards itself


@contextlib.contextmanager
def embedded_views() -> Iterator[None]:
    """Runs started inside display no dashboard of their own (a sweep's live view holds them)."""
    global _embedded
    _embedded += 1
    try:
        yield
    finally:
        _embedded -= 1


def current_run() -> Run | None:
    """The run `init` started last in this process, until it finishes."""
    return _current


def _require_current(what: str) -> Run:
    if _current is None:
        raise NbtrackError(f"nbtrack.{what}() needs a run: call nbtrack.init(project=...) first.")
    return _current


def log(data: Mapping[str, Any], step: int | None = None, *, commit: bool = True) -> None:
    """`Run.log` on the current run."""
    _require_current("log").log(data, step, commit=commit)


def finish(exit_code: int | None = None, *, state: str | None = None) -> None:
    """`Run.finish` on the current run; does nothing when there is none."""
    if _current is not None:
        _current.finish(exit_code, state=state)


def active_runs() -> list[Run]:
    """Runs of this process that have not finished."""
    return list(_active)


# -- process exit -----------------------------------------------------------------------------------
_hooks_installed = False
_uncaught: list[BaseException] = []


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        _uncaught.append(exc)
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_finish_at_exit)


def _finish_at_exit() -> None:
    if _uncaught:
        state = "interrupted" if isinstance(_uncaught[-1], KeyboardInterrupt) else "failed"
    else:
        state = "finished"
    for run in list(_active):
        try:
            run.finish(state=state)
        except Exception:
            pass
    from nbtrack.run.writer import wait_for_background_writers

    wait_for_background_writers()
