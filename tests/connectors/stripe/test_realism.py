"""Stripe's weaker guarantees, switched on (issue 24, item 5): search lags writes, idempotency keys
expire after 24 hours, credit notes embed 10 lines. The emulator plays each as Stripe documents
it, and billhub neither depends on search freshness for exactly-once nor on a credit note carrying
all its lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import requests
import stripe

from connectors.base import Outbound, RetryableError
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import RECENT_SECONDS, StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from connectors.stripe.emulator.realism import Realism
from mapping.model import CreditNote
from tests.connectors.stripe.conftest import Waits, make_config
from tests.connectors.stripe.helpers import Refs, drain

LAG = 120


@pytest.fixture
def realism(emulator: StripeEmulator) -> Iterator[Realism]:
    """The session emulator's realism settings, put back to the defaults after the test."""
    yield emulator.realism
    for field in dataclasses.fields(Realism):
        setattr(emulator.realism, field.name, getattr(Realism(), field.name))


def _found(client: stripe.StripeClient, query: str) -> list[str]:
    return [c.id for c in client.v1.customers.search(params={"query": query}).data]


def test_search_finds_an_object_only_after_the_lag_and_by_what_it_was_before(
        emulator: StripeEmulator, realism: Realism, raw_client: stripe.StripeClient) -> None:
    realism.search_lag_seconds = LAG
    made = raw_client.v1.customers.create(params={"name": "Lagging", "metadata": {"tier": "gold"}})
    assert _found(raw_client, "metadata['tier']:'gold'") == []  # not indexed yet
    assert [c.id for c in raw_client.v1.customers.list().data] == [made.id]  # lists are current
    assert raw_client.v1.customers.retrieve(made.id).name == "Lagging"
    emulator.clock.advance(LAG)
    assert _found(raw_client, "metadata['tier']:'gold'") == [made.id]
    raw_client.v1.customers.update(made.id, params={"metadata": {"tier": "silver"}})
    emulator.clock.advance(LAG - 1)
    assert _found(raw_client, "metadata['tier']:'silver'") == []  # the index still holds gold
    assert _found(raw_client, "metadata['tier']:'gold'") == [made.id]
    emulator.clock.advance(1)
    assert (_found(raw_client, "metadata['tier']:'silver'"), _found(raw_client, "metadata['tier']:'gold'")) == (
        [made.id], [])


def test_an_idempotency_key_replays_for_24_hours_and_then_runs_anew(
        emulator: StripeEmulator, realism: Realism, raw_client: stripe.StripeClient) -> None:
    def create() -> str:
        return raw_client.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": "k-1"}).id
    first = create()
    emulator.clock.advance(24 * 3600 - 1)
    assert create() == first and len(emulator.live("customer")) == 1  # replayed
    emulator.clock.advance(1)
    assert create() != first and len(emulator.live("customer")) == 2  # pruned: a new request
    realism.idempotency_ttl_seconds = None  # kept for ever
    kept = raw_client.v1.customers.create(params={"name": "Kept"}, options={"idempotency_key": "k-2"}).id
    emulator.clock.advance(30 * 24 * 3600)
    again = raw_client.v1.customers.create(params={"name": "Kept"}, options={"idempotency_key": "k-2"}).id
    assert again == kept


def test_the_realism_control_route_switches_and_reset_keeps_it(
        running_stripe: RunningEmulator, emulator: StripeEmulator, realism: Realism) -> None:
    url = f"{running_stripe.base_url}/__emulator/realism"
    assert requests.get(url, timeout=10).json() == {
        "search_lag_seconds": 0, "idempotency_ttl_seconds": 86400, "credit_note_lines_inline": 10,
        "payment_method_required": True}
    answer = requests.post(url, json={"search_lag_seconds": 30, "credit_note_lines_inline": None,
                                      "payment_method_required": False}, timeout=10)
    assert answer.json() == {"search_lag_seconds": 30, "idempotency_ttl_seconds": 86400,
                             "credit_note_lines_inline": None, "payment_method_required": False}
    requests.post(f"{running_stripe.base_url}/__emulator/reset", timeout=10).raise_for_status()
    assert emulator.realism.search_lag_seconds == 30
    assert requests.post(url, json={"lag": 1}, timeout=10).status_code == 400


def _note_with_lines(raw_client: stripe.StripeClient, count: int) -> stripe.CreditNote:
    customer = raw_client.v1.customers.create(params={"name": "Many Lines"}).id
    invoice = raw_client.v1.invoices.create(params={"customer": customer, "collection_method": "send_invoice",
                                                    "days_until_due": 30, "currency": "usd"})
    for n in range(count):
        raw_client.v1.invoice_items.create(params={"customer": customer, "invoice": str(invoice.id),
                                                   "amount": 1000 + n, "currency": "usd",
                                                   "description": f"Seat {n}"})
    raw_client.v1.invoices.finalize_invoice(str(invoice.id))
    lines = raw_client.v1.invoices.line_items.list(str(invoice.id), params={"limit": 100}).data
    return raw_client.v1.credit_notes.create(params={"invoice": str(invoice.id), "lines": [
        {"type": "invoice_line_item", "invoice_line_item": str(line.id), "amount": 100 + n}
        for n, line in enumerate(lines)]})


def test_a_credit_note_with_25_lines_embeds_10_and_billhub_maps_all_25(
        emulator: StripeEmulator, realism: Realism, connector: StripeConnector,
        raw_client: stripe.StripeClient) -> None:
    assert realism.credit_note_lines_inline == 10  # Stripe's paging is the default
    note = _note_with_lines(raw_client, 25)
    assert (len(note.lines.data), note.lines.has_more, note.lines.url) == (
        10, True, f"/v1/credit_notes/{note.id}/lines")
    records, _ = drain(connector.fetch_all("credit_note"))
    (record,) = records
    mapped = connector.to_canonical(record, Refs())
    assert isinstance(mapped, CreditNote)
    assert len(mapped.lines) == 25
    assert sum(line.amount.minor for line in mapped.lines) == sum(100 + n for n in range(25)) == note.total
    assert emulator.stats.calls["GET /v1/credit_notes/{id}/lines"] == 1  # the 15 after the first 10
    realism.credit_note_lines_inline = None  # the switch off: every line embedded
    whole = raw_client.v1.credit_notes.retrieve(str(note.id))
    assert (len(whole.lines.data), whole.lines.has_more) == (25, False)


# ---------------------------------------------------------------------------- exactly-once


def _lost_create(running_stripe: RunningEmulator, emulator: StripeEmulator, item: Outbound) -> StripeConnector:
    """A connector with one attempt per call, whose create of ``item`` Stripe applied but whose
    answer was lost (a 500 after the commit): the outcome is unknown to it."""
    conn = build(make_config(running_stripe.base_url, max_attempts=1), None, sleep=Waits(emulator),
                 clock=emulator.clock.now)
    emulator.set_faults(apply_then_fail=1, path_prefix="/v1/customers")
    (first,) = conn.upsert("customer", [item])
    assert isinstance(first.error, RetryableError) and first.external_id is None
    emulator.set_faults()
    return conn


def _marked(emulator: StripeEmulator, hub_id: str) -> list[str]:
    return [c["id"] for c in emulator.live("customer") if c["metadata"].get("hub_id") == hub_id]


def test_a_write_of_unknown_outcome_is_found_while_search_lags_and_nothing_is_made_twice(
        running_stripe: RunningEmulator, emulator: StripeEmulator, realism: Realism) -> None:
    realism.search_lag_seconds = LAG
    item = Outbound("customer", "hub-lagged", {"name": "Lagged Ltd", "email": "ap@lagged.example"},
                    idempotency_key="op-hub-lagged")
    conn = _lost_create(running_stripe, emulator, item)
    try:
        (made,) = _marked(emulator, "hub-lagged")
        emulator.clock.advance(5)  # the retry comes a little later, well inside the lag
        # the engine's retry: the same write, its outcome unknown; even under another key (a
        # repair's), so only the lookup can tell that the customer is there
        retry = dataclasses.replace(item, attempt=2, idempotency_key="op-hub-lagged-repair")
        (second,) = conn.upsert("customer", [retry])
        assert second.ok and not second.created and second.external_id == made
        assert _marked(emulator, "hub-lagged") == [made]
        assert emulator.stats.calls["GET /v1/customers/search"] == 1  # asked, and found nothing
        listed = [r for r in emulator.stats.requests if r["path"] == "/v1/customers" and r["method"] == "GET"]
        assert len(listed) == 1 and "email=ap@lagged.example" in listed[0]["query"]
    finally:
        conn.close()


def test_past_the_recent_window_the_retried_create_replays_its_idempotency_key(
        running_stripe: RunningEmulator, emulator: StripeEmulator, realism: Realism) -> None:
    # an outage: search hours behind; the retry comes after the lookup's window of recent objects
    realism.search_lag_seconds = 6 * 3600
    item = Outbound("customer", "hub-outage", {"name": "Outage Ltd"}, idempotency_key="op-hub-outage")
    conn = _lost_create(running_stripe, emulator, item)
    try:
        (made,) = _marked(emulator, "hub-outage")
        emulator.clock.advance(RECENT_SECONDS + 60)
        (second,) = conn.upsert("customer", [dataclasses.replace(item, attempt=2)])
        assert second.ok and second.external_id == made  # Stripe's stored answer, within its 24 h
        assert _marked(emulator, "hub-outage") == [made]
        assert emulator.stats.calls["POST /v1/customers"] == 2
    finally:
        conn.close()
