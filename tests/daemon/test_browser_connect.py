"""The console's Reconnect in a real browser (Playwright driving Debian's Chromium, issue 20 item 1):
a QuickBooks connection whose grant was revoked needs re-authorisation; the operator clicks
Reconnect, approves on the emulator's consent page, and lands back with the connection ok and
its work resumed — the daemon's connector refreshes with the new tokens without a restart."""

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
from state.audit import AuditFilter
from state.store import StateStore
from sync.checks import check_connections
from sync.runtime import Hub
from sync.web.app import create_app
from tests.conftest import FrozenClock, make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.daemon.browser import chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import build_config, control


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    with RunningEmulator(QuickBooksEmulator()) as started:
        yield started


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/hub.db"


@pytest.fixture
def store(url: str) -> StateStore:
    return make_store(url, FrozenClock())


@pytest.fixture
def hub(running: RunningEmulator, store: StateStore, url: str) -> Iterator[Hub]:
    base = running.base_url
    conn = qbo_config(base, authorize_url=f"{base}/connect/oauth2", revoke_url=f"{base}/oauth2/v1/tokens/revoke")
    connector = qbo.build(conn, store, policy=RetryPolicy(sleep=lambda _s: None), sleep=lambda _s: None,
                          now=running.emulator.clock.now)
    made = Hub.from_config(build_config(url, {"quickbooks": conn}), store=store, connectors={"quickbooks": connector})
    yield made
    made.close()


@pytest.fixture
async def client(hub: Hub, store: StateStore) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(hub.config, hub, start_scheduler=False, clock=store.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_start_needs_a_login_and_a_callback_needs_its_state(client: TestClient[Any, Any],
                                                                    store: StateStore) -> None:
    start = await client.get("/oauth/start/quickbooks", allow_redirects=False)
    assert start.status == 303 and start.headers["Location"] == "/login"
    forged = await client.get("/oauth/callback/quickbooks", params={"code": "c", "state": "forged", "realmId": "1"})
    assert forged.status == 400 and "not started here" in await forged.text()
    with store.transaction() as tx:
        assert tx.load_credentials("quickbooks") is None
    assert (await client.get("/oauth/callback/nope", params={"state": "x"})).status == 404


@pytest.mark.browser
async def test_reconnect_a_revoked_quickbooks_from_the_console(
        running: RunningEmulator, store: StateStore, hub: Hub, client: TestClient[Any, Any],
        chromium: str, tmp_path: Path) -> None:  # noqa: F811
    await control(running, "/__emulator/oauth", {"revoke_refresh_tokens": True, "expire_access_tokens": True})
    (refused,) = check_connections(hub, ["quickbooks"])  # what hub check and every job would meet
    assert not refused["authorised"]
    with store.transaction() as tx:
        state = tx.connection_state("quickbooks")
    assert state is not None and state["status"] == "needs_reauth"

    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        assert await page.text_content('tr[data-connection="quickbooks"] .status-needs_reauth') == "needs_reauth"
        assert await page.text_content("#connect-quickbooks") == "Reconnect"
        await page.click("#connect-quickbooks")
        await page.wait_for_selector("#allow")  # the emulator's consent page (Intuit's appcenter)
        assert page.url.startswith(running.base_url + "/connect/oauth2?")
        await page.click("#allow")
        await page.wait_for_selector("#oauth-result")
        assert await page.text_content("#oauth-result") == "Connected quickbooks"
        await page.screenshot(path=str(tmp_path / "reconnected.png"))
        await page.click("#back")
        await page.wait_for_selector("#connections")
        assert await page.text_content('tr[data-connection="quickbooks"] td:nth-child(3)') == "ok"
    assert (tmp_path / "reconnected.png").stat().st_size > 0
    with store.transaction() as tx:
        state = tx.connection_state("quickbooks")
        creds = tx.load_credentials("quickbooks")
    assert state is not None and state["status"] == "ok" and state["reason"] == "connected"
    with store.transaction() as tx:  # the person who started it, though the callback had no session
        (connected,) = tx.list_audit(AuditFilter(action="connection.connect"))
    assert connected.actor == "console:admin" and connected.target_id == "quickbooks"
    emulator: Any = running.emulator
    assert creds is not None and running.on_loop(lambda: emulator.oauth.refresh_tokens[creds["refresh_token"]]) == "active"
    # the daemon's own connector (refused before) works again without a restart
    (checked,) = check_connections(hub, ["quickbooks"])
    assert checked["ok"] and checked["authorised"], checked
    assert emulator.oauth.counts["codes_redeemed"] == 1
