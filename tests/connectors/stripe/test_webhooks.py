"""Webhooks: signature verification, replays through the inbox, rejection of bad input, and the
emulator's signed deliveries with retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from connectors.base import WebhookRejected
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator, sign_payload
from connectors.stripe.webhooks import verify
from state.store import StateStore
from tests.connectors.stripe.conftest import WEBHOOK_SECRET
from tests.connectors.stripe.helpers import WebhookReceiver, webhook_receiver

NOW = 1_793_534_400


def _event(emulator: StripeEmulator) -> dict[str, Any]:
    emulator.seed_objects({"customers": [{"name": "Hooked", "email": "hook@example.com"}]})
    return dict(emulator.events[-1])


def _store_all(store: StateStore, connector: StripeConnector, headers: dict[str, str], body: bytes,
               now: int) -> list[bool]:
    stored = []
    for inbound in connector.verify_webhook(headers, body, now=now):
        with store.transaction() as tx:
            stored.append(tx.add_inbox("stripe", inbound.event_id, dict(inbound.payload), inbound.event_type))
    return stored


def _inbox_count(store: StateStore) -> int:
    with store.transaction() as tx:
        return tx.count_inbox()


def test_valid_webhook_is_stored_once_when_delivered_three_times(
        emulator: StripeEmulator, connector: StripeConnector, sqlite_store: StateStore) -> None:
    body = json.dumps(_event(emulator)).encode()
    outcomes = []
    for delay in (0, 30, 200):  # the same event, redelivered (each delivery freshly signed)
        headers = {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, NOW + delay)}
        outcomes += _store_all(sqlite_store, connector, headers, body, now=NOW + delay)
    assert outcomes == [True, False, False]
    assert _inbox_count(sqlite_store) == 1


def _tampered(body: bytes) -> tuple[dict[str, str], bytes, int]:
    headers = {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, NOW)}
    return headers, body.replace(b"Hooked", b"Hacked"), NOW


def _wrong_secret(body: bytes) -> tuple[dict[str, str], bytes, int]:
    return {"Stripe-Signature": sign_payload("whsec_someone_else", body, NOW)}, body, NOW


def _stale(body: bytes) -> tuple[dict[str, str], bytes, int]:
    return {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, NOW - 301)}, body, NOW


@pytest.mark.parametrize("attack", [_tampered, _wrong_secret, _stale],
                         ids=["tampered-body", "wrong-secret", "older-than-300s"])
def test_bad_deliveries_are_rejected_with_400_and_store_nothing(
        emulator: StripeEmulator, connector: StripeConnector, sqlite_store: StateStore,
        attack: Any) -> None:
    headers, body, now = attack(json.dumps(_event(emulator)).encode())
    with pytest.raises(WebhookRejected) as caught:
        _store_all(sqlite_store, connector, headers, body, now=now)
    assert caught.value.status == 400
    assert _inbox_count(sqlite_store) == 0


def test_timestamp_at_the_tolerance_edge_is_accepted() -> None:
    body = json.dumps({"id": "evt_edge", "object": "event", "type": "customer.created"}).encode()
    headers = {"stripe-signature": sign_payload(WEBHOOK_SECRET, body, NOW - 300)}
    (event,) = verify(headers, body, WEBHOOK_SECRET, NOW)
    assert event.event_id == "evt_edge" and event.event_type == "customer.created"


def test_rotated_secrets_any_matching_v1_signature_is_accepted() -> None:
    body = json.dumps({"id": "evt_rot", "object": "event", "type": "invoice.paid"}).encode()
    old = sign_payload("whsec_old", body, NOW).split("v1=")[1]
    new = sign_payload(WEBHOOK_SECRET, body, NOW)
    (event,) = verify({"Stripe-Signature": f"{new},v1={old}"}, body, WEBHOOK_SECRET, NOW)
    assert event.event_id == "evt_rot"


@pytest.mark.parametrize("headers,body", [
    ({}, b"{}"),
    ({"Stripe-Signature": "garbage"}, b"{}"),
    ({"Stripe-Signature": "t=abc,v1=00"}, b"{}"),
    ({"Stripe-Signature": sign_payload(WEBHOOK_SECRET, b"not json", NOW)}, b"not json"),
    ({"Stripe-Signature": sign_payload(WEBHOOK_SECRET, b"[1, 2]", NOW)}, b"[1, 2]"),
    ({"Stripe-Signature": sign_payload(WEBHOOK_SECRET, b"\xff\xfe", NOW)}, b"\xff\xfe"),
], ids=["no-header", "garbage-header", "bad-timestamp", "not-json", "not-an-event", "not-utf8"])
def test_malformed_deliveries_get_a_clear_400(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify(headers, body, WEBHOOK_SECRET, NOW)
    assert caught.value.status == 400 and caught.value.reason


def test_matches_the_official_sdk_verifier() -> None:
    body = json.dumps({"id": "evt_sdk", "object": "event", "type": "customer.updated",
                       "data": {"object": {"id": "cus_1"}}}).encode()
    header = sign_payload(WEBHOOK_SECRET, body, NOW)
    assert stripe.WebhookSignature.verify_header(body.decode(), header, WEBHOOK_SECRET, tolerance=None)
    (event,) = verify({"Stripe-Signature": header}, body, WEBHOOK_SECRET, NOW)
    assert event.payload["data"]["object"]["id"] == "cus_1"


def test_records_for_event_turns_the_event_object_into_records(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    event = _event(emulator)
    (record,) = connector.records_for_event(event)
    assert record.entity_type == "customer" and record.external_id == event["data"]["object"]["id"]
    assert record.data["email"] == "hook@example.com" and not record.deleted
    deleted = {**event, "type": "customer.deleted"}
    assert connector.records_for_event(deleted)[0].deleted
    assert connector.records_for_event({"type": "account.updated", "data": {"object": {"id": "acct_1",
                                                                                        "object": "account"}}}) == []
    assert connector.records_for_event({"garbage": True}) == []


def test_an_older_event_handled_after_a_newer_one_gives_the_object_as_it_is_now(
        emulator: StripeEmulator, connector: StripeConnector, raw_client: stripe.StripeClient) -> None:
    """Events arrive out of order and several processes work the inbox: the snapshot in
    ``customer.created`` must not turn the hub's record back to the first email."""
    created = raw_client.v1.customers.create(params={"name": "Moved", "email": "old@example.com"})
    first = dict(emulator.events[-1])
    raw_client.v1.customers.update(created.id, params={"email": "new@example.com"})
    assert first["type"] == "customer.created" and first["data"]["object"]["email"] == "old@example.com"
    (record,) = connector.records_for_event(first)
    assert record.data["email"] == "new@example.com"
    raw_client.v1.customers.delete(created.id)
    (gone,) = connector.records_for_event(first)  # read again: deleted since
    assert gone.deleted


def test_a_refund_event_is_read_again_with_its_payment_intent_so_it_has_a_customer(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    """The refund.created payload names its payment intent only; a ledger needs the customer."""
    ids = emulator.seed_objects({
        "customers": [{"ref": "c", "name": "Refunded", "email": "refunded@example.com"}],
        "products": [{"ref": "p", "name": "Setup"}],
        "prices": [{"ref": "one", "product": "@p", "currency": "usd", "unit_amount": 1500}],
        "invoices": [{"customer": "@c", "currency": "usd", "status": "paid", "items": [{"price": "@one"}]}]})
    (customer,) = ids["created"]["customers"]
    (intent,) = [pi for pi, v in emulator.table("payment_intent").items() if v.get("customer") == customer]
    emulator.seed_objects({"refunds": [{"payment_intent": intent, "amount": 500}]})
    (event,) = [e for e in emulator.events if e["type"] == "refund.created"]
    assert event["data"]["object"]["payment_intent"] == intent  # an id, not the object
    (record,) = connector.records_for_event(event)
    assert record.entity_type == "refund" and not record.deleted
    assert record.data["payment_intent"]["id"] == intent and record.data["payment_intent"]["customer"] == customer
    assert record.updated_at is not None and int(record.updated_at.timestamp()) == event["created"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver(fail_first=True) as rec:
        yield rec


def test_emulator_delivers_signed_webhooks_and_retries_failed_deliveries(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient,
        receiver: WebhookReceiver, sqlite_store: StateStore) -> None:
    endpoint = raw_client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["customer.created"]})
    secret = endpoint.secret
    assert secret is not None and secret.startswith("whsec_")
    raw_client.v1.customers.create(params={"name": "Delivered"})
    assert receiver.done.wait(10), "the emulator never delivered successfully"
    running_stripe.call(emulator.settle_deliveries())
    assert [status for _h, _b, status in receiver.received] == [500, 200]
    stored = []
    for headers, body, _status in receiver.received:
        events = verify(headers, body, secret, emulator.clock.timestamp())
        with sqlite_store.transaction() as tx:
            stored += [tx.add_inbox("stripe", e.event_id, dict(e.payload), e.event_type) for e in events]
    assert stored == [True, False]  # same event twice: stored once
    assert [d["attempt"] for d in emulator.deliveries] == [1, 2]
