"""The console's daily pages in a real browser (issue 21, item 2; Playwright driving Debian's
Chromium): from the Connections page an operator runs a connection's read now and reads its
outcome in the flash message; then searches a customer by email from the header, opens the
record and reads its history across systems in words. Screenshots are kept as test artefacts
($BILLHUB_ARTEFACTS, else the test's tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.daemon.browser import artefacts, chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env

pytestmark = pytest.mark.browser


async def test_run_now_from_connections_then_search_to_the_record_history(
        env: Env, client: TestClient[Any, Any], chromium: str, tmp_path: Path) -> None:  # noqa: F811
    env.stripe_emulator.seed_objects({"customers": [{"name": "Browser Co", "email": "ap@browser.test"}]})
    kept = artefacts(tmp_path)
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        await page.goto(f"{base}/connections")
        assert await page.get_attribute('tr[data-connection="stripe"]', "data-health") != "needs_reauth"
        await page.click("#run-sync-stripe-customer")
        await page.wait_for_selector("#flash")
        assert await page.text_content("#flash") == "Ran sync:stripe:customer: ok — read 1, wrote 0"
        assert page.url == f"{base}/connections"
        await page.screenshot(path=str(kept / "connections-run-now.png"), full_page=True)
        await page.click("nav a:text('Runs and jobs')")
        await page.click("#run-outbox")  # the writes to QuickBooks and Xero
        await page.wait_for_selector("#flash")
        assert (await page.text_content("#flash") or "").startswith("Ran outbox: ok — wrote 2")
        assert await page.text_content('tr[data-job="outbox"] td:nth-child(6)') == "ok — wrote 2, held 0"

        await page.fill("#search-q", "AP@browser.test")
        await page.click("#search-go")
        await page.wait_for_selector("#results")
        await page.click("#results a:text('Browser Co')")
        await page.wait_for_selector("#timeline")
        history = await page.inner_text("#timeline")
        assert "Stripe added the customer" in history
        assert "written to QuickBooks (customer " in history and "written to Xero (customer " in history
        assert "{'" not in await page.inner_text("main")  # no Python reprs anywhere on the page
        await page.screenshot(path=str(kept / "record-history.png"), full_page=True)
    assert (kept / "connections-run-now.png").stat().st_size > 0 and (kept / "record-history.png").stat().st_size > 0
