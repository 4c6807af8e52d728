"""What Intuit fills in on documents (issue 19, items 5-7): references carry ``name`` beside
``value``; an invoice lists the payments applied to it in ``LinkedTxn`` (a credit memo's
application too, which is a Payment linking both), kept through an update and gone when the
payment is; ``Customer.Balance`` is what is open (invoices less unapplied credit)."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from tests.connectors.quickbooks.conftest import QboEnv


def _line(item: str, amount: str) -> dict[str, Any]:
    return {"DetailType": "SalesItemLineDetail", "Amount": amount,
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "TaxCodeRef": {"value": "NON"}}}


def _pay(customer: str, total: str, *links: tuple[str, str, str]) -> dict[str, Any]:
    return {"CustomerRef": {"value": customer}, "TotalAmt": total,
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": txn, "TxnType": kind}]} for kind, txn, amount in links]}


def test_references_payment_links_and_customer_balance(qbo_env: QboEnv) -> None:
    ids = qbo_env.seed(Customer=[{"DisplayName": "Linked Ltd"}], Item=[{"Name": "Seats"}])
    (customer,), (item,) = ids["Customer"], ids["Item"]
    (invoice,) = qbo_env.seed(Invoice=[{"CustomerRef": {"value": customer}, "Line": [_line(item, "300.00")]}])["Invoice"]
    stored = qbo_env.table("Invoice")[invoice]
    assert stored["CustomerRef"] == {"value": customer, "name": "Linked Ltd"}
    assert stored["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    detail = stored["Line"][0]["SalesItemLineDetail"]
    assert detail["ItemRef"] == {"value": item, "name": "Seats"} and detail["TaxCodeRef"] == {"value": "NON", "name": "NON"}
    assert "LinkedTxn" not in stored

    (payment,) = qbo_env.seed(Payment=[_pay(customer, "100.00", ("Invoice", invoice, "100.00"))])["Payment"]
    assert qbo_env.table("Invoice")[invoice]["LinkedTxn"] == [{"TxnId": payment, "TxnType": "Payment"}]
    assert qbo_env.table("Invoice")[invoice]["Balance"] == Decimal("200.00")
    assert qbo_env.table("Customer")[customer]["Balance"] == Decimal("200.00")

    # a credit memo applied: a Payment of no money linking the invoice and the memo
    (memo,) = qbo_env.seed(CreditMemo=[{"CustomerRef": {"value": customer}, "Line": [_line(item, "50.00")]}])["CreditMemo"]
    assert qbo_env.table("Customer")[customer]["Balance"] == Decimal("150.00")  # 200 owed less 50 credit
    (applied,) = qbo_env.seed(Payment=[_pay(customer, "0", ("Invoice", invoice, "50.00"),
                                            ("CreditMemo", memo, "50.00"))])["Payment"]
    inv = qbo_env.table("Invoice")[invoice]
    assert inv["LinkedTxn"] == [{"TxnId": payment, "TxnType": "Payment"}, {"TxnId": applied, "TxnType": "Payment"}]
    assert qbo_env.table("CreditMemo")[memo]["LinkedTxn"] == [{"TxnId": applied, "TxnType": "Payment"}]
    assert (inv["Balance"], qbo_env.table("CreditMemo")[memo]["RemainingCredit"]) == (Decimal("150.00"), Decimal(0))
    assert qbo_env.table("Customer")[customer]["Balance"] == Decimal("150.00")

    # a full update of the invoice (no LinkedTxn in the body) keeps its payments' links
    qbo_env.on_loop(functools.partial(qbo_env.emulator.save, qbo_env.realm, "Invoice", {
        "Id": invoice, "SyncToken": inv["SyncToken"], "CustomerRef": {"value": customer},
        "Line": [_line(item, "300.00")], "PrivateNote": "edited"}))
    assert [t["TxnId"] for t in qbo_env.table("Invoice")[invoice]["LinkedTxn"]] == [payment, applied]

    qbo_env.on_loop(functools.partial(qbo_env.emulator.remove, qbo_env.realm, "Payment", payment))
    inv = qbo_env.table("Invoice")[invoice]
    assert inv["LinkedTxn"] == [{"TxnId": applied, "TxnType": "Payment"}] and inv["Balance"] == Decimal("250.00")
    assert qbo_env.table("Customer")[customer]["Balance"] == Decimal("250.00")


def test_a_us_invoices_tax_code_reference_is_kept_with_its_name(qbo_env: QboEnv) -> None:
    """Issue 18's US sales tax: ``TxnTaxDetail.TxnTaxCodeRef`` (the code billhub's tax_codes
    resolve) and ``TotalTax`` stay as sent, the reference named; the global model's TaxLine per
    rate is test_global_tax's."""
    (customer,) = qbo_env.seed(Customer=[{"DisplayName": "Taxed Inc"}])["Customer"]
    (invoice,) = qbo_env.seed(Invoice=[{
        "CustomerRef": {"value": customer}, "TxnTaxDetail": {"TxnTaxCodeRef": {"value": "TAX"}, "TotalTax": "8.88"},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "100.00",
                  "SalesItemLineDetail": {"TaxCodeRef": {"value": "TAX"}}}]}])["Invoice"]
    stored = qbo_env.table("Invoice")[invoice]
    assert stored["TxnTaxDetail"] == {"TxnTaxCodeRef": {"value": "TAX", "name": "TAX"}, "TotalTax": Decimal("8.88")}
    assert stored["TotalAmt"] == Decimal("108.88")
