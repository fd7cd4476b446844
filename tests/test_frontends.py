"""What can be checked here for front-ends other than JupyterLab and Notebook 7 (README: "VS Code, Colab").

VS Code loads a third-party widget's JavaScript from the kernel environment's
``share/jupyter/nbextensions/<module>/`` before trying a CDN, so offline it renders exactly the widgets whose
files are installed there; Colab renders third-party widgets once its custom widget manager is on, which
``%load_ext nbtrack`` does; front-ends with no widgets at all (GitHub, nbviewer, nbconvert) show the
output's HTML snapshot (tests/test_notebooks.py checks that one through nbconvert).
"""

from __future__ import annotations

import re
import sys
import types
import warnings
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import NbtrackWarning

JS = Path(__file__).resolve().parent.parent / "js"


def widget_modules(notebook) -> set[str]:
    """The front-end modules of every widget a live dashboard and the compare widget create."""
    run = nbtrack.init(project="fe")
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)})
    from nbtrack.ui.dashboard import display

    dashboard = display(run)
    dashboard.refresh(set(run.live.keys()))
    widgets = dashboard._all_widgets()
    run.finish()
    compare = nbtrack.compare([run.id])
    import ipywidgets as W

    seen: dict[str, W.Widget] = {w.model_id: w for w in widgets}
    stack = [compare.widget]
    while stack:
        widget = stack.pop()
        if not isinstance(widget, W.Widget) or widget.model_id in seen:
            continue
        seen[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name, None)
            stack.extend(value if isinstance(value, (list, tuple)) else [value])
    return {w._model_module for w in seen.values()} | {w._view_module for w in seen.values()}


def test_every_widget_module_ships_its_javascript_in_the_kernel_environment(notebook):
    modules = widget_modules(notebook)
    assert {"bqplot", "anywidget", "@jupyter-widgets/controls"} <= modules
    share = Path(sys.prefix) / "share" / "jupyter"
    builtin = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
    for module in sorted(modules - builtin):
        nbextension = share / "nbextensions" / module / "index.js"
        labextension = share / "labextensions" / module / "package.json"
        assert nbextension.is_file(), f"{module}: VS Code finds no {nbextension} to load offline"
        assert labextension.is_file(), f"{module}: JupyterLab / Notebook 7 find no {labextension}"


@pytest.mark.parametrize("path", sorted(JS.glob("*.js")), ids=lambda p: p.name)
def test_anywidget_views_import_nothing(path):
    """The ES modules go to the front-end inline with the widget (VS Code, Colab): nothing to fetch."""
    source = path.read_text()
    assert not re.search(r"^\s*import\s", source, re.M), f"{path.name} imports a module"
    assert not re.search(r"\bimport\(|fetch\(|XMLHttpRequest|<script", source), path.name


@pytest.fixture
def colab(monkeypatch):
    """A stand-in for Colab's ``google.colab.output`` (no Colab here): records the calls it gets."""
    calls: list[str] = []
    google = types.ModuleType("google")
    colab_module = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enable")
    colab_module.output = output
    google.colab = colab_module
    for name, module in (("google", google), ("google.colab", colab_module), ("google.colab.output", output)):
        monkeypatch.setitem(sys.modules, name, module)
    import nbtrack.integrations.ipython

    monkeypatch.setattr(nbtrack.integrations.ipython._state, "colab_widgets", False)
    return calls


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    shell.run_line_magic("unload_ext", "nbtrack")


def test_load_ext_in_colab_turns_on_its_custom_widget_manager_once(colab, shell):
    shell.run_line_magic("load_ext", "nbtrack")
    shell.run_line_magic("unload_ext", "nbtrack")
    shell.run_line_magic("load_ext", "nbtrack")
    assert colab == ["enable"]


def test_a_colab_without_the_widget_manager_gets_one_warning_and_loads(colab, shell, monkeypatch):
    def broken():
        raise AttributeError("module 'google.colab.output' has no attribute 'enable_custom_widget_manager'")

    monkeypatch.setattr(sys.modules["google.colab.output"], "enable_custom_widget_manager", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell.run_line_magic("load_ext", "nbtrack")
    messages = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    assert len(messages) == 1 and "enable_custom_widget_manager()" in messages[0]
    assert "nbtrack" in shell.magics_manager.magics["line"]


def test_outside_colab_nothing_is_touched(shell, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    shell.run_line_magic("load_ext", "nbtrack")
    assert "google.colab" not in sys.modules
