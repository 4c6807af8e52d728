"""What the console's charts show (issue 21, item 2), by day, ISO week or month, from the daily
rows ``state.series`` sums in SQL: findings over time by kind, the outbox's depth, sync lag per
connection, and revenue and receivables per currency.

Two shapes of figure. A flow (findings opened, revenue invoiced) is the sum of the days inside a
period. A stock (findings unresolved, writes waiting, receivables) is what stood at the period's
end — every earlier day's moves added up — or now, for the period still running. Money stays
integer minor units per currency, one chart per currency: no figure adds two currencies.

How honest each stock is, given what the store keeps:
- unresolved findings: opened by ``first_seen``, closed by ``resolved_at``; the store keeps no
  date of an acknowledgement, so acknowledged ones count as unresolved, and a finding seen again
  after it was resolved is open since it was first seen.
- outbox depth: derived from the rows, not sampled — rows are never deleted, each keeps when it
  was queued and when it finished (``updated_at`` of a done, dead or dropped row), so the queue
  at any past moment can be rebuilt without a sampler job writing every few seconds. A dead
  write a person retried counts as waiting from when it was first queued.
- sync lag: at a period's end, the time since the last sync pass that ended ``ok`` covering the
  connection (a pass with any error does not count, so the line errs high, never low); the lag
  now, per stream, from each stream's cursor.
- receivables: each owed invoice (open or paid now) from its issue day, less succeeded payments
  applied to it and its credit notes (less what they refunded) on their days; a paid invoice is
  settled on its paid day whatever it still showed owing. A void or uncollectible invoice is
  absent from every month: the store keeps no date of voiding or writing off.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from mapping.money import format_money
from state import money_series, series
from state.store import Tx

PERIODS = ("day", "week", "month")
DEFAULT_COUNT = {"day": 14, "week": 12, "month": 12}
MAX_COUNT = 60
Unit = Literal["count", "money", "seconds"]


class ChartRequestError(ValueError):
    """A period or count the charts cannot show; the message says what to pass instead."""


@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date  # exclusive
    kind: str = "day"  # day, week or month


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int | None, ...]  # None: nothing to show for that period (no sync yet)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: Unit = "count"
    currency: str | None = None
    stacked: bool = False
    notes: tuple[str, ...] = field(default=())

    def text(self, value: int) -> str:
        """A value as people read it: money through the one formatter, durations in words."""
        if self.unit == "money":
            assert self.currency is not None
            return format_money(value, self.currency)
        if self.unit == "seconds":
            return duration_words(value)
        return f"{value:,}"


def duration_words(seconds: int) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: a lag a person takes in at a glance."""
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


# --------------------------------------------------------------------------- periods


def _start_of(day: date, kind: str) -> date:
    if kind == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if kind == "month":
        return day.replace(day=1)
    return day


def _next(start: date, kind: str) -> date:
    if kind == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=7 if kind == "week" else 1)


def _label(start: date, kind: str) -> str:
    if kind == "month":
        return start.strftime("%Y-%m")
    if kind == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.isoformat()


def chart_choice(kind: str, count: int | None = None) -> tuple[str, int]:
    """The kind of period and how many to show (``None``: the kind's default); a clear error
    saying what to pass otherwise."""
    if kind not in PERIODS:
        raise ChartRequestError(f"unknown period {kind!r}: use one of {', '.join(PERIODS)}")
    count = DEFAULT_COUNT[kind] if count is None else count
    if not 1 <= count <= MAX_COUNT:
        raise ChartRequestError(f"periods must be a whole number from 1 to {MAX_COUNT}, not {count}")
    return kind, count


def periods(now: datetime, kind: str, count: int) -> list[Period]:
    """The ``count`` periods (UTC) ending with the one that holds ``now``, oldest first."""
    chart_choice(kind, count)
    start = _start_of(now.astimezone(UTC).date(), kind)
    starts = [start]
    for _ in range(count - 1):
        start = _start_of(start - timedelta(days=1), kind)
        starts.append(start)
    return [Period(_label(s, kind), s, _next(s, kind), kind) for s in reversed(starts)]


def _each(spans: Sequence[Period]) -> str:
    return f"each {spans[0].kind}"


def flow(rows: Iterable[tuple[str, int]], spans: Sequence[Period]) -> tuple[int, ...]:
    """Sum of each period's days."""
    bounds = [p.start.isoformat() for p in spans]
    last = spans[-1].end.isoformat()
    sums = [0] * len(spans)
    for day, n in rows:
        at = bisect_right(bounds, day) - 1
        if at >= 0 and day < last:
            sums[at] += n
    return tuple(sums)


def stock(rows: Iterable[tuple[str, int]], spans: Sequence[Period]) -> tuple[int, ...]:
    """What every move before each period's end adds up to."""
    ends = [p.end.isoformat() for p in spans]
    before = [0] * len(spans)
    for day, n in rows:
        at = bisect_right(ends, day)  # the first period ending after the day
        if at < len(ends):
            before[at] += n
    running, out = 0, []
    for n in before:
        running += n
        out.append(running)
    return tuple(out)


# --------------------------------------------------------------------------- the figures


def findings_charts(tx: Tx, spans: Sequence[Period]) -> list[Chart]:
    labels = tuple(p.label for p in spans)
    by_kind: dict[str, list[tuple[str, int]]] = defaultdict(list)
    opened: list[tuple[str, int]] = []
    for day, kind, n in series.findings_opened(tx):
        by_kind[kind].append((day, n))
        opened.append((day, n))
    closed = [(day, -n) for day, n in series.findings_resolved(tx)]
    per_kind = tuple(Series(kind, flow(rows, spans)) for kind, rows in sorted(by_kind.items()))
    return [
        Chart("findings-opened", "Findings opened, by kind", labels,
              per_kind or (Series("findings", flow([], spans)),), stacked=True),
        Chart("findings-open", f"Findings unresolved at the end of {_each(spans)}", labels,
              (Series("unresolved", stock(opened + closed, spans)),),
              notes=("Acknowledged findings count as unresolved: the store keeps no date of an acknowledgement.",)),
    ]


def outbox_chart(tx: Tx, spans: Sequence[Period]) -> Chart:
    entered = series.outbox_entered(tx)
    left = series.outbox_left(tx)
    waiting = stock(entered + [(day, -n) for day, _status, n in left], spans)
    dead = stock([(day, n) for day, status, n in left if status == "dead"], spans)
    return Chart("outbox-depth", f"Outbox: writes waiting and dead letters at the end of {_each(spans)}",
                 tuple(p.label for p in spans), (Series("waiting", waiting), Series("dead letters", dead)))


def sync_lag_chart(tx: Tx, spans: Sequence[Period], now: datetime, connections: Sequence[str]) -> Chart:
    finishes: dict[str, list[datetime]] = defaultdict(list)
    for scope, _day, finished in series.sync_successes(tx):
        for name in scope.split(","):
            if name:
                finishes[name].append(finished)
    names = sorted(set(connections) | set(finishes))
    lines = []
    for name in names:
        done = sorted(finishes.get(name, []))
        values: list[int | None] = []
        for p in spans:
            moment = min(now, datetime(p.end.year, p.end.month, p.end.day, tzinfo=UTC))
            at = bisect_right(done, moment) - 1
            values.append(int((moment - done[at]).total_seconds()) if at >= 0 else None)
        lines.append(Series(name, tuple(values)))
    return Chart("sync-lag", f"Sync lag at the end of {_each(spans)} (time since the last clean pass)",
                 tuple(p.label for p in spans), tuple(lines), unit="seconds",
                 notes=("A pass that ended with any error does not count, so the lag shown is never less than the real one.",))


def stream_lag_chart(tx: Tx, now: datetime) -> Chart:
    """The lag now of every stream with a cursor: now minus its last successful read."""
    rows = [(f"{c['connection']}:{c['stream']}", int((now - c["last_success"]).total_seconds()))
            for c in tx.cursors() if c["last_success"] is not None]
    return Chart("stream-lag", "Sync lag now, per stream", tuple(label for label, _ in rows),
                 (Series("lag", tuple(max(0, lag) for _, lag in rows)),), unit="seconds")


def money_charts(moves: dict[str, list[tuple[str, str, int]]], spans: Sequence[Period]) -> list[Chart]:
    """Revenue invoiced and credited, and receivables, one pair of charts per currency."""
    labels = tuple(p.label for p in spans)
    billed = _by_currency(moves.get("invoiced", []))
    notes = _by_currency(moves.get("credited", []))
    owed: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for kind, sign in money_series.RECEIVABLE_SIGN.items():
        for currency, day, minor in moves.get(kind, []):
            owed[currency].append((day, sign * minor))
    charts = []
    for currency in sorted(set(billed) | set(notes) | set(owed)):
        charts.append(Chart(f"revenue-{currency}", f"Revenue invoiced and credited, {currency}", labels,
                            (Series("invoiced", flow(billed.get(currency, []), spans)),
                             Series("credited", flow(notes.get(currency, []), spans))),
                            unit="money", currency=currency))
        charts.append(Chart(f"receivables-{currency}", f"Receivables at the end of {_each(spans)}, {currency}",
                            labels, (Series("open balance", stock(owed.get(currency, []), spans)),),
                            unit="money", currency=currency))
    return charts


def _by_currency(rows: Iterable[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for currency, day, minor in rows:
        found[currency].append((day, minor))
    return dict(found)


def chart_page(tx: Tx, now: datetime, period: str = "month", count: int | None = None,
               connections: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the /charts page draws, for ``count`` periods ending now."""
    spans = periods(now, *chart_choice(period, count))
    moves = money_series.money_moves(tx)
    notes = [f"{n} {kind}{'s' if n != 1 else ''} without a date {'are' if n != 1 else 'is'} in no period"
             for kind in ("invoice", "payment") for _c, _d, n in moves.get(f"undated-{kind}", []) if n]
    return {"period": period, "count": len(spans), "periods": PERIODS,
            "findings": findings_charts(tx, spans), "outbox": outbox_chart(tx, spans),
            "lag": sync_lag_chart(tx, spans, now, connections), "stream_lag": stream_lag_chart(tx, now),
            "money": money_charts(moves, spans), "undated": notes}


def overview_charts(tx: Tx, now: datetime, days: int = 14) -> list[Chart]:
    """The overview's two small charts: findings opened per day by kind, the outbox's depth."""
    spans = periods(now, "day", days)
    return [findings_charts(tx, spans)[0], outbox_chart(tx, spans)]


__all__ = ["Chart", "ChartRequestError", "PERIODS", "Period", "Series", "chart_choice", "chart_page", "duration_words",
           "flow", "overview_charts", "periods", "stock"]
