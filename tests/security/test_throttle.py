"""Wrong admin tokens are throttled per client address (API and console alike): past the limit
within the window the answer is 429 with Retry-After in seconds, the token is not even compared,
and successes never count. The app's clock is pinned, so the window moves only when told."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from sync.web.app import create_app
from sync.web.guards import FAILURE_LIMIT, FAILURE_WINDOW
from tests.daemon.conftest import ADMIN_TOKEN, Env, auth

Client = TestClient[Any, Any]
WRONG = auth(ADMIN_TOKEN[:-1] + "x")


async def _throttled_client(env: Env) -> Client:
    # The daemon's own fixture, without tests/security/conftest's lifted throttle.
    return TestClient(TestServer(create_app(env.config, env.hub, start_scheduler=False, clock=env.clock)))


async def _console_login(client: Client, token: str) -> Any:
    page = await client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert match
    return await client.post("/login", data={"token": token, "csrf": match.group(1)}, allow_redirects=False)


async def test_wrong_bearer_tokens_are_throttled_with_retry_after(env: Env) -> None:
    async with await _throttled_client(env) as client:
        for _ in range(FAILURE_LIMIT):
            assert (await client.get("/api/status", headers=WRONG)).status == 403
        refused = await client.get("/api/status", headers=WRONG)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == str(int(FAILURE_WINDOW.total_seconds()))
        assert "too many wrong tokens" in (await refused.json())["error"]
        # Not compared while throttled: even the right token learns nothing until the window passes.
        assert (await client.get("/api/status", headers=auth())).status == 429
        env.clock.advance(seconds=FAILURE_WINDOW.total_seconds() - 5)
        assert (await client.get("/api/status", headers=WRONG)).headers["Retry-After"] == "5"
        env.clock.advance(seconds=5)
        assert (await client.get("/api/status", headers=auth())).status == 200
        assert (await client.get("/api/status", headers=WRONG)).status == 403


async def test_successes_never_count_and_missing_tokens_are_not_guesses(env: Env) -> None:
    async with await _throttled_client(env) as client:
        for _ in range(FAILURE_LIMIT * 3):
            assert (await client.get("/api/status", headers=auth())).status == 200
            assert (await client.get("/api/status")).status == 401
        for _ in range(FAILURE_LIMIT - 1):
            assert (await client.get("/api/status", headers=WRONG)).status == 403
        assert (await client.get("/api/status", headers=auth())).status == 200


async def test_console_logins_share_the_throttle(env: Env) -> None:
    async with await _throttled_client(env) as client:
        for _ in range(FAILURE_LIMIT - 1):
            assert (await _console_login(client, "wrong")).status == 401
        assert (await client.get("/api/status", headers=WRONG)).status == 403  # the tenth failure
        refused = await _console_login(client, ADMIN_TOKEN)
        assert refused.status == 429 and refused.headers["Retry-After"] == "60"
        assert "Too many wrong tokens" in await refused.text()
        env.clock.advance(seconds=FAILURE_WINDOW.total_seconds())
        ok = await _console_login(client, ADMIN_TOKEN)
        assert ok.status == 303 and ok.headers["Location"] == "/"
