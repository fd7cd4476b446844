"""The quickstart notebook, executed end to end by nbclient in a real kernel, on a real store."""

from __future__ import annotations

import shutil

import pytest

from nbtrack._notebook import execute_notebook
from nbtrack.store import open_store

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_quickstart_records_a_run(tmp_path, store_dir, monkeypatch):
    notebook = tmp_path / "01_quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", notebook)
    monkeypatch.setenv("NBTRACK_DEMO_EPOCHS", "2")
    monkeypatch.delenv("NBTRACK_SILENT")
    executed = execute_notebook(notebook, tmp_path / "executed.ipynb", timeout=600)

    outputs = "".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    store = open_store(store_dir, create=False)
    runs = store.list_runs("test_project")
    assert len(runs) == 1
    run = runs[0]
    assert f"nbtrack: run {run.name} ({run.id}) in project 'test_project'" in outputs
    assert run.state == "finished"
    assert (
        run.config["batch_size"] == 16 and run.config["epochs"] == 2 and run.config["learning_rate"] == 1e-3
    )
    assert run.config["dataset"] in ("mnist", "sklearn-digits-28x28")
    assert run.tags == ("quickstart", "mlp")
    stats = store.metric_stats(run.id)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch"} <= set(stats)
    assert store.history(run.id, "epoch").value.tolist() == [0.0, 1.0]
    assert stats["val_loss"].count == 2
    assert 0.0 < run.summary["test_accuracy"] <= 1.0
    assert run.summary["val_accuracy"] > 0.5  # it learned something
    assert "best val_loss:" in outputs
    assert "keras" in run.environment["packages"]
    assert (tmp_path / "executed.ipynb").is_file()
