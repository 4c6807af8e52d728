"""What a verified webhook event must be before the inbox stores it, for every system alike.

The connectors verify signatures and shapes; this checks what the database would otherwise
refuse with an error (a 500): an event id or type longer than its inbox column (the sizes come
from the schema), a NUL in any string or key (PostgreSQL text holds none), a string that is not
valid Unicode (a lone surrogate cannot be encoded), a number that is not finite (no JSON column
takes NaN or Infinity). Each is a ``WebhookRejected`` (400) naming the reason. It also removes
the fields vendors document as secret, so the inbox never holds them in clear.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import InboundEvent, WebhookRejected
from connectors.secret_fields import SECRET_FIELDS as SECRET_FIELDS  # re-exported: one list
from connectors.secret_fields import without_secrets as without_secrets
from state.queues import INBOX_TEXT_LIMITS

# Vendor payloads nest a few levels; past this, encoding the body for storage (and removing its
# secrets) would exhaust Python's recursion limit, a 500.
MAX_DEPTH = 64


def _bounded(label: str, value: str, column: str) -> None:
    limit = INBOX_TEXT_LIMITS[column]
    if len(value) > limit:
        raise WebhookRejected(f"{label} is longer than {limit} characters", 400)


def _text(where: str, value: str) -> None:
    if "\x00" in value:
        raise WebhookRejected(f"{where} holds a NUL character", 400)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookRejected(f"{where} is not valid Unicode (a lone surrogate)", 400) from None


# Leaves that need no check; exact types, so the common case costs no ABC isinstance.
_PLAIN = frozenset({int, bool, type(None)})


def _check_payload(payload: Mapping[str, Any]) -> None:
    """Every string, key and number of the payload; iterative, so depth costs no recursion.
    Strings and keys are gathered and checked together (one join, one encode: C speed) — a
    5,000-entity notification is 80,000 of them — and looked at one by one only to name a fault."""
    keys: list[str] = []
    strings: list[str] = []
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is str:
            strings.append(value)
        elif kind in _PLAIN:
            continue
        elif kind is dict or kind is list or isinstance(value, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise WebhookRejected(f"the payload nests deeper than {MAX_DEPTH} levels", 400)
            if isinstance(value, Mapping):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise WebhookRejected("the payload has a key that is not text", 400)
                    keys.append(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            strings.append(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise WebhookRejected("the payload holds a non-finite number (NaN or Infinity)", 400)
    for where, texts in (("a payload key", keys), ("a payload string", strings)):
        if not _all_clean("".join(texts)):
            for text in texts:
                _text(where, text)


def _all_clean(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_events(events: Sequence[InboundEvent]) -> None:
    """Refuse (``WebhookRejected``, 400) a delivery any of whose events the inbox cannot store."""
    for event in events:
        if not event.event_id:
            raise WebhookRejected("an event has an empty id", 400)
        _text("an event id", event.event_id)
        _bounded("an event id", event.event_id, "event_id")
        _text("an event type", event.event_type)
        _bounded("an event type", event.event_type, "event_type")
        _check_payload(event.payload)
