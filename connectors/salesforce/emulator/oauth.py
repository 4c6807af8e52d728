"""Salesforce's token endpoint, ``POST /services/oauth2/token``: the refresh_token grant, with
optional refresh-token rotation, issuing sessions (access tokens) that expire on the emulator
clock.

Kept apart from the REST API so the shared ``connectors.emulation_grants`` grant server can
take its place without touching the rest of the emulator.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from aiohttp import web

from connectors.emulation import EmulatorClock
from connectors.salesforce.emulator.wire import ORG_ID

DEFAULT_CLIENT_ID = "billhub-emulator-client"
DEFAULT_CLIENT_SECRET = "billhub-emulator-secret"
DEFAULT_REFRESH_TOKEN = "billhub-emulator-refresh"


class OAuthMixin:
    """Sessions and refresh tokens, and the endpoint that trades one for the other."""

    clock: EmulatorClock
    state_lock: threading.RLock
    clients: dict[str, str]  # client id -> secret
    initial_refresh_token: str
    default_ttl: int  # seconds a new session lives, until the control surface changes it

    def reset_grants(self) -> None:
        self.sessions: dict[str, datetime] = {}  # access token -> expiry
        self.refresh_tokens: set[str] = {self.initial_refresh_token}
        self.rotate_refresh_tokens = False
        self.session_ttl = timedelta(seconds=self.default_ttl)
        self.token_requests = 0

    def issue_session(self) -> str:
        """A fresh access token valid for ``session_ttl`` on the emulator clock."""
        with self.state_lock:
            token = f"{ORG_ID}!{secrets.token_urlsafe(32)}"
            self.sessions[token] = self.clock.now() + self.session_ttl
            return token

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self.state_lock:
            self.token_requests += 1
            grant = form.get("grant_type")
            if grant != "refresh_token":
                return web.json_response({"error": "unsupported_grant_type",
                                          "error_description": "grant type not supported"}, status=400)
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
            if self.clients.get(client_id) != secret:
                return web.json_response({"error": "invalid_client",
                                          "error_description": "invalid client credentials"}, status=400)
            refresh = str(form.get("refresh_token", ""))
            if refresh not in self.refresh_tokens:
                return web.json_response({"error": "invalid_grant",
                                          "error_description": "expired access/refresh token"}, status=400)
            token = self.issue_session()
            body = {"access_token": token, "signature": secrets.token_urlsafe(16),
                    "scope": "api refresh_token", "instance_url": f"https://{request.host}",
                    "id": f"https://{request.host}/id/{ORG_ID}/0055g000000EMULAT",
                    "token_type": "Bearer", "issued_at": str(int(self.clock.now().timestamp() * 1000))}
            if self.rotate_refresh_tokens:
                self.refresh_tokens.discard(refresh)
                new_refresh = secrets.token_urlsafe(24)
                self.refresh_tokens.add(new_refresh)
                body["refresh_token"] = new_refresh
            return web.json_response(body)
