"""Xero wire formats shared by the emulator and the connector: ``/Date(ms+0000)/`` dates,
``If-Modified-Since`` parsing, and JSON with exact decimals.

Xero writes dates as Microsoft JSON dates (``/Date(1714521600000+0000)/``) and the SDK refuses
ISO strings in those fields, while requests may carry either form; one module keeps both sides
agreeing on the format.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from mapping import exact_json


def ms_date(value: datetime) -> str:
    """``/Date(ms+0000)/`` for an aware datetime (what Xero sends)."""
    millis = int(value.astimezone(UTC).timestamp() * 1000)
    return f"/Date({millis}+0000)/"


def iso_string(value: datetime) -> str:
    """The ``…String`` twin Xero sends next to MS dates (ISO, no zone, UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_http_date(text: str) -> datetime:
    """``If-Modified-Since`` as xero-python sends it (ISO-8601) or as RFC 1123."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError(f"not a date: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def start_of_day(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def next_midnight(value: datetime) -> datetime:
    return start_of_day(value) + timedelta(days=1)


def dumps(data: Any) -> str:
    """Xero JSON: exact decimals, datetimes as ``/Date(ms+0000)/``."""
    return exact_json.dumps(data, default=_ms_date_of)


def _ms_date_of(value: Any) -> Any:
    if isinstance(value, datetime):
        return ms_date(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


loads = exact_json.loads
