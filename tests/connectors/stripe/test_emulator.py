"""The emulator's own wire behaviour, through the real SDK and raw HTTP."""

from __future__ import annotations

from typing import Any, cast

import pytest
import requests
import stripe
from stripe.params import PriceUpdateParams

from connectors.emulation import RunningEmulator
from connectors.stripe.emulator import StripeEmulator, decode_form, parse_search
from tests.connectors.stripe.conftest import API_KEY, seed
from tests.connectors.stripe.helpers import company


def test_form_decoding_handles_nested_brackets_lists_and_blanks() -> None:
    text = ("items[0][price]=p1&items[0][quantity]=2&items[1][price]=p2&metadata[hub_id]=h"
            "&metadata[old]=&expand[0]=data.customer&created%5Bgte%5D=5")
    assert decode_form(text) == {
        "items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
        "metadata": {"hub_id": "h", "old": ""}, "expand": ["data.customer"], "created": {"gte": "5"}}


def test_search_queries_parse_metadata_and_escapes() -> None:
    clauses, joiner = parse_search("metadata['hub_id']:'it\\'s' AND email:\"a@b.c\"")
    assert joiner == "AND"
    assert clauses == [("metadata", "hub_id", ":", "it's"), ("email", None, ":", "a@b.c")]


def test_lists_paginate_newest_first_both_ways_and_validate_limit(
        running_stripe: RunningEmulator, raw_client: stripe.StripeClient) -> None:
    ids = seed(running_stripe, {"customers": [{"name": f"C{i}"} for i in range(5)]})["created"]["customers"]
    first = raw_client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in first.data] == ids[::-1][:2] and first.has_more
    assert first.url == "/v1/customers"
    assert first.object == "list"  # type: ignore[attr-defined]  # stripe: ListObject stub omits `object`
    after = raw_client.v1.customers.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [c.id for c in after.data] == ids[::-1][2:4]
    before = raw_client.v1.customers.list(params={"limit": 2, "ending_before": after.data[0].id})
    assert [c.id for c in before.data] == ids[::-1][:2]
    assert [c.id for c in raw_client.v1.customers.list(params={"limit": 2}).auto_paging_iter()] == ids[::-1]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        raw_client.v1.customers.list(params={"limit": 101})
    assert caught.value.http_status == 400 and caught.value.error is not None
    assert caught.value.error.param == "limit"


def test_filtered_lists_page_past_deleted_and_unlisted_objects(
        running_stripe: RunningEmulator, raw_client: stripe.StripeClient) -> None:
    """A page starts below its ``starting_after`` and skips what the filters leave out or what
    was deleted; an object the filter does not list cannot be ``starting_after`` (404)."""
    created = seed(running_stripe, {
        "customers": [{"ref": "a", "name": "A"}, {"ref": "b", "name": "B"}],
        "products": [{"ref": "p", "name": "P"}],
        "prices": [{"ref": "one", "product": "@p", "currency": "usd", "unit_amount": 100}],
        "invoices": [{"customer": "@a" if i % 2 else "@b", "currency": "usd", "status": "draft",
                      "items": [{"price": "@one"}]}
                     for i in range(9)]})["created"]
    a, ids = created["customers"][0], created["invoices"]
    raw_client.v1.invoices.delete(ids[5])
    listed = [i.id for i in raw_client.v1.invoices.list(params={"limit": 2, "customer": a}).auto_paging_iter()]
    assert listed == [ids[7], ids[3], ids[1]]
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.invoices.list(params={"customer": a, "starting_after": ids[2]})
    everyone = [i.id for i in raw_client.v1.invoices.list(params={"limit": 3}).auto_paging_iter()]
    assert everyone == [i for i in ids[::-1] if i != ids[5]]


def test_customer_search_by_email_and_metadata(raw_client: stripe.StripeClient) -> None:
    raw_client.v1.customers.create(params={"email": "x@y.test", "metadata": {"hub_id": "h-1"}})
    raw_client.v1.customers.create(params={"email": "z@y.test"})
    assert len(raw_client.v1.customers.search(params={"query": "email:'x@y.test'"}).data) == 1
    hits = raw_client.v1.customers.search(params={"query": "metadata['hub_id']:'h-1'"})
    assert [c.email for c in hits.data] == ["x@y.test"]
    assert hits.object == "search_result"  # type: ignore[attr-defined]  # stripe: stub omits `object`


def test_deleted_customer_reads_back_as_deleted_and_leaves_lists(raw_client: stripe.StripeClient) -> None:
    cus = raw_client.v1.customers.create(params={"name": "Gone"})
    assert raw_client.v1.customers.delete(cus.id).deleted is True
    assert raw_client.v1.customers.retrieve(cus.id).deleted is True
    assert raw_client.v1.customers.list().data == []


def test_updates_emit_events_with_previous_attributes(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    cus = raw_client.v1.customers.create(params={"name": "Before", "email": "e@x.test"})
    raw_client.v1.customers.update(cus.id, params={"name": "After"})
    event = raw_client.v1.events.list(params={"types": ["customer.updated"]}).data[0]
    assert event.data.object.name == "After"
    previous = event.data.previous_attributes
    assert previous is not None and previous.to_dict() == {"name": "Before"}


def test_prices_are_immutable_and_can_only_be_deactivated(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: unit_amount"):
        # Deliberately not a PriceUpdateParams key: the emulator must refuse it as Stripe does.
        raw_client.v1.prices.update(refs["basic_m"], params=cast(PriceUpdateParams, {"unit_amount": 1}))
    assert raw_client.v1.prices.update(refs["basic_m"], params={"active": False}).active is False
    assert [p.id for p in raw_client.v1.prices.list(params={"active": True, "limit": 100}).data].count(
        refs["basic_m"]) == 0


def test_invoice_lifecycle_and_status_filters(emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    inv = raw_client.v1.invoices.create(params={"customer": refs["acme"], "collection_method": "send_invoice",
                                                "days_until_due": 10})
    raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "invoice": inv.id, "amount": 1500})
    final = raw_client.v1.invoices.finalize_invoice(inv.id)
    finalized_at = final.status_transitions.finalized_at
    assert final.status == "open" and final.number and finalized_at is not None
    assert final.due_date == finalized_at + 10 * 86400
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.invoice_items.create(params={"customer": refs["acme"], "invoice": inv.id, "amount": 1})
    assert [i.id for i in raw_client.v1.invoices.list(params={"status": "open"}).data] == [inv.id]
    assert raw_client.v1.invoices.void_invoice(inv.id).status == "void"
    assert raw_client.v1.invoices.list(params={"status": "open"}).data == []
    assert raw_client.v1.invoices.list(params={"customer": refs["acme"], "status": "void"}).data[0].id == inv.id


def test_clock_advance_renews_subscriptions_and_issues_paid_invoices(
        cards_on_file: StripeEmulator, running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    refs = company(emulator)["refs"]
    sub = raw_client.v1.subscriptions.create(params={"customer": refs["acme"], "items": [{"price": refs["basic_m"]}]})
    answer = requests.post(f"{running_stripe.base_url}/__emulator/clock",
                           json={"advance_seconds": 62 * 86400}, timeout=10).json()
    assert len(answer["renewed_invoices"]) == 2  # Dec 1 and Jan 1
    invoices = raw_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_cycle", "subscription_create"]
    assert all(i.status == "paid" and i.total == 2000 for i in invoices)
    renewed = raw_client.v1.subscriptions.retrieve(sub.id)
    assert renewed["items"].data[0].current_period_start == invoices[0].period_start


def test_events_older_than_30_days_are_gone(emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    raw_client.v1.customers.create(params={"name": "Old"})
    old_event = emulator.events[-1]["id"]
    emulator.clock.advance(31 * 86400)
    raw_client.v1.customers.create(params={"name": "New"})
    assert [e.data.object.name for e in raw_client.v1.events.list().data] == ["New"]
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.events.retrieve(old_event)


def test_events_listed_from_a_created_bound_match_a_full_scan_even_after_the_clock_went_back(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """The emulator bisects to ``created[gte]`` while events are in time order; a clock set back
    (demo seeding does) must not hide an event from the list."""
    def names(**created: int) -> list[str]:
        page = raw_client.v1.events.list(params=cast(Any, {"limit": 100, "created": created}))
        return [e.data.object.name for e in page.data]

    for name in ("A", "B", "C"):
        raw_client.v1.customers.create(params={"name": name})
        emulator.clock.advance(60)
    middle = emulator.events[1]["created"]
    assert emulator.events_in_order
    assert names(gte=middle) == ["C", "B"] and names(gt=middle) == ["C"]
    emulator.clock.advance(-600)  # set back: the newest event is now the oldest
    raw_client.v1.customers.create(params={"name": "Early"})
    assert not emulator.events_in_order
    assert names(gte=middle) == ["C", "B"]
    assert names(gte=middle - 600) == ["Early", "C", "B", "A"]


def test_events_paged_by_starting_after_are_the_full_list_in_order(
        emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    """Pages after the first start below the named event (no rescan of every event since the
    bound); together they are the filtered list, newest first; ``ending_before`` still pages
    back; a ``starting_after`` the filter does not list is a 404, as on Stripe."""
    for i in range(7):
        customer = raw_client.v1.customers.create(params={"name": f"C{i}"})
        raw_client.v1.customers.update(customer.id, params={"name": f"C{i}!"})
    created = emulator.events[0]["created"]
    pages, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, "types": ["customer.created"], "created": {"gte": created}}
        if after:
            params["starting_after"] = after
        page = raw_client.v1.events.list(params=cast(Any, params))
        pages.append([e.data.object.name for e in page.data])
        if not page.has_more:
            break
        after = page.data[-1].id
    assert pages == [["C6", "C5", "C4"], ["C3", "C2", "C1"], ["C0"]]
    newest = raw_client.v1.events.list(params={"limit": 2, "types": ["customer.created"]}).data
    back = raw_client.v1.events.list(params={"limit": 5, "types": ["customer.created"], "ending_before": newest[-1].id})
    assert [e.data.object.name for e in back.data] == ["C6"]
    update = next(e["id"] for e in emulator.events if e["type"] == "customer.updated")
    with pytest.raises(stripe.InvalidRequestError):
        raw_client.v1.events.list(params={"types": ["customer.created"], "starting_after": update})
    assert raw_client.v1.events.retrieve(update).type == "customer.updated"


def test_requests_without_a_valid_key_get_401(running_stripe: RunningEmulator) -> None:
    url = f"{running_stripe.base_url}/v1/customers"
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer pk_live_nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "invalid_request_error"
    assert requests.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).status_code == 200


def test_stats_count_calls_by_route(running_stripe: RunningEmulator, raw_client: stripe.StripeClient) -> None:
    cus = raw_client.v1.customers.create(params={"name": "Counted"})
    raw_client.v1.customers.retrieve(cus.id)
    raw_client.v1.customers.retrieve(cus.id)
    stats = requests.get(f"{running_stripe.base_url}/__emulator/stats", timeout=10).json()
    assert stats["calls"]["GET /v1/customers/{id}"] == 2 and stats["calls"]["POST /v1/customers"] == 1


def test_seed_reports_a_bad_reference_instead_of_crashing(running_stripe: RunningEmulator) -> None:
    answer = requests.post(f"{running_stripe.base_url}/__emulator/seed",
                           json={"prices": [{"product": "@nothing", "currency": "usd", "unit_amount": 1}]},
                           timeout=10)
    assert answer.status_code == 200 and "unknown reference" in answer.json()["error"]


def test_fixed_endpoint_secret_for_demo_configs(emulator: StripeEmulator, raw_client: stripe.StripeClient) -> None:
    emulator.endpoint_secret = "whsec_demo_fixed"
    endpoint = raw_client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/h",
                                                              "enabled_events": ["*"]})
    assert endpoint.secret == "whsec_demo_fixed"
    assert "secret" not in raw_client.v1.webhook_endpoints.retrieve(endpoint.id)
