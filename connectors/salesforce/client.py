"""simple-salesforce configured for the hub: session mode, our own OAuth refresh, one retry layer.

* Transport: one ``requests.Session`` with ``trust_env = False`` (so ``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE`` cannot override ``verify``), ``verify`` = config ``ca_bundle`` when set (the
  emulator's self-signed certificate) and a mounted adapter that gives every request a timeout
  (the SDK sets none). A response hook records ``Sforce-Limit-Info`` (parsed with the SDK's own
  ``Salesforce.parse_api_usage``, also on error answers) and ``Retry-After`` (the SDK hides it).
* Auth: the SDK has no refresh-token flow, so the client posts ``grant_type=refresh_token`` to the
  config's ``token_url`` — that token call is all Salesforce adds to ``connectors/oauth.py``'s
  rotation (tokens encrypted in the store, locked per connection while refreshing, a refused
  refresh marks the connection ``needs_reauth``) — and rebuilds ``Salesforce(...)`` for each new
  session. A session's timeout slides with use and the answer states no expiry, so calls use the
  session until ``INVALID_SESSION_ID`` (-> one refresh, one retry); the expiry estimated from
  ``session_seconds`` is the token job's cue to refresh ahead of it.
* Retries: only ``RetryPolicy`` (the SDK retries nothing in session mode); rate limiting through
  ``RateLimiter``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from connectors.base import AuthError, ConnectorError, RateLimited, RetryableError
from connectors.oauth import Grant, GrantRefused, TokenRotation
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
                 policy: RetryPolicy, limiter: RateLimiter, now: Callable[[], datetime]) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.policy = policy
        self.limiter = limiter
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = settings["ca_bundle"] or True
        adapter = TimeoutAdapter(float(settings["timeout_seconds"]))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.hooks["response"].append(self._observe)
        self._local = threading.local()
        self.tokens = TokenRotation(name=name, system="salesforce", vendor="Salesforce", store=store,
                                    exchange=self._token_request, initial_refresh_token=settings["refresh_token"],
                                    now=now, skew_seconds=float(settings["refresh_skew_seconds"]))
        self._sf: Salesforce | None = None
        self._token: str | None = None  # the session ``_sf`` was built with
        self.api_used: int | None = None
        self.api_total: int | None = None

    def __repr__(self) -> str:  # never the token
        return f"SalesforceClient(name={self.name!r}, instance_url={self._instance_url()!r})"

    @property
    def refreshes(self) -> int:
        return self.tokens.refreshes

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
            token = self.tokens.current_token()
            try:
                return self._run(fn, self._sdk(token))
            except SalesforceExpiredSession:
                self.tokens.refused(token)
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
        """The SDK object for the current session (refreshing first when there is none)."""
        return self._sdk(self.tokens.current_token())

    def _sdk(self, token: str) -> Salesforce:
        sf = self._sf
        if sf is None or self._token != token:
            sf = Salesforce(instance_url=self._instance_url(), session_id=token,
                            version=str(self.settings["api_version"]),
                            session=self.session, parse_float=Decimal, object_pairs_hook=dict)
            self._sf, self._token = sf, token
        return sf

    @property
    def instance_url(self) -> str:
        """The org's address (the token answer's ``instance_url``, else the config's)."""
        return self._instance_url()

    def _instance_url(self) -> str:
        return str(self.tokens.extra("instance_url") or self.settings["instance_url"])

    # ------------------------------------------------------------------ the token call

    def _token_request(self, refresh_token: str) -> Grant:
        """Salesforce's token call; a refusal is ``GrantRefused``, transport trouble retryable."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.settings["client_id"] or "",
                "client_secret": self.settings["client_secret"] or ""}
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
            raise GrantRefused(f"{response.status_code} {error or 'unexpected token response'}")
        return Grant(access_token=str(body["access_token"]), refresh_token=body.get("refresh_token"),
                     expires_in=float(self.settings["session_seconds"]),
                     extra={"instance_url": body.get("instance_url") or self.settings["instance_url"],
                            # .../id/<org id>/<user id>: who the integration user is (hub setup
                            # salesforce assigns it billhub's permission set)
                            "identity": body.get("id")})

    def close(self) -> None:
        self.session.close()
