"""The console's charts in a real browser (issue 21, item 2; Playwright driving Debian's Chromium):
after a seeded Stripe sync, /charts draws revenue and receivables per currency, findings, the
outbox and sync lag as inline SVG the page shows (the CSP allows no inline script or style), the
period can be switched to weeks, and the overview carries its two small charts.

Screenshots are kept as test artefacts in $BILLHUB_ARTEFACTS (default: the test's tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.daemon.browser import chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env, daemon


def artefacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: $BILLHUB_ARTEFACTS (CI uploads it), else the test's tmp_path."""
    where = Path(os.environ.get("BILLHUB_ARTEFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def seeded_sync(env: Env, client: TestClient[Any, Any]) -> None:
    """Two USD invoices (25.00 paid, 12.50 open) and an open 9.00 EUR one, read from Stripe."""
    env.stripe_emulator.seed_objects({
        "customers": [{"ref": "acme", "name": "Acme Ltd", "email": "ap@acme.test"},
                      {"ref": "bern", "name": "Bern AG", "email": "ap@bern.test"}],
        "products": [{"ref": "widget", "name": "Widget"}],
        "prices": [{"ref": "usd", "product": "@widget", "currency": "usd", "unit_amount": 1250},
                   {"ref": "eur", "product": "@widget", "currency": "eur", "unit_amount": 900}],
        "invoices": [{"customer": "@acme", "currency": "usd", "status": "paid", "items": [{"price": "@usd", "quantity": 2}]},
                     {"customer": "@acme", "currency": "usd", "status": "open", "items": [{"price": "@usd"}]},
                     {"customer": "@bern", "currency": "eur", "status": "open", "items": [{"price": "@eur"}]}]})
    jobs = daemon(client).jobs
    for spec in jobs.specs():
        if spec.id.startswith("sync:stripe:"):
            outcome = await jobs.run_now(spec.id)
            assert outcome["outcome"] == "ok", outcome
    await jobs.run_now("outbox")


async def test_an_empty_store_charts_zeros_and_a_bad_period_is_a_clear_400(
        env: Env, client: TestClient[Any, Any]) -> None:
    from tests.daemon.conftest import ADMIN_TOKEN
    login = await client.get("/login")
    form = await login.text()
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    await client.post("/login", data={"csrf": csrf, "token": ADMIN_TOKEN}, allow_redirects=False)
    empty = await client.get("/charts?period=day&periods=7")
    page = await empty.text()
    assert empty.status == 200
    assert 'id="no-money"' in page and 'id="chart-findings-opened"' in page and 'id="chart-outbox-depth"' in page
    assert page.count('data-period="2026-11-01"') >= 4  # the last of 7 days, in each day chart
    response = await client.get("/charts?period=year")
    assert response.status == 400
    assert await response.text() == "unknown period 'year': use one of day, week, month"


@pytest.mark.browser
async def test_the_charts_page_after_a_seeded_sync(env: Env, client: TestClient[Any, Any], chromium: str,  # noqa: F811
                                                   tmp_path: Path) -> None:
    await seeded_sync(env, client)
    env.clock.advance(hours=3)  # the console looks three hours after the sync
    kept = artefacts(tmp_path)
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        # the overview's two small charts
        await page.wait_for_selector("#overview-charts #chart-findings-opened svg", state="visible")
        assert await page.is_visible("#overview-charts #chart-outbox-depth svg")
        await page.screenshot(path=str(kept / "overview-charts.png"), full_page=True)

        await page.click('nav a[href="/charts"]')
        await page.wait_for_selector("#chart-revenue-USD svg", state="visible")
        usd = '#chart-revenue-USD g[data-series="invoiced"] rect[data-period="2026-11"]'
        assert await page.get_attribute(usd, "data-value") == "3750"  # 25.00 + 12.50, issued in November
        assert await page.text_content(f"{usd} title") == "2026-11 · invoiced: 37.50 USD"
        assert int(await page.get_attribute(usd, "height") or 0) > 0
        owed = '#chart-receivables-USD g[data-series="open balance"] circle[data-period="2026-11"]'
        assert await page.get_attribute(owed, "data-value") == "1250"  # the paid one is settled
        eur = '#chart-revenue-EUR g[data-series="invoiced"] rect[data-period="2026-11"]'
        assert await page.text_content(f"{eur} title") == "2026-11 · invoiced: 9.00 EUR"
        for chart in ("findings-opened", "findings-open", "outbox-depth", "sync-lag", "stream-lag",
                      "receivables-USD", "revenue-EUR", "receivables-EUR"):
            assert await page.is_visible(f"#chart-{chart} svg"), chart
        assert await page.text_content("#chart-stream-lag figcaption") == "Sync lag now, per stream"
        assert await page.locator('#chart-stream-lag rect[data-period^="stripe:"]').count() >= 4
        assert await page.text_content('#chart-stream-lag rect[data-period="stripe:invoice"] title') == \
            "stripe:invoice · lag: 3 h"
        await page.screenshot(path=str(kept / "charts-month.png"), full_page=True)

        await page.select_option("#period", "week")
        await page.fill("#periods", "4")
        await page.click("#chart-show")
        await page.wait_for_selector('#chart-revenue-USD rect[data-period="2026-W44"]')
        labels = await page.locator("#chart-revenue-USD text.period").all_text_contents()
        assert labels == ["2026-W41", "2026-W42", "2026-W43", "2026-W44"]
        await page.screenshot(path=str(kept / "charts-week.png"), full_page=True)
    for name in ("overview-charts.png", "charts-month.png", "charts-week.png"):
        assert (kept / name).stat().st_size > 0
