"""NbtrackCallback on a tiny real Keras model: what it logs, keeps and records."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nbtrack
from nbtrack.errors import NbtrackWarning
from nbtrack.keras import NbtrackCallback  # noqa: E402  (after keras is configured)
from nbtrack.run import current_run

from .keras_helpers import keras, tiny_data, tiny_model


def stored(run):
    return run.store.get_run(run.id)


def test_logs_batches_epochs_lr_and_best_model(capsys):
    x, y = tiny_data(128)
    model = tiny_model()
    callback = NbtrackCallback()
    model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[callback], verbose=0)
    run = callback.run
    assert run.state == "finished"  # the callback started the run, so fit ends it
    store = run.store
    steps_per_epoch = 6  # 96 training samples / 16
    batch_loss = store.history(run.id, "batch/loss")
    assert batch_loss.step.tolist() == list(range(3 * steps_per_epoch))
    assert store.history(run.id, "batch/accuracy").step.tolist() == list(range(3 * steps_per_epoch))
    epochs = store.history(run.id, "epoch")
    assert epochs.value.tolist() == [0.0, 1.0, 2.0]
    assert epochs.step.tolist() == [5, 11, 17]  # each epoch's metrics at its last step
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        assert len(store.history(run.id, key)) == 3, key
    assert store.history(run.id, "learning_rate").value.tolist() == [0.01] * 3
    record = stored(run)
    val_loss = store.history(run.id, "val_loss").value
    assert record.summary["best_val_loss"] == pytest.approx(val_loss.min())
    assert record.summary["best_epoch"] == int(val_loss.argmin())
    assert record.config["epochs"] == 3 and record.config["steps_per_epoch"] == steps_per_epoch
    assert record.config["optimizer"]["class"] == "Adam" and record.config["learning_rate"] == 0.01
    assert record.config["loss"] == "sparse_categorical_crossentropy"
    best = run.dir / "model-best.keras"
    assert best.is_file()
    reloaded = keras.models.load_model(best)
    assert reloaded.count_params() == model.count_params()
    out = capsys.readouterr().out
    assert out.count("nbtrack: epoch ") == 3 and "epoch 3/3" in out  # the console line outside notebooks


def test_uses_the_current_run_and_leaves_it_open():
    run = nbtrack.init(project="p", config={"epochs": 99})
    x, y = tiny_data(64)
    tiny_model().fit(x, y, batch_size=16, epochs=2, callbacks=[NbtrackCallback(display=False)], verbose=0)
    assert current_run() is run and run.state == "running"
    run.log({"test_accuracy": 0.5})
    run.finish()
    assert run.config["epochs"] == 99  # the user's config wins over fit's arguments
    assert run.store.history(run.id, "batch/loss").step.tolist() == list(range(8))
    # a second fit continues the global step
    run2 = nbtrack.init(project="p")
    cb = NbtrackCallback(run2, display=False, log_batches=False)
    model = tiny_model()
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    run2.finish()
    assert run2.store.history(run2.id, "epoch").step.tolist() == [3, 7]
    assert len(run2.store.history(run2.id, "batch/loss")) == 0


def test_scheduled_learning_rate_is_logged_each_epoch():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy")
    x, y = tiny_data(64)
    callback = NbtrackCallback(display=False, monitor="loss")
    model.fit(x, y, batch_size=16, epochs=3, callbacks=[callback], verbose=0)
    run = callback.run
    lrs = run.store.history(run.id, "learning_rate").value
    assert lrs.tolist() == pytest.approx([0.1 * 0.5 ** (4 * (e + 1) / 4) for e in range(3)], rel=1e-5)
    assert [e.kind for e in run.store.events(run.id)] == ["fit"]  # a schedule is not an event


def test_reduce_lr_on_plateau_and_early_stopping_are_events():
    x, y = tiny_data(64)
    model = tiny_model()
    callback = NbtrackCallback(display=False)
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    callback.peers = [reduce, stop]
    model.fit(x, y, batch_size=16, epochs=10, callbacks=[reduce, stop, callback], verbose=0)
    run = callback.run
    events = run.store.events(run.id)
    kinds = [e.kind for e in events]
    assert "learning_rate" in kinds and "early_stopping" in kinds
    lr_event = next(e for e in events if e.kind == "learning_rate")
    assert "ReduceLROnPlateau" in lr_event.message and lr_event.data["new"] == pytest.approx(
        lr_event.data["old"] / 2
    )
    stopped = next(e for e in events if e.kind == "early_stopping")
    assert "EarlyStopping stopped training at epoch" in stopped.message
    assert len(run.store.history(run.id, "epoch")) < 10


def test_nan_loss_termination_is_an_event():
    x, y = tiny_data(64)
    model = tiny_model()
    model.compile(optimizer="adam", loss=lambda y_true, y_pred: keras.ops.log(keras.ops.mean(y_pred) - 10.0))
    callback = NbtrackCallback(display=False, monitor="loss")
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[keras.callbacks.TerminateOnNaN(), callback], verbose=0)
    run = callback.run
    assert "nan_loss" in [e.kind for e in run.store.events(run.id)]
    assert math.isnan(run.store.history(run.id, "batch/loss").value[-1])  # the NaN itself is kept


def test_exception_and_interrupt_mark_the_run():
    class Boom(keras.callbacks.Callback):
        def __init__(self, exc):
            super().__init__()
            self.exc = exc

        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise self.exc

    x, y = tiny_data(64)
    for exc, state in ((RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")):
        callback = NbtrackCallback(display=False)
        with pytest.raises(
            type(exc)
        ):  # nbtrack.integrations.keras' guard around fit reports it, no %load_ext needed
            tiny_model().fit(x, y, batch_size=8, epochs=2, callbacks=[callback, Boom(exc)], verbose=0)
        run = callback.run
        assert stored(run).state == state
        assert [e.kind for e in run.store.events(run.id)] == ["fit", state]


def test_missing_monitor_falls_back_and_warns_once():
    x, y = tiny_data(64)
    quiet = NbtrackCallback(display=False)  # the default monitor, val_loss, without validation data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_model().fit(x, y, batch_size=16, epochs=2, callbacks=[quiet], verbose=0)
    assert not [w for w in caught if issubclass(w.category, NbtrackWarning)]
    assert "best_loss" in stored(quiet.run).summary
    chosen = NbtrackCallback(display=False, monitor="val_accuracy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_model().fit(x, y, batch_size=16, epochs=3, callbacks=[chosen], verbose=0)
    ours = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    assert len(ours) == 1 and "'val_accuracy' is not logged" in ours[0]
    assert "best_accuracy" in stored(chosen.run).summary


def test_a_fault_inside_nbtrack_never_stops_training(monkeypatch):
    x, y = tiny_data(64)
    callback = NbtrackCallback(display=False)

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(callback, "_track_best", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = tiny_model().fit(
            x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[callback], verbose=0
        )
    assert len(history.history["loss"]) == 3
    ours = [str(w.message) for w in caught if issubclass(w.category, NbtrackWarning)]
    assert len(ours) == 1 and "disk gone" in ours[0] and "Training goes on" in ours[0]
    assert len(callback.run.store.history(callback.run.id, "epoch")) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode=...\\): expected one of auto, min, max"):
        NbtrackCallback(mode="lowest")
    with pytest.raises(TypeError, match="expected an nbtrack Run"):
        NbtrackCallback(run="my-run")


ON_JAX = """
import sys
import numpy as np
import keras
from nbtrack.keras import NbtrackCallback
assert keras.backend.backend() == "jax", keras.backend.backend()
rng = np.random.default_rng(0)
x = rng.random((64, 8), dtype=np.float32)
y = (x.sum(axis=1) > 4).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
callback = NbtrackCallback(display=False, save_best=False)
model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[callback], verbose=0)
run = callback.run
print(run.state, len(run.store.history(run.id, "batch/loss")), run.store.history(run.id, "learning_rate").value.tolist())
print("tensorflow" in sys.modules)
# Keras' own model.save() looks TensorFlow up when it is installed; the best model is saved on JAX too.
saving = NbtrackCallback(display=False)
model.fit(x, y, batch_size=16, epochs=1, validation_split=0.25, callbacks=[saving], verbose=0)
print((saving.run.dir / "model-best.keras").is_file())
"""


def test_callback_works_on_the_jax_backend_without_tensorflow(python, python_env, tmp_path):
    """Keras 3 on JAX: the callback logs, keeps the best model, and never imports TensorFlow."""
    import subprocess

    env = {**python_env, "KERAS_BACKEND": "jax", "NBTRACK_STORE": str(tmp_path / "s"), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([python, "-c", ON_JAX], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "needs jax (pip install -e '.[dev]'):\n" + done.stderr[-3000:]
    state_line, tensorflow_line, saved_line = done.stdout.strip().splitlines()[-3:]
    assert state_line == "finished 6 [0.001, 0.001]"
    assert tensorflow_line == "False"  # a whole fit with the callback never loaded TensorFlow
    assert saved_line == "True"


def test_fit_span_is_recorded():
    x, y = tiny_data(64)
    callback = NbtrackCallback(display=False)
    tiny_model().fit(x, y, batch_size=16, epochs=2, callbacks=[callback], verbose=0)
    run = callback.run
    (fit,) = [e for e in run.store.events(run.id) if e.kind == "fit"]
    assert run.created <= fit.data["started"] < fit.data["ended"] <= run.ended
    assert fit.data["epochs"] == 2
    assert run.progress.span() == (fit.data["started"], fit.data["ended"])


def test_best_model_file_reproduces_the_best_epoch_predictions():
    x, y = tiny_data(128)
    probe = x[:16]
    predictions = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            predictions[epoch] = self.model.predict(probe, verbose=0)

    callback = NbtrackCallback(display=False)
    tiny_model(lr=0.05).fit(
        x, y, batch_size=16, epochs=4, validation_split=0.25, callbacks=[callback, Probe()], verbose=0
    )
    stored = nbtrack.get_run(callback.run.id)
    best_epoch = stored.summary["best_epoch"]
    reloaded = keras.saving.load_model(stored.file("model-best.keras"))
    np.testing.assert_allclose(
        reloaded.predict(probe, verbose=0), predictions[best_epoch], rtol=1e-5, atol=1e-6
    )
