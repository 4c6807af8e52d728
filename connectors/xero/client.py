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
  (``connectors/oauth.py``'s rotation with Xero's token call) refreshes under a thread lock plus
  the credentials lock, committing the rotated token before using it.
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
from connectors.oauth import Grant, GrantRefused, TokenRotation
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.xero import wire
from connectors.xero.errors import classify
from state.store import StateStore

SCOPE = ["offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings"]

# TokenApi's URLs are CLASS attributes (the SDK instantiates TokenApi internally), so they are
# process-global: we set them under this lock immediately before each refresh, which keeps two
# connections with different identity servers (an emulator and production) from crossing.
_TOKEN_URL_LOCK = threading.Lock()


class TokenManager(TokenRotation):
    """``TokenRotation`` with xero-python's token call (``TokenApi.refresh_token``)."""

    def __init__(self, *, name: str, store: StateStore, api_client: ApiClient, client_id: str,
                 client_secret: str, token_url: str, initial_refresh_token: str | None,
                 now: Callable[[], datetime], skew_seconds: float) -> None:
        super().__init__(name=name, system="xero", vendor="Xero", store=store, exchange=self._exchange,
                         initial_refresh_token=initial_refresh_token, now=now, skew_seconds=skew_seconds)
        self.api_client = api_client
        self._client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url

    def _exchange(self, refresh_token: str) -> Grant:
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
                    raise GrantRefused(f"token endpoint answered {exc.status} ({reason})") from None
                raise classify(exc, system=self.name) from None
            except Exception as exc:  # network errors, odd bodies
                raise classify(exc, system=self.name) from None
        if not isinstance(answer, dict) or not answer.get("access_token") or not answer.get("refresh_token"):
            raise RetryableError("Xero token endpoint sent an unreadable answer", system=self.name)
        return Grant(access_token=str(answer["access_token"]), refresh_token=str(answer["refresh_token"]),
                     expires_in=float(answer.get("expires_in") or 1800), extra={"scope": SCOPE})


class XeroClient:
    """One tenant connection: the SDK APIs plus the hub's policies around every call."""

    def __init__(self, *, name: str, store: StateStore, tenant_id: str, client_id: str,
                 client_secret: str, api_base: str, identity_base: str, token_url: str,
                 refresh_token: str | None, timeout: float, policy: RetryPolicy, limiter: RateLimiter,
                 refresh_skew_seconds: float, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
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
                                   token_url=token_url, initial_refresh_token=refresh_token, now=now,
                                   skew_seconds=refresh_skew_seconds)
        self.api_client.oauth2_token_getter(self._sdk_token)
        self.api_client.oauth2_token_saver(self._sdk_save)
        self.accounting = AccountingApi(self.api_client, base_url=api_base.rstrip("/") + "/api.xro/2.0")
        self.identity = IdentityApi(self.api_client, base_url=identity_base.rstrip("/"))

    def __repr__(self) -> str:
        return f"XeroClient(name={self.name!r}, tenant_id={self.tenant_id!r})"

    # -- what the SDK sees -----------------------------------------------------------------

    def _sdk_token(self) -> dict[str, Any]:
        """The SDK's getter: no expiry and no refresh token, so it never refreshes by itself.
        Each call fetched a fresh token just before (``access_token()``)."""
        return {"access_token": self.tokens.current_token(), "token_type": "Bearer",
                "expires_in": 1800, "scope": SCOPE}

    def _sdk_save(self, _token: dict[str, Any]) -> None:
        """The SDK's saver; unused because the SDK never refreshes (see ``_sdk_token``)."""

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
        method = getattr(self.accounting, operation)
        for auth_attempt in (1, 2):
            token = self.tokens.access_token()
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
                        self.tokens.refused(token)
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
        self.tokens.access_token()
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
