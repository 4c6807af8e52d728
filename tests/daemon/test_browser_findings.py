"""The findings list in a real browser (Playwright driving Debian's Chromium, issue 21, item 2): an
operator filters by customer, ticks every row of the page with one box (console.js, no inline
script), acknowledges them with a comment, and reads how many were acknowledged. The screenshot
is kept in $BILLHUB_ARTEFACTS (default: the test's tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from state.audit import AuditFilter
from tests.daemon.browser import artefacts, chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env
from tests.daemon.test_console_findings import seed

pytestmark = pytest.mark.browser


async def test_a_filtered_bulk_acknowledge(env: Env, client: TestClient[Any, Any], chromium: str,  # noqa: F811
                                           tmp_path: Path) -> None:
    ids = seed(env)
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        await page.goto(f"{base}/findings")
        await page.fill("#f-q", "acme")
        await page.select_option("#f-status", "open")
        await page.click("#filter")
        await page.wait_for_selector("#total:text('10')")
        assert "q=acme" in page.url and "status=open" in page.url
        customers = await page.locator("#findings td.customer").all_text_contents()
        assert customers == ["Acme Ltd"] * 10
        assert set(await page.locator("#findings td.amount").all_text_contents()) == {"99.00 USD"}
        await page.check("#select-all")  # console.js ticks every row of the page
        assert await page.locator("#findings input.pick:checked").count() == 10
        await page.fill("#bulk-comment", "credit note agreed with Acme")
        await page.screenshot(path=str(artefacts(tmp_path) / "findings-filtered.png"), full_page=True)
        await page.click("#bulk-ack")
        await page.wait_for_selector("#flash")
        assert await page.text_content("#flash") == "10 findings acknowledged"
        assert "q=acme" in page.url  # back on the same filtered list
        await page.screenshot(path=str(artefacts(tmp_path) / "findings-bulk-ack.png"), full_page=True)
        await page.goto(f"{base}/")
        assert await page.text_content("#findings-acknowledged") == "10"
        assert await page.text_content("#findings-open") == str(len(ids["mismatch"]) + len(ids["orphan"]) - 10)
        await page.goto(f"{base}/findings/{ids['mismatch'][12]}")  # one finding: who, what, each system
        assert await page.text_content("#about-customer") == "Globex"
        assert await page.text_content('#values tr[data-field="total"] td[data-system="quickbooks"]') == "199.00 USD"
        await page.screenshot(path=str(artefacts(tmp_path) / "finding-page.png"), full_page=True)
    for shot in ("findings-filtered.png", "findings-bulk-ack.png", "finding-page.png"):
        assert (artefacts(tmp_path) / shot).stat().st_size > 0
    with env.store.transaction() as tx:
        assert {tx.get_finding(i).status for i in ids["acme"]} == {"acknowledged"}
        assert {tx.get_finding(i).status for i in ids["mismatch"][10:]} == {"open"}
        assert tx.count_audit(AuditFilter(action="finding.ack")) == 10
