"""A restricted key without Events read (issue 24): Stripe answers ``GET /v1/events`` 403, and
billhub's streams still read everything (whole lists, with a warning) instead of nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import stripe

from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector, build
from connectors.stripe.emulator import StripeEmulator
from tests.connectors.stripe.conftest import Waits, make_config
from tests.connectors.stripe.helpers import drain

READER = "rk_test_billhub_no_events_51Xy"


@pytest.fixture
def restricted(emulator: StripeEmulator) -> Iterator[StripeEmulator]:
    emulator.restricted_keys = {READER: {"rak_event_read"}}
    yield emulator
    emulator.restricted_keys = {}


@pytest.fixture
def reader(running_stripe: RunningEmulator, restricted: StripeEmulator, waits: Waits) -> Iterator[StripeConnector]:
    conn = build(make_config(running_stripe.base_url, api_key=READER), None, sleep=waits,
                 clock=restricted.clock.now)
    yield conn
    conn.close()


def test_the_emulator_answers_a_key_without_events_read_403_as_stripe_does(
        running_stripe: RunningEmulator, restricted: StripeEmulator) -> None:
    client = stripe.StripeClient(READER, base_addresses={"api": running_stripe.base_url}, max_network_retries=0)
    restricted.seed_objects({"customers": [{"name": "Readable", "email": "r@example.com"}]})
    assert [c.name for c in client.v1.customers.list().data] == ["Readable"]
    with pytest.raises(stripe.PermissionError) as caught:
        client.v1.events.list()
    assert caught.value.http_status == 403
    assert caught.value.error is not None and caught.value.error.type == "invalid_request_error"
    assert "rk_test_" in str(caught.value.user_message) and READER not in str(caught.value.user_message)
    assert "Having the 'rak_event_read' permission would allow this request to continue." in str(
        caught.value.user_message)


def test_streams_read_whole_lists_when_the_key_may_not_read_events(
        restricted: StripeEmulator, reader: StripeConnector, caplog: pytest.LogCaptureFixture) -> None:
    seeded = restricted.seed_objects({"customers": [{"ref": f"c{i}", "name": f"C{i}"} for i in range(3)]})
    with caplog.at_level(logging.WARNING, logger="connectors.stripe.streams"):
        records, cursor = drain(reader.fetch_changes("customer", None))
    assert sorted(r.external_id for r in records) == sorted(seeded["created"]["customers"])
    assert cursor is not None and json.loads(cursor)["t"] == restricted.clock.timestamp()
    assert any("may not read events" in m and "rak_event_read" in m for m in caplog.messages)
    restricted.clock.advance(600)
    reader.api.call(lambda c: c.v1.customers.update(seeded["refs"]["c1"], params={"name": "Renamed"}))
    reader.api.call(lambda c: c.v1.customers.create(params={"name": "Newcomer"}))
    again, _ = drain(reader.fetch_changes("customer", cursor))  # every pass reads everything
    assert sorted(r.data["name"] for r in again) == ["C0", "C2", "Newcomer", "Renamed"]
