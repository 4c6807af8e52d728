"""The one place that turns xero-python / urllib3 exceptions into the hub's error tree.

Xero's SDK raises ``RateLimitException`` (429, with ``X-Rate-Limit-Problem``),
``BadRequestException`` (400 ValidationException JSON), ``NotFoundException`` and a generic
``HTTPStatusException``; with urllib3 retries disabled, network failures surface as raw urllib3
errors. Messages are built from Xero's own validation text and the status only — never from
request headers, so a bearer token can never leak into an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3.exceptions
from xero_python.exceptions import AccessTokenExpiredError, ApiException
from xero_python.exceptions.http_status_exceptions import (
    BadRequestException,
    NotFoundException,
    RateLimitException,
)

from connectors.base import (
    AuthError,
    ConflictError,
    ConnectorError,
    InvalidError,
    QuotaExhausted,
    RateLimited,
    RetryableError,
)
from connectors.retry import retry_after_seconds


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def validation_messages(body: Any) -> list[str]:
    """Xero's ``ValidationErrors[].Message`` texts from an error body or a per-item result."""
    messages: list[str] = []
    if isinstance(body, Mapping):
        for error in body.get("ValidationErrors") or []:
            if isinstance(error, Mapping) and error.get("Message"):
                messages.append(str(error["Message"]))
        for element in body.get("Elements") or []:
            messages.extend(validation_messages(element))
    return messages


def _body_json(exc: ApiException) -> Any:
    raw = exc.body
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None


def classify(exc: BaseException, *, system: str,
             now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> ConnectorError:
    """Map any exception from an SDK call to the connector error tree (never raises)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, RateLimitException) or (isinstance(exc, ApiException) and exc.status == 429):
        headers = exc.headers
        problem = (_header(headers, "X-Rate-Limit-Problem") or "").lower() or "minute"
        retry_after = retry_after_seconds(_header(headers, "Retry-After"), now=now)
        if problem == "day":
            until = now() + timedelta(seconds=retry_after if retry_after is not None else 86400)
            return QuotaExhausted(f"Xero daily call limit reached; resumes at {until.isoformat()}",
                                  until=until, system=system, status=429)
        return RateLimited(f"Xero rate limit ({problem}) reached", retry_after=retry_after,
                           scope=problem, system=system, status=429)
    if isinstance(exc, BadRequestException):
        body = _body_json(exc)
        messages = validation_messages(body)
        detail = "; ".join(messages) or (body.get("Message") if isinstance(body, Mapping) else None) \
            or (body.get("Detail") if isinstance(body, Mapping) else None) or "bad request"
        return InvalidError(f"Xero rejected the request: {detail}", system=system, status=400)
    if isinstance(exc, NotFoundException):
        return InvalidError("Xero: the resource was not found", system=system, status=404)
    if isinstance(exc, AccessTokenExpiredError):
        return AuthError("Xero access token expired and could not be refreshed", system=system)
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) else 0
        body = _body_json(exc)
        detail = body.get("Detail") if isinstance(body, Mapping) else None
        if status == 401:
            return AuthError(f"Xero refused the access token ({detail or 'unauthorised'})",
                             system=system, status=401)
        if status == 403:
            return AuthError(f"Xero refused access to the tenant ({detail or 'forbidden'}); "
                             "check tenant_id or re-authorise", needs_reauth=True, system=system,
                             status=403)
        if status in (409, 412):
            return ConflictError(f"Xero conflict ({status})", system=system, status=status)
        if status == 0 or status >= 500:
            return RetryableError(f"Xero server error ({status or 'no response'}): outcome unknown",
                                  system=system, status=status or None)
        return InvalidError(f"Xero answered {status}: {detail or exc.reason or ''}".rstrip(": "),
                            system=system, status=status)
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError)):
        return RetryableError(f"Xero connection failed ({type(exc).__name__}): outcome unknown",
                              system=system)
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return InvalidError(f"Xero sent a response the hub cannot read ({type(exc).__name__}: {exc})",
                            system=system)
    return ConnectorError(f"unexpected Xero client error ({type(exc).__name__})", system=system)
