"""Re-running a historic run: `nbtrack replicate RUN` writes a notebook that restores its seed and runs its recorded
code again as a new run linked to the original; `nbtrack.restore(RUN)` gives back its config and best model.

What a run records for this: the code cells of its IPython/Jupyter session up to `finish` (``code.ipynb``, or the
script and its arguments when it ran as ``python script.py``), its config, the seed in effect (``init(seed=...)``),
the installed packages, and the git commit and diff.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack.errors import NbtrackError
from nbtrack.read.records import StoredRun, get_run


class ReplicateError(NbtrackError):
    """A run cannot be replicated (it recorded no code)."""


def package_differences(recorded: dict[str, str], current: dict[str, str]) -> list[tuple[str, str, str]]:
    """(package, version then, version now) for every package whose version differs; "-" where missing."""
    names = sorted(set(recorded) | set(current), key=str.lower)
    return [
        (n, recorded.get(n, "-"), current.get(n, "-")) for n in names if recorded.get(n) != current.get(n)
    ]


def _recorded_cells(run: StoredRun) -> list[str]:
    """The run's code, as cells: its session's cells, or a %run of the script it was started as."""
    import nbformat

    try:
        notebook = nbformat.reads(run.file("code.ipynb").read_text(encoding="utf-8"), as_version=4)
        cells = [c.source for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
        if cells:
            return cells
    except FileNotFoundError:
        pass
    program = run.environment.get("program") or {}
    argv = program.get("argv") or []
    if argv and str(argv[0]).endswith(".py") and not _installed_code(str(argv[0])):
        script = Path(argv[0])
        if not script.is_absolute() and program.get("cwd"):
            script = Path(program["cwd"]) / script
        return [f"%run {json.dumps(str(script))[1:-1]} " + " ".join(str(a) for a in argv[1:])]
    raise ReplicateError(
        f"Run {run.name} ({run.id}) recorded no code to re-run: it was not started from a notebook, IPython or "
        "a Python script. Runs started in Jupyter record their code cells at finish (code.ipynb)."
    )


def _installed_code(path: str) -> bool:
    """A program that is part of an installed package (ipykernel's launcher, pytest), not the user's script."""
    import sys

    resolved = str(Path(path).resolve())
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return (
        "site-packages" in resolved
        or "dist-packages" in resolved
        or any(resolved.startswith(p + os.sep) for p in prefixes)
    )


def replicate_notebook(run: StoredRun, path: str | os.PathLike[str]) -> Path:
    """Write the notebook that re-runs `run`: its seed and link restored, then its recorded code."""
    import nbformat

    from nbtrack.capture.environment import installed_packages

    cells = _recorded_cells(run)
    seed = (run.environment.get("seed") or {}).get("seed")
    recorded = run.environment.get("packages") or {}
    differences = package_differences(recorded, installed_packages()) if isinstance(recorded, dict) else []
    git = run.environment.get("git") or {}
    lines = [
        f"# Replicating run {run.name} ({run.id})",
        "",
        f"Project `{run.project}`, recorded {_when(run.created)}, state {run.state}. Running this notebook starts a new "
        f"run tagged `replicates:{run.id}` with the same code"
        + (
            f" and seed {seed}."
            if seed is not None
            else "; the original run gave no seed, so results may differ."
        ),
    ]
    if git.get("commit"):
        lines += [
            "",
            f"The original ran at git commit `{git['commit']}`"
            + (" with uncommitted changes (its `git.diff` file)." if git.get("dirty") else "."),
        ]
    lines += ["", "## Packages whose version differs from the original run's", ""]
    if differences:
        lines += ["| package | original | now |", "| --- | --- | --- |"]
        lines += [f"| {n} | {a} | {b} |" for n, a, b in differences[:200]]
        if len(differences) > 200:
            lines.append(f"\n... and {len(differences) - 200} more.")
    else:
        lines.append("None: this environment has the same package versions.")
    setup = [
        "import os",
        f"os.environ['NBTRACK_REPLICATES'] = {run.id!r}  # the new run is tagged replicates:{run.id}",
        f"os.environ['NBTRACK_PROJECT'] = {run.project!r}",
    ]
    if seed is not None:
        setup.append(
            f"os.environ['NBTRACK_SEED'] = {str(seed)!r}  # nbtrack.init seeds Python, NumPy and Keras"
        )
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["nbtrack"] = {"replicates": run.id}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("\n".join(lines)),
        nbformat.v4.new_code_cell("\n".join(setup)),
        nbformat.v4.new_markdown_cell(f"## The code of run {run.name}, as it ran"),
        *[nbformat.v4.new_code_cell(source) for source in cells],
    ]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return target.resolve()


def _when(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def final_metrics(a: StoredRun, b: StoredRun) -> list[tuple[str, float, float]]:
    """(metric, original, replicate) for the numeric summary keys both runs have."""
    rows = []
    for key, value in a.summary.items():
        other = b.summary.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, other))
        if key.startswith("_") or not numeric:
            continue
        rows.append((key, float(value), float(other)))  # type: ignore[arg-type]
    return rows


def comparison_text(a: StoredRun, b: StoredRun) -> str:
    rows = final_metrics(a, b)
    if not rows:
        return "The two runs share no numeric summary metric."
    width = max(len(k) for k, _, _ in rows)
    out = [f"{'metric':{width}}  {'original':>12}  {'replicate':>12}  {'difference':>12}"]
    for key, u, v in rows:
        diff = v - u if math.isfinite(u) and math.isfinite(v) else math.nan
        out.append(f"{key:{width}}  {u:12.6g}  {v:12.6g}  {diff:+12.3g}")
    return "\n".join(out)


def replicate(
    ref: str,
    *,
    output: str | os.PathLike[str] | None = None,
    execute: bool = False,
    store: Any = None,
) -> tuple[Path, StoredRun | None]:
    """Write the replicating notebook of run `ref`; with `execute`, run it and return the new run too."""
    from nbtrack.store import open_store

    opened = open_store(store, create=False)
    original = get_run(ref, store=opened)
    path = replicate_notebook(original, output or f"replicate-{original.name}.ipynb")
    if not execute:
        return path, None
    from nbtrack.read.records import runs
    from nbtrack.reports.execute import execute_notebook

    cwd = (original.environment.get("program") or {}).get("cwd")
    previous = os.environ.get("NBTRACK_STORE")
    os.environ["NBTRACK_STORE"] = getattr(
        opened, "url", opened.location
    )  # the new run goes beside the original
    try:
        execute_notebook(path, cwd=cwd if cwd and os.path.isdir(cwd) else path.parent)
    finally:
        if previous is None:
            os.environ.pop("NBTRACK_STORE", None)
        else:
            os.environ["NBTRACK_STORE"] = previous
    found = runs(where=f"'replicates:{original.id}' in tags", order_by="-created", limit=1, store=opened)
    return path, (found[0] if len(found) else None)


@dataclass
class Restored:
    """A run's config and its best model (None when it saved none)."""

    config: dict[str, Any]
    model: Any
    run: StoredRun


def restore(ref: str, *, store: Any = None, compile: bool = True) -> Restored:
    """The config of run `ref` and its best model loaded with Keras (``model-best.keras``, when saved)."""
    run = get_run(ref, store=store)
    model = None
    try:
        path = run.file("model-best.keras")
    except FileNotFoundError:
        path = None
    if path is not None:
        try:
            import keras
        except ImportError:
            raise ImportError("restore loads the model with keras: `pip install 'nbtrack[keras]'`.") from None
        model = keras.saving.load_model(path, compile=compile)
    return Restored(config=dict(run.config), model=model, run=run)
