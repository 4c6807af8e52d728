"""The Xero emulator's webhook deliveries: bodies signed ``x-xero-signature =
base64(HMAC-SHA256(webhook_key, body))``, sending the pending (or given) events, and Xero's
intent-to-receive check (one correctly and one incorrectly signed empty delivery)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from connectors.xero import wire

DEFAULT_WEBHOOK_KEY = "billhub-test-webhook-key"


class WebhooksMixin:
    webhook_key: str
    pending_events: list[dict[str, Any]]

    def sign(self, body: bytes, key: str | None = None) -> str:
        digest = hmac.new((key or self.webhook_key).encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def webhook_body(self, events: list[dict[str, Any]]) -> bytes:
        payload = {"events": events, "firstEventSequence": 1 if events else 0,
                   "lastEventSequence": len(events), "entropy": uuid.uuid4().hex.upper()[:20]}
        return wire.dumps(payload).encode()

    async def _post_webhook(self, url: str, body: bytes, valid: bool) -> int:
        signature = self.sign(body) if valid else self.sign(body, key="not-the-webhook-key")
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, data=body, headers={
                    "x-xero-signature": signature, "Content-Type": "application/json"}) as response:
                await response.read()
                return response.status

    async def _send_webhooks(self, request: web.Request) -> web.Response:
        body = await request.json()
        events = body.get("events")
        if events is None:
            events, self.pending_events = self.pending_events, []
        payload = self.webhook_body(list(events))
        try:
            status = await self._post_webhook(str(body["url"]), payload, bool(body.get("valid", True)))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"error": f"delivery failed: {exc}"}, status=502)
        return web.json_response({"status": status, "events": len(events)})

    async def _intent(self, request: web.Request) -> web.Response:
        """Xero's intent-to-receive: one good and one bad signature, expecting 200 then 401."""
        body = await request.json()
        url = str(body["url"])
        try:
            good = await self._post_webhook(url, self.webhook_body([]), True)
            bad = await self._post_webhook(url, self.webhook_body([]), False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"error": f"delivery failed: {exc}"}, status=502)
        return web.json_response({"valid_status": good, "invalid_status": bad,
                                  "passed": good == 200 and bad == 401})
