"""The QuickBooks query language, as the emulator must understand it.

Grammar (what python-quickbooks and hand-written queries send)::

    SELECT * | COUNT(*) | *, Sku | f1, f2 FROM Entity
      [WHERE cond [AND cond]...]
      [ORDER BY | ORDERBY field [ASC|DESC]]
      [STARTPOSITION n] [MAXRESULTS m]

    cond := path (= | != | < | > | <= | >=) value | path IN (v, ...) | path LIKE 'pat'

Strings are single-quoted with ``\\'`` escapes; paths may be nested (``MetaData.LastUpdatedTime``,
``CustomerRef``). Kept apart from the emulator so the parser can be tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:\\.|[^'\\])*')
      | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),*])
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """A query the service cannot parse (QueryParserError, code 4000)."""


@dataclass
class Condition:
    path: str
    op: str
    value: Any  # a scalar, or a list for IN


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    start: int = 1
    max_results: int = 100

    def mentions(self, path: str) -> bool:
        return any(c.path.lower() == path.lower() for c in self.where)


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"QueryParserError: Encountered \"{text[pos:pos + 10]}\" at column {pos + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _literal(kind: str, raw: str) -> Any:
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if kind == "num":
        return Decimal(raw)
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise QueryError(f"QueryParserError: expected a value, got {raw!r}")


def parse(text: str) -> Query:
    toks = _tokens(text)
    i = 0

    def peek(offset: int = 0) -> tuple[str, str]:
        return toks[i + offset] if i + offset < len(toks) else ("", "")

    def word(value: str, offset: int = 0) -> bool:
        kind, raw = peek(offset)
        return kind == "word" and raw.upper() == value

    if not word("SELECT"):
        raise QueryError("QueryParserError: a query starts with SELECT")
    i += 1
    count = False
    if word("COUNT") and peek(1)[1] == "(":
        count = True
    while i < len(toks) and not word("FROM"):
        i += 1
    if not word("FROM") or peek(1)[0] != "word":
        raise QueryError("QueryParserError: expected FROM <Entity>")
    query = Query(entity=peek(1)[1], count=count)
    i += 2
    if word("WHERE"):
        i += 1
        while True:
            kind, path = peek()
            if kind != "word":
                raise QueryError(f"QueryParserError: expected a field name, got {path!r}")
            i += 1
            if word("IN"):
                i += 1
                if peek()[1] != "(":
                    raise QueryError("QueryParserError: IN needs a parenthesised list")
                i += 1
                values = []
                while peek()[1] != ")":
                    if peek()[0] == "":
                        raise QueryError("QueryParserError: unclosed IN list")
                    if peek()[1] != ",":
                        values.append(_literal(*peek()))
                    i += 1
                i += 1
                query.where.append(Condition(path, "IN", values))
            elif word("LIKE"):
                i += 1
                query.where.append(Condition(path, "LIKE", _literal(*peek())))
                i += 1
            else:
                kind, op = peek()
                if kind != "op":
                    raise QueryError(f"QueryParserError: expected an operator after {path}")
                i += 1
                query.where.append(Condition(path, "!=" if op == "<>" else op, _literal(*peek())))
                i += 1
            if word("AND"):
                i += 1
                continue
            break
    if word("ORDERBY") or (word("ORDER") and word("BY", 1)):
        i += 1 if word("ORDERBY") else 2
        query.order_by = peek()[1]
        i += 1
        if word("DESC") or word("ASC"):
            query.descending = word("DESC")
            i += 1
    for _ in range(2):
        if word("STARTPOSITION"):
            query.start = max(1, int(peek(1)[1]))
            i += 2
        elif word("MAXRESULTS"):
            query.max_results = min(1000, max(0, int(peek(1)[1])))
            i += 2
    if i < len(toks):
        raise QueryError(f"QueryParserError: unexpected {peek()[1]!r}")
    return query


# --------------------------------------------------------------------------- evaluation


def value_at(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; a ``*Ref`` compares by its ``value``."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        current = current.get(key) if key is not None else None
    if isinstance(current, Mapping) and "value" in current:
        return current["value"]
    if isinstance(current, Mapping) and "Address" in current:
        return current["Address"]
    return current


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 19 or value[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Coerce both sides to one comparable type: datetimes, numbers, booleans, then text."""
    if isinstance(right, bool) or isinstance(left, bool):
        return str(left).lower(), str(right).lower()
    ldt, rdt = _as_datetime(left), _as_datetime(right)
    if ldt is not None and rdt is not None:
        return ldt, rdt
    try:
        return Decimal(str(left)), Decimal(str(right))
    except (InvalidOperation, ValueError):
        return str(left).lower(), str(right).lower()


def _like(value: Any, pattern: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, str(value or ""), re.IGNORECASE | re.DOTALL) is not None


def matches(obj: Mapping[str, Any], cond: Condition) -> bool:
    actual = value_at(obj, cond.path)
    if cond.op == "LIKE":
        return _like(actual, str(cond.value))
    if actual is None:
        return False
    if cond.op == "IN":
        return any(_comparable(actual, v)[0] == _comparable(actual, v)[1] for v in cond.value)
    left, right = _comparable(actual, cond.value)
    try:
        return bool({"=": left == right, "!=": left != right, "<": left < right, ">": left > right,
                     "<=": left <= right, ">=": left >= right}[cond.op])
    except TypeError:
        return False


def sort_key(obj: Mapping[str, Any], path: str) -> tuple[int, Any]:
    value = value_at(obj, path)
    dt = _as_datetime(value)
    if dt is not None:
        return (1, dt.timestamp())
    try:
        return (0, Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return (2, str(value or "").lower())
