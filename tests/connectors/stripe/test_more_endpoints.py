"""The endpoints a real Stripe account serves beyond what billhub writes (issue 24, item 4):
credit note lines, customer balance transactions, payment methods, disputes, transfers, and
payment intents and charges created directly — each through the official SDK over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from openapi_core import OpenAPI

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe import test_spec_fidelity as fidelity

# the spec fidelity suite's session fixtures, used by name below: every answer here is validated
stripe_openapi = fidelity.stripe_openapi
stripe_spec = getattr(fidelity, "stripe_spec", None)  # what stripe_openapi is built from, where split


@pytest.fixture(autouse=True)
def spec_checked(emulator: StripeEmulator, stripe_openapi: OpenAPI) -> Iterator[None]:
    """Every exchange of the test, answers and errors, validated against Stripe's OpenAPI spec."""
    emulator.record_exchanges = True
    yield
    problems = fidelity._validate(stripe_openapi, list(emulator.exchanges))
    assert not problems, "\n".join(problems[:20])


def _customer(client: stripe.StripeClient, name: str = "Ledger Ltd") -> str:
    return client.v1.customers.create(params={"name": name, "email": f"{name[:3].lower()}@example.test"}).id


def _open_invoice(client: stripe.StripeClient, customer: str, amounts: list[int]) -> stripe.Invoice:
    invoice = client.v1.invoices.create(params={"customer": customer, "collection_method": "send_invoice",
                                                "days_until_due": 30, "currency": "usd"})
    for n, amount in enumerate(amounts):
        client.v1.invoice_items.create(params={"customer": customer, "invoice": str(invoice.id),
                                               "amount": amount, "currency": "usd", "description": f"Item {n}"})
    return client.v1.invoices.finalize_invoice(str(invoice.id))


def _events(emulator: StripeEmulator, *types: str) -> list[str]:
    return [e["type"] for e in emulator.events if e["type"] in types]


def test_credit_note_lines_are_listed_page_by_page_in_their_own_shape(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    customer = _customer(raw_client)
    invoice = _open_invoice(raw_client, customer, [1000 + n for n in range(25)])
    lines = raw_client.v1.invoices.line_items.list(str(invoice.id), params={"limit": 100}).data
    note = raw_client.v1.credit_notes.create(params={"invoice": str(invoice.id), "lines": [
        {"type": "invoice_line_item", "invoice_line_item": str(line.id), "amount": 100} for line in lines]})
    first = raw_client.v1.credit_notes.line_items.list(str(note.id), params={"limit": 20})
    rest = raw_client.v1.credit_notes.line_items.list(str(note.id), params={
        "limit": 20, "starting_after": str(first.data[-1].id)})
    assert (len(first.data), first.has_more, len(rest.data), rest.has_more) == (20, True, 5, False)
    every = [*first.data, *rest.data]
    assert len({line.id for line in every}) == 25
    assert {line.object for line in every} == {"credit_note_line_item"}
    assert [line.invoice_line_item for line in every] == [line.id for line in lines]
    assert sum(line.amount for line in every) == note.total == 2500
    with pytest.raises(stripe.InvalidRequestError) as missing:
        raw_client.v1.credit_notes.line_items.list("cn_missing")
    assert missing.value.http_status == 404


def test_the_customer_balance_is_a_ledger_that_credit_notes_and_invoices_write(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    customer = _customer(raw_client)
    entry = raw_client.v1.customers.balance_transactions.create(customer, params={
        "amount": -500, "currency": "usd", "description": "Goodwill", "metadata": {"ticket": "42"}})
    assert (entry.object, entry.type, entry.amount, entry.ending_balance) == (
        "customer_balance_transaction", "adjustment", -500, -500)
    assert raw_client.v1.customers.retrieve(customer).balance == -500
    # the next invoice takes the credit: 300.00 of it, 200.00 left; nothing due, so it is paid
    invoice = _open_invoice(raw_client, customer, [300])
    assert (invoice.status, invoice.amount_due, invoice.starting_balance, invoice.ending_balance) == (
        "paid", 0, -500, -200)
    assert raw_client.v1.customers.retrieve(customer).balance == -200
    # a credit note crediting the balance, on an invoice the balance only partly covers
    second = _open_invoice(raw_client, customer, [1000])
    assert (second.status, second.amount_due, second.amount_remaining) == ("open", 800, 800)
    raw_client.v1.invoices.pay(str(second.id), params={"paid_out_of_band": True})
    note = raw_client.v1.credit_notes.create(params={"invoice": str(second.id), "credit_amount": 400, "lines": [
        {"type": "custom_line_item", "unit_amount": 400, "quantity": 1, "description": "Refund as credit"}]})
    ledger = raw_client.v1.customers.balance_transactions.list(customer).data
    assert [(e.type, e.amount, e.ending_balance) for e in ledger] == [
        ("credit_note", -400, -400), ("applied_to_invoice", 200, 0), ("applied_to_invoice", 300, -200),
        ("adjustment", -500, -500)]
    assert note.customer_balance_transaction == ledger[0].id and ledger[0].credit_note == note.id
    assert [e.invoice for e in ledger[1:3]] == [second.id, invoice.id]
    only = raw_client.v1.customers.balance_transactions.list(customer, params={"invoice": str(invoice.id)}).data
    assert [e.id for e in only] == [ledger[2].id]
    # an open invoice that took credit gives it back when voided
    third = _open_invoice(raw_client, customer, [1000])
    assert third.amount_due == 600
    raw_client.v1.invoices.void_invoice(str(third.id))
    newest = raw_client.v1.customers.balance_transactions.list(customer, params={"limit": 1}).data[0]
    assert (newest.type, newest.amount, newest.invoice) == ("unapplied_from_invoice", -400, third.id)
    assert raw_client.v1.customers.retrieve(customer).balance == -400
    updated = raw_client.v1.customers.balance_transactions.update(customer, str(entry.id), params={
        "description": "Goodwill, ticket 42"})
    assert (updated.description, updated.amount) == ("Goodwill, ticket 42", -500)
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.customers.balance_transactions.create(customer, params={"amount": 100, "currency": "eur"})


def test_payment_methods_attach_to_one_customer_and_list_under_it(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    alice, bob = _customer(raw_client, "Alice"), _customer(raw_client, "Bob")
    visa = raw_client.v1.payment_methods.attach("pm_card_visa", params={"customer": alice})
    assert visa.id.startswith("pm_") and visa.id != "pm_card_visa"  # a test card becomes a method of its own
    assert visa.card is not None and (visa.customer, visa.type, visa.card.brand, visa.card.last4) == (
        alice, "card", "visa", "4242")
    made = raw_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_mastercard"}})
    assert made.customer is None and made.card is not None and made.card.brand == "mastercard"
    raw_client.v1.payment_methods.attach(str(made.id), params={"customer": alice})
    listed = raw_client.v1.customers.payment_methods.list(alice, params={"type": "card"}).data
    assert [pm.id for pm in listed] == [made.id, visa.id]
    assert raw_client.v1.payment_methods.list(params={"customer": bob}).data == []
    assert raw_client.v1.customers.payment_methods.retrieve(alice, str(visa.id)).id == visa.id
    with pytest.raises(stripe.InvalidRequestError) as taken:
        raw_client.v1.payment_methods.attach(str(visa.id), params={"customer": bob})
    assert taken.value.code == "payment_method_unexpected_state"
    detached = raw_client.v1.payment_methods.detach(str(visa.id))
    assert detached.customer is None
    assert [pm.id for pm in raw_client.v1.customers.payment_methods.list(alice).data] == [made.id]
    assert _events(emulator, "payment_method.attached", "payment_method.detached") == [
        "payment_method.attached", "payment_method.attached", "payment_method.detached"]


def test_a_payment_intent_made_directly_goes_through_its_states_to_a_charge_with_a_fee(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    customer = _customer(raw_client)
    pi = raw_client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": customer,
                                                      "metadata": {"order": "A-1"}, "description": "Order A-1"})
    assert (pi.status, pi.latest_charge, pi.amount_received) == ("requires_payment_method", None, 0)
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.payment_intents.confirm(str(pi.id))  # nothing to pay with yet
    pi = raw_client.v1.payment_intents.update(str(pi.id), params={"payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation"
    pi = raw_client.v1.payment_intents.confirm(str(pi.id))
    assert (pi.status, pi.amount_received) == ("succeeded", 2000)
    charge = raw_client.v1.charges.retrieve(str(pi.latest_charge), params={"expand": ["balance_transaction"]})
    assert (charge.payment_intent, charge.amount, charge.customer, charge.metadata.to_dict()) == (
        pi.id, 2000, customer, {"order": "A-1"})
    txn: Any = charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net, txn.type) == (2000, 88, 1912, "charge")  # 2.9 % + 30
    assert _events(emulator, "payment_intent.created", "payment_intent.succeeded", "charge.succeeded") == [
        "payment_intent.created", "payment_intent.succeeded", "charge.succeeded"]
    # confirmed in the same call; a euro payment settles in dollars
    eur = raw_client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "confirm": True,
                                                       "payment_method": "pm_card_mastercard"})
    assert eur.status == "succeeded" and eur.customer is None
    saved = raw_client.v1.payment_intents.create(params={
        "amount": 700, "currency": "usd", "customer": customer, "payment_method": "pm_card_visa",
        "setup_future_usage": "off_session", "confirm": True})
    assert [pm.id for pm in raw_client.v1.customers.payment_methods.list(customer).data] == [saved.payment_method]
    settled = raw_client.v1.balance_transactions.retrieve(str(raw_client.v1.charges.retrieve(
        str(eur.latest_charge)).balance_transaction))
    assert (settled.currency, settled.amount) == ("usd", 1080)
    with pytest.raises(stripe.InvalidRequestError) as small:
        raw_client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert small.value.code == "amount_too_small"


def test_a_held_payment_moves_no_money_until_captured_and_a_declined_card_is_a_card_error(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    held = raw_client.v1.payment_intents.create(params={
        "amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "capture_method": "manual",
        "confirm": True})
    charge = raw_client.v1.charges.retrieve(str(held.latest_charge))
    assert (held.status, held.amount_capturable, charge.captured, charge.balance_transaction) == (
        "requires_capture", 5000, False, None)
    captured = raw_client.v1.payment_intents.capture(str(held.id))
    charge = raw_client.v1.charges.retrieve(str(captured.latest_charge))
    assert (captured.status, captured.amount_received, charge.captured) == ("succeeded", 5000, True)
    assert raw_client.v1.balance_transactions.retrieve(str(charge.balance_transaction)).amount == 5000
    with pytest.raises(stripe.CardError) as declined:
        raw_client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "confirm": True,
                                                     "payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined" and declined.value.http_status == 402
    failed = emulator.live("payment_intent")[0]
    assert (failed["status"], failed["last_payment_error"]["code"]) == ("requires_payment_method", "card_declined")
    assert emulator.table("charge")[failed["latest_charge"]]["status"] == "failed"
    canceled = raw_client.v1.payment_intents.cancel(failed["id"], params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert "payment_intent.payment_failed" in _events(emulator, "payment_intent.payment_failed")


def test_a_legacy_charge_names_no_payment_intent(emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    charge = raw_client.v1.charges.create(params={"amount": 1500, "currency": "usd", "source": "tok_visa",
                                                  "description": "Legacy", "metadata": {"k": "v"}})
    assert (charge.status, charge.paid, charge.payment_intent, charge.description) == (
        "succeeded", True, None, "Legacy")
    assert str(charge.payment_method).startswith("card_")
    assert raw_client.v1.balance_transactions.retrieve(str(charge.balance_transaction)).fee == 74
    assert raw_client.v1.payment_intents.list().data == []
    uncaptured = raw_client.v1.charges.create(params={"amount": 1500, "currency": "usd", "source": "tok_visa",
                                                      "capture": False})
    assert uncaptured.captured is False
    assert raw_client.v1.charges.capture(str(uncaptured.id)).captured is True


def test_disputes_and_transfers_take_money_out_of_the_balance(
        emulator: StripeEmulator, running_stripe: RunningEmulator, raw_client: stripe.StripeClient) -> None:
    assert raw_client.v1.disputes.list().data == [] and raw_client.v1.transfers.list().data == []
    pi = raw_client.v1.payment_intents.create(params={"amount": 10000, "currency": "usd", "confirm": True,
                                                      "payment_method": "pm_card_createDispute"})
    (dispute,) = raw_client.v1.disputes.list(params={"payment_intent": str(pi.id)}).data
    assert (dispute.status, dispute.reason, dispute.amount, dispute.charge) == (
        "needs_response", "fraudulent", 10000, pi.latest_charge)
    (txn,) = dispute.balance_transactions
    assert (txn.amount, txn.fee, txn.net, txn.reporting_category) == (-10000, 1500, -11500, "dispute")
    assert raw_client.v1.charges.retrieve(str(pi.latest_charge)).disputed is True
    assert raw_client.v1.disputes.retrieve(str(dispute.id)).id == dispute.id
    # a second payment is disputed by the bank through the control call, and won
    other = raw_client.v1.payment_intents.create(params={"amount": 20000, "currency": "usd", "confirm": True,
                                                         "payment_method": "pm_card_visa"})
    opened = requests.post(f"{running_stripe.base_url}/__emulator/dispute", timeout=10,
                           json={"charge": other.latest_charge, "reason": "product_not_received"}).json()
    requests.post(f"{running_stripe.base_url}/__emulator/dispute", timeout=10,
                  json={"dispute": opened["id"], "status": "won"}).raise_for_status()
    won = raw_client.v1.disputes.retrieve(opened["id"])
    assert won.status == "won" and [t.amount for t in won.balance_transactions] == [-20000, 20000]
    assert raw_client.v1.disputes.close(str(dispute.id)).status == "lost"
    assert _events(emulator, "charge.dispute.created", "charge.dispute.closed") == [
        "charge.dispute.created", "charge.dispute.created", "charge.dispute.closed", "charge.dispute.closed"]
    transfer = raw_client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                                      "destination": "acct_1EmuConnected", "metadata": {"k": "v"}})
    moved = raw_client.v1.balance_transactions.retrieve(str(transfer.balance_transaction))
    assert (moved.type, moved.amount, moved.source) == ("transfer", -1000, transfer.id)
    assert [t.id for t in raw_client.v1.transfers.list(params={"destination": "acct_1EmuConnected"}).data] == [
        transfer.id]
    with pytest.raises(stripe.InvalidRequestError) as short:
        raw_client.v1.transfers.create(params={"amount": 10_000_000, "currency": "usd",
                                               "destination": "acct_1EmuConnected"})
    assert short.value.code == "balance_insufficient"
