"""The console's money figures, computed from the canonical store: collected revenue, open
receivables, MRR (recurring prices normalised to a month) and churn — per currency, in minor units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mapping.model import Invoice, Payment, Price, Refund, Subscription, SubscriptionItem
from mapping.money import Money
from state.store import StateStore
from sync.web.console_data import money_figures

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_figures_per_currency_from_payments_refunds_invoices_and_subscriptions(store: StateStore) -> None:
    usd = lambda minor: Money(minor, "USD")  # noqa: E731
    entities = [
        Payment(id="p1", amount=usd(1000)), Payment(id="p2", amount=usd(2500)),
        Payment(id="p3", amount=usd(9999), status="failed"),  # not collected
        Payment(id="p4", amount=Money(800, "EUR")),
        Refund(id="r1", amount=usd(500)),
        Invoice(id="i1", status="open", amount_due=usd(700)), Invoice(id="i2", status="paid", amount_due=usd(0)),
        Price(id="yearly", unit_amount=usd(12000), recurring_interval="year"),
        Price(id="monthly", unit_amount=usd(500), recurring_interval="month"),
        Price(id="quarterly", unit_amount=usd(900), recurring_interval="month", interval_count=3),
        Price(id="setup", unit_amount=usd(5000)),  # one-off: never recurring revenue
        Subscription(id="s1", items=(SubscriptionItem("yearly"), SubscriptionItem("setup"))),
        Subscription(id="s2", status="past_due", items=(SubscriptionItem("monthly", 2),)),
        Subscription(id="s3", status="canceled", canceled_at=NOW - timedelta(days=10),
                     items=(SubscriptionItem("quarterly"),)),
        Subscription(id="s4", status="canceled", canceled_at=NOW - timedelta(days=90),  # before the window
                     items=(SubscriptionItem("monthly"),)),
    ]
    with store.transaction() as tx:
        tx.upsert_entities(entities, "stripe")
        figures = money_figures(tx, NOW)
    assert figures["churn_days"] == 30
    rows = {r["currency"]: r for r in figures["rows"]}
    assert set(rows) == {"EUR", "USD"}
    usd_row = rows["USD"]
    assert usd_row["collected"] == usd(1000 + 2500 - 500)
    assert usd_row["receivables"] == usd(700)
    assert usd_row["mrr"] == usd(12000 // 12 + 2 * 500)  # yearly / 12 + two seats monthly
    assert usd_row["churned_mrr"] == usd(300) and usd_row["churned"] == 1  # 900 a quarter
    assert usd_row["churn_rate"] == "33.3%"  # 1 churned of 2 live + 1 churned
    assert rows["EUR"]["collected"] == Money(800, "EUR") and rows["EUR"]["mrr"] == Money(0, "EUR")
