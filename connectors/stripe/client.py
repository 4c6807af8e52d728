"""The official Stripe SDK, configured for the hub: base URL, timeout, SDK retries off, and the
API version pinned (``STRIPE_VERSION``).

The version is pinned here, not left to whatever the installed SDK sends, because
``mapping/stripe.py`` reads objects in exactly this version's shape (Basil moved invoices'
subscription and payment fields, line items' prices and subscriptions' periods). Every request
asks for it; an event rendered in another version (the account's default when it happened) is
read again before it is mapped (``streams.StreamReader``, ``StripeConnector.records_for_events``).

Every call goes through ``StripeApi.call`` so that the client-side rate limiter, the hub's one
retry policy (Retry-After honoured) and error classification apply uniformly. The API key lives
only inside the SDK client; this object's repr never shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe

from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.stripe.errors import classify

T = TypeVar("T")

STRIPE_VERSION = "2026-10-28.endive"  # the version mapping/stripe.py is written for


class StripeApi:
    """A configured ``StripeClient`` plus the limiter and retry policy around each request."""

    def __init__(self, api_key: str, api_base: str, *, timeout: float = 30.0,
                 policy: RetryPolicy | None = None, limiter: RateLimiter | None = None,
                 name: str = "stripe") -> None:
        base = api_base.rstrip("/")  # a trailing slash would give "//v1/..."
        self.name = name
        self.base = base
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or RateLimiter(25.0)
        self._http = stripe.RequestsClient(timeout=timeout)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base, "meter_events": base, "files": base, "connect": base},
            max_network_retries=0,  # the hub's RetryPolicy is the one retry layer
            http_client=self._http,
            stripe_version=STRIPE_VERSION,
        )

    def call(self, fn: Callable[[stripe.StripeClient], T]) -> T:
        """Run one SDK request under the rate limiter and retry policy; raise hub errors only."""
        def attempt() -> T:
            with self.limiter.slot():
                try:
                    return fn(self.client)
                except Exception as exc:  # classified below; SDK types never escape
                    raise classify(exc, self.name) from None
        return self.policy.call(attempt)

    def close(self) -> None:
        """Close the (thread-local) HTTP session of the calling thread."""
        self._http.close()  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"StripeApi(name={self.name!r}, base={self.base!r})"
