"""Bulk keep in a real browser (issue 21, item 2; Playwright driving Debian's Chromium): the
operator ticks two duplicates and a mismatch in the findings list, presses Keep…, sees each
duplicate's candidates with no choice made (the browser will not preview until each has one),
chooses, previews each plan, runs, and reads what was kept in the flash message. Screenshots of
the choice page and the preview are kept as test artefacts ($BILLHUB_ARTEFACTS, else tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from state.audit import AuditFilter
from tests.daemon.browser import artefacts, chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env
from tests.daemon.test_console_keep import plant_duplicates

pytestmark = pytest.mark.browser


async def test_keep_two_duplicates_chosen_one_by_one(env: Env, client: TestClient[Any, Any], chromium: str,  # noqa: F811
                                                     tmp_path: Path) -> None:
    planted = await plant_duplicates(env, client)
    (dup_a, a), (dup_b, b) = planted["duplicates"].items()
    kept = artefacts(tmp_path)
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        await page.goto(f"{base}/findings")
        for finding in (dup_a, dup_b, planted["mismatch"]):
            await page.check(f'input.pick[value="{finding}"]')
        await page.click("#bulk-keep")
        await page.wait_for_selector("#keep-choose")
        assert await page.locator("#keep-choose input[type=radio]:checked").count() == 0
        assert "a mismatch has no record to choose" in await page.inner_text("#keep-left-out")
        names = await page.inner_text(f'section[data-finding="{dup_b}"] table')
        assert all(name in names for name in b["names"])
        await page.screenshot(path=str(kept / "keep-choose.png"), full_page=True)

        await page.check(f"#keep-{dup_a[:8]}-{a['linked']}")
        # the second finding has no choice yet: the browser holds the form (the server would say 400)
        assert await page.evaluate("document.getElementById('keep-choose').checkValidity()") is False
        await page.click("#keep-preview")
        assert page.url == f"{base}/findings/bulk/keep/choose"
        await page.check(f"#keep-{dup_b[:8]}-{b['other']}")
        await page.fill("#keep-reason", "same customer typed twice")
        await page.click("#keep-preview")
        await page.wait_for_selector("#keep-run")
        assert "a mismatch has no record to choose" in await page.inner_text("#keep-left-out")
        plan_b = await page.inner_text(f'div[data-plan="{dup_b}"]')
        assert f"link hub customer {b['canonical']} to quickbooks {b['other']}" in plan_b
        await page.screenshot(path=str(kept / "keep-preview.png"), full_page=True)
        await page.check(f"#keep-{dup_a[:8]}-{a['other']}")  # a changed choice: Run waits for a new preview
        assert await page.is_disabled("#keep-run")
        await page.check(f"#keep-{dup_a[:8]}-{a['linked']}")
        await page.click("#keep-preview")
        await page.wait_for_selector("#keep-run:enabled")

        await page.click("#keep-run")  # its confirm dialog is accepted
        await page.wait_for_selector("#flash")
        said = await page.text_content("#flash") or ""
        assert said.startswith("2 duplicates settled: kept ") and f"{b['names'][0]} (quickbooks {b['other']})" in said
        assert page.url == f"{base}/findings"
    with env.store.transaction() as tx:
        assert {tx.get_finding(f).status for f in (dup_a, dup_b)} == {"resolved"}
        entries = tx.list_audit(AuditFilter(action="resync.finding"))
    assert sorted(e.target_id for e in entries) == sorted([dup_a, dup_b])
    assert {e.reason for e in entries} == {"same customer typed twice"}
    assert (kept / "keep-choose.png").stat().st_size > 0 and (kept / "keep-preview.png").stat().st_size > 0
