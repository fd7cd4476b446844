"""The README documents every public name and CLI command, and its commands are the ones CI runs."""

from __future__ import annotations

import re

import nbtrack
from nbtrack.cli import _parser

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_public_names_are_documented():
    for name in nbtrack.__all__:
        if name.startswith("__"):
            continue
        assert re.search(rf"\b{name}\b", README), f"README.md does not mention nbtrack.{name}"


def test_cli_commands_are_documented():
    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for command in commands:
        assert f"nbtrack {command}" in README, f"README.md does not document `nbtrack {command}`"


def test_readme_commands_are_what_ci_runs():
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "notebooks/01_quickstart.ipynb" in makefile


def test_quickstart_in_readme_is_at_most_ten_lines():
    block = README.split("## Quickstart", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    lines = [line for line in block.strip().splitlines() if line.strip()]
    assert len(lines) <= 10
