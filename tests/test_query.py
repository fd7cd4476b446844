"""The where/order_by language: parsing, errors, the SQL it compiles to, and the Python reference semantics.

The store-backed tests run on every backend in tests/test_store_conformance.py's BACKENDS.
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.store import open_store
from nbtrack.store.base import RunQuery, WriteBatch
from nbtrack.store.query import (
    Field,
    QueryError,
    dump_json,
    evaluate,
    load_json,
    parse,
    parse_order,
    sort_records,
    unparse,
)
from tests.test_store_conformance import BACKENDS, new_location

NOW = time.time()

# name, config, summary, state, tags, notes; created = NOW - 1000 + 10 * index
RUNS = [
    (
        "adam-fast",
        {"lr": 0.001, "opt": "adam", "layers": [64, 32], "nested": {"a": 1}},
        {"val_accuracy": 0.95, "loss": 0.1, "batch/loss": 0.12},
        "finished",
        ["baseline"],
        None,
    ),
    (
        "adam-slow",
        {"lr": 0.0001, "opt": "adam", "layers": [64]},
        {"val_accuracy": 0.91, "loss": 0.2},
        "finished",
        ["baseline", "slow"],
        "first try",
    ),
    (
        "sgd",
        {"lr": 0.1, "opt": "sgd", "momentum": 0.9},
        {"val_accuracy": 0.85, "loss": float("nan")},
        "failed",
        [],
        None,
    ),
    (
        "no-lr",
        {"opt": "rmsprop", "augment": True},
        {"val_accuracy": 0.97, "loss": float("inf")},
        "finished",
        ["best"],
        None,
    ),
    ("text-lr", {"lr": "0.01", "augment": False}, {}, "interrupted", ["baseline"], "lr given as text"),
    (
        "inject'; DROP TABLE runs; --",
        {"lr": 0.01, "opt": 'adam"); DROP TABLE runs; --'},
        {"val_accuracy": 0.5},
        "finished",
        ["ünï✓"],
        None,
    ),
    ("still-running", {"lr": 0.003, "opt": None}, {"val_accuracy": 0.6}, "running", [], None),
    ("dead", {"lr": 0.003}, {"val_accuracy": 0.7}, "crashed", [], None),
]


def populate(store, runs=RUNS, project="p"):
    ids = []
    for i, (name, config, summary, state, tags, notes) in enumerate(runs):
        rid = f"run{i:04d}"
        created = NOW - 1000 + 10 * i
        store.create_run(
            run_id=rid,
            project=project,
            name=name,
            config=config,
            tags=tags,
            notes=notes,
            created=created,
            host="elsewhere",
            pid=0,
        )
        if state == "running":
            store.write_batch(WriteBatch(rid, summary=summary, heartbeat=time.time() + 3600))
        elif state == "crashed":  # a running run whose heartbeat went stale
            store.write_batch(WriteBatch(rid, summary=summary, heartbeat=created + 5))
        else:
            store.write_batch(
                WriteBatch(
                    rid, summary=summary, state=state, ended=created + 5 + i, heartbeat=created + 5 + i
                )
            )
        ids.append(rid)
    return ids


@pytest.fixture(params=BACKENDS, scope="module")
def store(request, tmp_path_factory):
    store = open_store(new_location(request, request.param, tmp_path_factory.mktemp("query")))
    populate(store)
    yield store
    store.close()


def names(store, where=None, order=None, project=None):
    query = RunQuery(project=project, where=parse(where) if where else None, order=parse_order(order))
    return [r.name for r in store.search_runs(query)]


def reference(store, where=None, order=None):
    records = store.search_runs(RunQuery())
    node = parse(where) if where else None
    now = time.time()
    matched = [r for r in records if node is None or evaluate(node, r, now)]
    return [r.name for r in sort_records(matched, parse_order(order), now)]


EXPRESSIONS = [
    ("config.lr < 0.01", {"adam-fast", "adam-slow", "still-running", "dead"}),
    (
        "config.lr <= 0.01",
        {"adam-fast", "adam-slow", "still-running", "dead", "inject'; DROP TABLE runs; --"},
    ),
    ("config.lr == 0.01", {"inject'; DROP TABLE runs; --"}),
    ("config.lr == '0.01'", {"text-lr"}),
    (
        "config.lr != 0.1",
        {"adam-fast", "adam-slow", "text-lr", "inject'; DROP TABLE runs; --", "still-running", "dead"},
    ),
    ("not config.lr < 0.01", {"sgd", "no-lr", "text-lr", "inject'; DROP TABLE runs; --"}),
    ("config.lr is null", {"no-lr"}),
    ("config.opt is null", {"text-lr", "dead", "still-running"}),
    ("config.opt == null", {"text-lr", "dead", "still-running"}),
    ("config.opt is not null", {"adam-fast", "adam-slow", "sgd", "no-lr", "inject'; DROP TABLE runs; --"}),
    ("config.opt in ['adam', 'sgd']", {"adam-fast", "adam-slow", "sgd"}),
    ("config.opt not in ('adam', 'sgd')", {"no-lr", "inject'; DROP TABLE runs; --"}),
    ("config.augment == true", {"no-lr"}),
    ("config.augment != true", {"text-lr"}),
    ("config.augment == 1", set()),  # a number never equals a boolean
    ("64 in config.layers", {"adam-fast", "adam-slow"}),
    ("32 in config.layers", {"adam-fast"}),
    ("config.layers contains 32", {"adam-fast"}),
    ("config.nested.a == 1", {"adam-fast"}),
    ("config.nested.a > 1", set()),
    ("summary.val_accuracy > 0.9 and state == 'finished'", {"adam-fast", "adam-slow", "no-lr"}),
    ("summary.val_accuracy > 0.9 or config.opt == 'sgd'", {"adam-fast", "adam-slow", "no-lr", "sgd"}),
    ("summary.batch/loss < 1", {"adam-fast"}),
    ('summary."batch/loss" < 1', {"adam-fast"}),
    ("summary.loss > 100", {"no-lr"}),  # infinity is a number
    ("summary.loss != 0.1", {"adam-slow", "no-lr"}),  # NaN matches no comparison
    ("summary.loss is null", {"text-lr", "inject'; DROP TABLE runs; --", "still-running", "dead"}),
    ("summary.loss is not null", {"adam-fast", "adam-slow", "sgd", "no-lr"}),  # NaN is a value
    ("'baseline' in tags", {"adam-fast", "adam-slow", "text-lr"}),
    ("'baseline' not in tags", {"sgd", "no-lr", "inject'; DROP TABLE runs; --", "still-running", "dead"}),
    ("'ünï✓' in tags", {"inject'; DROP TABLE runs; --"}),
    ("state == 'crashed'", {"dead"}),
    ("state == 'running'", {"still-running"}),
    ("state in ['failed', 'interrupted']", {"sgd", "text-lr"}),
    ("name startswith 'adam'", {"adam-fast", "adam-slow"}),
    ("name endswith 'slow'", {"adam-slow"}),
    ("name contains 'DROP'", {"inject'; DROP TABLE runs; --"}),
    (
        "'-' in name",
        {"adam-fast", "adam-slow", "no-lr", "text-lr", "still-running", "inject'; DROP TABLE runs; --"},
    ),
    ("name == 'inject\\'; DROP TABLE runs; --'", {"inject'; DROP TABLE runs; --"}),
    ("config.opt == 'adam\"); DROP TABLE runs; --'", {"inject'; DROP TABLE runs; --"}),
    ("notes contains 'text'", {"text-lr"}),
    ("notes is null", {"adam-fast", "sgd", "no-lr", "inject'; DROP TABLE runs; --", "still-running", "dead"}),
    ("duration > 8", {"text-lr", "inject'; DROP TABLE runs; --", "still-running"}),
    ("duration >= 8", {"no-lr", "text-lr", "inject'; DROP TABLE runs; --", "still-running"}),
    (f"created >= {NOW - 1000 + 60}", {"still-running", "dead"}),
    ("created > '2000-01-01' and created < '2999-01-01'", {r[0] for r in RUNS}),
    (
        "not (config.opt == 'adam' or config.opt == 'sgd')",
        {"no-lr", "text-lr", "inject'; DROP TABLE runs; --", "still-running", "dead"},
    ),
    ("0.01 > config.lr", {"adam-fast", "adam-slow", "still-running", "dead"}),
    ("config.missing == 1 or config.missing != 1 or config.missing < 1", set()),
]


@pytest.mark.parametrize(("where", "expected"), EXPRESSIONS)
def test_expression_table(store, where, expected):
    got = names(store, where)
    assert set(got) == expected
    assert got == reference(store, where)  # same rows, same order as the Python reference
    assert parse(unparse(parse(where))) == parse(where)


def test_injection_attempts_are_data_and_the_table_survives(store):
    for where in [
        "name == '''; DROP TABLE runs; --'",
        'config."lr\'); DROP TABLE runs; --" == 1',
        "name == 'x' or 1 == 1",
        "summary.val_accuracy > 0.5 -- and state == 'failed'",
    ]:
        try:
            names(store, where)
        except QueryError:
            pass
    assert len(names(store)) == len(RUNS)
    with pytest.raises(QueryError, match="Expected a field"):  # no tautologies: every condition has a field
        names(store, "name == 'x' or 1 == 1")
    assert names(store, "name == 'x\\' or 1=1 --'") == []  # quotes inside a string stay inside it


def test_order_by(store):
    assert names(store, order="-summary.val_accuracy")[:3] == ["no-lr", "adam-fast", "adam-slow"]
    ascending = names(store, order="summary.val_accuracy")
    assert (
        ascending[0] == "inject'; DROP TABLE runs; --" and ascending[-1] == "text-lr"
    )  # missing last, both ways
    assert names(store, order="-summary.val_accuracy")[-1] == "text-lr"
    # numbers before text: text-lr's lr is the string '0.01'; no-lr has none
    assert names(store, order="config.lr")[-2:] == ["text-lr", "no-lr"]
    assert names(store, order="-config.lr")[-2:] == ["text-lr", "no-lr"]
    assert names(store) == [r[0] for r in reversed(RUNS)]  # newest first by default
    for order in [
        "-summary.val_accuracy",
        "config.lr",
        "-config.lr, name",
        "state,-created",
        "-duration",
        "tags",
        "config.layers",
        "-summary.loss",
    ]:
        assert names(store, order=order) == reference(store, order=order), order


def test_projects_and_keys(store):
    (project,) = store.projects()
    assert project.name == "p" and project.runs == len(RUNS) and project.running == 1
    assert store.keys("config", "p") == ["augment", "layers", "lr", "momentum", "nested", "opt"]
    assert "batch/loss" in store.keys("summary")


def test_limit_offset_count(store):
    query = RunQuery(where=parse("config.lr < 1"), order=parse_order("config.lr"), limit=2, offset=1)
    assert [r.name for r in store.search_runs(query)] == ["adam-fast", "dead"]  # ties: newest first
    assert store.count_runs(query) == 6


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "config.lr <",
            "Expected a value (a number, 'text', true, false or null) at position 11, found the end",
        ),
        ("config.lr < 0.1 and", "Expected a field"),
        ("config.lr 0.1", "Expected a comparison after config.lr"),
        ("lr < 0.1", "Unknown field 'lr' at position 0. Fields are config.<key>, summary.<key>"),
        ("stat == 'finished'", "Did you mean state?"),
        ("confg.lr < 1", "Did you mean config.<key>?"),
        ("state == 'finishd'", "Unknown state 'finishd'; states are running, finished"),
        ("state > 3", "state is text"),
        ("tags == 'x'", "tags is a list"),
        ("created > 'yesterday'", "created compares with a date"),
        ("name == 'abc", "Unterminated string starting at position 8"),
        ("(config.lr < 1", "Expected ')' to close the '('"),
        ("config.lr < 1)", "Expected 'and', 'or' or the end of the expression at position 13"),
        ("config.lr < null", "null has no order"),
        ("config.flag > true", "true/false have no order"),
        ("config.lr ~ 1", "Unexpected character '~' at position 10"),
        ("config", "Expected '.' and a key after 'config'"),
        ("", "Expected a condition"),
        ("name startswith 3", "Expected text after 'startswith'"),
        ("config.x in 3", "Expected a list of values after 'in'"),
        ("'a' == 'b'", "Expected a field"),
    ],
)
def test_syntax_errors_name_position_and_expectation(where, message):
    with pytest.raises(QueryError) as info:
        parse(where)
    assert message in str(info.value)
    assert isinstance(info.value, nbtrack.NbtrackError) and isinstance(info.value, ValueError)


def test_order_by_errors():
    with pytest.raises(QueryError, match="Unknown field 'acc'"):
        parse_order("-acc")
    with pytest.raises(QueryError, match="empty field"):
        parse_order("name,,created")
    assert [(k.field.text, k.descending) for k in parse_order(["-summary.loss", "name"])] == [
        ("summary.loss", True),
        ("name", False),
    ]


def test_json_encoding_round_trips_non_finite_numbers():
    value = {
        "nan": float("nan"),
        "inf": [float("inf"), -float("inf")],
        "s": "Infinity NaN \x00nbtrack+inf\x00",
    }
    text = dump_json(value)
    assert "NaN" not in text.replace('"NaN"', "").replace("Infinity NaN", "")
    back = load_json(text)
    assert math.isnan(back["nan"]) and back["inf"] == [math.inf, -math.inf] and back["s"] == value["s"]


# -- property tests: the SQL a backend runs equals the Python reference over random runs --------------
# Keys and text holding what SQL spells specially: a backslash (JSON path escapes), '"' (ends a path label),
# '%' and '_' (LIKE wildcards), a tab (a JSON escape).
ODD_TEXT = ["a\\b", "\\", "50%", "a_b", "%", "_", "t\tab", 'q"x\\', "\\u0000"]
KEYS = ["lr", "opt", "flag", "layers", "a\\b", 'q"k', "t\tk", "50%_"]
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.25, 0.001, 2.0, float("nan"), float("inf"), -float("inf")]),
    st.sampled_from(["adam", "sgd", "", "a'b", 'q"x', "ünï", "'; DROP TABLE runs; --", "2", *ODD_TEXT]),
)
json_value = st.one_of(scalar, st.lists(scalar, max_size=3))
config_strategy = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(json_value, st.dictionaries(st.just("x"), scalar, max_size=1)),
    max_size=4,
)
run_strategy = st.tuples(
    st.sampled_from(["alpha", "beta-1", "a'b", "ünï", "'; DROP TABLE runs; --", "a\\b", "50%_x"]),
    config_strategy,
    st.dictionaries(st.sampled_from(["acc", "loss"]), scalar, max_size=2),
    st.sampled_from(["finished", "failed", "interrupted", "running", "crashed"]),
    st.lists(st.sampled_from(["baseline", "x", "ünï", "50%", "a\\b"]), max_size=2, unique=True),
    st.one_of(st.none(), st.sampled_from(["note", "ünï note", "a\\b_50%"])),
)
literal = scalar.filter(lambda v: not (isinstance(v, float) and not math.isfinite(v)))
field_names = st.sampled_from(
    [Field("config", (k,)).text for k in KEYS]
    + ['config."a\\\\b".x']
    + ["config.missing", "summary.acc", "summary.loss", "name", "state", "notes", "tags", "duration"]
)


@st.composite
def condition(draw):
    field = draw(field_names)
    form = draw(st.integers(0, 5))
    if field == "state":
        return f"state {draw(st.sampled_from(['==', '!=']))} '{draw(st.sampled_from(['finished', 'running', 'crashed']))}'"
    if field == "duration":
        return f"duration {draw(st.sampled_from(['<', '>=']))} {draw(st.sampled_from([3, 7, 30]))}"
    if field == "tags":
        return (
            f"{draw(st.sampled_from(['', 'not ']))}".join(["'baseline' ", "in tags"])
            if form < 3
            else "'ünï' in tags"
        )
    if field in ("name", "notes"):  # text fields take text
        literal_of = st.sampled_from(["a", "ünï", "note", "alpha", "'; DROP TABLE runs; --", *ODD_TEXT])
        if form == 0:
            return f"{field} {draw(st.sampled_from(['==', '!=', '<', '>=']))} {unparse_literal(draw(literal_of))}"
        if form == 2:
            values = draw(st.lists(literal_of, min_size=1, max_size=3))
            return f"{field} in [{', '.join(unparse_literal(v) for v in values)}]"
        if form == 4:
            return f"{field} is {draw(st.sampled_from(['', 'not ']))}null"
        word = draw(st.sampled_from(["startswith", "endswith", "contains"]))
        return f"{field} {word} {unparse_literal(draw(literal_of))}"
    if form == 0:
        op = draw(st.sampled_from(["==", "!="]))
        return f"{field} {op} {unparse_literal(draw(literal))}"
    if form == 1:
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        value = draw(
            st.one_of(
                st.integers(-3, 3),
                st.sampled_from([0.5, 0.001]),
                st.sampled_from(["a", "sgd", "ü", *ODD_TEXT]),
            )
        )
        return f"{field} {op} {unparse_literal(value)}"
    if form == 2:
        values = draw(st.lists(literal, min_size=1, max_size=3))
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} [{', '.join(unparse_literal(v) for v in values)}]"
    if form == 3:
        return f"{unparse_literal(draw(literal))} {draw(st.sampled_from(['in', 'not in']))} {field}"
    if form == 4:
        return f"{field} is {draw(st.sampled_from(['', 'not ']))}null"
    word = draw(st.sampled_from(["startswith", "endswith", "contains"]))
    value = draw(st.sampled_from(["a", "", "ünï", "sg", "'", *ODD_TEXT]))
    return f"{field} {word} {unparse_literal(value)}"


def unparse_literal(value):
    from nbtrack.store.query import literal_text

    return literal_text(value)


expression = st.recursive(
    condition(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=4,
)


@pytest.fixture(params=BACKENDS, scope="module")
def random_store(request, tmp_path_factory):
    runs = _draw(st.lists(run_strategy, min_size=60, max_size=60))
    store = open_store(new_location(request, request.param, tmp_path_factory.mktemp("random")))
    populate(store, runs)
    yield store
    store.close()


def _draw(strategy):
    """One deterministic example of `strategy`."""
    values = []

    @settings(database=None, max_examples=1, derandomize=True)
    @given(strategy)
    def grab(value):
        values.append(value)

    grab()
    return values[0]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    where=expression,
    order=st.sampled_from(
        [None, "config.lr", "-config.lr", "-summary.acc, name", "config.layers", "-config.opt"]
    ),
)
def test_sql_matches_python_reference(random_store, where, order):
    assert names(random_store, where, order) == reference(random_store, where, order), where


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(runs=st.lists(run_strategy, min_size=1, max_size=8), where=expression)
def test_sql_matches_python_reference_on_random_stores(request, tmp_path_factory, runs, where):
    for backend in BACKENDS:
        store = open_store(new_location(request, backend, tmp_path_factory.mktemp(backend)))
        try:
            populate(store, runs)
            assert names(store, where, "-config.lr") == reference(store, where, "-config.lr"), where
        finally:
            store.close()


def test_counted_search_totals_match_count(store):
    for where, limit, offset in [
        ("config.lr < 1", 2, 0),
        ("config.lr < 1", 2, 5),
        ("config.lr < 1", 3, 50),
        (None, None, 0),
        ("state == 'failed'", 5, 0),
    ]:
        query = RunQuery(
            where=parse(where) if where else None, order=parse_order("config.lr"), limit=limit, offset=offset
        )
        records, total = store.search_runs_counted(query)
        assert [r.id for r in records] == [r.id for r in store.search_runs(query)]
        assert total == store.count_runs(query)


def test_a_version_1_store_is_migrated_and_its_nan_values_become_queryable(tmp_path):
    import json
    import sqlite3

    from nbtrack.store.sqlite import DB_NAME, MIGRATIONS

    directory = tmp_path / "old-store"
    directory.mkdir()
    conn = sqlite3.connect(directory / DB_NAME)
    for statement in filter(str.strip, MIGRATIONS[0][2].split(";")):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    summary = json.dumps({"loss": float("nan"), "best": float("inf"), "acc": 0.5})  # bare NaN: not JSON
    conn.execute(
        "INSERT INTO runs (id, project, name, seq, state, created, host, pid, summary, config) "
        "VALUES ('old1', 'p', 'old-run-1', 1, 'finished', 1.0, 'h', 0, ?, ?)",
        (summary, json.dumps({"lr": 0.1, "mom": float("nan")})),
    )
    conn.commit()
    conn.close()
    store = open_store(directory)
    try:
        (record,) = store.search_runs(
            RunQuery(where=parse("summary.loss is not null and summary.best > 1e300"))
        )
        assert math.isnan(record.summary["loss"]) and record.summary["best"] == math.inf
        assert math.isnan(record.config["mom"]) and record.config["lr"] == 0.1
        assert store.search_runs(RunQuery(where=parse("config.mom > 0 or config.mom <= 0"))) == []
    finally:
        store.close()


# -- keys and text that SQL spells specially, on every backend ---------------------------------------
ODD_RUNS = [
    (
        "backslash",
        {"a\\b": 1, "dir": "C:\\data\\x", 'q"k': "yes", "t\tk": {"x": 2}},
        {},
        "finished",
        [],
        None,
    ),
    ("percent", {"a\\b": 2, "dir": "50%_off", "ab": 9}, {}, "finished", ["50%"], "100%"),
    ("plain", {"ab": 1, "a\\\\b": 3, "dir": "50x_off"}, {}, "finished", ["50"], "a_b"),
    ("looks-like-json", {"a\\b": '{"x": 1}', "t\tk": '{"x": 2}'}, {}, "finished", [], None),
    ("escape-text", {"dir": "\\u0000", "esc": "b\\\\\\u0000"}, {}, "finished", [], None),
]


@pytest.fixture(params=BACKENDS)
def odd_store(request, tmp_path):
    store = open_store(new_location(request, request.param, tmp_path))
    populate(store, ODD_RUNS)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('config."a\\\\b" == 1', ["backslash"]),  # the key a\b, not ab nor a\\b
        ('config."a\\\\b" >= 1', ["percent", "backslash"]),
        ('config."a\\\\\\\\b" == 3', ["plain"]),
        ('config."a\\\\b" is null', ["plain", "escape-text"]),
        ('config."q\\"k" == \'yes\'', ["backslash"]),
        ('config."t\\tk".x == 2', ["backslash"]),  # a key holding a tab, then a nested key
        (
            'config."t\\tk".x is null',
            ["plain", "percent", "looks-like-json", "escape-text"],
        ),  # text is never walked
        ("config.dir startswith 'C:\\\\data\\\\'", ["backslash"]),
        ("config.dir contains '%'", ["percent"]),
        ("config.dir contains '_'", ["plain", "percent"]),
        ("config.dir startswith '50%'", ["percent"]),
        ("config.dir endswith '%_off'", ["percent"]),
        ("config.dir endswith '_off'", ["plain", "percent"]),
        ("config.dir contains '\\\\'", ["backslash", "escape-text"]),
        ("notes endswith '%'", ["percent"]),
        ("notes contains '_'", ["plain"]),
        ("'50%' in tags", ["percent"]),
        ("'5_%' in tags", []),
        # the text \u0000 (PostgreSQL reads a NUL in a document as U+0001, and must not touch this text)
        ("config.dir == '\\\\u0000'", ["escape-text"]),
        ("config.esc endswith '\\\\u0000'", ["escape-text"]),
    ],
)
def test_backslash_percent_underscore_match_as_written(odd_store, where, expected):
    assert names(odd_store, where, "name") == sorted(expected), where
    assert reference(odd_store, where, "name") == sorted(expected), where


# -- deep and long expressions: a clear QueryError past explicit bounds, and correct SQL up to them ----
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("(" * 5000 + "config.lr < 1" + ")" * 5000, "nests more than 100 parentheses"),
        ("not " * 5000 + "config.lr < 1", "nests more than 100 parentheses and 'not'"),
        ("(not " * 3000 + "config.lr < 1" + ")" * 3000, "nests more than 100"),
        (" and ".join(["config.lr < 1"] * 20000), "more than 1000 conditions"),
        (" or ".join(["config.lr < 1"] * 1001), "more than 1000 conditions"),
        ("config.lr in [" + ", ".join(["1"] * 1001) + "]", "more than 1000 conditions"),
    ],
)
def test_deep_or_long_expressions_are_query_errors(store, where, message):
    with pytest.raises(QueryError, match=message) as info:
        nbtrack.runs(where=where, store=store.location)
    assert (
        len(str(info.value)) < 600
    )  # the message quotes the part around the position, not 20,000 conditions


def test_expressions_at_the_bounds_run_on_every_backend(store):
    nested = "(" * 99 + "not " + "config.lr < 0.01" + ")" * 99  # 100 levels: the most allowed
    assert names(store, nested, "name") == reference(store, nested, "name")
    assert len(names(store, nested)) == 4
    long_and = " and ".join(f"config.lr != {i}" for i in range(1000))
    assert names(store, long_and, "name") == reference(store, long_and, "name")
    assert len(names(store, long_and)) == 7  # every run with an lr (none equals 0..999)
    long_or = " or ".join(f"name == 'x{i}'" for i in range(999)) + " or name == 'sgd'"
    assert names(store, long_or) == ["sgd"]
    listed = "name in [" + ", ".join(f"'x{i}'" for i in range(999)) + ", 'dead']"
    assert names(store, listed) == ["dead"]
