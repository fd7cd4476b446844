"""What a Keras user must be able to trust, each in a real child Python process (a plain script or a real IPython
shell): a fit that raises is `failed` with its traceback, a fit works without the widget packages, `%load_ext`
imports Keras only for Keras and still tracks however Keras is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nbtrack.store import open_store
from tests import test_faults

# A real fit whose layer raises at its third training step (run eagerly, so the Python `call` runs each step).
BOMB_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras, numpy as np
from nbtrack.keras import NbtrackCallback

class Bomb(keras.layers.Layer):
    steps = 0
    def call(self, x, training=None):
        if training and not isinstance(x, keras.KerasTensor):
            Bomb.steps += 1
            if Bomb.steps == 3:
                raise ValueError("the bomb layer went off at step 3")
        return x

model = keras.Sequential([keras.Input((4,)), Bomb(), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
x, y = np.zeros((32, 4), "float32"), np.zeros((32, 1), "float32")
callback = NbtrackCallback()
"""


def child_env(python_env: dict[str, str], tmp_path: Path, **more: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **python_env,
        "HOME": str(home),  # Keras writes ~/.keras/keras.json on import
        "NBTRACK_STORE": str(tmp_path / "store"),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **more,
    }


def run_script(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(code))
    # the timeout only guards against a hang: a tiny fit takes seconds
    return subprocess.run(
        [sys.executable, str(path)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("caught", [True, False], ids=["caught", "uncaught"])
def test_a_fit_whose_layer_raises_is_failed_with_its_traceback(python_env, tmp_path, caught):
    if caught:
        fit = """
try:
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)
except ValueError as exc:
    print("caught:", exc)
print("state after the except:", callback.run.state)
"""
    else:
        fit = "model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)\n"
    done = run_script(BOMB_SCRIPT + fit, child_env(python_env, tmp_path), tmp_path)
    if caught:
        assert done.returncode == 0, done.stderr[-3000:]
        assert "state after the except: failed" in done.stdout  # at once, not only at exit
    else:
        assert done.returncode == 1 and "the bomb layer went off at step 3" in done.stderr
    store = open_store(tmp_path / "store", create=False)
    (record,) = store.list_runs()
    assert record.state == "failed"
    events = store.events(record.id)
    assert [e.kind for e in events] == ["fit", "failed"]
    # Keras wraps a layer's error in several lines (with ANSI bold): the event holds it as one clean line
    assert events[1].message.startswith(
        "fit failed: ValueError: Exception encountered when calling Bomb.call(). "
    )
    assert " the bomb layer went off at step 3 " in events[1].message and "\x1b" not in events[1].message
    log = (store.run_dir(record.id) / "output.log").read_text().splitlines()
    assert "Traceback (most recent call last):" in log and "the bomb layer went off at step 3" in log
    assert any('raise ValueError("the bomb layer went off at step 3")' in line for line in log)
    assert len(store.history(record.id, "batch/loss")) == 2  # steps 1 and 2 ran, the third raised


# Makes every import of the widget packages fail, as where `nbtrack[keras]` is installed without `[widgets]`.
NO_WIDGETS = """
import sys

class NoWidgets:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("ipywidgets", "anywidget", "bqplot"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoWidgets())
"""


def test_a_fit_in_a_script_without_the_widget_packages_prints_one_line_per_epoch(python_env, tmp_path):
    blocker = tmp_path / "no-widgets"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_WIDGETS)
    env = child_env(python_env, tmp_path)
    env["PYTHONPATH"] = f"{blocker}{os.pathsep}{env['PYTHONPATH']}"
    script = """
import sys
for name in ("ipywidgets", "anywidget", "bqplot"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        print("blocked", name)
import keras, numpy as np
from nbtrack.keras import NbtrackCallback
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
callback = NbtrackCallback()
model.fit(np.zeros((16, 4)), np.zeros(16), batch_size=8, epochs=3, verbose=0, callbacks=[callback])
print("state", callback.run.state)
print("widget modules", sorted(m for m in sys.modules if m.partition(".")[0] in ("ipywidgets", "anywidget", "bqplot")))
"""
    done = run_script(script, env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[:3] == ["blocked ipywidgets", "blocked anywidget", "blocked bqplot"]
    epochs = [line for line in lines if line.startswith("nbtrack: epoch ")]
    assert [line.split(" - ")[0] for line in epochs] == [f"nbtrack: epoch {k}/3" for k in (1, 2, 3)]
    assert all(" - loss 0 - learning_rate 0.01" in line for line in epochs)
    assert lines[-2:] == ["state finished", "widget modules []"]
    assert "ModuleNotFoundError" not in done.stderr and "NbtrackWarning" not in done.stderr


class StandInKernel:
    """What the dashboard reads of a kernel: its kernel_info reply (ipykernel 6 advertises no subshells)."""

    def __init__(self, features):
        self.kernel_info = {"protocol_version": "5.3", "supported_features": features}


@pytest.fixture
def kernel_shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


@pytest.mark.parametrize("features", [[], ["kernel subshells"]], ids=["no-subshells", "subshells"])
def test_stop_says_why_it_cannot_work_where_clicks_wait_for_the_cell(notebook, kernel_shell, features):
    import html

    from nbtrack.keras import NbtrackCallback
    from nbtrack.ui.dashboard import LATE_STOP_NOTE, NO_CLICKS_NOTE, STOP_TOOLTIP

    from .keras_helpers import keras, tiny_data, tiny_model
    from .widget_helpers import RecordingComm

    kernel_shell.kernel = StandInKernel(features)
    seen = {}

    class Look(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                dashboard = callback.run._dashboard_obj
                seen.update(
                    note=html.unescape(dashboard.note.value),
                    shown=dashboard.note.layout.display,
                    tooltip=dashboard.stop_button.tooltip,
                )

    callback = NbtrackCallback()
    x, y = tiny_data(32)
    tiny_model().fit(x, y, batch_size=8, epochs=1, callbacks=[Look(), callback], verbose=0)
    sent = "\n".join(html.unescape(json.dumps(m.data, ensure_ascii=False)) for m in RecordingComm.log)
    if features:
        assert seen == {"note": "", "shown": "none", "tooltip": STOP_TOOLTIP}
        assert NO_CLICKS_NOTE not in sent
    else:
        assert NO_CLICKS_NOTE in seen["note"] and seen["shown"] is None and seen["tooltip"] == NO_CLICKS_NOTE
        assert NO_CLICKS_NOTE in sent  # the front-end was told
    dashboard = callback.run._dashboard_obj
    assert dashboard.note.layout.display == "none"  # training over: nothing to say about stopping it

    # A click the front-end held until the cell ended reaches the kernel now: it says so and stops nothing.
    RecordingComm.log.clear()
    dashboard.stop_button.click()
    assert LATE_STOP_NOTE in html.unescape(dashboard.note.value) and dashboard.note.layout.display is None
    assert not dashboard.stop_requested.is_set() and callback.run.state == "finished"
    sent = "\n".join(html.unescape(json.dumps(m.data, ensure_ascii=False)) for m in RecordingComm.log)
    assert LATE_STOP_NOTE in sent


kernel = test_faults.kernel  # fixture: a real IPython kernel on this test's store

SLOW_FIT = """
import time, keras
from tests.keras_helpers import tiny_data, tiny_model
pace = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.02))
x, y = tiny_data(16 * 50)
tiny_model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[pace])
"""


@pytest.mark.slow
def test_a_stop_click_that_reaches_the_kernel_after_training_says_so(kernel, store_dir):
    """A front-end without subshells (JupyterLab < 4.4, VS Code) sends the click on the main shell channel: a
    real kernel handles it only after the cell. Training runs to its end and the dashboard says why."""
    import queue

    from .test_faults import _wait_for

    _manager, client = kernel
    client.execute("%load_ext nbtrack")
    cell = client.execute(SLOW_FIT)
    messages: list[dict] = []

    def comm_opens():
        while True:
            try:
                messages.append(client.get_iopub_msg(timeout=0.05))
            except queue.Empty:
                break
        return [m["content"] for m in messages if m["msg_type"] == "comm_open"] or None

    def stop_button():
        opens = comm_opens() or []
        return next((c["comm_id"] for c in opens if c["data"]["state"].get("description") == "Stop"), None)

    button = _wait_for(stop_button, 120, "the dashboard's Stop button")
    clicked_at = time.time()
    click = client.session.msg(
        "comm_msg", {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
    )
    client.shell_channel.send(click)  # no subshell_id: the main shell, busy with the cell
    while True:  # the cell's reply, then the click's handling, then idle again
        try:
            messages.append(client.get_iopub_msg(timeout=60))
        except queue.Empty:
            raise AssertionError("the kernel went quiet without answering the click") from None
        updates = [
            json.dumps(m["content"]["data"], ensure_ascii=False)
            for m in messages
            if m["msg_type"] == "comm_msg" and m["parent_header"].get("msg_id") == click["header"]["msg_id"]
        ]
        if any("Stop arrived after training ended" in u for u in updates):
            break
    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert record.state == "finished" and record.summary["epoch"] == 2  # all three epochs ran
    assert record.ended > clicked_at  # the click was sent while training ran
    assert [e.kind for e in store.events(record.id)] == ["fit"]  # no "stopped"
    assert any(m["parent_header"].get("msg_id") == cell for m in messages)
    store.close()


@pytest.mark.slow
def test_a_caught_fit_failure_in_a_real_kernel_is_failed_at_once(kernel, store_dir):
    """The same bomb in a notebook kernel, the exception caught inside the cell: the cell succeeds, the run is
    failed with the layer's traceback (not a later 'fit did not finish' from the cell watch)."""
    from .test_faults_processes import _reply_to

    _manager, client = kernel
    cell = client.execute(
        BOMB_SCRIPT
        + "try:\n    model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)\n"
        + "except ValueError:\n    pass\nassert callback.run.state == 'failed', callback.run.state\n"
    )
    reply = _reply_to(client, cell)
    assert reply["status"] == "ok", reply
    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert record.state == "failed"
    events = store.events(record.id)
    assert [e.kind for e in events] == ["fit", "failed"] and "the bomb layer went off at step 3" in events[
        1
    ].message
    log = (store.run_dir(record.id) / "output.log").read_text().splitlines()
    assert "Traceback (most recent call last):" in log and "the bomb layer went off at step 3" in log
    store.close()


def test_a_fault_while_marking_the_run_failed_never_replaces_the_users_exception(monkeypatch):
    import warnings

    from nbtrack.errors import NbtrackWarning
    from nbtrack.keras import NbtrackCallback
    from nbtrack.run import Run

    from .keras_helpers import keras, tiny_data, tiny_model

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                monkeypatch.setattr(Run, "event", broken)
                raise ValueError("the user's own error")

    def broken(self, *args, **kwargs):
        raise OSError("the store broke")

    callback = NbtrackCallback(display=False)
    x, y = tiny_data(32)
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(ValueError, match="the user's own error"),
    ):
        warnings.simplefilter("always")
        tiny_model().fit(x, y, batch_size=8, epochs=1, callbacks=[callback, Boom()], verbose=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    assert ours == ["nbtrack: OSError: the store broke. Training goes on."]
    monkeypatch.undo()
    callback.run.finish(state="failed")
