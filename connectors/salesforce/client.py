"""simple-salesforce configured for the hub: session mode, our own OAuth refresh, one retry layer.

* Transport: one ``requests.Session`` with ``trust_env = False`` (so ``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE`` cannot override ``verify``), ``verify`` = config ``ca_bundle`` when set (the
  emulator's self-signed certificate) and a mounted adapter that gives every request a timeout
  (the SDK sets none). A response hook records ``Sforce-Limit-Info`` (parsed with the SDK's own
  ``Salesforce.parse_api_usage``, also on error answers) and ``Retry-After`` (the SDK hides it).
* Auth: the SDK has no refresh-token flow, so the client posts ``grant_type=refresh_token`` to the
  config's ``token_url``, stores the tokens encrypted (``StateStore`` credentials, locked per connection
  while refreshing) and rebuilds ``Salesforce(...)``. ``INVALID_SESSION_ID`` -> one refresh, one
  retry. A refused refresh marks the connection ``needs_reauth``.
* Retries: only ``RetryPolicy`` (the SDK retries nothing in session mode); rate limiting through
  ``RateLimiter``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from connectors.base import AuthError, ConnectorError, RateLimited, RetryableError
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy, retry_after_seconds
from connectors.salesforce.errors import classify
from state.store import StateStore

T = TypeVar("T")


class TimeoutAdapter(HTTPAdapter):
    """Gives every request a default timeout (simple-salesforce's CRUD calls cannot pass one)."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class SalesforceClient:
    """Owns the session, the tokens and the API-usage reading of one connection."""

    def __init__(self, name: str, settings: Mapping[str, Any], store: StateStore, *,
                 policy: RetryPolicy, limiter: RateLimiter) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.policy = policy
        self.limiter = limiter
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = settings.get("ca_bundle") or True
        adapter = TimeoutAdapter(float(settings.get("timeout_seconds") or 60.0))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.hooks["response"].append(self._observe)
        self._local = threading.local()
        self._refresh_lock = threading.Lock()
        self._sf: Salesforce | None = None
        self._token: str | None = None
        self._instance_url: str = str(settings["instance_url"])
        self.api_used: int | None = None
        self.api_total: int | None = None
        self.refreshes = 0

    def __repr__(self) -> str:  # never the token
        return f"SalesforceClient(name={self.name!r}, instance_url={self._instance_url!r})"

    # ------------------------------------------------------------------ observation

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.api_used, self.api_total = usage.used, usage.total
        self._local.retry_after = retry_after_seconds(response.headers.get("Retry-After"))

    def usage_share(self) -> float | None:
        """Share of the daily API allocation used, from the last response (None = not known)."""
        if self.api_used is None or not self.api_total:
            return None
        return self.api_used / self.api_total

    # ------------------------------------------------------------------ calls

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one SDK call under the retry policy and the rate limiter, errors classified."""
        return self.policy.call(lambda: self._attempt(fn))

    def _attempt(self, fn: Callable[[Salesforce], T]) -> T:
        with self.limiter.slot():
            sf = self.sdk()
            try:
                return self._run(fn, sf)
            except SalesforceExpiredSession:
                self.refresh(stale=self._token)
            return self._run(fn, self.sdk(), refreshed=True)

    def _run(self, fn: Callable[[Salesforce], T], sf: Salesforce, refreshed: bool = False) -> T:
        self._local.retry_after = None
        try:
            return fn(sf)
        except SalesforceExpiredSession as exc:
            if not refreshed:
                raise
            raise AuthError("Salesforce refused a freshly refreshed session", system=self.name,
                            status=401) from exc
        except ConnectorError:
            raise
        except Exception as exc:
            raise classify(exc, system=self.name,
                           retry_after=getattr(self._local, "retry_after", None)) from exc

    def sdk(self) -> Salesforce:
        """The SDK object for the current token (refreshing first when there is none)."""
        if self._sf is None:
            creds = self._load()
            if creds.get("access_token"):
                self._adopt(creds)
            else:
                self.refresh(stale=None)
        assert self._sf is not None
        return self._sf

    # ------------------------------------------------------------------ tokens

    def _load(self) -> dict[str, Any]:
        try:
            with self.store.transaction() as tx:
                return tx.load_credentials(self.name) or {}
        except Exception as exc:  # a store without a key cannot hold tokens
            raise AuthError(f"cannot read stored Salesforce tokens: {exc}", system=self.name) from exc

    def _adopt(self, creds: Mapping[str, Any]) -> None:
        self._token = str(creds["access_token"])
        self._instance_url = str(creds.get("instance_url") or self.settings["instance_url"])
        self._sf = Salesforce(instance_url=self._instance_url, session_id=self._token,
                              version=str(self.settings.get("api_version") or "59.0"),
                              session=self.session, parse_float=Decimal, object_pairs_hook=dict)

    def refresh(self, stale: str | None) -> None:
        """Exchange the refresh token for a new session, once per expiry across threads/processes."""
        with self._refresh_lock:
            if stale is not None and self._token is not None and self._token != stale:
                return  # another thread already refreshed
            refused: str | None = None
            with self.store.transaction() as tx:
                creds = tx.load_credentials(self.name, for_update=True) or {}
                if creds.get("access_token") and creds["access_token"] not in (stale, self._token):
                    self._adopt(creds)  # another process refreshed
                    return
                refresh_token = creds.get("refresh_token") or self.settings.get("refresh_token")
                if not refresh_token:
                    refused = "no refresh token: run the Salesforce authorisation again"
                else:
                    answer, refused = self._token_request(str(refresh_token))
                    if answer is not None:
                        new = {"access_token": answer["access_token"],
                               "refresh_token": answer.get("refresh_token") or refresh_token,
                               "instance_url": answer.get("instance_url") or self.settings["instance_url"]}
                        tx.save_credentials(self.name, new)
                        self._adopt(new)
                        self.refreshes += 1
                        return
            with self.store.transaction() as tx:
                tx.set_connection_state(self.name, "needs_reauth", reason=refused)
            raise AuthError(f"token refresh refused ({refused}); the connection needs re-authorisation",
                            needs_reauth=True, system=self.name)

    def _token_request(self, refresh_token: str) -> tuple[dict[str, Any] | None, str | None]:
        """(token answer, None) or (None, why it was refused); transport trouble is retryable."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.settings.get("client_id") or "",
                "client_secret": self.settings.get("client_secret") or ""}
        try:
            response = self.session.post(str(self.settings["token_url"]), data=data,
                                         headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise classify(exc, system=self.name) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 429:
            raise RateLimited("token endpoint asked us to slow down", system=self.name, status=429,
                              retry_after=getattr(self._local, "retry_after", None))
        if response.status_code >= 500:
            raise RetryableError(f"token endpoint answered {response.status_code}", system=self.name,
                                 status=response.status_code)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            return None, f"{response.status_code} {error or 'unexpected token response'}"
        return body, None

    def close(self) -> None:
        self.session.close()
