"""The money-level view of a document for the diff, and the tolerance rules that compare it.

An invoice is compared on what a bookkeeper reads off it: ``total``, ``subtotal`` (lines before
discounts), ``tax`` and ``tax_by_rate`` (percent -> minor units), ``discount`` (all discounts),
``amount_paid`` (payments), ``amount_credited`` (credit notes applied: total less payments less
what is still owed — Stripe's ``pre_payment_credit_notes_amount`` plus any customer-balance
credit, Xero's ``AmountCredited``, Salesforce's ``Amount_Credited__c``), ``amount_due`` (what is
still owed), ``currency`` and ``status`` normalised to ``open`` / ``paid`` / ``void`` (a draft
or uncollectible invoice is open; a finalised one with nothing owed is paid, as QuickBooks,
which has no status, reads). A void document is compared as a void: status and currency only,
since systems void differently (QuickBooks zeroes the amounts, Xero and Stripe keep them).

A side that cannot express a field gives ``None`` (e.g. QuickBooks without its tax rates): it is
not drifting on it. QuickBooks' invoice cannot say what of its balance went to credit (a credit
memo is applied by a Payment linking both, and the invoice only keeps its ``Balance``), so there
the allocation is compared as one: ``amount_paid`` is payments and credits on both sides
(``comparable``). Tolerances:

* ``tax`` and each rate of ``tax_by_rate``: ``line_rounding_minor`` per line, because a ledger may
  compute tax per line and round each one;
* ``total`` and ``amount_due``: exact, except by exactly the tax difference that rounding
  excuses (the ledger's total is its lines plus its own rounded tax). A balance the hub has as
  settled (``amount_due`` 0) must be settled: 0.01 left owing forever is drift;
* everything else exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mapping.model import Invoice, decimal_str
from mapping.xero_fx import XERO_RATE_PLACES, fx_hint, xero_rate

ROUNDED_PER_LINE = frozenset({"tax", "tax_by_rate"})
FOLLOWS_TAX = frozenset({"total", "amount_due"})


# Invoice fields a system's records do not carry (its mapping fills them with stand-ins):
# Salesforce's Billing_Invoice__c has the amount, what is paid and the status, nothing of tax.
UNSAID: Mapping[str, frozenset[str]] = {"salesforce": frozenset({"subtotal", "tax", "tax_by_rate", "discount"}),
                                        "quickbooks": frozenset({"amount_credited"})}


# Customer fields only some systems hold: the Account's Billing_Status__c is Salesforce's alone
# (a Stripe customer's or a ledger's copy of the hub's derivation is no record of it).
HELD_ONLY_BY: Mapping[str, str] = {"billing_status": "salesforce"}


def said_by(system: str, entity_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with what ``system`` cannot express set to None (so it is never drift)."""
    if entity_type == "customer":
        return {k: (None if HELD_ONLY_BY.get(k, system) != system else v) for k, v in fields.items()}
    unsaid = UNSAID.get(system, frozenset()) if entity_type == "invoice" else frozenset()
    return {k: (None if k in unsaid else v) for k, v in fields.items()}


def payment_rates(ours: dict[str, Any], theirs: dict[str, Any], system: str,
                  home: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both payment views with ``exchange_rate`` as the ledger quotes it, and only where the hub
    prescribes one (else None on both sides: the ledger's own day rate is not drift).

    The hub prescribes Stripe's settlement rate when Stripe settled in the ledger's home currency
    and the payment is foreign there (``connectors/quickbooks/writes.py`` ``_exchange_rate``:
    home units per payment unit, as QuickBooks keeps it; ``mapping/xero_fx.py`` ``xero_rate``:
    its inverse to 6 places, Xero's ``CurrencyRate``). A ledger's payment reads back as home
    units per payment unit (``Payment.exchange_rate``), so Xero's is inverted back to compare."""
    mine, seen = ours.get("exchange_rate"), theirs.get("exchange_rate")
    expected: Decimal | None = None
    if home and mine and ours.get("currency") != home:
        hint = fx_hint(str(ours.get("currency")), settled_in=ours.get("settled_in"), settlement_rate=Decimal(mine))
        if system == "xero":
            expected = xero_rate(hint, home)
        elif str(ours.get("settled_in") or "").upper() == home.upper():
            expected = Decimal(mine)
    actual: Decimal | None = None
    if expected is not None and seen:
        actual = Decimal(seen)
        if system == "xero" and actual:
            actual = (Decimal(1) / actual).quantize(XERO_RATE_PLACES, rounding=ROUND_HALF_UP)

    def said(view: dict[str, Any], rate: Decimal | None) -> dict[str, Any]:
        return {**view, "settled_in": None, "exchange_rate": decimal_str(rate) if rate is not None else None}
    return said(ours, expected), said(theirs, actual)


def invoice_status(invoice: Invoice) -> str:
    """open / paid / void, whatever each system calls it."""
    if invoice.status == "void":
        return "void"
    if invoice.status == "paid" or (invoice.status != "draft" and invoice.amount_due.minor == 0):
        return "paid"
    return "open"


def tax_by_rate(invoice: Invoice) -> dict[str, int] | None:
    """Tax per percent rate, or None when the document does not say its rates."""
    rates: dict[str, int] = {}
    if invoice.tax_lines:
        for tax_line in invoice.tax_lines:
            if not tax_line.rate and tax_line.amount.minor:
                return None  # an amount with no rate: the system keeps only the total
            key = decimal_str(Decimal(tax_line.rate))
            rates[key] = rates.get(key, 0) + tax_line.amount.minor
        return rates
    taxed = [line for line in invoice.lines if line.tax_amount is not None]
    if not taxed or any(line.tax_rate is None for line in taxed):
        return None
    for line in taxed:
        assert line.tax_rate is not None and line.tax_amount is not None
        key = decimal_str(line.tax_rate)
        rates[key] = rates.get(key, 0) + line.tax_amount.minor
    return rates


def invoice_fields(invoice: Invoice) -> dict[str, Any]:
    status = invoice_status(invoice)
    if status == "void":
        return {"currency": invoice.total.currency, "status": "void"}
    return {
        # the lines' sum (the canonical meaning): Xero's own SubTotal leaves inclusive tax out
        "total": invoice.total.minor, "tax": invoice.tax.minor,
        "subtotal": sum(line.amount.minor for line in invoice.lines) if invoice.lines else invoice.subtotal.minor,
        "tax_by_rate": tax_by_rate(invoice),
        "discount": sum(d.amount.minor for d in invoice.discounts),
        "amount_paid": invoice.amount_paid.minor, "amount_credited": credited(invoice),
        "amount_due": invoice.amount_due.minor, "currency": invoice.total.currency, "status": status,
    }


def credited(invoice: Invoice) -> int:
    """What credit, not payment, settled: total less payments less what is still owed."""
    return invoice.total.minor - invoice.amount_paid.minor - invoice.amount_due.minor


def comparable(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both views with the allocation as one ``amount_paid`` (payments and credits) when either
    side cannot split it (``amount_credited`` None); else as they are."""
    if ours.get("amount_credited") is not None and theirs.get("amount_credited") is not None:
        return ours, theirs

    def folded(view: dict[str, Any]) -> dict[str, Any]:
        if view.get("amount_paid") is None:
            return view
        return {**view, "amount_paid": int(view["amount_paid"]) + int(view.get("amount_credited") or 0),
                "amount_credited": None}
    return folded(ours), folded(theirs)


def invoice_differing(ours: Mapping[str, Any], theirs: Mapping[str, Any], lines: int,
                      line_rounding_minor: int) -> list[str]:
    """The invoice fields that differ beyond the tolerances above."""
    allowed = line_rounding_minor * max(1, lines)
    differing: set[str] = set()
    tax_delta = 0  # the tax difference rounding excuses, which total and amount due may carry
    for name in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(name), theirs.get(name)
        if mine is None or other is None or name in FOLLOWS_TAX:
            continue  # a side that cannot express a field is not drifting on it
        if name == "tax":
            if abs(int(other) - int(mine)) <= allowed:
                tax_delta = int(other) - int(mine)
            else:
                differing.add(name)
        elif name == "tax_by_rate":
            if set(mine) != set(other) or any(abs(int(other[k]) - int(mine[k])) > allowed for k in mine):
                differing.add(name)
        elif mine != other:
            differing.add(name)
    for name in FOLLOWS_TAX:
        mine, other = ours.get(name), theirs.get(name)
        if mine is None or other is None or mine == other:
            continue
        settled = name == "amount_due" and int(mine) == 0
        if settled or int(other) - int(mine) != tax_delta:
            differing.add(name)
    return sorted(differing)


__all__ = ["ROUNDED_PER_LINE", "comparable", "credited", "invoice_differing", "invoice_fields", "invoice_status", "payment_rates", "said_by", "tax_by_rate"]
