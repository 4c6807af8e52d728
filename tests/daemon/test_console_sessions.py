"""Console sessions are server-side: logout ends one for good, and each expires when idle and at
an absolute age (the daemon's pinned clock moves them)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from sync.web.app import create_app
from sync.web.guards import SESSION_IDLE, SESSION_MAX
from tests.daemon.conftest import ADMIN_TOKEN, Env, auth
from tests.daemon.test_console import login

Client = TestClient[Any, Any]


def _session_cookie(client: Client) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "hub_session")


async def _csrf_of(client: Client, path: str = "/") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', await (await client.get(path)).text())
    assert match
    return match.group(1)


async def test_logout_revokes_the_session_so_a_replayed_cookie_is_refused(client: Client) -> None:
    await login(client)
    cookie = _session_cookie(client)
    assert (await client.get("/", allow_redirects=False)).status == 200
    out = await client.post("/logout", data={"csrf": await _csrf_of(client)}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    client.session.cookie_jar.update_cookies({"hub_session": cookie})  # the stolen / kept cookie
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_an_idle_session_expires_and_activity_keeps_it_alive(env: Env, client: Client) -> None:
    await login(client)
    for _ in range(3):  # use within the idle limit restarts its timer
        env.clock.advance(seconds=SESSION_IDLE.total_seconds() - 1)
        assert (await client.get("/", allow_redirects=False)).status == 200
    env.clock.advance(seconds=SESSION_IDLE.total_seconds())
    assert (await client.get("/", allow_redirects=False)).status == 303
    await login(client)  # a new login works again
    assert (await client.get("/", allow_redirects=False)).status == 200


async def test_no_session_outlives_the_absolute_limit(env: Env, client: Client) -> None:
    await login(client)
    step = SESSION_IDLE.total_seconds() / 2
    elapsed = 0.0
    while elapsed + step < SESSION_MAX.total_seconds():
        env.clock.advance(seconds=step)
        elapsed += step
        assert (await client.get("/", allow_redirects=False)).status == 200
    env.clock.advance(seconds=step)
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_the_admin_keys_set_the_limits(env: Env) -> None:
    config = replace(env.config, admin={"token": ADMIN_TOKEN, "session_idle_minutes": 1.0,
                                        "session_max_hours": 1.0, "failed_tokens_per_minute": 2})
    async with TestClient(TestServer(create_app(config, env.hub, start_scheduler=False, clock=env.clock))) as c:
        await login(c)
        env.clock.advance(seconds=61)
        assert (await c.get("/", allow_redirects=False)).status == 303
        wrong = auth(ADMIN_TOKEN + "x")
        assert [(await c.get("/api/status", headers=wrong)).status for _ in range(3)] == [403, 403, 429]
