"""Every function in nbtrack/ and benchmarks/ reads at once: none is longer than about 80 lines (issue 15, item 4)."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

LIMIT = 80


def _long_functions(folder: Path) -> list[str]:
    """Return "path:line name (N lines)" for each function or method in folder longer than LIMIT lines."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        pending: list[tuple[ast.AST, str]] = [(tree, "")]
        while pending:
            node, prefix = pending.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    pending.append((child, f"{prefix}{child.name}."))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}{child.name}"
                    lines = child.end_lineno - child.lineno + 1
                    if lines > LIMIT:
                        found.append(f"{path.relative_to(ROOT)}:{child.lineno} {name} ({lines} lines)")
                    pending.append((child, f"{name}."))
    return sorted(found)


def test_no_function_in_nbtrack_is_longer_than_80_lines():
    long = _long_functions(ROOT / "nbtrack")
    assert not long, f"split these into small named pieces (at most {LIMIT} lines each):\n" + "\n".join(long)


def test_no_function_in_the_benchmarks_is_longer_than_80_lines():
    long = _long_functions(ROOT / "benchmarks")
    assert not long, (
        f"split these into one function per measurement (at most {LIMIT} lines each):\n" + "\n".join(long)
    )
