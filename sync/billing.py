"""Flow rule: the customer's billing state, derived by the hub from its documents in Stripe.

The hub is the only author of three keys of a customer's ``extra`` (``sync.flows.HUB_DERIVED``:
no system's copy of them is ever taken, so a Salesforce echo cannot fight the hub):

* ``billing`` — the facts the status is derived from, kept up to date as the customer's
  documents change (so no change ever has to read all of a customer's invoices): its open
  invoices with their due dates, the invoices whose payment failed while open, its
  subscriptions' statuses, and whether it was ever billed;
* ``billing_status`` — what Salesforce shows on the Account (``Billing_Status__c``), by the rule
  in ``status_of`` (README, flow ``account_status``):
    ``past_due``  an open invoice whose payment failed or whose due date has passed, or a
                  subscription Stripe marks past_due / unpaid;
    ``active``    an open invoice not past due; else something was billed and not every
                  subscription is canceled;
    ``canceled``  subscriptions, all canceled, and nothing open;
    ``none``      nothing billed (a prospect);
* ``billable`` — set when the customer was made in Stripe by someone other than the hub
  (``made_in_billing``), once it has something to book (a finalised invoice, a payment, a
  refund, a credit note) or a won deal, or when a ledger holds it already; never unset. The
  ledgers receive a customer only then (flow ``customers_to_ledgers``), and its first
  document's write waits for it there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from mapping.model import CreditNote, Customer, Deal, Entity, Invoice, Payment, Refund, Subscription
from state.store import Tx

# Plans the writes of a record a rule changed, as from a source ("hub" here: every target).
PlanDerived = Callable[[Tx, Entity, str], int]

_ENDED = frozenset({"canceled", "incomplete_expired"})
_OVERDUE_SUBSCRIPTION = frozenset({"past_due", "unpaid"})


def made_in_billing(entity: Entity, system: str, *, hub_made: bool) -> Entity:
    """A customer made in Stripe, the billing system, by someone other than the hub (a signup, a
    checkout, an account manager) is there to be billed: it is billable at once and reaches the
    ledgers. One the hub made in Stripe from a CRM account carries the hub's marker
    (``hub_made``): a prospect stays out of the books until it has something to book. Read
    from the record itself, so the order the systems are read in does not matter."""
    if isinstance(entity, Customer) and system == "stripe" and not hub_made and not entity.extra.get("billable"):
        return dataclasses.replace(entity, extra={**entity.extra, "billable": True})
    return entity


def status_of(facts: dict[str, Any], today: date) -> str:
    """The account billing status of a customer's billing facts on ``today`` (rule above)."""
    open_invoices: dict[str, str | None] = facts.get("open", {})
    failed = set(facts.get("failed", ()))
    subscriptions: dict[str, str] = facts.get("subscriptions", {})
    overdue = any(inv in failed or (due is not None and date.fromisoformat(due) < today)
                  for inv, due in open_invoices.items())
    if overdue or _OVERDUE_SUBSCRIPTION & set(subscriptions.values()):
        return "past_due"
    if open_invoices:
        return "active"
    if subscriptions and set(subscriptions.values()) <= _ENDED:
        return "canceled"
    return "active" if facts.get("billed") or subscriptions else "none"


def _customer_of(tx: Tx, entity: Entity) -> str | None:
    customer = getattr(entity, "customer_id", None)
    if not customer and isinstance(entity, (Payment, Refund)) and entity.invoice_id:
        stored = tx.get_entity(entity.invoice_id)  # a payment Stripe made without a customer
        customer = getattr(stored.entity(), "customer_id", None) if stored is not None else None
    return customer or None


def _apply(facts: dict[str, Any], entity: Entity, invoice_open: bool) -> bool:
    """Take ``entity``'s part in its customer's facts; returns whether it is something to book.
    ``invoice_open``: a payment's invoice is open in the hub, or not stored yet (a payment read
    after its invoice was paid must not mark it failed again)."""
    open_invoices: dict[str, str | None] = facts.setdefault("open", {})
    failed: list[str] = facts.setdefault("failed", [])
    if isinstance(entity, Invoice):
        if entity.status == "draft":
            return False
        facts["billed"] = True
        if entity.status == "open" and entity.amount_due.minor > 0:
            open_invoices[entity.id] = entity.due_date.isoformat() if entity.due_date else None
        else:  # paid, void, uncollectible (written off) or nothing left to pay: not owed now
            open_invoices.pop(entity.id, None)
            if entity.id in failed:
                failed.remove(entity.id)
        return True
    if isinstance(entity, Payment):
        # failed = a charge was tried and declined (a PaymentIntent still waiting for its first
        # payment method has no charge: nothing failed yet); kept until the invoice is settled
        if (entity.invoice_id and entity.status == "failed" and entity.reference
                and entity.invoice_id not in failed and invoice_open):
            failed.append(entity.invoice_id)
        elif entity.invoice_id and entity.status == "succeeded" and entity.invoice_id in failed:
            failed.remove(entity.invoice_id)
        return entity.status == "succeeded"
    if isinstance(entity, Subscription):
        facts.setdefault("subscriptions", {})[entity.id] = entity.status
        return False
    if isinstance(entity, Deal):
        return entity.won
    return isinstance(entity, (CreditNote, Refund))


def derive_billing(tx: Tx, entity: Entity, today: date, plan: PlanDerived, run_id: str | None,
                   ledgers: Sequence[str] = ()) -> None:
    """After ``entity`` changed: its customer's billing facts, status and ``billable`` flag, stored
    and planned (to every target; only Salesforce's payload shows the status) when they change.
    ``ledgers``: the connections a customer reaches once billable; one linked there already is."""
    if isinstance(entity, Customer):
        if entity.extra.get("erased"):
            return
        # A customer a ledger already holds (linked before billable existed, or matched there at
        # first contact) is in the books: it stays billable there, so its changes keep reaching it.
        linked = not entity.extra.get("billable") and any(
            (link := tx.link_for(entity.id, connection, "customer")) is not None and not link.deleted
            for connection in ledgers)
        # a change to the customer itself: its status again as of today (a due date may have passed)
        if entity.extra.get("billing") or linked:
            _store(tx, entity, _copy(entity.extra.get("billing", {})), linked, today, plan, run_id)
        return
    if not isinstance(entity, (Invoice, Payment, Subscription, Deal, CreditNote, Refund)):
        return
    if isinstance(entity, Deal) and not entity.won:
        return
    customer_id = _customer_of(tx, entity)
    stored = tx.get_entity(customer_id) if customer_id else None
    if stored is None or stored.deleted:
        return  # a placeholder: the document is derived again when it is re-pointed
    customer = stored.entity()
    if not isinstance(customer, Customer) or customer.extra.get("erased"):
        return
    facts = _copy(customer.extra.get("billing", {}))
    invoice_open = True
    if isinstance(entity, Payment) and entity.status == "failed" and entity.invoice_id:
        invoice = tx.get_entity(entity.invoice_id)
        invoice_open = invoice is None or getattr(invoice.entity(), "status", "open") == "open"
    billable = _apply(facts, entity, invoice_open)
    _store(tx, customer, facts, billable, today, plan, run_id)


def _store(tx: Tx, customer: Customer, facts: dict[str, Any], billable: bool, today: date,
           plan: PlanDerived, run_id: str | None) -> None:
    extra = dict(customer.extra)
    extra["billing"] = {k: v for k, v in facts.items() if v}  # empty facts say nothing
    extra["billing_status"] = status_of(facts, today)
    if billable or customer.extra.get("billable"):
        extra["billable"] = True
    if not extra["billing"]:
        del extra["billing"]
    if extra == customer.extra:
        return
    updated = dataclasses.replace(customer, extra=extra)
    # stored and planned as the hub's change: no system is its source, so every target is asked
    # (Salesforce too, where the account may have come from); those whose payload does not show
    # these keys see an unchanged payload and are not written (``sync.push``)
    if tx.upsert_entity(updated, "hub", run_id=run_id) != "unchanged":
        plan(tx, updated, "hub")


def _copy(facts: dict[str, Any]) -> dict[str, Any]:
    return {"open": dict(facts.get("open", {})), "failed": list(facts.get("failed", [])),
            "subscriptions": dict(facts.get("subscriptions", {})), "billed": bool(facts.get("billed"))}


__all__ = ["derive_billing", "status_of"]
