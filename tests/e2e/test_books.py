"""Issue 18's books, read back from the ledgers as a bookkeeper would: every document totals to
the cent of Stripe's, lines included, and a paid invoice is left with nothing due."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import balances_as_stripe, hub_diff_is_clean, minor, qbo_invoice, xero_invoice


def _prices(company: Company) -> dict[str, str]:
    stripe = company.stripe
    return {stripe.table("product")[p["product"]]["name"]: pid for pid, p in stripe.table("price").items()
            if p.get("recurring") and p["currency"] == "usd"}


def test_a_three_seat_upgrade_mid_cycle_is_booked_to_the_cent_and_left_with_nothing_due(company: Company) -> None:
    company.hub.engine.sync()
    stripe = company.stripe
    prices = _prices(company)
    customer = sorted(stripe.table("customer"))[0]
    stripe.realism.payment_method_required = False  # the seeded customer pays by a card on file
    sub = stripe.create_subscription({"customer": customer, "items": [{"price": prices["Starter plan"], "quantity": 3}]})
    stripe.clock.advance(11 * 86400 + 7 * 3600)
    stripe.update_subscription(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "price": prices["Pro plan"],
                                                      "quantity": 3}], "proration_behavior": "always_invoice"})
    (invoice,) = [i for i in stripe.table("invoice").values()
                  if i["customer"] == customer and i.get("billing_reason") == "subscription_update"]
    stripe_lines = [line["amount"] for line in invoice["_lines"]]
    assert any(amount % 3 for amount in stripe_lines)  # the case: no 2-decimal unit price gives it back
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0

    xero: dict[str, Any] = xero_invoice(company, invoice["number"])
    assert [minor(line["LineAmount"], "USD") for line in xero["LineItems"]] == stripe_lines
    assert all(line["Quantity"] == 3 for line in xero["LineItems"])  # the seats are still said
    assert minor(xero["Total"], "USD") == invoice["total"]
    assert invoice["status"] == "paid" and xero["Status"] == "PAID" and xero["AmountDue"] == 0  # not 0.01 forever

    qbo: dict[str, Any] = qbo_invoice(company, invoice["number"])
    sales = [line for line in qbo["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
    assert [minor(line["Amount"], "USD") for line in sales] == stripe_lines
    assert all(line["SalesItemLineDetail"]["Qty"] == 3 for line in sales)
    assert minor(qbo["TotalAmt"], "USD") == invoice["total"] and qbo["Balance"] == Decimal(0)
    balances_as_stripe(company, customer)  # the upgrade paid: only what its seeded invoices ask
    hub_diff_is_clean(company)


def test_xero_invoice_lines_name_the_item_the_hub_made_for_the_stripe_product(company: Company) -> None:
    company.hub.engine.sync()
    stripe = company.stripe
    customer = sorted(stripe.table("customer"))[1]
    stripe.realism.payment_method_required = False  # the seeded customer pays by a card on file
    sub = stripe.create_subscription({"customer": customer, "items": [{"price": _prices(company)["Pro plan"]}]})
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    (invoice,) = [i for i in stripe.table("invoice").values() if i.get("subscription") == sub["id"]
                  or (i.get("parent") or {}).get("subscription_details", {}).get("subscription") == sub["id"]]
    product = stripe.table("price")[_prices(company)["Pro plan"]]["product"]
    with company.hub.store.transaction() as tx:
        hub_product = tx.canonical_for("stripe", "product", product)
        assert hub_product is not None
        item_link = tx.link_for(hub_product, "xero", "product")
    assert item_link is not None
    code = company.xero.table("Items")[item_link.external_id]["Code"]
    lines = xero_invoice(company, invoice["number"])["LineItems"]
    assert [line.get("ItemCode") for line in lines] == [code]  # reported per item in Xero, not only by account
    balances_as_stripe(company, customer)
    hub_diff_is_clean(company)
