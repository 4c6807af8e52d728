"""The audit log through the daemon: an operator's acknowledgement with a comment (console and
API), a resync and an approval are each one entry naming them; the /audit page filters, pages and
exports them, and a read-only user may read it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from aiohttp.test_utils import TestClient

from sync.audit import record_action
from sync.users import add_user
from sync.web.console_audit import PAGE
from tests.daemon.conftest import Env, auth, plant_findings
from tests.daemon.test_console import _csrf
from tests.daemon.test_roles import login_as

Client = TestClient[Any, Any]


async def test_an_operators_actions_are_audited_with_their_name_and_words(env: Env, client: Client) -> None:
    planted = await plant_findings(env, client, "Audit Co")
    token = add_user(env.store, "olga", "operator", "cli:test")
    await login_as(client, "olga", token)
    page = await (await client.get(f"/findings/{planted.orphan}")).text()
    acked = await client.post(f"/findings/{planted.orphan}/ack",
                              data={"csrf": _csrf(page), "comment": "a test contact, Xero only"})
    assert acked.status == 200
    preview = await client.post(f"/findings/{planted.duplicate}/preview",
                                data={"csrf": _csrf(page), "keep": planted.quickbooks_id})
    assert preview.status == 200
    via_api = await client.post(f"/api/findings/{planted.orphan}/ack", headers=auth(token),
                                json={"comment": "still a test contact"})
    assert via_api.status == 200
    resynced = await client.post("/api/resync", headers=auth(token), json={
        "finding": planted.duplicate, "keep": planted.quickbooks_id, "reason": "777 was typed by hand"})
    assert resynced.status == 200, await resynced.text()
    bad = await client.post(f"/api/findings/{planted.orphan}/ack", headers=auth(token), json={"comment": 5})
    assert bad.status == 400

    with env.store.transaction() as tx:
        entries = list(reversed(tx.list_audit()))
        timeline = tx.audit_of_record(planted.customer_id)
    assert [(e.actor, e.action, e.reason) for e in entries] == [
        ("cli:test", "user.add", None),
        ("console:olga", "finding.ack", "a test contact, Xero only"),  # the preview left none
        ("api:olga", "finding.ack", "still a test contact"),
        ("api:olga", "resync.finding", "777 was typed by hand")]
    assert (entries[1].before, entries[1].after) == ({"status": "open"}, {"status": "acknowledged"})
    assert entries[2].before == entries[2].after == {"status": "acknowledged"}
    assert entries[3].after["keep"] == planted.quickbooks_id and entries[3].after["status"] == "resolved"
    assert [e.action for e in timeline] == ["resync.finding"]  # the duplicate's record; the orphan has none
    record = await (await client.get(f"/records/{planted.customer_id}")).text()
    assert "api:olga: resync finding" in record and "777 was typed by hand" in record  # on its timeline


async def test_the_audit_page_filters_pages_and_exports(env: Env, client: Client) -> None:
    with env.store.transaction() as tx:
        for n in range(PAGE + 5):
            record_action(tx, "console:olga" if n % 2 else "cli:root", "finding.ack", "finding", f"f{n:03d}",
                          before={"status": "open"}, after={"status": "acknowledged"},
                          reason="=HYPERLINK(\"x\")" if n == 0 else f"reason {n}")
            env.clock.advance(minutes=1)
        record_action(tx, "cli:root", "user.add", "user", "rita", after={"role": "read-only"})
    token = add_user(env.store, "rita", "read-only", "cli:root")
    await login_as(client, "rita", token)  # reading the log is allowed to read-only users
    first = await (await client.get("/audit")).text()
    assert f"{PAGE + 7} entries" in first and first.count("<tr data-action=") == PAGE
    assert 'data-action="user.add"' in first and "status open → acknowledged" in first
    assert 'id="audit-next"' in first and 'id="audit-prev"' not in first
    second = await (await client.get("/audit?page=2")).text()
    assert second.count("<tr data-action=") == 7 and 'id="audit-prev"' in second
    olga = await (await client.get("/audit?actor=olga&action=finding")).text()
    assert f"{(PAGE + 5) // 2} entries" in olga and "<td>cli:root</td>" not in olga and "<td>console:olga</td>" in olga
    dated = await (await client.get("/audit?since=2026-11-01&until=2026-11-01")).text()
    assert f"{PAGE + 7} entries" in dated
    assert "0 entries" in await (await client.get("/audit?since=2026-11-02")).text()
    assert (await client.get("/audit?since=soon")).status == 400

    exported = await client.get("/audit.csv?actor=root")
    assert exported.status == 200 and exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await exported.text())))
    assert len(rows) == (PAGE + 5 + 1) // 2 + 2 and {r["actor"] for r in rows} == {"cli:root"}
    assert rows[-1]["reason"] == "'=HYPERLINK(\"x\")"  # a spreadsheet would have run it
    as_json = json.loads(await (await client.get("/audit.json?action=user")).text())
    assert [e["target_id"] for e in as_json["entries"]] == ["rita", "rita"]


async def test_the_api_serves_the_log_to_a_read_only_token(env: Env, client: Client) -> None:
    with env.store.transaction() as tx:
        for n in range(5):
            record_action(tx, "console:olga", "finding.ack", "finding", f"f{n}", reason=f"r{n}")
            env.clock.advance(minutes=1)
    token = add_user(env.store, "rita", "read-only", "cli:root")
    answer = await client.get("/api/audit?actor=olga&limit=2&offset=1", headers=auth(token))
    assert answer.status == 200
    body = await answer.json()
    assert body["total"] == 5 and [e["target_id"] for e in body["entries"]] == ["f3", "f2"]
    users = await (await client.get("/api/audit?action=user", headers=auth(token))).json()
    assert [e["target_id"] for e in users["entries"]] == ["rita"]
    for bad in ("since=soon", "offset=-1", "limit=0", "actr=olga"):
        assert (await client.get(f"/api/audit?{bad}", headers=auth(token))).status == 400, bad
