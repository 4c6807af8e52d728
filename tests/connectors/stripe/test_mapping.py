"""Mapping: Stripe objects read through the SDK map to canonical entities exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from connectors.base import Record
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator
from mapping.model import (
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Price,
    Refund,
    Subscription,
    from_data,
    stable_id,
    to_data,
)
from mapping.money import Money
from mapping.stripe import (
    StripeMappingError,
    from_canonical,
    stripe_money,
    to_canonical,
    to_stripe_amount,
)
from tests.connectors.stripe.helpers import Refs, company, drain


def _read(connector: StripeConnector, entity_type: str) -> dict[str, Record]:
    records, _ = drain(connector.fetch_all(entity_type))
    return {r.external_id: r for r in records}


def _invoice(connector: StripeConnector, invoice_id: str) -> tuple[Record, Invoice]:
    record = _read(connector, "invoice")[invoice_id]
    entity = connector.to_canonical(record, Refs())
    assert isinstance(entity, Invoice)
    return record, entity


def test_mid_cycle_upgrade_maps_proration_lines_and_totals_exactly(
        emulator: StripeEmulator, connector: StripeConnector, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"],
                                                     "items": [{"price": refs["basic_m"]}]})
    emulator.clock.advance(10 * 86400 + 3 * 3600)  # part-way through a 30-day November period
    sub = raw_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": refs["pro_m"]}],
        "proration_behavior": "always_invoice"})
    record, invoice = _invoice(connector, str(sub.latest_invoice))
    assert invoice.subtotal.minor == record.data["subtotal"] and invoice.total.minor == record.data["total"]
    assert invoice.amount_paid.minor == record.data["amount_paid"]
    assert [line.proration for line in invoice.lines] == [True, True]
    credit, charge = invoice.lines
    assert credit.amount.minor < 0 < charge.amount.minor
    assert credit.amount.minor + charge.amount.minor == invoice.total.minor
    # 19 days 21 h of 30 days remain: Stripe's proration, rounded per line, half up
    fraction = Decimal(19 * 86400 + 21 * 3600) / Decimal(30 * 86400)
    assert credit.amount.minor == -int((2000 * fraction).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert charge.amount.minor == int((5000 * fraction).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert invoice.subscription_id == stable_id("stripe", "subscription", sub.id)
    assert invoice.totals_consistent()
    subscription = connector.to_canonical(_read(connector, "subscription")[sub.id], Refs())
    assert isinstance(subscription, Subscription)
    assert [i.price_id for i in subscription.items] == [stable_id("stripe", "price", refs["pro_m"])]


def test_partial_refund_maps_to_a_refund_tied_to_its_payment_and_invoice(
        emulator: StripeEmulator, connector: StripeConnector, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd",
                                                "items": [{"amount": 10_000, "description": "Audit"}],
                                                "status": "paid"}]})
    invoice_id = made["created"]["invoices"][0]
    pi = emulator.get("payment_intent", str(emulator.paid_intent_of(invoice_id)))
    refund = raw_client.v1.refunds.create(params={"payment_intent": pi["id"], "amount": 2_550,
                                                  "reason": "requested_by_customer"})
    entity = connector.to_canonical(_read(connector, "refund")[refund.id], Refs())
    assert isinstance(entity, Refund)
    assert entity.amount == Money(2_550, "USD")
    assert entity.payment_id == stable_id("stripe", "payment", pi["id"])
    assert entity.invoice_id == stable_id("stripe", "invoice", invoice_id)
    assert entity.customer_id == stable_id("stripe", "customer", refs["acme"])
    assert entity.reason == "requested_by_customer" and entity.status == "succeeded"
    charge = raw_client.v1.charges.retrieve(pi["latest_charge"])
    assert charge.amount_refunded == 2_550 and charge.refunded is False


def test_jpy_invoice_maps_zero_decimal_amounts_exactly(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{
        "customer": refs["kaisha"], "currency": "jpy",
        "items": [{"price": refs["setup_jpy"], "quantity": 3}, {"amount": 777, "description": "Extra"}],
        "status": "paid"}]})
    record, invoice = _invoice(connector, made["created"]["invoices"][0])
    assert record.data["total"] == 3 * 12345 + 777
    assert invoice.total == Money(3 * 12345 + 777, "JPY")  # ¥37,812: no ×100 anywhere
    assert invoice.lines[0].unit_amount == Money(12345, "JPY")
    assert invoice.lines[0].quantity == Decimal(3)
    assert invoice.lines[0].price_id == stable_id("stripe", "price", refs["setup_jpy"])
    assert invoice.status == "paid" and invoice.amount_paid == invoice.total
    assert invoice.totals_consistent()
    (payment_record,) = _read(connector, "payment").values()
    payment = connector.to_canonical(payment_record, Refs())
    assert isinstance(payment, Payment)
    assert payment.amount == Money(37812, "JPY")
    txn = payment_record.data["latest_charge"]["balance_transaction"]
    assert payment.fee == Money(txn["fee"], "USD") and payment.net == Money(txn["net"], "USD")
    assert payment.exchange_rate == Decimal("0.0067")
    assert payment.invoice_id == stable_id("stripe", "invoice", made["created"]["invoices"][0])
    assert payment.method == "card visa 4242"  # brand and last four at most
    assert "exp_month" not in str(to_data(payment))


def test_tax_exclusive_eur_invoice_maps_tax_and_totals_exactly(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{
        "customer": refs["gmbh"], "currency": "eur", "default_tax_rates": [refs["vat"]],
        "items": [{"price": refs["setup_eur"], "quantity": 1},
                  {"amount": 333, "description": "Rounding line"}],
        "status": "open"}]})
    record, invoice = _invoice(connector, made["created"]["invoices"][0])
    # 19.99 × 20 % = 3.998 -> 4.00; 3.33 × 20 % = 0.666 -> 0.67 (per line, half up)
    assert [line.tax_amount for line in invoice.lines] == [Money(400, "EUR"), Money(67, "EUR")]
    assert invoice.subtotal == Money(1999 + 333, "EUR")
    assert invoice.tax == Money(467, "EUR")
    assert invoice.total == Money(1999 + 333 + 467, "EUR") and invoice.total.minor == record.data["total"]
    assert not invoice.tax_inclusive
    (tax_line,) = invoice.tax_lines
    assert (tax_line.name, tax_line.rate, tax_line.inclusive) == ("VAT", Decimal("20"), False)
    assert tax_line.taxable_amount == Money(2332, "EUR")
    assert invoice.totals_consistent()
    assert invoice.due_date is not None and invoice.number and invoice.number.endswith("-0001")


def test_tax_inclusive_invoice_keeps_tax_inside_the_total(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{
        "customer": refs["acme"], "currency": "aud", "default_tax_rates": [refs["gst"]],
        "items": [{"amount": 11_000, "description": "Consulting"}], "status": "open"}]})
    _record, invoice = _invoice(connector, made["created"]["invoices"][0])
    assert invoice.tax_inclusive and invoice.tax == Money(1000, "AUD")
    assert invoice.total == invoice.subtotal == Money(11_000, "AUD")
    assert invoice.totals_consistent()


def test_credit_note_is_tied_to_its_invoice_and_refund(
        emulator: StripeEmulator, connector: StripeConnector, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd",
                                                "items": [{"amount": 5_000, "description": "Seats"}],
                                                "status": "paid"}]})
    invoice_id = made["created"]["invoices"][0]
    line_id = emulator.table("invoice")[invoice_id]["_lines"][0]["id"]
    note = raw_client.v1.credit_notes.create(params={
        "invoice": invoice_id, "lines": [{"type": "invoice_line_item", "invoice_line_item": line_id,
                                          "amount": 1_250}],
        "refund_amount": 1_250, "reason": "order_change"})
    entity = connector.to_canonical(_read(connector, "credit_note")[note.id], Refs())
    assert isinstance(entity, CreditNote)
    assert entity.invoice_id == stable_id("stripe", "invoice", invoice_id)
    assert entity.total == Money(1_250, "USD") and entity.lines[0].amount == Money(1_250, "USD")
    refund = note.refunds[0].refund
    assert isinstance(refund, str)  # not expanded: the refund's id
    assert entity.refund_id == stable_id("stripe", "refund", refund)
    assert entity.number == f"{raw_client.v1.invoices.retrieve(invoice_id).number}-CN-01"


def test_customer_and_price_round_trip_through_the_write_payload(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs_made = company(emulator)["refs"]
    refs = Refs()
    records = _read(connector, "customer")
    customer = connector.to_canonical(records[refs_made["acme"]], refs)
    assert isinstance(customer, Customer)
    payload = from_canonical(customer, refs)
    assert payload["email"] == "billing@acme.test" and payload["metadata"] == {"hub_id": customer.id}
    price = connector.to_canonical(_read(connector, "price")[refs_made["setup_jpy"]], refs)
    assert isinstance(price, Price) and price.unit_amount == Money(12345, "JPY")
    with pytest.raises(StripeMappingError, match="not linked"):
        from_canonical(price, refs)
    refs.link("product", price.product_id, refs_made["setup"])
    assert from_canonical(price, refs)["unit_amount"] == 12345
    assert from_data("price", to_data(price)) == price


@pytest.mark.parametrize("amount,currency,expected", [
    (1999, "usd", Money(1999, "USD")), (500, "jpy", Money(500, "JPY")), (1230, "kwd", Money(1230, "KWD")),
    (4200, "mga", Money(420000, "MGA")), (1500, "isk", Money(15, "ISK")),
])
def test_stripe_amounts_convert_exactly_per_currency(amount: int, currency: str, expected: Money) -> None:
    money = stripe_money(amount, currency)
    assert money == expected
    assert to_stripe_amount(money) == amount


def test_amounts_that_do_not_fit_the_currency_are_refused() -> None:
    with pytest.raises(StripeMappingError):
        stripe_money(1550, "isk")  # 15.50 ISK has no ISO minor unit
    with pytest.raises(StripeMappingError):
        stripe_money("12.5", "usd")  # type: ignore[arg-type]
    with pytest.raises(StripeMappingError):
        to_canonical("deal", {"id": "x"}, Refs())
