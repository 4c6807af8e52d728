"""Which entity goes from which system to which, and who owns each field.

A ``Flow`` routes one canonical entity type from its source systems to target systems. Routing
is by *system* (stripe, quickbooks, xero, salesforce); every configured connection of a target
system receives the entity (several QuickBooks companies = several targets).

Ownership decides which system is the source of truth per entity and field. A change to a field
arriving from a system that does not own it is not taken into the canonical record (and so not
propagated); the diff reports the disagreement as a mismatch. Ledgers own nothing but their own
numbers, which is what keeps A -> B -> A ping-pong impossible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mapping.model import CreditNote, Entity, Invoice
from mapping.postings import fully_refunded

Condition = Callable[[Entity], bool]


def _always(_entity: Entity) -> bool:
    return True


def _finalised(entity: Entity) -> bool:
    return getattr(entity, "status", "") != "draft"


def _to_ledgers(entity: Entity) -> bool:
    """A finalised invoice a ledger books as an invoice: a negative one (a downgrade's proration)
    goes as the credit note the hub derives from it (``sync.postings``), never as an invoice."""
    return _finalised(entity) and not (isinstance(entity, Invoice) and entity.total.minor < 0)


def _credit_left(entity: Entity) -> bool:
    """A credit note its refund did not wholly pay out: a fully refunded one is booked once, as its
    refund's document (with the note's lines and tax), never as a second credit."""
    return not (isinstance(entity, CreditNote) and fully_refunded(entity))


def _billable(entity: Entity) -> bool:
    """A customer with something to book (a finalised invoice, a payment, a refund or credit note)
    or a won deal: ``extra["billable"]``, set by the hub (``sync.billing``) and never unset. A
    prospect stays out of the ledgers; its first document's write waits for it there
    (``sync.push.REFERENCE_FIELDS``), and setting the flag plans the customer's own write."""
    return bool(entity.extra.get("billable"))


def _settled(entity: Entity) -> bool:
    return getattr(entity, "status", "") == "succeeded"


def _paid_out(entity: Entity) -> bool:
    """A payout that reached the bank, or failed (or was canceled) after: the planner follows a
    failure only to a ledger that already has the payout, where it is held with a finding."""
    return getattr(entity, "status", "") in ("paid", "failed", "canceled")


@dataclass(frozen=True)
class Flow:
    name: str
    entity_type: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    when: Condition = _always
    description: str = ""


# The default flows (README "Flows"); config [flows].enabled selects among them by name.
DEFAULT_FLOWS: tuple[Flow, ...] = (
    Flow("customers", "customer", ("stripe", "salesforce"), ("stripe", "salesforce"),
         description="Stripe customer <-> Salesforce account (account billing status derived by the hub)"),
    Flow("customers", "customer", ("stripe", "salesforce"), ("quickbooks", "xero"), when=_billable,
         description="customers with something to book (or a won deal) into both ledgers"),
    Flow("catalog", "product", ("stripe",), ("quickbooks", "xero", "salesforce"),
         description="Stripe products -> ledger items and Salesforce products"),
    Flow("catalog", "price", ("stripe",), ("salesforce",),
         description="Stripe prices -> Salesforce price-book entries"),
    Flow("deal_to_stripe", "deal", ("salesforce",), (),
         description="Closed Won opportunity -> Stripe customer and subscription or invoice"),
    Flow("deal_to_stripe", "subscription", ("stripe", "hub"), ("stripe",),
         description="subscriptions the hub derives from deals -> Stripe"),
    Flow("invoices", "invoice", ("stripe", "hub"), ("stripe",), when=_finalised,
         description="invoices the hub derives from deals -> Stripe"),
    Flow("invoices", "invoice", ("stripe", "hub"), ("quickbooks", "xero"), when=_to_ledgers,
         description="finalised Stripe invoices -> QuickBooks and Xero (voids follow; negative ones as credit notes)"),
    Flow("billing_status", "invoice", ("stripe",), ("salesforce",), when=_finalised,
         description="invoice and payment state -> Salesforce Billing_Invoice__c"),
    Flow("payments", "payment", ("stripe",), ("quickbooks", "xero"), when=_settled,
         description="Stripe payments -> ledger payments applied to the invoice"),
    Flow("refunds", "refund", ("stripe",), ("quickbooks", "xero"),
         description="Stripe refunds -> QuickBooks refund receipts, Xero credit notes paid out "
                     "(with their credit note's lines, or the invoice's tax reversed)"),
    Flow("refunds", "credit_note", ("stripe", "hub"), ("quickbooks", "xero"), when=_credit_left,
         description="Stripe credit notes (what their refund did not pay out) and negative invoices -> "
                     "QuickBooks credit memos, Xero credit notes, applied to the invoice"),
    Flow("payouts", "payout", ("stripe",), ("quickbooks", "xero"), when=_paid_out,
         description="paid Stripe payouts -> a transfer clearing -> bank and the fees as an expense"),
)

def billable_targets(flows: Sequence[Flow]) -> list[str]:
    """The systems a customer reaches only once billable (the ledgers)."""
    return [t for f in flows if f.entity_type == "customer" and f.when is _billable for t in f.targets]


# Push order: a record's references must exist in the target before it does.
ENTITY_ORDER: tuple[str, ...] = ("customer", "product", "price", "deal", "subscription", "invoice",
                                 "payment", "credit_note", "refund", "payout")

# Default owners: field -> system ("*" = every field not named).
DEFAULT_OWNERSHIP: dict[str, dict[str, str]] = {
    "customer": {"name": "salesforce", "address": "salesforce", "*": "stripe"},
    "product": {"*": "stripe"},
    "price": {"*": "stripe"},
    "subscription": {"*": "stripe"},
    "invoice": {"*": "stripe"},
    "payment": {"*": "stripe"},
    # which credit note claims a refund is the hub's to know (Stripe's refund does not say)
    "refund": {"credit_note_id": "hub", "*": "stripe"},
    "credit_note": {"*": "stripe"},
    "deal": {"*": "salesforce"},
    "payout": {"*": "stripe"},
}

# Fields a non-owning system may never change (identity and bookkeeping).
_FIXED = frozenset({"id", "updated_at"})
# Keys of ``extra`` only the hub writes (``sync.billing``: a customer's billing facts, its account
# billing status and whether it is billable). No system's copy is taken — Salesforce's echo of
# Billing_Status__c, or a Stripe customer's extra — so none can fight the hub's derivation.
HUB_DERIVED_EXTRA = frozenset({"billing", "billing_status", "billable"})


@dataclass(frozen=True)
class Ownership:
    """Field owners per entity type; ``owner(entity, field)`` names the system of truth."""

    rules: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_OWNERSHIP)

    def owner(self, entity_type: str, field_name: str) -> str | None:
        table = self.rules.get(entity_type, {})
        return table.get(field_name) or table.get("*")

    def owns_any(self, entity_type: str, system: str) -> bool:
        return system in set(self.rules.get(entity_type, {}).values())

    def merge(self, existing: Entity | None, incoming: Entity, system: str) -> Entity:
        """The canonical record after a change from ``system``: only its owned fields are taken.

        A first sighting (no existing record) takes everything the system knows; owners of other
        fields fill them in when they report.
        """
        derived = {k: v for k, v in (existing.extra if existing else {}).items() if k in HUB_DERIVED_EXTRA}
        if existing is None:
            return _with_extra(incoming, derived) if set(incoming.extra) & HUB_DERIVED_EXTRA else incoming
        updates: dict[str, Any] = {}
        for f in dataclasses.fields(incoming):
            # ``extra`` holds one system's leftovers: only the record's main owner may set it, or
            # every ledger's echo would change the record and ping-pong through the others.
            if f.name not in _FIXED and self.owner(incoming.type, f.name) == system:
                updates[f.name] = getattr(incoming, f.name)
        merged = dataclasses.replace(existing, **updates)
        return _with_extra(merged, derived) if "extra" in updates else merged


def _with_extra(entity: Entity, derived: Mapping[str, Any]) -> Entity:
    """``entity`` with the hub's derived keys of ``extra`` as ``derived`` (a system's dropped)."""
    extra = {k: v for k, v in entity.extra.items() if k not in HUB_DERIVED_EXTRA}
    return dataclasses.replace(entity, extra={**extra, **derived})


@dataclass(frozen=True)
class Routing:
    flows: Sequence[Flow]
    ownership: Ownership

    def targets(self, entity: Entity, source_system: str) -> list[str]:
        """Systems that must hold ``entity`` after a change from ``source_system``."""
        result: list[str] = []
        for flow in self.flows:
            if flow.entity_type != entity.type or not flow.when(entity):
                continue
            for target in flow.targets:
                if target != source_system and target not in result:
                    result.append(target)
        return result

    def is_source(self, entity_type: str, system: str) -> bool:
        """May records from ``system`` create canonical entities of this type?"""
        return any(f.entity_type == entity_type and system in f.sources for f in self.flows) \
            or self.ownership.owns_any(entity_type, system)

    def reads(self, system: str) -> list[str]:
        """Entity types to read from a system: those it sources or receives, in push order."""
        wanted = {f.entity_type for f in self.flows if system in f.sources or system in f.targets}
        return [t for t in ENTITY_ORDER if t in wanted]


def routing_from_config(flows_cfg: Mapping[str, Any], ownership_cfg: Mapping[str, Mapping[str, str]]) -> Routing:
    """Build routing from config ``[flows]`` and ``[ownership.*]`` (defaults where silent)."""
    enabled = flows_cfg.get("enabled")
    flows = [f for f in DEFAULT_FLOWS if enabled is None or f.name in enabled]
    rules = {k: dict(v) for k, v in DEFAULT_OWNERSHIP.items()}
    for entity_type, table in ownership_cfg.items():
        rules[entity_type] = dict(table)
    return Routing(flows, Ownership(rules))
