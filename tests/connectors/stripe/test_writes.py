"""Writes: idempotent upserts per entity type, price replacement, subscriptions, one-off
invoices, usage, and the emulator's idempotency semantics."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import stripe

from connectors.base import InvalidError, Outbound
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.writes import UsageEvent
from mapping.model import Invoice, InvoiceLine, Money
from mapping.stripe import from_canonical
from tests.connectors.stripe.conftest import API_KEY
from tests.connectors.stripe.helpers import Refs, company


def _out(entity_type: str, hub_id: str, payload: dict[str, object], key: str,
         external_id: str | None = None, **kw: object) -> Outbound:
    return Outbound(entity_type, hub_id, payload, idempotency_key=key, external_id=external_id, **kw)  # type: ignore[arg-type]


def test_customer_update_keeps_the_marker_and_changes_fields(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    (created,) = connector.upsert("customer", [_out("customer", "hub-c1", {"name": "A", "email": "a@x.test"}, "k1")])
    (updated,) = connector.upsert("customer", [_out("customer", "hub-c1", {"name": "B"}, "k2",
                                                    external_id=created.external_id)])
    assert created.created and not updated.created and updated.external_id == created.external_id
    stored = emulator.table("customer")[str(created.external_id)]
    assert stored["name"] == "B" and stored["metadata"]["hub_id"] == "hub-c1"
    assert updated.record is not None and updated.record.data["name"] == "B"


def test_changed_price_amount_creates_a_new_price_and_deactivates_the_old(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    base = {"product": refs["pro"], "currency": "usd", "unit_amount": 5000, "recurring": {"interval": "month"}}
    (first,) = connector.upsert("price", [_out("price", "hub-p", base, "p1")])
    (same,) = connector.upsert("price", [_out("price", "hub-p", {**base, "nickname": "Pro"}, "p2",
                                              external_id=first.external_id)])
    assert same.external_id == first.external_id and not same.created
    (changed,) = connector.upsert("price", [_out("price", "hub-p", {**base, "unit_amount": 5500}, "p3",
                                                 external_id=first.external_id)])
    assert changed.created and changed.external_id != first.external_id
    old, new = emulator.table("price")[str(first.external_id)], emulator.table("price")[str(changed.external_id)]
    assert old["active"] is False and old["unit_amount"] == 5000
    assert new["active"] is True and new["unit_amount"] == 5500 and new["metadata"]["hub_id"] == "hub-p"
    found = connector.lookup("price", "hub-p")
    assert found is not None and found.external_id == changed.external_id


def test_subscription_create_change_with_proration_and_cancel(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    payload = {"customer": refs["acme"], "items": [{"price": refs["basic_m"], "quantity": 2}]}
    (created,) = connector.upsert("subscription", [_out("subscription", "hub-s", payload, "s1")])
    assert created.ok and created.created
    sub_id = str(created.external_id)
    emulator.clock.advance(15 * 86400)
    upgrade = {**payload, "items": [{"price": refs["pro_m"], "quantity": 2}]}
    (changed,) = connector.upsert("subscription", [_out("subscription", "hub-s", upgrade, "s2",
                                                        external_id=sub_id)])
    assert changed.ok and not changed.created
    sub = emulator.table("subscription")[sub_id]
    assert [i["price"]["id"] for i in sub["items"]["data"]] == [refs["pro_m"]]
    pending = [i for i in emulator.live("invoiceitem") if i["proration"]]
    assert sorted(i["amount"] for i in pending) == [-2000, 5000]  # half of 2×20.00 back, half of 2×50.00
    (canceled,) = connector.upsert("subscription", [_out("subscription", "hub-s", payload, "s3",
                                                         external_id=sub_id, operation="delete")])
    assert canceled.ok and emulator.table("subscription")[sub_id]["status"] == "canceled"


def test_one_off_invoice_is_created_itemised_and_finalized_once(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    made = company(emulator)["refs"]
    refs = Refs()
    invoice = Invoice(id="hub-inv-1", customer_id="cust-canonical", currency="EUR",
                      lines=(InvoiceLine("Setup", Decimal(1), Money(1999, "EUR"), Money(1999, "EUR"),
                                         price_id="price-canonical"),
                             InvoiceLine("Travel", Decimal(1), Money(4550, "EUR"), Money(4550, "EUR"))),
                      deal_id="006XYZ")
    refs.link("customer", "cust-canonical", made["gmbh"])
    refs.link("price", "price-canonical", made["setup_eur"])
    payload = from_canonical(invoice, refs)
    emulator.set_faults(apply_then_fail=1, path_prefix="/v1/invoiceitems")
    item = _out("invoice", "hub-inv-1", payload, "inv-op-1")
    (result,) = connector.upsert("invoice", [item])
    assert result.ok, result.error
    (again,) = connector.upsert("invoice", [dataclasses.replace(item, attempt=2)])
    assert again.external_id == result.external_id
    stored = emulator.table("invoice")[str(result.external_id)]
    assert stored["status"] == "open" and stored["total"] == 1999 + 4550
    assert len(stored["_lines"]) == 2 and stored["metadata"] == {"hub_id": "hub-inv-1", "deal_id": "006XYZ"}
    assert len([i for i in emulator.live("invoiceitem") if i["invoice"] == stored["id"]]) == 2


def test_usage_resend_is_not_double_counted(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    meter = raw_client.v1.billing.meters.create(params={
        "display_name": "API calls", "event_name": "api_call", "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "value_settings": {"event_payload_key": "value"}})
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    events = [UsageEvent(f"usage-{n}", "api_call", refs["acme"], 10 + n, at) for n in range(3)]
    first = connector.record_usage(events)
    resent = connector.record_usage(events)
    assert all(r.ok for r in first + resent) and [r.created for r in first] == [True] * 3
    # a resend after the idempotency key is gone is caught by the identifier itself
    emulator.idempotency.clear()
    late = connector.record_usage(events[:1])
    assert late[0].ok and not late[0].created
    summary = raw_client.v1.billing.meters.event_summaries.list(meter.id, params={
        "customer": refs["acme"], "start_time": int(at.timestamp()) - 60, "end_time": int(at.timestamp()) + 60})
    assert summary.data[0].aggregated_value == 33.0
    assert len(emulator.meter_events) == 3


def test_a_failing_item_is_a_result_not_an_exception(connector: StripeConnector) -> None:
    batch = [_out("customer", "hub-ok", {"name": "Fine"}, "b1"),
             _out("customer", "hub-bad", {"name": "Bad", "no_such_field": "x"}, "b2"),
             _out("payment", "hub-pay", {}, "b3")]
    ok, bad = connector.upsert("customer", batch[:2])
    (pay,) = connector.upsert("payment", batch[2:])
    assert ok.ok and isinstance(bad.error, InvalidError) and "no_such_field" in str(bad.error)
    assert isinstance(pay.error, InvalidError)


def test_emulator_replays_idempotent_requests_and_refuses_changed_parameters(
        running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    url = f"{running_stripe.base_url}/v1/customers"
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "same-key"}
    first = requests.post(url, data={"name": "Once", "metadata[hub_id]": "h"}, headers=headers, timeout=10)
    replay = requests.post(url, data={"name": "Once", "metadata[hub_id]": "h"}, headers=headers, timeout=10)
    changed = requests.post(url, data={"name": "Twice"}, headers=headers, timeout=10)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert changed.status_code == 400 and changed.json()["error"]["type"] == "idempotency_error"
    assert len(emulator.live("customer")) == 1


def test_lookup_finds_nothing_for_entities_without_a_marker(connector: StripeConnector) -> None:
    assert connector.lookup("payment", "hub-x") is None
    assert connector.lookup("invoice", "hub-none") is None


@pytest.mark.parametrize("entity_type", ["product", "price", "customer", "subscription", "invoice"])
def test_every_writable_type_is_found_by_its_marker(
        emulator: StripeEmulator, connector: StripeConnector, entity_type: str) -> None:
    refs = company(emulator)["refs"]
    payloads: dict[str, dict[str, object]] = {
        "product": {"name": "Marked"}, "customer": {"name": "Marked"},
        "price": {"product": refs["pro"], "currency": "usd", "unit_amount": 100},
        "subscription": {"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]},
        "invoice": {"customer": refs["acme"], "currency": "usd", "collection_method": "send_invoice",
                    "days_until_due": 7, "lines": [{"amount": 100, "currency": "usd", "description": "x"}]},
    }
    (result,) = connector.upsert(entity_type, [_out(entity_type, f"hub-{entity_type}", payloads[entity_type], "m1")])
    assert result.ok, result.error
    found = connector.lookup(entity_type, f"hub-{entity_type}")
    assert found is not None and found.external_id == result.external_id
