"""Reads: full fetch at volume, incremental reads from the Events API, and their fallbacks."""

from __future__ import annotations

import json
from datetime import timedelta

import stripe

from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.streams import STREAMS
from tests.connectors.stripe.conftest import Waits, make_config, seed
from tests.connectors.stripe.helpers import calls, drain


def _seed_volume(running: RunningEmulator, customers: int, invoices: int) -> dict[str, list[str]]:
    body = {"customers": [{"ref": f"c{i}", "name": f"Customer {i}", "email": f"c{i}@example.com"}
                          for i in range(customers)]}
    created = seed(running, body)
    refs = created["refs"]
    invoice_body = {"invoices": [{"customer": refs[f"c{i % customers}"], "currency": "usd",
                                  "items": [{"amount": 1000 + i, "description": f"Service {i}"}],
                                  "status": "open"} for i in range(invoices)]}
    result = seed(running, invoice_body)
    return {"customers": created["created"]["customers"], "invoices": result["created"].get("invoices", [])}


def test_full_fetch_of_1000_customers_and_1000_invoices_returns_each_exactly_once(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector) -> None:
    seeded = _seed_volume(running_stripe, 1000, 1000)
    customers, _ = drain(connector.fetch_all("customer"))
    invoices, _ = drain(connector.fetch_all("invoice"))
    customer_ids = [r.external_id for r in customers]
    invoice_ids = [r.external_id for r in invoices]
    assert len(customer_ids) == len(set(customer_ids)) == 1000
    assert set(customer_ids) == set(seeded["customers"])
    assert len(invoice_ids) == len(set(invoice_ids)) == 1000
    assert set(invoice_ids) == set(seeded["invoices"])
    # limit=100 pages: ten list calls per stream, and no per-record calls.
    assert calls(emulator, "GET /v1/customers") == 10
    assert calls(emulator, "GET /v1/invoices") == 10
    assert {r.data["total"] for r in invoices} == {1000 + i for i in range(1000)}


def test_incremental_read_after_50_changes_returns_those_50_and_nothing_older(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    ids = _seed_volume(running_stripe, 200, 0)["customers"]
    _records, cursor = drain(connector.fetch_changes("customer", None))
    assert cursor is not None
    emulator.clock.advance(3600)
    changed = ids[10:60]
    for n, cus_id in enumerate(changed):
        raw_client.v1.customers.update(cus_id, params={"name": f"Changed {n}"})
    records, next_cursor = drain(connector.fetch_changes("customer", cursor))
    assert sorted(r.external_id for r in records) == sorted(changed)
    assert {r.data["name"] for r in records} == {f"Changed {n}" for n in range(50)}
    assert next_cursor is not None and json.loads(next_cursor)["t"] > json.loads(cursor)["t"]


def test_second_read_without_changes_makes_one_api_call_per_stream(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector) -> None:
    _seed_volume(running_stripe, 5, 5)
    cursors = {}
    for entity_type in STREAMS:
        _records, cursors[entity_type] = drain(connector.fetch_changes(entity_type, None))
    emulator.clock.advance(10)
    before = emulator.stats.to_json()["total"]
    for entity_type in STREAMS:
        records, cursor = drain(connector.fetch_changes(entity_type, cursors[entity_type]))
        assert records == [], entity_type
        assert cursor is not None
    assert emulator.stats.to_json()["total"] - before == len(STREAMS)
    assert calls(emulator, "GET /v1/events") >= len(STREAMS)


def test_changes_within_the_overlap_window_are_returned_once(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    ids = _seed_volume(running_stripe, 3, 0)["customers"]
    _records, cursor = drain(connector.fetch_changes("customer", None))
    emulator.clock.advance(5)  # still inside the 60 s overlap
    raw_client.v1.customers.update(ids[0], params={"name": "Late"})
    records, cursor2 = drain(connector.fetch_changes("customer", cursor))
    assert [r.external_id for r in records] == [ids[0]]
    again, _ = drain(connector.fetch_changes("customer", cursor2))
    assert again == []


def test_cursor_older_than_event_retention_falls_back_to_a_full_fetch(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector) -> None:
    ids = _seed_volume(running_stripe, 7, 0)["customers"]
    _records, cursor = drain(connector.fetch_changes("customer", None))
    emulator.clock.advance(31 * 86400)
    records, new_cursor = drain(connector.fetch_changes("customer", cursor))
    assert sorted(r.external_id for r in records) == sorted(ids)
    assert calls(emulator, "GET /v1/customers") == 2  # initial full read, then the fallback
    assert cursor is not None and new_cursor is not None
    assert json.loads(new_cursor)["t"] >= json.loads(cursor)["t"]


def test_unreadable_cursor_falls_back_to_a_full_fetch(
        running_stripe: RunningEmulator, connector: StripeConnector) -> None:
    ids = _seed_volume(running_stripe, 4, 0)["customers"]
    records, cursor = drain(connector.fetch_changes("customer", "not-a-cursor"))
    assert sorted(r.external_id for r in records) == sorted(ids)
    assert cursor is not None


def test_deleted_customer_surfaces_as_a_deletion(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    ids = _seed_volume(running_stripe, 2, 0)["customers"]
    _records, cursor = drain(connector.fetch_changes("customer", None))
    emulator.clock.advance(120)
    raw_client.v1.customers.delete(ids[1])
    records, _ = drain(connector.fetch_changes("customer", cursor))
    assert [(r.external_id, r.deleted) for r in records] == [(ids[1], True)]


def test_invoice_with_many_lines_is_read_completely_with_tax_rates_expanded(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    made = emulator.seed_objects({
        "tax_rates": [{"ref": "vat", "display_name": "VAT", "percentage": "19", "inclusive": False}],
        "customers": [{"ref": "c", "name": "Many Lines"}],
        "invoices": [{"customer": "@c", "currency": "eur", "default_tax_rates": ["@vat"],
                      "items": [{"amount": 100 * (n + 1), "description": f"Line {n}"} for n in range(25)]}],
    })
    (record,) = [r for page in connector.fetch_all("invoice") for r in page.records]
    lines = record.data["lines"]["data"]
    assert len(lines) == 25 and record.data["lines"]["has_more"] is False
    assert record.external_id == made["created"]["invoices"][0]
    rate = record.data["total_taxes"][0]["tax_rate_details"]["tax_rate"]
    assert rate["display_name"] == "VAT" and rate["percentage"] == 19.0
    assert calls(emulator, "GET /v1/invoices/{id}/lines") == 1
    assert calls(emulator, "GET /v1/tax_rates/{id}") == 1  # cached after the first sighting


def test_a_quiet_pass_long_after_a_burst_does_not_re_read_the_burst(
        running_stripe: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    ids = _seed_volume(running_stripe, 150, 0)["customers"]
    _records, cursor = drain(connector.fetch_changes("customer", None))
    emulator.clock.advance(3600)
    for cus_id in ids:  # a billing run: 150 events in one second, more than one page of events
        raw_client.v1.customers.update(cus_id, params={"name": "Renamed"})
    records, cursor = drain(connector.fetch_changes("customer", cursor))
    assert len(records) == 150
    emulator.clock.advance(2 * 60 + 1)  # two overlaps later: every event of the burst has landed
    quiet, cursor = drain(connector.fetch_changes("customer", cursor))
    assert quiet == []
    before = calls(emulator, "GET /v1/events")
    again, _ = drain(connector.fetch_changes("customer", cursor))
    assert again == [] and calls(emulator, "GET /v1/events") - before == 1  # not the burst's 2 pages


def test_a_host_clock_running_ahead_of_stripe_skips_no_event(
        running_stripe: RunningEmulator, emulator: StripeEmulator, waits: Waits,
        raw_client: stripe.StripeClient) -> None:
    """The cursor only moves past what Stripe's own clock (its Date header) says has landed."""
    ids = _seed_volume(running_stripe, 3, 0)["customers"]
    ahead = build(make_config(running_stripe.base_url), None, sleep=waits,
                  clock=lambda: emulator.clock.now() + timedelta(hours=1))
    try:
        _records, cursor = drain(ahead.fetch_changes("customer", None))
        quiet, cursor = drain(ahead.fetch_changes("customer", cursor))
        assert quiet == []
        emulator.clock.advance(5)
        raw_client.v1.customers.update(ids[1], params={"name": "Changed after the quiet pass"})
        records, _ = drain(ahead.fetch_changes("customer", cursor))
        assert [r.external_id for r in records] == [ids[1]]
    finally:
        ahead.close()


def test_events_created_while_a_long_read_pages_on_are_read_the_next_time(
        running_stripe: RunningEmulator, emulator: StripeEmulator, raw_client: stripe.StripeClient,
        waits: Waits) -> None:
    """A read lists newest first, so what is created after its first page is not in it. The
    cursor must not move past that, however long the read took (more than the overlap here)."""
    connector = build(make_config(running_stripe.base_url, page_limit=2), None, sleep=waits,
                      clock=emulator.clock.now)
    try:
        _records, cursor = drain(connector.fetch_changes("customer", None))
        emulator.clock.advance(3600)
        before = [raw_client.v1.customers.create(params={"name": f"Before {n}"}).id for n in range(6)]
        pages = connector.fetch_changes("customer", cursor)
        first = next(pages)  # the read has begun: one events page listed
        during = raw_client.v1.customers.create(params={"name": "During"}).id
        emulator.clock.advance(600)  # the read goes on for ten minutes
        rest, next_cursor = drain(pages)
        assert sorted(r.external_id for r in [*first.records, *rest]) == sorted(before)
        again, _ = drain(connector.fetch_changes("customer", next_cursor))
        assert [r.external_id for r in again] == [during]
    finally:
        connector.close()
