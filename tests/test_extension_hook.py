"""`%load_ext nbtrack` imports Keras only for Keras, and attaches to `fit` however Keras gets imported.

Each test is a fresh Python process (Keras must not be imported yet) driving a real IPython shell.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from nbtrack.store import open_store

SHELL = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()

def cell(code):
    result = shell.run_cell(code)
    result.raise_error()

def hooked():
    return [type(f).__name__ for f in sys.meta_path if type(f).__name__ == "_KerasImportHook"]

def report(**facts):
    print("FACTS " + json.dumps(facts))
"""

# A helper module that imports keras inside a function and fits there: the cell never mentions keras or fit.
HELPER = """
def train():
    import importlib
    keras = importlib.import_module("keras")
    import numpy as np
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 4)), np.zeros(8), batch_size=4, epochs=2, verbose=0)
"""


def run_shell(code: str, python_env: dict[str, str], tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        **python_env,
        "HOME": str(home),  # Keras writes ~/.keras/keras.json on import
        "NBTRACK_STORE": str(tmp_path / "store"),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": f"{tmp_path}:{python_env['PYTHONPATH']}",
    }
    script = tmp_path / "drive_shell.py"
    script.write_text(SHELL + textwrap.dedent(code))
    # the timeout only guards against a hang: importing TensorFlow takes seconds
    done = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    facts = {}
    for line in done.stdout.splitlines():
        if line.startswith("FACTS "):
            facts.update(json.loads(line[6:]))
    return facts


def test_a_scikit_learn_fit_imports_neither_keras_nor_tensorflow(python_env, tmp_path):
    facts = run_shell(
        """
        cell("%load_ext nbtrack")
        cell('''
        import numpy as np
        from sklearn.linear_model import LinearRegression
        X, y = np.arange(8.0).reshape(4, 2), np.arange(4.0)
        LinearRegression().fit(X, y)
        ''')
        report(heavy=sorted(m for m in ("keras", "tensorflow", "tf_keras") if m in sys.modules), hooked=hooked())
        """,
        python_env,
        tmp_path,
    )
    assert facts == {"heavy": [], "hooked": ["_KerasImportHook"]}


def test_a_fit_in_a_module_that_imports_keras_itself_is_tracked_until_unload(python_env, tmp_path):
    (tmp_path / "helper_training.py").write_text(HELPER)
    facts = run_shell(
        """
        cell("%load_ext nbtrack")
        cell("import helper_training\\nhelper_training.train()")
        import keras
        report(patched=hasattr(keras.Model.fit, "_nbtrack_original"))
        cell("%unload_ext nbtrack")
        report(after_unload_patched=hasattr(keras.Model.fit, "_nbtrack_original"), after_unload_hooked=hooked())
        cell("helper_training.train()")  # no longer tracked
        """,
        python_env,
        tmp_path,
    )
    assert facts == {"patched": True, "after_unload_patched": False, "after_unload_hooked": []}
    (record,) = open_store(tmp_path / "store", create=False).list_runs()  # the fit after unload made none
    assert record.state == "finished" and record.summary["epoch"] == 1 and record.config["epochs"] == 2


def test_unload_before_keras_is_imported_leaves_the_import_alone(python_env, tmp_path):
    facts = run_shell(
        """
        cell("%load_ext nbtrack")
        cell("%unload_ext nbtrack")
        report(hooked=hooked())
        cell("import tensorflow as tf")
        cell("model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])")
        report(patched=hasattr(sys.modules["keras"].Model.fit, "_nbtrack_original"))
        cell("%load_ext nbtrack")  # keras already imported: patched at once
        report(loaded_patched=hasattr(sys.modules["keras"].Model.fit, "_nbtrack_original"))
        cell('''
        import numpy as np
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.zeros((8, 4)), np.zeros(8), batch_size=4, epochs=1, verbose=0)
        ''')
        """,
        python_env,
        tmp_path,
    )
    assert facts == {"hooked": [], "patched": False, "loaded_patched": True}
    (record,) = open_store(tmp_path / "store", create=False).list_runs()
    assert record.state == "finished"
