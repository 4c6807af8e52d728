"""Exact JSON for Salesforce bodies: decimals travel as JSON numbers, never through float.

Salesforce currency and number fields are JSON numbers. ``json`` cannot emit a ``Decimal`` as
a number, and a float would lose cents, so decimals are written through a placeholder that is
swapped for the number's exact text after encoding. Both the emulator and the connector use it.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MARK = "\u0000DEC:"
_PLACEHOLDER = re.compile(r'"\\u0000DEC:(-?[0-9]+(?:\.[0-9]+)?)"')


def _mark(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return _MARK + format(value, "f")
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    if isinstance(value, float):
        raise TypeError("floats are not sent to Salesforce; use Decimal")
    return value


def dumps(value: Any) -> str:
    """JSON text with every ``Decimal`` as an exact JSON number."""
    return _PLACEHOLDER.sub(lambda m: m.group(1), json.dumps(_mark(value)))


def loads(text: str | bytes) -> Any:
    """JSON with numbers that have a fraction parsed as ``Decimal`` (exact)."""
    return json.loads(text, parse_float=Decimal)
