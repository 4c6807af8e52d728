"""OAuth for one QuickBooks connection: refresh ahead of expiry, rotating refresh tokens saved
before use, and a hard stop on ``invalid_grant``.

QuickBooks rotates the refresh token on refresh and refuses a used one, so losing a freshly
issued token (a crash after the token call but before saving) would lock the connection out
until a person re-authorises. The refresh therefore runs inside ONE state-store transaction::

    load_credentials(for_update=True)   # credentials lock: one refresh at a time, also across processes
    POST token endpoint                 # intuit-oauth AuthClient.refresh
    save_credentials(new tokens)        # encrypted
    COMMIT                              # before the new access token is used anywhere

A process that finds a still-valid access token in the store (another process refreshed) adopts
it without calling the token endpoint. ``invalid_grant`` marks the connection ``needs_reauth``
(committed) and every later call raises ``AuthError(needs_reauth=True)`` without touching the
token endpoint again, until a new refresh token is configured.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError

from connectors.base import AuthError, RetryableError
from state.store import StateStore

INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


def _fingerprint(token: str | None) -> str | None:
    """A non-reversible tag of a configured token (to notice a person re-authorised)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


class _InvalidGrant(Exception):
    pass


class TokenManager:
    """Hands out a valid access token for one connection; refreshes under the store's credentials lock."""

    def __init__(self, *, name: str, store: StateStore, client_id: str, client_secret: str,
                 discovery_url: str, token_url: str | None, initial_refresh_token: str | None,
                 mount: Callable[[requests.Session], None], system: str = "quickbooks",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 skew_seconds: float = 300.0,
                 after_save: Callable[[], None] | None = None) -> None:
        self.name = name
        self.system = system
        self._store = store
        self._client_id = client_id
        self._client_secret = client_secret
        self._discovery_url = discovery_url
        self._token_url = token_url
        self._initial = initial_refresh_token
        self._mount = mount
        self._now = now
        self._skew = timedelta(seconds=skew_seconds)
        self.after_save = after_save  # test hook: runs after the commit, before first use
        self._auth: AuthClient | None = None
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self.needs_reauth = False
        self.refreshes = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show tokens
        return f"TokenManager(name={self.name!r}, needs_reauth={self.needs_reauth})"

    # ------------------------------------------------------------------ public

    def access_token(self) -> str:
        """A token valid for at least the skew; refreshes (once, under the lock) if needed."""
        with self._lock:
            if self._valid(self._access, self._expires_at):
                assert self._access is not None
                return self._access
            self._refresh(stale=self._access)
            assert self._access is not None
            return self._access

    def refused(self, token: str) -> None:
        """The API answered 401 for ``token``: forget it so the next call refreshes."""
        with self._lock:
            if self._access == token:
                self._expires_at = None  # keep the value: the refresh must know which one is stale

    def close(self) -> None:
        if self._auth is not None:
            self._auth.close()
            self._auth = None

    # ------------------------------------------------------------------ internals

    def _valid(self, token: str | None, expires_at: datetime | None) -> bool:
        return bool(token) and expires_at is not None and expires_at - self._skew > self._now()

    def _refresh(self, stale: str | None) -> None:
        if self.needs_reauth:
            raise AuthError("QuickBooks needs re-authorisation (refresh token refused); reconnect the app",
                            needs_reauth=True, system=self.name)
        reauth: str | None = None
        fresh: dict[str, Any] | None = None
        with self._store.transaction() as tx:
            creds = tx.load_credentials(self.name, for_update=True) or {}
            state = tx.connection_state(self.name) or {}
            refused_seed = (state.get("details") or {}).get("refused_seed")
            configured_new = _fingerprint(self._initial) not in (None, creds.get("seed"), refused_seed)
            stored_expiry = _parse(creds.get("expires_at"))
            if state.get("status") == "needs_reauth" and not configured_new:
                reauth = str(state.get("reason") or "refresh token refused")
            elif creds.get("access_token") != stale and self._valid(creds.get("access_token"), stored_expiry) \
                    and not configured_new:
                fresh = creds  # another worker/process refreshed already: adopt, no token call
            else:
                refresh_token = self._initial if configured_new or not creds.get("refresh_token") \
                    else str(creds["refresh_token"])
                if not refresh_token:
                    reauth = "no refresh token: set connections.<name>.refresh_token from the OAuth consent flow"
                else:
                    try:
                        fresh = self._call_token_endpoint(refresh_token)
                    except _InvalidGrant:
                        reauth = "refresh token refused (invalid_grant); a person must reconnect QuickBooks"
                    else:
                        fresh["seed"] = _fingerprint(self._initial) if self._initial else creds.get("seed")
                        tx.save_credentials(self.name, fresh)
                        if state.get("status") == "needs_reauth":
                            tx.set_connection_state(self.name, "ok", reason="re-authorised")
            if reauth is not None:
                tx.set_connection_state(self.name, "needs_reauth", reason=reauth,
                                        details={"system": self.system, "alert": True,
                                                 "refused_seed": _fingerprint(self._initial)})
        # committed: the rotated refresh token is durable before the access token is used
        if reauth is not None:
            self.needs_reauth = True
            raise AuthError(f"QuickBooks needs re-authorisation: {reauth}", needs_reauth=True, system=self.name)
        assert fresh is not None
        if fresh is not creds:
            self.refreshes += 1
            if self.after_save is not None:
                self.after_save()
        self._access = str(fresh["access_token"])
        self._expires_at = _parse(fresh.get("expires_at"))

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

    def _call_token_endpoint(self, refresh_token: str) -> dict[str, Any]:
        auth = self._client()
        try:
            auth.refresh(refresh_token=refresh_token)
        except AuthClientError as exc:
            error = _oauth_error(exc.content)
            if error == "invalid_grant":
                raise _InvalidGrant() from None
            if exc.status_code in (400, 401, 403):
                raise AuthError(f"token endpoint refused the client ({error or exc.status_code})",
                                needs_reauth=True, system=self.name) from None
            raise RetryableError(f"token endpoint answered {exc.status_code}", system=self.name) from None
        except requests.RequestException as exc:
            raise RetryableError(f"token endpoint unreachable ({type(exc).__name__})", system=self.name) from None
        expires_in = int(auth.expires_in or 3600)
        return {"access_token": auth.access_token, "refresh_token": auth.refresh_token,
                "expires_at": (self._now() + timedelta(seconds=expires_in)).isoformat()}


def _oauth_error(content: bytes | None) -> str | None:
    try:
        data = json.loads(content or b"{}")
    except (ValueError, TypeError):
        return None
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
