"""Replicating historic runs: seeds set and recorded, the replicating notebook, restore, and (slow) a Keras run
re-run from its notebook reproducing its final loss."""

from __future__ import annotations

import random
import shutil

import nbformat
import numpy as np
import pytest

import nbtrack
from nbtrack.share.replicate import (
    ReplicateError,
    comparison_text,
    package_differences,
    replicate,
    replicate_notebook,
)


def test_init_seed_sets_and_records_the_seed(monkeypatch):
    run = nbtrack.init(project="seed", seed=7)
    a, b = random.random(), np.random.rand()
    run.finish()
    random.seed(7)
    np.random.seed(7)
    assert (a, b) == (random.random(), np.random.rand())
    seed = nbtrack.get_run(run.id).environment["seed"]
    assert seed["seed"] == 7 and seed["seeded"][:2] == ["Python", "NumPy"]
    monkeypatch.setenv("NBTRACK_SEED", "11")
    run = nbtrack.init(project="seed")
    run.finish()
    assert nbtrack.get_run(run.id).environment["seed"]["seed"] == 11
    monkeypatch.delenv("NBTRACK_SEED")
    run = nbtrack.init(project="seed")
    run.finish()
    assert "not reproducible" in nbtrack.get_run(run.id).environment["seed"]["note"]
    with pytest.raises(ValueError, match="seed must be an int"):
        nbtrack.init(project="seed", seed=-1)
    monkeypatch.setenv("NBTRACK_SEED", "abc")
    with pytest.raises(ValueError, match="NBTRACK_SEED must be an integer"):
        nbtrack.init(project="seed")


def test_a_replicating_run_is_linked_to_the_original(monkeypatch):
    monkeypatch.setenv("NBTRACK_REPLICATES", "abc12345")
    run = nbtrack.init(project="rep", notes="second try")
    run.finish()
    record = nbtrack.get_run(run.id)
    assert "replicates:abc12345" in record.tags and record.notes.endswith("Replicates run abc12345.")


def test_package_differences():
    assert package_differences({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}) == [
        ("b", "2", "2.1"),
        ("c", "3", "-"),
        ("d", "-", "4"),
    ]


def _session_run(cells: list[str]):
    """A run started from a real IPython shell, which records its code cells at finish."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        for cell in cells:
            result = shell.run_cell(cell, store_history=True)
            result.raise_error()
        return shell.user_ns["run"].id
    finally:
        InteractiveShell.clear_instance()


def test_replicate_notebook_restores_seed_link_and_code(tmp_path):
    run_id = _session_run(
        [
            "import nbtrack",
            "run = nbtrack.init(project='rep', config={'lr': 0.1}, seed=5)",
            "run.log({'loss': 0.5}); run.finish()",
        ]
    )
    original = nbtrack.get_run(run_id)
    path = replicate_notebook(original, tmp_path / "rep.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["nbtrack"]["replicates"] == run_id
    intro, setup, _, *code = nb.cells
    assert f"Replicating run {original.name}" in intro.source and "seed 5" in intro.source
    assert "Packages whose version differs" in intro.source
    assert f"os.environ['NBTRACK_REPLICATES'] = {run_id!r}" in setup.source
    assert "os.environ['NBTRACK_SEED'] = '5'" in setup.source
    assert [c.source for c in code] == [
        "import nbtrack",
        "run = nbtrack.init(project='rep', config={'lr': 0.1}, seed=5)",
        "run.log({'loss': 0.5}); run.finish()",
    ]


def test_a_run_without_recorded_code_cannot_be_replicated(tmp_path):
    run = nbtrack.init(project="rep")  # pytest: argv[0] is not a script of the user's
    run.finish()
    (nbtrack.get_run(run.id).file("config.json"))  # the run exists with its files
    with pytest.raises(ReplicateError, match="recorded no code to re-run"):
        replicate_notebook(nbtrack.get_run(run.id), tmp_path / "x.ipynb")


def test_a_script_run_is_replicated_with_percent_run(tmp_path, python, python_env, store_dir):
    import subprocess

    script = tmp_path / "train.py"
    script.write_text(
        "import nbtrack\nrun = nbtrack.init(project='script', seed=3)\nrun.log({'loss': 1.0})\nrun.finish()\n"
    )
    env = {**python_env, "NBTRACK_STORE": str(store_dir)}
    subprocess.run([python, str(script), "--flag"], env=env, check=True, cwd=tmp_path, timeout=120)
    original = nbtrack.get_run("latest")
    nb = nbformat.read(replicate_notebook(original, tmp_path / "r.ipynb"), as_version=4)
    assert nb.cells[-1].source == f"%run {script} --flag"


def test_restore_gives_config_and_best_model(tmp_path):
    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    run = nbtrack.init(project="restore", config={"units": 8})
    x, y = tiny_data(64)
    model = tiny_model()
    model.fit(x, y, validation_split=0.25, epochs=2, verbose=0, callbacks=[NbtrackCallback()])
    run.finish()
    restored = nbtrack.restore(run.name)
    assert restored.config["units"] == 8 and restored.run.id == run.id
    assert restored.model.count_params() == model.count_params()
    assert restored.model.predict(x[:4], verbose=0).shape == (4, 2)
    bare = nbtrack.init(project="restore")
    bare.finish()
    assert nbtrack.restore(bare.id).model is None


def test_comparison_text_lines_up_shared_metrics():
    class R:
        def __init__(self, summary):
            self.summary = summary

    text = comparison_text(R({"loss": 0.5, "acc": 0.9, "_goals": {}}), R({"loss": 0.25, "other": 1.0}))
    assert "loss" in text and "0.5" in text and "0.25" in text and "-0.25" in text and "acc" not in text


NOTEBOOK_CELLS = [
    "%load_ext nbtrack\nimport os\nos.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')",
    "import nbtrack, keras, numpy as np\nrun = nbtrack.init(project='replicate-demo', config={'epochs': 3}, seed=1234)",
    "rng = np.random.default_rng(0)\nx = rng.random((256, 8), dtype=np.float32)\ny = (x.sum(axis=1) > 4).astype('int32')\n"
    "model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation='relu'), keras.layers.Dense(2, activation='softmax')])\n"
    "model.compile(optimizer=keras.optimizers.Adam(0.01), loss='sparse_categorical_crossentropy')\n"
    "model.fit(x, y, epochs=3, batch_size=32, verbose=0)",
    "run.finish()",
]


@pytest.mark.slow
def test_replicate_execute_reproduces_the_final_loss(tmp_path, store_dir, monkeypatch, capsys):
    from nbtrack.cli import main
    from nbtrack.reports.execute import execute_notebook

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "train.ipynb")
    monkeypatch.delenv("NBTRACK_SILENT", raising=False)
    execute_notebook(tmp_path / "train.ipynb", timeout=300)
    original = nbtrack.get_run("latest")
    assert original.config["epochs"] == 3 and original.environment["seed"]["seed"] == 1234

    path, again = replicate(original.id, output=tmp_path / "rep.ipynb", execute=True)
    assert again is not None and again.id != original.id
    assert f"replicates:{original.id}" in again.tags
    assert again.summary["loss"] == pytest.approx(original.summary["loss"], rel=1e-4)
    shutil.copy(path, tmp_path / "kept.ipynb")

    assert (
        main(
            [
                "--store",
                str(store_dir),
                "replicate",
                original.id,
                "-o",
                str(tmp_path / "cli.ipynb"),
                "--execute",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "original" in out and "replicate" in out and "loss" in out
