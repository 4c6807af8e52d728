"""Figures for the console's overview, computed from the canonical store in integer minor units:
collected revenue, open receivables, MRR and churn, each per currency."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mapping.model import Price, Subscription
from mapping.money import Money
from state.money_series import money_totals
from state.store import Tx

# Months per billing interval, to normalise recurring prices to a monthly amount.
PER_MONTH = {"day": Decimal(365) / 12, "week": Decimal(52) / 12, "month": Decimal(1), "year": Decimal(1) / 12}
LIVE_SUBSCRIPTIONS = ("active", "past_due", "trialing")


def _add(table: dict[str, int], money: Money) -> None:
    table[money.currency] = table.get(money.currency, 0) + money.minor


def monthly(price: Price, quantity: int) -> Money:
    per = PER_MONTH.get(price.recurring_interval or "", Decimal(0)) / max(1, price.interval_count)
    return price.unit_amount.times(Decimal(quantity) * per, rounding=ROUND_HALF_UP)


def money_figures(tx: Tx, now: datetime, churn_days: int = 30) -> dict[str, Any]:
    # Grouped SQL (state.money_series): a store of 100,000 invoices is not decoded per page view.
    totals = money_totals(tx)
    collected, receivables = totals["collected"], totals["receivables"]
    prices = {s.id: s.entity() for s in tx.entities_of("price")}
    mrr: dict[str, int] = {}
    churned: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"live": 0, "churned": 0})
    since = now - timedelta(days=churn_days)
    for stored in tx.entities_of("subscription"):
        sub = stored.entity()
        if not isinstance(sub, Subscription):
            continue
        amount = Money(0, sub.currency)
        for item in sub.items:
            price = prices.get(item.price_id)
            if isinstance(price, Price) and price.recurring_interval:
                amount = amount + monthly(price, item.quantity)
        if sub.status in LIVE_SUBSCRIPTIONS:
            _add(mrr, amount)
            counts[amount.currency]["live"] += 1
        elif sub.status == "canceled" and sub.canceled_at is not None and sub.canceled_at >= since:
            _add(churned, amount)
            counts[amount.currency]["churned"] += 1
    currencies = sorted(set(collected) | set(receivables) | set(mrr) | set(churned))
    rows = []
    for currency in currencies:
        c = counts[currency]
        base = c["live"] + c["churned"]
        rows.append({
            "currency": currency,
            "collected": Money(collected.get(currency, 0), currency),
            "receivables": Money(receivables.get(currency, 0), currency),
            "mrr": Money(mrr.get(currency, 0), currency),
            "churned_mrr": Money(churned.get(currency, 0), currency),
            "churned": c["churned"],
            "churn_rate": f"{Decimal(c['churned'] * 100) / base:.1f}%" if base else "0.0%",
        })
    return {"rows": rows, "churn_days": churn_days}


__all__ = ["money_figures", "monthly"]
