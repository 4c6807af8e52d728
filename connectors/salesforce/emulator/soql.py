"""A SOQL subset for the emulator: parse once, evaluate against in-memory records.

Supported: ``SELECT`` fields (parent paths such as ``Account.Name``, ``COUNT()`` and child
sub-queries such as ``(SELECT Id FROM OpportunityLineItems)``) ``FROM`` one object, ``WHERE``
with AND / OR / NOT and parentheses, ``= != <> < <= > >=``, ``[NOT] IN (…)``, ``LIKE``, date and
datetime literals and the relative date literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n,
NEXT_N_DAYS:n, THIS_MONTH; ``ORDER BY`` (ASC/DESC, NULLS FIRST/LAST), ``LIMIT`` and ``OFFSET``.
String comparisons are case-insensitive, as in Salesforce. Anything else is a ``SoqlError``
that the emulator answers as ``MALFORMED_QUERY`` (or ``INVALID_FIELD`` / ``INVALID_TYPE``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any


class SoqlError(ValueError):
    def __init__(self, message: str, code: str = "MALFORMED_QUERY", token: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.token = token  # the name at fault, so the answer can point at it in the query

    def located(self, text: str) -> str:
        """Salesforce's form: the query, a caret under the name at fault, its row and column."""
        if self.token:
            found = re.search(r"(?<![\w.])" + re.escape(self.token) + r"(?!\w)", text, re.IGNORECASE)
            if found:
                column = found.start() + 1
                return f"\n{text}\n{' ' * found.start()}^\nERROR at Row:1:Column:{column}\n{self}"
        return str(self)


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?::\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.])
""", re.VERBOSE)

KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc",
            "desc", "nulls", "first", "last", "limit", "offset", "true", "false", "null", "count"}


@dataclass
class Tok:
    kind: str
    text: str

    @property
    def kw(self) -> str:
        return self.text.lower() if self.kind == "ident" else ""


def tokenize(text: str) -> list[Tok]:
    tokens: list[Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SoqlError(f"unexpected character {text[pos]!r} at position {pos}")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Tok(kind, match.group()))
    return tokens


# --------------------------------------------------------------------------- AST


@dataclass
class DateRange:
    """A relative date literal: [start, end) in UTC."""

    start: datetime
    end: datetime


@dataclass
class Cond:
    path: list[str]
    op: str  # = != < <= > >= in notin like
    value: Any


@dataclass
class BoolOp:
    op: str  # and or not
    items: list[Any]


@dataclass
class Query:
    sobject: str
    fields: list[list[str]] = field(default_factory=list)
    subqueries: list[Query] = field(default_factory=list)
    select_order: list[Any] = field(default_factory=list)  # list[str path] | Query, in order
    count: bool = False
    where: Any = None
    order: list[tuple[list[str], bool, bool]] = field(default_factory=list)  # path, desc, nulls_last
    limit: int | None = None
    offset: int = 0


class _Parser:
    def __init__(self, tokens: list[Tok], now: datetime) -> None:
        self.toks = tokens
        self.i = 0
        self.now = now

    def peek(self, ahead: int = 0) -> Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise SoqlError("unexpected end of query")
        self.i += 1
        return tok

    def accept_kw(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kw in words:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        tok = self.take()
        if tok.kw != word:
            raise SoqlError(f"unexpected token: '{tok.text}' (expected {word.upper()})")

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise SoqlError(f"unexpected token: '{tok.text}' (expected '{text}')")

    def path(self) -> list[str]:
        tok = self.take()
        if tok.kind != "ident":
            raise SoqlError(f"unexpected token: '{tok.text}'")
        parts = [tok.text]
        while self.peek() is not None and self.peek().text == ".":  # type: ignore[union-attr]
            self.take()
            nxt = self.take()
            if nxt.kind != "ident":
                raise SoqlError(f"unexpected token: '{nxt.text}'")
            parts.append(nxt.text)
        return parts

    def query(self) -> Query:
        self.expect_kw("select")
        q = Query("")
        while True:
            tok = self.peek()
            if tok is None:
                raise SoqlError("unexpected end of query")
            if tok.text == "(":
                self.take()
                sub = self.query()
                self.expect(")")
                q.subqueries.append(sub)
                q.select_order.append(sub)
            elif tok.kw == "count" and self.peek(1) is not None and self.peek(1).text == "(":  # type: ignore[union-attr]
                self.take()
                self.expect("(")
                self.expect(")")
                q.count = True
            else:
                p = self.path()
                q.fields.append(p)
                q.select_order.append(p)
            tok = self.peek()
            if tok is not None and tok.text == ",":
                self.take()
                continue
            break
        self.expect_kw("from")
        name = self.take()
        if name.kind != "ident":
            raise SoqlError(f"unexpected token: '{name.text}'")
        q.sobject = name.text
        if self.accept_kw("where"):
            q.where = self.or_expr()
        if self.accept_kw("order"):
            self.expect_kw("by")
            while True:
                p = self.path()
                desc = False
                if self.accept_kw("desc"):
                    desc = True
                else:
                    self.accept_kw("asc")
                nulls_last = desc
                if self.accept_kw("nulls"):
                    nulls_last = self.take().kw == "last"
                q.order.append((p, desc, nulls_last))
                if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                    self.take()
                    continue
                break
        if self.accept_kw("limit"):
            q.limit = self.integer()
        if self.accept_kw("offset"):
            q.offset = self.integer()
        return q

    def integer(self) -> int:
        tok = self.take()
        if tok.kind != "number" or not tok.text.isdigit():
            raise SoqlError(f"expected a whole number, got '{tok.text}'")
        return int(tok.text)

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.accept_kw("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", items)

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.accept_kw("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", items)

    def not_expr(self) -> Any:
        if self.accept_kw("not"):
            return BoolOp("not", [self.not_expr()])
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Cond:
        p = self.path()
        tok = self.take()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Cond(p, op, self.value())
        if tok.kw == "like":
            value = self.value()
            if not isinstance(value, str):
                raise SoqlError("LIKE needs a string")
            return Cond(p, "like", value)
        negate = False
        if tok.kw == "not":
            negate = True
            tok = self.take()
        if tok.kw == "in":
            self.expect("(")
            values = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                values.append(self.value())
            self.expect(")")
            return Cond(p, "notin" if negate else "in", values)
        raise SoqlError(f"unexpected token: '{tok.text}'")

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
                          tok.text[1:-1])
        if tok.kind == "number":
            return Decimal(tok.text)
        if tok.kind == "datetime":
            text = tok.text.replace("Z", "+00:00")
            if re.search(r"[+-]\d{4}$", text):
                text = text[:-2] + ":" + text[-2:]
            return datetime.fromisoformat(text).astimezone(UTC)
        if tok.kind == "date":
            return date.fromisoformat(tok.text)
        if tok.kind == "ident":
            word = tok.kw
            if word == "true":
                return True
            if word == "false":
                return False
            if word == "null":
                return None
            return self.date_literal(tok.text)
        raise SoqlError(f"unexpected token: '{tok.text}'")

    def date_literal(self, text: str) -> DateRange:
        name, _, num = text.upper().partition(":")
        today = datetime(self.now.year, self.now.month, self.now.day, tzinfo=UTC)
        day = timedelta(days=1)
        if name == "TODAY":
            return DateRange(today, today + day)
        if name == "YESTERDAY":
            return DateRange(today - day, today)
        if name == "TOMORROW":
            return DateRange(today + day, today + 2 * day)
        if name == "LAST_N_DAYS" and num:
            return DateRange(today - int(num) * day, today + day)
        if name == "NEXT_N_DAYS" and num:
            return DateRange(today + day, today + (int(num) + 1) * day)
        if name == "THIS_MONTH":
            start = today.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            return DateRange(start, end)
        raise SoqlError(f"unexpected token: '{text}'")


def parse(text: str, now: datetime) -> Query:
    parser = _Parser(tokenize(text), now)
    q = parser.query()
    if parser.peek() is not None:
        raise SoqlError(f"unexpected token: '{parser.peek().text}'")  # type: ignore[union-attr]
    return q


# --------------------------------------------------------------------------- evaluation


def _as_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return _as_datetime(value)


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge}


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("in", "notin"):
        hit = any(_compare(left, "=", r) for r in right)
        return hit if op == "in" else not hit
    if op == "like":
        if left is None:
            return False
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in right)
        return re.fullmatch(pattern, str(left), re.IGNORECASE | re.DOTALL) is not None
    if isinstance(right, DateRange):
        if left is None:
            return op == "!="
        value = _as_datetime(left)
        inside = bool(right.start <= value < right.end)
        return {"=": inside, "!=": not inside, "<": bool(value < right.start),
                "<=": bool(value < right.end), ">": bool(value >= right.end),
                ">=": bool(value >= right.start)}[op]
    if left is None or right is None:
        return {"=": left is right, "!=": left is not right}.get(op, False)
    a, b = _norm(left), _norm(right)
    try:
        return bool(_OPS[op](a, b))
    except TypeError as exc:
        raise SoqlError(f"cannot compare {left!r} with {right!r}", "INVALID_QUERY_FILTER_OPERATOR") from exc


def matches(where: Any, getter: Callable[[list[str]], Any]) -> bool:
    if where is None:
        return True
    if isinstance(where, BoolOp):
        if where.op == "and":
            return all(matches(w, getter) for w in where.items)
        if where.op == "or":
            return any(matches(w, getter) for w in where.items)
        return not matches(where.items[0], getter)
    return _compare(getter(where.path), where.op, where.value)


def sort_rows(rows: list[Any], order: list[tuple[list[str], bool, bool]],
              getter: Callable[[Any, list[str]], Any]) -> list[Any]:
    """Stable multi-key sort, applied from the last key to the first."""
    for path, desc, nulls_last in reversed(order):
        present = [r for r in rows if getter(r, path) is not None]
        missing = [r for r in rows if getter(r, path) is None]
        present.sort(key=lambda r, p=path: _norm(getter(r, p)), reverse=desc)  # type: ignore[misc]
        rows = present + missing if nulls_last else missing + present
    return rows
