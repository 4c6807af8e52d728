"""A first full read checkpoints per page (issue 23): stopped after page 2, the next read lists
page 3 on, never page 1 again, every record ends stored once, and a record changed while the
interrupted read ran is picked up by the read after. Real SDKs against the emulators; the stop
is the daemon's own (the engine's page-boundary hook raising, as SIGTERM makes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from connectors.base import Connector
from connectors.emulation import Emulator, RunningEmulator
from connectors.quickbooks.connector import build as build_qbo
from connectors.quickbooks.emulator import DEFAULT_REALM, QuickBooksEmulator
from connectors.retry import RetryPolicy
from connectors.stripe.connector import build as build_stripe
from connectors.stripe.emulator import StripeEmulator
from connectors.xero.connector import build as build_xero
from connectors.xero.emulator import XeroEmulator
from state.store import StateStore
from sync.engine import Engine, SyncSummary
from sync.flows import Flow, Ownership, Routing, routing_from_config
from tests.conftest import make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.connectors.stripe.conftest import API_KEY
from tests.connectors.stripe.conftest import make_config as stripe_config
from tests.connectors.xero.conftest import xero_config

PAGE = 5
RECORDS = 12  # pages of 5, 5 and 2


class Stop(Exception):
    """What the daemon's stop raises at a page boundary (the page in hand is committed)."""


def stop_after(pages: int) -> Any:
    seen: list[str] = []

    def hook(label: str, _n: int) -> None:
        seen.append(label)
        if len(seen) >= pages:
            raise Stop(f"stopped after {len(seen)} pages")
    return hook


def engine_for(store: StateStore, connector: Connector, *, source: bool = False) -> Engine:
    """An engine on one connection; ``source``: its customers are the hub's (a ledger is no
    source by default, so its reads would store nothing to count)."""
    routing = routing_from_config({}, {})
    if source:
        routing = Routing([Flow("test", "customer", (connector.system,), ())],
                          Ownership({"customer": {"*": connector.system}}))
    return Engine(store, {connector.name: connector}, routing)


def stored(store: StateStore, connection: str, field: str = "name") -> list[str]:
    """``field`` of each hub customer linked to ``connection``, sorted."""
    with store.transaction() as tx:
        linked = {link.canonical_id for link in tx.links_in(connection, "customer")}
        return sorted(str(e.data.get(field)) for e in tx.entities_of("customer") if e.id in linked)


def list_calls(emulator: Emulator, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"]) for r in emulator.stats.requests if r["method"] == "GET" and r["path"] == path]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = make_store(f"sqlite:///{tmp_path}/hub.db")
    yield s
    s.dispose()


def test_stripe_first_read_resumes_after_its_last_committed_page(store: StateStore) -> None:
    emulator = StripeEmulator(rate_limit=100_000)
    with RunningEmulator(emulator) as running:
        created = emulator.seed_objects({"customers": [{"name": f"Customer {i:02d}", "email": f"c{i}@example.com"}
                                                       for i in range(RECORDS)]})["created"]
        assert len(created["customers"]) == RECORDS
        connector = build_stripe(stripe_config(running.base_url, page_limit=PAGE), store,
                                 sleep=lambda _s: None, clock=emulator.clock.now)
        engine = engine_for(store, connector)
        engine.on_progress = stop_after(2)
        with pytest.raises(Stop):
            engine.pull("stripe", "customer", SyncSummary(), None)
        assert len(stored(store, "stripe")) == 2 * PAGE
        pages_read = list_calls(emulator, "/v1/customers")
        assert len(pages_read) == 2
        # While the read was stopped: a customer of page 1 changed (newest first: the last
        # seeded; the email, which Stripe owns), and one created.
        auth = {"Authorization": f"Bearer {API_KEY}"}
        requests.post(f"{running.base_url}/v1/customers/{created['customers'][-1]}", headers=auth,
                      data={"email": "changed@example.com"}, timeout=10).raise_for_status()
        requests.post(f"{running.base_url}/v1/customers", headers=auth,
                      data={"name": "Late", "email": "late@example.com"}, timeout=10).raise_for_status()

        engine.on_progress = None
        emulator.stats.requests.clear()
        engine.pull("stripe", "customer", SyncSummary(), None)
        resumed = list_calls(emulator, "/v1/customers")
        assert len(resumed) == 1, resumed  # page 3 only
        assert resumed[0]["starting_after"] == [created["customers"][RECORDS - 2 * PAGE]]
        assert len(stored(store, "stripe")) == RECORDS

        engine.pull("stripe", "customer", SyncSummary(), None)  # the change feed from before page 1
        assert stored(store, "stripe") == sorted([f"Customer {i:02d}" for i in range(RECORDS)] + ["Late"])
        emails = sorted([f"c{i}@example.com" for i in range(RECORDS - 1)] + ["changed@example.com", "late@example.com"])
        assert stored(store, "stripe", "email") == emails
        connector.close()


def test_quickbooks_first_read_resumes_after_its_last_committed_page(store: StateStore) -> None:
    emulator = QuickBooksEmulator()
    with RunningEmulator(emulator) as running:
        seeded = running.call(emulator.seed({"Customer": [
            {"DisplayName": f"Customer {i:02d}", "PrimaryEmailAddr": {"Address": f"c{i}@example.com"}}
            for i in range(RECORDS)]}))
        ids = seeded["Customer"]
        connector = build_qbo(qbo_config(running.base_url, page_size=PAGE), store,
                              policy=RetryPolicy(sleep=lambda _s: None), sleep=lambda _s: None,
                              now=emulator.clock.now)
        engine = engine_for(store, connector, source=True)
        engine.on_progress = stop_after(2)
        with pytest.raises(Stop):
            engine.pull("quickbooks", "customer", SyncSummary(), None)
        assert len(stored(store, "quickbooks")) == 2 * PAGE
        with store.transaction() as tx:
            checkpoint = json.loads(tx.get_cursor("quickbooks", "customer") or "{}")
        assert checkpoint["scan"]["next"] == 2 * PAGE + 1
        # While the read was stopped: a customer of page 1 renamed (ordered by Id: the first).
        requests.post(f"{running.base_url}/__emulator/edit", timeout=10, json={
            "realm": DEFAULT_REALM, "entity": "Customer", "id": ids[0],
            "set": {"DisplayName": "Renamed"}}).raise_for_status()

        engine.on_progress = None
        emulator.stats.requests.clear()
        engine.pull("quickbooks", "customer", SyncSummary(), None)
        # One query: page 3 (2 rows, the last); from page 1 it would have been three.
        queries = [r for r in emulator.stats.requests if r["path"] == f"/v3/company/{DEFAULT_REALM}/query"]
        assert len(queries) == 1, emulator.stats.requests
        assert len(stored(store, "quickbooks")) == RECORDS

        engine.pull("quickbooks", "customer", SyncSummary(), None)  # CDC from the first page's time
        expected = sorted([f"Customer {i:02d}" for i in range(1, RECORDS)] + ["Renamed"])
        assert stored(store, "quickbooks") == expected
        connector.close()


def test_xero_first_read_resumes_after_its_last_committed_page(store: StateStore) -> None:
    emulator = XeroEmulator()
    with RunningEmulator(emulator) as running:
        ids = []
        for i in range(RECORDS):  # a minute apart: If-Modified-Since has whole seconds
            emulator.clock.advance(60)
            ids += running.call(emulator.seed({"Contacts": [{"Name": f"Customer {i:02d}"}]}))["created"]["Contacts"]
        connector = build_xero(xero_config(running.base_url, page_size=PAGE, overlap_seconds=30), store,
                               sleep=lambda _s: None, now=emulator.clock.now,
                               monotonic=lambda: emulator.clock.now().timestamp())
        connector.client.limiter.sleep = lambda _s: None
        engine = engine_for(store, connector, source=True)
        engine.on_progress = stop_after(2)
        with pytest.raises(Stop):
            engine.pull("xero", "customer", SyncSummary(), None)
        assert len(stored(store, "xero")) == 2 * PAGE
        # While the read was stopped: a customer of page 1 renamed (oldest change first: the first).
        emulator.clock.advance(60)
        running.call(emulator.seed({"Contacts": [{"ContactID": ids[0], "Name": "Renamed"}]}))

        engine.on_progress = None
        emulator.stats.requests.clear()
        engine.pull("xero", "customer", SyncSummary(), None)
        pages = list_calls(emulator, "/api.xro/2.0/Contacts")
        assert len(pages) == 1, pages  # from the 10th change on: 3 records, one page; not page 1 again
        expected = sorted([f"Customer {i:02d}" for i in range(1, RECORDS)] + ["Renamed"])
        assert stored(store, "xero") == expected
        connector.close()
