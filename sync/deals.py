"""Flow rule: a won Salesforce deal becomes a Stripe subscription (its recurring lines) and/or a
one-off invoice (the other lines), as hub records the plan then sends on."""

from __future__ import annotations

from collections.abc import Callable

from mapping.model import (
    Deal,
    Entity,
    Invoice,
    InvoiceLine,
    Money,
    Price,
    Subscription,
    SubscriptionItem,
    stable_id,
)
from state.store import Tx
from sync.context import SyncContext
from sync.summary import SyncSummary

# Plans the writes a hub-made record calls for (``Planner.plan`` with the hub as source).
PlanHubRecord = Callable[[Tx, Entity], int]


def derive_from_deal(ctx: SyncContext, tx: Tx, deal: Deal, summary: SyncSummary, run_id: str | None,
                     plan: PlanHubRecord) -> None:
    """A won deal becomes a subscription (recurring lines) or a one-off invoice."""
    if not deal.won or not deal.customer_id:
        return
    recurring = [line for line in deal.lines if line.recurring_interval]
    one_off = [line for line in deal.lines if not line.recurring_interval]
    if recurring:
        items = []
        for line in recurring:
            price = price_for(tx, line.product_id, line.unit_amount, line.recurring_interval)
            if price is None:
                ctx.finding(tx, "missing", "price", "stripe", deal.id, [],
                            f"deal {deal.name!r}: no active {line.recurring_interval}ly price of "
                            f"{line.unit_amount} for product {line.product_id}; create it in Stripe",
                            run_id)
                summary.stats("hub", "subscription").held += 1
                return
            items.append(SubscriptionItem(price.id, int(line.quantity)))
        sub = Subscription(stable_id("hub", "subscription", deal.id), customer_id=deal.customer_id,
                           status="active", currency=deal.currency, items=tuple(items), deal_id=deal.id)
        if tx.upsert_entity(sub, "hub", run_id=run_id) != "unchanged":
            plan(tx, sub)
    if one_off:
        lines = tuple(InvoiceLine(line.description, line.quantity, line.unit_amount,
                                  line.unit_amount.times(line.quantity), product_id=line.product_id)
                      for line in one_off)
        subtotal = Money(sum(line.amount.minor for line in lines), deal.currency)
        invoice = Invoice(stable_id("hub", "invoice", deal.id), customer_id=deal.customer_id,
                          status="open", currency=deal.currency, lines=lines, subtotal=subtotal,
                          total=subtotal, amount_due=subtotal, tax=Money(0, deal.currency),
                          amount_paid=Money(0, deal.currency), deal_id=deal.id)
        if tx.upsert_entity(invoice, "hub", run_id=run_id) != "unchanged":
            plan(tx, invoice)


def price_for(tx: Tx, product_id: str | None, amount: Money, interval: str | None) -> Price | None:
    """The active price of ``product_id`` at ``amount`` per ``interval``, if the hub has one."""
    for stored in tx.entities_of("price"):
        price = stored.entity()
        assert isinstance(price, Price)
        if (price.product_id == product_id and price.active and price.unit_amount == amount
                and price.recurring_interval == interval):
            return price
    return None


__all__ = ["derive_from_deal", "price_for"]
