"""Invoice Payments: the emulator's ``/v1/invoice_payments`` and ``invoice.payments`` as Stripe
documents them, and billhub's payment-to-invoice and refund-to-invoice links read from them (a
PaymentIntent no longer names its invoice, and ``payment_details.order_reference`` is the
business's), at about one request per page of payments."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeAPIError, StripeEmulator
from mapping.model import Payment, Refund, stable_id
from mapping.stripe import to_canonical
from tests.connectors.stripe.conftest import make_config
from tests.connectors.stripe.helpers import Refs, calls, company, drain
from tests.connectors.stripe.spec_api import spec_api, validate


def _paid_invoices(emulator: StripeEmulator, customer: str, amounts: list[int]) -> list[str]:
    made = emulator.seed_objects({"invoices": [
        {"customer": customer, "currency": "usd", "status": "paid",
         "items": [{"amount": amount, "description": f"Work {n}"}]} for n, amount in enumerate(amounts)]})
    invoices: list[str] = made["created"]["invoices"]
    return invoices


def _payments_read(connector: StripeConnector, entity_type: str) -> dict[str, Any]:
    records, _ = drain(connector.fetch_all(entity_type))
    return {r.external_id: r for r in records}


def test_a_paid_invoice_has_one_invoice_payment_in_stripes_shape(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    (invoice_id,) = _paid_invoices(emulator, refs["acme"], [4_200])
    emulator.record_exchanges = True
    (link,) = raw_client.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    assert link.id.startswith("inpay_") and link.object == "invoice_payment"
    pi = raw_client.v1.payment_intents.retrieve(str(link.payment.payment_intent))
    assert (link.invoice, link.amount_requested, link.amount_paid, link.currency) == (invoice_id, 4_200, 4_200, "usd")
    assert link.is_default is True and link.status == "paid" and link.livemode is False
    assert link.payment.type == "payment_intent" and "charge" not in link.payment
    assert link.status_transitions.paid_at == pi.created and link.status_transitions.canceled_at is None
    assert pi.status == "succeeded" and pi.payment_details is not None
    assert pi.payment_details.order_reference is None  # the business's field, not Stripe's
    assert raw_client.v1.invoice_payments.retrieve(link.id).to_dict() == link.to_dict()
    expanded = raw_client.v1.invoice_payments.retrieve(link.id, params={"expand": ["invoice", "payment.payment_intent"]})
    assert isinstance(expanded.invoice, stripe.Invoice) and expanded.invoice.id == invoice_id
    assert isinstance(expanded.payment.payment_intent, stripe.PaymentIntent)
    assert expanded.payment.payment_intent.id == pi.id
    problems = validate(spec_api(), list(emulator.exchanges))
    assert not problems, "\n".join(problems)


def test_an_invoice_includes_its_payments_only_when_asked(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    (invoice_id,) = _paid_invoices(emulator, refs["acme"], [1_500])
    (link,) = raw_client.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    emulator.record_exchanges = True
    assert "payments" not in raw_client.v1.invoices.retrieve(invoice_id)  # includable: never unasked
    included = raw_client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]}).payments
    assert included is not None
    assert [p.id for p in included.data] == [link.id] and included.has_more is False
    assert included.url == "/v1/invoice_payments"
    listed = raw_client.v1.invoices.list(params={"expand": ["data.payments"]}).data[0].payments
    assert listed is not None and [p.id for p in listed.data] == [link.id]
    problems = validate(spec_api(), list(emulator.exchanges))
    assert not problems, "\n".join(problems)


def test_the_list_filters_and_pages_as_the_spec_allows(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    invoices = _paid_invoices(emulator, refs["acme"], [100, 200, 300])
    every = raw_client.v1.invoice_payments.list(params={"limit": 2})
    assert len(every.data) == 2 and every.has_more
    rest = raw_client.v1.invoice_payments.list(params={"limit": 2, "starting_after": every.data[-1].id})
    assert [p.invoice for p in [*every.data, *rest.data]] == invoices[::-1]  # newest first
    assert not rest.has_more
    pi = str(rest.data[0].payment.payment_intent)
    (by_intent,) = raw_client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": pi}}).data
    assert by_intent.invoice == invoices[0]
    assert raw_client.v1.invoice_payments.list(params={"status": "open"}).data == []
    assert len(raw_client.v1.invoice_payments.list(params={"status": "paid"}).data) == 3
    with pytest.raises(stripe.InvalidRequestError) as missing_type:
        raw_client.v1.invoice_payments.list(params={"payment": {"payment_intent": pi}})  # type: ignore[arg-type, typeddict-item]
    assert missing_type.value.param == "payment[type]"
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.invoice_payments.retrieve("inpay_missing")


def test_a_declined_attempt_stays_linked_and_the_retry_pays_the_same_intent(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """A retry confirms the invoice's one PaymentIntent again (issue 19): one invoice payment,
    open after the decline, paid by the retry; the intent has the failed charge and the paid one."""
    refs = company(emulator)["refs"]
    made = emulator.seed_objects({"invoices": [{"customer": refs["acme"], "currency": "usd", "status": "open",
                                                "items": [{"amount": 900, "description": "Seats"}]}]})
    (invoice_id,) = made["created"]["invoices"]
    with pytest.raises(StripeAPIError, match="declined"):
        emulator.pay_invoice(invoice_id, {"payment_method": "pm_card_chargeDeclined"})
    (declined,) = raw_client.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    assert declined.status == "open" and declined.amount_paid is None
    emulator.pay_invoice(invoice_id, {"payment_method": "pm_card_visa"})
    (paid,) = raw_client.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    assert paid.id == declined.id and paid.status == "paid" and paid.amount_paid == 900 and paid.is_default
    assert paid.payment.payment_intent == declined.payment.payment_intent
    charges = raw_client.v1.charges.list(params={"payment_intent": str(paid.payment.payment_intent)}).data
    assert sorted(c.status for c in charges) == ["failed", "succeeded"]
    assert [e["data"]["object"]["id"] for e in emulator.events if e["type"] == "invoice_payment.paid"] == [paid.id]


def test_payments_and_refunds_read_link_to_their_invoice_at_one_list_call(
        emulator: StripeEmulator, connector: StripeConnector, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    invoices = _paid_invoices(emulator, refs["acme"], [1_000 + n for n in range(30)])
    intents = {i: emulator.paid_intent_of(i) for i in invoices}
    assert all(emulator.table("payment_intent")[str(pi)]["payment_details"]["order_reference"] is None
               for pi in intents.values())
    refund = raw_client.v1.refunds.create(params={"payment_intent": str(intents[invoices[3]]), "amount": 250})
    payments = _payments_read(connector, "payment")
    refunds = _payments_read(connector, "refund")
    # one page of invoice payments for every payment and refund read, not one call per payment
    assert calls(emulator, "GET /v1/invoice_payments") == 1
    for invoice_id, pi in intents.items():
        entity = connector.to_canonical(payments[str(pi)], Refs())
        assert isinstance(entity, Payment)
        assert entity.invoice_id == stable_id("stripe", "invoice", invoice_id)
    note = connector.to_canonical(refunds[refund.id], Refs())
    assert isinstance(note, Refund) and note.invoice_id == stable_id("stripe", "invoice", invoices[3])
    assert note.payment_id == stable_id("stripe", "payment", str(intents[invoices[3]]))


def test_changes_and_webhooks_link_a_new_payment_to_its_invoice(
        emulator: StripeEmulator, connector: StripeConnector, running_stripe: RunningEmulator) -> None:
    refs = company(emulator)["refs"]
    _paid_invoices(emulator, refs["acme"], [500])
    _records, cursor = drain(connector.fetch_changes("payment", None))
    emulator.clock.advance(600)
    (invoice_id,) = _paid_invoices(emulator, refs["gmbh"], [7_700])
    pi = str(emulator.paid_intent_of(invoice_id))
    before = calls(emulator, "GET /v1/invoice_payments")
    changed, _cursor = drain(connector.fetch_changes("payment", cursor))
    (record,) = [r for r in changed if r.external_id == pi]
    entity = connector.to_canonical(record, Refs())
    assert isinstance(entity, Payment) and entity.invoice_id == stable_id("stripe", "invoice", invoice_id)
    assert calls(emulator, "GET /v1/invoice_payments") - before <= 1
    # a webhook event's payload, read again with its invoice, by a process that has read nothing
    (event,) = [e for e in emulator.events if e["type"] == "payment_intent.succeeded"
                and e["data"]["object"]["id"] == pi]
    assert "invoice" not in event["data"]["object"]
    fresh = build(make_config(running_stripe.base_url), None, clock=emulator.clock.now)
    try:
        before = calls(emulator, "GET /v1/invoice_payments")
        (from_hook,) = fresh.records_for_event(event)
        hooked = fresh.to_canonical(from_hook, Refs())
    finally:
        fresh.close()
    assert isinstance(hooked, Payment) and hooked.invoice_id == stable_id("stripe", "invoice", invoice_id)
    assert calls(emulator, "GET /v1/invoice_payments") - before == 1  # one filtered look-up


def test_the_mapping_takes_the_older_invoice_field_and_never_the_order_reference() -> None:
    base: dict[str, Any] = {"id": "pi_1", "object": "payment_intent", "amount": 500, "amount_received": 500,
                            "currency": "usd", "customer": "cus_1", "status": "succeeded", "created": 1_700_000_000}
    older = to_canonical("payment", {**base, "invoice": "in_old"}, Refs())  # before 2025-03-31
    assert isinstance(older, Payment) and older.invoice_id == stable_id("stripe", "invoice", "in_old")
    business = to_canonical("payment", {**base, "payment_details": {"customer_reference": None,
                                                                    "order_reference": "in_house_42"}}, Refs())
    assert isinstance(business, Payment) and business.invoice_id is None
