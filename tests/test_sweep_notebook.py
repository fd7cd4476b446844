"""notebooks/sweep.ipynb executed by nbclient in a real kernel: a random sweep with Hyperband over a small Keras
model, its live view saved with the notebook, its trials in the store."""

from __future__ import annotations

import shutil

import pytest

from nbtrack.reports.execute import execute_notebook
from nbtrack.store import open_store

from .conftest import ROOT
from .test_notebooks import reachable, widget_state

pytestmark = pytest.mark.slow
TRIALS = 4


def test_sweep_notebook_runs_trials_and_saves_the_sweep_view(tmp_path, monkeypatch):
    notebook = tmp_path / "sweep.ipynb"
    shutil.copy(ROOT / "notebooks" / "sweep.ipynb", notebook)
    store_dir = tmp_path / "nbtrack-runs"
    monkeypatch.setenv("NBTRACK_STORE", str(store_dir))
    monkeypatch.setenv("NBTRACK_DEMO_EPOCHS", "3")
    monkeypatch.setenv("NBTRACK_SWEEP_COUNT", str(TRIALS))
    monkeypatch.delenv("NBTRACK_PROJECT", raising=False)
    nb = execute_notebook(notebook, tmp_path / "executed.ipynb", timeout=600)

    store = open_store(store_dir, create=False)
    (sweep,) = store.list_sweeps("sweep-demo")
    trials = store.trials(sweep.id)
    assert len(trials) == TRIALS
    assert all(t.state in ("finished", "stopped-early") for t in trials) and all(t.run_id for t in trials)
    runs = [store.get_run(t.run_id) for t in trials]
    assert all(1e-4 <= r.config["lr"] <= 1e-1 and r.config["units"] in (16, 32, 64) for r in runs)
    assert all(r.summary.get("val_loss") is not None for r in runs)

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    (view,) = [o for o in outputs if (o.get("metadata") or {}).get("nbtrack", {}).get("view") == "sweep"]
    assert view["metadata"]["nbtrack"]["sweep_id"] == sweep.id
    assert f"Sweep {sweep.name}" in view["data"]["text/html"]  # the static snapshot, for GitHub and reports
    # no trial displayed a dashboard of its own: the sweep view holds the current one
    assert not [o for o in outputs if (o.get("metadata") or {}).get("nbtrack", {}).get("view") == "run"]
    state = widget_state(nb)
    models = reachable(state, view["data"]["application/vnd.jupyter.widget-view+json"]["model_id"])
    tables = [m for m in models.values() if "rows" in m["state"] and "total" in m["state"]]
    assert tables and len(tables[0]["state"]["rows"]) == TRIALS
    parallel = [m for m in models.values() if "axes" in m["state"] and "brushes" in m["state"]]
    assert parallel and len(parallel[0]["state"]["lines"]) == TRIALS
    texts = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert min(r.summary["val_loss"] for r in runs) == pytest.approx(
        float(texts.strip().splitlines()[-1].split()[-1]), rel=1e-6
    )
