"""`%load_ext nbtrack`: every Keras `fit` gets an `NbtrackCallback`, and the `%nbtrack` magic.

Loading imports neither keras nor tensorflow. `keras.Model.fit` (and `tf_keras`'s, where installed and
distinct) is patched at once if keras is already imported, else the moment keras itself is imported, however
that happens (`import keras`, `from keras import ...`, `tf.keras`, a helper module): a post-import hook on
exactly those two top-level names. A cell that never touches Keras (`LinearRegression().fit(X, y)`) imports
nothing.
"""

from __future__ import annotations

import ast
import functools
import inspect
import shlex
import sys
from typing import Any

from nbtrack.errors import NbtrackError

KERAS_MODULES = ("keras", "tf_keras")
USAGE = """Usage: %nbtrack status | on | off | runs [PROJECT] | report [-o PATH] | init project=NAME [name=RUN] [tags=a,b] [notes=TEXT] [key=value ...]
  status   the current run, the store, and whether fit is tracked automatically
  runs     the runs browser (projects, runs, open a run's dashboard, compare a selection)
  report   [NOTEBOOK] [-o report.html]: this notebook (as saved) as a self-contained HTML report
  on/off   attach nbtrack to every Keras fit (on) or not (off)
  init     start a run; other key=value pairs go to its config (values parsed as Python literals)"""


class _State:
    def __init__(self) -> None:
        self.shell: Any = None
        self.enabled = True
        self.patches: list[tuple[type, bool, Any]] = []  # (class, had its own fit, original fit)
        self.colab_widgets = False  # Colab's custom widget manager switched on (once per kernel)

    def patched_classes(self) -> list[type]:
        return [cls for cls, _, _ in self.patches]


_state = _State()


def load_ipython_extension(shell: Any) -> None:
    if _state.shell is shell:
        return  # loading twice is harmless
    if _state.shell is not None:
        unload_ipython_extension(_state.shell)
    _state.shell = shell
    _state.enabled = True
    shell.events.register("pre_run_cell", _pre_run_cell)
    shell.events.register("post_run_cell", _post_run_cell)
    shell.register_magic_function(nbtrack_magic, "line", "nbtrack")
    patch_imported()
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)  # first, so it sees keras' import before the finder that loads it
    enable_colab_widgets()
    report_crashes()


def enable_colab_widgets() -> None:
    """In Google Colab, switch on its widget manager for third-party widgets (bqplot, anywidget), once.

    Colab renders only the core ipywidgets until ``google.colab.output.enable_custom_widget_manager()`` runs;
    the dashboard would show "Error displaying widget" without it. Elsewhere this does nothing.
    """
    colab = sys.modules.get("google.colab")
    if colab is None or _state.colab_widgets:
        return
    _state.colab_widgets = True
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception as exc:  # an old or changed Colab: the static snapshot still shows
        import warnings

        from nbtrack.errors import NbtrackWarning

        warnings.warn(
            f"nbtrack could not enable Colab's custom widget manager ({type(exc).__name__}: {exc}); run "
            "`from google.colab import output; output.enable_custom_widget_manager()` to see live charts.",
            NbtrackWarning,
            stacklevel=2,
        )


def unload_ipython_extension(shell: Any) -> None:
    if _state.shell is None:
        return
    for event, fn in (("pre_run_cell", _pre_run_cell), ("post_run_cell", _post_run_cell)):
        try:
            shell.events.unregister(event, fn)
        except ValueError:
            pass
    shell.magics_manager.magics["line"].pop("nbtrack", None)
    while _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
    unpatch_all()
    _state.shell = None


# -- crashed runs --------------------------------------------------------------------------------------
REPORTED_CRASHES = (
    ".reported-crashes"  # in the store directory: ids of crashed runs already reported, one a line
)
MAX_CRASH_LINES = 5


def report_crashes(location: str | None = None) -> None:
    """Print one line for each crashed run of this host that no `%load_ext nbtrack` has reported yet.

    Only a local (directory) store that already exists is read: one read-only query for running-state runs,
    and only when one of them is not reported yet, the store itself (to tell crashed from running); reported ids
    are appended to ``<store>/.reported-crashes`` so each crash is told once. Never raises: a missing,
    unreadable or broken store just skips the report.
    """
    try:
        import os

        if location is None:
            location = os.environ.get("NBTRACK_STORE") or "nbtrack-runs"  # as nbtrack.store.resolve_location
        location = os.fspath(location)
        if "://" in location:
            return  # a database server is not contacted at load time
        location = os.path.abspath(os.path.expanduser(location))
        database = os.path.join(location, "nbtrack.db")
        if not os.path.isfile(database):
            return  # no store yet: no crash
        ledger = os.path.join(location, REPORTED_CRASHES)
        try:
            with open(ledger, encoding="utf-8") as f:
                reported = set(f.read().split())
        except FileNotFoundError:
            reported = set()
        # The cheap part, without importing the store (and numpy): are there unreported running-state runs?
        import sqlite3
        from urllib.parse import quote

        probe = sqlite3.connect(f"file:{quote(database)}?mode=ro", uri=True, timeout=2.0)
        try:
            running = {r[0] for r in probe.execute("SELECT id FROM runs WHERE state = 'running'")}
        finally:
            probe.close()
        if not running - reported:
            return
        import socket

        from nbtrack.store import open_store
        from nbtrack.store.base import RunQuery
        from nbtrack.store.query import parse

        store = open_store(location, create=False)
        try:
            crashed = store.search_runs(RunQuery(where=parse('state = "crashed"')))
        finally:
            store.close()
        host = socket.gethostname()
        new = sorted((r for r in crashed if r.host == host and r.id not in reported), key=lambda r: r.created)
        if not new:
            return
        with open(ledger, "a", encoding="utf-8") as out:
            out.write("".join(f"{r.id}\n" for r in new))
        for r in new[-MAX_CRASH_LINES:]:
            print(
                f"nbtrack: run {r.name} ({r.id}) in project {r.project} crashed (its process ended without "
                "finishing); its history up to then is kept."
            )
        if len(new) > MAX_CRASH_LINES:
            print(
                f"nbtrack: and {len(new) - MAX_CRASH_LINES} more crashed runs; "
                f"`nbtrack --store {shlex.quote(location)} ls --where \"state == 'crashed'\"` lists them."
            )
    except Exception:  # noqa: BLE001 - a report must never stop the extension from loading
        return


# -- patching ---------------------------------------------------------------------------------------
def patch_imported() -> None:
    """Patch `Model.fit` of every Keras already imported."""
    for name in KERAS_MODULES:
        module = sys.modules.get(name)
        model = getattr(module, "Model", None) if module is not None else None
        if isinstance(model, type) and model not in _state.patched_classes():
            _patch(model)


def _patch(model: type) -> None:
    own = "fit" in model.__dict__
    original = model.fit
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _state.enabled:
            return original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # let Keras report the bad arguments
        callbacks = bound.arguments.get("callbacks")
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            return original(self, *args, **kwargs)  # a CallbackList: leave it alone
        from nbtrack.integrations.keras import NbtrackCallback, fit_config

        given = list(callbacks or [])  # a new list: the caller's is never mutated
        ours = next((c for c in given if isinstance(c, NbtrackCallback)), None)
        if ours is None:
            ours = NbtrackCallback()
            given.append(ours)
        ours.patched = True
        ours.peers = [c for c in given if c is not ours]
        ours.fit_config = fit_config(bound.arguments)
        bound.arguments["callbacks"] = given
        try:
            return original(*bound.args, **bound.kwargs)
        except BaseException as exc:
            ours.fit_failed(exc)
            raise

    fit._nbtrack_original = original  # type: ignore[attr-defined]
    model.fit = fit  # type: ignore[method-assign]
    _state.patches.append((model, own, original))


def unpatch_all() -> None:
    for model, own, original in reversed(_state.patches):
        if own:
            model.fit = original  # type: ignore[method-assign]
        elif "fit" in model.__dict__:
            del model.fit
    _state.patches.clear()


class _KerasImportHook:
    """A `sys.meta_path` finder that patches `Model.fit` right after `keras` or `tf_keras` is imported.

    It answers only for those two top-level names, and only by asking the other finders for the real spec:
    the module is found and loaded exactly as without the hook, and its loader (that one module's instance)
    gets `exec_module` wrapped to patch once the module has run. Every other import is untouched.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in KERAS_MODULES or path is not None:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return None  # an unusual loader: left to the import system; the cell hooks still patch

        def exec_and_patch(module: Any) -> None:
            try:
                exec_module(module)
            finally:
                vars(loader).pop("exec_module", None)
            _patch_after_import()

        try:
            loader.exec_module = exec_and_patch
        except AttributeError:  # a loader with slots
            return None
        return spec


_HOOK = _KerasImportHook()


def _patch_after_import() -> None:
    try:
        patch_imported()
    except Exception as exc:  # never break the user's `import keras`
        import warnings

        from nbtrack.errors import NbtrackWarning

        warnings.warn(
            f"nbtrack could not attach to Keras' fit ({type(exc).__name__}: {exc}); fits are not tracked "
            "automatically (pass callbacks=[nbtrack.keras.NbtrackCallback()]).",
            NbtrackWarning,
            stacklevel=2,
        )


# Before and after each cell: a safety net for a keras imported past the hook (another finder put first).
def _pre_run_cell(info: Any = None) -> None:
    patch_imported()


def _post_run_cell(result: Any = None) -> None:
    patch_imported()


# -- the %nbtrack magic -----------------------------------------------------------------------------
def nbtrack_magic(line: str) -> None:
    """%nbtrack status | on | off | runs [PROJECT] | init project=NAME key=value ..."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        print(f"nbtrack: cannot parse {line!r}: {exc}\n{USAGE}")
        return
    command, args = (words[0], words[1:]) if words else ("", [])
    try:
        if command == "status":
            print(status_text())
        elif command in ("on", "off"):
            _state.enabled = command == "on"
            if _state.enabled:
                patch_imported()
            print(
                f"nbtrack: Keras fit is {'tracked automatically' if _state.enabled else 'not tracked'} "
                f"(%nbtrack {'off' if _state.enabled else 'on'} to change)."
            )
        elif command == "init":
            _magic_init(args)
        elif command == "report":
            _magic_report(args)
        elif command == "runs":
            from IPython.display import display

            from nbtrack.ui.browser import browse

            display(browse(args[0] if args else None))
        else:
            if command:
                print(f"nbtrack: unknown command {command!r}.")
            print(USAGE)
    except (NbtrackError, ValueError, TypeError, ImportError, OSError) as exc:
        print(f"nbtrack: {exc}")


def _magic_init(args: list[str]) -> None:
    from nbtrack.run import init

    options: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {arg!r}.\n{USAGE}")
        if key in ("project", "name", "notes", "store"):
            options[key] = value
        elif key == "tags":
            options["tags"] = [t for t in value.split(",") if t]
        else:
            config[key] = _literal(value)
    init(config=config, **options)


def _magic_report(args: list[str]) -> None:
    import os

    from nbtrack.capture.environment import notebook_path
    from nbtrack.reports import report

    output = None
    rest = []
    words = iter(args)
    for word in words:
        if word in ("-o", "--output"):
            output = next(words, None)
            if output is None:
                raise ValueError(f"-o needs a path.\n{USAGE}")
        else:
            rest.append(word)
    if len(rest) > 1:
        raise ValueError(f"report takes one notebook path, got {' '.join(rest)}.\n{USAGE}")
    path = rest[0] if rest else notebook_path()
    if not path or not os.path.isfile(path):
        found = f" (the kernel says {path!r}, which is not a file here)" if path else ""
        raise ValueError(
            f"cannot tell which notebook this kernel runs{found}. Pass its path: %nbtrack report path/to/notebook.ipynb"
        )
    written = report(path, output=output)
    print(
        f"nbtrack: wrote {written} ({written.stat().st_size:,} bytes) from {path} as last saved "
        "(save the notebook first to include its latest outputs)."
    )


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def status_text() -> str:
    from nbtrack.run import current_run
    from nbtrack.store import resolve_location

    run = current_run()
    lines = [
        f"run:        {f'{run.name} ({run.id}), project {run.project!r}, {run.state}, step {run.step}' if run else 'none (nbtrack.init or a Keras fit starts one)'}",
        f"store:      {run.store.location if run else resolve_location()}",
        f"keras fit:  {'tracked automatically' if _state.enabled else 'not tracked (%nbtrack on)'}",
        f"patched:    {', '.join(f'{c.__module__}.{c.__qualname__}.fit' for c in _state.patched_classes()) or 'nothing yet (keras not imported)'}",
    ]
    return "\n".join(lines)
