"""How Stripe's objects looked in older API versions: down-converters from the emulator's stored
(newest, ``API_VERSION``) shape.

Stripe keeps one object and renders it per API version; so does the emulator. Each ``Change``
is one documented change of the changelog (docs.stripe.com/changelog): a request or an event in
a version dated before the change gets the object as it was before it. Changes are applied
newest first, each to the object as the newer ones left it; ``src`` is always the object in the
newest shape, so a change can read what a newer change already took away.

The changes modelled (only those touching fields the emulator renders):

* ``2026-05-27`` Dahlia: ``invoice.amount_paid_off_stripe`` is new.
* ``2025-12-15`` Clover: invoice line items gain ``subtotal``.
* ``2025-06-30`` Basil: ``subscription.billing_mode`` is new.
* ``2025-05-28`` Basil (partial payments): credit notes gain ``pre_payment_amount`` and
  ``post_payment_amount``.
* ``2025-03-31`` Basil, the breaking release:
  - multiple payments on invoices: ``invoice.payment_intent``, ``charge``, ``paid``,
    ``paid_out_of_band``, ``application_fee_amount`` and ``transfer_data`` removed (and
    ``amount_overpaid``, ``payments``, ``confirmation_secret`` added); ``payment_intent.invoice``
    and ``charge.invoice`` removed; ``credit_note.refund`` replaced by ``refunds``; out-of-band
    payments now count in ``invoice.amount_paid``;
  - the ``parent`` field: ``invoice.subscription``, ``subscription_details``, ``quote`` and
    ``subscription_proration_date``; ``invoiceitem.subscription`` and ``subscription_item``; line
    items' ``type``, ``subscription_item``, ``invoice_item``, ``proration`` and
    ``proration_details`` all moved under ``parent``;
  - pricing: ``price`` and ``plan`` (and invoice items' ``unit_amount``/``unit_amount_decimal``)
    moved to ``pricing`` on invoice items and line items;
  - taxes: line items' and credit note lines' ``tax_amounts`` and ``tax_rates`` replaced by
    ``taxes``, ``invoice.total_tax_amounts`` by ``total_taxes``; ``amount_excluding_tax`` and
    ``unit_amount_excluding_tax`` removed from line items;
  - billing periods: ``subscription.current_period_start``/``end`` moved to the items;
  - legacy usage billing: ``price.recurring.aggregate_usage`` removed.

Older objects also carried ``plan`` next to ``price`` (subscription items, subscription line
items) and on single-item subscriptions ``plan`` and ``quantity``: rendered from the price, as
Stripe renders a Price as a Plan. The old ``invoice.tax`` is the sum of the invoice's taxes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

Obj = dict[str, Any]


class Lookups(Protocol):
    """What a down-converter reads from the emulator's store (each answer in the newest shape)."""

    def stored(self, obj_id: str) -> Mapping[str, Any] | None: ...

    def rendered(self, obj_id: str) -> Obj | None: ...

    def invoice_payment(self, invoice_id: str) -> tuple[str | None, str | None]: ...

    def invoice_of_payment(self, payment_intent_id: str) -> str | None: ...


def _always(src: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Change:
    date: str  # the first API version (YYYY-MM-DD) that has the new shape
    kinds: frozenset[str]  # the ``object`` values it applies to
    down: Callable[[Obj, Mapping[str, Any], Lookups], Obj]  # (out, src, lookups) -> out
    # whether ``src`` is in the newer shape: converting an object twice changes nothing (a
    # response is converted again after its expansions, which are rendered in the newest shape)
    newer: Callable[[Mapping[str, Any]], bool] = _always


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


def plan_of(price: Mapping[str, Any] | None) -> Obj | None:
    """A recurring Price as the Plan older versions rendered next to it (same id)."""
    rec = price.get("recurring") if price else None
    if not price or not isinstance(rec, Mapping):
        return None
    return {"id": price["id"], "object": "plan", "active": price.get("active", True),
            "aggregate_usage": None, "amount": price.get("unit_amount"),
            "amount_decimal": price.get("unit_amount_decimal"),
            "billing_scheme": price.get("billing_scheme") or "per_unit", "created": price.get("created"),
            "currency": price.get("currency"), "interval": rec.get("interval"),
            "interval_count": rec.get("interval_count", 1), "livemode": False,
            "metadata": dict(price.get("metadata") or {}), "meter": rec.get("meter"),
            "nickname": price.get("nickname"), "product": price.get("product"), "tiers_mode": None,
            "transform_usage": None, "trial_period_days": None,
            "usage_type": rec.get("usage_type") or "licensed"}


def _tax_amounts(taxes: Any) -> list[Obj]:
    """``taxes`` entries as the older ``tax_amounts`` (rate id, inclusive flag)."""
    out = []
    for tax in taxes or []:
        details = tax.get("tax_rate_details") or {}
        rate = details.get("tax_rate")
        out.append({"amount": tax.get("amount"), "inclusive": tax.get("tax_behavior") == "inclusive",
                    "tax_rate": rate.get("id") if isinstance(rate, Mapping) else rate,
                    "taxability_reason": tax.get("taxability_reason"),
                    "taxable_amount": tax.get("taxable_amount")})
    return out


def _rates(ids: list[str], lookups: Lookups) -> list[Obj]:
    return [r for r in (lookups.rendered(i) for i in dict.fromkeys(ids)) if r is not None]


def _tax_rate_ids(src: Mapping[str, Any], stored: Mapping[str, Any] | None) -> list[str]:
    """The tax rates set on the line itself (not the invoice's defaults, which older versions left
    out of a line's ``tax_rates``); from the stored line when there is one."""
    if stored is not None and isinstance(stored.get("_tax_rates"), list):
        return [str(i) for i in stored["_tax_rates"]]
    return [str((t.get("tax_rate_details") or {}).get("tax_rate")) for t in src.get("taxes") or []]


def _excluding_tax(src: Mapping[str, Any]) -> tuple[int, str]:
    """``amount_excluding_tax`` (after discounts and inclusive tax) and its unit decimal."""
    amount = int(src.get("amount") or 0)
    discounts = sum(int(d.get("amount") or 0) for d in src.get("discount_amounts") or [])
    inclusive = sum(int(t.get("amount") or 0) for t in src.get("taxes") or []
                    if t.get("tax_behavior") == "inclusive")
    excluding = amount - discounts - inclusive
    quantity = Decimal(str(src.get("quantity") or 1)) or Decimal(1)
    unit = (Decimal(excluding) / quantity).quantize(Decimal("1e-12")).normalize()
    return excluding, format(unit, "f")


# --------------------------------------------------------------------------- Basil (2025-03-31)


def _invoice_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    parent = src.get("parent") or {}
    sub = parent.get("subscription_details") or {}
    quote = parent.get("quote_details") or {}
    pi, charge = lookups.invoice_payment(str(src.get("id"))) if src.get("id") else (None, None)
    off_stripe = int(src.get("amount_paid_off_stripe") or 0)
    taxes = src.get("total_taxes") or []
    out = _without(out, "parent", "total_taxes", "amount_overpaid", "payments", "confirmation_secret")
    out.update(
        subscription=sub.get("subscription"),
        subscription_details={"metadata": sub.get("metadata")} if sub else None,
        subscription_proration_date=sub.get("subscription_proration_date"), quote=quote.get("quote"),
        payment_intent=pi, charge=charge, paid=src.get("status") == "paid",
        paid_out_of_band=off_stripe > 0, application_fee_amount=None, transfer_data=None,
        total_tax_amounts=_tax_amounts(taxes),
        tax=sum(int(t.get("amount") or 0) for t in taxes) if taxes else None)
    if "amount_paid" in out:  # out-of-band payments joined amount_paid with Basil
        out["amount_paid"] = max(int(out["amount_paid"] or 0) - off_stripe, 0)
    return out


def _line_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    parent = src.get("parent") or {}
    from_sub = parent.get("type") == "subscription_item_details"
    details = parent.get("subscription_item_details" if from_sub else "invoice_item_details") or {}
    pricing = src.get("pricing") or {}
    price_id = (pricing.get("price_details") or {}).get("price")
    price = lookups.rendered(str(price_id)) if price_id else None
    invoice = lookups.stored(str(src.get("invoice"))) if src.get("invoice") else None
    stored = next((ln for ln in (invoice or {}).get("_lines", []) if ln.get("id") == src.get("id")), None)
    excluding, unit = _excluding_tax(src)
    out = _without(out, "parent", "pricing", "taxes")
    out.update(
        type="subscription" if from_sub else "invoiceitem",
        subscription=details.get("subscription") or src.get("subscription"),
        subscription_item=details.get("subscription_item") if from_sub else None,
        invoice_item=None if from_sub else details.get("invoice_item"),
        proration=bool(details.get("proration")),
        proration_details=details.get("proration_details") or {"credited_items": None},
        price=price, plan=plan_of(price) if from_sub else None,
        tax_amounts=_tax_amounts(src.get("taxes")),
        tax_rates=_rates(_tax_rate_ids(src, stored), lookups),
        amount_excluding_tax=excluding, unit_amount_excluding_tax=unit)
    return out


def _invoice_item_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    parent = (src.get("parent") or {}).get("subscription_details") or {}
    pricing = src.get("pricing") or {}
    price_id = (pricing.get("price_details") or {}).get("price")
    price = lookups.rendered(str(price_id)) if price_id else None
    unit = pricing.get("unit_amount_decimal")
    if unit is None and src.get("quantity"):
        unit = format(Decimal(int(src.get("amount") or 0)) / Decimal(str(src["quantity"])), "f")
    out = _without(out, "parent", "pricing")
    out.update(subscription=parent.get("subscription"), subscription_item=parent.get("subscription_item"),
               price=price, plan=plan_of(price),
               unit_amount=int(Decimal(unit)) if unit is not None and Decimal(unit) % 1 == 0 else None,
               unit_amount_decimal=unit)
    return out


def _subscription_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    items = (src.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    out.update(current_period_start=first.get("current_period_start"),
               current_period_end=first.get("current_period_end"),
               plan=plan_of(first.get("price")) if len(items) == 1 else None,
               quantity=first.get("quantity") if len(items) == 1 else None)
    return out


def _subscription_item_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    price = src.get("price")
    out = _without(out, "current_period_start", "current_period_end")
    out["plan"] = plan_of(price if isinstance(price, Mapping) else lookups.rendered(str(price)))
    return out


def _payment_intent_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    out["invoice"] = lookups.invoice_of_payment(str(src.get("id"))) if src.get("id") else None
    return out


def _charge_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    pi = src.get("payment_intent")
    pi_id = pi.get("id") if isinstance(pi, Mapping) else pi
    out["invoice"] = lookups.invoice_of_payment(str(pi_id)) if pi_id else None
    return out


def _credit_note_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    refunds = src.get("refunds") or []
    first = refunds[0].get("refund") if refunds else None
    out = _without(out, "refunds", "total_taxes")
    out.update(refund=first.get("id") if isinstance(first, Mapping) else first,
               tax_amounts=_tax_amounts(src.get("total_taxes")))
    return out


def _credit_note_line_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    excluding, unit = _excluding_tax(src)
    ids = [str((t.get("tax_rate_details") or {}).get("tax_rate")) for t in src.get("taxes") or []]
    out = _without(out, "taxes")
    out.update(tax_amounts=_tax_amounts(src.get("taxes")), tax_rates=_rates(ids, lookups),
               amount_excluding_tax=excluding, unit_amount_excluding_tax=unit)
    return out


def _price_basil(out: Obj, src: Mapping[str, Any], lookups: Lookups) -> Obj:
    if isinstance(src.get("recurring"), Mapping):
        out["recurring"] = {**src["recurring"], "aggregate_usage": None, "trial_period_days": None}
    return out


def _drop(*keys: str) -> Callable[[Obj, Mapping[str, Any], Lookups], Obj]:
    return lambda out, src, lookups: _without(out, *keys)


def _kinds(*names: str) -> frozenset[str]:
    return frozenset(names)


def _has(key: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda src: key in src


def _lacks(key: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda src: key not in src


def _recurring_lacks_aggregate_usage(src: Mapping[str, Any]) -> bool:
    return isinstance(src.get("recurring"), Mapping) and "aggregate_usage" not in src["recurring"]


# Newest first: a version before a change's date gets the object as it was before the change.
CHANGES: tuple[Change, ...] = (
    Change("2026-05-27", _kinds("invoice"), _drop("amount_paid_off_stripe")),
    Change("2025-12-15", _kinds("line_item"), _drop("subtotal")),
    Change("2025-06-30", _kinds("subscription"), _drop("billing_mode")),
    Change("2025-05-28", _kinds("credit_note"), _drop("pre_payment_amount", "post_payment_amount")),
    Change("2025-03-31", _kinds("invoice"), _invoice_basil, _has("parent")),
    Change("2025-03-31", _kinds("line_item"), _line_basil, _has("pricing")),
    Change("2025-03-31", _kinds("invoiceitem"), _invoice_item_basil, _has("pricing")),
    Change("2025-03-31", _kinds("subscription"), _subscription_basil, _lacks("current_period_start")),
    Change("2025-03-31", _kinds("subscription_item"), _subscription_item_basil, _has("current_period_start")),
    Change("2025-03-31", _kinds("payment_intent"), _payment_intent_basil, _lacks("invoice")),
    Change("2025-03-31", _kinds("charge"), _charge_basil, _lacks("invoice")),
    Change("2025-03-31", _kinds("credit_note"), _credit_note_basil, _has("refunds")),
    Change("2025-03-31", _kinds("credit_note_line_item"), _credit_note_line_basil, _has("taxes")),
    Change("2025-03-31", _kinds("price"), _price_basil, _recurring_lacks_aggregate_usage),
)
NEWEST_CHANGE = max(c.date for c in CHANGES)


# The fields the shape before Basil adds, per object (spec schema name), and what each can be
# expanded into: ``expand[]`` paths through them are valid in those versions (tap-stripe, pinned to
# 2020-08-27, expands ``data.plan.tiers`` on line items, invoice items and subscriptions).
BEFORE_BASIL_FIELDS: dict[str, dict[str, list[str]]] = {
    "invoice": {"payment_intent": ["payment_intent"], "charge": ["charge"], "subscription": ["subscription"],
                "quote": ["quote"], "subscription_details": [], "total_tax_amounts": [], "transfer_data": []},
    "line_item": {"price": ["price"], "plan": ["plan"], "tax_rates": ["tax_rate"], "tax_amounts": [],
                  "proration_details": []},
    "invoiceitem": {"price": ["price"], "plan": ["plan"], "subscription": ["subscription"]},
    "subscription": {"plan": ["plan"]},
    "subscription_item": {"plan": ["plan"]},
    "payment_intent": {"invoice": ["invoice"]},
    "charge": {"invoice": ["invoice"]},
    "credit_note": {"refund": ["refund"], "tax_amounts": []},
    "credit_note_line_item": {"tax_amounts": [], "tax_rates": ["tax_rate"]},
}


def fields_of_version(date: str) -> dict[str, dict[str, list[str]]]:
    """What a version dated ``date`` has beyond the newest shape's fields (for ``expand[]``)."""
    return BEFORE_BASIL_FIELDS if date < "2025-03-31" else {}


def down_convert(node: Any, date: str, lookups: Lookups) -> Any:
    """``node`` (JSON in the newest shape) as the API version dated ``date`` renders it. Each
    object is converted before its children (a subscription reads its items' periods before the
    items lose them); events are left alone: their ``data`` is rendered once, in their version.
    Parts already in the older shape are left as they are."""
    if date >= NEWEST_CHANGE:
        return node
    changes = [c for c in CHANGES if date < c.date]

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("object")
        if kind == "event":
            return value
        out: Obj = dict(value)
        if isinstance(kind, str) and not value.get("deleted"):
            for change in changes:
                if kind in change.kinds and change.newer(value):
                    out = change.down(out, value, lookups)
        return {k: walk(v) for k, v in out.items()}
    return walk(node)


def previous_in(current: Obj, previous: Mapping[str, Any], convert: Callable[[Obj], Obj]) -> Obj:
    """An event's ``previous_attributes`` in an older shape: the object before the change (the
    current one with the previous values over it) and after, both converted, and the top-level
    fields that differ between them. So a renewal in a version before 2025-03-31 names the
    subscription's ``current_period_start``/``end``, not its items (Basil changelog)."""
    after = convert(current)
    before = convert({**current, **previous})
    return {k: before.get(k) for k in (*before, *(k for k in after if k not in before))
            if before.get(k) != after.get(k)}
