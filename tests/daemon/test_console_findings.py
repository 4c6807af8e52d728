"""The console's findings list (issue 21, items 1-2): filters, 50 a page with counts and links
that keep the filters, rows naming customer, document and amount, bulk acknowledge with a comment
(a flash with the count, one audit entry each), bulk resync previewed first with duplicates left
to their own page, and the overview counting acknowledged findings apart from open ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient

from mapping.model import Customer, Invoice, InvoiceLine
from mapping.money import Money
from state.audit import AuditFilter
from tests.daemon.conftest import Env, plant_findings
from tests.daemon.test_console import _csrf, login

Client = TestClient[Any, Any]


def seed(env: Env) -> dict[str, list[str]]:
    """60 QuickBooks invoice mismatches (Acme's invoices INV-0000..0009 among them, 99.00 USD
    each) and 5 Xero orphans."""
    ids: dict[str, list[str]] = {"mismatch": [], "acme": [], "orphan": []}
    total = Money(9900, "USD")
    with env.store.transaction() as tx:
        tx.upsert_entity(Customer("cus-acme", name="Acme Ltd", email="ap@acme.test"), "stripe")
        tx.upsert_entity(Customer("cus-other", name="Globex", email="ap@globex.test"), "stripe")
        for n in range(60):
            owner = "cus-acme" if n < 10 else "cus-other"
            tx.upsert_entity(Invoice(f"inv-{n}", customer_id=owner, number=f"INV-{n:04d}", status="open",
                                     lines=(InvoiceLine("Plan", Decimal(1), total, total),), subtotal=total,
                                     total=total, amount_due=total, issued_at=datetime(2026, 10, 1, tzinfo=UTC)),
                             "stripe")
            finding_id, _ = tx.upsert_finding(
                fingerprint=f"m{n}", kind="mismatch", entity="invoice", system="quickbooks",
                canonical_id=f"inv-{n}", external_ids=[str(100 + n)],
                fields={"total": {"hub": 9900, "quickbooks": 19900}},
                detail=f"quickbooks invoice {100 + n} disagrees with the hub on total", run_id=None)
            ids["mismatch"].append(finding_id)
            if n < 10:
                ids["acme"].append(finding_id)
        for n in range(5):
            finding_id, _ = tx.upsert_finding(
                fingerprint=f"o{n}", kind="orphan", entity="customer", system="xero", canonical_id=None,
                external_ids=[f"x{n}"], fields={"candidates": {f"x{n}": {"name": f"Walk-in {n}"}}},
                detail=f"xero customer x{n} is linked to no hub record and matches none; keep it as it is "
                       f"with `hub resync --finding ID --keep x{n}` or remove it in xero", run_id=None)
            ids["orphan"].append(finding_id)
    return ids


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="[a-z_]+" data-status="[a-z]+" data-finding="([0-9a-f-]+)">', html)


async def test_filters_and_pages_keep_each_other(env: Env, client: Client) -> None:
    ids = seed(env)
    await login(client)
    first = await (await client.get("/findings?kind=mismatch&status=open")).text()
    assert '<b id="total">60</b>' in first and "Showing <b>1–50</b>" in first
    assert len(rows(first)) == 50
    assert 'href="/findings?kind=mismatch&amp;status=open&amp;page=2" id="next"' in first
    assert 'id="prev"' not in first
    second = await (await client.get("/findings?kind=mismatch&status=open&page=2")).text()
    assert len(rows(second)) == 10 and 'id="next"' not in second
    assert 'href="/findings?kind=mismatch&amp;status=open" id="prev"' in second
    assert set(rows(first)) | set(rows(second)) == set(ids["mismatch"])
    # the rows say who, what and how much, and no command line
    assert "Acme Ltd" in first + second and "INV-0003" in first + second and "99.00 USD" in first
    assert "hub resync" not in first

    acme = await (await client.get("/findings?q=acme")).text()
    assert sorted(rows(acme)) == sorted(ids["acme"]) and '<b id="total">10</b>' in acme
    by_number = await (await client.get("/findings?q=INV-0042")).text()
    assert rows(by_number) == [ids["mismatch"][42]]
    orphans = await (await client.get("/findings?system=xero")).text()
    assert sorted(rows(orphans)) == sorted(ids["orphan"]) and "Walk-in 3" in orphans
    bad = await client.get("/findings?kind=nonsense")
    assert bad.status == 400 and "kind: one of" in await bad.text()


async def test_bulk_acknowledge_says_how_many_and_audits_each(env: Env, client: Client) -> None:
    ids = seed(env)
    await login(client)
    page = await (await client.get("/findings?q=acme")).text()
    chosen = ids["acme"][:3]
    back = "/findings?q=acme"
    unsaid = await client.post("/findings/bulk", data={"csrf": _csrf(page), "action": "ack", "id": chosen,
                                                       "back": back})
    assert "Say why in the comment" in await unsaid.text()
    with env.store.transaction() as tx:
        assert {tx.get_finding(i).status for i in chosen} == {"open"}

    done = await client.post("/findings/bulk", allow_redirects=False, data={
        "csrf": _csrf(page), "action": "ack", "id": chosen, "comment": "credit agreed with Acme", "back": back})
    assert done.status == 303 and done.headers["Location"] == back
    shown = await (await client.get(back)).text()
    assert re.search(r'id="flash"[^>]*>3 findings acknowledged</p>', shown), shown[:2000]
    assert '<b data-count="acknowledged">3</b>' in shown and '<b data-count="open">7</b>' in shown
    with env.store.transaction() as tx:
        assert {tx.get_finding(i).status for i in chosen} == {"acknowledged"}
        entries = tx.list_audit(AuditFilter(action="finding.ack"))
    assert sorted(e.target_id for e in entries) == sorted(chosen)
    assert {e.reason for e in entries} == {"credit agreed with Acme"} and all(e.actor.startswith("console:")
                                                                              for e in entries)

    overview = await (await client.get("/")).text()
    assert '<b id="findings-open">62</b>' in overview and '<b id="findings-acknowledged">3</b>' in overview
    assert re.search(r'data-kind="mismatch">mismatch: .*?open <b class="open">57</b>.*?'
                     r'acknowledged <b class="acknowledged">3</b>', overview)


async def test_bulk_resync_is_previewed_first_and_leaves_duplicates_to_their_page(env: Env, client: Client) -> None:
    ids = seed(env)
    await login(client)
    page = await (await client.get("/findings")).text()
    chosen = [ids["orphan"][0], ids["mismatch"][0]]
    preview = await client.post("/findings/bulk", data={"csrf": _csrf(page), "action": "preview", "id": chosen,
                                                        "back": "/findings"})
    html = await preview.text()
    assert preview.status == 200 and "Nothing has been written yet" in html
    orphan_row = html[html.index(f'data-finding="{ids["orphan"][0]}"'):]
    assert "choose the record to keep on its own page" in orphan_row[:orphan_row.index("</tr>")]
    with env.store.transaction() as tx:
        assert {tx.get_finding(i).status for i in chosen} == {"open"}
        assert tx.count_audit(AuditFilter(action="resync")) == 0  # a preview is not an action
    none = await client.post("/findings/bulk", data={"csrf": _csrf(page), "action": "ack", "back": "/findings"})
    assert "No findings ticked" in await none.text()


async def test_the_finding_page_shows_every_system_and_links_without_cli_words(env: Env, client: Client) -> None:
    ids = seed(env)
    with env.store.transaction() as tx:
        tx.link("inv-3", "quickbooks", "invoice", "103")
        tx.link("inv-3", "stripe", "invoice", "in_3")
    await login(client)
    html = await (await client.get(f"/findings/{ids['mismatch'][3]}")).text()
    assert '<dd id="about-customer">Acme Ltd</dd>' in html and '<dd id="about-document">INV-0003</dd>' in html
    assert '<dd id="about-amount">99.00 USD</dd>' in html
    assert re.search(r'<tr data-field="total"><td>total</td><td data-system="hub" class="">99.00 USD</td>'
                     r'<td data-system="quickbooks" class="differs">199.00 USD</td>'
                     r'<td data-system="stripe" class="">same as hub</td></tr>', html), html
    assert 'href="https://app.qbo.intuit.com/app/invoice?txnId=103"' in html
    assert 'href="https://dashboard.stripe.com/invoices/in_3"' in html
    assert 'id="preview"' in html and "hub resync" not in html and "`" not in html
    orphan = await (await client.get(f"/findings/{ids['orphan'][0]}")).text()
    assert "Walk-in 0" in orphan and 'id="keep-x0"' in orphan and "hub resync" not in orphan


async def test_a_bulk_resync_runs_what_was_previewed_and_is_audited(env: Env, client: Client) -> None:
    planted = await plant_findings(env, client, "Bulk Co")
    with env.store.transaction() as tx:  # the customer's QuickBooks name edited by hand: a mismatch
        stale, _ = tx.upsert_finding(
            fingerprint="bulk-m", kind="mismatch", entity="customer", system="quickbooks",
            canonical_id=planted.customer_id, external_ids=[planted.quickbooks_id],
            fields={"name": {"hub": "bulk co", "quickbooks": "bulk co (typo)"}},
            detail=f"quickbooks customer {planted.quickbooks_id} disagrees with the hub on name", run_id=None)
    await login(client)
    page = await (await client.get("/findings")).text()
    chosen = [stale, planted.duplicate]
    preview = await (await client.post("/findings/bulk", data={
        "csrf": _csrf(page), "action": "preview", "id": chosen, "back": "/findings"})).text()
    assert "Run 1 resyncs" in preview and f'<input type="hidden" name="id" value="{stale}">' in preview
    assert f'<input type="hidden" name="id" value="{planted.duplicate}">' not in preview  # keep: on its page
    ran = await client.post("/findings/bulk", allow_redirects=False, data={
        "csrf": _csrf(preview), "action": "resync", "id": [stale], "back": "/findings?kind=mismatch"})
    assert ran.status == 303 and ran.headers["Location"] == "/findings?kind=mismatch"
    shown = await (await client.get("/findings?kind=mismatch")).text()
    assert re.search(r'id="flash"[^>]*>1 finding resynced</p>', shown), shown[:1500]
    with env.store.transaction() as tx:
        entries = tx.list_audit(AuditFilter(action="resync"))
    assert [(e.action, e.target_id) for e in entries] == [("resync.finding", stale)]  # not the duplicate
    assert entries[0].actor.startswith("console:")


async def test_a_refused_resync_says_why_in_the_console_s_words(env: Env, client: Client) -> None:
    seed(env)
    with env.store.transaction() as tx:
        voided, _ = tx.upsert_finding(
            fingerprint="v", kind="broken_link", entity="invoice", system="xero", canonical_id="inv-5",
            external_ids=["x-inv-5"], fields={"status": {"hub": "live", "xero": "void"}}, run_id=None,
            detail="xero invoice x-inv-5 was voided behind the hub's back while it is live in the hub; void it "
                   "in Stripe too, or re-issue the invoice in Stripe")
    await login(client)
    page = await (await client.get(f"/findings/{voided}")).text()
    assert 'id="preview"' not in page and "a resync cannot undo a void" in page
    refused = await client.post(f"/findings/{voided}/preview", data={"csrf": _csrf(page)})
    html = await refused.text()
    assert refused.status == 409
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert error and "void it in Stripe too" in error.group(1) and "hub diff" not in error.group(1)
