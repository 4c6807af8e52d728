"""The Xero emulator's identity server: ``POST /connect/token`` (refresh grant only) and the
grants it keeps, plus ``POST /__emulator/tokens`` to issue a grant directly.

Access tokens live 30 minutes; every refresh returns a new refresh token, and a used refresh
token keeps working for a 30-minute grace period (so a client that lost the response can retry)
and is refused afterwards. Kept apart from the API so a shared grant server can replace it.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from connectors.emulation import EmulatorClock
from connectors.xero.emulator.store import Tenant

ACCESS_TTL = 1800
REFRESH_GRACE = timedelta(minutes=30)
REFRESH_UNUSED_TTL = timedelta(days=60)
DEFAULT_CLIENT_ID = "billhub-test-client"
DEFAULT_CLIENT_SECRET = "billhub-test-secret"
DEFAULT_REFRESH_TOKEN = "rt-initial"
DEFAULT_SCOPE = "offline_access accounting.transactions accounting.contacts"


@dataclass
class RefreshGrant:
    client_id: str
    tenants: list[str]
    issued_at: datetime
    used_at: datetime | None = None


class OAuthMixin:
    clock: EmulatorClock
    lock: asyncio.Lock
    client_id: str
    client_secret: str
    tenants: dict[str, Tenant]

    def reset_grants(self) -> None:
        self.refresh_grants: dict[str, RefreshGrant] = {}
        # access token -> (expiry, tenant ids it may use)
        self.access_tokens: dict[str, tuple[datetime, list[str]]] = {}
        self.refresh_refusals = 0
        self.issue_refresh_token(DEFAULT_REFRESH_TOKEN)

    def issue_refresh_token(self, token: str, tenants: list[str] | None = None) -> None:
        self.refresh_grants[token] = RefreshGrant(self.client_id, tenants or list(self.tenants),
                                                  self.clock.now())

    def issue_access_token(self, token: str, tenants: list[str] | None = None) -> None:
        self.access_tokens[token] = (self.clock.now() + timedelta(seconds=ACCESS_TTL),
                                     tenants or list(self.tenants))

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        secret = str(form.get("client_secret", ""))
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return web.json_response({"error": "invalid_client"}, status=400)
        if client_id != self.client_id or secret != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=400)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        async with self.lock:
            token = str(form.get("refresh_token", ""))
            grant = self.refresh_grants.get(token)
            now = self.clock.now()
            if (grant is None or (grant.used_at is not None and now - grant.used_at > REFRESH_GRACE)
                    or now - grant.issued_at > REFRESH_UNUSED_TTL):
                self.refresh_refusals += 1
                return web.json_response({"error": "invalid_grant"}, status=400)
            if grant.used_at is None:
                grant.used_at = now
            access = "at-" + uuid.uuid4().hex
            refresh = "rt-" + uuid.uuid4().hex
            self.access_tokens[access] = (now + timedelta(seconds=ACCESS_TTL), list(grant.tenants))
            self.refresh_grants[refresh] = RefreshGrant(grant.client_id, list(grant.tenants), now)
        scope = str(form.get("scope") or DEFAULT_SCOPE)
        return web.json_response({"id_token": None, "access_token": access, "expires_in": ACCESS_TTL,
                                  "token_type": "Bearer", "refresh_token": refresh, "scope": scope})

    async def _grant_tokens(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if body.get("refresh_token"):
            self.issue_refresh_token(str(body["refresh_token"]))
        if body.get("access_token"):
            self.issue_access_token(str(body["access_token"]))
        return web.json_response({"ok": True})
