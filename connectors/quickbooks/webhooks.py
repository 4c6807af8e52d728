"""QuickBooks webhook deliveries -> ``InboundEvent``s.

Signature: ``intuit-signature: base64(HMAC-SHA256(verifier token, raw body))``, compared in
constant time over the raw bytes (python-quickbooks' helper uses ``==`` on a decoded str).
Both payload formats are accepted, as Intuit is moving every app to CloudEvents:

* legacy ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id",
  "operation", "lastUpdated"}]}}]}``
* CloudEvents ``[{"specversion": "1.0", "id", "type": "qbo.invoice.created.v1", "time",
  "intuitentityid", "intuitaccountid", "data"}]``

Payloads carry ids only: each event names the QBO entity, id and operation; the engine fetches
the record (``fetch_changes``/``lookup``) afterwards. Events for other realms are dropped.
Every failure is a ``WebhookRejected`` with a 4xx status; nothing here can raise anything else.
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
from mapping.quickbooks import CANONICAL_TYPES

_OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge",
               "voided": "Void", "emptied": "Emptied"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify(body: bytes, headers: Mapping[str, str], verifier_token: str | None) -> None:
    if not verifier_token:
        raise WebhookRejected("webhook verifier token is not configured for this connection", 403)
    given = _header(headers, "intuit-signature")
    if not given:
        raise WebhookRejected("missing intuit-signature header", 401)
    try:
        signature = base64.b64decode(given.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("intuit-signature is not base64", 401) from None
    expected = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise WebhookRejected("intuit-signature does not match the body", 401)


def _event(realm: str, name: str, ext_id: str, operation: str, when: str, fmt: str,
           event_id: str | None = None) -> InboundEvent:
    payload = {"format": fmt, "realm_id": realm, "entity": name, "entity_type": CANONICAL_TYPES.get(name),
               "id": ext_id, "operation": operation, "last_updated": when}
    digest = hashlib.sha256(f"{realm}|{name}|{ext_id}|{operation}|{when}".encode()).hexdigest()[:32]
    return InboundEvent(event_id=event_id or f"qbo-{digest}", payload=payload,
                        event_type=f"qbo.{name.lower()}.{operation.lower()}")


def _legacy(data: Mapping[str, Any], realm_id: str | None) -> list[InboundEvent]:
    events = []
    notifications = data.get("eventNotifications")
    if not isinstance(notifications, list):
        raise WebhookRejected("eventNotifications must be a list", 400)
    for note in notifications:
        if not isinstance(note, Mapping):
            raise WebhookRejected("malformed event notification", 400)
        realm = str(note.get("realmId", ""))
        if realm_id and realm != realm_id:
            continue
        entities = (note.get("dataChangeEvent") or {}).get("entities")
        if not isinstance(entities, list):
            raise WebhookRejected("dataChangeEvent.entities must be a list", 400)
        for entity in entities:
            if not isinstance(entity, Mapping) or not entity.get("name") or not entity.get("id"):
                raise WebhookRejected("an entity change lacks name or id", 400)
            events.append(_event(realm, str(entity["name"]), str(entity["id"]),
                                 str(entity.get("operation", "Update")), str(entity.get("lastUpdated", "")),
                                 "legacy"))
    return events


def _cloudevents(items: list[Any], realm_id: str | None) -> list[InboundEvent]:
    events = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("specversion") != "1.0":
            raise WebhookRejected("not a CloudEvents 1.0 event", 400)
        parts = str(item.get("type", "")).split(".")
        if len(parts) < 3 or parts[0] != "qbo" or not item.get("intuitentityid") or not item.get("id"):
            raise WebhookRejected(f"unrecognised CloudEvents type {item.get('type')!r}", 400)
        realm = str(item.get("intuitaccountid", ""))
        if realm_id and realm != realm_id:
            continue
        lowered = parts[1]
        name = next((n for n in CANONICAL_TYPES if n.lower() == lowered), lowered.capitalize())
        operation = _OPERATIONS.get(parts[2], parts[2].capitalize())
        events.append(_event(realm, name, str(item["intuitentityid"]), operation, str(item.get("time", "")),
                             "cloudevents", event_id=f"qbo-ce-{item['id']}"))
    return events


def parse(body: bytes, headers: Mapping[str, str], verifier_token: str | None,
          realm_id: str | None = None) -> list[InboundEvent]:
    """Verify and decode one delivery. Raises ``WebhookRejected`` (4xx) for anything amiss."""
    verify(body, headers, verifier_token)
    data = webhook_json.loads(body)
    if isinstance(data, Mapping) and "eventNotifications" in data:
        return _legacy(data, realm_id)
    if isinstance(data, list):
        return _cloudevents(data, realm_id)
    if isinstance(data, Mapping) and data.get("specversion"):
        return _cloudevents([data], realm_id)
    raise WebhookRejected("unknown QuickBooks webhook format", 400)
