"""Bulk keep in the console (issue 21, item 2): the operator ticks duplicates (and a mismatch) and
presses Keep…; the page shows each duplicate's candidates side by side with no choice made, a
finding left without a choice is refused naming it, the preview shows each plan without
writing, and the run keeps each chosen record, resolves the findings, audits each with the actor
and says what was kept in one flash message. The mismatch is left out with the reason."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from state.audit import AuditFilter
from tests.daemon.conftest import Env, daemon
from tests.daemon.test_console import _csrf, login

Client = TestClient[Any, Any]


async def plant_duplicates(env: Env, client: Client) -> dict[str, Any]:
    """Two Stripe customers synced into QuickBooks through the emulators; each gets a duplicate
    finding (a second QuickBooks record "9xx" besides the linked one); plus one name mismatch."""
    env.stripe_emulator.seed_objects({"customers": [{"name": "Alpha Co", "email": "ap@alpha.test"},
                                                    {"name": "Beta Co", "email": "ap@beta.test"}]})
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    await jobs.run_now("outbox")
    planted: dict[str, Any] = {"duplicates": {}}
    with env.store.transaction() as tx:
        for n, stored in enumerate(sorted(tx.entities_of("customer"), key=lambda e: e.id)):
            link = tx.link_for(stored.id, "quickbooks", "customer")
            assert link is not None
            name = str(stored.data["name"])
            other = f"9{n}1"
            facts = {other: {"name": f"{name} (typed again)", "email": "other@x.test",
                             "created": f"2026-09-0{n + 1}"},
                     link.external_id: {"name": name, "email": "ap@x.test", "created": "2026-10-01"}}
            finding, _ = tx.upsert_finding(
                fingerprint=f"dup-{n}", kind="duplicate", entity="customer", system="quickbooks",
                canonical_id=stored.id, external_ids=[other, link.external_id], fields={"candidates": facts},
                detail="2 QuickBooks customers match", run_id=None)
            planted["duplicates"][finding] = {"canonical": stored.id, "linked": link.external_id, "other": other,
                                              "names": [facts[other]["name"], name]}
        first = next(iter(planted["duplicates"].values()))
        planted["mismatch"], _ = tx.upsert_finding(
            fingerprint="mis", kind="mismatch", entity="customer", system="quickbooks",
            canonical_id=first["canonical"], external_ids=[first["linked"]],
            fields={"email": {"hub": "a@x.test", "quickbooks": "b@x.test"}}, detail="", run_id=None)
    return planted


async def test_bulk_keep_asks_for_each_choice_previews_then_keeps_and_audits(env: Env, client: Client) -> None:
    planted = await plant_duplicates(env, client)
    (dup_a, a), (dup_b, b) = planted["duplicates"].items()
    mismatch = planted["mismatch"]
    await login(client)
    listing = await (await client.get("/findings")).text()
    assert 'formaction="/findings/bulk/keep/choose" id="bulk-keep"' in listing
    ticked = [dup_a, dup_b, mismatch]
    choose = await client.post("/findings/bulk/keep/choose", data={"csrf": _csrf(listing), "id": ticked,
                                                                  "back": "/findings"})
    html = await choose.text()
    assert choose.status == 200
    for finding, facts in ((dup_a, a), (dup_b, b)):
        section = html[html.index(f'<section class="keep" data-finding="{finding}">'):]
        section = section[:section.index("</section>")]
        assert all(f'<td class="name">{name}</td>' in section for name in facts["names"]), section
        assert f'name="keep:{finding}" value="{facts["other"]}"' in section
        assert "(linked to the hub)" in section
    assert "checked" not in html  # nothing chosen for the operator
    left = re.search(rf'<li data-finding="{mismatch}">(.*?)</li>', html)
    assert left and "a mismatch has no record to choose" in left.group(1)

    csrf = _csrf(html)
    half = await client.post("/findings/bulk/keep/preview", data={
        "csrf": csrf, "id": ticked, f"keep:{dup_a}": a["linked"], "back": "/findings"})
    refused = await half.text()
    assert half.status == 400 and f"Choose the record to keep for finding {dup_b[:8]}" in refused
    unchosen = await client.post("/findings/bulk/keep/run", data={
        "csrf": csrf, "id": [dup_a, dup_b], f"keep:{dup_b}": b["other"], "back": "/findings"})
    assert unchosen.status == 400 and f"Choose the record to keep for finding {dup_a[:8]}" in await unchosen.text()
    stranger = await client.post("/findings/bulk/keep/run", data={
        "csrf": csrf, "id": [dup_a], f"keep:{dup_a}": "not-a-candidate", "back": "/findings"})
    assert stranger.status == 400 and f"not-a-candidate is not one of the records of finding {dup_a[:8]}" in (
        await stranger.text())
    with env.store.transaction() as tx:
        assert {tx.get_finding(f).status for f in (dup_a, dup_b)} == {"open"}  # refused: nothing ran

    choices = {f"keep:{dup_a}": a["linked"], f"keep:{dup_b}": b["other"]}
    preview = await client.post("/findings/bulk/keep/preview", data={
        "csrf": csrf, "id": ticked, "back": "/findings", "reason": "checked with the customers", **choices})
    shown = await preview.text()
    assert preview.status == 200
    for finding, facts, kept in ((dup_a, a, a["linked"]), (dup_b, b, b["other"])):
        plan = re.search(rf'<div class="plan" data-plan="{finding}">(.*?)</div>', shown, re.S)
        assert plan and f"link hub customer {facts['canonical']} to quickbooks {kept}" in plan.group(1)
    assert 'id="keep-run"' in shown
    with env.store.transaction() as tx:
        assert {tx.get_finding(f).status for f in (dup_a, dup_b)} == {"open"}
        assert tx.count_audit(AuditFilter(action="resync")) == 0  # a preview writes nothing

    ran = await client.post("/findings/bulk/keep/run", allow_redirects=False, data={
        "csrf": _csrf(shown), "id": [dup_a, dup_b], "back": "/findings?kind=duplicate",
        "reason": "checked with the customers", **choices})
    assert ran.status == 303 and ran.headers["Location"] == "/findings?kind=duplicate"
    after = await (await client.get("/findings?kind=duplicate")).text()
    flash = re.search(r'id="flash"[^>]*>(.*?)</p>', after)
    assert flash and flash.group(1).startswith("2 duplicates settled: kept "), after[:2000]
    assert f"{a['names'][1]} (quickbooks {a['linked']})" in flash.group(1)
    assert f"{b['names'][0]} (quickbooks {b['other']})" in flash.group(1)
    with env.store.transaction() as tx:
        assert {tx.get_finding(f).status for f in (dup_a, dup_b)} == {"resolved"}
        assert tx.get_finding(mismatch).kind == "mismatch"
        link_b = tx.link_for(b["canonical"], "quickbooks", "customer")
        entries = tx.list_audit(AuditFilter(action="resync"))
    assert link_b is not None and link_b.external_id == b["other"]
    assert sorted((e.target_id, e.after["keep"]) for e in entries) == sorted([(dup_a, a["linked"]),
                                                                              (dup_b, b["other"])])
    assert all(e.actor.startswith("console:") and e.reason == "checked with the customers" for e in entries)
