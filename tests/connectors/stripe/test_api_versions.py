"""API versions (issue 24): the emulator answers each request in its ``Stripe-Version`` (else the
account's default) and renders each event once, in the account's default version of its time;
billhub pins its version and never maps an event's object rendered in another one.

The older version is ``2022-11-15`` (what tap-stripe and the older SDKs pin): before Basil
(2025-03-31) invoices named their subscription and payment at the top level, line items their
price and plan, subscriptions their billing period.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.stripe.client import STRIPE_VERSION
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from mapping.model import Entity, Invoice, Subscription
from tests.connectors.stripe.conftest import API_KEY, Waits, make_config
from tests.connectors.stripe.helpers import Refs, WebhookReceiver, company, drain, webhook_receiver

pytestmark = pytest.mark.usefixtures("cards_on_file")  # the company pays by cards on file

OLD = "2022-11-15"
MONTH = 31 * 86400


def set_account_version(running: RunningEmulator, version: str) -> None:
    response = requests.post(f"{running.base_url}/__emulator/api_version", json={"version": version}, timeout=10)
    response.raise_for_status()
    assert response.json() == {"version": version}


def version_of(obj: Any) -> str:
    """The ``Stripe-Version`` the emulator answered ``obj``'s request with."""
    response = obj.last_response
    assert response is not None
    return str(response.headers["Stripe-Version"])


def old(obj: Any) -> dict[str, Any]:
    """``obj`` read again in the old version (through the SDK's per-request ``stripe_version``)."""
    return dict(obj.to_dict())


def previous_of(event: Any) -> dict[str, Any]:
    previous = event.data.previous_attributes
    assert previous is not None
    return dict(previous.to_dict())


def subscribed(emulator: StripeEmulator, client: stripe.StripeClient) -> tuple[dict[str, str], Any]:
    """The small company and a subscription (2 x Basic with VAT) paid on creation."""
    refs = company(emulator)["refs"]
    sub = client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": refs["basic_m"], "quantity": 2, "tax_rates": [refs["vat"]]}]})
    return refs, sub


# --------------------------------------------------------------------------- the emulator


def test_a_request_is_answered_in_its_stripe_version_and_the_header_says_which(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs, sub = subscribed(emulator, raw_client)
    current = raw_client.v1.invoices.retrieve(sub.latest_invoice)
    before = raw_client.v1.invoices.retrieve(sub.latest_invoice, options={"stripe_version": OLD})
    assert version_of(current) == STRIPE_VERSION and version_of(before) == OLD
    new, was = current.to_dict(), old(before)
    assert new["parent"]["subscription_details"]["subscription"] == sub.id
    assert not {"subscription", "charge", "payment_intent", "paid", "total_tax_amounts"} & set(new)
    assert "parent" not in was and "total_taxes" not in was
    intent = raw_client.v1.payment_intents.list(params={"customer": refs["acme"]}).data[0]
    assert was["subscription"] == sub.id and was["subscription_details"] == {"metadata": {}}
    assert (was["payment_intent"], was["charge"]) == (intent.id, intent.latest_charge)
    assert was["paid"] is True and was["paid_out_of_band"] is False
    assert was["tax"] == 800 and was["total_tax_amounts"] == [
        {"amount": 800, "inclusive": False, "tax_rate": refs["vat"], "taxability_reason": "not_available",
         "taxable_amount": 4000}]


def test_old_line_items_name_their_price_plan_and_subscription_item(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs, sub = subscribed(emulator, raw_client)
    lines = raw_client.v1.invoices.line_items.list(sub.latest_invoice, options={"stripe_version": OLD})
    (line,) = [old(x) for x in lines.data]
    item = sub["items"].data[0]
    assert line["type"] == "subscription" and line["proration"] is False
    assert (line["subscription"], line["subscription_item"], line["invoice_item"]) == (sub.id, item.id, None)
    assert line["price"]["id"] == refs["basic_m"] and line["price"]["object"] == "price"
    assert line["plan"]["id"] == refs["basic_m"] and line["plan"]["object"] == "plan"
    assert (line["plan"]["amount"], line["plan"]["interval"]) == (2000, "month")
    assert [r["id"] for r in line["tax_rates"]] == [refs["vat"]]
    assert (line["amount_excluding_tax"], line["unit_amount_excluding_tax"]) == (4000, "2000")
    assert line["period"] == {"start": item.current_period_start, "end": item.current_period_end}
    assert not {"parent", "pricing", "taxes", "subtotal"} & set(line)
    (current,) = raw_client.v1.invoices.line_items.list(sub.latest_invoice).data
    assert current.to_dict()["pricing"]["price_details"]["price"] == refs["basic_m"]
    assert "price" not in current.to_dict()


def test_old_subscriptions_carry_the_period_and_old_payments_their_invoice(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs, sub = subscribed(emulator, raw_client)
    item = sub["items"].data[0]
    was = old(raw_client.v1.subscriptions.retrieve(sub.id, options={"stripe_version": OLD}))
    assert (was["current_period_start"], was["current_period_end"]) == (item.current_period_start,
                                                                        item.current_period_end)
    (old_item,) = was["items"]["data"]
    assert "current_period_start" not in old_item and old_item["plan"]["id"] == refs["basic_m"]
    assert was["plan"]["id"] == refs["basic_m"] and was["quantity"] == 2 and "billing_mode" not in was
    assert "current_period_start" not in sub.to_dict()
    intent = raw_client.v1.payment_intents.list(params={"customer": refs["acme"]}).data[0]
    assert "invoice" not in intent.to_dict()
    was_intent = old(raw_client.v1.payment_intents.retrieve(intent.id, options={"stripe_version": OLD}))
    assert was_intent["invoice"] == sub.latest_invoice
    was_charge = old(raw_client.v1.charges.retrieve(str(intent.latest_charge), options={"stripe_version": OLD}))
    assert was_charge["invoice"] == sub.latest_invoice


def test_expansions_are_rendered_in_the_request_version_and_may_name_its_own_fields(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    _refs, sub = subscribed(emulator, raw_client)
    was = old(raw_client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]},
                                                   options={"stripe_version": OLD}))
    assert was["latest_invoice"]["subscription"] == sub.id and "parent" not in was["latest_invoice"]
    # ``payment_intent`` is a field of the old invoice only: expandable there, in the old shape
    invoice = old(raw_client.v1.invoices.retrieve(str(sub.latest_invoice), params={"expand": ["payment_intent"]},
                                                  options={"stripe_version": OLD}))
    assert invoice["payment_intent"]["object"] == "payment_intent"
    assert invoice["payment_intent"]["invoice"] == sub.latest_invoice


def test_old_credit_notes_name_one_refund_and_tax_amounts(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    _refs, sub = subscribed(emulator, raw_client)
    line = raw_client.v1.invoices.line_items.list(sub.latest_invoice).data[0]
    note = raw_client.v1.credit_notes.create(params={
        "invoice": sub.latest_invoice, "refund_amount": 2400,
        "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 2000}]})
    was = old(raw_client.v1.credit_notes.retrieve(note.id, options={"stripe_version": OLD}))
    assert was["refund"] == note.refunds[0].refund and "refunds" not in was
    assert was["tax_amounts"][0]["amount"] == 400 and "total_taxes" not in was
    (old_line,) = was["lines"]["data"]
    assert old_line["tax_amounts"][0]["inclusive"] is False and "taxes" not in old_line
    assert old_line["amount_excluding_tax"] == 2000


def test_without_a_version_header_the_account_default_answers(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    _refs, sub = subscribed(emulator, raw_client)
    url, auth = f"{running_stripe.base_url}/v1/invoices/{sub.latest_invoice}", {"Authorization": f"Bearer {API_KEY}"}
    first = requests.get(url, headers=auth, timeout=10)
    assert first.headers["Stripe-Version"] == STRIPE_VERSION and "parent" in first.json()
    set_account_version(running_stripe, OLD)
    then = requests.get(url, headers=auth, timeout=10)
    assert then.headers["Stripe-Version"] == OLD and then.json()["subscription"] == sub.id
    pinned = raw_client.v1.invoices.retrieve(sub.latest_invoice)  # the SDK always names its version
    assert version_of(pinned) == STRIPE_VERSION and "parent" in pinned.to_dict()


def test_an_unknown_version_is_refused_with_400(running_stripe: RunningEmulator, emulator: StripeEmulator) -> None:
    client = stripe.StripeClient(API_KEY, base_addresses={"api": running_stripe.base_url}, max_network_retries=0,
                                 stripe_version="2099-01-01")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 400
    assert caught.value.user_message == "Invalid Stripe API version: 2099-01-01"
    bad = requests.post(f"{running_stripe.base_url}/__emulator/api_version", json={"version": "someday"}, timeout=10)
    assert bad.status_code == 400 and emulator.account_version == STRIPE_VERSION


def test_events_are_rendered_once_in_the_account_version_of_their_time(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    set_account_version(running_stripe, OLD)
    refs, sub = subscribed(emulator, raw_client)
    set_account_version(running_stripe, STRIPE_VERSION)  # the account upgrades
    raw_client.v1.invoices.update(sub.latest_invoice, params={"metadata": {"note": "after the upgrade"}})
    events = raw_client.v1.events.list(params={"types": ["invoice.paid", "invoice.updated"]}).data
    by_type = {e.type: e for e in events}
    paid, updated = by_type["invoice.paid"], by_type["invoice.updated"]
    assert paid.api_version == OLD and updated.api_version == STRIPE_VERSION
    assert paid.data.object.subscription == sub.id and "parent" not in paid.data.object.to_dict()
    assert updated.data.object.parent.subscription_details.subscription == sub.id
    assert "subscription" not in updated.data.object.to_dict()
    # an old event's previous attributes are in its version too (``paid`` changed with the status)
    assert previous_of(paid) == {"status": "open", "amount_paid": 0, "paid": False}
    again = raw_client.v1.events.retrieve(paid.id, options={"stripe_version": STRIPE_VERSION})
    assert again.api_version == OLD and again.data.object.subscription == sub.id


def test_previous_attributes_of_a_renewal_name_the_period_where_the_version_has_it(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    def renewal() -> Any:
        requests.post(f"{running_stripe.base_url}/__emulator/clock", json={"advance_seconds": MONTH},
                      timeout=10).raise_for_status()
        return raw_client.v1.events.list(params={"type": "customer.subscription.updated", "limit": 1}).data[0]
    set_account_version(running_stripe, OLD)
    _refs, sub = subscribed(emulator, raw_client)
    first = renewal()
    set_account_version(running_stripe, STRIPE_VERSION)
    second = renewal()
    assert [first.api_version, second.api_version] == [OLD, STRIPE_VERSION]
    older, newer = previous_of(first), previous_of(second)
    assert set(older) == {"current_period_start", "current_period_end"}
    assert older["current_period_start"] == sub["items"].data[0].current_period_start
    assert set(newer) == {"items"}  # Basil: the items' periods changed, the subscription has none


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver(fail_first=False) as rec:
        yield rec


def test_a_webhook_endpoint_with_its_own_version_receives_events_in_it(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient,
        receiver: WebhookReceiver) -> None:
    set_account_version(running_stripe, OLD)
    for version in (None, STRIPE_VERSION):
        params: Any = {"url": f"{receiver.url}?v={version}", "enabled_events": ["invoice.paid"]}
        if version:
            params["api_version"] = version
        raw_client.v1.webhook_endpoints.create(params=params)
    _refs, sub = subscribed(emulator, raw_client)
    running_stripe.call(emulator.settle_deliveries())
    got = {body["api_version"]: body for body in receiver.bodies}
    assert set(got) == {OLD, STRIPE_VERSION} and len(receiver.bodies) == 2
    assert got[OLD]["id"] == got[STRIPE_VERSION]["id"]  # one event, rendered per endpoint
    assert got[OLD]["data"]["object"]["subscription"] == sub.id
    assert got[STRIPE_VERSION]["data"]["object"]["parent"]["subscription_details"]["subscription"] == sub.id


# --------------------------------------------------------------------------- billhub


def _reset(running: RunningEmulator, emulator: StripeEmulator, version: str) -> None:
    requests.post(f"{running.base_url}/__emulator/reset", timeout=10).raise_for_status()
    emulator.clock.now_value = EmulatorClock().now_value
    set_account_version(running, version)


def _history(running: RunningEmulator, emulator: StripeEmulator, waits: Waits,
             version: str) -> tuple[dict[str, dict[str, Entity]], StripeConnector]:
    """One account's billing, read through billhub's change feed: a first read, then a daily
    subscription made, changed mid-cycle (prorations) and renewed, and a one-off invoice; what the
    next read maps, per stream and id. Ids are the same on every run (the emulator's ids and clock
    are reset, and billhub's reads come after the changes), so two accounts' results compare as
    they are."""
    _reset(running, emulator, version)
    conn = build(make_config(running.base_url), None, sleep=waits, clock=emulator.clock.now)
    refs = company(emulator)["refs"]
    client = conn.api.client
    daily = {name: client.v1.prices.create(params={"product": refs[product], "currency": "usd", "unit_amount": amount,
                                                   "recurring": {"interval": "day"}}).id
             for name, product, amount in (("basic", "basic", 100), ("pro", "pro", 300))}
    cursors = {t: drain(conn.fetch_changes(t, None))[1] for t in ("subscription", "invoice")}
    emulator.clock.advance(3600)
    sub = client.v1.subscriptions.create(params={
        "customer": refs["acme"], "items": [{"price": daily["basic"], "quantity": 2, "tax_rates": [refs["vat"]]}]})
    emulator.clock.advance(6 * 3600)
    client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": daily["pro"]}], "proration_behavior": "always_invoice"})
    requests.post(f"{running.base_url}/__emulator/clock", json={"advance_seconds": 86400},
                  timeout=10).raise_for_status()  # the renewal
    one_off = client.v1.invoices.create(params={"customer": refs["gmbh"], "collection_method": "send_invoice",
                                                "days_until_due": 14, "currency": "eur"})
    client.v1.invoice_items.create(params={"customer": refs["gmbh"], "invoice": one_off.id,
                                           "pricing": {"price": refs["setup_eur"]}, "quantity": 3})
    client.v1.invoices.finalize_invoice(one_off.id)
    mapped: dict[str, dict[str, Entity]] = {}
    for stream, cursor in cursors.items():
        records, _ = drain(conn.fetch_changes(stream, cursor))
        mapped[stream] = {r.external_id: conn.to_canonical(r, Refs()) for r in records}
    # every change came through the events: each list was read once, by the first read
    assert emulator.stats.calls["GET /v1/subscriptions"] == emulator.stats.calls["GET /v1/invoices"] == 1
    return mapped, conn


def test_an_account_on_an_old_version_syncs_exactly_as_a_current_one(
        running_stripe: RunningEmulator, emulator: StripeEmulator, waits: Waits) -> None:
    current, conn = _history(running_stripe, emulator, waits, STRIPE_VERSION)
    conn.close()
    before_basil, conn = _history(running_stripe, emulator, waits, OLD)
    try:
        assert {e["api_version"] for e in emulator.events} == {OLD}  # every change came in old-shaped events
        # what billhub needs of them: subscriptions with their links, lines with prices and periods
        (sub,) = before_basil["subscription"].values()
        assert isinstance(sub, Subscription) and sub.customer_id and sub.current_period_start is not None
        pro = next(p for p in emulator.table("price").values() if p["unit_amount"] == 300)
        assert [i.price_id for i in sub.items] == [Refs().canonical_id("price", pro["id"])]
        invoices = [i for i in before_basil["invoice"].values() if isinstance(i, Invoice)]
        assert len(invoices) == 4  # the first cycle, the proration, the renewal, the one-off
        assert sum(1 for i in invoices if i.subscription_id == sub.id) == 3
        assert all(line.price_id and line.period_start for i in invoices for line in i.lines)
        assert current == before_basil
    finally:
        conn.close()


def test_a_webhook_event_of_another_version_is_read_again_before_it_is_mapped(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    set_account_version(running_stripe, OLD)
    _refs, sub = subscribed(emulator, raw_client)
    payloads = [e for e in emulator.events if e["type"] in ("invoice.paid", "customer.subscription.created")]
    as_sent = [connector.to_canonical(r, Refs()) for p in payloads for r in connector.reader.records_for_event(p)]
    assert [e.subscription_id for e in as_sent if isinstance(e, Invoice)] == [None]  # old shape: link lost
    results = connector.records_for_events(payloads)
    records = [r for got in results if isinstance(got, list) for r in got]
    assert len(records) == 2 and all("parent" in r.data or r.entity_type == "subscription" for r in records)
    mapped = [connector.to_canonical(r, Refs()) for r in records]
    (invoice,) = [e for e in mapped if isinstance(e, Invoice)]
    (subscription,) = [e for e in mapped if isinstance(e, Subscription)]
    assert invoice.subscription_id == Refs().canonical_id("subscription", sub.id)
    assert [line.price_id for line in invoice.lines] == [subscription.items[0].price_id]
    assert subscription.items[0].price_id and subscription.current_period_end is not None


def test_billhub_pins_its_api_version_whatever_the_account_default(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector) -> None:
    set_account_version(running_stripe, OLD)
    listed = connector.api.call(lambda c: c.v1.customers.list())
    assert version_of(listed) == STRIPE_VERSION == "2026-10-28.endive"
