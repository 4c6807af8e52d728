"""The one JSON parse of a webhook body, shared by every connector that takes webhooks.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` and reads ``1e999`` as infinity;
none of them is JSON, and PostgreSQL refuses them in a JSON column, so a delivery holding one would
be stored nowhere and answered 500. Here each is a ``WebhookRejected`` (400), as is any body that
is not JSON at all. Numbers keep ``json``'s types: webhook payloads carry ids, and the inbox
re-reads the objects they name, so no amount is taken from a webhook body.
"""

from __future__ import annotations

import json
import math
from typing import Any

from connectors.base import WebhookRejected


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text[:40]} is out of range")
    return value


def loads(body: bytes | str) -> Any:
    """The body's JSON value; ``WebhookRejected`` (400) when it is not JSON or holds a number
    that is not finite."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise WebhookRejected(f"webhook body holds a non-finite number: {exc}", 400) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRejected("webhook body is not JSON", 400) from None
