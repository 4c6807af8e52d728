"""JSON with exact decimals: the one codec every vendor body, emulator reply and CLI output uses.

Ledger and CRM amounts are JSON numbers with a fraction (``"Amount": 99.95``). ``json`` reads
those as ``float`` and cannot write a ``Decimal`` as a number, and a float loses cents. So
``loads`` parses every number with a fraction as ``Decimal``, and ``dumps`` writes every
``Decimal`` as its exact text: each one travels through a string placeholder that is swapped for
the number after encoding. Nothing here ever converts an amount to ``float``; a ``float`` handed
to ``dumps`` is refused unless ``allow_float`` says the value is not money (a latency, a ratio).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# A per-process nonce in the placeholder, so no string a vendor sent can pass for one.
_NONCE = secrets.token_hex(6)
_MARK = f"\u0000{_NONCE}:"
_PLACEHOLDER = re.compile(r'"\\u0000' + _NONCE + r':(-?[0-9]+(?:\.[0-9]+)?)"')


def _exact(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    return _MARK + format(value, "f")


def _mark(value: Any, default: Callable[[Any], Any] | None, allow_float: bool) -> Any:
    if isinstance(value, Decimal):
        return _exact(value)
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: _mark(v, default, allow_float) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mark(v, default, allow_float) for v in value]
    if isinstance(value, float) and not allow_float:
        raise TypeError(f"a float ({value!r}) reached exact JSON: amounts must be Decimal or int")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if default is None:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return _mark(default(value), default, allow_float)


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None, allow_float: bool = False,
          indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON text with every ``Decimal`` as an exact JSON number.

    ``default`` turns other objects (datetimes, say) into JSON values, as in ``json.dumps``.
    """
    text = json.dumps(_mark(value, default, allow_float), indent=indent, sort_keys=sort_keys,
                      ensure_ascii=True)
    return _PLACEHOLDER.sub(lambda m: m.group(1), text)


def readable(value: Any) -> Any:
    """A ``default`` for output meant for people and scripts: ISO dates, anything else as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def loads(text: str | bytes) -> Any:
    """JSON with every number that has a fraction or exponent parsed as an exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)
