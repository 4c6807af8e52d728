"""A Stripe payout in Xero (README "Fees and payouts"). Pure functions, exact to the minor unit.

Payments (and refunds paid out) go to and from a Stripe clearing bank account; a payout empties
it in two documents with the same marker (``Reference`` = ``payout:`` + hub id):

* a ``BankTransfer`` of the net payout from the clearing account to the bank account
  (``FromBankAccount``, ``ToBankAccount``, ``Amount``, ``Date`` = the arrival date): the linked
  record;
* a ``BankTransaction`` of ``Type`` SPEND from the clearing account to the contact "Stripe",
  one line of the fee total to the fee expense account (``TaxType`` the configured one, NONE by
  default: Stripe's fees carry no VAT in most countries), ``LineAmountTypes`` NoTax: the
  payout's ``_fee`` document, which the writer finds by its marker (never created twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mapping.model import Payout
from mapping.money import Money, normalize_currency
from mapping.xero_dates import parse_date

PAYOUT_PREFIX = "payout:"
FEE_KEY = "_fee"
FEE_CONTACT = "Stripe"


class PayoutMappingError(ValueError):
    """A payout that cannot be written or read (accounts unset, an inexact amount)."""


@dataclass(frozen=True)
class PayoutAccounts:
    """Account codes of a Xero connection's posting model (``connectors/xero/settings.py``)."""

    clearing: str
    bank: str | None
    fees: str
    fee_tax_type: str = "NONE"


def payout_to_xero(entity: Payout, accounts: PayoutAccounts) -> dict[str, Any]:
    """The BankTransfer, with its fee SPEND BankTransaction under ``FEE_KEY``."""
    if entity.status != "paid":
        # only a payout that failed after it was booked comes here (sync/plan.py): held
        raise PayoutMappingError(f"payout {entity.id} is {entity.status} after it was booked as paid: "
                                 "reverse its bank transfer and fee spend in Xero by hand")
    if not accounts.bank:
        raise PayoutMappingError("payouts need payout_bank_account_code set for this Xero connection "
                                 "(README \"Fees and payouts\")")
    if accounts.bank == accounts.clearing:
        raise PayoutMappingError("clearing_account_code and payout_bank_account_code name the same account")
    day = entity.arrival_date.isoformat() if entity.arrival_date else None
    reference = PAYOUT_PREFIX + entity.id
    transfer: dict[str, Any] = {"FromBankAccount": {"Code": accounts.clearing},
                                "ToBankAccount": {"Code": accounts.bank},
                                "Amount": entity.amount.to_decimal(), "Date": day, "Reference": reference}
    if entity.fee_total.minor:
        transfer[FEE_KEY] = {
            "Type": "SPEND", "Contact": {"Name": FEE_CONTACT}, "BankAccount": {"Code": accounts.clearing},
            "Date": day, "Reference": reference, "LineAmountTypes": "NoTax", "CurrencyCode": entity.currency,
            "LineItems": [{"Description": "Stripe fees settled by payout", "Quantity": Decimal(1),
                           "UnitAmount": entity.fee_total.to_decimal(), "AccountCode": accounts.fees,
                           "TaxType": accounts.fee_tax_type}]}
    return transfer


def _money(value: Any, currency: str) -> Money:
    if isinstance(value, float):
        raise PayoutMappingError("Xero amounts must be parsed as Decimal, not float")
    try:
        return Money.from_decimal(Decimal(str(value if value not in (None, "") else 0)), currency)
    except ValueError as exc:
        raise PayoutMappingError(str(exc)) from None


def payout_from_xero(data: Mapping[str, Any], canonical_id: str, base_currency: str | None = None) -> Payout:
    """A hub BankTransfer read back with its fee SPEND (``FEE_KEY``, attached by the connector)."""
    fee_doc = data.get(FEE_KEY)
    code = (fee_doc.get("CurrencyCode") if isinstance(fee_doc, Mapping) else None) or base_currency
    if not code:
        raise PayoutMappingError("the bank transfer names no currency")
    currency = normalize_currency(str(code))
    amount = _money(data.get("Amount"), currency)
    fee = _money(fee_doc.get("Total"), currency) if isinstance(fee_doc, Mapping) else Money(0, currency)
    when = parse_date(data.get("Date")) if data.get("Date") else None
    return Payout(id=canonical_id, amount=amount, fee_total=fee, gross=amount + fee, currency=currency,
                  arrival_date=when.date() if when else None, status="paid")
