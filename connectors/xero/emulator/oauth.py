"""The Xero emulator's identity server: ``POST /connect/token`` is the shared
``connectors.emulation_grants.GrantServer`` with Xero's policy, plus ``POST /__emulator/tokens``
to issue grants (or expire every access token) directly; ``app`` checks bearers with
``self.oauth.check_access``.

Xero's policy (shared/reference/api-facts.md): access tokens live 30 minutes; every refresh
returns a new refresh token, a used one keeps working for a 30-minute grace (a client that lost
the answer can retry) and a refresh token unused for 60 days dies. A grant's subject is the
tenant ids it may use; every token issued from it carries them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from connectors.emulation import EmulatorClock
from connectors.emulation_consent import Consent
from connectors.emulation_grants import (
    GrantPolicy,
    GrantServer,
    Issued,
    TokenKind,
    TokenRequest,
    standard_body,
)
from connectors.xero.emulator.store import Tenant

DEFAULT_CLIENT_ID = "billhub-test-client"
DEFAULT_CLIENT_SECRET = "billhub-test-secret"
DEFAULT_REFRESH_TOKEN = "rt-initial"
DEFAULT_SCOPE = "offline_access accounting.transactions accounting.contacts"
XERO = GrantPolicy(rotate=True, used_grace=timedelta(minutes=30), unused_ttl=timedelta(days=60),
                   access_ttl=1800)


def _mint(kind: TokenKind) -> str:
    return ("at-" if kind == "access" else "rt-") + uuid.uuid4().hex


def _xero_body(issued: Issued, request: TokenRequest) -> dict[str, Any]:
    # Xero echoes the requested scope; the SDK needs one back to refresh again.
    return {"id_token": None, **standard_body(issued, request),
            "scope": request.form.get("scope") or DEFAULT_SCOPE}


class OAuthMixin:
    clock: EmulatorClock
    client_id: str
    client_secret: str
    tenants: dict[str, Tenant]
    oauth: GrantServer

    def reset_grants(self) -> None:
        """A fresh grant server holding the default refresh token (for every tenant)."""
        self.oauth = GrantServer(self.clock, {self.client_id: self.client_secret}, policy=XERO,
                                 mint=_mint, body=_xero_body)
        self.issue_refresh_token(DEFAULT_REFRESH_TOKEN)

    def issue_refresh_token(self, token: str, tenants: list[str] | None = None) -> None:
        """A grant for ``tenants`` (default: every tenant there is now)."""
        self.oauth.issue_refresh_token(token, subject=tuple(tenants or self.tenants))

    def issue_access_token(self, token: str, tenants: list[str] | None = None) -> None:
        self.oauth.issue_access_token(token, subject=tuple(tenants or self.tenants))

    async def _token(self, request: web.Request) -> web.Response:
        return await self.oauth.handle(request)  # the server of the moment: a reset replaces it

    def add_consent_routes(self, router: web.UrlDispatcher) -> None:
        """login.xero.com's ``/identity/connect/authorize`` (PKCE S256 or a client secret) and
        identity.xero.com's ``/connect/revocation``; a consent covers every tenant of the
        organisation list (``GET /connections`` then lists them)."""
        self.consent = Consent("Xero", "/identity/connect/authorize", "/connect/revocation",
                               grants=lambda: self.oauth, subject=lambda: tuple(self.tenants))
        self.consent.add_routes(router)

    async def _grant_tokens(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if body.get("expire_access_tokens"):
            self.oauth.expire_access_tokens()
        if body.get("refresh_token"):
            self.issue_refresh_token(str(body["refresh_token"]))
        if body.get("access_token"):
            self.issue_access_token(str(body["access_token"]))
        return web.json_response({"ok": True})
