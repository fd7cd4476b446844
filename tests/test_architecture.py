"""The layers of nbtrack's source (docs/ARCHITECTURE.md): imports flow one way, from the bottom up, with no cycle.

The import graph is read from the source with `ast`: every `import` and `from ... import`, at module level, inside
functions (they run, so they count) and under `if TYPE_CHECKING:`, relative imports resolved. An import counts as
an edge to the module it reaches: ``from nbtrack.run import init`` reaches `nbtrack.run`, ``from nbtrack.common
import views`` reaches `nbtrack.common.views` (the packages above a module, which Python runs first, are not counted:
each package's ``__init__`` is held to the same rules as its modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the most specific entry naming it or a package above it (``nbtrack`` itself
# names only the root module). A module may import its own layer (without a cycle) and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nbtrack.errors", "nbtrack.common"),  # plain values, run names and states, the views registry
    ("nbtrack.store",),  # the store contract, its SQL and backends, the `where` language
    ("nbtrack.capture",),  # capture sources: system metrics, output, environment, model graph, interrupts
    ("nbtrack.run",),  # the run, its writer, live history and spill file
    ("nbtrack.read",),  # reading runs back: StoredRun, RunList, runs(), get_run()
    ("nbtrack.render",),  # pure drawing: chart data, comparisons, SVG, HTML tables, snapshot, sanitising
    ("nbtrack.sweeps",),  # sweeps: configs, trials, Hyperband
    ("nbtrack.reports",),  # report pages and notebook reports
    ("nbtrack.ui",),  # widgets
    ("nbtrack.integrations",),  # adapters: the Keras callback, the notebook extension
    ("nbtrack.share",),  # bundles and replicate
    ("nbtrack.cli", "nbtrack.__main__"),  # the command line
    (
        "nbtrack",
        "nbtrack.keras",
        "nbtrack.bundle",
    ),  # the public API (and the public paths of the callback and bundles)
)


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the `nbtrack` package under `root`, by dotted name."""
    modules = {}
    for path in sorted((root / "nbtrack").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports(root: Path) -> dict[str, dict[str, int]]:
    """module -> {nbtrack module it imports: line of the first such import}."""
    modules = module_files(root)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                # `from package import module` reaches the module; `from module import name`, the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import nbtrack.x.y` reaches nbtrack.x.y's module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def cycle_report(graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    """One line per cycle: its modules, then each import inside it (importer:line -> imported)."""
    lines = []
    for component in cycles(graph):
        members = set(component)
        edges = [
            f"{a} ({module_files(root)[a].relative_to(root)}:{line}) -> {b}"
            for a in component
            for b, line in sorted(graph[a].items())
            if b in members
        ]
        lines.append(f"cycle of {len(component)} modules {', '.join(component)}: " + "; ".join(edges))
    return lines


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """The index of `module`'s layer, or None when no entry names it."""
    best: tuple[int, int] | None = None  # (length of the matching entry, layer)
    for level, entries in enumerate(layers):
        for entry in entries:
            matches = module == entry or (entry != "nbtrack" and module.startswith(entry + "."))
            if matches and (best is None or len(entry) > best[0]):
                best = (len(entry), level)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    """One line per import from a lower layer to a higher one, naming both modules and the line."""
    files = module_files(root)
    found = []
    for module, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            low, high = layer_of(module), layer_of(target)
            if low is not None and high is not None and high > low:
                found.append(
                    f"{module} (layer {LAYERS[low][0]}, {files[module].relative_to(root)}:{line}) imports "
                    f"{target} (layer {LAYERS[high][0]}, above it)"
                )
    return found


def test_every_module_has_a_layer():
    unplaced = [module for module in module_files(ROOT) if layer_of(module) is None]
    assert unplaced == [], f"modules missing from LAYERS in tests/test_architecture.py: {unplaced}"


def test_no_import_cycles():
    found = cycle_report(imports(ROOT), ROOT)
    assert found == [], "import cycles among nbtrack's modules:\n" + "\n".join(found)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    found = upward_imports(imports(ROOT), ROOT)
    assert found == [], "imports against the layers (docs/ARCHITECTURE.md):\n" + "\n".join(found)


def test_nothing_below_the_ui_imports_a_widget_library():
    """Below the UI, no module imports ipywidgets, bqplot, anywidget or traitlets, not even lazily."""
    ui = layer_of("nbtrack.ui")
    assert ui is not None
    heavy = {"ipywidgets", "bqplot", "anywidget", "traitlets"}
    found = []
    for module, path in module_files(ROOT).items():
        level = layer_of(module)
        if level is None or level >= ui:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{module}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in heavy]
    assert found == []


# -- the checker itself, on a small package written for the purpose -------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_checker_finds_a_cycle_through_an_import_inside_a_function(tmp_path):
    root = _package(
        tmp_path,
        {
            "nbtrack/__init__.py": "",
            "nbtrack/run/__init__.py": "from nbtrack.ui import view\n",
            "nbtrack/ui/__init__.py": "",
            "nbtrack/ui/view.py": "import os\n\n\ndef show():\n    from ..run import x\n",
        },
    )
    graph = imports(root)
    assert graph["nbtrack.ui.view"] == {"nbtrack.run": 5}  # the relative import, resolved
    assert graph["nbtrack.run"] == {"nbtrack.ui.view": 1}
    assert cycles(graph) == [["nbtrack.run", "nbtrack.ui.view"]]
    assert cycle_report(graph, root) == [
        "cycle of 2 modules nbtrack.run, nbtrack.ui.view: "
        f"nbtrack.run ({Path('nbtrack/run/__init__.py')}:1) -> nbtrack.ui.view; "
        f"nbtrack.ui.view ({Path('nbtrack/ui/view.py')}:5) -> nbtrack.run"
    ]
    assert upward_imports(graph, root) == [
        f"nbtrack.run (layer nbtrack.run, {Path('nbtrack/run/__init__.py')}:1) imports nbtrack.ui.view (layer "
        "nbtrack.ui, above it)",
    ]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("nbtrack", "nbtrack"),
        ("nbtrack.errors", "nbtrack.errors"),
        ("nbtrack.store.query", "nbtrack.store"),
        ("nbtrack.run", "nbtrack.run"),
        ("nbtrack.run.writer", "nbtrack.run"),
        ("nbtrack.keras", "nbtrack"),
        ("nbtrack.cli", "nbtrack.cli"),
    ],
)
def test_a_module_belongs_to_its_most_specific_entry(module, layer):
    level = layer_of(module)
    assert level is not None and LAYERS[level][0] == layer


def test_a_module_outside_every_entry_has_no_layer():
    assert layer_of("nbtrack_other.x") is None
    assert layer_of("nbtrack.runs") is None  # a prefix only counts up to a dot


def test_the_public_paths_users_type_still_import():
    """Moving modules into layers kept the documented import paths (README): the bundle functions and the
    callback's module are the ones in their layers, not copies."""
    import nbtrack.bundle
    import nbtrack.share.bundle

    for name in nbtrack.bundle.__all__:
        assert getattr(nbtrack.bundle, name) is getattr(nbtrack.share.bundle, name), name
    keras_path = (ROOT / "nbtrack" / "keras.py").read_text()
    assert "from nbtrack.integrations.keras import NbtrackCallback" in keras_path
