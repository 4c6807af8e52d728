"""The charts' figures (issue 21, item 2) on a seeded store with a pinned clock, on SQLite and
PostgreSQL: revenue and receivables per month per currency in exact minor units, findings per
day per kind, the outbox's depth and the sync lag rebuilt from the rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from mapping.model import CreditNote, Invoice, Payment
from mapping.money import Money
from state.store import StateStore
from sync.chart_data import (
    Chart,
    ChartRequestError,
    chart_page,
    duration_words,
    overview_charts,
    periods,
)
from sync.web.console_data import money_figures
from tests.conftest import FrozenClock

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def at(day: int, month: int = 11, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def by_key(charts: list[Chart]) -> dict[str, Chart]:
    return {c.key: c for c in charts}


def values(chart: Chart) -> dict[str, tuple[int | None, ...]]:
    return {s.name: s.values for s in chart.series}


def seed_billing(store: StateStore) -> None:
    entities = [
        # September: a 100.00 invoice, paid in full on 5 October; a written-off one
        Invoice(id="inv1", status="paid", issued_at=at(10, 9), paid_at=at(5, 10), total=usd(10000), amount_due=usd(0)),
        Payment(id="p1", invoice_id="inv1", amount=usd(10000), paid_at=at(5, 10)),
        Invoice(id="inv7", status="uncollectible", issued_at=at(1, 9), total=usd(900), amount_due=usd(900)),
        # October: 200.00, 50.00 paid on the 20th, 30.00 credited on 2 November; 10.00 credited
        # on the paid September invoice and refunded (owed nothing either way)
        Invoice(id="inv2", status="open", issued_at=at(15, 10), total=usd(20000), amount_due=usd(12000)),
        Payment(id="p2", invoice_id="inv2", amount=usd(5000), paid_at=at(20, 10, 23, 30)),
        Payment(id="p9", invoice_id="inv2", amount=usd(99999), status="failed", paid_at=at(21, 10)),
        CreditNote(id="cn1", invoice_id="inv2", total=usd(3000), issued_at=at(2)),
        CreditNote(id="cn2", invoice_id="inv1", total=usd(1000), refund_amount=usd(1000), issued_at=at(25, 10)),
        Invoice(id="inv5", status="open", currency="EUR", issued_at=at(1, 10, 0, 0),
                total=Money(4500, "EUR"), amount_due=Money(4500, "EUR")),
        # November: a void and a draft (never owed), and a 20.00 invoice paid with no payment record
        Invoice(id="inv3", status="void", issued_at=at(3), total=usd(7000)),
        Invoice(id="inv4", status="draft", total=usd(5000), amount_due=usd(5000)),
        Invoice(id="inv6", status="paid", issued_at=at(5), paid_at=at(6), total=usd(2000), amount_due=usd(0)),
        Invoice(id="inv8", status="open", total=usd(100)),  # no issue date: in no period, and said so
    ]
    with store.transaction() as tx:
        tx.upsert_entities(entities, "stripe")


def test_revenue_and_receivables_per_month_per_currency(store: StateStore) -> None:
    seed_billing(store)
    with store.transaction() as tx:
        page = chart_page(tx, NOW, "month", 3)
        overview_money = {r["currency"]: r["receivables"] for r in money_figures(tx, NOW)["rows"]}
    charts = by_key(page["money"])
    assert set(charts) == {"revenue-USD", "receivables-USD", "revenue-EUR", "receivables-EUR"}
    assert charts["revenue-USD"].labels == ("2026-09", "2026-10", "2026-11")
    # invoiced: Sep 100.00 + 9.00 written off; Oct 200.00; Nov 20.00 (the void one is not revenue)
    assert values(charts["revenue-USD"]) == {"invoiced": (10900, 20000, 2000), "credited": (0, 1000, 3000)}
    assert values(charts["revenue-EUR"]) == {"invoiced": (0, 4500, 0), "credited": (0, 0, 0)}
    # owed at each month end: Sep the 100.00; Oct 200.00 less the 50.00 part payment; Nov less
    # the 30.00 credit note (the paid 20.00 invoice settles on its paid day)
    assert values(charts["receivables-USD"]) == {"open balance": (10000, 15000, 12000)}
    assert values(charts["receivables-EUR"]) == {"open balance": (0, 4500, 4500)}
    # the month still running agrees with the overview's open receivables
    assert overview_money == {"USD": usd(12000), "EUR": Money(4500, "EUR")}
    assert charts["receivables-USD"].text(12000) == "120.00 USD"
    assert charts["receivables-USD"].title == "Receivables at the end of each month, USD"
    assert page["undated"] == ["1 invoice without a date is in no period"]


def test_weeks_split_the_same_money(store: StateStore) -> None:
    seed_billing(store)
    with store.transaction() as tx:
        page = chart_page(tx, NOW, "week", 3)
    charts = by_key(page["money"])
    assert charts["revenue-USD"].labels == ("2026-W45", "2026-W46", "2026-W47")
    # W45 = 2-8 November: the 20.00 invoice and the 30.00 credit note
    assert values(charts["revenue-USD"]) == {"invoiced": (2000, 0, 0), "credited": (3000, 0, 0)}
    assert values(charts["receivables-USD"]) == {"open balance": (12000, 12000, 12000)}


def test_findings_per_day_per_kind_and_unresolved(store: StateStore, clock: FrozenClock) -> None:
    def finding(fingerprint: str, kind: str) -> str:
        with store.transaction() as tx:
            found, _ = tx.upsert_finding(fingerprint=fingerprint, kind=kind, entity="invoice", system="xero",
                                         canonical_id=None, external_ids=[], fields={}, detail="", run_id=None)
        return found
    clock.now = at(18, hour=9)
    a = finding("a", "mismatch")
    clock.now = at(18, hour=23, minute=30)  # late in the UTC day: the day is UTC's, not the session's
    finding("b", "missing")
    clock.now = at(19)
    finding("c", "mismatch")
    finding("d", "duplicate")
    clock.now = at(20)
    with store.transaction() as tx:
        tx.resolve_finding(a)
    clock.now = NOW
    with store.transaction() as tx:
        if store.is_postgres:  # a session far from UTC (+14 h) must not move a finding's day
            tx.conn.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
        page = chart_page(tx, NOW, "day", 4)
        small = overview_charts(tx, NOW, days=4)
    charts = by_key(page["findings"])
    opened = charts["findings-opened"]
    assert opened.labels == ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21") and opened.stacked
    assert values(opened) == {"duplicate": (0, 1, 0, 0), "mismatch": (1, 1, 0, 0), "missing": (1, 0, 0, 0)}
    assert values(charts["findings-open"]) == {"unresolved": (2, 4, 3, 3)}
    assert small[0] == opened


def test_outbox_depth_rebuilt_from_the_rows(store: StateStore, clock: FrozenClock) -> None:
    clock.now = at(18)
    with store.transaction() as tx:
        for n in (1, 2):
            tx.enqueue(f"c{n}", "customer", "xero", "upsert", f"k{n}", "h")
        first, second = (item.id for item in tx.list_outbox())
    clock.now = at(19)
    with store.transaction() as tx:
        tx.complete_outbox(first, "x1")
    clock.now = at(20)
    with store.transaction() as tx:
        tx.dead_outbox(second, "refused")
        tx.enqueue("c3", "customer", "xero", "upsert", "k3", "h")
    clock.now = NOW
    with store.transaction() as tx:
        chart = overview_charts(tx, NOW, days=4)[1]
    assert values(chart) == {"waiting": (2, 1, 1, 1), "dead letters": (0, 0, 1, 1)}


def test_sync_lag_per_connection_and_per_stream(store: StateStore, clock: FrozenClock) -> None:
    def run(scope: str, status: str, start: datetime, seconds: int) -> None:
        clock.now = start
        with store.transaction() as tx:
            run_id = tx.start_run("sync", scope)
        clock.now = start.replace(second=seconds)
        with store.transaction() as tx:
            tx.finish_run(run_id, status, {})
    run("stripe,quickbooks", "ok", at(19, hour=9), 30)
    run("stripe", "failed", at(20, hour=9), 5)  # an error: not a clean pass
    run("stripe", "ok", at(21, hour=6), 0)
    clock.now = at(21, hour=11)
    with store.transaction() as tx:
        tx.set_cursor("stripe", "customer", "c")
    clock.now = NOW
    with store.transaction() as tx:
        page = chart_page(tx, NOW, "day", 4, connections=["quickbooks", "stripe", "xero"])
    lag = page["lag"]
    # measured at each day's end (midnight UTC), and now for the day still running
    assert values(lag) == {"quickbooks": (None, 53970, 140370, 183570),
                           "stripe": (None, 53970, 140370, 21600),
                           "xero": (None, None, None, None)}
    assert lag.text(183570) == "2 d 2 h"
    assert page["stream_lag"].labels == ("stripe:customer",)
    assert values(page["stream_lag"]) == {"lag": (3600,)}


def test_periods_and_words() -> None:
    assert [p.label for p in periods(datetime(2027, 1, 3, tzinfo=UTC), "month", 3)] == ["2026-11", "2026-12", "2027-01"]
    weeks = periods(datetime(2027, 1, 3, tzinfo=UTC), "week", 2)  # a Sunday: ISO week 53 of 2026
    assert [(p.label, p.start, p.end) for p in weeks] == [
        ("2026-W52", date(2026, 12, 21), date(2026, 12, 28)), ("2026-W53", date(2026, 12, 28), date(2027, 1, 4))]
    assert [duration_words(s) for s in (45, 720, 10800, 11100, 86400 * 2 + 3600 * 4)] == [
        "45 s", "12 min", "3 h", "3 h 5 min", "2 d 4 h"]
    with pytest.raises(ChartRequestError, match="use one of day, week, month"):
        periods(NOW, "year", 3)
    with pytest.raises(ChartRequestError, match="a whole number from 1 to 60, not 0"):
        periods(NOW, "month", 0)
