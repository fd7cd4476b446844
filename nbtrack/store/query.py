"""The ``where`` and ``order_by`` language of `nbtrack.runs`, ``nbtrack ls`` and the compare widget's filter.

    config.lr < 0.01 and summary.val_accuracy > 0.9 and state == 'finished' and 'baseline' in tags

Fields: ``config.<key>`` and ``summary.<key>`` (nested keys with dots; keys with other characters quoted:
``summary."batch/loss"`` also works as ``summary.batch/loss``), and ``state``, ``name``, ``id``, ``project``,
``host``, ``notes``, ``tags``, ``created``, ``ended``, ``duration`` (seconds). ``created > '2026-11-01'`` takes
ISO dates. Operators: ``== != < <= > >=``, ``in`` / ``not in`` (a list, or an element of a list or text field),
``contains``, ``startswith``, ``endswith``, ``is null`` / ``is not null``, ``and``, ``or``, ``not``, parentheses.

Semantics (identical on every store backend, and in `evaluate` here): a comparison on a key that a run lacks,
or whose value is null or NaN, never matches (``not (...)`` inverts a whole match, so ``not config.lr < 0.1``
does match runs without ``lr``). ``==``, ``!=`` and ``in`` compare any values; a number never equals text or a
boolean. ``<``-style comparisons need a number or text on both sides. Sorting puts numbers (and booleans) first,
then text, then other values, then missing ones, in either direction.

Expressions are parsed here, never ``eval``-ed; backends compile the tree to SQL with bound parameters.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nbtrack.common.states import STATES
from nbtrack.errors import NbtrackError

TEXT_FIELDS = ("state", "name", "id", "project", "host", "notes")
NUMBER_FIELDS = ("created", "ended", "duration")
RUN_FIELDS = (*TEXT_FIELDS, "tags", *NUMBER_FIELDS)
SCOPES = ("config", "summary")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
MATCHES = ("contains", "startswith", "endswith")
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", *MATCHES}
NAN_MARKER = {"$float": "NaN"}  # how stores keep a NaN inside JSON (``1e999`` stands for infinity)


# Bounds that keep parsing and the SQL a store runs finite (SQLite refuses expressions over 1000 levels deep): far
# beyond what anyone writes by hand, and a clear error instead of a RecursionError for what a program generates.
MAX_DEPTH = 100  # nested parentheses and 'not'
MAX_CONDITIONS = 1000  # comparisons, plus each value of an 'in [...]' list


class QueryError(NbtrackError, ValueError):
    """A ``where`` or ``order_by`` expression that cannot be understood."""


# -- the tree ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    scope: str  # "config", "summary" or "run"
    path: tuple[str, ...]  # the key path; for "run", the field name

    @property
    def text(self) -> str:
        if self.scope == "run":
            return self.path[0]
        parts = [p if re.fullmatch(r"[A-Za-z_][\w/]*", p) else json.dumps(p) for p in self.path]
        return f"{self.scope}." + ".".join(parts)


Literal = float | int | str | bool | None


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of COMPARISONS
    value: Literal


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class Contains:
    """`value in field`: an element of a list field, or a substring of a text field."""

    field: Field
    value: Literal
    negate: bool = False


@dataclass(frozen=True)
class Match:
    field: Field
    op: str  # "startswith" or "endswith"
    value: str


@dataclass(frozen=True)
class IsNull:
    field: Field
    negate: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Compare | InList | Contains | Match | IsNull | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    field: Field
    descending: bool = False


# -- tokens -----------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<open_string>['"])
      | (?P<name>[A-Za-z_][\w/]*)
      | (?P<op>==|!=|<>|<=|>=|=|<|>|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    pos: int
    value: Any = None


def _error(source: str, pos: int, message: str) -> QueryError:
    start = 0
    if len(source) > 120:  # a long (generated) expression: the part around the position
        start = max(0, pos - 60)
        source = (
            ("..." if start else "")
            + source[start : start + 120]
            + ("..." if start + 120 < len(source) else "")
        )
        pos = pos - start + (3 if start else 0)
    caret = " " * pos + "^"
    return QueryError(f"{message}\n  {source}\n  {caret}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _unquote(source: str, token: str, pos: int) -> str:
    out, i, body = [], 0, token[1:-1]
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            raise _error(source, pos + 1 + i, f"Unknown escape '\\{nxt}' in a string")
    return "".join(out)


def _tokens(source: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise _error(source, pos, f"Unexpected character {source[pos]!r} at position {pos}")
        kind, text = m.lastgroup or "", m.group()
        if kind == "open_string":
            raise _error(
                source, pos, f"Unterminated string starting at position {pos}: add the closing {text}"
            )
        if kind == "number":
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(value, float) and not math.isfinite(value):
                raise _error(source, pos, f"Number {text} at position {pos} is out of range")
            tokens.append(_Token("number", text, pos, value))
        elif kind == "string":
            tokens.append(_Token("string", text, pos, _unquote(source, text, pos)))
        elif kind == "name":
            lowered = text.lower()
            if lowered in _KEYWORDS:
                tokens.append(_Token("keyword", lowered, pos, text))
            else:
                tokens.append(_Token("name", text, pos, text))
        elif kind == "op":
            tokens.append(_Token("op", {"=": "==", "<>": "!="}.get(text, text), pos))
        pos = m.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# -- parsing ----------------------------------------------------------------------------------------
_VALUE_HINT = "a value (a number, 'text', true, false or null)"


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.i = 0
        self.depth = 0  # parentheses and 'not' open around the current token
        self.conditions = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, expected: str, token: _Token | None = None) -> QueryError:
        token = token or self.token
        found = "the end of the expression" if token.kind == "end" else repr(token.text)
        return _error(self.source, token.pos, f"Expected {expected} at position {token.pos}, found {found}")

    def is_op(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def is_keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.text in words

    def expect_op(self, op: str, expected: str) -> None:
        if not self.is_op(op):
            raise self.fail(expected)
        self.take()

    # expression := or ; or := and ('or' and)* ; and := unary ('and' unary)* ; unary := 'not' unary | primary
    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("a condition such as config.lr < 0.01")
        node = self.or_()
        if self.token.kind != "end":
            raise self.fail("'and', 'or' or the end of the expression")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.is_keyword("or"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Node:
        parts = [self.unary()]
        while self.is_keyword("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        if not self.is_keyword("not") and not self.is_op("("):
            node = self.predicate()
            self.count(node)
            return node
        self.deeper()
        try:
            if self.take().text == "not":
                return Not(self.unary())
            node = self.or_()
            self.expect_op(")", "')' to close the '('")
            return node
        finally:
            self.depth -= 1

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(
                self.source,
                self.token.pos,
                f"The expression nests more than {MAX_DEPTH} parentheses and 'not's deep at position "
                f"{self.token.pos}. Write it flatter: 'a and b and c' needs no parentheses, and 'not not x' is x.",
            )

    def count(self, node: Node) -> None:
        self.conditions += len(node.values) if isinstance(node, InList) else 1
        if self.conditions > MAX_CONDITIONS:
            raise QueryError(
                f"The expression holds more than {MAX_CONDITIONS} conditions (comparisons and values of "
                "'in' lists). Select fewer runs at a time, or filter on a shared field (a tag, config.group) "
                "instead of listing runs one by one."
            )

    def predicate(self) -> Node:
        token = self.token
        if token.kind in ("number", "string") or self.is_keyword("true", "false", "null"):
            value = self.literal()
            negate = False
            if self.is_keyword("not"):
                self.take()
                negate = True
                if not self.is_keyword("in"):
                    raise self.fail("'in' after 'not'")
            if self.is_keyword("in"):
                self.take()
                return Contains(self.field(), value, negate)
            if self.is_op(*COMPARISONS):
                op = self.take().text
                field_token = self.token
                field = self.field()
                flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
                return self.comparison(field, flipped, value, field_token)
            raise self.fail(f"a comparison or 'in' after the value {token.text}")
        if token.kind != "name":
            raise self.fail("a field (config.<key>, summary.<key>, state, name, tags, created, ...) or '('")
        field = self.field()
        if self.is_op(*COMPARISONS):
            op = self.take().text
            value_token = self.token
            return self.comparison(field, op, self.literal(), value_token)
        if self.is_keyword("is"):
            self.take()
            negate = False
            if self.is_keyword("not"):
                self.take()
                negate = True
            if not self.is_keyword("null"):
                raise self.fail("'null' after 'is'" if not negate else "'null' after 'is not'")
            self.take()
            return IsNull(field, negate)
        negate = False
        if self.is_keyword("not"):
            self.take()
            negate = True
            if not self.is_keyword("in", "contains"):
                raise self.fail("'in' or 'contains' after 'not'")
        if self.is_keyword("in"):
            self.take()
            return InList(field, self.literal_list(), negate)
        if self.is_keyword(*MATCHES):
            word = self.take().text
            value_token = self.token
            value = self.literal()
            if word == "contains":
                return Contains(field, value, negate)
            if not isinstance(value, str):
                raise self.fail(f"text after '{word}'", value_token)
            return Match(field, word, value)
        raise self.fail(f"a comparison after {field.text} (==, !=, <, <=, >, >=, in, contains, is null)")

    def literal(self) -> Literal:
        token = self.token
        if token.kind in ("number", "string"):
            self.take()
            return token.value  # type: ignore[no-any-return]
        if self.is_keyword("true", "false", "null"):
            self.take()
            return {"true": True, "false": False, "null": None}[token.text]
        raise self.fail(_VALUE_HINT)

    def literal_list(self) -> tuple[Literal, ...]:
        if not self.is_op("[", "("):
            raise self.fail("a list of values after 'in', e.g. ['adam', 'sgd']")
        close = "]" if self.take().text == "[" else ")"
        values = [self.literal()]
        while self.is_op(","):
            self.take()
            values.append(self.literal())
        self.expect_op(close, f"',' or '{close}' in the list")
        return tuple(values)

    def field(self) -> Field:
        token = self.token
        if token.kind != "name":
            raise self.fail("a field (config.<key>, summary.<key>, state, name, tags, created, ...)")
        self.take()
        name = token.text
        if name in SCOPES:
            if not self.is_op("."):
                raise self.fail(f"'.' and a key after '{name}', e.g. {name}.lr")
            path = []
            while self.is_op("."):
                self.take()
                segment = self.token
                if segment.kind in ("name", "string") or segment.kind == "keyword":
                    self.take()
                    path.append(segment.value if segment.kind != "keyword" else segment.value)
                elif segment.kind == "number" and isinstance(segment.value, int) and segment.value >= 0:
                    self.take()
                    path.append(segment.text)
                else:
                    raise self.fail(f"a key after '{name}.'", segment)
            return Field(name, tuple(path))
        if name in RUN_FIELDS:
            if self.is_op("."):
                raise self.fail(f"a comparison after {name} ({name} has no keys)")
            return Field("run", (name,))
        raise _error(self.source, token.pos, _unknown_field_message(name, token.pos))

    def comparison(self, field: Field, op: str, value: Literal, token: _Token) -> Node:
        if value is None:
            if op in ("==", "!="):
                return IsNull(field, negate=op == "!=")
            raise self.fail(f"a number or text to compare with {op} (null has no order)", token)
        if isinstance(value, bool) and op not in ("==", "!="):
            raise self.fail(f"a number or text to compare with {op} (true/false have no order)", token)
        if field.scope == "run":
            value = self.run_field_value(field.path[0], value, token)
        return Compare(field, op, value)

    def run_field_value(self, name: str, value: Literal, token: _Token) -> Literal:
        if name in NUMBER_FIELDS:
            if isinstance(value, str) and name != "duration":
                try:
                    return parse_time(value)
                except ValueError:
                    raise _error(
                        self.source,
                        token.pos,
                        f"{name} compares with a date such as '2026-11-01' or '2026-11-01 14:30', or with "
                        f"seconds since 1970; {value!r} at position {token.pos} is neither",
                    ) from None
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                unit = "seconds" if name == "duration" else "a date such as '2026-11-01'"
                raise _error(self.source, token.pos, f"{name} compares with {unit}, not {value!r}")
        elif name == "tags":
            raise _error(
                self.source, token.pos, "tags is a list: use 'baseline' in tags, or 'baseline' not in tags"
            )
        elif not isinstance(value, str):
            raise _error(
                self.source, token.pos, f"{name} is text: compare it with a quoted string, e.g. {name} == 'x'"
            )
        elif name == "state" and value not in STATES:
            raise _error(
                self.source,
                token.pos,
                f"Unknown state {value!r}; states are {', '.join(STATES)}" + _did_you_mean(value, STATES),
            )
        return value


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f". Did you mean {close[0]}?" if close else ""


def _unknown_field_message(name: str, pos: int) -> str:
    fields = ", ".join(RUN_FIELDS)
    close = difflib.get_close_matches(name, [*RUN_FIELDS, *SCOPES], n=1, cutoff=0.6)
    if close and close[0] in SCOPES:
        hint = f" Did you mean {close[0]}.<key>?"
    elif close:
        hint = f" Did you mean {close[0]}?"
    else:
        hint = f" Did you mean config.{name} or summary.{name}?"
    return (
        f"Unknown field {name!r} at position {pos}. Fields are config.<key>, summary.<key>, {fields}.{hint}"
    )


def parse_time(text: str) -> float:
    """Seconds since 1970 for an ISO date or date-time; naive times are local."""
    value = dt.datetime.fromisoformat(text.strip())
    return value.timestamp()


def parse(where: str) -> Node:
    """The tree of a ``where`` expression. Raises `QueryError` naming the position and what was expected."""
    if not isinstance(where, str):
        raise QueryError(
            f'where must be a string expression such as "config.lr < 0.01", got {type(where).__name__}'
        )
    return _parse(where)


@functools.lru_cache(maxsize=256)
def _parse(where: str) -> Node:
    return _Parser(where).parse()


def parse_order(order_by: str | Sequence[str] | None) -> tuple[OrderKey, ...]:
    """``"-summary.val_accuracy, created"`` (or a list of such) -> sort keys; ``-`` means descending."""
    if order_by is None:
        return ()
    items = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    keys = []
    for item in items:
        if not isinstance(item, str):
            raise QueryError(f"order_by takes field names as strings, got {item!r}")
        text = item.strip()
        descending = text.startswith("-")
        text = text.lstrip("+-").strip()
        if not text:
            raise QueryError(f"order_by: empty field in {order_by!r}; e.g. order_by='-summary.val_accuracy'")
        parser = _Parser(text)
        field = parser.field()
        if parser.token.kind != "end":
            raise parser.fail("the end of the field name (separate fields with ',')")
        keys.append(OrderKey(field, descending))
    return tuple(keys)


def literal_text(value: Literal) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def unparse(node: Node) -> str:
    """Expression text that parses back to `node` (used to show a brush or a widget filter as a query)."""
    if isinstance(node, (And, Or)):
        word = " and " if isinstance(node, And) else " or "
        return word.join(f"({unparse(p)})" if isinstance(p, (And, Or)) else unparse(p) for p in node.parts)
    if isinstance(node, Not):
        inner = unparse(node.part)
        return f"not ({inner})"
    field = node.field.text
    if isinstance(node, Compare):
        return f"{field} {node.op} {literal_text(node.value)}"
    if isinstance(node, InList):
        values = ", ".join(literal_text(v) for v in node.values)
        return f"{field} {'not in' if node.negate else 'in'} [{values}]"
    if isinstance(node, Contains):
        return f"{literal_text(node.value)} {'not in' if node.negate else 'in'} {field}"
    if isinstance(node, Match):
        return f"{field} {node.op} {literal_text(node.value)}"
    return f"{field} is {'not ' if node.negate else ''}null"


def fields_of(node: Node | None) -> list[Field]:
    """Every field a tree mentions, in order."""
    if node is None:
        return []
    if isinstance(node, (And, Or)):
        return [f for part in node.parts for f in fields_of(part)]
    if isinstance(node, Not):
        return fields_of(node.part)
    return [node.field]


# -- evaluation in Python (the reference semantics; the compare widget filters with it) -------------
MISSING = object()  # what `field_value` returns for a key a run lacks


def kind_of(value: Any) -> str | None:
    """``n`` number, ``b`` boolean, ``t`` text, ``a`` list, ``o`` object, ``x`` NaN; None for null or missing."""
    if value is None or value is MISSING:
        return None
    if isinstance(value, bool):
        return "b"
    if isinstance(value, (int, float)):
        return "x" if isinstance(value, float) and math.isnan(value) else "n"
    if isinstance(value, str):
        return "t"
    if isinstance(value, (list, tuple)):
        return "a"
    return "o"


def field_value(record: Any, field: Field, now: float) -> Any:
    """The value of `field` in a `RunRecord` (``MISSING`` when absent)."""
    if field.scope == "run":
        name = field.path[0]
        if name == "duration":
            return run_duration(record, now)
        if name == "tags":
            return list(record.tags)
        return getattr(record, name)
    value: Any = record.config if field.scope == "config" else record.summary
    for key in field.path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def run_duration(record: Any, now: float) -> float:
    if record.ended is not None:
        end = record.ended
    else:
        end = record.heartbeat if record.state != "running" else now
    try:
        seconds = max(0.0, (end if end is not None else record.created) - record.created)
    except TypeError:  # a bad record's time held as text: no duration, which no comparison matches
        return math.nan
    return seconds if math.isfinite(seconds) and abs(record.created) < 1e15 else math.nan  # as RunRecord's


def _equal(value: Any, literal: Literal) -> bool:
    kind = kind_of(value)
    if isinstance(literal, bool):
        return kind == "b" and value == literal
    if isinstance(literal, (int, float)):
        return kind == "n" and value == literal
    return kind == "t" and value == literal


def evaluate(node: Node, record: Any, now: float) -> bool:
    """Whether `record` (a `RunRecord`) matches `node`, with the semantics every store backend implements."""
    if isinstance(node, And):
        return all(evaluate(p, record, now) for p in node.parts)
    if isinstance(node, Or):
        return any(evaluate(p, record, now) for p in node.parts)
    if isinstance(node, Not):
        return not evaluate(node.part, record, now)
    value = field_value(record, node.field, now)
    kind = kind_of(value)
    present = kind is not None and kind != "x"
    if isinstance(node, IsNull):
        return present or kind == "x" if node.negate else kind is None
    if isinstance(node, Compare):
        if node.op == "==":
            return _equal(value, node.value)
        if node.op == "!=":
            return present and not _equal(value, node.value)
        want = "t" if isinstance(node.value, str) else "n"
        if kind != want:
            return False
        return {
            "<": value < node.value,
            "<=": value <= node.value,
            ">": value > node.value,
            ">=": value >= node.value,
        }[node.op]
    if isinstance(node, InList):
        hit = any(_equal(value, v) for v in node.values)
        return present and not hit if node.negate else hit
    if isinstance(node, Contains):
        if kind == "a":
            hit = any(_equal(v, node.value) for v in value)
        elif kind == "t" and isinstance(node.value, str):
            hit = node.value in value
        else:
            hit = False
        return present and not hit if node.negate else hit
    if isinstance(node, Match):
        if kind != "t":
            return False
        return value.startswith(node.value) if node.op == "startswith" else value.endswith(node.value)
    raise TypeError(f"not a query node: {node!r}")


def sort_class(value: Any) -> int:
    """Numbers and booleans 0, text 1, other values (lists, objects, NaN) 2, missing or null 3."""
    kind = kind_of(value)
    return {"n": 0, "b": 0, "t": 1, None: 3}.get(kind, 2)


def _sort_value(value: Any) -> Any:
    kind = kind_of(value)
    if kind in ("a", "o", "x"):
        return dump_json(value)
    return value


def sort_records(records: Iterable[Any], order: Sequence[OrderKey], now: float) -> list[Any]:
    """`records` ordered by `order`, then newest first, then by id: the order every backend returns."""

    def compare(a: Any, b: Any) -> int:
        for key in order:
            u, v = field_value(a, key.field, now), field_value(b, key.field, now)
            cu, cv = sort_class(u), sort_class(v)
            if cu != cv:
                return -1 if cu < cv else 1
            if cu == 3:
                continue
            su, sv = _sort_value(u), _sort_value(v)
            if su != sv:
                result = -1 if su < sv else 1
                return -result if key.descending else result
        if a.created != b.created:
            return -1 if a.created > b.created else 1
        return -1 if a.id < b.id else (1 if a.id > b.id else 0)

    return sorted(records, key=functools.cmp_to_key(compare))


def select(
    records: Iterable[Any],
    where: str | Node | None = None,
    order_by: str | Sequence[str] | None = None,
    now: float | None = None,
) -> list[Any]:
    """Filter and sort records in Python (the compare widget's filter, and the reference for the backends)."""
    import time

    now = time.time() if now is None else now
    node = parse(where) if isinstance(where, str) else where
    matched = [r for r in records if node is None or evaluate(node, r, now)]
    return sort_records(matched, parse_order(order_by), now)


# -- JSON as stores keep it -------------------------------------------------------------------------
# ±inf is written as ±1e999, valid JSON that SQLite, PostgreSQL and Python all read back as ±inf; the encoder
# writes placeholders (NUL-delimited, so no real string collides) that are swapped for it afterwards.
_POS_INF, _NEG_INF = "\x00nbtrack+inf\x00", "\x00nbtrack-inf\x00"
_INF_TEXT = {json.dumps(_POS_INF): "1e999", json.dumps(_NEG_INF): "-1e999"}
_INF_PATTERN = re.compile("|".join(re.escape(k) for k in _INF_TEXT))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return dict(NAN_MARKER)
        return _POS_INF if value > 0 else _NEG_INF
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_json(value: Any) -> str:
    """Strict JSON for a store column: NaN as ``{"$float": "NaN"}``, ±inf as ``±1e999``, compact, UTF-8."""
    text = json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _INF_PATTERN.sub(lambda m: _INF_TEXT[m.group()], text) if "nbtrack" in text else text


def _restore(obj: dict[str, Any]) -> Any:
    return math.nan if obj == NAN_MARKER else obj


_DECODER = json.JSONDecoder(object_hook=_restore)  # one decoder: json.loads(object_hook=) builds one per call


def load_json(text: str) -> Any:
    """Read what `dump_json` wrote (and older columns holding bare NaN/Infinity)."""
    if text == "{}":
        return {}
    return _DECODER.decode(text)
