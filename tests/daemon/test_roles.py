"""Roles, enforced by the server on every route that changes something, in the console and the
API: read-only may only look, operator may act on the daily work, admin also on connections and
people. The routes are read from the running app, so a new POST route without a role rule fails
here (and needs admin meanwhile)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from sync.users import add_user, disable_user
from sync.web.app import create_app
from sync.web.roles import ROUTE_ROLES, UNLISTED_WRITE, needed_role
from tests.daemon.conftest import ADMIN_TOKEN, Env, auth, build_config
from tests.daemon.test_console import _csrf

Client = TestClient[Any, Any]
_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")
_ANY = "[^{}/]+"


def _writes(client: Client) -> list[tuple[str, str, str]]:
    """(method, canonical route, a concrete path) for every non-GET route of the app, each value of
    a constrained parameter ({action:ack|resync}) once."""
    server = client.server
    assert isinstance(server, TestServer)
    found = []
    for route in server.app.router.routes():
        if route.method in ("GET", "HEAD") or route.resource is None:
            continue
        info = route.resource.get_info()
        pattern = info["pattern"].pattern if "pattern" in info else re.escape(route.resource.canonical)
        groups = _GROUP.findall(pattern)
        choices = [["x1"] if regex == _ANY else regex.split("|") for _name, regex in groups]
        for values in itertools.product(*choices):
            path = route.resource.canonical
            for (name, _regex), value in zip(groups, values, strict=True):
                path = path.replace("{" + name + "}", value)
            found.append((route.method, route.resource.canonical, path))
    assert len(found) > 15
    return found


async def login_as(client: Client, name: str, secret: str) -> str:
    """Log the client in as a user; the CSRF token of its session."""
    page = await client.get("/login")
    form = (await page.text()).split('action="/login"', 1)[1]  # (a logged-in page has the logout form first)
    answer = await client.post("/login", data={"user": name, "token": secret, "csrf": _csrf(form)},
                               allow_redirects=False)
    assert answer.status == 303, await answer.text()
    return _csrf(await (await client.get("/")).text())


async def test_every_state_changing_route_has_a_role_rule(client: Client) -> None:
    unlisted = sorted({(m, r) for m, r, _ in _writes(client) if (m, r) not in ROUTE_ROLES})
    assert unlisted == [], f"add these to sync/web/roles.py ROUTE_ROLES: {unlisted}"
    assert needed_role("POST", "/a/route/nobody/listed") == UNLISTED_WRITE == "admin"
    assert needed_role("GET", "/findings") == "read-only"


async def test_a_read_only_user_is_refused_every_write_in_the_console_and_the_api(env: Env, client: Client) -> None:
    token = add_user(env.store, "rita", "read-only", "cli:test")
    csrf = await login_as(client, "rita", token)
    assert (await client.get("/findings")).status == 200  # looking is allowed
    refused = 0
    for method, route, path in _writes(client):
        needed = ROUTE_ROLES.get((method, route), UNLISTED_WRITE)
        if needed in (None, "read-only"):
            continue
        if path.startswith("/api/"):
            answer = await client.request(method, path, headers=auth(token), json={})
            text = (await answer.json())["error"]
        else:
            answer = await client.request(method, path, data={"csrf": csrf}, allow_redirects=False)
            text = await answer.text()
        assert answer.status == 403, (path, answer.status, text)
        assert f"needs the {needed} role; you are rita (read-only)" in text, (path, text)
        refused += 1
    assert refused > 12
    with env.store.transaction() as tx:
        assert tx.list_findings() == [] and tx.list_audit() != []  # only the user's creation
        assert [e.action for e in tx.list_audit()] == ["user.add"]


async def test_an_operator_acts_but_may_not_connect_a_vendor(env: Env, client: Client) -> None:
    token = add_user(env.store, "olga", "operator", "cli:test")
    csrf = await login_as(client, "olga", token)
    for method, route, path in _writes(client):
        if ROUTE_ROLES.get((method, route), UNLISTED_WRITE) != "operator" or route == "/logout":
            continue
        if path.startswith("/api/"):
            answer = await client.request(method, path, headers=auth(token), json={})
        else:
            answer = await client.request(method, path, data={"csrf": csrf}, allow_redirects=False)
        assert "role; you are" not in await answer.text(), path  # past the role check (then 400/404/303)
    connect = await client.get("/oauth/start/quickbooks", allow_redirects=False)
    assert connect.status == 403 and "needs the admin role; you are olga (operator)" in await connect.text()


async def test_a_user_token_is_their_api_bearer_until_disabled(env: Env, client: Client) -> None:
    token = add_user(env.store, "olga", "operator", "cli:test")
    assert (await client.get("/api/status", headers=auth(token))).status == 200
    assert (await client.get("/api/status", headers=auth(token[:-2] + "xx"))).status == 403
    csrf = await login_as(client, "olga", token)
    disable_user(env.store, "olga", "cli:test", reason="left the team")
    assert (await client.get("/api/status", headers=auth(token))).status == 403
    # the open console session ends at its next request
    assert (await client.get("/", allow_redirects=False)).status == 303
    assert (await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303


async def test_the_admin_token_is_the_bootstrap_admin(client: Client) -> None:
    page = await client.get("/login")
    wrong = await client.post("/login", data={"user": "admin", "token": "nope", "csrf": _csrf(await page.text())})
    assert wrong.status == 401
    assert (await client.get("/api/status", headers=auth())).status == 200


async def test_without_the_admin_token_people_still_sign_in(env: Env) -> None:
    config = build_config(env.config.state_url, dict(env.config.connections), token=None)
    app = create_app(config, env.hub, start_scheduler=False, clock=env.clock)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/status", headers=auth())).status == 404  # nobody can: off
        assert (await client.get("/api/status")).status == 404  # off, not 401, without a bearer too
        assert (await client.get("/login")).status == 403
        token = add_user(env.store, "olga", "operator", "cli:test")
        assert (await client.get("/api/status", headers=auth(token))).status == 200
        await login_as(client, "olga", token)
        assert (await client.get("/", allow_redirects=False)).status == 200
        assert (await client.get("/api/status", headers=auth())).status == 403  # the old token is nobody
        page = await client.get("/login")
        bootstrap = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": _csrf(
            (await page.text()).split('action="/login"', 1)[1])})
        assert bootstrap.status == 401
