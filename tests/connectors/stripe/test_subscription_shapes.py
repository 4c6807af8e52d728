"""Subscriptions as Stripe gives them (issue 24): the created event names the first invoice, and a
subscription whose items carry only a plan is held, not linked to no price."""

from __future__ import annotations

import pytest
import stripe

from connectors.stripe.emulator import StripeEmulator
from mapping.model import Subscription
from mapping.stripe import StripeMappingError, to_canonical
from sync.context import MAPPING_ERRORS
from tests.connectors.stripe.helpers import Refs, company


def test_the_created_event_names_the_first_invoice_which_exists(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    (created,) = raw_client.v1.events.list(params={"type": "customer.subscription.created"}).data
    invoice_id = created.data.object.latest_invoice
    assert invoice_id is not None and invoice_id == sub.latest_invoice
    invoice = raw_client.v1.invoices.retrieve(invoice_id)
    assert invoice.billing_reason == "subscription_create" and invoice.created <= created.created
    # recorded once the invoice is there: after the invoice's own creation event
    ids = [e.id for e in raw_client.v1.events.list(params={"limit": 100}).data]
    (invoice_created,) = raw_client.v1.events.list(params={"type": "invoice.created"}).data
    assert ids.index(created.id) < ids.index(invoice_created.id)  # newest first


def test_a_subscription_item_with_only_a_plan_is_held_not_linked_to_no_price(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["pro_m"]}]})
    # as versions before prices rendered it: the item's plan, and no price
    data = raw_client.v1.subscriptions.retrieve(sub.id, options={"stripe_version": "2022-11-15"}).to_dict()
    (item,) = data["items"]["data"]
    assert item["plan"]["id"] == refs["pro_m"]
    del item["price"]
    with pytest.raises(StripeMappingError) as caught:
        to_canonical("subscription", data, Refs())
    assert isinstance(caught.value, MAPPING_ERRORS)  # what the engine holds with an unreadable finding
    assert f"subscription {sub.id} item {item['id']} has no price (plan {refs['pro_m']} only)" in str(caught.value)
    item["price"] = refs["pro_m"]  # the same subscription with its price maps, linked to it
    mapped = to_canonical("subscription", data, Refs())
    assert isinstance(mapped, Subscription)
    assert [i.price_id for i in mapped.items] == [Refs().canonical_id("price", refs["pro_m"])]
