"""The Xero emulator's query language: the ``where`` filter and the ``order`` sort of a GET.

Xero evaluates ``where`` as a .NET Dynamic LINQ expression over the response's elements (Xero's
"HTTP Requests and Responses" page and its examples), so the emulator reads the forms that
grammar and Xero's documentation use:

* comparisons ``==`` (also ``=``), ``!=`` (also ``<>``), ``>``, ``>=``, ``<``, ``<=`` between an
  element path (``Contact.ContactID``) and a literal: a ``"string"`` (``\\"`` and ``\\\\``
  escapes), a number, ``true``/``false``, ``null``, ``Guid("…")``/``GUID("…")`` (dashed, undashed
  or any case: Guids compare as Guids), ``DateTime(2020,01,01[,h,m,s])`` (UTC);
* string methods ``Contains``, ``StartsWith``, ``EndsWith`` and the ``ToLower()``/``ToUpper()``/
  ``Trim()`` conversions; a method called on a missing (null) element is Xero's exception (the
  docs' advice: ``EmailAddress!=null&&EmailAddress.StartsWith("boom")``), a 400 here;
* ``AND``/``&&``, ``OR``/``||`` (AND binds tighter), ``NOT``/``!`` and parentheses.

Dynamic LINQ resolves names ignoring case, so element names, method names and the keywords do
here too (pyxero writes ``Name.contains("x")`` and ``Name.tolower()``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.xero import wire
from connectors.xero.emulator.validation import Invalid

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)'
                    r'|(?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!().,]))')
_COMPARE = frozenset({"==", "=", "!=", "<>", ">", ">=", "<", "<="})
_TESTS = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}
_CONVERSIONS: dict[str, Callable[[str], str]] = {"tolower": str.lower, "toupper": str.upper, "trim": str.strip}

Node = Callable[[dict[str, Any]], Any]


def get_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``Contact.ContactID``); None where the path runs out. A name
    matches whatever its case, as in Xero's filter."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
            continue
        folded = part.casefold()
        value = next((v for k, v in value.items() if k.casefold() == folded), None)
    return value


def as_guid(value: Any) -> uuid.UUID | None:
    """A Guid in any of the forms Xero reads (dashed, 32 hex digits, braces, any case), else None."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


@dataclass
class _Token:
    kind: str  # str, num, id, op, end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise Invalid(f"Invalid where clause: unexpected {text[pos:].strip()[:20]!r}")
        kind = match.lastgroup or "op"
        out.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


class _Parser:
    """Recursive descent over the tokens; each rule returns a function of one record."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "id" and token.text.lower() in words

    def expect(self, op: str) -> None:
        token = self.take()
        if token.text != op:
            raise self.error(token, f"expected {op!r}")

    def error(self, token: _Token, what: str) -> Invalid:
        near = token.text or "the end"
        return Invalid(f"Invalid where clause {self.text!r}: {what} at {near!r}")

    def parse(self) -> Node:
        node = self.or_()
        if self.peek().kind != "end":
            raise self.error(self.peek(), "unexpected text")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.peek().text == "||" or self.word("or"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda o: any(_truth(p(o)) for p in parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.peek().text == "&&" or self.word("and"):
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else (lambda o: all(_truth(p(o)) for p in parts))

    def not_(self) -> Node:
        if self.peek().text == "!" or self.word("not"):
            self.take()
            inner = self.not_()
            return lambda o: not _truth(inner(o))
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        if self.peek().kind == "op" and self.peek().text in _COMPARE:
            op = self.take().text
            right = self.operand()
            return lambda o: _compare(left(o), op, right(o))
        return left

    def operand(self) -> Node:
        token = self.take()
        if token.text == "(":
            inner = self.or_()
            self.expect(")")
            return inner
        if token.kind == "str":
            text = _unquote(token.text)
            return lambda _o: text
        if token.kind == "num":
            number = Decimal(token.text)
            return lambda _o: number
        if token.kind != "id":
            raise self.error(token, "expected a value or an element name")
        name = token.text.lower()
        if name in ("true", "false"):
            flag = name == "true"
            return lambda _o: flag
        if name == "null":
            return lambda _o: None
        if self.peek().text == "(" and name in ("guid", "datetime"):
            return self.constructor(name, token)
        return self.member(token.text)

    def constructor(self, name: str, token: _Token) -> Node:
        self.expect("(")
        args = [self.take()]
        while self.peek().text == ",":
            self.take()
            args.append(self.take())
        self.expect(")")
        if name == "guid":
            guid = as_guid(_unquote(args[0].text)) if len(args) == 1 and args[0].kind == "str" else None
            if guid is None:
                raise self.error(token, "Guid(...) takes one quoted Guid")
            return lambda _o: guid
        if not 3 <= len(args) <= 6 or any(a.kind != "num" for a in args):
            raise self.error(token, "DateTime(...) takes year, month, day[, hour, minute, second]")
        try:
            parts = [int(a.text) for a in args] + [0] * (6 - len(args))
            moment = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], tzinfo=UTC)
        except ValueError as exc:
            raise self.error(token, str(exc)) from None
        return lambda _o: moment

    def member(self, first: str) -> Node:
        path = [first]
        calls: list[tuple[str, Node | None]] = []
        while self.peek().text == ".":
            self.take()
            name = self.take()
            if name.kind != "id":
                raise self.error(name, "expected a name after '.'")
            if self.peek().text != "(":
                if calls:
                    raise self.error(name, "an element cannot follow a method call")
                path.append(name.text)
                continue
            self.take()
            method = name.text.lower()
            if method not in _TESTS and method not in _CONVERSIONS:
                raise self.error(name, f"unknown method {name.text}()")
            arg = None if self.peek().text == ")" else self.operand()
            self.expect(")")
            if (arg is None) != (method in _CONVERSIONS):
                raise self.error(name, f"wrong arguments to {name.text}()")
            calls.append((method, arg))
        dotted = ".".join(path)

        def value(obj: dict[str, Any]) -> Any:
            current = get_path(obj, dotted)
            for method, arg in calls:
                if current is None:
                    raise Invalid(f"Invalid where clause: {dotted} is null for some records; "
                                  f"test it first ({dotted}!=null&&...)")
                text = str(current)
                if arg is None:
                    current = _CONVERSIONS[method](text)
                else:
                    wanted = arg(obj)
                    current = wanted is not None and bool(_TESTS[method](text, str(wanted)))
            return current

        return value


def compile_where(text: str) -> Callable[[dict[str, Any]], bool]:
    """The test a record must pass for ``where=text``; Invalid if Xero would refuse the text."""
    node = _Parser(text).parse()
    return lambda obj: _truth(node(obj))


def _truth(value: Any) -> bool:
    return value is True


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
        left, right = as_guid(left) if left is not None else None, as_guid(right) if right is not None else None
    if op in ("==", "="):
        return bool(left == right)
    if op in ("!=", "<>"):
        return bool(left != right)
    if left is None or right is None:
        return False
    if isinstance(left, (int, Decimal)) and isinstance(right, str):
        return False
    try:
        if op == ">":
            return bool(left > right)
        if op == "<":
            return bool(left < right)
        if op == ">=":
            return bool(left >= right)
        return bool(left <= right)
    except TypeError:
        return False


def _epoch_seconds(moment: datetime) -> Decimal:
    """Exact seconds since the epoch: ``timestamp()`` without the float (a naive moment is
    local time, as there)."""
    micros = (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return Decimal(micros).scaleb(-6)


def order(items: list[dict[str, Any]], spec_text: str, id_field: str) -> list[dict[str, Any]]:
    """Sort by ``order`` (``"Name ASC, Date DESC"``; default ``UpdatedDateUTC``), ties by id."""
    keys = [part.strip().split() for part in spec_text.split(",") if part.strip()] or [["UpdatedDateUTC"]]

    def sort_key(value: Any) -> tuple[int, Any]:
        if value is None:
            return (0, "")
        if isinstance(value, datetime):  # with numbers, as before: one rank, exact seconds
            return (1, _epoch_seconds(value))
        if isinstance(value, (int, Decimal)):
            return (1, Decimal(value))
        return (2, str(value))

    ordered = sorted(items, key=lambda i: sort_key(i.get(id_field)))
    for spec in reversed(keys):
        desc = len(spec) > 1 and spec[1].upper() == "DESC"
        path = spec[0]

        def by_field(item: dict[str, Any], path: str = path) -> tuple[int, Any]:
            return sort_key(get_path(item, path))

        ordered.sort(key=by_field, reverse=desc)
    return ordered


def filtered(items: list[dict[str, Any]], where: str | None, if_modified_since: str | None, *,
             keep_unstamped: bool) -> list[dict[str, Any]]:
    """A collection's records narrowed as Xero narrows a GET: by ``where`` and by the
    ``If-Modified-Since`` header (records stamped at or after it). ``keep_unstamped``: records
    without an ``UpdatedDateUTC`` (settings lists such as Currencies) still pass. Raises
    ``Invalid`` or ``ValueError`` for a malformed filter or date (Xero's 400)."""
    if where is not None:
        test = compile_where(where)
        items = [i for i in items if test(i)]
    if if_modified_since:
        bound = wire.parse_http_date(if_modified_since)
        items = [i for i in items if (keep_unstamped and "UpdatedDateUTC" not in i)
                 or (i.get("UpdatedDateUTC") and i["UpdatedDateUTC"] >= bound)]
    return items
