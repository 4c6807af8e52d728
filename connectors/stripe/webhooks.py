"""Stripe webhook verification: signature, tolerance, and a clear rejection for bad input.

Implements Stripe's documented scheme (``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``,
``hex(HMAC_SHA256(secret, f"{t}.{raw_body}"))``, 300 s tolerance) with ``now`` passed in, so the
hub's clock (and tests) decide what "stale" means. Anything wrong becomes ``WebhookRejected``
with a 400, never an exception that would turn into a 5xx. Replays (the same event id delivered
again) are not an error here: the inbox stores each event id once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from connectors import webhook_json
from connectors.base import InboundEvent, WebhookRejected

TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1_000_000


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookRejected("Stripe-Signature timestamp is not a number", 400) from None
        elif key == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise WebhookRejected("Stripe-Signature header lacks t= or v1=", 400)
    return timestamp, signatures


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> list[InboundEvent]:
    """Verified events of one delivery (Stripe sends one event per request)."""
    if not secret:
        raise WebhookRejected("no webhook secret configured for this connection", 400)
    if not isinstance(body, bytes | bytearray) or len(body) > MAX_BODY_BYTES:
        raise WebhookRejected("webhook body missing or too large", 400)
    header = _header(headers, "Stripe-Signature")
    if not header:
        raise WebhookRejected("missing Stripe-Signature header", 400)
    timestamp, signatures = _parse_signature(header)
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + bytes(body), hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, sig) for sig in signatures):
        raise WebhookRejected("signature does not match the body (tampered, or wrong secret)", 400)
    if timestamp < now - tolerance:
        raise WebhookRejected(f"timestamp is older than {tolerance} s (stale or replayed delivery)", 400)
    payload: Any = webhook_json.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) \
            or payload.get("object") != "event":
        raise WebhookRejected("webhook body is not a Stripe event", 400)
    return [InboundEvent(event_id=payload["id"], payload=payload, event_type=str(payload.get("type", "")))]


def webhook_events() -> list[str]:
    """Every event type the connector reads (each stream's ``event_types``): the one list a
    webhook endpoint is registered with (``hub setup webhooks``)."""
    from connectors.stripe.streams import STREAMS  # streams imports the SDK; keep verify() light

    return sorted({e for stream in STREAMS.values() for e in stream.event_types})


def secret_key(connection: str) -> str:
    """The state store's credentials row holding the endpoint's signing secret, encrypted, when
    ``hub setup webhooks`` created it (``{"webhook_secret": "whsec_…", "endpoint_id": "we_…"}``)."""
    return f"webhook:{connection}"
