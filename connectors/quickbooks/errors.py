"""The one place QuickBooks SDK errors become the hub's error tree.

python-quickbooks hides the HTTP status and headers (api-facts §2.3), so classification goes by
the fault code and, for bodies the SDK cannot parse (the XML 429, an HTML 502), by the message.
Messages are rebuilt from the fault's code/message/detail only: the SDK's request never appears,
so no token can leak into a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests
from quickbooks import exceptions as qbe

from connectors.base import (
    AuthError,
    ConflictError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    RateLimited,
    RetryableError,
)

SYSTEM = "quickbooks"
DEFAULT_RETRY_AFTER = 60.0  # Intuit: "on a 429, wait 60 seconds"; no Retry-After reaches us
_THROTTLE = re.compile(r"ThrottleExceeded|statusCode=429|errorCode=003001|code=\"3001\"", re.IGNORECASE)
_ID = re.compile(r"Id=(\d+)")


class NotFound(InvalidError):
    """Fault 610: the object does not exist (or was made inactive)."""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def classify(exc: BaseException, *, retry_after: float = DEFAULT_RETRY_AFTER,
             system: str = SYSTEM) -> ConnectorError:
    """Map any exception from an SDK call to a ``ConnectorError`` (never raises)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, requests.Timeout):
        return RetryableError("request timed out; the outcome is unknown", system=system)
    if isinstance(exc, requests.ConnectionError):
        return RetryableError(f"connection failed: {type(exc).__name__}", system=system)
    if not isinstance(exc, qbe.QuickbooksException):
        return RetryableError(f"unexpected {type(exc).__name__} from the QuickBooks SDK", system=system)
    code = int(exc.error_code or 0) if str(exc.error_code or "0").isdigit() else 0
    text = f"{exc.message} {exc.detail or ''}"
    summary = _short(f"fault {code}: {exc.message}" + (f" ({exc.detail})" if exc.detail else ""))
    if code == 3001 or _THROTTLE.search(text):
        return RateLimited("throttled (429 ThrottleExceeded)", retry_after=retry_after, scope="minute",
                           system=system, status=429)
    if isinstance(exc, qbe.AuthorizationException) or code == 3200:
        return AuthError("access token refused (401 / 3200)", system=system, status=401)
    if code == 5010:
        return ConflictError(summary, system=system, status=400)
    if code == 6240:
        return DuplicateError(summary, candidates=_ID.findall(text), system=system, status=400)
    if code == 610 or isinstance(exc, qbe.ObjectNotFoundException):
        return NotFound(summary, system=system, status=400)
    if code >= 10000 or "Error reading json response" in exc.message:
        # A 5xx fault or an unparseable body (HTML from a proxy): transient, outcome unknown.
        return RetryableError(_short(f"service error: {exc.message}", 200), system=system, status=500)
    return InvalidError(summary, system=system, status=400)


def item_fault(fault: Mapping[str, Any], *, system: str = SYSTEM) -> ConnectorError:
    """A batch item's ``Fault`` (inside a 200 answer) classified like a whole response's: the
    same code means the same error whether it came alone or as one item of many."""
    error = (fault.get("Error") or [{}])[0]
    code = str(error.get("code") or "0")
    exc = qbe.QuickbooksException(str(error.get("Message", "")), int(code) if code.isdigit() else 0,
                                  str(error.get("Detail", "")))
    return classify(exc, system=system)
