"""Query trees (`nbtrack.query`) compiled to SQL with bound parameters, for the SQL store backends.

Every value from the user becomes a named parameter; field names become JSON path parameters. A backend supplies
the dialect: how to read a JSON value and its type, how to list a JSON array's elements, and (for a typed SQL like
PostgreSQL's) how to read a value as a number or as text. The SQL returns exactly what `nbtrack.query.evaluate`
and `sort_records` return, which the conformance suite checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nbtrack.query import (
    And,
    Compare,
    Contains,
    Field,
    InList,
    IsNull,
    Match,
    Node,
    Not,
    Or,
    OrderKey,
    QueryError,
)


class Sql(str):
    """An SQL expression that knows its value's type: ``n`` number, ``t`` text, ``a`` a JSON array column (tags),
    ``j`` a JSON value. It reads as the plain string, so a dialect that ignores types (SQLite) sees no difference."""

    type: str

    def __new__(cls, text: str, type: str) -> Sql:
        self = super().__new__(cls, text)
        self.type = type
        return self


_KIND_OF_JSON_TYPE = (
    "CASE {t} WHEN 'integer' THEN 'n' WHEN 'real' THEN 'n' WHEN 'text' THEN 't' WHEN 'true' THEN 'b' "
    "WHEN 'false' THEN 'b' WHEN 'array' THEN 'a' WHEN 'object' THEN {object_kind} ELSE NULL END"
)


# A key SQLite's JSON path can name: SQLite (3.40 at least) compares a path label with the key's JSON text as
# written, escapes included, and ends the label at the first '"', so keys holding '\\', '"' or control characters
# are found by `json_each`, whose `key` column is the decoded key.
_PATH_KEY = re.compile(r'[^"\\\x00-\x1f]*')


@dataclass
class SQLiteJSON:
    """SQLite's JSON1 functions. Paths are ``$."key"."sub"`` strings, passed as parameters."""

    params: dict[str, Any] = field(default_factory=dict)
    _aliases: int = 0

    def bind(self, value: Any) -> str:
        """A named placeholder for `value` (named, so an expression can appear twice in the SQL)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    @staticmethod
    def path(keys: tuple[str, ...]) -> str:
        for key in keys:
            if '"' in key:
                raise QueryError(f"Keys containing '\"' cannot be queried: {key!r}")
        return "$" + "".join(f'."{key}"' for key in keys)

    def kind(self, column: str, keys: tuple[str, ...]) -> str:
        """One of n/b/t/a/o/x (see `nbtrack.query.kind_of`), NULL for null or missing."""
        nan = self.lookup(column, (*keys, "$float"), "value")
        object_kind = f"(CASE WHEN {nan} = 'NaN' THEN 'x' ELSE 'o' END)"
        return _KIND_OF_JSON_TYPE.format(t=self.lookup(column, keys, "type"), object_kind=object_kind)

    def value(self, column: str, keys: tuple[str, ...]) -> str:
        return self.lookup(column, keys, "value")

    def lookup(self, document: str, keys: tuple[str, ...], what: str) -> str:
        """The SQL ``value`` (as `json_extract`) or JSON ``type`` (as `json_type`) at `keys` in `document`."""
        odd = next((i for i, key in enumerate(keys) if not _PATH_KEY.fullmatch(key)), None)
        if odd is None:
            function = "json_extract" if what == "value" else "json_type"
            return f"{function}({document}, {self.bind(self.path(keys))})"
        alias = f"k{self._aliases}"
        self._aliases += 1
        rest = keys[odd + 1 :]
        # A member's value is its JSON text only when it is an object: text that looks like JSON is not walked.
        inner = f"{alias}.{what}" if not rest else self.lookup(f"{alias}.value", rest, what)
        guard = f" AND {alias}.type = 'object'" if rest else ""
        return (
            f"(SELECT {inner} FROM json_each({document}, {self.bind(self.path(keys[:odd]))}) AS {alias} "
            f"WHERE {alias}.key = {self.bind(keys[odd])}{guard})"
        )

    # SQLite compares values of any type, so these hooks only spell SQLite's functions.
    false = "0"
    greatest = "MAX"

    @staticmethod
    def typed(value: str, want: str) -> str:
        """`value` as a number (``n``), boolean as 1/0 (``b``) or text (``t``), for comparing with a literal."""
        return value

    @staticmethod
    def instr(value: str, needle: str) -> str:
        return f"instr({value}, {needle})"

    @staticmethod
    def startswith(value: str, prefix: str) -> str:
        return f"substr({value}, 1, length({prefix})) = {prefix}"

    @staticmethod
    def endswith(value: str, suffix: str) -> str:
        return f"(length({suffix}) = 0 OR substr({value}, -length({suffix})) = {suffix})"

    @staticmethod
    def order_terms(value: str, direction: str) -> list[str]:
        """ORDER BY terms that sort `value` within its sort class (numbers, text, other)."""
        return [f"{value} {direction}"]

    def elements(self, column: str, keys: tuple[str, ...]) -> tuple[str, str, str]:
        """A FROM clause over the array's elements, and the expressions of an element's kind and value."""
        if all(_PATH_KEY.fullmatch(key) for key in keys):
            source = f"json_each({column}, {self.bind(self.path(keys))}) AS e"
        else:
            array = (
                f"CASE WHEN {self.lookup(column, keys, 'type')} = 'array' THEN {self.value(column, keys)} END"
            )
            source = f"json_each({array}) AS e"
        kind = _KIND_OF_JSON_TYPE.format(t="e.type", object_kind="'o'")
        return source, kind, "e.value"

    def all_elements(self, column: str) -> tuple[str, str, str]:
        return (
            f"json_each({column}) AS e",
            _KIND_OF_JSON_TYPE.format(t="e.type", object_kind="'o'"),
            "e.value",
        )


_PG_KIND_OF_JSON_TYPE = (
    "CASE json_typeof({v}) WHEN 'number' THEN 'n' WHEN 'string' THEN 't' WHEN 'boolean' THEN 'b' "
    "WHEN 'array' THEN 'a' WHEN 'object' THEN {object_kind} ELSE NULL END"
)
_INDEX_LIKE = re.compile(r"\s*[+-]?\d+\s*")  # a key that PostgreSQL's #> would also read as an array index
_PG_CASTS = {str: "::text", float: "::float8", int: "::float8", bool: "::float8", list: "::text[]"}
_PG_NULL = {"n": "NULL::float8", "b": "NULL::float8", "t": "NULL::text"}


def _pg_text(value: str) -> str:
    return f"({value} #>> '{{}}')"


def pg_json_column(column: str) -> str:
    """A JSON column that PostgreSQL can walk: its JSON functions fail on a document holding ``\\u0000`` (text cannot
    hold NUL), so in such a (rare) document NUL reads as U+0001. Only an escape is replaced: in ``\\\\u0000`` (a
    backslash, then the text u0000) the backslash is escaped, so an even run of backslashes comes before a NUL."""
    return (
        f"(CASE WHEN strpos({column}::text, '\\u0000') > 0 "
        f"THEN regexp_replace({column}::text, '(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', '\\1\\\\u0001', 'g')::json "
        f"ELSE {column} END)"
    )


@dataclass
class PostgresJSON:
    """PostgreSQL's functions over ``json`` columns (which keep the exact text `dump_json` wrote, ``1e999``
    included). Paths are ``text[]`` parameters. Numbers and booleans compare as float8 through the store's
    ``nbtrack_float(json)`` (±1e999 reads as ±Infinity, booleans as 1/0), text with ``COLLATE "C"`` (code point
    order, as SQLite's BINARY collation)."""

    params: dict[str, Any] = field(default_factory=dict)
    _values: dict[tuple[str, tuple[str, ...]], Sql] = field(default_factory=dict)

    false = "FALSE"
    greatest = "GREATEST"

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s{_PG_CASTS.get(type(value), '')}"

    def value(self, column: str, keys: tuple[str, ...]) -> Sql:
        """The JSON value at `keys` (NULL when missing): one expression per path, its parameter bound once."""
        cached = self._values.get((column, keys))
        if cached is None:
            column = pg_json_column(column)
            expression = f"({column} #> {self.bind(list(keys))})"
            # #> indexes arrays with integer-like keys; nbtrack's fields only ever name object keys.
            guards = [
                f"json_typeof({column} #> {self.bind(list(keys[:i]))}) = 'object'"
                for i in range(1, len(keys))
                if _INDEX_LIKE.fullmatch(keys[i])
            ]
            if guards:
                expression = f"(CASE WHEN {' AND '.join(guards)} THEN {expression} END)"
            cached = self._values[(column, keys)] = Sql(expression, "j")
        return cached

    def kind(self, column: str, keys: tuple[str, ...]) -> str:
        """One of n/b/t/a/o/x (see `nbtrack.query.kind_of`), NULL for null or missing."""
        v = self.value(column, keys)
        object_kind = f"""(CASE WHEN ({v} -> '$float')::text = '"NaN"' THEN 'x' ELSE 'o' END)"""
        return _PG_KIND_OF_JSON_TYPE.format(v=v, object_kind=object_kind)

    def elements(self, column: str, keys: tuple[str, ...]) -> tuple[str, str, str]:
        v = self.value(column, keys)
        return (
            f"json_array_elements(CASE WHEN json_typeof({v}) = 'array' THEN {v} END) AS e(value)",
            _PG_KIND_OF_JSON_TYPE.format(v="e.value", object_kind="'o'"),
            Sql("e.value", "j"),
        )

    def all_elements(self, column: str) -> tuple[str, str, str]:
        return (
            f"json_array_elements({pg_json_column(column)}) AS e(value)",
            _PG_KIND_OF_JSON_TYPE.format(v="e.value", object_kind="'o'"),
            Sql("e.value", "j"),
        )

    @staticmethod
    def typed(value: str, want: str) -> str:
        have = getattr(value, "type", "t")
        if have == "j":
            return f'({_pg_text(value)} COLLATE "C")' if want == "t" else f"nbtrack_float({value})"
        if have == want == "t":
            return f'({value} COLLATE "C")'
        if have == want == "n":
            return value
        return _PG_NULL[want]  # a column of another type: its kind never matches, and the SQL must type-check

    def instr(self, value: str, needle: str) -> str:
        return f"strpos({self.typed(value, 't')}, {needle})"

    def startswith(self, value: str, prefix: str) -> str:
        return f"starts_with({self.typed(value, 't')}, {prefix})"

    def endswith(self, value: str, suffix: str) -> str:
        return f"right({self.typed(value, 't')}, length({suffix})) = {suffix}"

    @staticmethod
    def order_terms(value: str, direction: str) -> list[str]:
        """A number term and a text term: within a sort class only one of them is not NULL."""
        have = getattr(value, "type", "t")
        if have == "n":
            return [f"{value} {direction}"]
        if have == "j":
            text = (
                f"(CASE json_typeof({value}) WHEN 'string' THEN {_pg_text(value)} WHEN 'number' THEN NULL "
                f"WHEN 'boolean' THEN NULL WHEN 'null' THEN NULL ELSE {value}::text END)"
            )
            return [f"nbtrack_float({value}) {direction}", f'({text} COLLATE "C") {direction}']
        return [f'(({value})::text COLLATE "C") {direction}']


class Compiler:
    """Turns a query tree into a WHERE clause and an ORDER BY list for the ``runs`` table.

    `state` and `duration` are what readers see: `crashed_ids` are running runs whose writer is gone (found by
    the backend before compiling), and `now` ends a running run's duration.
    """

    def __init__(self, dialect: SQLiteJSON | PostgresJSON, now: float, crashed_ids: list[str]) -> None:
        self.d = dialect
        self.now = now
        self.crashed_ids = crashed_ids

    def state_sql(self) -> str:
        if not self.crashed_ids:
            return "state"
        marks = ", ".join(self.d.bind(i) for i in self.crashed_ids)
        return f"(CASE WHEN id IN ({marks}) THEN 'crashed' ELSE state END)"

    def operand(self, f: Field) -> tuple[str, str]:
        """(kind, value) SQL expressions of a field."""
        if f.scope in ("config", "summary"):
            return self.d.kind(f.scope, f.path), self.d.value(f.scope, f.path)
        name = f.path[0]
        if name == "state":
            return "'t'", Sql(self.state_sql(), "t")
        if name in ("notes", "ended"):
            kind = "'t'" if name == "notes" else "'n'"
            return f"(CASE WHEN {name} IS NULL THEN NULL ELSE {kind} END)", Sql(name, kind[1])
        if name == "duration":
            end = f"COALESCE(ended, CASE WHEN {self.state_sql()} = 'running' THEN {self.d.bind(self.now)} ELSE heartbeat END, created)"
            return "'n'", Sql(f"{self.d.greatest}(0.0, {end} - created)", "n")
        if name == "tags":
            return "'a'", Sql("tags", "a")
        if name == "created":
            return "'n'", Sql("created", "n")
        return "'t'", Sql(name, "t")

    def equal(self, kind: str, value: str, literal: Any) -> str:
        if isinstance(literal, bool):
            return f"({kind} = 'b' AND {self.d.typed(value, 'b')} = {self.d.bind(int(literal))})"
        if isinstance(literal, (int, float)):
            return f"({kind} = 'n' AND {self.d.typed(value, 'n')} = {self.d.bind(literal)})"
        return f"({kind} = 't' AND {self.d.typed(value, 't')} = {self.d.bind(literal)})"

    @staticmethod
    def present(kind: str) -> str:
        return f"({kind} IS NOT NULL AND {kind} <> 'x')"

    def where(self, node: Node) -> str:
        return f"COALESCE({self._node(node)}, {self.d.false})"

    def _node(self, node: Node) -> str:
        if isinstance(node, And):
            # Cheap conditions first: SQLite stops at the first false one, and reading JSON is the cost.
            parts = sorted(node.parts, key=_cost)
            return _chain("AND", [self.where(p) for p in parts])
        if isinstance(node, Or):
            return _chain("OR", [self.where(p) for p in node.parts])
        if isinstance(node, Not):
            return f"(NOT {self.where(node.part)})"
        kind, value = self.operand(node.field)
        if isinstance(node, IsNull):
            return f"({kind} IS NOT NULL)" if node.negate else f"({kind} IS NULL)"
        if isinstance(node, Compare):
            if node.op == "==":
                return self.equal(kind, value, node.value)
            if node.op == "!=":
                return f"({self.present(kind)} AND NOT {self.equal(kind, value, node.value)})"
            want = "t" if isinstance(node.value, str) else "n"
            return f"({kind} = '{want}' AND {self.d.typed(value, want)} {node.op} {self.d.bind(node.value)})"
        if isinstance(node, InList):
            hit = _chain("OR", [self.equal(kind, value, v) for v in node.values])
            return f"({self.present(kind)} AND NOT {hit})" if node.negate else hit
        if isinstance(node, Contains):
            hit = self.contains(node.field, kind, value, node.value)
            return f"({self.present(kind)} AND NOT {hit})" if node.negate else hit
        if isinstance(node, Match):
            n = self.d.bind(node.value)
            test = self.d.startswith(value, n) if node.op == "startswith" else self.d.endswith(value, n)
            return f"({kind} = 't' AND {test})"
        raise TypeError(f"not a query node: {node!r}")

    def contains(self, f: Field, kind: str, value: str, literal: Any) -> str:
        if f.scope == "run":
            source, e_kind, e_value = self.d.all_elements("tags")
        else:
            source, e_kind, e_value = self.d.elements(f.scope, f.path)
        element = f"EXISTS (SELECT 1 FROM {source} WHERE {self.equal(e_kind, e_value, literal)})"
        parts = [f"({kind} = 'a' AND {element})"]
        if isinstance(literal, str):
            parts.append(f"({kind} = 't' AND {self.d.instr(value, self.d.bind(literal))} > 0)")
        return "(" + " OR ".join(parts) + ")"

    def order(self, keys: tuple[OrderKey, ...]) -> str:
        terms = []
        for key in keys:
            kind, value = self.operand(key.field)
            terms.append(
                f"CASE WHEN {kind} IS NULL THEN 3 WHEN {kind} IN ('n', 'b') THEN 0 WHEN {kind} = 't' THEN 1 ELSE 2 END"
            )
            terms += self.d.order_terms(value, "DESC" if key.descending else "ASC")
        terms += ["created DESC", "id ASC"]
        return ", ".join(terms)


def _chain(word: str, terms: list[str]) -> str:
    """`terms` joined by AND or OR, nested as a balanced tree: SQLite parses ``a AND b AND c ...`` as a chain one
    level deeper per term and refuses expressions over 1000 levels deep."""
    if len(terms) <= 16:
        return "(" + f" {word} ".join(terms) + ")"
    half = len(terms) // 2
    return f"({_chain(word, terms[:half])} {word} {_chain(word, terms[half:])})"


def _cost(node: Node) -> int:
    """A rough cost of evaluating `node` per row: run columns 0, the tags array 1, each JSON field 2."""
    if isinstance(node, (And, Or)):
        return sum(_cost(p) for p in node.parts)
    if isinstance(node, Not):
        return _cost(node.part)
    if node.field.scope != "run":
        return 2
    return 1 if node.field.path[0] == "tags" else 0
