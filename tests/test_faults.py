"""Issue #9's fault catalogue, each with real processes: nothing logged >= 1 s before a fault is lost.

Covered elsewhere and not repeated here: kill -9 of a logging script (test_durability), writer faults, outages and
spill files (test_bad_input), PostgreSQL faults (test_postgres_faults).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- 1. kill -9 of the kernel mid-fit ---------------------------------------------------------------
# Its own cell: the extension patches `fit` from the next cell on (a cell that loads it and also imports keras
# and fits is not tracked; see the report for #9).
LOAD_EXT = "%load_ext nbtrack"
KERNEL_FIT = textwrap.dedent("""
    import time, keras
    from tests.keras_helpers import tiny_data, tiny_model

    class Witness(keras.callbacks.Callback):
        # an independent record of when each epoch ended, flushed to disk at once
        def on_epoch_end(self, epoch, logs=None):
            with open({witness!r}, "a") as f:
                f.write(f"{{epoch}} {{time.time()!r}}\\n")
            time.sleep(0.15)

    x, y = tiny_data(64)
    tiny_model().fit(x, y, batch_size=16, epochs=10_000, verbose=0, callbacks=[Witness()])
""")


@pytest.fixture
def kernel(tmp_path, python_env):
    from jupyter_client.manager import KernelManager

    env = dict(python_env)
    env["KERAS_BACKEND"] = "tensorflow"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(Path(__file__).resolve().parent.parent))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    yield manager, client
    client.stop_channels()
    if manager.is_alive():
        manager.shutdown_kernel(now=True)
    else:
        manager.cleanup_resources()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_sigkill_of_the_kernel_mid_fit_keeps_history_and_is_reported_once(
    kernel, store_dir, tmp_path, capsys
):
    manager, client = kernel
    witness = tmp_path / "epochs.txt"
    client.execute(LOAD_EXT)
    client.execute(KERNEL_FIT.format(witness=str(witness)))

    def epochs_committed():
        if not (store_dir / "nbtrack.db").is_file():
            return None
        store = open_store(store_dir, create=False)
        try:
            runs = store.list_runs()
            stats = store.metric_stats(runs[0].id).get("epoch") if runs else None
            if stats is not None and stats.count >= 5:
                return runs[0].id
        finally:
            store.close()
        return None

    run_id = _wait_for(epochs_committed, 120, "the kernel's run to commit 5 epochs")
    time.sleep(1.5)  # training goes on; the last second of it may be lost, nothing before
    pid = manager.provisioner.process.pid
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not manager.is_alive(), 30, "the killed kernel to be gone")

    store = open_store(store_dir, create=False)  # a fresh store object, as a new process would have
    record = store.get_run(run_id)
    assert record.state == "crashed"
    assert record.project and record.name
    epochs = store.history(run_id, "epoch")
    assert len(epochs) >= 5
    np.testing.assert_array_equal(epochs.value, np.arange(len(epochs)))  # a gap-free prefix
    ended = {int(e): float(t) for e, t in (line.split() for line in witness.read_text().splitlines())}
    due = [e for e, t in ended.items() if t <= killed_at - 1.0]
    assert due, "the witness saw epochs end well before the kill"
    assert len(epochs) >= max(due) + 1, (
        f"epochs ended >= 1 s before the kill: up to {max(due)}; in the store: {len(epochs)}"
    )
    assert store.metric_stats(run_id)["loss"].count == len(epochs)
    store.close()

    # The next %load_ext, in a new shell on this host, tells about the crash once.
    expected = (
        f"nbtrack: run {record.name} ({run_id}) in project {record.project} crashed (its process ended "
        "without finishing); its history up to then is kept."
    )
    for attempt in range(2):
        shell = InteractiveShell.instance()
        try:
            capsys.readouterr()
            shell.run_cell("%load_ext nbtrack")
            out = capsys.readouterr().out
        finally:
            shell.run_cell("%unload_ext nbtrack")
            InteractiveShell.clear_instance()
        if attempt == 0:
            assert out.splitlines() == [expected]
        else:
            assert out == "", "a crash is reported once"
    assert run_id in (store_dir / ".reported-crashes").read_text().split()


# -- a KeyboardInterrupt that a finalizer swallows ----------------------------------------------------
class _InterruptedFinalizer:
    """Dropped at once; SIGINT arrives while its finalizer runs, so KeyboardInterrupt is raised inside `__del__`,
    where CPython prints "Exception ignored in ..." and drops it (as it does in TensorFlow's finalizers)."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def _record_swallowed(monkeypatch) -> list[type]:
    swallowed: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: swallowed.append(unraisable.exc_type))
    return swallowed


def test_interrupt_watch_raises_a_swallowed_keyboard_interrupt_once_and_restores_the_handler(monkeypatch):
    from nbtrack.capture.interrupt import InterruptWatch

    swallowed = _record_swallowed(monkeypatch)
    previous = signal.getsignal(signal.SIGINT)
    watch = InterruptWatch()
    watch.start()
    assert signal.getsignal(signal.SIGINT) == watch._handle
    watch.check()  # nothing came yet
    _InterruptedFinalizer()
    assert swallowed == [KeyboardInterrupt]  # the interrupt really was dropped by the finalizer
    assert (
        signal.getsignal(signal.SIGINT) is previous
    )  # one signal kept; a second goes to the previous handler
    with pytest.raises(KeyboardInterrupt):
        watch.check()
    watch.check()  # raised once
    watch.stop()
    assert signal.getsignal(signal.SIGINT) is previous


def test_interrupt_watch_leaves_an_ignored_sigint_ignored(monkeypatch):
    from nbtrack.capture.interrupt import InterruptWatch

    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_IGN)
    monkeypatch.setattr(signal, "signal", lambda *args: pytest.fail("the handler was replaced"))
    watch = InterruptWatch()
    watch.start()
    watch.check()
    watch.stop()


def test_one_interrupt_swallowed_by_a_finalizer_still_stops_fit_at_that_batch(monkeypatch, store_dir):
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import keras, tiny_data, tiny_model

    class InterruptAtBatch(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if self.batches == 6:  # epoch 2, batch 2 of 4
                _InterruptedFinalizer()

    swallowed = _record_swallowed(monkeypatch)
    previous = signal.getsignal(signal.SIGINT)
    interrupter = InterruptAtBatch()
    run = nbtrack.init(project="interrupt")
    x, y = tiny_data(64)
    callbacks = [interrupter, NbtrackCallback(run, display=False)]
    try:
        with pytest.raises(KeyboardInterrupt):
            tiny_model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)
    finally:
        run.finish()
    assert swallowed == [KeyboardInterrupt]
    assert interrupter.batches == 6  # stopped at the end of the batch the interrupt came in, not later
    assert signal.getsignal(signal.SIGINT) is previous
    assert open_store(store_dir, create=False).history(run.id, "batch/loss").step.tolist() == list(range(6))


def test_crash_report_skips_a_broken_or_missing_store(store_dir, tmp_path, capsys):
    from nbtrack.integrations.ipython import report_crashes

    report_crashes(str(tmp_path / "nowhere"))  # no store: nothing, and nothing created
    assert not (tmp_path / "nowhere").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "nbtrack.db").write_bytes(b"not a database" * 100)
    report_crashes(str(broken))  # never raises
    assert capsys.readouterr().out == ""
    assert (broken / "nbtrack.db").read_bytes() == b"not a database" * 100


# -- 2. an exception in the user's code inside fit --------------------------------------------------
@pytest.fixture
def shell():
    from .keras_helpers import keras, tiny_data, tiny_model

    shell = InteractiveShell.instance()
    shell.user_ns.update(tiny_model=tiny_model, tiny_data=tiny_data, keras=keras)
    shell.run_cell("%load_ext nbtrack")
    yield shell
    shell.run_cell("%unload_ext nbtrack")
    InteractiveShell.clear_instance()


USER_LAYER_RAISES = """
class Explodes(keras.layers.Layer):
    # the user's own layer: fine for 5 batches, then raises (eager, so `call` runs every batch)
    calls = 0

    def call(self, x):
        Explodes.calls += 1
        if Explodes.calls > 5:
            raise ValueError("the user's layer exploded at batch 6")
        return x

model = keras.Sequential([keras.Input((8,)), Explodes(), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
x, y = tiny_data(64)
model.fit(x, y, batch_size=16, epochs=3, verbose=0)
"""


def test_user_exception_in_fit_fails_the_run_with_its_traceback(shell, notebook, store_dir):
    result = shell.run_cell(USER_LAYER_RAISES)
    assert isinstance(result.error_in_exec, ValueError)  # the user's exception, not ours
    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert record.state == "failed"
    assert store.metric_stats(record.id)["batch/loss"].count >= 4  # the batches before it are kept
    log = (store.run_dir(record.id) / "output.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError" in log and "the user's layer exploded at batch 6" in log  # Keras adds to the message
    assert any("fit failed: ValueError" in e.message for e in store.events(record.id))
    final = notebook[0].bundles[-1]  # the dashboard's last display update
    assert "failed" in final["text/plain"] and record.name in final["text/plain"]
    assert "failed" in final["image/svg+xml"]
    store.close()


# -- 3. faults inside nbtrack during a real fit -----------------------------------------------------
EPOCHS = 5


def _fit_while_nbtrack_fails(monkeypatch, faults: set[str]):
    """A tiny real fit (~2 s) with the named faults injected into nbtrack; returns (history, warnings, run id)."""
    import nbtrack.store.sqlite as sqlite_module
    import nbtrack.ui.dashboard as dashboard_module
    from nbtrack.capture.system import SystemSampler
    from nbtrack.errors import NbtrackWarning, StoreError
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import keras, tiny_data, tiny_model

    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0.05")
    if "sampler" in faults:

        def sample(self):
            raise RuntimeError("psutil broke (injected)")

        monkeypatch.setattr(SystemSampler, "sample", sample)
    if "store" in faults:
        real_write = sqlite_module.SQLiteStore.write_batch
        failing = {"left": 3}

        def write_batch(self, batch):
            if failing["left"] > 0 and not batch.is_empty():
                failing["left"] -= 1
                raise StoreError("disk full (injected)")
            return real_write(self, batch)

        monkeypatch.setattr(sqlite_module.SQLiteStore, "write_batch", write_batch)
    if "widget" in faults:

        def refresh(self, changed):
            raise RuntimeError("widget refresh broke (injected)")

        monkeypatch.setattr(dashboard_module.Dashboard, "refresh", refresh)

    slow = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: time.sleep(0.4))
    ours = NbtrackCallback()
    x, y = tiny_data(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0, callbacks=[slow, ours])
    if "store" in faults:
        assert failing["left"] == 0, "the injected store faults were all hit"
    ours_warned = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    return history, ours_warned, ours.run.id


def _assert_run_is_whole(store_dir, run_id):
    store = open_store(store_dir, create=False)
    record = store.get_run(run_id)
    assert record.state == "finished"
    np.testing.assert_array_equal(store.history(run_id, "epoch").value, np.arange(EPOCHS))
    assert store.metric_stats(run_id)["loss"].count == EPOCHS
    assert store.metric_stats(run_id)["batch/loss"].count == EPOCHS * 4
    store.close()


def test_store_and_widget_faults_during_fit_warn_once_each_and_lose_nothing(notebook, store_dir, monkeypatch):
    history, warned, run_id = _fit_while_nbtrack_fails(monkeypatch, {"store", "widget"})
    assert history.epoch == list(range(EPOCHS))  # training went the whole way
    assert len(warned) == 2, warned
    assert sum("disk full (injected)" in w for w in warned) == 1
    assert sum("widget refresh broke (injected)" in w for w in warned) == 1
    _assert_run_is_whole(store_dir, run_id)


# -- 4. a store file that is garbage, truncated, or from a newer nbtrack ----------------------------
def _corrupt(store_dir: Path, how: str) -> bytes:
    import sqlite3

    import nbtrack

    run = nbtrack.init(project="p", store=store_dir)
    for i in range(2000):
        run.log({"loss": float(i)})
    run.finish()
    run.store.close()
    db = store_dir / "nbtrack.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if how == "newer":
            conn.execute("PRAGMA user_version = 999")
    conn.close()
    for extra in ("nbtrack.db-wal", "nbtrack.db-shm"):
        (store_dir / extra).unlink(missing_ok=True)
    if how == "garbage":
        db.write_bytes(os.urandom(64 * 1024))
    elif how == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])
    return db.read_bytes()


@pytest.mark.parametrize("how", ["garbage", "truncated", "newer"])
def test_a_broken_store_file_is_named_explained_and_left_alone(how, tmp_path, python, python_env):
    import subprocess

    import nbtrack
    from nbtrack.errors import StoreError

    store_dir = tmp_path / "store"
    before = _corrupt(store_dir, how)
    db = store_dir / "nbtrack.db"
    with pytest.raises(StoreError) as raised:
        run = nbtrack.init(project="p", store=store_dir)
        run.log({"loss": 1.0})  # should not get here; if it does, the write must not touch the file
        run.finish()
    message = str(raised.value)
    if how == "newer":
        assert re.fullmatch(
            re.escape(f"The run store at {store_dir} was written by a newer nbtrack (schema version 999; ")
            + r"this nbtrack reads up to \d+\)\. Upgrade with `pip install -U nbtrack`\.",
            message,
        ), message
    else:
        why = {"garbage": "file is not a database", "truncated": "database disk image is malformed"}[how]
        assert message.startswith(
            f"Cannot open the run store database {db}: {why}. nbtrack has not changed it. If it is damaged, "
            "move it aside (or restore it from a backup)"
        ), message
    done = subprocess.run(
        [python, "-m", "nbtrack", "--store", str(store_dir), "ls"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert str(store_dir) in done.stderr + done.stdout
    assert db.read_bytes() == before, "the broken file was changed"


# -- 5. attribution: two fits in one cell, and a fit inside a sweep trial -----------------------------
def test_two_fits_in_one_cell_without_init_are_two_runs(shell, store_dir):
    # Without nbtrack.init, each fit's NbtrackCallback finds no running current run, starts its own
    # (`_train_begin`: init(config=fit_config)) and finishes it at train end; so two fits are two whole runs,
    # each with its own epochs and its own fit arguments, not one run continued.
    result = shell.run_cell(
        "x, y = tiny_data(64)\n"
        "tiny_model().fit(x, y, batch_size=16, epochs=2, verbose=0)\n"
        "tiny_model().fit(x, y, batch_size=32, epochs=3, verbose=0)\n"
    )
    assert result.success, result.error_in_exec
    store = open_store(store_dir, create=False)
    first, second = sorted(store.list_runs(), key=lambda r: r.created)
    assert (first.state, second.state) == ("finished", "finished")
    assert (first.config["batch_size"], second.config["batch_size"]) == (16, 32)
    assert store.metric_stats(first.id)["loss"].count == 2
    assert store.metric_stats(second.id)["loss"].count == 3
    assert store.metric_stats(first.id)["batch/loss"].count == 2 * 4
    assert store.metric_stats(second.id)["batch/loss"].count == 3 * 2
    store.close()


SWEEP_CELL = """
import nbtrack

def train(config):
    x, y = tiny_data(64)
    tiny_model(lr=config["lr"]).fit(x, y, batch_size=16, epochs=2, verbose=0)

the_sweep = nbtrack.sweep(
    {"method": "grid", "parameters": {"lr": {"values": [0.01, 0.02]}}}, train, project="sweep-fit"
)
"""


def test_fit_inside_a_sweep_trial_goes_to_the_trials_run(shell, store_dir):
    result = shell.run_cell(SWEEP_CELL)
    assert result.success, result.error_in_exec
    store = open_store(store_dir, create=False)
    (sweep,) = store.list_sweeps("sweep-fit")
    trials = store.trials(sweep.id)
    runs = store.list_runs()
    assert len(trials) == 2 and len(runs) == 2  # no extra run for the fits: each went into its trial's run
    for trial in trials:
        run = store.get_run(trial.run_id)
        assert run.project == "sweep-fit" and run.state == "finished"
        assert run.config["lr"] == trial.params["lr"]
        assert store.metric_stats(run.id)["loss"].count == 2
        assert store.metric_stats(run.id)["batch/loss"].count == 2 * 4
    store.close()


def test_sampler_fault_during_fit_is_warned_once_and_loses_nothing(notebook, store_dir, monkeypatch):
    history, warned, run_id = _fit_while_nbtrack_fails(monkeypatch, {"sampler"})
    assert history.epoch == list(range(EPOCHS))
    assert len(warned) == 1 and "psutil broke (injected)" in warned[0], warned  # STYLE 8: warned once
    _assert_run_is_whole(store_dir, run_id)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_corrupt_store_error_says_what_to_do(how, tmp_path):
    # STYLE 9: what was received, what was expected, how to fix it. The newer-schema error says "Upgrade with
    # `pip install -U nbtrack`"; a corrupt file's says only SQLite's words ("file is not a database").
    import nbtrack
    from nbtrack.errors import StoreError

    store_dir = tmp_path / "store"
    _corrupt(store_dir, how)
    with pytest.raises(StoreError) as raised:
        nbtrack.init(project="p", store=store_dir)
    message = str(raised.value)
    assert any(word in message for word in ("move", "backup", "back up", "restore", "rename")), message
