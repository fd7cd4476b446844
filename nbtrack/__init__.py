"""nbtrack: a Jupyter-native experiment tracker.

    import nbtrack
    run = nbtrack.init(project="test_project", config={"lr": 1e-3})
    run.log({"loss": 0.31}); run.finish()

In a notebook, `%load_ext nbtrack` tracks every Keras `fit` with a live dashboard in the cell.

This module is the top layer (docs/ARCHITECTURE.md): the public API, and the place that lends the lower layers
the views they show (a run's dashboard, a run list's table, a sweep's page) so they never import the UI.
"""

import os
from typing import Any

from nbtrack.common import views
from nbtrack.common.version import __version__
from nbtrack.errors import NbtrackError
from nbtrack.run import Run, finish, init, log

__all__ = [
    "Run",
    "NbtrackError",
    "init",
    "log",
    "finish",
    "get_run",
    "runs",
    "compare",
    "browse",
    "report",
    "sweep",
    "restore",
    "display",
    "load_ipython_extension",
    "__version__",
]


def get_run(ref: str, *, project: str | None = None, store: Any = None) -> Any:
    """A stored run by id, name or ``"latest"``: its config, summary, metrics, events and files (read-only)."""
    from nbtrack.read.records import get_run as _get_run

    return _get_run(ref, project=project, store=store)


def runs(
    project: str | None = None,
    where: str | None = None,
    order_by: Any = None,
    limit: int | None = None,
    *,
    store: Any = None,
) -> Any:
    """Stored runs matching `where`, sorted by `order_by`, as a `RunList` (``.to_pandas()`` for a table).

    nbtrack.runs(project="mnist", where="config.lr < 0.01 and state == 'finished'",
                 order_by="-summary.val_accuracy", limit=20)
    """
    from nbtrack.read.records import runs as _runs

    return _runs(project, where, order_by, limit, store=store)


def compare(runs: Any = None, *, store: Any = None) -> Any:
    """The compare widget for `runs` (a `RunList`, a list of runs or ids; default: the latest 20 runs)."""
    from nbtrack.ui.compare import compare as _compare

    return _compare(runs, store=store)


def browse(project: str | None = None, *, store: Any = None) -> Any:
    """The runs browser: projects, their runs, a click opens a run's dashboard, a selection compares."""
    from nbtrack.ui.browser import browse as _browse

    return _browse(project, store=store)


def report(
    notebook: Any = None,
    *,
    run: Any = None,
    runs: Any = None,
    where: str | None = None,
    project: str | None = None,
    output: Any = None,
    execute: bool = False,
    store: Any = None,
) -> Any:
    """Write a self-contained HTML report (of a notebook, one `run`, or `runs` / `where` compared); returns its path.

    nbtrack.report("train.ipynb")            # -> train.report.html
    nbtrack.report(run="lyric-dream-3")
    nbtrack.report(where="config.lr < 0.01", project="mnist", output="low-lr.html")
    """
    from nbtrack.reports import report as _report

    return _report(
        notebook,
        run=run,
        runs=runs,
        where=where,
        project=project,
        output=output,
        execute=execute,
        store=store,
    )


def sweep(
    config: Any = None,
    function: Any = None,
    *,
    project: str | None = None,
    count: int | None = None,
    resume: str | None = None,
    seed: int = 0,
    store: Any = None,
) -> Any:
    """Run a parameter sweep (a W&B sweep config: grid, random or bayes, Hyperband), each trial a full run.

    sweep = nbtrack.sweep(sweep_config, train, project="mnist-sweep", count=20)
    sweep.best_run, sweep.runs, sweep.to_pandas()
    """
    from nbtrack.sweeps import sweep as _sweep

    return _sweep(config, function, project=project, count=count, resume=resume, seed=seed, store=store)


def restore(ref: str, *, store: Any = None) -> Any:
    """A stored run's config and its best model loaded with Keras: ``r = nbtrack.restore("lyric-dream-3"); r.model``."""
    from nbtrack.share.replicate import restore as _restore

    return _restore(ref, store=store)


def show(ref: Any, *, store: Any = None) -> Any:
    """Show a stored run's dashboard (id, name or ``"latest"``), read from the store: the same panes as live."""
    from nbtrack.ui.stored import show as _show

    return _show(ref, store=store)


def display(run: "Run | None" = None) -> Any:
    """Show the live dashboard of `run` (default: the current run) in this notebook cell."""
    from nbtrack.ui.dashboard import display as _display

    return _display(run)


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext nbtrack`: track every Keras fit with a live dashboard; adds the `%nbtrack` magic."""
    from nbtrack.integrations.ipython import load_ipython_extension as _load

    _load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """`%unload_ext nbtrack`: restore everything `%load_ext` patched."""
    from nbtrack.integrations.ipython import unload_ipython_extension as _unload

    _unload(shell)


# -- views lent to the lower layers (imported only when first shown) ---------------------------------------------
def _dashboard_class() -> Any:
    from nbtrack.ui.dashboard import Dashboard  # ImportError without the widget extra: the run warns once

    return Dashboard


def _show_run(run: Run) -> None:
    """In a notebook (unless NBTRACK_DISPLAY=0), show the run `init` returned in its live dashboard."""
    import nbtrack.ui

    if nbtrack.ui.in_notebook() and os.environ.get("NBTRACK_DISPLAY", "1") != "0":
        dashboard = run._dashboard()  # None, warned once, when the widget extra is missing
        if dashboard is not None:
            dashboard.show()


def _runs_table_html(runs: Any) -> str:
    from nbtrack.render.tables import runs_table_html

    return runs_table_html(runs)


def _sweep_html(sweep: Any) -> str:
    from nbtrack.reports.sections import sweep_section

    return sweep_section(sweep)


def _sweep_view(sweep: Any) -> Any:
    """The live sweep view, shown, in a notebook; None elsewhere."""
    from nbtrack.ui import in_notebook

    if not in_notebook():
        return None
    from nbtrack.ui.sweep import SweepView

    view = SweepView(sweep)
    view.show()
    return view


views.register("dashboard", _dashboard_class)
views.register("show_run", _show_run)
views.register("runs_table_html", _runs_table_html)
views.register("sweep_html", _sweep_html)
views.register("sweep_view", _sweep_view)
