"""Query trees (`nbtrack.store.query`) compiled to SQL with bound parameters, for the SQL store backends.

Every value from the user becomes a named parameter; field names become JSON path parameters. Each backend supplies
its `JSONFunctions` (`nbtrack.store.sqlite.SQLiteJSON`, `nbtrack.store.postgres.PostgresJSON`): how to read a JSON
value and its type, how to list a JSON array's elements, and (for a typed SQL like PostgreSQL's) how to read a value
as a number or as text. The SQL returns exactly what `nbtrack.store.query.evaluate` and `sort_records` return, which the
conformance suite checks.
"""

from __future__ import annotations

from typing import Any, Protocol

from nbtrack.store.query import (
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
)


class Sql(str):
    """An SQL expression that knows its value's type: ``n`` number, ``t`` text, ``a`` a JSON array column (tags),
    ``j`` a JSON value. It reads as the plain string, so a dialect that ignores types (SQLite) sees no difference."""

    type: str

    def __new__(cls, text: str, type: str) -> Sql:
        self = super().__new__(cls, text)
        self.type = type
        return self


class JSONFunctions(Protocol):
    """One backend's spelling of what the `Compiler` needs; a fresh one per query holds its parameters."""

    params: dict[str, Any]
    false: str  # the SQL false
    greatest: str  # the SQL function of the larger of two numbers

    def bind(self, value: Any) -> str:
        """A named placeholder for `value` (named, so an expression can appear twice in the SQL)."""

    def value(self, column: str, keys: tuple[str, ...]) -> str:
        """The value at `keys` in the JSON `column`, NULL when missing."""

    def kind(self, column: str, keys: tuple[str, ...]) -> str:
        """One of n/b/t/a/o/x (see `nbtrack.store.query.kind_of`), NULL for null or missing."""

    def elements(self, column: str, keys: tuple[str, ...]) -> tuple[str, str, str]:
        """A FROM clause over the array's elements, and the expressions of an element's kind and value."""

    def all_elements(self, column: str) -> tuple[str, str, str]:
        """`elements` of the JSON array `column` itself."""

    def typed(self, value: str, want: str) -> str:
        """`value` as a number (``n``), boolean as 1/0 (``b``) or text (``t``), for comparing with a literal."""

    def instr(self, value: str, needle: str) -> str: ...

    def startswith(self, value: str, prefix: str) -> str: ...

    def endswith(self, value: str, suffix: str) -> str: ...

    def order_terms(self, value: str, direction: str) -> list[str]:
        """ORDER BY terms that sort `value` within its sort class (numbers, text, other)."""


class Compiler:
    """Turns a query tree into a WHERE clause and an ORDER BY list for the ``runs`` table.

    `state` and `duration` are what readers see: `crashed_ids` are running runs whose writer is gone (found by
    the backend before compiling), and `now` ends a running run's duration.
    """

    def __init__(self, dialect: JSONFunctions, now: float, crashed_ids: list[str]) -> None:
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
