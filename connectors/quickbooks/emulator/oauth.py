"""Intuit's OAuth side: the discovery document, the token endpoint (the shared
``connectors.emulation_grants.GrantServer`` with Intuit's policy: rotating refresh tokens, a
used one gets ``invalid_grant``, one-hour access tokens), the consent page ``/connect/oauth2``
and the revocation endpoint (``connectors.emulation_consent``) and ``/__emulator/oauth``."""

from __future__ import annotations

import secrets
from dataclasses import replace
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

DEFAULT_CLIENT_ID = "test-client-id"
DEFAULT_CLIENT_SECRET = "test-client-secret"
DEFAULT_REFRESH_TOKEN = "RT-initial"
REFRESH_TOKEN_LIFETIME = 8726400  # what Intuit reports as x_refresh_token_expires_in (101 days)
INTUIT = GrantPolicy(rotate=True, access_ttl=3600)


def _mint(kind: TokenKind) -> str:
    return "AT-" + secrets.token_urlsafe(24) if kind == "access" else "RT-" + secrets.token_urlsafe(18)


def _intuit_body(issued: Issued, request: TokenRequest) -> dict[str, Any]:
    return {**standard_body(issued, request), "token_type": "bearer",
            "x_refresh_token_expires_in": REFRESH_TOKEN_LIFETIME}


def grant_server(clock: EmulatorClock) -> GrantServer:
    """A fresh token endpoint holding the default refresh token."""
    server = GrantServer(clock, {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}, policy=INTUIT, mint=_mint,
                         body=_intuit_body)
    server.issue_refresh_token(DEFAULT_REFRESH_TOKEN)
    return server


class OAuthMixin:
    oauth: GrantServer
    realms: dict[str, Any]

    def add_oauth_routes(self, router: web.UrlDispatcher, control: str) -> None:
        # Intuit's consent (appcenter.intuit.com/connect/oauth2) redirects back with the company
        # the person picked as realmId; the emulator's first company is that one.
        self.consent = Consent("QuickBooks", "/connect/oauth2", "/oauth2/v1/tokens/revoke",
                               grants=lambda: self.oauth,
                               callback_extra=lambda: {"realmId": next(iter(self.realms))},
                               required_scope="com.intuit.quickbooks.accounting")
        self.consent.add_routes(router)
        router.add_get("/.well-known/openid_configuration", self._discovery)
        router.add_post("/oauth2/v1/tokens/bearer", self._token)
        router.add_get(control + "oauth", self._oauth_stats)
        router.add_post(control + "oauth", self._oauth_control)

    async def _discovery(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return web.json_response({
            "issuer": "https://oauth.platform.intuit.com/op/v1",
            "authorization_endpoint": base + "/connect/oauth2",
            "token_endpoint": base + "/oauth2/v1/tokens/bearer",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
            "revocation_endpoint": base + "/oauth2/v1/tokens/revoke",
            "jwks_uri": base + "/op/v1/jwks"})

    async def _token(self, request: web.Request) -> web.Response:
        return await self.oauth.handle(request)  # the server of the moment: a reset replaces it

    async def _oauth_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.oauth_stats())

    def oauth_stats(self) -> dict[str, int]:
        return self.oauth.stats()

    async def _oauth_control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.oauth_control(**body)
        return web.json_response(self.oauth_stats())

    def oauth_control(self, access_ttl: int | None = None, expire_access_tokens: bool = False,
                      revoke_refresh_tokens: bool = False, refresh_tokens: list[str] | None = None,
                      access_tokens: list[str] | None = None) -> None:
        if access_ttl is not None:
            self.oauth.policy = replace(self.oauth.policy, access_ttl=int(access_ttl))
        if expire_access_tokens:
            self.oauth.expire_access_tokens()
        if revoke_refresh_tokens:
            self.oauth.revoke_all()
        for token in refresh_tokens or []:
            self.oauth.issue_refresh_token(token)
        for token in access_tokens or []:
            self.oauth.issue_access_token(token)

