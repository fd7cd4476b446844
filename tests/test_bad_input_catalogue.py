"""The bad-input catalogue (#9): odd and hostile input a user can hand nbtrack, one table per kind.

Every row is a test. An input either gets a clear error that names it (and the call stores nothing, while
what was logged before stays), or it is kept faithfully (read back exactly) and rendered escaped on every
surface: the live widget, its SVG snapshot, the HTML report and the CLI. After each row the SQLite file
passes ``PRAGMA integrity_check`` and the run goes on logging.

Rows about the same inputs in more depth live beside the code they test: test_bad_input.py (log/init
arguments, store faults), test_roundtrip.py (hypothesis: log -> store -> read), test_report.py (hostile
runs in reports, in Chromium), test_query.py (``where`` syntax and injection), test_sweep_config.py (every
sweep config field).
"""

from __future__ import annotations

import math
import re
import sqlite3
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from nbtrack.store.query import QueryError
from nbtrack.sweeps.config import SweepConfigError, parse_sweep_config

SCRIPT = "<script>window.pwned=1</script>"
HOSTILE = f"h{SCRIPT}</svg><img src=x onerror=alert(1)>\x1b[31mred\x00nul\u202ertl\x9b2J\x07"
# What must never reach a terminal, and what must never appear unescaped in HTML or SVG.
TERMINAL_CONTROLS = "\x1b\x07\x9b\u202e\x00"
RAW_MARKUP = ("<script", "<img", "</svg><img")


def integrity(store_dir) -> str:
    with sqlite3.connect(store_dir / "nbtrack.db") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


@pytest.fixture
def run(store_dir):
    run = nbtrack.init(project="catalogue")
    run.log({"before": 1.0})
    yield run
    run.log({"after": 2.0})  # the run still logs after every row
    run.finish()
    assert integrity(store_dir) == "ok"
    stored = nbtrack.get_run(run.id)
    assert stored.history("before").value.tolist() == [1.0]  # what was logged before is never lost
    assert stored.history("after").value.tolist() == [2.0]


def tensor(values):
    import tensorflow as tf

    return tf.constant(values, dtype=tf.float32)


def jax_array(values):
    import jax.numpy as jnp

    return jnp.asarray(values, dtype=jnp.float32)


def made(value):
    """A row's value; tensors are made when the test runs (a lambda in the table), not at import."""
    return value() if callable(value) and not isinstance(value, type) else value


# -- 1. metric values: kept bit for bit, or refused naming the key ---------------------------------------
KEPT_VALUES = [
    ("nan", float("nan"), float("nan")),
    ("+inf", math.inf, math.inf),
    ("-inf", -math.inf, -math.inf),
    ("huge float", 1.7976931348623157e308, 1.7976931348623157e308),
    ("tiny subnormal", 5e-324, 5e-324),
    ("negative zero", -0.0, -0.0),
    ("int64 max + 1", 2**63, float(2**63)),
    ("int64 min - 1", -(2**63) - 1, float(-(2**63) - 1)),
    ("2**1000 (fits a float)", 2**1000, float(2**1000)),
    ("numpy float16", np.float16(0.1), float(np.float16(0.1))),
    ("numpy int8", np.int8(-128), -128.0),
    ("numpy uint64 max", np.uint64(2**64 - 1), float(np.uint64(2**64 - 1))),
    ("bool", True, 1.0),
    ("0-d array", np.array(2.5), 2.5),
    ("one-element array", np.array([[3.5]]), 3.5),
    ("TF scalar tensor", lambda: tensor(0.25), 0.25),
    ("JAX scalar", lambda: jax_array(0.75), 0.75),
]


@pytest.mark.parametrize(
    ("value", "expected"), [row[1:] for row in KEPT_VALUES], ids=[r[0] for r in KEPT_VALUES]
)
def test_metric_value_is_kept_bit_for_bit(run, value, expected):
    run.log({"v": made(value)})
    run.flush()
    (stored,) = run.store.history(run.id, "v").value.tolist()
    assert bits(stored) == bits(expected) or (math.isnan(stored) and math.isnan(expected))


REFUSED_VALUES = [
    ("integer past float range", 10**400, ValueError, r"'v' is an integer too large for a 64-bit float"),
    ("text", "0.5", TypeError, r"'v' is text"),
    ("bytes", b"0.5", TypeError, r"'v' is text"),
    ("None", None, TypeError, r"'v' is None; log a number, or float\('nan'\)"),
    ("list", [1.0, 2.0], TypeError, r"'v' is a list, which is not a number"),
    ("numpy array", np.zeros(3), TypeError, r"'v' is an array of shape \(3,\)"),
    ("TF tensor", lambda: tensor([1.0, 2.0, 3.0]), TypeError, r"'v' is an array of shape \(3,\)"),
    ("JAX array", lambda: jax_array([1.0, 2.0, 3.0]), TypeError, r"'v' is an array of shape \(3,\)"),
    ("complex", 1 + 2j, TypeError, r"'v' is a complex, which is not a number"),
    ("object", object(), TypeError, r"'v' is an object, which is not a number"),
]


@pytest.mark.parametrize(
    ("value", "error", "message"), [r[1:] for r in REFUSED_VALUES], ids=[r[0] for r in REFUSED_VALUES]
)
def test_metric_value_is_refused_naming_the_key_and_nothing_of_the_call_is_stored(run, value, error, message):
    with pytest.raises(error, match=message):
        run.log({"ok": 1.0, "v": made(value)})
    run.flush()
    assert "ok" not in run.store.metric_stats(run.id)  # one call is all or nothing


# -- 2. metric keys ---------------------------------------------------------------------------------------
KEPT_KEYS = [
    ("slash", "train/loss"),
    ("dots", "val.top.5"),
    ("spaces", "learning rate"),
    ("unicode", "ünïcødé/损失"),
    ("emoji", "🔥 loss"),
    ("right-to-left", "מפתח\u202eloss"),
    ("10k characters", "k" * 10_000),
    ("hostile", f"m{HOSTILE}"),
]


@pytest.mark.parametrize("key", [r[1] for r in KEPT_KEYS], ids=[r[0] for r in KEPT_KEYS])
def test_metric_key_is_kept_exactly(store_dir, key):
    run = nbtrack.init(project="catalogue")
    run.log({key: 0.5})
    run.log({key: 0.25})
    run.finish()
    assert integrity(store_dir) == "ok"
    stored = nbtrack.get_run(run.id)
    assert stored.history(key).value.tolist() == [0.5, 0.25]
    assert key in stored.metrics() and stored.summary[key] == 0.25


REFUSED_KEYS = [
    ("empty", "", ValueError, "must not be empty"),
    ("blank", " \t", ValueError, "must not be empty"),
    ("int", 7, TypeError, "metric names must be strings, got int 7"),
    ("None", None, TypeError, "metric names must be strings, got NoneType None"),
]


@pytest.mark.parametrize(
    ("key", "error", "message"), [r[1:] for r in REFUSED_KEYS], ids=[r[0] for r in REFUSED_KEYS]
)
def test_metric_key_is_refused_clearly(run, key, error, message):
    with pytest.raises(error, match=message):
        run.log({key: 1.0})


def test_an_error_about_a_10k_character_key_quotes_its_start_and_length(run):
    with pytest.raises(TypeError) as caught:
        run.log({"x" * 10_000: "text"})
    assert "(10,000 characters)" in str(caught.value) and len(str(caught.value)) < 400


# -- 3. config values -------------------------------------------------------------------------------------
CONFIG = [
    ("1 MB string", "x" * 1_000_000, "x" * 1_000_000),
    ("10k-character key", {"k" * 10_000: 1}, {"k" * 10_000: 1}),
    ("list of mixed", [1, "a", None, True], [1, "a", None, True]),
    ("nested with dots and slashes", {"a.b": {"c/d": {"e f": 1}}}, {"a.b": {"c/d": {"e f": 1}}}),
    ("numpy array", np.arange(3, dtype=np.int32), [0, 1, 2]),
    ("TF tensor", lambda: tensor([1.0, 2.0]), [1.0, 2.0]),
    ("JAX array", lambda: jax_array([1.0, 2.0]), [1.0, 2.0]),
    ("negative zero", -0.0, -0.0),
    ("int past int64", 2**70, 2**70),
    ("NaN and inf", [float("nan"), math.inf], [float("nan"), math.inf]),
    ("hostile text", HOSTILE, HOSTILE),
    ("an object", object, repr(object)),
]


@pytest.mark.parametrize(("value", "expected"), [r[1:] for r in CONFIG], ids=[r[0] for r in CONFIG])
def test_config_value_is_kept(store_dir, value, expected):
    run = nbtrack.init(project="catalogue", config={"value": made(value)})
    run.log({"loss": 1.0})
    run.finish()
    assert integrity(store_dir) == "ok"
    stored = nbtrack.get_run(run.id).config["value"]
    assert repr(stored) == repr(expected)  # repr tells -0.0 from 0.0 and NaN from None
    if isinstance(expected, float):
        assert bits(stored) == bits(expected)


def test_a_1mb_config_value_is_kept_whole_and_shown_cut(store_dir, capsys):
    from nbtrack.cli import main

    big = "y" * 1_000_000
    run = nbtrack.init(project="catalogue", name="big", config={"big": big, "k" * 10_000: 1})
    run.log({"loss": 1.0})
    run.finish()
    capsys.readouterr()
    assert nbtrack.get_run(run.id).config["big"] == big
    assert main(["show", run.id]) == 0
    shown = capsys.readouterr().out
    assert "(1,000,000 chars)" in shown and "(10,000 chars)" in shown
    assert len(shown) < 20_000 and max(map(len, shown.splitlines())) < 1_200
    assert main(["ls", "--columns", "config.big"]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) < 300
    html = nbtrack.report(run=run.id, output=store_dir / "big.html").read_text()
    assert "(1,000,000 chars)" in html and len(html.encode()) < 200_000
    with open(store_dir / "files" / run.id / "config.json", encoding="utf-8") as kept:
        assert big in kept.read()  # the run's files keep the whole value


# -- 4. hostile strings on every surface ------------------------------------------------------------------
@pytest.fixture
def hostile_run(store_dir, tmp_path):
    """A finished run whose every user string is hostile: name, project, tags, notes, config, metric key,
    summary, a log line and a file name."""
    run = nbtrack.init(
        project=f"p{HOSTILE}",
        name=f"n{HOSTILE}",
        tags=[f"t{HOSTILE}"],
        notes=f"notes {HOSTILE}",
        config={f"k{HOSTILE}": f"v{HOSTILE}"},
    )
    print(f"log line {HOSTILE}")
    for step in range(5):
        run.log({f"m{HOSTILE}": 1.0 / (step + 1), "loss": 0.5})
    run.summary[f"s{HOSTILE}"] = f"sv{HOSTILE}"
    note = tmp_path / "note.txt"
    note.write_text(HOSTILE)
    run.save(note, name="<script>x</script>.txt")
    return run


def shown_dashboard(run):
    """The run's live dashboard as a cell shows it, every chart drawn."""
    from nbtrack.ui.dashboard import display

    dashboard = display(run)
    dashboard.refresh(set(run.live.keys()))
    return dashboard


def assert_inert_markup(text: str) -> None:
    lowered = text.lower()
    for raw in RAW_MARKUP:
        assert raw not in lowered, raw
    assert not re.search(r"<[^>]*\sonerror\s*=", lowered)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text  # shown as text, not dropped


def test_hostile_strings_in_the_live_widget_are_text(notebook, hostile_run):
    dashboard = shown_dashboard(hostile_run)
    html_values = []
    for widget in dashboard._all_widgets():
        for name in widget.keys:
            value = getattr(widget, name, None)
            if isinstance(value, str) and type(widget).__name__ in ("HTML", "HTMLMath", "Label"):
                html_values.append(value)
    joined = "\n".join(html_values)
    assert "nh&lt;script&gt;" in joined  # the header names the run, escaped
    for value in html_values:
        lowered = value.lower()
        assert all(raw not in lowered for raw in RAW_MARKUP), value[:200]
    titles = [figure.title for figure in dashboard.charts.grid.figures.values()]
    assert f"m{HOSTILE}" in titles  # bqplot draws titles and legends as SVG text nodes, never as markup
    hostile_run.finish()


def test_hostile_strings_in_the_svg_snapshot_leave_valid_xml(notebook, hostile_run):
    dashboard = shown_dashboard(hostile_run)
    svg = dashboard.snapshot_svg()
    root = ET.fromstring(svg)  # well-formed: no </svg> broke out, no character XML forbids left in
    assert root.tag.endswith("svg")
    assert not any(c in svg for c in "\x00\x1b\x07")
    assert "<script" not in svg.lower()
    assert any("window.pwned=1" in "".join(t.itertext()) for t in root.iter() if t.tag.endswith("text"))
    assert_inert_markup(dashboard.snapshot_html())
    hostile_run.finish()


def test_hostile_strings_in_the_report_are_text(store_dir, hostile_run):
    hostile_run.finish()
    html = nbtrack.report(run=hostile_run.id, output=store_dir / "r.html").read_text()
    assert_inert_markup(html)
    assert "\x00" not in html and "\x1b" not in html


@pytest.mark.parametrize(
    "argv", [["ls"], ["show", "{id}"], ["diff", "{id}", "{id}", "--all"], ["ls", "--json"]]
)
def test_hostile_strings_reach_the_terminal_as_visible_escapes(hostile_run, capsys, argv):
    from nbtrack.cli import main

    hostile_run.finish()
    capsys.readouterr()
    assert main([a.replace("{id}", hostile_run.id) for a in argv]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in TERMINAL_CONTROLS), repr(out[:300])
    if argv[0] == "show":  # long enough to reach the escapes (tables cut names at 40-80 characters)
        assert "\\u001b[31mred\\u0000nul\\u202ertl\\u009b2J\\u0007" in out  # shown, not obeyed


# -- 5. file and artifact names ---------------------------------------------------------------------------
NAMES = [
    ("parent folder", "../escape.txt", "would leave the run's folder"),
    ("absolute", "/tmp/nbtrack-escape-test.txt", "would leave the run's folder"),
    ("climbing back out", "a/../../b.txt", "would leave the run's folder"),
    ("backslashes", "..\\..\\b.txt", "would leave the run's folder"),
    ("NUL", "a\x00b.txt", "holds a NUL character"),
    ("blank", "  ", "is empty or holds a NUL"),
    ("blank folder", "a/ /b.txt", "would leave the run's folder"),
]


@pytest.mark.parametrize(("name", "message"), [r[1:] for r in NAMES], ids=[r[0] for r in NAMES])
@pytest.mark.parametrize("method", ["save", "log_artifact"])
def test_file_names_that_escape_the_run_folder_are_refused(run, tmp_path, method, name, message):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    files = run.dir.parent  # every run's folder
    before = sorted(files.rglob("*"))
    with pytest.raises(ValueError, match=message):
        getattr(run, method)(source, name=name)
    assert sorted(files.rglob("*")) == before
    assert not (files.parent / "escape.txt").exists() and not Path("/tmp/nbtrack-escape-test.txt").exists()


def test_a_symlink_in_the_run_folder_cannot_carry_a_file_out(run, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run.dir.mkdir(parents=True, exist_ok=True)
    (run.dir / "link").symlink_to(outside, target_is_directory=True)
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    with pytest.raises(ValueError, match="resolves outside the run's folder"):
        run.save(source, name="link/weights.bin")
    assert not any(outside.iterdir())


# -- 6. `where` injection ---------------------------------------------------------------------------------
def _two_runs():
    for name, lr in (("a", 0.1), ("b", 0.01)):
        with nbtrack.init(project="inj", name=name, config={"lr": lr}) as r:
            r.log({"loss": lr})


INJECTIONS = [
    ("statement after", "config.lr > 0; DROP TABLE runs", QueryError, r"(?i)expected .* at position \d+"),
    ("comment out the rest", "config.lr > 0 --", QueryError, r"(?i)expected .* at position \d+"),
    ("quote break in a string", "name == 'a' OR '1'='1'", QueryError, r"(?i)expected .* at position \d+"),
    ("SQL function", "config.lr == load_extension('x')", QueryError, r"(?i)expected .* at position \d+"),
    ("subquery", "config.lr in (SELECT 1)", QueryError, r"(?i)expected .* at position \d+"),
]


@pytest.mark.parametrize(
    ("where", "error", "message"), [r[1:] for r in INJECTIONS], ids=[r[0] for r in INJECTIONS]
)
def test_where_injection_is_a_syntax_error_and_the_store_is_untouched(store_dir, where, error, message):
    _two_runs()
    with pytest.raises(error, match=message):
        nbtrack.runs("inj", where=where)
    assert sorted(nbtrack.runs("inj").names) == ["a", "b"]
    assert integrity(store_dir) == "ok"


@pytest.mark.parametrize(
    "where",
    ["name == \"a' OR '1'='1\"", "name == 'x\\\"; DROP TABLE runs; --'", "config.'lr\\') OR 1=1 --' == 1"],
    ids=["quote inside a string", "statement inside a string", "quoted field name"],
)
def test_where_injection_inside_strings_and_names_matches_nothing(store_dir, where):
    _two_runs()
    assert len(nbtrack.runs("inj", where=where)) == 0
    assert sorted(nbtrack.runs("inj").names) == ["a", "b"]
    assert integrity(store_dir) == "ok"


# -- 7. malformed sweep configs ---------------------------------------------------------------------------
SWEEPS = [
    ("not a mapping", [1, 2], "got a list; expected a dict"),
    ("unknown method", {"method": "genetic", "parameters": {"lr": {"values": [1]}}}, "method"),
    ("no parameters", {"method": "grid"}, "parameters"),
    ("empty values", {"method": "grid", "parameters": {"lr": {"values": []}}}, "parameters.lr"),
    ("min above max", {"method": "random", "parameters": {"lr": {"min": 1.0, "max": 0.1}}}, "parameters.lr"),
    (
        "unknown distribution",
        {"method": "random", "parameters": {"lr": {"distribution": "zipf", "min": 0, "max": 1}}},
        "parameters.lr",
    ),
    ("hostile parameter name", {"method": "grid", "parameters": {HOSTILE: {"value": object()}}}, "JSON"),
]


@pytest.mark.parametrize(("config", "field"), [r[1:] for r in SWEEPS], ids=[r[0] for r in SWEEPS])
def test_malformed_sweep_config_names_the_field(config, field):
    with pytest.raises(SweepConfigError, match=re.escape(field)):
        parse_sweep_config(config)


def test_unparseable_sweep_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("method: grid\nparameters:\n  lr: {values: [1, 2\n")
    with pytest.raises(SweepConfigError, match=r"sweep\.yaml' is not valid YAML(.|\n)*line 3"):
        parse_sweep_config(path)
