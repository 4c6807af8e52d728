"""Customer balances: ``Customer.Balance`` (and ``BalanceWithJobs``) kept as QuickBooks Online
keeps them, the customer's open balance in its own currency.

Intuit (IntuitNamesTypes.xsd, Customer.Balance): "the current open balance (unpaid amount) for
that customer"; on create it is the opening balance, afterwards read only. What is open is what
the customer owes less the credit it holds: the ``Balance`` of its invoices, less the
``RemainingCredit`` of its credit memos and the ``UnappliedAmt`` of its payments (money received
and not applied to an invoice is the customer's credit, shown as a negative open balance). A
refund receipt is a cash refund and leaves the balance be; a voided document has zero amounts.
The emulator has no sub-customers, so ``BalanceWithJobs`` equals ``Balance``.

Every write moves it by difference: the documents a write may change (the document itself and,
for a payment, every invoice and credit memo it links, before and after) are summed before and
after it, and each customer's balance moves by what changed. Neither its ``SyncToken`` nor its
``LastUpdatedTime`` moves: the customer record itself was not edited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import money

# what of each document the customer still owes (+) or holds as credit (-)
OPEN_AMOUNT = {"Invoice": ("Balance", 1), "CreditMemo": ("RemainingCredit", -1), "Payment": ("UnappliedAmt", -1)}
READ_ONLY = ("Balance", "BalanceWithJobs")

Doc = tuple[str, str]


def documents(entity: str, *objs: Mapping[str, Any] | None) -> set[Doc]:
    """The (entity, Id) of the documents whose open amount a write of these versions may move."""
    found: set[Doc] = set()
    for obj in objs:
        if obj is None or not obj.get("Id"):
            continue
        if entity in OPEN_AMOUNT:
            found.add((entity, str(obj["Id"])))
        if entity == "Payment":
            for line in obj.get("Line", []) or []:
                for linked in line.get("LinkedTxn", []) or []:
                    if linked.get("TxnType") in ("Invoice", "CreditMemo"):
                        found.add((str(linked["TxnType"]), str(linked.get("TxnId"))))
    return found


def open_amounts(realm: Realm, docs: Iterable[Doc]) -> dict[str, Decimal]:
    """Customer Id -> the open amount of these documents as they stand now."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for entity, doc_id in docs:
        obj = realm.table(entity).get(doc_id)
        if obj is None:
            continue
        key, sign = OPEN_AMOUNT[entity]
        customer = str((obj.get("CustomerRef") or {}).get("value") or "")
        value = obj.get(key, obj.get("Balance") if entity == "CreditMemo" else None)
        sums[customer] += sign * money(value or 0)
    return sums


def move_customer_balances(realm: Realm, before: Mapping[str, Decimal], after: Mapping[str, Decimal]) -> None:
    customers = realm.table("Customer")
    for customer_id in set(before) | set(after):
        delta = after.get(customer_id, Decimal(0)) - before.get(customer_id, Decimal(0))
        customer = customers.get(customer_id)
        if customer is None or not delta:
            continue
        balance = money(customer.get("Balance") or 0) + delta
        customer["Balance"] = customer["BalanceWithJobs"] = balance


def keep_read_only(existing: Mapping[str, Any] | None, obj: dict[str, Any]) -> None:
    """An update never sets a customer's balance (only a create's opening balance does)."""
    if existing is None:
        obj.setdefault("BalanceWithJobs", obj.get("Balance", Decimal(0)))
        return
    for key in READ_ONLY:
        obj[key] = existing.get(key, Decimal(0))
