"""Transaction rules: sales documents (lines, ``Amount = Qty * UnitPrice``, discounts, tax,
totals, balances, document numbers), payments and the invoice balances they move, and the
realm's exchange rates (``CurrencyRef`` + ``ExchangeRate``, ``HomeTotalAmt``/``HomeBalance``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.names import check_ref, currency_ref
from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.tax import check_currency, check_total, txn_tax
from connectors.quickbooks.emulator.wire import (
    BUSINESS_RULE,
    PACIFIC,
    REQUIRED,
    SALES_DOCS,
    Fault,
    cents,
    money,
    qbo_time,
)


def put_exchange_rate(realm: Realm, rate: Mapping[str, Any], now: datetime) -> None:
    source = str(rate["SourceCurrencyCode"]).upper()
    as_of = str(rate.get("AsOfDate") or now.date().isoformat())
    key = f"{source}-{as_of}"
    realm.table("ExchangeRate")[key] = {
        "Id": key, "SourceCurrencyCode": source,
        "TargetCurrencyCode": str(rate.get("TargetCurrencyCode", realm.home_currency)),
        "Rate": money(rate["Rate"]), "AsOfDate": as_of, "SyncToken": "0",
        "MetaData": {"LastUpdatedTime": qbo_time(now)}}


def latest_rate(realm: Realm, currency: str, on: str) -> dict[str, Any] | None:
    """The newest ``ExchangeRate`` row for ``currency`` on or before the date ``on``."""
    rows = [r for r in realm.table("ExchangeRate").values()
            if r["SourceCurrencyCode"] == currency and r["AsOfDate"] <= on]
    return max(rows, key=lambda r: r["AsOfDate"]) if rows else None


def transaction(realm: Realm, entity: str, obj: dict[str, Any], existing: Mapping[str, Any] | None,
                now: datetime) -> dict[str, Any]:
    check_ref(realm, obj, "CustomerRef", "Customer", required=True)
    obj.setdefault("TxnDate", now.astimezone(PACIFIC).date().isoformat())
    try:
        date.fromisoformat(str(obj["TxnDate"]))
    except ValueError:
        raise Fault(2010, "Invalid Date", f"TxnDate {obj['TxnDate']!r} is not a date") from None
    currency = str(obj.setdefault("CurrencyRef", {"value": realm.home_currency}).get("value")).upper()
    obj["CurrencyRef"] = currency_ref(currency)
    check_currency(realm, currency)
    if currency == realm.home_currency:
        obj["ExchangeRate"] = Decimal(1)
    else:
        if obj.get("ExchangeRate") not in (None, "", 0):
            rate: Decimal | None = money(obj["ExchangeRate"])
        else:
            row = latest_rate(realm, currency, str(obj["TxnDate"]))
            rate = row["Rate"] if row else None
        if rate is None or rate <= 0:
            raise Fault(6000, BUSINESS_RULE, f"No exchange rate for {currency} on {obj['TxnDate']}; supply ExchangeRate")
        obj["ExchangeRate"] = rate
    if entity == "Payment":
        return _payment(realm, obj)
    if entity == "RefundReceipt":
        obj.setdefault("DepositToAccountRef", {"value": "2", "name": "Checking"})
        check_ref(realm, obj, "DepositToAccountRef", "Account", required=True)
    lines, subtotal, discount = _lines(realm, obj)
    added_tax = txn_tax(realm, obj, lines)  # by the company's tax model (tax.py)
    lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    obj["Line"] = lines
    # Intuit: ApplyTaxAfterDiscount false or absent taxes before the discount, true after it; the
    # total is the subtotal less the discounts plus the (given) exclusive tax either way
    obj["ApplyTaxAfterDiscount"] = obj.get("ApplyTaxAfterDiscount") in (True, "true")
    total = subtotal - discount + added_tax
    check_total(entity, total)
    obj["TotalAmt"] = total
    if entity in SALES_DOCS and not obj.get("DocNumber"):
        obj["DocNumber"] = str(next(realm.doc_numbers))
    if len(str(obj.get("DocNumber", ""))) > 21:
        raise Fault(6000, BUSINESS_RULE, "DocNumber is longer than 21 characters", element="DocNumber")
    paid = Decimal(0)
    if existing is not None and entity in ("Invoice", "CreditMemo"):
        # what payments (or, for a memo, credit applications) already took off it stays taken
        paid = money(existing.get("TotalAmt")) - money(existing.get("Balance"))
    if entity in ("Invoice", "CreditMemo"):
        obj["Balance"] = total - paid
        keep_payment_links(obj, existing)
    if entity == "CreditMemo":
        obj["RemainingCredit"] = obj["Balance"]  # the credit not yet applied to an invoice
    if currency != realm.home_currency:
        obj["HomeTotalAmt"] = cents(total * obj["ExchangeRate"])
        if "Balance" in obj:
            obj["HomeBalance"] = cents(obj["Balance"] * obj["ExchangeRate"])
    return obj


def _lines(realm: Realm, obj: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """The document's lines renumbered, with (subtotal, discount); the subtotal line is rebuilt."""
    lines, subtotal, discount = [], Decimal(0), Decimal(0)
    for number, line in enumerate(x for x in obj.get("Line", []) if x.get("DetailType") != "SubTotalLineDetail"):
        line = dict(line)
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            detail = dict(line.get("SalesItemLineDetail") or {})
            if "Amount" not in line:
                raise Fault(2020, REQUIRED, "Required parameter Line.Amount is missing in the request",
                            element="Amount")
            amount = money(line["Amount"])
            if "Qty" in detail and "UnitPrice" in detail and \
                    cents(money(detail["Qty"]) * money(detail["UnitPrice"])) != cents(amount):
                raise Fault(6070, "Amount is not equal to UnitPrice * Qty",
                            f"Amount {amount} is not equal to UnitPrice * Qty", element="Amount")
            if detail.get("ItemRef"):
                check_ref(realm, detail, "ItemRef", "Item", required=True)
            if detail.get("TaxCodeRef"):
                check_ref(realm, detail, "TaxCodeRef", "TaxCode", required=True)
            line["SalesItemLineDetail"] = detail
            line["Amount"] = cents(amount)
            subtotal += line["Amount"]
        elif kind == "DiscountLineDetail":
            detail = dict(line.get("DiscountLineDetail") or {})
            if detail.get("PercentBased") and detail.get("DiscountPercent") not in (None, ""):
                # Intuit: a percent discount's Amount is that percent of the subtotal above it
                line["Amount"] = cents(subtotal * money(detail["DiscountPercent"]) / 100)
            else:
                line["Amount"] = cents(money(line.get("Amount")))
            if line["Amount"] < 0:
                raise Fault(6000, BUSINESS_RULE, "A discount cannot be negative", element="Amount")
            discount += line["Amount"]
        elif kind == "DescriptionOnly":
            line["Amount"] = Decimal(0)
        else:
            raise Fault(2010, "Invalid Enumeration", f"Line DetailType {kind!r} is not supported",
                        element="DetailType")
        line["Id"], line["LineNum"] = str(number + 1), number + 1
        lines.append(line)
    if not lines:
        raise Fault(2020, REQUIRED, "Required parameter Line is missing in the request", element="Line")
    if discount and discount > subtotal:
        raise Fault(6000, BUSINESS_RULE, f"The discount ({discount}) is more than the subtotal ({subtotal})",
                    element="DiscountLineDetail")
    return lines, subtotal, discount


def _payment(realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("TotalAmt") in (None, ""):
        raise Fault(2020, REQUIRED, "Required parameter TotalAmt is missing in the request", element="TotalAmt")
    total = cents(money(obj["TotalAmt"]))
    applied, lines = Decimal(0), []
    for line in obj.get("Line", []):
        line = dict(line)
        amount = cents(money(line.get("Amount")))
        for linked in line.get("LinkedTxn", []):
            kind = linked.get("TxnType")
            if kind in ("Invoice", "CreditMemo"):
                target = realm.table(kind).get(str(linked.get("TxnId")))
                if target is None:
                    raise Fault(2500, "Invalid Reference Id",
                                f"Invalid Reference Id : {kind} {linked.get('TxnId')!r} does not exist")
                if target["CustomerRef"]["value"] != obj["CustomerRef"]["value"]:
                    raise Fault(6000, BUSINESS_RULE, f"The {kind.lower()} belongs to another customer")
        line["Amount"] = amount
        # a credit memo's line is credit used: it pays the invoice lines with the cash (Intuit:
        # applying a credit memo is a Payment linking both, its TotalAmt the cash, 0 for credit only)
        credit = any(linked.get("TxnType") == "CreditMemo" for linked in line.get("LinkedTxn", []))
        applied += -amount if credit else amount
        lines.append(line)
    if applied > total:
        raise Fault(6000, BUSINESS_RULE, "The payment amount is less than the amounts applied to transactions")
    obj["Line"], obj["TotalAmt"], obj["UnappliedAmt"] = lines, total, total - applied
    if obj["CurrencyRef"]["value"] != realm.home_currency:
        obj["HomeTotalAmt"] = cents(total * obj["ExchangeRate"])
    return obj


def apply_payment(realm: Realm, payment: Mapping[str, Any], sign: int, now: datetime) -> None:
    """Move invoice balances (and the credit memos' remaining credit a payment uses): -1 applies
    a payment, +1 takes it back (update/delete/void)."""
    for line in payment.get("Line", []):
        for linked in line.get("LinkedTxn", []):
            kind = linked.get("TxnType")
            invoice = realm.table(kind).get(str(linked.get("TxnId"))) if kind in ("Invoice", "CreditMemo") else None
            if invoice is None:
                continue
            balance = money(invoice.get("Balance")) + sign * money(line.get("Amount"))
            if balance < 0:
                raise Fault(6000, BUSINESS_RULE,
                            f"The amount applied exceeds the open balance of {kind.lower()} {invoice['Id']}")
            invoice["Balance"] = balance
            _link(invoice, str(payment["Id"]), applied=sign < 0)
            if kind == "CreditMemo":
                invoice["RemainingCredit"] = balance
            if "HomeBalance" in invoice:
                invoice["HomeBalance"] = cents(balance * money(invoice.get("ExchangeRate", 1)))
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
            invoice["MetaData"] = {**invoice["MetaData"], "LastUpdatedTime": qbo_time(now)}


def _link(document: dict[str, Any], payment_id: str, *, applied: bool) -> None:
    """Intuit lists on an invoice (and on a credit memo a payment applies) the payments applied
    to it: ``LinkedTxn`` ``{"TxnId": payment, "TxnType": "Payment"}``, gone when it is taken back."""
    links = [t for t in document.get("LinkedTxn") or []
             if not (t.get("TxnType") == "Payment" and str(t.get("TxnId")) == payment_id)]
    if applied:
        links.append({"TxnId": payment_id, "TxnType": "Payment"})
    if links:
        document["LinkedTxn"] = links
    else:
        document.pop("LinkedTxn", None)


def keep_payment_links(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
    """An update keeps the payments linked to the document (only applying or taking back a
    payment changes them); links of other kinds are the body's."""
    links = [t for t in obj.get("LinkedTxn") or [] if t.get("TxnType") != "Payment"]
    links += [t for t in (existing or {}).get("LinkedTxn") or [] if t.get("TxnType") == "Payment"]
    if links:
        obj["LinkedTxn"] = links
    else:
        obj.pop("LinkedTxn", None)
