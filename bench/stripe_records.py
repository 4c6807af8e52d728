"""Deterministic Stripe-shaped invoice objects for the benchmarks, generated lazily.

``stripe_invoice(i, rev)`` returns the dict the Stripe API (and our emulator) returns for
``GET /v1/invoices`` with ``lines.data`` and tax rates expanded: the shape
``mapping/stripe.py`` reads. Revision 1 of a record is a real change (paid, line renamed), so
its canonical content hash differs from revision 0's.
"""

from __future__ import annotations

from typing import Any

from mapping.model import stable_id

CUSTOMERS = 5_000
PRODUCTS = 40
CURRENCIES = ("usd", "eur", "gbp", "jpy")
CREATED = 1_793_534_400  # 2026-11-01T12:00:00Z

_VAT: dict[str, Any] = {
    "id": "txr_1Bench00000001", "object": "tax_rate", "created": CREATED, "livemode": False,
    "active": True, "country": "DE", "description": None, "display_name": "VAT",
    "effective_percentage": 20.0, "flat_amount": None, "inclusive": False, "jurisdiction": None,
    "jurisdiction_level": None, "metadata": {}, "percentage": 20.0, "rate_type": "percentage",
    "state": None, "tax_type": None,
}


def _tax(amount: int) -> dict[str, Any]:
    return {"amount": amount * 20 // 100, "tax_behavior": "exclusive",
            "tax_rate_details": {"tax_rate": _VAT}, "taxability_reason": "standard_rated",
            "taxable_amount": amount, "type": "tax_rate_details"}


def stripe_invoice(i: int, rev: int = 0) -> dict[str, Any]:
    """Invoice number ``i`` at revision ``rev`` (0 = first load, 1 = changed since)."""
    inv_id = f"in_1Bench{i:010d}"
    currency = CURRENCIES[i % len(CURRENCIES)]
    scale = 1 if currency == "jpy" else 100
    lines: list[dict[str, Any]] = []
    for k in range(1 + i % 3):
        product = (i * 7 + k) % PRODUCTS
        quantity = 1 + (i + k) % 4
        unit = (5 + (i * 31 + k * 17) % 495) * scale
        amount = unit * quantity
        taxes = [_tax(amount)] if (i + k) % 2 == 0 and currency != "jpy" else []
        description = f"Plan {product} × {quantity}"
        if rev and k == 0:
            description += " (revised)"
        lines.append({
            "id": f"il_1Bench{i:010d}{k}", "object": "line_item", "amount": amount,
            "currency": currency, "description": description, "discount_amounts": [],
            "discountable": True, "discounts": [], "invoice": inv_id, "livemode": False,
            "metadata": {},
            "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                       "subscription_item_details": {"invoice_item": None, "proration": False,
                                                     "proration_details": {"credited_items": None},
                                                     "subscription": f"sub_1Bench{i % CUSTOMERS:08d}",
                                                     "subscription_item": f"si_1Bench{i:010d}{k}"}},
            "period": {"start": CREATED, "end": CREATED + 30 * 86400},
            "pretax_credit_amounts": [],
            "pricing": {"type": "price_details", "unit_amount_decimal": str(unit),
                        "price_details": {"price": f"price_1Bench{product:06d}",
                                          "product": f"prod_1Bench{product:06d}"}},
            "quantity": quantity, "subtotal": amount, "taxes": taxes,
        })
    subtotal = sum(line["amount"] for line in lines)
    total_taxes: list[dict[str, Any]] = [tax for line in lines for tax in line["taxes"]]
    tax = sum(t["amount"] for t in total_taxes)
    total = subtotal + tax
    paid = rev > 0 or i % 3 == 0
    return {
        "id": inv_id, "object": "invoice", "created": CREATED + i, "livemode": False,
        "account_country": "US", "account_name": "Bench Co",
        "amount_due": 0 if paid else total, "amount_paid": total if paid else 0,
        "amount_remaining": 0 if paid else total, "attempt_count": 1 if paid else 0,
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically",
        "currency": currency, "customer": f"cus_1Bench{i % CUSTOMERS:08d}",
        "customer_email": f"billing{i % CUSTOMERS}@example.test",
        "customer_name": f"Customer {i % CUSTOMERS}", "default_tax_rates": [], "discounts": [],
        "due_date": CREATED + 30 * 86400, "metadata": {"bench": "pipeline"},
        "number": f"BENCH-{i:07d}",
        "parent": {"type": "subscription_details",
                   "subscription_details": {"metadata": {},
                                            "subscription": f"sub_1Bench{i % CUSTOMERS:08d}"}},
        "period_start": CREATED - 30 * 86400, "period_end": CREATED,
        "status": "paid" if paid else "open",
        "status_transitions": {"finalized_at": CREATED + i, "marked_uncollectible_at": None,
                               "paid_at": CREATED + i + 3600 if paid else None, "voided_at": None},
        "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": total,
        "total_discount_amounts": [], "total_excluding_tax": subtotal, "total_taxes": total_taxes,
        "lines": {"object": "list", "data": lines, "has_more": False,
                  "url": f"/v1/invoices/{inv_id}/lines"},
    }


class StableRefs:
    """The RefResolver a first sync sees: every reference gets its deterministic id."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        key = (entity_type, external_id)
        found = self._ids.get(key)
        if found is None:
            found = stable_id("stripe", entity_type, external_id)
            if entity_type != "invoice":  # only the shared references are worth remembering
                self._ids[key] = found
        return found

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None
