"""Invoice lines as a ledger must be sent them so that every document totals to the cent of
its source.

A ledger computes a line as quantity x unit price, rounded to the currency's minor unit, at the
unit precision it keeps (Xero 4 places, QuickBooks 7). Stripe's line amount is the truth — a
proration of 153.29 for 3 seats is not 3 x 51.10 — so a line goes as its quantity and the
amount / quantity at the ledger's precision only when the ledger's own product gives back the
amount exactly; otherwise as one unit of the whole amount (the quantity is then said in the
description, never lost). Discounts follow the same rule: each line carries its share, and
the shares sum exactly to the invoice's discounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from mapping.model import Discount, InvoiceLine
from mapping.money import Money, exponent


def exact_quantity_and_unit(quantity: Decimal, amount: Money, places: int) -> tuple[Decimal, Decimal]:
    """(quantity, unit price at ``places`` decimals) whose product, rounded half-up to the
    currency's minor unit, is exactly ``amount``; (1, amount) when no such unit exists."""
    total = amount.to_decimal()
    if quantity and quantity > 0:
        unit = (total / quantity).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        minor = Decimal(1).scaleb(-exponent(amount.currency))
        if (quantity * unit).quantize(minor, rounding=ROUND_HALF_UP) == total:
            return quantity, unit.quantize(Decimal(1)) if unit == unit.to_integral_value() else unit
    return Decimal(1), total


def described(line: InvoiceLine, quantity: Decimal) -> str:
    """The line's description, saying the source quantity when the ledger gets one unit."""
    text = line.description or "Item"
    if quantity != line.quantity and line.quantity not in (0, 1):
        return f"{text} ({format(line.quantity.normalize(), 'f')} x)"
    return text


def line_discounts(lines: Sequence[InvoiceLine], discounts: Sequence[Discount], currency: str) -> list[int]:
    """Each line's discount in minor units: its own ``discount_amount`` where the source
    allocated one (Stripe allocates invoice-level coupons to lines too), else the invoice's
    discounts spread over the lines in proportion to their amounts, largest remainder first, so
    the shares always sum to the invoice's discounts exactly."""
    own = [line.discount_amount.minor if line.discount_amount else 0 for line in lines]
    invoice_total = sum(d.amount.minor for d in discounts if d.amount.currency == currency)
    rest = invoice_total - sum(own)
    base = [max(0, line.amount.minor - taken) for line, taken in zip(lines, own, strict=True)]
    pool = sum(base)
    if rest <= 0 or pool <= 0:
        return own
    shares = [rest * b // pool for b in base]
    remainders = sorted(range(len(lines)), key=lambda n: (-(rest * base[n] % pool), n))
    for n in remainders[: rest - sum(shares)]:
        shares[n] += 1
    return [taken + share for taken, share in zip(own, shares, strict=True)]


__all__ = ["described", "exact_quantity_and_unit", "line_discounts"]
