"""The console's Drop of a dead letter (issue 21, item 4), in a real browser (Playwright driving
Debian's Chromium): the operator must say why; the drop is in the audit log with their name and
reason, and the next diff keeps the record in sight — missing in that ledger, acknowledged,
naming who dropped it and why — instead of the gap vanishing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from state.audit import AuditFilter
from sync.audit import list_actions
from tests.daemon.browser import artefacts, chromium, logged_in  # noqa: F401  (chromium: the fixture)
from tests.daemon.conftest import Env, daemon

pytestmark = pytest.mark.browser

REASON = "entered in Xero by hand with the customer's purchase order"


async def test_an_operator_drops_a_dead_letter_with_a_reason_and_the_diff_still_shows_the_gap(
        env: Env, client: TestClient[Any, Any], chromium: str, tmp_path: Path) -> None:  # noqa: F811
    env.stripe_emulator.seed_objects({"customers": [{"name": "Dropped Co", "email": "ap@dropped.test"}]})
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")  # read in: its writes to the ledgers are queued
    with env.store.transaction() as tx:
        customer = next(tx.entities_of("customer"))
        (item,) = [i for i in tx.list_outbox("pending") if i.target == "xero"]
        tx.dead_outbox(item.id, "400 ValidationException: a contact name is already taken")
    await jobs.run_now("outbox")  # QuickBooks gets it; Xero's is dead
    base = str(client.make_url("/")).rstrip("/")
    async with logged_in(chromium, base) as page:
        await page.goto(f"{base}/outbox")
        row = page.locator(f'#dead tr[data-id="{item.id}"]')
        await row.locator("button", has_text="Drop").click()  # no reason: the browser refuses the form
        with env.store.transaction() as tx:
            assert tx.outbox_status(item.id) == "dead"
        await row.locator('input[name="reason"]').fill(REASON)
        await page.screenshot(path=str(artefacts(tmp_path) / "outbox-drop.png"), full_page=True)
        await row.locator("button", has_text="Drop").click()
        await page.wait_for_selector(f'#dead tr[data-id="{item.id}"]', state="detached")
    with env.store.transaction() as tx:
        assert tx.outbox_status(item.id) == "dropped"
        (entry,) = list_actions(tx, AuditFilter(action="outbox.drop"))
    assert (entry.actor, entry.target_id, entry.reason, entry.canonical_id) == (
        "console:admin", str(item.id), REASON, customer.id)

    result = env.hub.differ.run(["customer"])
    (gap,) = [f for f in result.findings if f["canonical_id"] == customer.id and f["system"] == "xero"]
    assert (gap["kind"], gap["status"]) == ("missing", "acknowledged")
    assert "console:admin" in gap["detail"] and REASON in gap["detail"]
