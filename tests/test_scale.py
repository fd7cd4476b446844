"""10,000 metric keys and a million steps (issue #9, item 9): a bounded number of charts, a filter to find the
others, hidden charts that cost nothing, and a kernel whose memory stays bounded.

The slow test runs the million steps in a child Python process (its own peak RSS) with the live dashboard
on a recording comm, and prints what it measured.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from nbtrack.common.series import MinMaxDownsampler
from nbtrack.render.charts import (
    MAX_CHARTS,
    ChartSettings,
    Families,
    drawn_charts,
    group_families,
    left_out_note,
    select_charts,
)
from nbtrack.render.svg import charts_svg
from nbtrack.run.live import LiveHistory
from tests.widget_helpers import RecordingComm

KEYS = 10_000


def layer_keys(count: int = KEYS) -> list[str]:
    return [f"layer_{i}/grad_norm" for i in range(count)]


# -- pure functions -----------------------------------------------------------------------------------------------


def test_many_families_chart_a_bounded_number_standard_ones_first():
    keys = [
        *layer_keys(),
        "batch/loss",
        "loss",
        "val_loss",
        "val_accuracy",
        "accuracy",
        "learning_rate",
        "auc",
    ]
    groups = group_families(keys)
    selection = select_charts(groups)
    assert (
        len(selection.shown) == MAX_CHARTS and selection.total == KEYS + 4 and selection.left_out == KEYS - 20
    )
    # loss and accuracy, then the learning rate win places over per-layer metrics; chart order is kept
    assert selection.shown[:2] == ("loss", "accuracy") and selection.shown[-1] == "learning_rate"
    assert "auc" in selection.shown and selection.shown[2] == "auc"
    assert selection.status() == f"showing 24 of {KEYS + 4:,} charts — type in the filter to find others"
    small = select_charts(group_families(["loss", "val_loss", "mae"]))
    assert small.shown == ("loss", "mae") and small.status() == "" and small.left_out == 0


def test_the_filter_is_a_case_insensitive_substring_or_regex():
    groups = group_families([*layer_keys(), "loss", "val_loss"])
    one = select_charts(groups, "LAYER_1234/")
    assert one.shown == ("layer_1234/grad_norm",) and one.error is None
    assert one.status() == f"showing 1 of 1 charts matching 'LAYER_1234/' ({KEYS + 1:,} in all)"
    many = select_charts(groups, r"layer_\d{2}/")  # layer_10 .. layer_99
    assert many.matched == 90 and len(many.shown) == MAX_CHARTS
    assert select_charts(groups, "val_").shown == ("loss",)  # a family matches through its metrics too
    nothing = select_charts(groups, "no such metric")
    assert nothing.shown == () and nothing.status().startswith("no chart matches 'no such metric'")


def test_a_bad_regex_is_matched_as_text_with_a_message():
    groups = group_families(["odd(name", "loss"])
    selection = select_charts(groups, "odd(")
    assert selection.shown == ("odd(name",)
    assert selection.error is not None and "'odd(' is not a valid regular expression" in selection.error
    assert "matched as plain text" in selection.error


def test_families_grow_with_the_keys_they_are_given():
    keys = ["batch/loss", "layer_2/x", "loss", "val_loss", "lr", "accuracy", "layer_1/x", "val_accuracy"]
    families = Families()
    assert families.update(keys[:3]) is True
    assert families.update(keys[:3]) is False  # nothing new: no work
    families.update(keys)
    assert families.groups == group_families(keys)
    assert list(families.groups) == ["loss", "accuracy", "layer_1/x", "layer_2/x", "lr"]


def test_static_charts_draw_at_most_the_limit_and_say_what_was_left_out():
    live = LiveHistory()
    live.add([(step, float(step), {key: float(step) for key in layer_keys(100)}) for step in range(3)])
    charts, selection = drawn_charts(live, ChartSettings(), started=0.0)
    assert len(charts) == MAX_CHARTS and selection.left_out == 76
    note = left_out_note(selection)
    assert note == "24 of 100 charts drawn; 76 left out."
    svg = charts_svg(charts, note=note)
    assert ET.fromstring(svg) is not None and svg.count("class='chart'") == MAX_CHARTS and note in svg
    # handed more than its limit, the SVG itself draws the limit and counts the rest
    everything = [charts[0]] * 30
    svg = charts_svg(everything, note="<filter>")
    assert svg.count("class='chart'") == MAX_CHARTS and "&lt;filter&gt; 6 more charts not drawn." in svg
    _, filtered = drawn_charts(live, ChartSettings(), started=0.0, pattern="layer_9")
    assert left_out_note(filtered) == "11 of 100 charts drawn (filter 'layer_9' matches 11); 89 left out."


def test_a_lazy_history_reads_only_the_metrics_asked_for():
    run = nbtrack.init(project="p")
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1), **{key: float(step) for key in layer_keys(50)}})
    run.finish()
    read = []
    live = LiveHistory.from_store(run.store, run.id, lazy=True)
    original = live._read
    live._read = lambda key: read.append(key) or original(key)
    assert len(live.keys()) == 51 and live.count("layer_7/grad_norm") == 5 and read == []
    np.testing.assert_allclose(live.get("loss").value, 1.0 / np.arange(1, 6))
    assert read == ["loss"] and live.count("loss") == 5
    live.get("loss")
    assert read == ["loss"]  # read once


def test_thousands_of_short_series_cost_little_memory():
    samplers = [MinMaxDownsampler(2000) for _ in range(1000)]
    for sampler in samplers:
        for step in range(100):
            sampler.extend([step], [float(step)], [float(step)])
    held = sum(s._raw.nbytes for s in samplers)
    assert held <= 1000 * 3 * 8 * 256  # 100 points each: at most twice that many places of 24 bytes
    points = samplers[0].points()
    assert points.step.tolist() == list(range(100))  # exact until max_points


# -- the widgets, through a recording comm (tests/widget_helpers.py) ----------------------------------------------


def updates_since(start: int) -> list:
    return [m for m in RecordingComm.log[start:] if m.msg_type == "comm_msg"]


def set_from_browser(widget, value) -> None:
    """What a value typed in the browser does during fit (JupyterLab >= 4.4): set_state on a subshell thread."""
    thread = threading.Thread(target=lambda: widget.set_state({"value": value}))
    thread.start()
    thread.join()


def test_the_live_dashboard_charts_24_of_10k_and_the_filter_picks_others(notebook, monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")  # only the Charts pane sends
    run = nbtrack.init(project="p", name="wide")
    dashboard = run._dashboard_obj
    charts = dashboard.charts
    run.progress.training = True  # as during fit: control changes wait for the next refresh
    for step in range(20):
        run.log({"batch/loss": 1.0 / (step + 1), "batch/accuracy": step / 20})
    run.log({"loss": 0.5, "val_loss": 0.6, "epoch": 0.0, **{key: 1.0 for key in layer_keys()}}, step=19)
    run.refresh_views()
    assert len(charts.grid.figures) == MAX_CHARTS and len(charts.grid.widget.children) == MAX_CHARTS
    assert list(charts.grid.figures)[:2] == ["loss", "accuracy"]
    assert f"showing 24 of {KEYS + 2:,} charts — type in the filter to find others" in charts.status.value

    # Hidden charts cost nothing: new points for them send no message and draw nothing.
    # (How long these refreshes take is measured by benchmarks/bench_wide.py.)
    start = len(RecordingComm.log)
    for step in range(20, 40):
        run.log({key: 2.0 for key in layer_keys()[5000:]}, step=step)
        dashboard.refresh(set())
    assert sum(m.nbytes for m in updates_since(start)) == 0  # no line data: only the header's clock ticks
    assert len(updates_since(start)) <= 20
    assert len(charts.grid.figures) == MAX_CHARTS

    # The filter arrives on another thread during fit: only a flag; the next refresh shows the matches.
    set_from_browser(charts.filter, "LAYER_777")
    assert len(charts.grid.widget.children) == MAX_CHARTS  # nothing changed on the browser's thread
    run.refresh_views()
    shown = [f.title for f in charts.grid.widget.children]
    assert shown == ["layer_777/grad_norm", *[f"layer_777{i}/grad_norm" for i in range(10)]]
    assert "showing 11 of 11 charts matching &#x27;LAYER_777&#x27;" in charts.status.value

    set_from_browser(charts.filter, "layer_(")
    run.refresh_views()  # no exception: the message shows inline
    assert "not a valid regular expression" in charts.status.value and charts.grid.widget.children == ()
    set_from_browser(charts.filter, "")
    run.refresh_views()
    assert len(charts.grid.widget.children) == MAX_CHARTS
    assert len(charts.grid.figures) <= 3 * MAX_CHARTS  # figures hidden long ago are closed, not kept forever

    run.progress.training = False
    run.finish()
    bundle = notebook[0].bundles[-1]
    svg = bundle["image/svg+xml"]
    assert svg.count("class='chart'") == MAX_CHARTS and f"24 of {KEYS + 2:,} charts drawn" in svg
    assert f"24 of {KEYS + 2:,} charts drawn" in bundle["text/html"]
    assert len(svg) < 2_000_000


def test_after_training_the_filter_applies_at_once(notebook):
    run = nbtrack.init(project="p")
    run.log({"loss": 1.0, **{key: 1.0 for key in layer_keys(100)}})
    run.finish()
    charts = run._dashboard_obj.charts
    charts.filter.value = "layer_4"
    assert [f.title for f in charts.grid.widget.children] == ["layer_4/grad_norm"] + [
        f"layer_4{i}/grad_norm" for i in range(10)
    ]


def test_figures_hidden_longest_are_closed(notebook):
    run = nbtrack.init(project="p")
    run.log({key: 1.0 for key in layer_keys(1000)})
    run.finish()
    charts = run._dashboard_obj.charts
    first = charts.grid.figures["layer_0/grad_norm"]
    for hundred in range(10, 20):  # ten filters of 11 to 24 charts each
        charts.filter.value = f"layer_{hundred}"
        assert len(charts.grid.widget.children) >= 11
        assert len(charts.grid.figures) <= 3 * MAX_CHARTS
    assert "layer_0/grad_norm" not in charts.grid.figures and first.comm is None  # closed in the kernel too
    assert "layer_0/grad_norm" not in charts.grid.marks
    charts.filter.value = ""
    assert charts.grid.widget.children[0].title == "layer_0/grad_norm"  # drawn again when asked for
    np.testing.assert_allclose(charts.grid.marks["layer_0/grad_norm"].y, [1.0])


def test_a_stored_run_with_10k_keys_opens_with_the_bounded_grid(notebook):
    run = nbtrack.init(project="p", name="stored-wide")
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1), "val_loss": 2.0, **{key: float(step) for key in layer_keys()}})
    run.finish()
    t0 = time.perf_counter()
    reopened = nbtrack.show(run.id)
    opened = time.perf_counter() - t0
    charts = reopened.charts
    assert len(charts.grid.figures) == MAX_CHARTS and list(charts.grid.figures)[0] == "loss"
    assert charts.live.count("layer_9999/grad_norm") == 3
    read = [key for key, sampler in charts.live._series.items() if sampler is not None]
    assert len(read) <= 3 * MAX_CHARTS  # only what is drawn was read from the store
    charts.filter.value = "layer_9999"
    assert [f.title for f in charts.grid.widget.children] == ["layer_9999/grad_norm"]
    np.testing.assert_allclose(charts.grid.marks["layer_9999/grad_norm"].y, [0.0, 1.0, 2.0])
    print(f"\nstored run with {KEYS:,} keys opened in {opened:.2f} s")


def test_the_run_report_draws_a_bounded_number_and_lists_the_rest(monkeypatch):
    from nbtrack.reports.sections import run_section

    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")  # no system charts beside the metric charts
    run = nbtrack.init(project="p")
    hostile = "<script>alert(1)</script>"
    run.log({"loss": 1.0, hostile: 2.0, **{key: 1.0 for key in layer_keys()}})
    run.finish()
    t0 = time.perf_counter()
    section = run_section(nbtrack.get_run(run.id))
    took = time.perf_counter() - t0
    assert section.count("class='chart'") == MAX_CHARTS
    assert f"24 of {KEYS + 2:,} charts drawn; {KEYS + 2 - 24:,} left out." in section
    assert f"<summary>{KEYS + 2 - 24:,} metrics not charted</summary>" in section
    assert "<script>" not in section
    assert "and " in section and " more</p>" in section  # the list itself is bounded
    assert (
        f"{KEYS + 2 - 100:,} more summary values" in section
        and "more are in the run's summary.json" in section
    )
    assert len(section) < 400_000, len(section)
    print(f"\nrun report section with {KEYS:,} keys: {len(section):,} characters in {took:.2f} s")


def test_the_compare_widget_charts_a_bounded_number_and_filters(notebook):
    from nbtrack.ui.compare import compare

    runs = []
    for seed in range(2):
        run = nbtrack.init(project="p", name=f"r{seed}")
        run.log({"loss": 1.0 + seed, **{key: float(seed) for key in layer_keys(1000)}})
        run.finish()
        runs.append(run)
    widget = compare([r.id for r in runs])
    widget.metric_picker.value = layer_keys(40)
    assert len(widget.grid.widget.children) == MAX_CHARTS
    assert "showing 24 of 40 charts" in widget.chart_status.value
    assert widget.snapshot_html().count("class='chart'") == MAX_CHARTS
    widget.chart_filter.value = "LAYER_99"
    titles = [f.title for f in widget.grid.widget.children]
    assert titles == ["layer_99/grad_norm"] + [f"layer_99{i}/grad_norm" for i in range(10)]
    assert "showing 11 of 11 charts matching" in widget.chart_status.value
    widget.chart_filter.value = "("
    assert "not a valid regular expression" in widget.chart_status.value
    assert widget.grid.widget.children == ()


# -- a million steps in a child process ---------------------------------------------------------------------------

STEPS = 1_000_000
EPOCH = 50_000  # steps per "epoch": epoch metrics and the 10,000 per-layer metrics are logged at its end


@pytest.mark.slow
def test_a_million_steps_with_10k_keys_keep_the_kernel_and_widget_bounded(tmp_path, python, python_env):
    out = tmp_path / "scale.json"
    env = {**python_env, "NBTRACK_STORE": str(tmp_path / "store"), "NBTRACK_SYSTEM_INTERVAL": "0"}
    started = time.monotonic()
    done = subprocess.run(
        [python, __file__, str(out)], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-4000:]
    m = json.loads(out.read_text())
    print(f"\n{json.dumps(m, indent=1)}\nwall {time.monotonic() - started:.1f} s")

    # Memory: bounded once every key exists (they all appear at the first epoch's end).
    assert m["rss_growth_mb"] < 100 and m["peak_growth_mb"] < 100, m
    assert m["peak_rss_mb"] < 1000, m
    # The widget: each streaming refresh sends few, small messages; refreshes stay fast with 10k keys.
    assert m["stream_bytes_max"] <= 64 * 1024, m
    assert m["stream_messages_max"] <= 12, m
    # Rates are per second of the child's virtual clock (10,000 steps a second), not of this machine's speed;
    # how long a refresh takes is measured by benchmarks/bench_wide.py.
    assert m["messages_per_second"] <= 25, m
    # it kept refreshing while steps ran (between every 2 s and 4 a second)
    assert m["virtual_seconds"] / 2 <= m["refreshes"] <= m["virtual_seconds"] * 4 + 8, m
    # A filter change shows within one refresh.
    assert m["filter_shown"] == ["layer_123/grad_norm", *[f"layer_123{i}/grad_norm" for i in range(10)]], m
    assert m["filter_messages"] <= 400 and m["filter_bytes"] <= 2_000_000, m
    assert m["bad_regex_status"] and m["bad_regex_shown"] == 0, m
    assert m["unfiltered_shown"] == MAX_CHARTS, m
    # The run reads back whole.
    assert m["keys"] == KEYS + 7 and m["history_ok"], m
    assert m["stored_figures"] == MAX_CHARTS and m["report_charts"] == MAX_CHARTS, m


def _child(out: str) -> None:
    """The million steps, in this process: run with the live dashboard on a recording comm."""
    import resource

    import comm
    from comm.base_comm import BaseComm

    import nbtrack.ui
    import nbtrack.ui.dashboard as dashboard_module

    sent: list[int] = []  # bytes of each comm message: JSON plus binary buffers

    class Recording(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):  # type: ignore[no-untyped-def]
            size = len(json.dumps(data or {}, default=str))
            sent.append(size + sum(memoryview(b).nbytes for b in buffers or []))

    class Handle:
        def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            pass

    import IPython.display

    comm.create_comm = lambda **kwargs: Recording(**kwargs)
    dashboard_module.in_notebook = nbtrack.ui.in_notebook = lambda: True
    IPython.display.display = lambda *args, **kwargs: Handle()

    def peak_mb() -> float:
        # VmHWM: this process's own peak. ru_maxrss would not do: Linux carries it across exec, so a child
        # forked from a big pytest process reports the parent's size at the fork.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def rss_mb() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    import nbtrack.run as run_module
    from tests.clock import VirtualClock

    clock = (
        VirtualClock()
    )  # the refresh throttle's clock: 10,000 steps a second, whatever the machine's speed
    run_module.time = clock
    run = nbtrack.init(project="scale", name="wide-and-long")
    dashboard = run._dashboard_obj
    charts = dashboard.charts
    refreshes: list[tuple[float, int, int]] = []  # seconds, messages, bytes of each dashboard refresh
    refresh = dashboard.refresh

    def timed_refresh(changed):  # type: ignore[no-untyped-def]
        first = len(sent)
        t0 = time.perf_counter()
        refresh(changed)
        refreshes.append((time.perf_counter() - t0, len(sent) - first, sum(sent[first:])))

    dashboard.refresh = timed_refresh
    ingested: list[
        tuple[float, int]
    ] = []  # seconds, log calls of each LiveHistory.add (the rest of a refresh)
    add = run.live.add

    def timed_add(points):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        changed = add(points)
        ingested.append((time.perf_counter() - t0, len(points)))
        return changed

    run.live.add = timed_add
    progress = run.progress
    progress.epochs, progress.steps_per_epoch, progress.training = STEPS // EPOCH, EPOCH, True
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.01, size=EPOCH)
    m: dict = {}
    filters = {600_000: "LAYER_123", 700_000: "layer_(", 800_000: ""}
    stream: list[tuple[float, int, int]] = []
    started = time.monotonic()
    for step in range(STEPS):
        clock.now = step / 10_000
        loss = 1.0 / (1.0 + step / 10_000) + noise[step % EPOCH]
        run.log({"batch/loss": 50.0 if step == 777_777 else loss, "batch/accuracy": 1.0 - loss / 2})
        if step % EPOCH == EPOCH - 1:
            epoch = step // EPOCH
            run.log(
                {
                    "loss": loss,
                    "accuracy": 1 - loss / 2,
                    "val_loss": loss * 1.1,
                    "val_accuracy": 0.5,
                    "epoch": epoch,
                },
                step=step,
            )
            run.log({key: float(epoch + i) for i, key in enumerate(layer_keys())}, step=step)
            progress.epoch, progress.step_in_epoch = epoch + 1, 0
            # No flush here: this loop never lets go of the GIL (a real step spends most of its time in compiled
            # code without it), so the writer's backpressure (writer.BACKLOG_CALLS) is what bounds the queue.
        if step + 1 == 200_000:
            m["rss_200k_mb"], m["peak_200k_mb"] = rss_mb(), peak_mb()
            stream_from = len(refreshes)
        if step in filters:
            before = len(refreshes)
            stream.extend(refreshes[stream_from:before])
            set_from_browser(charts.filter, filters[step])
            run.refresh_views()  # the next refresh (what `log` calls when its time comes)
            shown = [f.title for f in charts.grid.widget.children]
            if filters[step] == "LAYER_123":
                m["filter_shown"] = shown
                m["filter_ms"] = refreshes[before][0] * 1000
                m["filter_messages"], m["filter_bytes"] = refreshes[before][1], refreshes[before][2]
            elif filters[step] == "layer_(":
                m["bad_regex_status"] = "not a valid regular expression" in charts.status.value
                m["bad_regex_shown"] = len(shown)
            else:
                m["unfiltered_shown"] = len(shown)
            stream_from = (
                len(refreshes) + 1
            )  # the refresh after a filter change may still send the new charts
    m["loop_seconds"] = time.monotonic() - started
    m["virtual_seconds"] = clock.now
    m["rss_1m_mb"], m["peak_1m_mb"] = rss_mb(), peak_mb()
    stream.extend(refreshes[stream_from:])
    progress.training = False
    t0 = time.perf_counter()
    run.finish()
    m["finish_seconds"] = time.perf_counter() - t0
    m["peak_rss_mb"] = peak_mb()
    m["peak_growth_mb"] = m["peak_1m_mb"] - m["peak_200k_mb"]
    m["rss_growth_mb"] = m["rss_1m_mb"] - m["rss_200k_mb"]
    m["refreshes"] = len(refreshes)
    seconds = [r[0] for r in refreshes]
    m["refresh_ms_median"] = statistics.median(seconds) * 1000
    m["refresh_ms_p95"] = float(np.percentile(seconds, 95)) * 1000
    m["refresh_ms_max"] = max(seconds) * 1000
    m["stream_messages_max"] = max(r[1] for r in stream)
    m["stream_bytes_max"] = max(r[2] for r in stream)
    m["stream_bytes_median"] = statistics.median(r[2] for r in stream)
    # streaming refreshes (the three filter changes are user actions: their bursts go out at once, apart)
    m["messages_per_second"] = sum(r[1] for r in stream) / m["virtual_seconds"]
    m["messages_per_second_with_filter_changes"] = sum(r[1] for r in refreshes) / m["virtual_seconds"]
    m["messages_total"] = len(sent)
    m["ingest_ms_median"] = statistics.median(i[0] for i in ingested) * 1000
    m["ingest_us_per_log_call"] = sum(i[0] for i in ingested) / sum(i[1] for i in ingested) * 1e6

    stored = nbtrack.get_run(run.id)
    t0 = time.perf_counter()
    keys = stored.metrics()
    m["keys_seconds"] = time.perf_counter() - t0
    m["keys"] = len(keys)
    t0 = time.perf_counter()
    batch = stored.history("batch/loss", samples=2000)
    epochs = stored.history("loss")
    m["history_seconds"] = time.perf_counter() - t0
    m["history_ok"] = bool(
        len(batch) <= 2000
        and batch.step[0] == 0
        and batch.step[-1] == STEPS - 1
        and batch.value.max() == 50.0
        and len(epochs) == STEPS // EPOCH
        and keys["batch/loss"].count == STEPS
    )
    from nbtrack.reports.sections import run_section
    from nbtrack.ui.stored import stored_dashboard

    first = len(sent)
    t0 = time.perf_counter()
    reopened = stored_dashboard(stored)
    m["stored_open_seconds"] = time.perf_counter() - t0
    m["stored_messages"] = len(sent) - first
    m["stored_figures"] = len(reopened.charts.grid.figures)
    t0 = time.perf_counter()
    section = run_section(stored)
    m["report_seconds"] = time.perf_counter() - t0
    m["report_chars"] = len(section)
    m["report_charts"] = section.count("class='chart'")
    Path(out).write_text(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in m.items()}))


if __name__ == "__main__":
    _child(sys.argv[1])


# -- in a real JupyterLab: typing in the filter while the cell runs ----------------------------------------------

WIDE_LOOP = """%load_ext nbtrack
import time, nbtrack
run = nbtrack.init(project="wide")
run.progress.training = True  # as during fit: what the browser sends waits for the next refresh
run.log({f"layer_{i}/grad_norm": 1.0 for i in range(10_000)})
for step in range(6000):
    run.log({"batch/loss": 1.0 / (step + 1)})
    time.sleep(0.01)
run.progress.training = False
run.finish()
print("done")"""


# titles of the figures on screen (the System tab's figures are in the page too, at zero size)
SHOWN_FIGURES = """cell => [...cell.querySelectorAll('.bqplot.figure')]
    .filter(e => e.getBoundingClientRect().width > 0)
    .map(e => e.querySelector('.mainheading').textContent)"""


@pytest.mark.slow
def test_typing_in_the_filter_during_a_long_cell_redraws_the_grid_in_jupyterlab(tmp_path):
    from tests.test_browser import lab_server, launch_chromium, open_notebook, sync_playwright

    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": WIDE_LOOP, "outputs": [], "execution_count": None}
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "wide.ipynb").write_text(json.dumps(notebook))
    with lab_server(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_notebook(page, url, "wide.ipynb")
            cell = page.locator(".jp-Notebook .jp-CodeCell").nth(0)
            cell.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            cell.locator("text=type in the filter to find others").wait_for(timeout=120_000)
            page.wait_for_function(
                f"cell => ({SHOWN_FIGURES})(cell).length === 24", arg=cell.element_handle(), timeout=60_000
            )
            box = cell.locator("input[placeholder^='Filter charts']")
            box.fill("LAYER_777")
            box.press("Enter")
            cell.locator("text=showing 11 of 11 charts matching").wait_for(timeout=30_000)
            page.wait_for_function(
                f"cell => ({SHOWN_FIGURES})(cell).length === 11", arg=cell.element_handle(), timeout=30_000
            )
            titles = cell.evaluate(SHOWN_FIGURES)
            assert sorted(titles) == sorted(
                ["layer_777/grad_norm", *[f"layer_777{i}/grad_norm" for i in range(10)]]
            )
            box.fill("layer_(")
            box.press("Enter")
            cell.locator("text=is not a valid regular expression").wait_for(timeout=30_000)
            assert "*" in cell.locator(".jp-InputPrompt").inner_text()  # all while the cell still runs
            page.screenshot(path=str(tmp_path / "filter.png"))
        finally:
            browser.close()
