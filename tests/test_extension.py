"""`%load_ext nbtrack` and the `%nbtrack` magic, through a real IPython shell."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbtrack.store import open_store

from .keras_helpers import keras, tiny_data, tiny_model


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    shell.user_ns.update(tiny_model=tiny_model, tiny_data=tiny_data, keras=keras)
    yield shell
    shell.run_cell("%unload_ext nbtrack")
    InteractiveShell.clear_instance()


def run(shell, code):
    result = shell.run_cell(code)
    return result


def test_load_ext_imports_no_heavy_module(python_env):
    # How long %load_ext takes is measured in benchmarks/ (bench_store.py: `store.load_ext`, a median).
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_cell('%load_ext nbtrack').raise_error()\n"
        "print('nbtrack.integrations.ipython' in sys.modules)\n"
        "print(sorted(m for m in ('keras','tensorflow','bqplot','ipywidgets','psutil') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=python_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-2:] == ["True", "[]"]


def test_fit_is_tracked_automatically_without_touching_callbacks(shell, store_dir):
    run(shell, "%load_ext nbtrack")
    run(shell, "%load_ext nbtrack")  # twice is harmless
    result = run(
        shell,
        """
x, y = tiny_data(64)
user_callbacks = [keras.callbacks.History()]
model = tiny_model()
history = model.fit(x, y, batch_size=16, epochs=2, callbacks=user_callbacks, verbose=0)
""",
    )
    assert result.success, result.error_in_exec
    assert len(shell.user_ns["user_callbacks"]) == 1  # the caller's list is not mutated
    store = open_store(store_dir, create=False)
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].state == "finished"
    record = runs[0]
    assert record.config["epochs"] == 2 and record.config["batch_size"] == 16
    assert record.config["optimizer"]["class"] == "Adam" and record.config["learning_rate"] == 0.01
    assert len(store.history(record.id, "batch/loss")) == 8 and len(store.history(record.id, "loss")) == 2


def test_no_second_callback_when_user_passes_one(shell, store_dir):
    run(shell, "%load_ext nbtrack")
    result = run(
        shell,
        """
from nbtrack.keras import NbtrackCallback
import nbtrack
mine = NbtrackCallback(display=False, log_batches=False)
x, y = tiny_data(64)
tiny_model().fit(x, y, batch_size=16, epochs=1, callbacks=[mine], verbose=0)
""",
    )
    assert result.success, result.error_in_exec
    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert (
        len(store.history(record.id, "batch/loss")) == 0
    )  # only the user's callback (log_batches=False) ran
    assert shell.user_ns["mine"].run.id == record.id


def test_fit_in_the_cell_that_imports_keras_is_tracked(python_env, tmp_path):
    code = f"""
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell('%load_ext nbtrack')
import sys
assert 'keras' not in sys.modules
result = shell.run_cell('''
import numpy as np
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.zeros((8, 4)), np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
''')
assert result.success, result.error_in_exec
from nbtrack.store import open_store
print(len(open_store({str(tmp_path / "s")!r}).list_runs()))
"""
    env = {
        **python_env,
        "NBTRACK_STORE": str(tmp_path / "s"),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "1"


def test_unload_restores_fit(shell, store_dir):
    original, own = keras.Model.fit, keras.Model.__dict__.get("fit")
    run(shell, "%load_ext nbtrack")
    assert keras.Model.fit is not original and keras.Model.fit._nbtrack_original is original
    run(shell, "%unload_ext nbtrack")
    assert keras.Model.fit is original
    assert keras.Model.__dict__.get("fit") is own  # the class is as it was, not just its attribute
    x, y = tiny_data(32)
    tiny_model().fit(x, y, epochs=1, verbose=0)
    assert not store_dir.exists()  # nothing recorded: not even a store was created
    assert "nbtrack" not in shell.magics_manager.magics["line"]


def test_exception_in_fit_marks_the_run_failed_and_interrupt_interrupted(shell, store_dir):
    run(shell, "%load_ext nbtrack")
    for exc, state in (("RuntimeError('boom')", "failed"), ("KeyboardInterrupt()", "interrupted")):
        result = run(
            shell,
            f"""
class Boom(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise {exc}
x, y = tiny_data(64)
tiny_model().fit(x, y, batch_size=8, epochs=2, callbacks=[Boom()], verbose=0)
""",
        )
        assert not result.success
        latest = open_store(store_dir).get_run("latest")
        assert latest.state == state


def test_explicit_callback_without_the_extension_is_marked_by_the_cell_watch(shell, store_dir):
    result = run(
        shell,
        """
from nbtrack.keras import NbtrackCallback
class Boom(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise ValueError("bad batch")
x, y = tiny_data(64)
tiny_model().fit(x, y, batch_size=8, epochs=2, callbacks=[NbtrackCallback(), Boom()], verbose=0)
""",
    )
    assert not result.success
    assert open_store(store_dir).get_run("latest").state == "failed"


def test_magic_status_off_on_init_and_usage(shell, store_dir, capsys):
    run(shell, "%load_ext nbtrack")
    run(shell, "%nbtrack status")
    out = capsys.readouterr().out
    assert "run:        none" in out and str(store_dir) in out and "tracked automatically" in out
    run(shell, "%nbtrack off")
    assert "not tracked" in capsys.readouterr().out
    x_y = "x, y = tiny_data(32)\ntiny_model().fit(x, y, epochs=1, verbose=0)"
    run(shell, x_y)
    assert not store_dir.exists()  # nothing recorded: not even a store was created
    run(shell, "%nbtrack on")
    run(shell, '%nbtrack init project=magic name=first lr=0.01 layers=[64,32] tags=a,b notes="two words"')
    out = capsys.readouterr().out
    record = open_store(store_dir).get_run("first")
    assert record.project == "magic" and record.config == {"lr": 0.01, "layers": [64, 32]}
    assert record.tags == ("a", "b") and record.notes == "two words"
    run(shell, "%nbtrack status")
    assert "first" in capsys.readouterr().out
    result = run(shell, "%nbtrack frobnicate")
    out = capsys.readouterr().out
    assert result.success and "unknown command 'frobnicate'" in out and "Usage: %nbtrack" in out
    result = run(shell, "%nbtrack init project=")
    out = capsys.readouterr().out
    assert result.success and "project must be a non-empty string" in out and "Traceback" not in out
    result = run(shell, "%nbtrack init oops")
    assert result.success and "expected key=value" in capsys.readouterr().out
    run(shell, "import nbtrack; nbtrack.finish()")


def test_a_fit_in_the_same_cell_as_load_ext_is_tracked(python, python_env, tmp_path):
    """The loading cell's pre-run hook ran before the extension existed: loading looks at that cell itself."""
    cell = (
        "%load_ext nbtrack\n"
        "import keras, numpy as np\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
        "m.compile(optimizer='sgd', loss='mse')\n"
        "m.fit(np.zeros((8, 4)), np.zeros(8), epochs=2, verbose=0)\n"
    )
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        f"result = shell.run_cell({cell!r}, store_history=True)\n"
        "result.raise_error()\n"
        "assert 'keras' in sys.modules\n"
    )
    env = {
        **python_env,
        "NBTRACK_STORE": str(tmp_path / "store"),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = open_store(tmp_path / "store", create=False).list_runs()
    assert len(runs) == 1 and runs[0].state == "finished" and runs[0].summary["epoch"] == 1
