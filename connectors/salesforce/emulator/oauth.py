"""Salesforce's token endpoint, ``POST /services/oauth2/token``: the shared
``connectors.emulation_grants.GrantServer`` under Salesforce's policy, and the sessions (its
access tokens) that ``app`` checks on every REST call.

Salesforce's policy (shared/reference/api-facts.md §7): a session lives the session timeout
(``session_ttl_seconds``, 2 h by default) on the emulator clock; the refresh token stays valid
until revoked unless rotation is switched on, which makes each one single-use (no grace); the
grant type is checked before the client. The success body carries ``instance_url`` (the
request's host), ``id``, ``signature``, ``issued_at`` (ms) and ``scope`` but no ``expires_in``
(Salesforce states no expiry), and a ``refresh_token`` only when rotating.

The REST side touches this state from other threads (the test thread seeds and issues
sessions), so every grant-server call here runs under ``state_lock``.
"""

from __future__ import annotations

import secrets
import threading
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
    token_response,
)
from connectors.salesforce.emulator.wire import ORG_ID, USER_ID

DEFAULT_CLIENT_ID = "billhub-emulator-client"
DEFAULT_CLIENT_SECRET = "billhub-emulator-secret"
DEFAULT_REFRESH_TOKEN = "billhub-emulator-refresh"
ERROR_DESCRIPTIONS = {"invalid_grant": "expired access/refresh token",
                      "invalid_client": "invalid client credentials",
                      "unsupported_grant_type": "grant type not supported"}
OAUTH_CONTROL_KEYS = ("expire_sessions", "revoke_refresh_tokens", "session_ttl_seconds",
                      "rotate_refresh_tokens")


def _mint(kind: TokenKind) -> str:
    # A session id starts with the org id, as Salesforce's do.
    return f"{ORG_ID[:15]}!{secrets.token_urlsafe(32)}" if kind == "access" else secrets.token_urlsafe(24)


def _salesforce_body(issued: Issued, request: TokenRequest) -> dict[str, Any]:
    body = standard_body(issued, request)
    del body["expires_in"]  # Salesforce states none: a real session's timeout slides with use
    return {**body, "signature": secrets.token_urlsafe(16), "scope": "api refresh_token",
            "instance_url": f"https://{request.host}",
            "id": f"https://{request.host}/id/{ORG_ID}/{USER_ID}",
            "issued_at": str(int(issued.issued_at.timestamp() * 1000))}


class OAuthMixin:
    """The grant server of the moment (a reset replaces it) and the token-side control keys."""

    clock: EmulatorClock
    state_lock: threading.RLock
    clients: dict[str, str]  # client id -> secret
    initial_refresh_token: str
    default_ttl: int  # seconds a new session lives, until the control surface changes it
    oauth: GrantServer

    def reset_grants(self) -> None:
        policy = GrantPolicy(rotate=False, access_ttl=self.default_ttl, grant_type_first=True)
        self.oauth = GrantServer(self.clock, self.clients, policy=policy, mint=_mint,
                                 body=_salesforce_body, error_descriptions=ERROR_DESCRIPTIONS)
        self.oauth.issue_refresh_token(self.initial_refresh_token)

    def live_sessions(self) -> int:
        with self.state_lock:
            return sum(1 for token in self.oauth.access_tokens if self.oauth.check_access(token).ok)

    def issue_session(self) -> str:
        """A fresh access token valid for the session timeout on the emulator clock."""
        with self.state_lock:
            return self.oauth.issue_access_token()

    def oauth_control(self, expire_sessions: bool = False, revoke_refresh_tokens: bool = False,
                      session_ttl_seconds: int | None = None,
                      rotate_refresh_tokens: bool | None = None) -> None:
        """The token keys of ``POST /__emulator/salesforce``; a TTL or rotation change applies to
        tokens issued or presented afterwards."""
        with self.state_lock:
            if expire_sessions:
                self.oauth.expire_access_tokens()
            if revoke_refresh_tokens:
                self.oauth.revoke_all()
            if session_ttl_seconds is not None:
                self.oauth.policy = replace(self.oauth.policy, access_ttl=int(session_ttl_seconds))
            if rotate_refresh_tokens is not None:
                self.oauth.policy = replace(self.oauth.policy, rotate=bool(rotate_refresh_tokens))

    app: web.Application

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the app's own routes are in place (Emulator.__init__): the consent pages join them
        self.add_consent_routes(self.app.router)

    def add_consent_routes(self, router: web.UrlDispatcher) -> None:
        """``/services/oauth2/authorize`` (the web server flow, PKCE optional) and
        ``/services/oauth2/revoke``; the code's token answer names the org as ``instance_url``."""
        self.consent = Consent("Salesforce", "/services/oauth2/authorize", "/services/oauth2/revoke",
                               grants=lambda: self.oauth, lock=lambda: self.state_lock)
        self.consent.add_routes(router)

    async def _token(self, request: web.Request) -> web.Response:
        token_request = await TokenRequest.read(request)
        with self.state_lock:  # exchange never awaits; the lock keeps other threads out
            status, body = self.oauth.exchange(token_request)
        return token_response(status, body)
