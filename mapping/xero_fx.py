"""Exchange rates as Xero quotes them, and which document may carry one.

Xero's ``CurrencyRate`` is *foreign units per one unit of the organisation's base currency*
(an invoice of 100.00 EUR at 1.25 in a GBP organisation is 80.00 GBP), and only a document in a
foreign currency has one: a base-currency document is always at 1, and a rate sent on it would
restate it in another money (a 500.00 GBP payment at Stripe's 1.27 USD rate was banked as
393.70 GBP).

Stripe's balance transaction quotes the other way round: ``exchange_rate`` is units of the
*settlement* currency per unit of the charge's currency. So Stripe's rate becomes Xero's only
when Stripe settled in the organisation's base currency (Xero rate = 1 / Stripe rate, to the
6 places Xero keeps); any other pair is not a rate billhub knows, and it sends none — Xero
then uses its own day rate, and the realised FX gain or loss on payment is Xero's to compute.

The mapping cannot know the base currency (it is the organisation's, read by the writer from
``GET Organisation``), so it leaves what it knows under the private ``_fx`` key and the writer
settles it with :func:`settle_rate` just before sending.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

XERO_RATE_PLACES = Decimal("0.000001")  # the spec: CurrencyRate max length [18].[6]


def fx_hint(document_currency: str, *, settled_in: str | None = None,
            settlement_rate: Decimal | None = None, xero_rate: Decimal | None = None) -> dict[str, str]:
    """What a mapping knows of a document's rate, for :func:`settle_rate`: a rate already in
    Xero's direction (read back from Xero), or Stripe's settlement rate and currency."""
    hint = {"currency": document_currency.upper()}
    if xero_rate is not None:
        hint["xero_rate"] = format(xero_rate, "f")
    if settled_in and settlement_rate is not None:
        hint["settled_in"], hint["settlement_rate"] = settled_in.upper(), format(settlement_rate, "f")
    return hint


def xero_rate(hint: dict[str, str], base_currency: str) -> Decimal | None:
    """The ``CurrencyRate`` to send for a document described by ``hint``, or None."""
    if hint.get("currency", "").upper() == base_currency.upper():
        return None  # a base-currency document has no rate
    if hint.get("xero_rate"):
        return Decimal(hint["xero_rate"])
    if hint.get("settled_in", "").upper() == base_currency.upper() and hint.get("settlement_rate"):
        stripe_rate = Decimal(hint["settlement_rate"])
        if stripe_rate > 0:
            return (Decimal(1) / stripe_rate).quantize(XERO_RATE_PLACES, rounding=ROUND_HALF_UP)
    return None


def settle_rate(payload: dict[str, Any], base_currency: str) -> dict[str, Any]:
    """``payload`` with its private ``_fx`` hint replaced by the rate Xero should get, if any."""
    hint = payload.pop("_fx", None)
    payload.pop("CurrencyRate", None)
    if isinstance(hint, dict):
        rate = xero_rate(hint, base_currency)
        if rate is not None:
            payload["CurrencyRate"] = rate
    return payload


__all__ = ["XERO_RATE_PLACES", "fx_hint", "settle_rate", "xero_rate"]
