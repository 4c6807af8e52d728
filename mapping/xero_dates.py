"""Xero's dates as its API writes them: ``/Date(ms+0000)/`` or ISO, parsed to aware UTC.

Pure, so the Xero mapper, connector and emulator all read dates the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value: Any) -> datetime | None:
    """Parse a Xero date in MS-JSON or ISO form (or a ``date``) to aware UTC; None if empty.

    Raises ``ValueError`` with the offending text for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    match = _MS_DATE.match(text)
    if match:
        stamp = datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
        offset = match.group(2)
        if offset:
            sign = 1 if offset[0] == "+" else -1
            # The offset says which local time the instant was rendered in; the ms are UTC.
            _ = sign * (int(offset[1:3]) * 60 + int(offset[3:5]))
        return stamp
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a Xero date: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
