"""The one place Salesforce failures become the hub's error tree (api-facts.md §4.3).

simple-salesforce maps status codes to exception classes and keeps the parsed body in
``.content`` (a list of ``{message, errorCode, fields}``); it never exposes headers, so the
client hands in ``Retry-After`` captured by its response hook. Messages carry the error code and
Salesforce's text only: never headers, tokens or request bodies.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from connectors.base import (
    AuthError,
    ConflictError,
    ConnectorError,
    DuplicateError,
    InvalidError,
    QuotaExhausted,
    RateLimited,
    RetryableError,
)


class SalesforceSetupError(ConnectorError):
    """The org lacks what billhub needs (custom fields, the invoice object) or disagrees with
    the config (its currency): a person must change the org or the config; retrying cannot help.
    Raised on first contact, before anything is read or written."""


DUPLICATE_CODES = frozenset({"DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID", "MULTIPLE_CHOICES"})


def first_error(content: Any) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body, whatever its shape."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        item = content[0]
        code = str(item.get("errorCode") or item.get("statusCode") or "UNKNOWN")
        return code, str(item.get("message") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "UNKNOWN"), str(
            content.get("message") or content.get("error_description") or "")
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    return "UNKNOWN", text[:300]


def candidates_in(content: Any) -> list[str]:
    """Salesforce ids mentioned in a 300 body (a list of record URLs) or a duplicate message."""
    if isinstance(content, list) and content and all(isinstance(u, str) for u in content):
        return [u.rstrip("/").rsplit("/", 1)[-1] for u in content]
    _code, message = first_error(content)
    return sorted(set(re.findall(r"\b[a-zA-Z0-9]{18}\b|\b[a-zA-Z0-9]{15}\b", message)))


def item_error(errors: Any, *, system: str) -> ConnectorError:
    """A per-record error of an sObject Collections answer."""
    code, message = first_error(errors)
    text = f"{code}: {message}"
    if code in DUPLICATE_CODES:
        return DuplicateError(text, candidates=candidates_in(errors), system=system)
    if code in ("UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "SERVER_UNAVAILABLE"):
        return RetryableError(text, system=system)
    return InvalidError(text, system=system)


def classify(exc: BaseException, *, system: str, retry_after: float | None = None) -> ConnectorError:
    """Map an SDK / transport exception to the error tree."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        return AuthError("TLS verification of the Salesforce server failed: check instance_url and "
                         "ca_bundle (retrying cannot help)", system=system)
    if isinstance(exc, requests.Timeout):
        return RetryableError("request timed out", system=system)
    if isinstance(exc, requests.ConnectionError):
        return RetryableError("connection failed or was reset", system=system)
    if isinstance(exc, requests.JSONDecodeError | ValueError) and not isinstance(exc, SalesforceError):
        return RetryableError("Salesforce answered with something that is not JSON", system=system)
    if not isinstance(exc, SalesforceError):
        return RetryableError(f"unexpected transport failure: {type(exc).__name__}", system=system)
    status = int(getattr(exc, "status", 0) or 0)
    content = getattr(exc, "content", None)
    code, message = first_error(content)
    text = f"{status} {code}: {message}".strip()
    if status == 300:
        return DuplicateError(f"300 several records match: {candidates_in(content)}",
                              candidates=candidates_in(content), system=system, status=status)
    if status == 401:
        return AuthError(text, system=system, status=status)
    if code == "REQUEST_LIMIT_EXCEEDED" and status == 403:
        if "concurrent" in message.lower():
            return RateLimited(text, retry_after=retry_after, scope="concurrent", system=system,
                               status=status)
        return QuotaExhausted(text, system=system, status=status)
    if status == 429:
        return RateLimited(text, retry_after=retry_after, scope="burst", system=system, status=status)
    if status == 412:
        return ConflictError(text, system=system, status=status)
    if code in DUPLICATE_CODES:
        return DuplicateError(text, candidates=candidates_in(content), system=system, status=status)
    if status == 403:
        return AuthError(text, system=system, status=status)
    if status >= 500 or code in ("UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"):
        return RetryableError(text, system=system, status=status)
    return InvalidError(text, system=system, status=status)
