"""Xero webhook verification: ``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw body)).

Xero's intent-to-receive check sends empty deliveries, some correctly and some incorrectly
signed; the endpoint must answer 200 (empty body) to the first and 401 to the others. So a bad
signature is ``WebhookRejected(..., 401)``, a valid empty delivery is ``[]``, and malformed
input is a 4xx — never an exception that would become a 5xx.

Xero events carry ids only (no event id): the event id is a hash of the event's content, so a
redelivered event is stored once by the inbox's (system, event id) uniqueness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from connectors import webhook_json
from connectors.base import InboundEvent, WebhookRejected

MAX_BODY_BYTES = 1_000_000
CATEGORY_TO_ENTITY = {"CONTACT": "customer", "INVOICE": "invoice"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def signature_valid(body: bytes, signature: str | None, webhook_key: str) -> bool:
    if not signature or not webhook_key:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(webhook_key.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


def event_id(event: Mapping[str, Any]) -> str:
    parts = [str(event.get(k, "")) for k in ("tenantId", "eventCategory", "eventType", "resourceId",
                                              "eventDateUtc")]
    return "xero-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def parse_webhook(body: bytes, headers: Mapping[str, str], *, webhook_key: str,
                  tenant_id: str | None = None) -> list[InboundEvent]:
    """Verify and split a delivery into inbox events (payload: the event plus ``entity_type``)."""
    if not webhook_key:
        raise WebhookRejected("xero webhook_key is not configured", 401)
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected("webhook body too large", 413)
    if not signature_valid(body, _header(headers, "x-xero-signature"), webhook_key):
        raise WebhookRejected("invalid x-xero-signature", 401)
    payload = webhook_json.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("events", []), list):
        raise WebhookRejected("webhook body has no events list", 400)
    events: list[InboundEvent] = []
    for raw in payload.get("events") or []:
        if not isinstance(raw, dict) or not raw.get("resourceId") or not raw.get("eventCategory"):
            raise WebhookRejected("webhook event without resourceId/eventCategory", 400)
        if tenant_id and raw.get("tenantId") and raw["tenantId"] != tenant_id:
            continue  # another organisation's event (one app, several tenants)
        entity_type = CATEGORY_TO_ENTITY.get(str(raw["eventCategory"]))
        if entity_type is None:
            continue  # e.g. SUBSCRIPTION events: nothing the hub syncs
        events.append(InboundEvent(event_id(raw), {**raw, "entity_type": entity_type},
                                   f"{raw['eventCategory'].lower()}.{str(raw.get('eventType', '')).lower()}"))
    return events
