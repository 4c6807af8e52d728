"""Issue 18's "a percent and an amount coupon": made through the official Stripe SDK against the
emulator, booked by the hub, and read back from QuickBooks and Xero to the cent."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sync.demo import STRIPE_KEY
from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import customer_balances, hub_diff_is_clean, minor, qbo_invoice, xero_invoice


def sdk(company: Company) -> Any:
    return company.hub.connectors["stripe"].api  # type: ignore[attr-defined]


def discounted_invoice(company: Company, amounts: list[int], coupon: dict[str, Any], *,
                       vat: bool) -> dict[str, Any]:
    """A finalised USD invoice of ``amounts`` with ``coupon`` on the invoice (and 20% VAT on top)."""
    api = sdk(company)
    made = api.call(lambda c: c.v1.coupons.create(params=coupon))
    customer = api.call(lambda c: c.v1.customers.create(params={
        "name": f"Coupon Customer {len(company.stripe.table('customer'))}", "email": "ap@coupon.example"})).id
    params: dict[str, Any] = {"customer": customer, "currency": "usd", "collection_method": "send_invoice",
                              "days_until_due": 30, "pending_invoice_items_behavior": "exclude",
                              "discounts": [{"coupon": made.id}]}
    if vat:
        rate = api.call(lambda c: c.v1.tax_rates.create(params={
            "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "GB"}))
        params["default_tax_rates"] = [rate.id]
    invoice = api.call(lambda c: c.v1.invoices.create(params=params))
    for n, amount in enumerate(amounts):
        api.call(lambda c, a=amount, k=n: c.v1.invoice_items.create(params={
            "customer": customer, "invoice": invoice.id, "amount": a, "currency": "usd",
            "description": f"Licence {k + 1}"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    return dict(company.stripe.table("invoice")[invoice.id])


ENTITIES = ["customer", "product", "price", "subscription", "invoice", "payment"]


def clean_sync(company: Company) -> None:
    summary = company.hub.engine.sync(entities=ENTITIES)
    assert summary.errors == [] and summary.totals().dead == 0


def qbo_discount(doc: dict[str, Any]) -> int:
    return sum(minor(line["Amount"], "USD") for line in doc["Line"] if line["DetailType"] == "DiscountLineDetail")


def xero_discount(doc: dict[str, Any]) -> int:
    return sum(minor(line.get("DiscountAmount") or 0, "USD") for line in doc["LineItems"])


def booked_as_stripe(company: Company, invoice: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    discount = sum(d["amount"] for d in invoice["total_discount_amounts"])
    tax = sum(t["amount"] for t in invoice["total_taxes"])
    qbo = qbo_invoice(company, invoice["number"])
    assert minor(qbo["TotalAmt"], "USD") == invoice["total"]
    assert minor(qbo["TxnTaxDetail"]["TotalTax"], "USD") == tax
    assert qbo_discount(qbo) == discount
    if tax:
        assert qbo["ApplyTaxAfterDiscount"] is True  # the tax is on the discounted amount, as in Stripe
    xero = xero_invoice(company, invoice["number"])
    assert minor(xero["Total"], "USD") == invoice["total"] and minor(xero["TotalTax"], "USD") == tax
    assert xero_discount(xero) == discount
    assert [minor(line.get("DiscountAmount") or 0, "USD") for line in xero["LineItems"]] == \
        [sum(d["amount"] for d in line["discount_amounts"]) for line in invoice["_lines"]]
    # the customer (its own) owes the discounted total in both
    assert customer_balances(company, invoice["number"]) == (invoice["total"], invoice["total"])
    return qbo, xero


def paid_everywhere(company: Company, invoice: dict[str, Any]) -> None:
    sdk(company).call(lambda c: c.v1.invoices.pay(invoice["id"], params={"payment_method": "pm_card_visa"}))
    clean_sync(company)
    assert company.stripe.table("invoice")[invoice["id"]]["status"] == "paid"
    assert minor(qbo_invoice(company, invoice["number"])["Balance"], "USD") == 0
    xero = xero_invoice(company, invoice["number"])
    assert xero["Status"] == "PAID" and minor(xero["AmountDue"], "USD") == 0
    assert customer_balances(company, invoice["number"]) == (0, 0)
    hub_diff_is_clean(company)


def test_a_ten_percent_coupon_with_vat_is_booked_to_the_cent_in_both_ledgers(company: Company) -> None:
    clean_sync(company)
    invoice = discounted_invoice(company, [12_345, 6_789], {"percent_off": 10, "name": "Ten off"}, vat=True)
    # Stripe's rules: 10% of each line (half up), then 20% VAT on each discounted line
    assert [[d["amount"] for d in line["discount_amounts"]] for line in invoice["_lines"]] == [[1_235], [679]]
    assert [line["taxes"][0]["taxable_amount"] for line in invoice["_lines"]] == [11_110, 6_110]
    assert (invoice["subtotal"], invoice["total_excluding_tax"], invoice["total"]) == (19_134, 17_220, 20_664)
    clean_sync(company)
    booked_as_stripe(company, invoice)
    hub_diff_is_clean(company)  # booked, not yet paid
    paid_everywhere(company, invoice)


def test_a_hundred_off_coupon_over_eleven_eighty_is_booked_as_ten_eighty(company: Company) -> None:
    clean_sync(company)
    invoice = discounted_invoice(company, [50_000, 33_333, 34_667],
                                 {"amount_off": 10_000, "currency": "usd", "name": "100 off"}, vat=False)
    assert (invoice["subtotal"], invoice["total"]) == (118_000, 108_000)
    clean_sync(company)
    qbo, xero = booked_as_stripe(company, invoice)
    assert minor(xero["Total"], "USD") == 108_000  # once 1,180.00
    assert qbo_discount(qbo) == 10_000
    paid_everywhere(company, invoice)


def test_an_unknown_coupon_is_refused_with_stripes_error(company: Company) -> None:
    """Through a plain SDK client (the hub's own client turns errors into its error tree)."""
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url},
                                 max_network_retries=0)
    customer = sorted(company.stripe.table("customer"))[0]
    invoices = len(company.stripe.table("invoice"))
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.create(params={"customer": customer, "discounts": [{"coupon": "NO_SUCH"}]})
    error = caught.value.error
    assert caught.value.http_status == 400 and error is not None
    assert (error.type, error.code, error.param) == ("invalid_request_error", "resource_missing",
                                                     "discounts[0][coupon]")
    assert error.message == "No such coupon: 'NO_SUCH'"
    assert len(company.stripe.table("invoice")) == invoices  # once made, its discount dropped


def test_a_coupon_on_one_invoice_item_is_booked_on_that_line_in_both_ledgers(company: Company) -> None:
    """Stripe's subtotal already has an item's own discount taken off: the hub's subtotal is
    before every discount, or the invoice would look inconsistent and be held."""
    clean_sync(company)
    api = sdk(company)
    coupon = api.call(lambda c: c.v1.coupons.create(params={"percent_off": 25, "duration": "once"}))
    customer = api.call(lambda c: c.v1.customers.create(params={"name": "Item Coupon Ltd",
                                                                 "email": "ap@item-coupon.example"})).id
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer, "currency": "usd", "collection_method": "send_invoice", "days_until_due": 30,
        "pending_invoice_items_behavior": "exclude"}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer, "invoice": invoice.id, "amount": 40000, "currency": "usd",
        "description": "Licence", "discounts": [{"coupon": coupon.id}]}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer, "invoice": invoice.id, "amount": 10000, "currency": "usd", "description": "Support"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    stored = dict(company.stripe.table("invoice")[invoice.id])
    assert stored["subtotal"] == 40000 and stored["total"] == 40000  # 30,000 + 10,000: the item's 25% inside
    clean_sync(company)
    qbo, xero = booked_as_stripe(company, stored)
    assert [minor(line.get("DiscountAmount") or 0, "USD") for line in xero["LineItems"]] == [10000, 0]
    assert minor(xero["SubTotal"], "USD") == 40000
    paid_everywhere(company, stored)
