"""Security tests reuse the daemon's fixtures (the app on the Stripe, QuickBooks and Xero
emulators, pinned clocks) and add helpers to count what the hub stored and to speak raw HTTP."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from state import schema
from state.store import StateStore
from sync.web.app import create_app
from sync.web.context import DAEMON
from tests.daemon.conftest import Env, env  # noqa: F401  (fixture, re-exported for this package)

STORED_TABLES = ("entities", "links", "inbox", "outbox", "history", "findings", "runs", "credentials",
                 "cursors", "connection_state")


@pytest.fixture
async def client(env: Env) -> AsyncIterator[TestClient[Any, Any]]:  # noqa: F811  (the fixture)
    """The daemon's app with the wrong-token throttle lifted: fuzzing sends thousands of wrong
    tokens from one address, and what it checks is each answer, not the rate limit (which
    tests/security/test_throttle.py covers)."""
    app = create_app(env.config, env.hub, start_scheduler=False, clock=env.clock)
    app[DAEMON].throttle.limit = sys.maxsize
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def stored_rows(store: StateStore) -> dict[str, int]:
    """Row count of every hub table (a fuzz case must leave all of them as they were)."""
    with store.engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(schema.metadata.tables[name]))
                          .scalar_one()) for name in STORED_TABLES}


async def raw_http(test_client: TestClient[Any, Any], request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client-side header validation); returns (status, whole answer)."""
    reader, writer = await asyncio.open_connection(test_client.host, test_client.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # a guard, not a wait
    finally:
        writer.close()
        await writer.wait_closed()
    status_line = answer.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ")
    assert len(parts) >= 2 and parts[0].startswith(b"HTTP/1."), answer[:200]
    return int(parts[1]), answer
