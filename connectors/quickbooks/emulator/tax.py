"""Tax as a QuickBooks Online company computes it, by its country's model.

* A **US** company (sales tax): lines say ``TaxCodeRef`` ``TAX``/``NON``; the document's tax is
  the ``TxnTaxDetail.TotalTax`` given (the hub's Stripe tax), outside the line amounts.
* Any **other** company (Intuit's global tax model, VAT/GST): every sales line needs a
  ``TaxCodeRef`` of the company (else "Make sure all your transactions have a VAT rate"); the
  line ``Amount`` is always net of tax and an inclusive line carries its gross in
  ``SalesItemLineDetail.TaxInclusiveAmt``; ``TxnTaxDetail.TaxLine`` is rebuilt with one
  ``TaxLineDetail`` per rate of the codes used (``NetAmountTaxable`` the lines' net): its
  ``Amount`` the one supplied for that rate (an override, as QuickBooks accepts), else the
  inclusive lines' gross less net, else the net at the rate, rounded half up; ``TotalTax`` their
  sum; ``GlobalTaxCalculation`` one of ``TaxExcluded`` / ``TaxInclusive`` / ``NotApplicable``.

What every company refuses: a sales document whose total is below zero ("Transaction amount
must be positive"), and a foreign ``CurrencyRef`` while multicurrency is off.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.wire import BUSINESS_RULE, Fault, cents, money

CALCULATIONS = ("TaxExcluded", "TaxInclusive", "NotApplicable")


def check_currency(realm: Realm, currency: str) -> None:
    if currency != realm.home_currency and not realm.multicurrency:
        raise Fault(6000, BUSINESS_RULE, f"Multicurrency is not turned on for this company: a transaction in "
                    f"{currency} cannot be saved in a {realm.home_currency} company",
                    element="CurrencyRef")


def check_total(entity: str, total: Decimal) -> None:
    if entity in ("Invoice", "CreditMemo", "RefundReceipt") and total < 0:
        raise Fault(6000, BUSINESS_RULE, "Transaction amount must be positive.", element="TotalAmt")


def txn_tax(realm: Realm, obj: dict[str, Any], lines: list[dict[str, Any]]) -> Decimal:
    """Settle the document's ``TxnTaxDetail`` (and ``GlobalTaxCalculation``); returns the tax
    its total adds to the lines' amounts."""
    given = obj.get("TxnTaxDetail") or {}
    if realm.country == "US":
        tax = cents(money(given.get("TotalTax")))
        obj["TxnTaxDetail"] = {**given, "TotalTax": tax}
        code_ref = given.get("TxnTaxCodeRef")
        code = realm.table("TaxCode").get(str(code_ref.get("value"))) if isinstance(code_ref, Mapping) else None
        if code is not None and isinstance(code_ref, Mapping):  # its name, as Intuit's references carry
            obj["TxnTaxDetail"]["TxnTaxCodeRef"] = {**code_ref, "name": code.get("Name")}
        return Decimal(0) if obj.get("GlobalTaxCalculation") == "TaxInclusive" else tax
    calculation = obj.setdefault("GlobalTaxCalculation", "TaxExcluded")
    if calculation not in CALCULATIONS:
        raise Fault(2170, "Invalid Enumeration", f"Invalid Enumeration : {calculation}",
                    element="GlobalTaxCalculation")
    supplied = {str((t.get("TaxLineDetail") or {}).get("TaxRateRef", {}).get("value")): cents(money(t.get("Amount")))
                for t in given.get("TaxLine") or [] if isinstance(t, Mapping)}
    per_rate: dict[str, list[Decimal]] = {}  # rate id -> [net, tax before rounding]
    for line in lines:
        if line.get("DetailType") != "SalesItemLineDetail":
            continue
        detail = line["SalesItemLineDetail"]
        if calculation == "NotApplicable":
            continue
        code = realm.table("TaxCode").get(str((detail.get("TaxCodeRef") or {}).get("value", "")))
        if code is None:
            raise Fault(6000, BUSINESS_RULE, "Make sure all your transactions have a VAT rate before you save.",
                        element="TaxCodeRef")
        net = line["Amount"]
        if calculation == "TaxInclusive" and detail.get("TaxInclusiveAmt") not in (None, ""):
            inside = cents(money(detail["TaxInclusiveAmt"])) - net
        else:
            inside = None
        rates = [str(d["TaxRateRef"]["value"]) for d in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail", [])]
        for rate_id in rates:
            agg = per_rate.setdefault(rate_id, [Decimal(0), Decimal(0)])
            agg[0] += net
            pct = money(realm.table("TaxRate")[rate_id]["RateValue"])
            agg[1] += inside if inside is not None and len(rates) == 1 else net * pct / 100
        if calculation == "TaxInclusive" and inside is None:
            # no gross given: QuickBooks takes Amount as the net and adds the tax on top
            detail["TaxInclusiveAmt"] = net + cents(sum(net * money(realm.table("TaxRate")[r]["RateValue"]) / 100
                                                        for r in rates))
    tax_lines: list[dict[str, Any]] = []
    for rate_id, (net, computed) in per_rate.items():
        rate = realm.table("TaxRate")[rate_id]
        amount = supplied.get(rate_id, cents(computed))
        tax_lines.append({"Amount": amount, "DetailType": "TaxLineDetail", "TaxLineDetail": {
            "TaxRateRef": {"value": rate_id, "name": rate.get("Name")}, "PercentBased": True,
            "TaxPercent": money(rate["RateValue"]), "NetAmountTaxable": net}})
    total: Decimal = sum((Decimal(t["Amount"]) for t in tax_lines), Decimal(0))
    obj["TxnTaxDetail"] = {"TotalTax": total, "TaxLine": tax_lines} if tax_lines else {"TotalTax": total}
    return total


__all__ = ["CALCULATIONS", "check_currency", "check_total", "txn_tax"]
