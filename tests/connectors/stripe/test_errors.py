"""Error classification: SDK exceptions become the hub's error tree, with secrets redacted."""

from __future__ import annotations

import pytest
import stripe

from connectors.base import (
    AuthError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    RateLimited,
    RetryableError,
)
from connectors.stripe.errors import classify, redact


def _body(code: str = "", message: str = "m") -> dict[str, object]:
    return {"error": {"type": "invalid_request_error", "message": message, "code": code}}


@pytest.mark.parametrize("exc,expected", [
    (stripe.RateLimitError("slow down", http_status=429, json_body=_body("rate_limit"),
                           headers={"Retry-After": "3"}), RateLimited),
    (stripe.APIConnectionError("reset by peer"), RetryableError),  # type: ignore[no-untyped-call]  # stripe: __init__ is unannotated
    (stripe.APIError("boom", http_status=500), RetryableError),
    (stripe.APIError("boom", http_status=500, headers={"Stripe-Should-Retry": "false"}), InvalidError),
    (stripe.InvalidRequestError("busy", None, http_status=409, headers={"stripe-should-retry": "true"}),  # type: ignore[no-untyped-call]  # stripe: __init__ is unannotated
     RetryableError),
    (stripe.AuthenticationError("Invalid API Key provided: sk_test_****abcd", http_status=401), AuthError),
    (stripe.PermissionError("no", http_status=403), AuthError),
    (stripe.InvalidRequestError("bad", "amount", http_status=400, code="parameter_invalid"), InvalidError),  # type: ignore[no-untyped-call]  # stripe: __init__ is unannotated
    (stripe.InvalidRequestError("exists", "identifier", http_status=400, code="resource_already_exists"),  # type: ignore[no-untyped-call]  # stripe: __init__ is unannotated
     DuplicateError),
    (stripe.IdempotencyError("other params", http_status=400), InvalidError),
    (ValueError("Cannot call .list on a list object without a string \"url\" property"), ConnectorError),
])
def test_sdk_errors_map_to_the_hub_tree(exc: Exception, expected: type[ConnectorError]) -> None:
    err = classify(exc, "stripe")
    assert type(err) is expected
    assert err.system == "stripe"


def test_rate_limit_carries_retry_after() -> None:
    err = classify(stripe.RateLimitError("slow", http_status=429, headers={"Retry-After": "2.5"}))
    assert isinstance(err, RateLimited) and err.retry_after == 2.5 and err.status == 429
    assert classify(stripe.RateLimitError("slow", http_status=429)).retry_after is None  # type: ignore[attr-defined]


def test_secrets_are_redacted_from_messages() -> None:
    err = classify(stripe.AuthenticationError("Invalid API Key provided: sk_live_abcdef123456"))
    assert "sk_live_abcdef123456" not in str(err)
    assert redact("secret whsec_abc123 and rk_test_xyz") == "secret [redacted] and [redacted]"
    odd = classify(RuntimeError("failed with sk_test_topsecret"))
    assert "topsecret" not in str(odd)
