"""OAuth for one QuickBooks connection: the token call through intuit-oauth's ``AuthClient``.

Rotation itself — refresh ahead of expiry under the credentials lock, adopting another
process's refresh, saving the rotated refresh token before use, ``needs_reauth`` on
``invalid_grant`` in the same transaction — is ``connectors/oauth.py``'s, as for Xero and
Salesforce. What is QuickBooks' own: the discovery document (fetched on the first refresh, not
at start-up), the token endpoint override for the emulator, and reading Intuit's error bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError

from connectors.base import AuthError, RetryableError
from connectors.oauth import Grant, GrantRefused, TokenRotation
from state.store import StateStore

INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


class TokenManager(TokenRotation):
    """``TokenRotation`` with Intuit's token call; ``close`` releases the AuthClient."""

    def __init__(self, *, name: str, store: StateStore, client_id: str, client_secret: str,
                 discovery_url: str, token_url: str | None, initial_refresh_token: str | None,
                 mount: Callable[[requests.Session], None], now: Callable[[], datetime],
                 skew_seconds: float, system: str = "quickbooks",
                 after_save: Callable[[], None] | None = None) -> None:
        super().__init__(name=name, system=system, vendor="QuickBooks", store=store, exchange=self._exchange,
                         initial_refresh_token=initial_refresh_token, now=now, skew_seconds=skew_seconds,
                         after_save=after_save)
        self._client_id = client_id
        self._client_secret = client_secret
        self._discovery_url = discovery_url
        self._token_url = token_url
        self._mount = mount
        self._auth: AuthClient | None = None

    def close(self) -> None:
        if self._auth is not None:
            self._auth.close()
            self._auth = None

    def _client(self) -> AuthClient:
        if self._auth is None:
            # AuthClient GETs the discovery document in its constructor; deferred to the first
            # refresh so start-up makes no network call.
            try:
                auth = AuthClient(client_id=self._client_id, client_secret=self._client_secret,
                                  redirect_uri="http://localhost/callback", environment=self._discovery_url)
            except (AuthClientError, requests.RequestException, ValueError) as exc:
                raise RetryableError(f"OAuth discovery document unavailable ({type(exc).__name__})",
                                     system=self.name) from None
            self._mount(auth)
            if self._token_url and self._token_url != INTUIT_TOKEN_URL:
                auth.token_endpoint = self._token_url
            self._auth = auth
        return self._auth

    def _exchange(self, refresh_token: str) -> Grant:
        auth = self._client()
        try:
            auth.refresh(refresh_token=refresh_token)
        except AuthClientError as exc:
            error = _oauth_error(exc.content)
            if error == "invalid_grant":
                raise GrantRefused("refresh token refused (invalid_grant); a person must reconnect QuickBooks") \
                    from None
            if exc.status_code in (400, 401, 403):
                raise AuthError(f"token endpoint refused the client ({error or exc.status_code})",
                                needs_reauth=True, system=self.name) from None
            raise RetryableError(f"token endpoint answered {exc.status_code}", system=self.name) from None
        except requests.RequestException as exc:
            raise RetryableError(f"token endpoint unreachable ({type(exc).__name__})", system=self.name) from None
        return Grant(access_token=str(auth.access_token), refresh_token=auth.refresh_token,
                     expires_in=int(auth.expires_in or 3600))


def _oauth_error(content: bytes | None) -> str | None:
    try:
        data = json.loads(content or b"{}")
    except (ValueError, TypeError):
        return None
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else None
