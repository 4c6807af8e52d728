"""Issue 18's posting model for credit: credit notes, refunds and negative invoices, made through
the official Stripe SDK and read back from the QuickBooks and Xero emulators as a bookkeeper
would (README "Posting model"): one document per credit, with its tax, applied or paid out,
and ``hub diff`` quiet afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import balances_of, customer_balances, hub_diff_is_clean
from tests.e2e.test_drift import Clock, rebuild_hub
from tests.e2e.test_scenarios import canonical, minor, qbo_invoice, xero_invoice


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    c = start_company(tmp_path, customers=8, invoices=8)
    try:
        c.hub = rebuild_hub(c, Clock(c.stripe.clock.now()))
        yield c
    finally:
        c.hub.close()
        c.emus.stop()


ENTITIES = ["customer", "product", "price", "subscription", "invoice", "payment", "credit_note", "refund"]


def clean_sync(company: Company) -> None:
    """A sync of what this posting model touches, with nothing held or failed."""
    summary = company.hub.engine.sync(entities=ENTITIES)
    with company.hub.store.transaction() as tx:
        dead = [(i.entity_type, i.target, i.last_error) for i in tx.list_outbox("dead", limit=100)]
    assert summary.errors == [] and summary.totals().dead == 0, (summary.errors, dead)


def resync_writes(company: Company) -> int:
    return company.hub.engine.sync(entities=ENTITIES).totals().written


def sdk(company: Company) -> Any:
    return company.hub.connectors["stripe"].api  # type: ignore[attr-defined]


def vat_invoice(company: Company, net: int, *, paid: bool, lines: int = 1) -> dict[str, Any]:
    """A finalised USD invoice of ``lines`` items summing to ``net`` with 20% VAT on top."""
    api = sdk(company)
    customer = api.call(lambda c: c.v1.customers.create(params={  # its own: nothing else booked for it
        "name": f"VAT Customer {len(company.stripe.table('customer'))}", "email": "ap@vat.example"})).id
    rate = api.call(lambda c: c.v1.tax_rates.create(params={
        "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "GB"}))
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer, "currency": "usd", "collection_method": "send_invoice", "days_until_due": 30,
        "pending_invoice_items_behavior": "exclude", "default_tax_rates": [rate.id]}))
    parts = [net // lines + (1 if n < net % lines else 0) for n in range(lines)]
    for n, amount in enumerate(parts):
        api.call(lambda c, a=amount, k=n: c.v1.invoice_items.create(params={
            "customer": customer, "invoice": invoice.id, "amount": a, "currency": "usd",
            "description": f"Licence {k + 1}"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    if paid:
        api.call(lambda c: c.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"}))
    return dict(company.stripe.table("invoice")[invoice.id])


def payment_intent(company: Company, invoice_id: str) -> str:
    paid_by: str = company.stripe.paid_intent_of(invoice_id)  # its invoice payment's intent
    return paid_by


def marked(rows: Any, field: str, hub_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in rows if hub_id in str(r.get(field) or "")]


def sf_billing(company: Company, number: str) -> dict[str, Any]:
    """The invoice's Billing_Invoice__c with what a finance team reads there: paid, credited, due."""
    (row,) = [r for r in company.salesforce.records("Billing_Invoice__c") if r.get("Invoice_Number__c") == number]
    amounts = {k: minor(str(row[k]), "USD") for k in ("Amount__c", "Amount_Paid__c", "Amount_Credited__c")}
    return {**dict(row), **amounts, "due": amounts["Amount__c"] - amounts["Amount_Paid__c"] - amounts["Amount_Credited__c"]}


def qbo_tax(doc: dict[str, Any]) -> int:
    return minor(doc["TxnTaxDetail"]["TotalTax"], "USD")


def xero_credit_notes(company: Company) -> list[dict[str, Any]]:
    return [dict(n) for n in company.xero.table("CreditNotes").values()]


def quiet_diff(company: Company) -> None:
    """``hub diff`` (customers and their balances included) finds nothing in any system."""
    hub_diff_is_clean(company)


def open_invoice_credited(company: Company) -> tuple[dict[str, Any], Any]:
    """An open 250.00 + 20% VAT invoice in both ledgers, then a Stripe credit note of 100.00 on
    it (83.33 net + 16.67 VAT, its tax carried), not yet synced: (the Stripe invoice, the note)."""
    clean_sync(company)
    invoice = vat_invoice(company, 25000, paid=False)
    clean_sync(company)
    (line,) = invoice["_lines"]
    note = sdk(company).call(lambda c: c.v1.credit_notes.create(params={
        "invoice": invoice["id"], "lines": [{"type": "invoice_line_item", "invoice_line_item": line["id"],
                                             "amount": 8333}]}))
    assert note.total == 10000 and not note.refunds
    return invoice, note


def test_a_credit_note_with_a_full_refund_is_one_document_with_its_vat_in_each_ledger(company: Company) -> None:
    clean_sync(company)
    invoice = vat_invoice(company, 25000, paid=True)
    assert invoice["total"] == 30000
    clean_sync(company)  # the invoice and its payment are in both ledgers first
    (line,) = invoice["_lines"]
    note = sdk(company).call(lambda c: c.v1.credit_notes.create(params={
        "invoice": invoice["id"], "refund_amount": 30000, "reason": "order_change",
        "lines": [{"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": 25000}]}))
    refund_id = note.refunds[0].refund if note.refunds else None
    assert refund_id and note.total == 30000

    clean_sync(company)

    refund_hub = canonical(company, "stripe", "refund", str(refund_id))
    note_hub = canonical(company, "stripe", "credit_note", note.id)
    customer = qbo_invoice(company, invoice["number"])["CustomerRef"]["value"]
    receipts = [dict(r) for r in company.qbo.table("RefundReceipt").values() if r["CustomerRef"]["value"] == customer]
    (receipt,) = receipts  # the customer's one refund document
    assert refund_hub in receipt["PrivateNote"]
    assert minor(receipt["TotalAmt"], "USD") == 30000 and qbo_tax(receipt) == 5000
    assert [minor(x["Amount"], "USD") for x in receipt["Line"] if x["DetailType"] == "SalesItemLineDetail"] == [25000]
    assert [m for m in company.qbo.table("CreditMemo").values() if m["CustomerRef"]["value"] == customer] == []
    assert minor(qbo_invoice(company, invoice["number"])["Balance"], "USD") == 0

    contact = xero_invoice(company, invoice["number"])["Contact"]["ContactID"]
    (xero_note,) = [n for n in xero_credit_notes(company) if n["Contact"]["ContactID"] == contact]  # never a second
    assert xero_note["Reference"] == f"refund:{refund_hub}" and note_hub not in str(xero_note)
    assert minor(xero_note["Total"], "USD") == 30000 and minor(xero_note["TotalTax"], "USD") == 5000
    assert xero_note["Status"] == "PAID" and minor(xero_note["RemainingCredit"], "USD") == 0  # paid out
    assert xero_invoice(company, invoice["number"])["Status"] == "PAID"
    assert customer_balances(company, invoice["number"]) == (0, 0)  # paid, and its credit paid out
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_a_credit_note_on_an_open_invoice_is_applied_to_it_in_each_ledger(company: Company) -> None:
    invoice, note = open_invoice_credited(company)

    clean_sync(company)

    note_hub = canonical(company, "stripe", "credit_note", note.id)
    (memo,) = marked(company.qbo.table("CreditMemo").values(), "PrivateNote", note_hub)
    assert minor(memo["TotalAmt"], "USD") == 10000 and qbo_tax(memo) == 1667
    assert minor(memo["RemainingCredit"], "USD") == 0  # all of it applied
    qbo_inv = qbo_invoice(company, invoice["number"])
    assert minor(qbo_inv["TotalAmt"], "USD") == 30000 and minor(qbo_inv["Balance"], "USD") == 20000
    assert [r for r in company.qbo.table("RefundReceipt").values() if r["CustomerRef"] == qbo_inv["CustomerRef"]] == []

    (xero_note,) = marked(xero_credit_notes(company), "Reference", note_hub)
    assert minor(xero_note["Total"], "USD") == 10000 and minor(xero_note["TotalTax"], "USD") == 1667
    assert xero_note["Status"] == "PAID" and [minor(a["Amount"], "USD") for a in xero_note["Allocations"]] == [10000]
    assert minor(xero_invoice(company, invoice["number"])["AmountDue"], "USD") == 20000
    billing = sf_billing(company, invoice["number"])  # Salesforce says the same 200.00 still due
    assert (billing["Amount__c"], billing["Amount_Paid__c"], billing["Amount_Credited__c"], billing["due"]) == (
        30000, 0, 10000, 20000)
    assert resync_writes(company) == 0
    quiet_diff(company)
    assert customer_balances(company, invoice["number"]) == (20000, 20000)  # 300.00 owed less 100.00 credit


def test_two_partial_refunds_without_credit_notes_reverse_the_vat_proportionally(company: Company) -> None:
    clean_sync(company)
    invoice = vat_invoice(company, 25000, paid=True, lines=3)  # 83.34 + 83.33 + 83.33, 50.00 VAT
    clean_sync(company)
    pi = payment_intent(company, invoice["id"])
    first = sdk(company).call(lambda c: c.v1.refunds.create(params={"payment_intent": pi, "amount": 10000}))
    second = sdk(company).call(lambda c: c.v1.refunds.create(params={"payment_intent": pi, "amount": 5001}))

    clean_sync(company)

    for refund, total, tax in ((first, 10000, 1667), (second, 5001, 834)):
        hub_id = canonical(company, "stripe", "refund", refund.id)
        (receipt,) = marked(company.qbo.table("RefundReceipt").values(), "PrivateNote", hub_id)
        sales = [minor(x["Amount"], "USD") for x in receipt["Line"] if x["DetailType"] == "SalesItemLineDetail"]
        assert minor(receipt["TotalAmt"], "USD") == total and qbo_tax(receipt) == tax
        assert len(sales) == 3 and sum(sales) + tax == total
        (note,) = marked(xero_credit_notes(company), "Reference", hub_id)
        assert minor(note["Total"], "USD") == total and minor(note["TotalTax"], "USD") == tax
        assert note["Status"] == "PAID"
        assert sum(minor(x["TaxAmount"], "USD") for x in note["LineItems"]) == tax
    customer = qbo_invoice(company, invoice["number"])["CustomerRef"]
    assert [m for m in company.qbo.table("CreditMemo").values() if m["CustomerRef"] == customer] == []
    assert customer_balances(company, invoice["number"]) == (0, 0)  # paid; the refunds paid out
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_a_downgrade_with_a_negative_proration_invoice_is_a_credit_note_in_each_ledger(company: Company) -> None:
    clean_sync(company)
    stripe, api = company.stripe, sdk(company)
    prices = {stripe.table("product")[p["product"]]["name"]: pid for pid, p in stripe.table("price").items()
              if p.get("recurring") and p["currency"] == "usd"}
    customer = api.call(lambda c: c.v1.customers.create(params={  # its own: nothing else booked for it
        "name": "Downgrade Ltd", "email": "ap@downgrade.example"})).id
    card = api.call(lambda c: c.v1.payment_methods.attach("pm_card_visa", params={"customer": customer})).id
    api.call(lambda c: c.v1.customers.update(customer, params={  # a card on file: Stripe charges it
        "invoice_settings": {"default_payment_method": card}}))
    sub = api.call(lambda c: c.v1.subscriptions.create(params={
        "customer": customer, "items": [{"price": prices["Pro plan"]}]}))
    stripe.clock.advance(15 * 86400)
    api.call(lambda c: c.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"]["data"][0]["id"], "price": prices["Starter plan"]}],
        "proration_behavior": "always_invoice"}))
    (downgrade,) = [i for i in stripe.table("invoice").values()
                    if i["customer"] == customer and i.get("billing_reason") == "subscription_update"]
    assert downgrade["total"] < 0

    clean_sync(company)

    number = downgrade["number"]
    assert [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number] == []
    assert [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number] == []
    (memo,) = [m for m in company.qbo.table("CreditMemo").values() if m.get("DocNumber") == number]
    assert minor(memo["TotalAmt"], "USD") == -downgrade["total"]
    sales = [minor(x["Amount"], "USD") for x in memo["Line"] if x["DetailType"] == "SalesItemLineDetail"]
    assert sales == [-line["amount"] for line in downgrade["_lines"]]  # the lines negated
    (note,) = [n for n in xero_credit_notes(company) if n.get("CreditNoteNumber") == number]
    assert note["Type"] == "ACCRECCREDIT" and minor(note["Total"], "USD") == -downgrade["total"]
    assert note["Status"] == "AUTHORISED"  # the customer's credit balance, as in Stripe
    billing = sf_billing(company, number)  # the negative invoice settled by its own credit, nothing due
    assert (billing["Amount__c"], billing["Amount_Paid__c"], billing["Amount_Credited__c"], billing["due"]) == (
        downgrade["total"], 0, downgrade["total"], 0)
    with company.hub.store.transaction() as tx:
        assert tx.list_outbox("dead", limit=100) == []
    # the first month paid, the unused part of it the customer's credit
    assert balances_of(company, customer) == (downgrade["total"], downgrade["total"])
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_the_split_is_exact_in_minor_units() -> None:
    from mapping.model import InvoiceLine, Money
    from mapping.postings import split

    lines = [InvoiceLine(f"l{n}", Decimal(1), Money(a, "USD"), Money(a, "USD"), tax_rate=Decimal(20),
                         tax_amount=Money(t, "USD")) for n, (a, t) in enumerate(((8334, 1667), (8333, 1667),
                                                                               (8333, 1666)))]
    for amount in (1, 5001, 10000, 29999, 30000):
        part, rest = split(lines, Money(amount, "USD"))
        assert sum(x.amount.minor + (x.tax_amount.minor if x.tax_amount else 0) for x in part) == amount
        together = sum(x.amount.minor for x in part + rest), sum(x.tax_amount.minor for x in part + rest
                                                                if x.tax_amount)
        assert together == (25000, 5000)


def test_a_credit_note_refunded_in_part_is_a_refund_and_a_credit_never_more_than_the_note(company: Company) -> None:
    clean_sync(company)
    invoice = vat_invoice(company, 25000, paid=True)  # 250.00 + 50.00 VAT, paid
    clean_sync(company)
    (line,) = invoice["_lines"]
    # the whole 300.00 credited: 100.00 back to the card, 200.00 to the customer's credit balance
    note = sdk(company).call(lambda c: c.v1.credit_notes.create(params={
        "invoice": invoice["id"], "refund_amount": 10000, "credit_amount": 20000,
        "lines": [{"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": 25000}]}))
    assert note.total == 30000 and len(note.refunds) == 1

    clean_sync(company)

    refund_hub = canonical(company, "stripe", "refund", str(note.refunds[0].refund))
    note_hub = canonical(company, "stripe", "credit_note", note.id)
    customer = qbo_invoice(company, invoice["number"])["CustomerRef"]
    (receipt,) = [dict(r) for r in company.qbo.table("RefundReceipt").values() if r["CustomerRef"] == customer]
    assert refund_hub in receipt["PrivateNote"]
    assert (minor(receipt["TotalAmt"], "USD"), qbo_tax(receipt)) == (10000, 1667)  # the refunded third
    (memo,) = [dict(m) for m in company.qbo.table("CreditMemo").values() if m["CustomerRef"] == customer]
    assert note_hub in memo["PrivateNote"]
    assert (minor(memo["TotalAmt"], "USD"), qbo_tax(memo)) == (20000, 3333)  # the rest, tax with it
    assert minor(memo["RemainingCredit"], "USD") == 20000  # the invoice is paid: the customer's credit
    assert minor(qbo_invoice(company, invoice["number"])["Balance"], "USD") == 0

    contact = xero_invoice(company, invoice["number"])["Contact"]["ContactID"]
    notes = [n for n in xero_credit_notes(company) if n["Contact"]["ContactID"] == contact]
    (paid_out,) = [n for n in notes if n["Reference"] == f"refund:{refund_hub}"]
    (credit,) = [n for n in notes if note_hub in n["Reference"]]
    assert len(notes) == 2
    assert (minor(paid_out["Total"], "USD"), minor(paid_out["TotalTax"], "USD"), paid_out["Status"]) == (
        10000, 1667, "PAID")
    assert (minor(credit["Total"], "USD"), minor(credit["TotalTax"], "USD"), credit["Status"]) == (
        20000, 3333, "AUTHORISED")
    assert minor(credit["RemainingCredit"], "USD") == 20000
    assert minor(xero_invoice(company, invoice["number"])["AmountDue"], "USD") == 0
    billing = sf_billing(company, invoice["number"])  # paid, then credited after payment: nothing due
    assert (billing["Amount_Paid__c"], billing["Amount_Credited__c"], billing["due"]) == (30000, 0, 0)
    # never more credit than the note: 100.00 + 200.00 in each ledger, 50.00 of VAT
    assert minor(receipt["TotalAmt"], "USD") + minor(memo["TotalAmt"], "USD") == note.total
    assert minor(paid_out["TotalTax"], "USD") + minor(credit["TotalTax"], "USD") == 5000
    assert customer_balances(company, invoice["number"]) == (-20000, -20000)  # the customer's 200.00 credit
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_every_refund_of_a_credit_note_is_its_and_booked_with_its_share_of_the_note(company: Company) -> None:
    clean_sync(company)
    api = sdk(company)
    customer = api.call(lambda c: c.v1.customers.create(params={"name": "Two Refunds Ltd", "email": "ap@two.example"}))
    rate = api.call(lambda c: c.v1.tax_rates.create(params={
        "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "GB"}))
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer.id, "currency": "usd", "collection_method": "send_invoice", "days_until_due": 30,
        "pending_invoice_items_behavior": "exclude"}))
    # 250.00 + 20% VAT, and 100.00 with no tax: the invoice's tax is not the credited line's
    for amount, rates in ((25000, [rate.id]), (10000, [])):
        api.call(lambda c, a=amount, r=rates: c.v1.invoice_items.create(params={
            "customer": customer.id, "invoice": invoice.id, "amount": a, "currency": "usd", "tax_rates": r,
            "description": "Licence" if r else "Setup"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    api.call(lambda c: c.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"}))
    stripe_invoice = company.stripe.table("invoice")[invoice.id]
    assert stripe_invoice["total"] == 40000
    clean_sync(company)
    pi = payment_intent(company, invoice.id)
    first = api.call(lambda c: c.v1.refunds.create(params={"payment_intent": pi, "amount": 10000}))
    second = api.call(lambda c: c.v1.refunds.create(params={"payment_intent": pi, "amount": 5000}))
    licence = next(x for x in stripe_invoice["_lines"] if x["amount"] == 25000)
    # the licence credited whole (300.00 with its VAT): both refunds, and 150.00 to the customer's balance
    note = api.call(lambda c: c.v1.credit_notes.create(params={
        "invoice": invoice.id, "credit_amount": 15000,
        "refunds": [{"refund": first.id, "amount_refunded": 10000}, {"refund": second.id, "amount_refunded": 5000}],
        "lines": [{"type": "invoice_line_item", "invoice_line_item": licence["id"], "amount": 25000}]}))
    assert note.total == 30000 and [r.refund for r in note.refunds] == [first.id, second.id]

    clean_sync(company)

    note_hub = canonical(company, "stripe", "credit_note", note.id)
    refund_ids = [canonical(company, "stripe", "refund", r.id) for r in (first, second)]
    with company.hub.store.transaction() as tx:
        claims = [getattr(tx.get_entity(r).entity(), "credit_note_id", None) for r in refund_ids]  # type: ignore[union-attr]
    assert claims == [note_hub, note_hub]  # both claimed
    number = stripe_invoice["number"]
    qbo_customer = qbo_invoice(company, number)["CustomerRef"]
    contact = xero_invoice(company, number)["Contact"]["ContactID"]
    # each refund the note's VAT on its share (the first of 300.00, the second of what it left),
    # the credit the rest: 100.00/16.67 + 50.00/8.33 + 150.00/25.00 = the note's 300.00/50.00
    for refund, total, tax in ((first, 10000, 1667), (second, 5000, 833)):
        hub_id = canonical(company, "stripe", "refund", refund.id)
        (receipt,) = marked(company.qbo.table("RefundReceipt").values(), "PrivateNote", hub_id)
        assert (minor(receipt["TotalAmt"], "USD"), qbo_tax(receipt)) == (total, tax)
        (paid_out,) = marked(xero_credit_notes(company), "Reference", hub_id)
        assert (minor(paid_out["Total"], "USD"), minor(paid_out["TotalTax"], "USD"), paid_out["Status"]) == (
            total, tax, "PAID")
    (memo,) = [dict(m) for m in company.qbo.table("CreditMemo").values() if m["CustomerRef"] == qbo_customer]
    assert (minor(memo["TotalAmt"], "USD"), qbo_tax(memo), minor(memo["RemainingCredit"], "USD")) == (15000, 2500, 15000)
    (credit,) = marked(xero_credit_notes(company), "Reference", note_hub)
    assert (minor(credit["Total"], "USD"), minor(credit["TotalTax"], "USD"), credit["Status"]) == (15000, 2500, "AUTHORISED")
    assert len([n for n in xero_credit_notes(company) if n["Contact"]["ContactID"] == contact]) == 3
    assert len([r for r in company.qbo.table("RefundReceipt").values() if r["CustomerRef"] == qbo_customer]) == 2
    assert minor(qbo_invoice(company, number)["Balance"], "USD") == 0
    assert minor(xero_invoice(company, number)["AmountDue"], "USD") == 0
    assert customer_balances(company, number) == (-15000, -15000)  # the 150.00 left to the customer
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_a_credit_note_on_a_gst_inclusive_invoice_goes_to_xero_as_inclusive(company: Company) -> None:
    clean_sync(company)
    api = sdk(company)
    customer = api.call(lambda c: c.v1.customers.create(params={"name": "Sydney Pty", "email": "ap@sydney.example"}))
    gst = api.call(lambda c: c.v1.tax_rates.create(params={
        "display_name": "GST", "percentage": "10", "inclusive": True, "country": "AU"}))
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer.id, "currency": "usd", "collection_method": "send_invoice", "days_until_due": 30,
        "pending_invoice_items_behavior": "exclude", "default_tax_rates": [gst.id]}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer.id, "invoice": invoice.id, "amount": 11000, "currency": "usd",
        "description": "Licence (GST inclusive)"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    stripe_invoice = company.stripe.table("invoice")[invoice.id]
    assert (stripe_invoice["total"], sum(t["amount"] for t in stripe_invoice["total_taxes"])) == (11000, 1000)  # GST inside
    clean_sync(company)
    (line,) = stripe_invoice["_lines"]
    note = api.call(lambda c: c.v1.credit_notes.create(params={  # half of it: 55.00 with 5.00 GST inside
        "invoice": invoice.id, "lines": [{"type": "invoice_line_item", "invoice_line_item": line["id"],
                                          "amount": 5500}]}))
    assert note.total == 5500

    clean_sync(company)

    note_hub = canonical(company, "stripe", "credit_note", note.id)
    (xero_note,) = marked(xero_credit_notes(company), "Reference", note_hub)
    assert xero_note["LineAmountTypes"] == "Inclusive"
    assert [(x["UnitAmount"], x["TaxAmount"]) for x in xero_note["LineItems"]] == [(Decimal("55.00"), Decimal("5.00"))]
    assert (minor(xero_note["Total"], "USD"), minor(xero_note["TotalTax"], "USD"), minor(xero_note["SubTotal"], "USD")) == (
        5500, 500, 5000)
    assert [minor(a["Amount"], "USD") for a in xero_note["Allocations"]] == [5500]
    assert minor(xero_invoice(company, stripe_invoice["number"])["AmountDue"], "USD") == 5500
    (memo,) = marked(company.qbo.table("CreditMemo").values(), "PrivateNote", note_hub)
    assert (minor(memo["TotalAmt"], "USD"), qbo_tax(memo)) == (5500, 500)
    assert minor(qbo_invoice(company, stripe_invoice["number"])["Balance"], "USD") == 5500
    assert customer_balances(company, stripe_invoice["number"]) == (5500, 5500)
    assert resync_writes(company) == 0
    quiet_diff(company)


def test_a_credit_note_voided_after_it_was_applied_gives_the_invoice_its_balance_back_in_each_ledger(company: Company) -> None:
    invoice, note = open_invoice_credited(company)
    clean_sync(company)
    number = invoice["number"]
    assert minor(qbo_invoice(company, number)["Balance"], "USD") == 20000  # applied first

    sdk(company).call(lambda c: c.v1.credit_notes.void_credit_note(note.id))
    assert company.stripe.table("invoice")[invoice["id"]]["amount_remaining"] == 30000
    clean_sync(company)

    note_hub = canonical(company, "stripe", "credit_note", note.id)
    (memo,) = marked(company.qbo.table("CreditMemo").values(), "PrivateNote", note_hub)
    assert minor(memo["TotalAmt"], "USD") == 0 and "Voided" in str(memo.get("PrivateNote"))
    assert minor(qbo_invoice(company, number)["Balance"], "USD") == 30000
    applications = [p for p in company.qbo.table("Payment").values() if note_hub in str(p.get("PrivateNote"))]
    assert applications == []  # the zero-amount application is gone with it
    assert company.stripe.table("invoice")[invoice["id"]]["amount_remaining"] == 30000
    # Xero will not void an allocated credit note: the writer deletes its allocation first
    (xero_note,) = marked(xero_credit_notes(company), "Reference", note_hub)
    assert xero_note["Status"] == "VOIDED" and xero_note["Allocations"] == []
    xero_inv = xero_invoice(company, number)
    assert xero_inv["Status"] == "AUTHORISED" and minor(xero_inv["AmountDue"], "USD") == 30000
    assert minor(xero_inv.get("AmountCredited") or "0", "USD") == 0
    assert customer_balances(company, number) == (30000, 30000)  # owes the whole invoice again
    billing = sf_billing(company, number)  # Salesforce's row rewritten: nothing credited, all due
    assert (billing["Amount_Credited__c"], billing["due"]) == (0, 30000)
    assert resync_writes(company) == 0
    quiet_diff(company)
