"""The console's pages for the daily jobs (issue 21, item 2): runs and jobs with "Run now",
connections whose health counts dead letters, search by email / number / any system's id, the
record page in words, resync by range, and a diff of one record that resolves its fixed
finding and leaves every other record's alone. Each action answers with a one-shot flash."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import event

from mapping.model import Invoice
from mapping.money import Money
from sync.audit import list_actions
from sync.diff_record import diff_record
from sync.web.console_search import search_data
from tests.daemon.conftest import Env, control, daemon
from tests.daemon.test_console import _csrf, login

Client = Any


async def _synced(env: Env, client: Client, *names: str) -> list[str]:
    """Stripe customers synced into QuickBooks and Xero; their hub ids in the order given."""
    env.stripe_emulator.seed_objects({"customers": [
        {"name": n, "email": f"{n.split()[0].lower()}@x.test"} for n in names]})
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    await jobs.run_now("outbox")
    with env.store.transaction() as tx:
        by_name = {s.data["name"]: s.id for s in tx.entities_of("customer")}
    return [by_name[n] for n in names]


def _flash(html: str) -> str:
    match = re.search(r'<p id="flash"[^>]*>(.*?)</p>', html, re.S)
    assert match, html[:800]
    return match.group(1)


async def test_run_now_from_the_jobs_page_flashes_its_outcome_once_and_is_audited(env: Env, client: Client) -> None:
    env.stripe_emulator.seed_objects({"customers": [{"name": "Run Co", "email": "run@x.test"}]})
    await login(client)
    page = await (await client.get("/runs")).text()
    assert 'data-job="sync:stripe:customer"' in page and 'data-job="diff:customer"' in page
    assert "not run yet" in page and "no runs yet" in page
    answer = await client.post("/jobs/sync:stripe:customer/run", data={"csrf": _csrf(page), "back": "/runs"})
    html = await answer.text()
    assert answer.status == 200 and answer.url.path == "/runs"
    assert _flash(html) == "Ran sync:stripe:customer: ok — read 1, wrote 0"
    assert re.search(r'<tr data-kind="sync" data-status="ok"><td>sync</td><td>stripe</td>', html), html
    assert "every 5 min" in html and "every day at 02:00 UTC" in html
    assert 'id="flash"' not in await (await client.get("/runs")).text()  # shown once
    with env.store.transaction() as tx:
        (entry,) = [e for e in list_actions(tx) if e.action == "job.run_now"]
    assert entry.target_id == "sync:stripe:customer" and entry.actor.startswith("console:")
    missing = await client.post("/jobs/nope/run", data={"csrf": _csrf(page)})
    assert missing.status == 404


async def test_a_connection_with_dead_letters_is_never_ok_and_its_budget_is_said(env: Env, client: Client) -> None:
    (customer,) = await _synced(env, client, "Dead Co")
    with env.store.transaction() as tx:
        for n in range(3):
            tx.enqueue(customer, "customer", "xero", "upsert", f"dead-{n}", "h")
        for item in tx.list_outbox("pending"):
            tx.dead_outbox(item.id, "rejected by xero")
    await login(client)
    html = await (await client.get("/connections")).text()
    xero = re.search(r'<tr data-connection="xero" data-health="([a-z_]+)">(.*?)</tr>', html, re.S)
    assert xero and xero.group(1) != "ok" and "3 dead letters" in xero.group(2), html
    assert re.search(r'<td class="dead"><a href="/outbox">3</a></td>', xero.group(2))
    assert re.search(r"Xero: 60 calls a minute, 5 at once; \d+ used in the last minute", xero.group(2))
    stripe = re.search(r'<tr data-connection="stripe" data-health="([a-z_]+)">(.*?)</tr>', html, re.S)
    assert stripe and stripe.group(1) == "ok" and "nothing" in stripe.group(2)
    assert re.search(r"Stripe: [\d,]+ calls a second; [1-9]\d* used in the last minute", stripe.group(2))
    assert 'id="connect-xero"' in html and 'id="connect-stripe"' not in html
    assert 'id="run-sync-stripe-customer"' in html


def _invoice(env: Env, customer: str) -> str:
    """A Stripe invoice INV-0042 of ``customer`` the hub wrote to QuickBooks as 1042, then
    changed by Stripe from 199.00 to 299.00 USD."""
    invoice_id = str(uuid.uuid4())
    made = Invoice(invoice_id, customer_id=customer, number="INV-0042", status="open", currency="USD",
                   total=Money(19900, "USD"), amount_due=Money(19900, "USD"))
    with env.store.transaction() as tx:
        tx.upsert_entity(made, source="stripe")
        tx.link(invoice_id, "stripe", "invoice", "in_042")
        tx.enqueue(invoice_id, "invoice", "quickbooks", "upsert", "inv-42", "h")
        item = tx.list_outbox("pending")[-1]
        tx.complete_outbox(item.id, external_id="1042")
        tx.link(invoice_id, "quickbooks", "invoice", "1042")
    env.clock.advance(minutes=1)
    with env.store.transaction() as tx:
        tx.upsert_entity(Invoice(invoice_id, customer_id=customer, number="INV-0042", status="open", currency="USD",
                                 total=Money(29900, "USD"), amount_due=Money(29900, "USD")), source="stripe")
    return invoice_id


async def test_search_by_email_number_and_any_systems_id_leads_to_the_record_in_words(
        env: Env, client: Client) -> None:
    customer, other = await _synced(env, client, "Search Co", "Other Ltd")
    invoice = _invoice(env, customer)
    with env.store.transaction() as tx:
        stripe_id = tx.link_for(customer, "stripe", "customer")
        qbo_id = tx.link_for(customer, "quickbooks", "customer")
    assert stripe_id is not None and qbo_id is not None
    await login(client)

    async def found(q: str) -> list[str]:
        html = await (await client.get("/search", params={"q": q})).text()
        return re.findall(r'<tr data-id="([^"]+)">', html)
    assert await found("SEARCH@x.test") == [customer]  # an email, any case
    assert await found("INV-0042") == [invoice]  # a document number
    assert await found("0042") == [invoice]  # a part of it
    assert await found("earch c") == [customer]  # a part of a name
    assert await found(stripe_id.external_id) == [customer]  # Stripe's id
    assert await found(qbo_id.external_id) == [customer]  # QuickBooks' id
    assert await found("1042") == [invoice]  # the invoice's QuickBooks id
    assert await found(customer[:8]) == [customer]  # the hub's own id, as the console shows it
    assert await found("nobody-by-that-name") == []
    assert other not in await found("Search")

    html = await (await client.get(f"/records/{invoice}")).text()
    assert "{'minor'" not in html and "'currency'" not in html
    assert "Invoice INV-0042" in html and "299.00 USD" in html
    assert re.search(r"— Stripe added the invoice</li>", html)
    assert "Stripe changed the amount due from 199.00 USD to 299.00 USD; changed the total from 199.00 USD " \
           "to 299.00 USD" in html
    assert "— written to QuickBooks (invoice 1042)</li>" in html
    assert f'<a href="/records/{customer}">customer Search Co</a>' in html
    assert 'href="https://app.qbo.intuit.com/app/invoice?txnId=1042"' in html  # the vendor's own page


async def test_resync_a_range_previews_then_runs_with_a_flash(env: Env, client: Client) -> None:
    await _synced(env, client, "Range Co")
    await login(client)
    page = await (await client.get("/resync")).text()
    preview = await client.post("/resync/range/preview", data={"csrf": _csrf(page), "entity": "customer",
                                                               "since": "2000-01-01"})
    html = await preview.text()
    assert preview.status == 200 and "Dry run: customer since 2000-01-01" in html
    with env.store.transaction() as tx:
        assert tx.outbox_depth().get("pending", 0) == 0  # a preview writes nothing
    ran = await client.post("/resync/range/run", data={"csrf": _csrf(html), "entity": "customer",
                                                       "since": "2000-01-01", "reason": "ledger restored"})
    said = _flash(await ran.text())
    assert re.fullmatch(r"Resynced customers changed since 2000-01-01: read \d+, .*written 2", said), said
    with env.store.transaction() as tx:
        (entry,) = [e for e in list_actions(tx) if e.action == "resync.range"]
    assert entry.reason == "ledger restored" and entry.target_id == "customer:2000-01-01"
    bad = await client.post("/resync/range/preview", data={"csrf": _csrf(html), "entity": "customer",
                                                           "since": "last week"})
    assert bad.status == 400 and "YYYY-MM-DD" in await bad.text()


async def test_diff_of_one_record_resolves_its_fixed_finding_and_leaves_the_others(env: Env, client: Client) -> None:
    fixed, other = await _synced(env, client, "Fixed Co", "Other Co")
    with env.store.transaction() as tx:
        planted = {}
        for name, canonical in (("fixed", fixed), ("other", other)):
            planted[name], _ = tx.upsert_finding(
                fingerprint=f"gone-{name}", kind="missing", entity="customer", system="xero",
                canonical_id=canonical, external_ids=[], fields={}, detail="was missing", run_id=None)
    await login(client)
    page = await (await client.get(f"/records/{fixed}")).text()
    assert f'href="/findings/{planted["fixed"]}"' in page and planted["other"] not in page  # its own findings
    answer = await client.post(f"/records/{fixed}/diff", data={"csrf": _csrf(page), "back": f"/records/{fixed}"})
    said = _flash(await answer.text())
    assert said == "Diffed this record: customer compared in every system: 0 finding(s) about it, 0 new, 1 resolved"
    with env.store.transaction() as tx:
        assert tx.get_finding(planted["fixed"]).status == "resolved"
        assert tx.get_finding(planted["other"]).status == "open"  # another record's: untouched


async def test_a_record_diff_that_cannot_read_a_system_resolves_nothing(env: Env, client: Client) -> None:
    (fixed,) = await _synced(env, client, "Partial Co")
    with env.store.transaction() as tx:
        planted, _ = tx.upsert_finding(fingerprint="gone", kind="missing", entity="customer", system="xero",
                                       canonical_id=fixed, external_ids=[], fields={}, detail="", run_id=None)
    await control(env.xero, "/__emulator/faults", {"error_rate": 1.0})
    found = await daemon(client).jobs.exclusive(diff_record, env.hub, fixed)
    assert not found.compared and found.result.resolved == 0 and "not compared" in found.in_words()
    with env.store.transaction() as tx:
        assert tx.get_finding(planted).status == "open"  # a partial view is never taken for a fix


async def test_resync_one_record_previews_then_runs_and_an_entity_diff_runs_now(env: Env, client: Client) -> None:
    (customer,) = await _synced(env, client, "Record Co")
    await login(client)
    page = await (await client.get(f"/records/{customer}")).text()
    preview = await client.post(f"/records/{customer}/resync", data={"csrf": _csrf(page)})
    html = await preview.text()
    assert preview.status == 200 and "Preview: what the resync would do" in html
    assert re.search(r"read Stripe customer cus_\w+ again and take it into the hub", html)
    assert "push it to QuickBooks, Xero" in html
    ran = await client.post(f"/records/{customer}/run", data={"csrf": _csrf(html), "back": f"/records/{customer}",
                                                             "reason": "customer called"})
    after = await ran.text()
    assert ran.url.path == f"/records/{customer}"
    assert re.fullmatch(r"Resynced this customer from Stripe: read 1, .*written 2", _flash(after)), _flash(after)
    assert "“customer called”" in after  # the audit entry on the record's own timeline
    diffed = await client.post("/diff", data={"csrf": _csrf(after), "entity": "customer", "back": "/resync"})
    assert _flash(await diffed.text()) == "Diffed customers in every system: 0 new, 0 resolved"
    with env.store.transaction() as tx:
        assert {e.action for e in list_actions(tx)} >= {"resync.record", "diff.entity"}


async def test_the_overview_says_a_connection_with_dead_letters_is_not_ok(env: Env, client: Client) -> None:
    (customer,) = await _synced(env, client, "Overview Co")
    with env.store.transaction() as tx:
        tx.enqueue(customer, "customer", "stripe", "upsert", "dead-stripe", "h")
        tx.dead_outbox(tx.list_outbox("pending")[-1].id, "rejected by stripe")
    await login(client)
    html = await (await client.get("/")).text()
    row = re.search(r'<tr data-connection="stripe">(.*?)</tr>', html, re.S)
    assert row and '<td class="status-dead_letters">dead_letters</td>' in row.group(1), html
    assert "1 dead letter (writes that gave up): see the Outbox" in row.group(1)
    assert re.search(r"Stripe: [\d,]+ calls a second; \d+ used in the last minute", row.group(1))


async def test_the_outbox_actions_answer_with_a_flash(env: Env, client: Client) -> None:
    (customer,) = await _synced(env, client, "Flash Co")
    with env.store.transaction() as tx:
        tx.enqueue(customer, "customer", "xero", "upsert", "dead-flash", "h")
        item = tx.list_outbox("pending")[-1]
        tx.dead_outbox(item.id, "rejected by xero")
    await login(client)
    page = await (await client.get("/outbox")).text()
    retried = await client.post(f"/outbox/{item.id}/retry", data={"csrf": _csrf(page)})
    assert _flash(await retried.text()) == f"Write {item.id} queued to be tried again"


async def test_search_reads_its_results_and_their_customers_in_a_few_statements(env: Env, client: Client) -> None:
    (customer,) = await _synced(env, client, "Many Co")
    with env.store.transaction() as tx:
        for n in range(40):
            tx.upsert_entity(Invoice(str(uuid.uuid4()), customer_id=customer, number=f"MANY-{n:03}", status="open",
                                     currency="USD", total=Money(100, "USD"), amount_due=Money(100, "USD")),
                             source="stripe")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])
    event.listen(env.store.engine, "before_cursor_execute", count)
    try:
        found = search_data(daemon(client), "MANY-")
    finally:
        event.remove(env.store.engine, "before_cursor_execute", count)
    assert len(found["results"]) == 40 and {r["customer"] for r in found["results"]} == {"Many Co"}
    assert len(statements) < 20  # not two lookups per result (86 statements before)
