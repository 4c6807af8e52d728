"""The console's people page: admins only; a new user's token is shown once and then logs in;
a role change and a disable take effect at once; each change names the admin in the audit log."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from sync.users import add_user
from tests.daemon.conftest import Env, auth
from tests.daemon.test_console import _csrf
from tests.daemon.test_roles import login_as

Client = TestClient[Any, Any]


async def test_an_admin_adds_changes_and_disables_people(env: Env, client: Client) -> None:
    operator = add_user(env.store, "olga", "operator", "cli:test")
    await login_as(client, "olga", operator)
    refused = await client.get("/users")
    assert refused.status == 403 and "needs the admin role" in await refused.text()
    assert 'href="/users"' not in await (await client.get("/")).text()  # no People link for her

    admin = add_user(env.store, "ada", "admin", "cli:test")
    csrf = await login_as(client, "ada", admin)
    page = await (await client.get("/users")).text()
    assert 'data-user="olga"' in page and 'href="/users"' in page
    bad = await client.post("/users", data={"csrf": csrf, "name": "Rita R", "role": "read-only"})
    assert bad.status == 400 and "lower-case letters" in await bad.text()
    added = await client.post("/users", data={"csrf": csrf, "name": "rita", "role": "read-only",
                                              "password": "a long enough password"})
    shown = re.search(r'<code id="token-value">(bh_[^<]+)</code>', await added.text())
    assert added.status == 200 and shown
    token = shown.group(1)
    assert token not in await (await client.get("/users")).text()  # shown once
    assert (await client.get("/api/status", headers=auth(token))).status == 200
    assert (await client.post("/api/jobs/outbox/run", headers=auth(token))).status == 403  # read-only
    promoted = await client.post("/users/rita/role", data={"csrf": _csrf(page), "role": "operator"},
                                 allow_redirects=False)
    assert promoted.status == 303
    assert (await client.post("/api/jobs/outbox/run", headers=auth(token))).status == 200
    await client.post("/users/rita/disable", data={"csrf": csrf, "reason": "left the team"})
    assert (await client.get("/api/status", headers=auth(token))).status == 403
    missing = await client.post("/users/nobody/reset", data={"csrf": csrf})
    assert missing.status == 404 and "no user &#39;nobody&#39;" in await missing.text()

    with env.store.transaction() as tx:
        entries = [(e.actor, e.action, e.target_id) for e in reversed(tx.list_audit()) if e.target_kind == "user"]
    assert entries[2:] == [("console:ada", "user.add", "rita"), ("console:ada", "user.role", "rita"),
                           ("console:ada", "user.disable", "rita")]
