"""Log capture: terminal-like line collapsing, hostile text, and the tee around stdout/stderr."""

from __future__ import annotations

import sys

import pytest

from nbtrack.capture.logs import MAX_LINE, LineCollapser, OutputCapture, RunLog, clean


def feed_all(chunks):
    collapser = LineCollapser()
    lines = []
    for chunk in chunks:
        lines += collapser.feed(chunk)
    return lines + collapser.flush()


def test_plain_lines_across_writes():
    assert feed_all(["hello ", "world\nsecond", " line\n", "tail"]) == ["hello world", "second line", "tail"]


def test_carriage_returns_keep_the_final_state_of_a_progress_bar():
    chunks = [f"\r{i}/100 [{'=' * (i // 10):<10}] - loss: 0.{i:02d}" for i in range(0, 101, 10)] + [
        "\n",
        "done\n",
    ]
    assert feed_all(chunks) == ["100/100 [==========] - loss: 0.100", "done"]


def test_shorter_overwrite_keeps_the_rest_like_a_terminal():
    assert feed_all(["abcdef\rXY\n"]) == ["XYcdef"]


def test_backspaces_and_ansi_colours():
    assert feed_all(["abc\b\bZ\n"]) == ["aZc"]
    assert feed_all(["\x1b[1m\x1b[31mred\x1b[0m text\x1b]0;title\x07\n"]) == ["red text"]


def test_hostile_text_is_kept_as_text():
    lines = feed_all(["<script>alert(1)</script>\x00\x07 & <b>\n", "x" * (MAX_LINE + 500) + "\n"])
    assert lines[0] == "<script>alert(1)</script> & <b>"  # escaping is the view's job; NUL/BEL are gone
    assert len(lines[1]) < MAX_LINE + 100 and lines[1].endswith(f"[line cut at {MAX_LINE:,} characters]")
    assert clean("a\x00b\x1b[2Kc\td") == "abc\td"


def test_run_log_keeps_recent_and_queues_everything():
    log = RunLog(keep=3)
    for i in range(10):
        log.write("stdout", f"line {i}\n")
    log.write("stderr", "warning: partial")
    assert list(log.recent) == ["line 7", "line 8", "line 9"]
    assert log.drain() == [f"line {i}" for i in range(10)]
    log.close()
    assert log.drain() == ["warning: partial"] and log.count == 11


def test_capture_tees_and_restores(capsys):
    log = RunLog()
    original = sys.stdout, sys.stderr
    capture = OutputCapture(log)
    assert sys.stdout is not original[0]
    print("to the cell and the log")
    print("an error", file=sys.stderr)
    import warnings

    with warnings.catch_warnings():
        # As outside pytest (which records warnings instead): the standard library writes them to stderr.
        warnings.simplefilter("always")
        warnings._showwarnmsg_impl = lambda msg: sys.stderr.write(warnings._formatwarnmsg(msg))
        warnings.warn("careful", UserWarning, stacklevel=1)
    capture.stop()
    print("after")
    out, err = capsys.readouterr()
    assert "to the cell and the log" in out and "after" in out and "an error" in err
    recent = list(log.recent)
    assert "to the cell and the log" in recent and "an error" in recent
    assert any("UserWarning: careful" in line for line in recent)
    assert "after" not in recent
    assert (sys.stdout, sys.stderr) == original


def test_hundred_thousand_lines_keep_memory_bounded():
    log = RunLog()
    for i in range(100_000):
        log.write("stdout", f"epoch {i} - loss: 0.{i % 1000:03d} - accuracy: 0.9\n")
    assert len(log.recent) == 5_000 and log.count == 100_000
    assert len(log.drain()) == 100_000 and not log.pending  # drained to output.log by the writer


def test_a_run_stores_what_it_prints_in_output_log(capsys):
    import nbtrack

    run = nbtrack.init(project="p")
    print("hello from the run")
    print("<script>alert(1)</script>", file=sys.stderr)
    run.finish()
    print("after the run")
    text = (run.dir / "output.log").read_text()
    assert "hello from the run\n" in text and "<script>alert(1)</script>" in text
    assert "after the run" not in text
    assert "output.log" in {f.name for f in run.store.list_files(run.id)}
    assert "hello from the run" in capsys.readouterr().out  # still printed as usual


def test_keras_progress_bar_and_traceback_are_captured_cleanly():
    from nbtrack.keras import NbtrackCallback

    from .keras_helpers import keras, tiny_data, tiny_model

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("exploded at epoch 2")

    callback = NbtrackCallback(display=False)
    x, y = tiny_data(64)
    with pytest.raises(RuntimeError):
        tiny_model().fit(x, y, batch_size=8, epochs=3, callbacks=[callback, Boom()], verbose=1)
    text = (callback.run.dir / "output.log").read_text()
    assert "\r" not in text and "\x1b" not in text and "\b" not in text
    lines = text.splitlines()
    assert "Epoch 1/3" in lines and "Epoch 2/3" in lines
    bars = [line for line in lines if "/8 " in line]
    assert bars[0].startswith("8/8") and "loss:" in bars[0]  # epoch 1: only the bar's final state
    assert len(bars) == 2  # epoch 2 broke off: its bar as last drawn, once
    assert "RuntimeError: exploded at epoch 2" in lines and any(
        line.startswith("Traceback") for line in lines
    )


def test_the_exception_that_ends_a_with_block_is_in_output_log():
    import nbtrack

    with pytest.raises(ZeroDivisionError), nbtrack.init(project="p") as run:
        raise ZeroDivisionError("no more data")
    lines = (run.dir / "output.log").read_text().splitlines()
    assert lines[0].startswith("Traceback") and lines[-1] == "ZeroDivisionError: no more data"
