"""The console: login by token into a signed HttpOnly/SameSite=Strict session, CSRF on every
form, a strict CSP with script only from /static/, and the pages' numbers and actions."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from sync.queries import gather_status
from sync.web.app import create_app
from sync.web.console_words import when
from tests.daemon.conftest import ADMIN_TOKEN, Env, build_config, plant_findings

Client = TestClient[Any, Any]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def login(client: Client, token: str = ADMIN_TOKEN) -> Any:
    page = await client.get("/login")
    return await client.post("/login", data={"token": token, "csrf": _csrf(await page.text())},
                             allow_redirects=False)


async def test_login_sets_a_signed_strict_httponly_session(client: Client) -> None:
    assert (await client.get("/", allow_redirects=False)).status == 303
    wrong = await login(client, "nope")
    assert wrong.status == 401 and "Wrong token" in await wrong.text()
    ok = await login(client)
    assert ok.status == 303 and ok.headers["Location"] == "/"
    cookie = next(v for v in ok.headers.getall("Set-Cookie") if v.startswith("hub_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert ADMIN_TOKEN not in cookie
    page = await client.get("/")
    assert page.status == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    html = await page.text()
    assert '<script src="/static/console.js"' in html and "<script>" not in html
    assert (await client.get("/static/console.js")).status == 200


async def test_forged_session_and_missing_csrf_are_refused(env: Env, client: Client) -> None:
    client.session.cookie_jar.update_cookies({"hub_session": "abc.def"})
    assert (await client.get("/", allow_redirects=False)).status == 303
    page = await client.get("/login")
    no_csrf = await client.post("/login", data={"token": ADMIN_TOKEN}, allow_redirects=False)
    assert no_csrf.status == 403 and _csrf(await page.text())
    await login(client)
    with env.store.transaction() as tx:
        finding_id, _ = tx.upsert_finding(fingerprint="f", kind="orphan", entity="customer", system="xero",
                                          canonical_id=None, external_ids=["x1"], fields={}, detail="", run_id=None)
    for data in ({}, {"csrf": "forged"}):
        response = await client.post(f"/findings/{finding_id}/ack", data=data, allow_redirects=False)
        assert response.status == 403
    with env.store.transaction() as tx:
        assert tx.get_finding(finding_id).status == "open"


async def test_console_off_without_token(env: Env) -> None:
    config = build_config(env.config.state_url, dict(env.config.connections), token=None)
    async with TestClient(TestServer(create_app(config, env.hub, start_scheduler=False))) as c:
        for path in ("/", "/login", "/findings"):
            response = await c.get(path)
            assert response.status == 403 and "console is off" in await response.text()


async def test_pages_overview_finding_resync_ack_record_outbox(env: Env, client: Client) -> None:
    planted = await plant_findings(env, client, "Console Co")
    dup, other = planted.duplicate, planted.orphan
    with env.store.transaction() as tx:
        tx.enqueue(planted.customer_id, "customer", "xero", "upsert", "k-dead", "h")
        dead = tx.list_outbox("pending")[0]
        tx.dead_outbox(dead.id, "rejected by xero: name taken")
    await login(client)
    overview = await (await client.get("/")).text()
    status = gather_status(env.store, env.config)
    with env.store.transaction() as tx:
        by_kind = tx.unresolved_findings_by_kind()
    assert by_kind  # open and acknowledged, apart
    for kind, c in by_kind.items():
        assert re.search(rf'data-kind="{kind}".*?open <b class="open">{c["open"]}</b>.*?'
                         rf'acknowledged <b class="acknowledged">{c["acknowledged"]}</b>', overview)
    assert f'<b id="dead-letters">{status["outbox"]["dead"]}</b>' in overview
    assert 'data-connection="stripe"' in overview

    listed = await (await client.get("/findings?kind=duplicate")).text()
    assert dup[:8] in listed and other[:8] not in listed
    page = await (await client.get(f"/findings/{dup}")).text()
    assert "Console Co" in page and f'id="keep-{planted.quickbooks_id}"' in page  # a Keep per record
    assert "hub resync" not in page  # the console says what to do its own way
    with env.store.transaction() as tx:
        seen = tx.get_finding(dup).first_seen
    assert f"first seen {when(seen, year=True)} ·" in page  # said as every console page says a time
    preview = await client.post(f"/findings/{dup}/preview", data={"csrf": _csrf(page), "keep": planted.quickbooks_id})
    preview_html = await preview.text()
    assert preview.status == 200 and "Dry run" in preview_html and "link hub customer" in preview_html
    with env.store.transaction() as tx:
        assert tx.get_finding(dup).status == "open"
    done = await client.post(f"/findings/{dup}/resync", data={"csrf": _csrf(preview_html), "keep": planted.quickbooks_id})
    assert done.status == 200 and '<b id="finding-status">resolved</b>' in await done.text()
    acked = await client.post(f"/findings/{other}/ack", data={"csrf": _csrf(page)})
    assert '<b id="finding-status">acknowledged</b>' in await acked.text()

    record = await (await client.get(f"/records/{planted.customer_id}")).text()
    assert planted.quickbooks_id in record and "quickbooks" in record and 'id="timeline"' in record
    outbox = await (await client.get("/outbox")).text()
    assert "rejected by xero: name taken" in outbox
    unsaid = await client.post(f"/outbox/{dead.id}/drop", data={"csrf": _csrf(outbox)})
    assert unsaid.status == 400  # a drop says why
    await client.post(f"/outbox/{dead.id}/drop", data={"csrf": _csrf(outbox), "reason": "entered by hand"})
    with env.store.transaction() as tx:
        assert tx.outbox_depth().get("dead", 0) == 0 and tx.outbox_depth()["dropped"] == 1
