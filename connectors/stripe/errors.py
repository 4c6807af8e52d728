"""One place that turns Stripe SDK exceptions into the hub's error tree.

Why here and only here: the retry policy, the outbox and the dead-letter logic reason about
``connectors.base`` errors, never SDK types. Messages are redacted so API keys and webhook
secrets can never leak into logs or stored errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import stripe

from connectors.base import (
    AuthError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    RateLimited,
    RetryableError,
)
from connectors.retry import retry_after_seconds

_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+|\bwhsec_[A-Za-z0-9]+")


def redact(text: str) -> str:
    """Mask anything that looks like a Stripe key or webhook secret."""
    return _SECRET.sub("[redacted]", text)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    return retry_after_seconds(_header(headers, "Retry-After"))


def classify(exc: BaseException, system: str = "stripe") -> ConnectorError:
    """Map any exception raised by a Stripe SDK call to the hub's error tree."""
    if isinstance(exc, ConnectorError):
        return exc
    if not isinstance(exc, stripe.StripeError):
        # An odd response the SDK could not turn into an object (or a bug in our own code path).
        return ConnectorError(f"unexpected {type(exc).__name__} from Stripe: {redact(str(exc))[:300]}",
                              system=system)
    status = exc.http_status
    headers = exc.headers
    code = exc.code or ""
    message = redact(exc.user_message or type(exc).__name__)
    if code:
        message = f"{message} [{code}]"
    should_retry = (_header(headers, "Stripe-Should-Retry") or "").lower()
    kw: dict[str, Any] = {"system": system, "status": status}
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        return RateLimited(message, retry_after=_retry_after(headers), scope=code or "rate_limit", **kw)
    if isinstance(exc, stripe.APIConnectionError):
        return RetryableError(f"connection to Stripe failed: {message}", **kw)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return AuthError(message, needs_reauth=True, **kw)
    if should_retry == "false":
        return InvalidError(message, **kw)
    if should_retry == "true" or status == 409 or (status is not None and status >= 500):
        return RetryableError(message, **kw)
    if code == "resource_already_exists":
        return DuplicateError(message, **kw)
    if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError)):
        return InvalidError(message, **kw)
    if status is not None and 400 <= status < 500:
        return InvalidError(message, **kw)
    return ConnectorError(message, **kw)
