"""How the console's daily pages say times, durations and counts to a person: "12 Mar 10:04",
"2 min 5 s", "read 3, wrote 1". Money is said by ``mapping.money`` alone (``format_money``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sync.chart_data import duration_words


def when(value: datetime | date | str | None, *, year: bool = False) -> str:
    """A moment for people, in UTC: "12 Mar 10:04" ("12 Mar 2026 10:04" with ``year``); a date
    alone as "12 Mar 2026"; None as "—". ISO strings (the JSON of findings) are read first."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text  # not a time after all: said as it is
    if not isinstance(value, datetime):
        return f"{value.day} {value:%b %Y}"
    moment = value.astimezone(UTC) if value.tzinfo else value
    return f"{moment.day} {moment:%b}{moment.strftime(' %Y') if year else ''} {moment:%H:%M}"


def duration(started: datetime | None, finished: datetime | None) -> str:
    """How long a run took: "0.4 s", "12 s", "2 min", "1 h 3 min" (``duration_words``, the charts'
    words too); "running" when unfinished."""
    if started is None:
        return "—"
    if finished is None:
        return "running"
    seconds = max(0.0, (finished - started).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f} s"
    return duration_words(int(seconds))


def counts(values: Mapping[str, Any] | None) -> str:
    """A run's counts, the ones that are not zero: "read 3, written 1" ("nothing" when all are)."""
    said = [f"{name.replace('_', ' ')} {n}" for name, n in (values or {}).items()
            if isinstance(n, int) and not isinstance(n, bool) and n]
    return ", ".join(said) or "nothing"


def lag(seconds: int | None) -> str:
    """Since a connection's last good sync, in words ("—" when it never synced)."""
    return "—" if seconds is None else duration_words(seconds)


__all__ = ["counts", "duration", "lag", "when"]
