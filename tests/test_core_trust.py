"""Issue 14's core items: live renames stored (15), no waiting on another process's lock (10), symlinks never
followed out of a run's folder (7). Real SQLite files, real processes; PostgreSQL where marked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nbtrack
from nbtrack.store import open_store


def read_in_child(python_env, location: str, run_id: str) -> dict:
    """The run as another process reads it through `nbtrack.get_run`."""
    code = (
        "import json, sys, nbtrack\n"
        "r = nbtrack.get_run(sys.argv[2], store=sys.argv[1])\n"
        "print(json.dumps({'name': r.name, 'notes': r.notes, 'tags': list(r.tags), 'state': r.state}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, location, run_id],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard only
        check=True,
    )
    return json.loads(out.stdout)


# -- 15: assignments on a live run are stored ------------------------------------------------------
def test_name_notes_tags_assignments_are_stored(store_dir, python_env):
    run = nbtrack.init(project="p", name="first", tags=("a",), notes="before")
    assert run.dir.is_dir()  # W&B's run.dir exists as soon as init returns, before any log
    run.name = "renamed"
    run.notes = "after"
    run.tags += ("b",)  # W&B's tuple style
    run.log({"loss": 1.0})
    assert run.flush()
    seen = nbtrack.get_run(run.id, store=str(store_dir))
    assert (seen.name, seen.notes, seen.tags) == ("renamed", "after", ("a", "b"))
    assert read_in_child(python_env, str(store_dir), run.id) == {
        "name": "renamed",
        "notes": "after",
        "tags": ["a", "b"],
        "state": "running",
    }
    run.tags = ["c"]  # a list, as W&B allows
    run.notes = None
    run.finish()
    assert read_in_child(python_env, str(store_dir), "renamed") == {
        "name": "renamed",
        "notes": None,
        "tags": ["c"],
        "state": "finished",
    }
    with pytest.raises(nbtrack.NbtrackError, match="finished"):
        run.name = "too-late"


def test_assignments_show_in_ls_and_show(store_dir, python_env):
    run = nbtrack.init(project="p")
    run.name = "cli-visible"
    run.tags = ("t1", "t2")
    run.notes = "a note"
    run.finish()
    ls = subprocess.run(
        [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "ls", "--json"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (listed,) = json.loads(ls.stdout)
    assert listed["name"] == "cli-visible" and listed["tags"] == ["t1", "t2"]
    show = subprocess.run(
        [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "show", "cli-visible"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Run cli-visible" in show and "t1, t2" in show and "a note" in show


def test_bad_assignments_raise_and_change_nothing(store_dir):
    run = nbtrack.init(project="p", name="keep")
    with pytest.raises(ValueError, match="run.name"):
        run.name = ""
    with pytest.raises(TypeError, match="run.tags"):
        run.tags = ("ok", 3)
    with pytest.raises(TypeError, match="run.notes"):
        run.notes = 5
    run.finish()
    stored = open_store(str(store_dir)).get_run(run.id)
    assert (stored.name, stored.tags, stored.notes) == ("keep", (), None)


@pytest.mark.slow
def test_assignments_are_stored_on_postgres(pg_server, python_env):
    url = pg_server.new_database()
    run = nbtrack.init(project="p", store=url)
    run.name = "pg-renamed"
    run.tags += ("x",)
    run.notes = "pg note"
    run.finish()
    assert read_in_child(python_env, url, run.id) == {
        "name": "pg-renamed",
        "notes": "pg note",
        "tags": ["x"],
        "state": "finished",
    }


def test_dashboard_header_shows_a_new_name(notebook, store_dir):
    from nbtrack.ui.dashboard import header_html

    run = nbtrack.init(project="p", name="old-name")
    dashboard = run._dashboard()
    run.name = "new <name>"
    assert dashboard.header.value == header_html(run, "running")
    assert "new &lt;name&gt;" in dashboard.header.value and "old-name" not in dashboard.header.value
    run.finish()
