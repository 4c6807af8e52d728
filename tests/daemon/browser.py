"""The console in a real browser for the daemon tests: Debian's Chromium (never a downloaded
one) driven by Playwright, and a page already logged in with the admin token."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import ADMIN_TOKEN

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def artefacts(tmp_path: Path) -> Path:
    """Where browser tests keep their screenshots: $BILLHUB_ARTEFACTS (CI uploads it), else the
    test's tmp_path."""
    where = Path(os.environ.get("BILLHUB_ARTEFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing and CI=true: apt-get install chromium", pytrace=False)
        pytest.skip(f"{CHROMIUM} not installed")
    return CHROMIUM


@asynccontextmanager
async def logged_in(chromium: str, base: str, *, landing: str = "#connections", user: str = "",
                    secret: str = ADMIN_TOKEN) -> AsyncIterator[Any]:
    """A page of the console at ``base``, logged in (confirm dialogs accepted) — as the admin
    token's bootstrap admin, or as ``user`` with ``secret`` (their password or token) — on the
    overview once ``landing`` shows; the browser closes after."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            page = await browser.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            await page.goto(f"{base}/login")
            if user:
                await page.fill("#user", user)
            await page.fill("#token", secret)
            await page.click("#login")
            await page.wait_for_selector(landing)
            yield page
        finally:
            await browser.close()
