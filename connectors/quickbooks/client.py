"""python-quickbooks, configured for the hub: base URL, timeouts, no SDK retries (it has none),
an injected OAuth2Session (no discovery call at start-up), the rate limiter, and the ONE retry
policy around every call with a single refresh-and-retry on a refused access token.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from quickbooks import QuickBooks
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth2Session

from connectors.base import AuthError
from connectors.quickbooks.auth import TokenManager
from connectors.quickbooks.errors import DEFAULT_RETRY_AFTER, classify
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy

T = TypeVar("T")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class TimeoutAdapter(HTTPAdapter):
    """The SDKs call ``session.request`` without a timeout; this supplies one."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(max_retries=0, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def mount_timeouts(session: requests.Session, timeout: float) -> None:
    session.trust_env = False  # a stray REQUESTS_CA_BUNDLE / proxy variable must not redirect us
    adapter = TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def allow_loopback_http(api_base: str) -> None:
    """oauthlib refuses http:// (InsecureTransportError). Only for an emulator on this machine's
    loopback do we set OAUTHLIB_INSECURE_TRANSPORT=1; a remote http:// base is left to fail."""
    parts = urlsplit(api_base)
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


class QboClient:
    """One realm's SDK access, with up to ``concurrency`` requests in flight.

    python-quickbooks keeps the bearer token on its session object, so two threads sharing one
    ``QuickBooks`` would race on it; instead each request checks out its own SDK instance (with
    its own session) from a small pool — one per concurrency slot, made on first need — and
    sets the current token on that session only.
    """

    def __init__(self, *, realm_id: str, api_base: str, minor_version: int, tokens: TokenManager,
                 client_id: str, policy: RetryPolicy, limiter: RateLimiter, timeout: float,
                 retry_after: float = DEFAULT_RETRY_AFTER, system: str = "quickbooks") -> None:
        allow_loopback_http(api_base)
        self.realm_id = realm_id
        self.tokens = tokens
        self.policy = policy
        self.limiter = limiter
        self.retry_after = retry_after
        self.system = system
        self._api_base = api_base.rstrip("/") + "/v3"
        self._minor_version = minor_version
        self._client_id = client_id
        self._timeout = timeout
        self._idle: queue.LifoQueue[QuickBooks] = queue.LifoQueue()
        self._all: list[QuickBooks] = []
        self._pool_lock = threading.Lock()
        self.qb = self._new_sdk()  # also the template callers read URLs from (api_url)
        self._idle.put(self.qb)
        self._calls_lock = threading.Lock()
        self.calls = 0

    def _new_sdk(self) -> QuickBooks:
        qb = QuickBooks(company_id=self.realm_id, minorversion=self._minor_version, use_decimal=True)
        qb.api_url_v3 = self._api_base
        qb.sandbox_api_url_v3 = self._api_base
        session = OAuth2Session(self._client_id, token={"access_token": "", "token_type": "Bearer"})
        mount_timeouts(session, self._timeout)
        qb.session = session
        with self._pool_lock:
            self._all.append(qb)
        return qb

    @contextmanager
    def _sdk(self, token: str) -> Iterator[QuickBooks]:
        """An SDK instance no other thread is using, carrying ``token``."""
        try:
            qb = self._idle.get_nowait()
        except queue.Empty:  # the limiter's slot bounds how many are ever made
            qb = self._new_sdk()
        try:
            qb.session.token = {"access_token": token, "token_type": "Bearer"}
            yield qb
        finally:
            self._idle.put(qb)

    def __repr__(self) -> str:
        return f"QboClient(realm_id={self.realm_id!r})"

    def _attempt(self, fn: Callable[[QuickBooks], T]) -> T:
        for refreshed in (False, True):
            token = self.tokens.access_token()
            with self.limiter.slot(), self._sdk(token) as qb:
                with self._calls_lock:
                    self.calls += 1
                try:
                    return fn(qb)
                except Exception as exc:  # classified below; nothing raw escapes
                    error = classify(exc, retry_after=self.retry_after, system=self.system)
            if isinstance(error, AuthError) and not error.needs_reauth and not refreshed:
                self.tokens.refused(token)  # 401/3200: refresh once, then try again
                continue
            raise error from None
        raise AssertionError("unreachable")

    def call(self, fn: Callable[[QuickBooks], T]) -> T:
        """Run one SDK call under the rate limiter and the retry policy."""
        return self.policy.call(lambda: self._attempt(fn))

    def once(self, fn: Callable[[QuickBooks], T]) -> T:
        """One SDK call without retries (the caller decides, e.g. writes of unknown outcome)."""
        return self._attempt(fn)

    def close(self) -> None:
        with self._pool_lock:
            for qb in self._all:
                qb.session.close()
        self.tokens.close()
