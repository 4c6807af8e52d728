"""Webhook deliveries signed with ``intuit-signature``, in the legacy ``eventNotifications``
and the CloudEvents formats, sent by ``POST /__emulator/webhook``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.emulation import EmulatorClock
from connectors.quickbooks.emulator.wire import DEFAULT_REALM

DEFAULT_VERIFIER_TOKEN = "test-verifier-token"


def sign(body: bytes, verifier_token: str) -> str:
    """``intuit-signature``: base64(HMAC-SHA256(verifier token, raw body))."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def webhook_body(fmt: str, realm: str, events: Iterable[Mapping[str, Any]], now: datetime) -> bytes:
    """A delivery in the legacy ``eventNotifications`` or the CloudEvents format."""
    events = list(events)
    if fmt == "cloudevents":
        out: list[dict[str, Any]] = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "//quickbooks.api.intuit.com",
                "type": f"qbo.{str(e['name']).lower()}.{_past(str(e.get('operation', 'Update')))}.v1",
                "datacontenttype": "application/json",
                "time": e.get("lastUpdated") or now.isoformat().replace("+00:00", "Z"),
                "intuitentityid": str(e["id"]), "intuitaccountid": realm, "data": {}}
               for e in events]
        return json.dumps(out).encode()
    entities = [{"name": e["name"], "id": str(e["id"]), "operation": e.get("operation", "Update"),
                 "lastUpdated": e.get("lastUpdated") or now.isoformat().replace("+00:00", "Z")}
                for e in events]
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": entities}}]}).encode()


def _past(operation: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted", "merge": "merged",
            "void": "voided"}.get(operation.lower(), operation.lower())


class WebhooksMixin:
    clock: EmulatorClock
    verifier_token: str

    async def _send_webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        realm = str(body.get("realm", DEFAULT_REALM))
        payload = webhook_body(str(body.get("format", "legacy")), realm, body.get("events", []), self.clock.now())
        signature = sign(payload, self.verifier_token)
        if body.get("bad_signature"):
            signature = sign(payload, self.verifier_token + "-wrong")
        headers = {"intuit-signature": signature, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session, session.post(
                str(body["url"]), data=payload, headers=headers) as response:
            text = await response.text()
        return web.json_response({"status": response.status, "body": text, "payload": payload.decode()})
