"""xero-python configured for the hub: base URLs, timeouts, urllib3 retries off, tokens kept
encrypted in the state store and refreshed one at a time, the rate limiter, the retry policy,
and the daily-quota pause.

Why each setting (api-facts.md §3):
* urllib3's default ``Retry`` sleeps for any ``Retry-After`` on GET/PUT — hours on a daily-limit
  429 — so ``connection_pool_kw["retries"] = False`` and the hub's RetryPolicy is the only retry
  layer.
* The SDK sets no timeouts; a pool-wide ``timeout`` covers every call including the token call,
  and ``_request_timeout`` is passed on API calls as well.
* Xero refresh tokens are single-use. The SDK refreshes on its own, unlocked; we never let it:
  the token getter hands it a token without expiry or refresh token, and ``TokenManager``
  refreshes under a thread lock plus the credentials lock (``load_credentials(
  for_update=True)``, BEGIN IMMEDIATE on SQLite), committing the rotated token before using it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import ApiException
from xero_python.identity import IdentityApi

from connectors.base import AuthError, ConnectorError, QuotaExhausted, RetryableError
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.xero import wire
from connectors.xero.errors import classify
from state.store import StateStore

SCOPE = ["offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings"]
REFRESH_MARGIN_SECONDS = 120  # refresh this long before expiry (the SDK's own buffer is 60 s)

# TokenApi's URLs are CLASS attributes (the SDK instantiates TokenApi internally), so they are
# process-global: we set them under this lock immediately before each refresh, which keeps two
# connections with different identity servers (an emulator and production) from crossing.
_TOKEN_URL_LOCK = threading.Lock()


class TokenManager:
    """Access/refresh tokens for one connection, persisted encrypted in the state store."""

    def __init__(self, *, name: str, store: StateStore, api_client: ApiClient, client_id: str,
                 client_secret: str, token_url: str, initial_refresh_token: str | None,
                 now: Callable[[], datetime]) -> None:
        self.name = name
        self.store = store
        self.api_client = api_client
        self._client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self._initial_refresh_token = initial_refresh_token
        self.now = now
        self._lock = threading.Lock()
        self._token: dict[str, Any] | None = None
        self.refreshes = 0
        # Test seam: runs after the new token is received and saved but before the commit,
        # so a test can simulate a crash in exactly that window.
        self.after_receive: Callable[[], None] | None = None

    def __repr__(self) -> str:  # never show tokens
        return f"TokenManager(name={self.name!r}, refreshes={self.refreshes})"

    # -- what the SDK sees -----------------------------------------------------------------

    def sdk_token(self) -> dict[str, Any]:
        """The SDK's getter: no expiry and no refresh token, so it never refreshes by itself."""
        token = self._token or {}
        return {"access_token": token.get("access_token", ""), "token_type": "Bearer",
                "expires_in": 1800, "scope": SCOPE}

    def sdk_save(self, _token: dict[str, Any]) -> None:
        """The SDK's saver; unused because the SDK never refreshes (see ``sdk_token``)."""

    # -- refresh -------------------------------------------------------------------------

    def _valid(self, token: dict[str, Any] | None) -> bool:
        if not token or not token.get("access_token"):
            return False
        return float(token.get("expires_at", 0)) - REFRESH_MARGIN_SECONDS > self.now().timestamp()

    def ensure_fresh(self) -> None:
        if not self._valid(self._token):
            self.refresh(stale=(self._token or {}).get("access_token"))

    def refresh(self, stale: str | None = None) -> None:
        """Refresh once per connection at a time (threads and processes); ``stale`` is the
        access token the caller found wanting — if the stored one differs and is valid, another
        worker already refreshed and we just adopt it."""
        with self._lock:
            refused: str | None = None
            with self.store.transaction() as tx:
                stored = tx.load_credentials(self.name, for_update=True)
                if stored and stored.get("access_token") != stale and self._valid(stored):
                    self._token = stored
                    return
                refresh_token = (stored or {}).get("refresh_token") or self._initial_refresh_token
                if not refresh_token:
                    refused = "no refresh token is stored or configured"
                else:
                    try:
                        new = self._call_token_endpoint(str(refresh_token))
                    except AuthError as exc:
                        refused = exc.message
                    else:
                        tx.save_credentials(self.name, new)
                        if self.after_receive is not None:
                            self.after_receive()
            if refused is not None:
                with self.store.transaction() as tx:
                    tx.set_connection_state(self.name, "needs_reauth", reason=refused)
                raise AuthError(f"Xero refresh refused: {refused}; re-authorise the connection",
                                needs_reauth=True, system=self.name, status=400)
            # Committed: only now is the rotated token used.
            self._token = new
            self.refreshes += 1

    def _call_token_endpoint(self, refresh_token: str) -> dict[str, Any]:
        with _TOKEN_URL_LOCK:
            TokenApi.refresh_token_url = self.token_url
            api = TokenApi(self.api_client, self._client_id, self._client_secret)
            try:
                answer = api.refresh_token(refresh_token, SCOPE)
            except ApiException as exc:
                if exc.status in (400, 401):
                    reason = "invalid_grant"
                    body = exc.body
                    if isinstance(body, bytes) and b"invalid_client" in body:
                        reason = "invalid_client"
                    raise AuthError(f"token endpoint answered {exc.status} ({reason})",
                                    system=self.name) from None
                raise classify(exc, system=self.name) from None
            except Exception as exc:  # network errors, odd bodies
                raise classify(exc, system=self.name) from None
        if not isinstance(answer, dict) or not answer.get("access_token") or not answer.get("refresh_token"):
            raise RetryableError("Xero token endpoint sent an unreadable answer", system=self.name)
        expires_in = float(answer.get("expires_in") or 1800)
        return {"access_token": str(answer["access_token"]), "refresh_token": str(answer["refresh_token"]),
                "expires_at": self.now().timestamp() + expires_in, "scope": SCOPE}


class XeroClient:
    """One tenant connection: the SDK APIs plus the hub's policies around every call."""

    def __init__(self, *, name: str, store: StateStore, tenant_id: str, client_id: str,
                 client_secret: str, api_base: str, identity_base: str, token_url: str,
                 refresh_token: str | None, timeout: float, policy: RetryPolicy,
                 limiter: RateLimiter, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.name = name
        self.store = store
        self.tenant_id = tenant_id
        self.policy = policy
        self.limiter = limiter
        self.now = now
        self.timeout = (min(10.0, timeout), timeout)
        self.budget: dict[str, Any] = {}
        self.calls = 0
        self.api_client = ApiClient(
            Configuration(oauth2_token=OAuth2Token(client_id=client_id, client_secret=client_secret)),
            pool_threads=1)
        pool_kw = self.api_client.rest_client.pool_manager.connection_pool_kw
        pool_kw["retries"] = False  # urllib3 must never sleep on Retry-After (see module doc)
        pool_kw["timeout"] = urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1])
        self.tokens = TokenManager(name=name, store=store, api_client=self.api_client,
                                   client_id=client_id, client_secret=client_secret,
                                   token_url=token_url, initial_refresh_token=refresh_token, now=now)
        self.api_client.oauth2_token_getter(self.tokens.sdk_token)
        self.api_client.oauth2_token_saver(self.tokens.sdk_save)
        self.accounting = AccountingApi(self.api_client, base_url=api_base.rstrip("/") + "/api.xro/2.0")
        self.identity = IdentityApi(self.api_client, base_url=identity_base.rstrip("/"))

    def __repr__(self) -> str:
        return f"XeroClient(name={self.name!r}, tenant_id={self.tenant_id!r})"

    # -- pause -----------------------------------------------------------------------------

    def paused_until(self) -> datetime | None:
        with self.store.transaction() as tx:
            state = tx.connection_state(self.name)
        if not state or state.get("status") != "paused":
            return None
        until = state.get("paused_until")
        return until if isinstance(until, datetime) and until > self.now() else None

    def _pause(self, exc: QuotaExhausted) -> None:
        with self.store.transaction() as tx:
            tx.set_connection_state(self.name, "paused", reason="Xero daily call limit reached",
                                    paused_until=exc.until, details={"problem": "day"})

    # -- calls -------------------------------------------------------------------------------

    def call(self, operation: str, **kwargs: Any) -> Any:
        """Run an AccountingApi operation under the retry policy; returns the JSON body (exact
        decimals). Raises only ``ConnectorError``s."""
        return self.policy.call(lambda: self._once(operation, kwargs))

    def _once(self, operation: str, kwargs: dict[str, Any]) -> Any:
        until = self.paused_until()
        if until is not None:
            raise QuotaExhausted(f"Xero daily limit reached; paused until {until.isoformat()}",
                                 until=until, system=self.name, status=429)
        self.tokens.ensure_fresh()
        method = getattr(self.accounting, operation)
        for auth_attempt in (1, 2):
            with self.limiter.slot():
                self.calls += 1
                try:
                    raw, _status, headers = method(
                        self.tenant_id, **kwargs, _preload_content=False, _return_http_data_only=False,
                        _request_timeout=self.timeout)
                except Exception as exc:
                    error = classify(exc, system=self.name, now=self.now)
                    if isinstance(exc, ApiException) and exc.headers:
                        self._track(exc.headers)
                    if isinstance(error, QuotaExhausted):
                        self._pause(error)
                    if isinstance(error, AuthError) and error.status == 401 and auth_attempt == 1:
                        # an access token the server no longer accepts: refresh once, try again
                        self.tokens.refresh(stale=self.tokens.sdk_token()["access_token"])
                        continue
                    raise error from None
            self._track(headers)
            try:
                data = raw.data
            finally:
                raw.release_conn()
            try:
                return wire.loads(data) if data else {}
            except ValueError:
                raise ConnectorError("Xero sent a body that is not JSON", system=self.name) from None
        raise AuthError("Xero refused a freshly refreshed access token", system=self.name, status=401)

    def _track(self, headers: Any) -> None:
        """Remember the remaining quotas and keep the local bucket no fuller than Xero's count."""
        def read(name: str) -> int | None:
            value = headers.get(name) if hasattr(headers, "get") else None
            try:
                return int(value) if value is not None else None
            except ValueError:
                return None

        minute, day, app = (read("X-MinLimit-Remaining"), read("X-DayLimit-Remaining"),
                            read("X-AppMinLimit-Remaining"))
        if minute is not None:
            self.budget["minute_remaining"] = minute
            with self.limiter._lock:
                self.limiter.tokens = min(self.limiter.tokens, float(minute))
        if day is not None:
            self.budget["day_remaining"] = day
        if app is not None:
            self.budget["app_minute_remaining"] = app

    def connections(self) -> list[dict[str, Any]]:
        """GET /Connections: the tenants this grant may use."""
        self.tokens.ensure_fresh()
        with self.limiter.slot():
            try:
                raw, _status, _headers = self.identity.get_connections(
                    _preload_content=False, _return_http_data_only=False, _request_timeout=self.timeout)
            except Exception as exc:
                raise classify(exc, system=self.name) from None
        try:
            data = raw.data
        finally:
            raw.release_conn()
        result = wire.loads(data)
        return list(result) if isinstance(result, list) else []

    def close(self) -> None:
        self.api_client.rest_client.pool_manager.clear()
