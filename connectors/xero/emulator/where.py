"""The Xero emulator's query language: the ``where`` filter and the ``order`` sort of a GET."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.validation import Invalid

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CLAUSE = re.compile(
    r'^\s*([A-Za-z][A-Za-z0-9_.]*)(?:\.(ToLower|ToUpper)\(\))?\s*(==|!=|>=|<=|>|<)\s*'
    r'(?:"((?:[^"\\]|\\.)*)"|(null|true|false|-?\d+(?:\.\d+)?)|(DateTime\([^)]*\)))\s*$'
)


def get_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``Contact.ContactID``); None where the path runs out."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def compile_where(text: str) -> Callable[[dict[str, Any]], bool]:
    """A tiny subset of Xero's where grammar: ``A=="x" AND B!=null OR C>=1`` (AND binds tighter)."""
    alternatives = []
    for alt in re.split(r"\s+OR\s+|\s*\|\|\s*", text.strip()):
        clauses = []
        for part in re.split(r"\s+AND\s+|\s*&&\s*", alt):
            match = _CLAUSE.match(part)
            if not match:
                raise Invalid(f"Invalid where clause: {part.strip()!r}")
            path, fn, op, quoted, literal, dt = match.groups()
            if quoted is not None:
                wanted: Any = quoted.replace('\\"', '"')
            elif dt is not None:
                nums = [int(n) for n in re.findall(r"\d+", dt)]
                wanted = datetime(nums[0], nums[1], nums[2], tzinfo=UTC) if len(nums) >= 3 else None
            elif literal == "null":
                wanted = None
            elif literal in ("true", "false"):
                wanted = literal == "true"
            else:
                wanted = Decimal(str(literal))
            clauses.append((path, fn, op, wanted))
        alternatives.append(clauses)

    def test(obj: dict[str, Any]) -> bool:
        for clauses in alternatives:
            if all(_match(obj, *c) for c in clauses):
                return True
        return False

    return test


def _match(obj: dict[str, Any], path: str, fn: str | None, op: str, wanted: Any) -> bool:
    value = get_path(obj, path)
    if isinstance(value, str) and fn:
        value = value.lower() if fn == "ToLower" else value.upper()
    if op == "==":
        return bool(value == wanted)
    if op == "!=":
        return bool(value != wanted)
    if value is None or wanted is None:
        return False
    try:
        if op == ">":
            return bool(value > wanted)
        if op == "<":
            return bool(value < wanted)
        if op == ">=":
            return bool(value >= wanted)
        return bool(value <= wanted)
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
