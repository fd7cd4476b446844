"""Reports: a notebook, one run, or runs compared, as one self-contained HTML file.

    nbtrack.report("train.ipynb")            # -> train.report.html
    nbtrack.report(run="lyric-dream-3")

`sections` draws the pages, `notebook` turns an executed notebook into one, `execute` runs a notebook headless.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nbtrack.read.records import StoredRun
from nbtrack.reports.sections import ReportError, comparison_report, run_report
from nbtrack.store.base import Store


# -- a notebook ------------------------------------------------------------------------------------
def notebook_report(
    path: str | os.PathLike[str], *, execute: bool = False, store: Any = None
) -> tuple[str, list[str]]:
    """The notebook as a report; returns the HTML and notes (runs that were not found in the store)."""
    from nbtrack.reports.notebook import render_notebook

    return render_notebook(Path(path), execute=execute, store=store)


# -- the entry point -------------------------------------------------------------------------------
def report(
    notebook: str | os.PathLike[str] | None = None,
    *,
    run: Any = None,
    runs: Any = None,
    where: str | None = None,
    project: str | None = None,
    output: str | os.PathLike[str] | None = None,
    execute: bool = False,
    store: str | os.PathLike[str] | Store | None = None,
) -> Path:
    """Write a report and return its path: of a notebook, of one `run`, or comparing `runs` / those matching `where`.

    nbtrack.report("train.ipynb")  ->  train.report.html beside it
    """
    from nbtrack.read.records import get_run
    from nbtrack.read.records import runs as query_runs
    from nbtrack.store import open_store

    chosen = [x is not None for x in (notebook, run, runs, where)]
    if sum(chosen) != 1:
        raise ReportError(
            "nbtrack.report needs exactly one of: a notebook path, run=, runs= or where= "
            f"(got {sum(chosen)})."
        )
    opened = (
        store if isinstance(store, Store) else open_store(store, create=False) if notebook is None else store
    )
    if notebook is not None:
        source = Path(notebook)
        if not source.is_file():
            raise ReportError(f"No notebook at {source}.")
        text, _notes = notebook_report(source, execute=execute, store=store)
        target = Path(output) if output else source.with_suffix(".report.html")
    elif run is not None:
        stored = (
            run
            if isinstance(run, StoredRun)
            else get_run(str(getattr(run, "id", run)), project=project, store=opened)
        )
        text = run_report(stored)
        target = Path(output) if output else Path(f"{stored.name}.report.html")
    else:
        if where is not None:
            chosen_runs = list(query_runs(project=project, where=where, store=opened))
            title = f"Runs where {where}"
        else:
            refs = [runs] if isinstance(runs, str) else list(runs)
            chosen_runs = [
                r
                if isinstance(r, StoredRun)
                else get_run(str(getattr(r, "id", r)), project=project, store=opened)
                for r in refs
            ]
            title = ""
        if not chosen_runs:
            raise ReportError(f"No runs match {where!r}." if where else "runs= is empty.")
        text = comparison_report(chosen_runs, title)
        target = Path(output) if output else Path("comparison.report.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target.resolve()
