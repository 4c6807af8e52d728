"""billhub reads QuickBooks customers and invoices in fewer API calls than tap-quickbooks 2.5.0
(issue 22 item 2, the peer table's QuickBooks row), counted by the emulator on the same company.

A company of 1,000 customers (exactly a page: the boundary where a reader that pages until a
short page asks an empty one) and 2,100 invoices is seeded straight into the emulator. The tap
discovers and syncs those two streams (its batch queries carry both streams' pages, one query
per stream per request, until every query answers empty); billhub's connector learns the
company's facts and reads both streams in full (``fetch_all``, as ``hub resync`` and
bench/peers.py read). Both read every record exactly once; billhub's calls are fewer. Token
requests are not counted (each side refreshes once). Call counts do not depend on the machine's
load, so the comparison is exact where the bench's timings are not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from connectors.emulation import RunningEmulator
from connectors.quickbooks.connector import build
from connectors.quickbooks.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    QuickBooksEmulator,
)
from connectors.retry import RetryPolicy
from tests.conftest import make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.peers.singer_taps import SingerTap, select
from tests.peers.venvs import PeerVenv

ENTRY = Path(__file__).with_name("run_tap_quickbooks.py")
CUSTOMERS, INVOICES = 1000, 2100


@pytest.fixture(scope="module")
def company() -> Iterator[RunningEmulator]:
    emulator = QuickBooksEmulator()
    with RunningEmulator(emulator) as running:
        customers = running.call(emulator.seed({"Customer": [{"DisplayName": f"Customer {i:05d}"}
                                                             for i in range(CUSTOMERS)]}))["Customer"]
        line = {"DetailType": "SalesItemLineDetail", "Amount": "10.00", "SalesItemLineDetail": {}}
        running.call(emulator.seed({"Invoice": [{"CustomerRef": {"value": customers[i % CUSTOMERS]}, "Line": [line]}
                                                for i in range(INVOICES)]}))
        yield running


def _api_calls(emulator: QuickBooksEmulator) -> int:
    return sum(n for key, n in emulator.stats.calls.items() if "/v3/company/" in key)


def test_billhub_reads_customers_and_invoices_in_fewer_calls_than_tap_quickbooks(
        peers: Callable[[str], PeerVenv], company: RunningEmulator, tmp_path: Path) -> None:
    emulator = company.emulator
    assert isinstance(emulator, QuickBooksEmulator)
    tokens = [f"RT-calls-{uuid.uuid4().hex}" for _ in range(2)]
    requests.post(f"{company.base_url}/__emulator/seed", json={"refresh_tokens": tokens},
                  timeout=10).raise_for_status()
    start = (emulator.clock.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    configs = [{"start_date": start, "user_agent": "billhub-peer-calls", "realm_id": DEFAULT_REALM,
                "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": t}
               for t in tokens]
    tap = SingerTap(peers("tap-quickbooks"), ENTRY, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                      "BILLHUB_QBO_EMULATOR": company.base_url}, tmp_path)
    before = _api_calls(emulator)
    run = tap.sync(configs[1], select(tap.discover(configs[0]), ["customers", "invoices"]))
    theirs = _api_calls(emulator) - before
    tap_ids = {s: sorted(str(r["Id"]) for r in run.records.get(s, [])) for s in ("customers", "invoices")}

    store = make_store(f"sqlite:///{tmp_path}/hub.db")
    connector = build(qbo_config(company.base_url), store, policy=RetryPolicy(sleep=lambda _s: None),
                      sleep=lambda _s: None)
    try:
        before = _api_calls(emulator)
        connector.learn()  # as bench/peers.py and Ingest.pull do before a stream is read
        ours = {e: sorted(r.external_id for page in connector.fetch_all(e) for r in page.records)
                for e in ("customer", "invoice")}
        calls = _api_calls(emulator) - before
    finally:
        connector.close()
        store.dispose()

    table = emulator.realm(DEFAULT_REALM).tables
    assert ours["customer"] == tap_ids["customers"] == sorted(table["Customer"])
    assert ours["invoice"] == tap_ids["invoices"] == sorted(table["Invoice"])
    assert len(ours["customer"]) == CUSTOMERS and len(ours["invoice"]) == INVOICES
    # billhub: the facts (1 batch), customers (pages 1-2 + count: 1), invoices (pages 1-2 + count,
    # then page 3 alone: 2) = 4. The tap: its company info check, then a batch per page of the
    # longer stream plus the empty one that ends it = 5 and more.
    print(f"API calls for {CUSTOMERS:,} customers + {INVOICES:,} invoices: billhub {calls}, tap-quickbooks {theirs}")
    assert calls == 4
    assert calls < theirs
