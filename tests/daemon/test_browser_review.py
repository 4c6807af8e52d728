"""The console's Approve for first_contact = "review" (issue 20, item 5), in a real browser
(Playwright driving Debian's Chromium): the overview lists what a connection in review would
write, planned and not sent; the operator approves; the connection is approved as by
``hub review approve`` and its held writes go with the next pass."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.emulation import RunningEmulator
from connectors.quickbooks import connector as qbo
from connectors.quickbooks.emulator import QuickBooksEmulator
from connectors.retry import RetryPolicy
from state.store import StateStore
from sync.review import approved
from sync.runtime import Hub
from sync.web.app import create_app
from tests.conftest import FrozenClock, make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.daemon.browser import chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import build_config


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    with RunningEmulator(QuickBooksEmulator()) as started:
        yield started


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return make_store(f"sqlite:///{tmp_path}/hub.db", FrozenClock())


@pytest.fixture
def hub(running: RunningEmulator, store: StateStore) -> Iterator[Hub]:
    conn = qbo_config(running.base_url, first_contact="review")
    connector = qbo.build(conn, store, policy=RetryPolicy(sleep=lambda _s: None), sleep=lambda _s: None,
                          now=running.emulator.clock.now)
    made = Hub.from_config(build_config(store.url, {"quickbooks": conn}), store=store,
                           connectors={"quickbooks": connector})
    yield made
    made.close()


@pytest.fixture
async def client(hub: Hub, store: StateStore) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(hub.config, hub, start_scheduler=False, clock=store.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_approve_needs_a_login_and_a_connection_in_review(client: TestClient[Any, Any], store: StateStore) -> None:
    anonymous = await client.post("/review/quickbooks/approve", data={"csrf": "x"}, allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/login"
    with store.transaction() as tx:
        assert approved(tx) == set()


@pytest.mark.browser
async def test_the_operator_approves_the_held_writes_from_the_overview(
        hub: Hub, store: StateStore, client: TestClient[Any, Any], chromium: str, tmp_path: Path) -> None:  # noqa: F811
    assert hub.engine.review_connections == {"quickbooks"}
    with store.transaction() as tx:  # what a first pass planned for QuickBooks: two new customers
        for n in (1, 2):
            assert tx.enqueue(f"cust-{n}", "customer", "quickbooks", "upsert", f"review-key-{n}", "digest")
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base, landing="#review") as page:
        row = 'tr[data-review="quickbooks"]'
        assert await page.text_content(f"{row} td:nth-child(2)") == "waiting for approval"
        assert await page.text_content(f"{row} td:nth-child(3)") == "2 customer create"
        await page.screenshot(path=str(tmp_path / "review.png"))
        await page.click("#approve-quickbooks")
        await page.wait_for_selector(f"{row} td:nth-child(2):text('approved')")
        assert await page.query_selector("#approve-quickbooks") is None
    assert (tmp_path / "review.png").stat().st_size > 0
    with store.transaction() as tx:
        assert approved(tx) == {"quickbooks"}
