"""A Stripe payout in QuickBooks Online (README "Fees and payouts"). Pure functions, Decimal only.

Payments and refund receipts go through a Stripe clearing account (an Account of type Bank);
a payout empties it in two documents carrying the same hub marker (``PrivateNote``):

* a ``Transfer`` of the net payout from the clearing account to the bank account
  (``FromAccountRef``, ``ToAccountRef``, ``Amount``, ``TxnDate`` = the arrival date): the hub's
  record of the payout (its link and its external id);
* a ``Purchase`` (an expense, ``PaymentType`` Cash) paid from the clearing account, one
  ``AccountBasedExpenseLineDetail`` line of the fee total to the fee expense account: the
  payout's ``_fee`` document, which the writer finds by its marker (never created twice).

So the clearing account moves by payments - refunds - fees - transfer = 0 for every payout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mapping.model import Entity, Payment, Payout, Refund
from mapping.quickbooks_wire import MappingError, money, parse_date, ref_value
from mapping.refs import RefResolver

FEE_KEY = "_fee"  # the Purchase body inside a payout's payload, and the Purchase read back with it
FEE_VENDOR = "Stripe"


@dataclass(frozen=True)
class PayoutAccounts:
    """The three accounts of a QuickBooks connection's posting model (``settings.py``)."""

    clearing: str | None
    bank: str | None
    fees: str | None

    def for_payouts(self) -> tuple[str, str, str]:
        missing = [name for name, value in (("clearing_account_id", self.clearing),
                                            ("payout_bank_account_id", self.bank),
                                            ("fee_account_id", self.fees)) if not value]
        if missing:
            raise MappingError(f"payouts need {', '.join(missing)} set for this QuickBooks connection "
                               "(README \"Fees and payouts\")")
        assert self.clearing and self.bank and self.fees
        if self.clearing == self.bank:
            raise MappingError("clearing_account_id and payout_bank_account_id name the same account; "
                               "a payout moves money from the Stripe clearing account to the bank")
        return self.clearing, self.bank, self.fees


def payout_from_canonical(entity: Payout, accounts: PayoutAccounts) -> dict[str, Any]:
    """The Transfer, with its fee Purchase under ``FEE_KEY`` (the writer sends both)."""
    if entity.status != "paid":
        # Only a payout that failed after it was booked reaches a ledger that way (sync/plan.py):
        # its transfer is in the books and the bank gave the money back to Stripe. Reversing it
        # is a bookkeeper's call (a reversing transfer, or deleting both documents): held.
        raise MappingError(f"payout {entity.id} is {entity.status} after it was booked as paid: "
                           "reverse its transfer and fee expense in QuickBooks by hand")
    clearing, bank, fees = accounts.for_payouts()
    day = entity.arrival_date.isoformat() if entity.arrival_date else None
    transfer: dict[str, Any] = {
        "FromAccountRef": {"value": clearing}, "ToAccountRef": {"value": bank},
        "Amount": entity.amount.to_decimal(),
    }
    if day:
        transfer["TxnDate"] = day
    if entity.fee_total.minor:
        fee: dict[str, Any] = {
            "AccountRef": {"value": clearing}, "PaymentType": "Cash",
            "TotalAmt": entity.fee_total.to_decimal(),
            "Line": [{"Amount": entity.fee_total.to_decimal(), "DetailType": "AccountBasedExpenseLineDetail",
                      "Description": f"Stripe fees settled by payout ({FEE_VENDOR})",
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": fees}}}],
        }
        if day:
            fee["TxnDate"] = day
        transfer[FEE_KEY] = fee
    return transfer


def payout_to_canonical(obj: Mapping[str, Any], refs: RefResolver, home_currency: str = "USD") -> Payout:
    """A hub Transfer read back with its fee Purchase (``FEE_KEY``, attached by the reader)."""
    currency = (ref_value(obj, "CurrencyRef") or home_currency).upper()
    amount = money(obj.get("Amount"), currency, "Amount")
    fee_doc = obj.get(FEE_KEY)
    fee = money(fee_doc.get("TotalAmt"), currency, "TotalAmt") if isinstance(fee_doc, Mapping) \
        else money(0, currency)
    arrival = parse_date(obj.get("TxnDate"))
    return Payout(id=refs.canonical_id("payout", str(obj["Id"])), amount=amount, fee_total=fee,
                  gross=amount + fee, currency=currency, arrival_date=arrival, status="paid")


def deposit_to_clearing(entity: Entity, body: dict[str, Any], clearing: str | None) -> dict[str, Any]:
    """Payments and refund receipts go into (and out of) the clearing account when one is set,
    so the clearing account holds exactly what Stripe holds until a payout empties it."""
    if clearing and isinstance(entity, (Payment, Refund)):
        body["DepositToAccountRef"] = {"value": clearing}
    return body
