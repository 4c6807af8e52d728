"""The audit trail in a real browser (Playwright driving Debian's Chromium): an operator logs in
with their own name and password, acknowledges a finding saying why, and finds the entry — their
name, the status change, the comment — on the audit page; screenshots are kept as artefacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from sync.users import add_user
from tests.daemon.browser import artefacts, chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env, plant_findings

PASSWORD = "operator password 2026"


async def test_an_operator_acknowledges_with_a_comment_and_reads_it_in_the_audit_log(
        env: Env, client: TestClient[Any, Any], chromium: str, tmp_path: Path) -> None:  # noqa: F811
    planted = await plant_findings(env, client, "Browser Audit Co")
    add_user(env.store, "olga", "operator", "cli:admin", password=PASSWORD)
    kept = artefacts(tmp_path)
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base, user="olga", secret=PASSWORD) as page:
        await page.goto(f"{base}/findings/{planted.orphan}")
        await page.fill("#ack-comment", "a test contact made in Xero by the accountant")
        await page.click("#ack")
        await page.wait_for_selector("#finding-status:text('acknowledged')")
        await page.goto(f"{base}/audit?actor=olga")
        row = page.locator("#audit tbody tr[data-action='finding.ack']")
        assert await row.count() == 1
        text = await row.inner_text()
        assert "console:olga" in text and "status open → acknowledged" in text
        assert "a test contact made in Xero by the accountant" in text
        await page.screenshot(path=str(kept / "audit-after-ack.png"), full_page=True)
        csv_link = await page.get_attribute("#audit-csv", "href")
        assert csv_link == "/audit.csv?actor=olga"
    with env.store.transaction() as tx:
        (entry,) = [e for e in tx.list_audit() if e.action == "finding.ack"]
    assert entry.actor == "console:olga" and entry.target_id == planted.orphan
    assert (kept / "audit-after-ack.png").stat().st_size > 10_000
