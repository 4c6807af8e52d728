"""Collecting invoices in the Stripe emulator as Stripe does (issue 19), through the official SDK:
a customer without a payment method is not charged (``Realism.payment_method_required``), a
declined renewal is retried on the account's schedule with ``next_payment_attempt`` and
``attempt_count``, every attempt confirming the invoice's one PaymentIntent, and the subscription
goes ``incomplete``/``past_due`` and back to ``active`` when paid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from openapi_core import OpenAPI

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.emulator.collection import RETRY_DAYS
from connectors.stripe.emulator.realism import Realism
from tests.connectors.stripe.helpers import company
from tests.connectors.stripe.test_spec_fidelity import _validate, stripe_openapi

__all__ = ["stripe_openapi"]  # the session fixture, used by name below

DAY = 86400


@pytest.fixture
def strict_cards(emulator: StripeEmulator) -> Iterator[Realism]:
    """Stripe's rule (the emulator's default), stated for the test: no payment method, no charge."""
    emulator.realism.payment_method_required = True
    yield emulator.realism


def _advance(running: RunningEmulator, seconds: int) -> None:
    requests.post(f"{running.base_url}/__emulator/clock", json={"advance_seconds": seconds},
                  timeout=10).raise_for_status()


def _card(raw: stripe.StripeClient, customer: str, test_id: str) -> str:
    """A test card saved to the customer as its default for invoices."""
    pm = raw.v1.payment_methods.attach(test_id, params={"customer": customer})
    raw.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": str(pm.id)}})
    return str(pm.id)


def _intents(raw: stripe.StripeClient, invoice_id: str) -> list[str]:
    return [str(p.payment.payment_intent) for p in raw.v1.invoice_payments.list(params={"invoice": invoice_id}).data]


def test_without_a_payment_method_the_first_invoice_stays_open_and_is_not_charged(
        stripe_openapi: OpenAPI, running_stripe: RunningEmulator, emulator: StripeEmulator,
        strict_cards: Realism, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    emulator.record_exchanges = True
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}]})
    assert sub.status == "incomplete"
    invoice = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("open", 0, 5_000)
    assert invoice.attempted and invoice.attempt_count == 1 and invoice.next_payment_attempt is None
    (intent_id,) = _intents(raw_client, str(invoice.id))
    intent = raw_client.v1.payment_intents.retrieve(intent_id)
    assert (intent.status, intent.latest_charge, intent.amount_received) == ("requires_payment_method", None, 0)
    assert raw_client.v1.charges.list(params={"customer": refs["acme"]}).data == []  # nothing charged
    with pytest.raises(stripe.InvalidRequestError) as no_method:  # /pay has nothing to charge either
        raw_client.v1.invoices.pay(str(invoice.id))
    assert no_method.value.http_status == 400
    _card(raw_client, refs["acme"], "pm_card_visa")
    paid = raw_client.v1.invoices.pay(str(invoice.id))
    assert paid.status == "paid" and paid.amount_paid == 5_000
    assert _intents(raw_client, str(invoice.id)) == [intent_id]  # the same PaymentIntent, confirmed
    assert raw_client.v1.payment_intents.retrieve(intent_id).status == "succeeded"
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "active"
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def test_an_unpaid_first_invoice_expires_the_subscription_after_23_hours(
        running_stripe: RunningEmulator, emulator: StripeEmulator, strict_cards: Realism,
        raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    _advance(running_stripe, 22 * 3600)
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "incomplete"
    _advance(running_stripe, 3600)
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "incomplete_expired"
    assert raw_client.v1.invoices.retrieve(str(sub.latest_invoice)).status == "void"
    (intent_id,) = _intents(raw_client, str(sub.latest_invoice))
    canceled = raw_client.v1.payment_intents.retrieve(intent_id)
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "void_invoice")


def test_with_the_switch_off_a_test_card_stands_in_for_a_card_on_file(
        cards_on_file: StripeEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """``payment_method_required = False`` (fixtures that bill customers they never gave a card):
    the subscription is paid by the emulator's test Visa card."""
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}]})
    assert sub.status == "active" and raw_client.v1.invoices.retrieve(str(sub.latest_invoice)).status == "paid"


def test_a_declined_renewal_is_retried_on_schedule_with_one_payment_intent(
        stripe_openapi: OpenAPI, running_stripe: RunningEmulator, emulator: StripeEmulator,
        strict_cards: Realism, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    _card(raw_client, refs["acme"], "pm_card_visa")
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}]})
    assert sub.status == "active"
    _card(raw_client, refs["acme"], "pm_card_chargeDeclined")  # the card on file starts declining
    emulator.record_exchanges = True
    _advance(running_stripe, sub.items.data[0].current_period_end - emulator.now())
    renewal_id = str(raw_client.v1.subscriptions.retrieve(str(sub.id)).latest_invoice)
    renewal = raw_client.v1.invoices.retrieve(renewal_id)
    failed_at = emulator.now()
    assert (renewal.status, renewal.attempt_count) == ("open", 1)
    assert renewal.next_payment_attempt == failed_at + RETRY_DAYS[0] * DAY
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "past_due"
    (intent_id,) = _intents(raw_client, renewal_id)
    _advance(running_stripe, RETRY_DAYS[0] * DAY - 1)  # not due yet
    assert raw_client.v1.invoices.retrieve(renewal_id).attempt_count == 1
    _advance(running_stripe, 1)  # the first retry: declined again
    second = raw_client.v1.invoices.retrieve(renewal_id)
    assert second.attempt_count == 2 and second.next_payment_attempt == emulator.now() + RETRY_DAYS[1] * DAY
    assert _intents(raw_client, renewal_id) == [intent_id]
    _card(raw_client, refs["acme"], "pm_card_visa")  # the customer updates the card
    _advance(running_stripe, RETRY_DAYS[1] * DAY)  # the second retry pays
    paid = raw_client.v1.invoices.retrieve(renewal_id)
    assert (paid.status, paid.attempt_count, paid.next_payment_attempt, paid.amount_paid) == ("paid", 3, None, 5_000)
    assert _intents(raw_client, renewal_id) == [intent_id]  # no second PaymentIntent
    charges = raw_client.v1.charges.list(params={"payment_intent": intent_id}).data
    assert sorted(c.status for c in charges) == ["failed", "failed", "succeeded"]
    assert raw_client.v1.payment_intents.retrieve(intent_id).status == "succeeded"
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "active"
    failures = [e for e in emulator.events if e["type"] == "invoice.payment_failed"
                and e["data"]["object"]["id"] == renewal_id]
    assert [e["data"]["object"]["attempt_count"] for e in failures] == [1, 2]
    problems = _validate(stripe_openapi, [ex for ex in emulator.exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems)


def test_after_the_last_retry_nothing_more_is_scheduled(
        running_stripe: RunningEmulator, emulator: StripeEmulator, strict_cards: Realism,
        raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    _card(raw_client, refs["acme"], "pm_card_visa")
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    _card(raw_client, refs["acme"], "pm_card_chargeDeclined")
    _advance(running_stripe, sub.items.data[0].current_period_end - emulator.now())
    renewal_id = str(raw_client.v1.subscriptions.retrieve(str(sub.id)).latest_invoice)
    attempts: list[Any] = []
    for days in RETRY_DAYS:
        _advance(running_stripe, days * DAY)
        invoice = raw_client.v1.invoices.retrieve(renewal_id)
        attempts.append((invoice.attempt_count, invoice.next_payment_attempt is None))
    assert attempts == [(2, False), (3, False), (4, True)]  # 1 attempt + 3 retries, then none
    _advance(running_stripe, 30 * DAY - sum(RETRY_DAYS) * DAY)
    assert raw_client.v1.invoices.retrieve(renewal_id).attempt_count == 4
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "past_due"
    assert len(_intents(raw_client, renewal_id)) == 1


def test_default_incomplete_waits_for_the_client_to_confirm_the_invoices_intent(
        emulator: StripeEmulator, strict_cards: Realism, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}],
                                                     "payment_behavior": "default_incomplete"})
    assert sub.status == "incomplete"
    invoice = raw_client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (invoice.status, invoice.attempt_count) == ("open", 0)
    (intent_id,) = _intents(raw_client, str(invoice.id))
    confirmed = raw_client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded" and confirmed.amount_received == 5_000
    paid = raw_client.v1.invoices.retrieve(str(invoice.id))
    assert (paid.status, paid.amount_paid, paid.attempt_count) == ("paid", 5_000, 1)
    assert raw_client.v1.subscriptions.retrieve(str(sub.id)).status == "active"
    assert _intents(raw_client, str(invoice.id)) == [intent_id]
