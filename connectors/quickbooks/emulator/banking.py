"""Money between accounts: ``Transfer`` and ``Purchase`` (an expense paid from a bank or credit
card account), per Intuit's schema (Finance.xsd), and the ``CurrentBalance`` of bank accounts.

* Transfer: ``FromAccountRef``, ``ToAccountRef`` (both required, different, existing accounts)
  and ``Amount`` (required, > 0); no lines, no customer.
* Purchase: ``AccountRef`` (required: the account paid from), ``PaymentType`` (required: Cash,
  Check or CreditCard), ``Line`` (required; ``AccountBasedExpenseLineDetail`` lines with an
  ``AccountRef``, or ``ItemBasedExpenseLineDetail``), ``EntityRef`` optional; ``TotalAmt`` is the
  sum of the lines.
* ``CurrentBalance`` of an Account moves with what is deposited to it (Payment and Deposit
  ``DepositToAccountRef``), paid from it (RefundReceipt ``DepositToAccountRef``, Purchase
  ``AccountRef``) and transferred (Transfer), undone when the transaction changes or goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.names import check_ref, currency_ref
from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import BUSINESS_RULE, PACIFIC, REQUIRED, Fault, cents, money

BANKING = frozenset({"Transfer", "Purchase"})
PAYMENT_TYPES = frozenset({"Cash", "Check", "CreditCard"})


def banking(realm: Realm, entity: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Validate and complete a Transfer or Purchase (raises ``Fault`` as QuickBooks answers)."""
    obj.setdefault("TxnDate", now.astimezone(PACIFIC).date().isoformat())
    obj["CurrencyRef"] = currency_ref(str((obj.get("CurrencyRef") or {}).get("value") or realm.home_currency).upper())
    if entity == "Transfer":
        check_ref(realm, obj, "FromAccountRef", "Account", required=True)
        check_ref(realm, obj, "ToAccountRef", "Account", required=True)
        if obj["FromAccountRef"]["value"] == obj["ToAccountRef"]["value"]:
            raise Fault(6000, BUSINESS_RULE, "You can't transfer money to the same account")
        if obj.get("Amount") in (None, ""):
            raise Fault(2020, REQUIRED, "Required parameter Amount is missing in the request", element="Amount")
        amount = cents(money(obj["Amount"]))
        if amount <= 0:
            raise Fault(6000, BUSINESS_RULE, "The transfer amount must be greater than zero", element="Amount")
        obj["Amount"] = amount
        return obj
    check_ref(realm, obj, "AccountRef", "Account", required=True)
    if obj.get("PaymentType") not in PAYMENT_TYPES:
        raise Fault(2020, REQUIRED, "Required parameter PaymentType is missing or invalid "
                    "(Cash, Check or CreditCard)", element="PaymentType")
    if obj.get("EntityRef"):
        ref = obj["EntityRef"]
        kind = str(ref.get("type") or "Vendor") if isinstance(ref, Mapping) else "Vendor"
        check_ref(realm, obj, "EntityRef", kind, required=True)
    lines, total = [], Decimal(0)
    for number, line in enumerate(obj.get("Line") or []):
        line = dict(line)
        detail = line.get("DetailType")
        if detail == "AccountBasedExpenseLineDetail":
            check_ref(realm, line.get(detail) or {}, "AccountRef", "Account", required=True)
        elif detail != "ItemBasedExpenseLineDetail":
            raise Fault(2010, "Invalid Enumeration", f"Line DetailType {detail!r} is not supported",
                        element="DetailType")
        line["Amount"] = cents(money(line.get("Amount")))
        line["Id"], line["LineNum"] = str(number + 1), number + 1
        total += line["Amount"]
        lines.append(line)
    if not lines:
        raise Fault(2020, REQUIRED, "Required parameter Line is missing in the request", element="Line")
    obj["Line"], obj["TotalAmt"] = lines, total
    return obj


def _moves(entity: str, obj: Mapping[str, Any]) -> Iterator[tuple[str, Decimal]]:
    """(account id, signed amount) of what a transaction does to account balances."""
    def ref(key: str) -> str | None:
        value = obj.get(key)
        return str(value.get("value")) if isinstance(value, Mapping) and value.get("value") else None
    if entity == "Transfer":
        amount = money(obj.get("Amount"))
        if (source := ref("FromAccountRef")) and (target := ref("ToAccountRef")):
            yield source, -amount
            yield target, amount
    elif entity in ("Payment", "Deposit") and (account := ref("DepositToAccountRef")):
        yield account, money(obj.get("TotalAmt"))
    elif entity == "RefundReceipt" and (account := ref("DepositToAccountRef")):
        yield account, -money(obj.get("TotalAmt"))
    elif entity == "Purchase" and (account := ref("AccountRef")):
        yield account, -money(obj.get("TotalAmt"))


def move_balances(realm: Realm, entity: str, before: Mapping[str, Any] | None,
                  after: Mapping[str, Any] | None) -> None:
    """Take ``before``'s effect off the accounts and put ``after``'s on (either may be None)."""
    accounts = realm.table("Account")
    for obj, sign in ((before, -1), (after, 1)):
        for account_id, amount in _moves(entity, obj) if obj is not None else ():
            account = accounts.get(account_id)
            if account is not None:
                account["CurrentBalance"] = money(account.get("CurrentBalance")) + sign * amount
