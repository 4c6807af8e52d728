"""The console in a real browser (Playwright driving Debian's Chromium): log in, open a duplicate
finding, preview and run a resync keeping one record, see it resolved; acknowledge another;
the overview's numbers match ``hub status --json``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sync.queries import gather_status
from tests.daemon.browser import chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env, plant_findings

pytestmark = pytest.mark.browser


async def test_operator_resolves_a_duplicate_and_acknowledges_another(
        env: Env, client: TestClient[Any, Any], chromium: str) -> None:  # noqa: F811
    planted = await plant_findings(env, client, "Browser Co")
    dup, other = planted.duplicate, planted.orphan
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        status = gather_status(env.store, env.config)
        assert await page.text_content("#dead-letters") == str(status["outbox"].get("dead", 0))
        for kind, n in status["open_findings"].items():  # nothing acknowledged yet: all open
            assert await page.text_content(f'#open-findings li[data-kind="{kind}"] b.open') == str(n)
        for entity, n in status["entities"].items():
            assert await page.text_content(f'#entities span[data-entity="{entity}"] b') == str(n)

        await page.goto(f"{base}/findings?kind=duplicate&status=open")
        await page.click(f'a[href="/findings/{dup}"]')
        await page.click(f"#keep-{planted.quickbooks_id}")  # each record of the duplicate has its Keep
        await page.wait_for_selector("#plan")
        assert "link hub customer" in (await page.text_content("#plan") or "")
        assert await page.text_content("#finding-status") == "open"  # a preview changes nothing
        await page.click("#resync")
        await page.wait_for_selector("#finding-status:text('resolved')")

        await page.goto(f"{base}/findings/{other}")
        await page.click("#ack")
        await page.wait_for_selector("#finding-status:text('acknowledged')")
    with env.store.transaction() as tx:
        assert tx.get_finding(dup).status == "resolved"
        assert tx.get_finding(other).status == "acknowledged"
        kept = tx.link_for(planted.customer_id, "quickbooks", "customer")
        assert kept is not None and kept.external_id == planted.quickbooks_id
