"""Fixtures: the daemon's app on the Stripe, QuickBooks and Xero emulators (pinned clocks).

Each connector's clock is its emulator's, and retry sleeps are recorded, never slept. The app is
served by aiohttp's test server on a real loopback port, so emulators can deliver webhooks to it.
Jobs are triggered directly (``jobs.run_now``); the scheduler does not run in these tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.base import Connector
from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.quickbooks import connector as qbo
from connectors.quickbooks.emulator import QuickBooksEmulator
from connectors.retry import RetryPolicy
from connectors.stripe import connector as stripe_connector
from connectors.stripe.emulator import StripeEmulator
from connectors.xero import connector as xero
from connectors.xero.emulator import XeroEmulator
from state.store import StateStore
from sync.config import Config
from sync.runtime import Hub
from sync.web.app import create_app
from sync.web.context import DAEMON, Daemon
from tests.conftest import TEST_KEY, FrozenClock, make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.connectors.stripe.conftest import make_config as stripe_config
from tests.connectors.xero.conftest import xero_config

ADMIN_TOKEN = "adm_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
MAX_BODY = 64_000


@dataclass
class Env:
    stripe: RunningEmulator
    qbo: RunningEmulator
    xero: RunningEmulator
    store: StateStore
    hub: Hub
    config: Config
    clock: FrozenClock
    waits: list[float] = field(default_factory=list)

    @property
    def stripe_emulator(self) -> StripeEmulator:
        assert isinstance(self.stripe.emulator, StripeEmulator)
        return self.stripe.emulator

    @property
    def qbo_emulator(self) -> QuickBooksEmulator:
        assert isinstance(self.qbo.emulator, QuickBooksEmulator)
        return self.qbo.emulator

    @property
    def xero_emulator(self) -> XeroEmulator:
        assert isinstance(self.xero.emulator, XeroEmulator)
        return self.xero.emulator

    def inbox(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from state import schema
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(schema.inbox).order_by(schema.inbox.c.id))]


def build_config(state_url: str, connections: dict[str, Any], *, token: str | None = ADMIN_TOKEN,
                 schedules: dict[str, Any] | None = None) -> Config:
    return Config(path=None, state_url=state_url, encryption_key=TEST_KEY, connections=connections,
                  schedules=schedules or {"sync_interval_seconds": 300, "outbox_interval_seconds": 15,
                                          "diff": {"customer": "0 2 * * *"}},
                  admin={"token": token} if token else {},
                  server={"host": "127.0.0.1", "port": 0, "max_body_bytes": MAX_BODY, "workers": 4,
                          "public_url": ""})


def build_connectors(env_parts: dict[str, RunningEmulator], store: StateStore,
                     waits: list[float]) -> tuple[dict[str, Connector], dict[str, Any]]:
    s, q, x = env_parts["stripe"], env_parts["quickbooks"], env_parts["xero"]
    configs = {"stripe": stripe_config(s.base_url), "quickbooks": qbo_config(q.base_url),
               "xero": xero_config(x.base_url)}
    connectors: dict[str, Connector] = {
        "stripe": stripe_connector.build(configs["stripe"], None, sleep=waits.append, clock=s.emulator.clock.now),
        "quickbooks": qbo.build(configs["quickbooks"], store, policy=RetryPolicy(sleep=waits.append),
                                sleep=waits.append, now=q.emulator.clock.now),
        "xero": xero.build(configs["xero"], store, sleep=waits.append, now=x.emulator.clock.now,
                           monotonic=lambda: x.emulator.clock.now().timestamp()),
    }
    limiter = getattr(getattr(connectors["xero"], "client", None), "limiter", None)
    if limiter is not None:
        limiter.sleep = lambda _s: None
    return connectors, configs


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with make_env(f"sqlite:///{tmp_path}/hub.db") as made:
        yield made


def env_per_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """An ``env`` fixture body for ``params=["sqlite", "postgres"]`` (PostgreSQL: a fresh schema)."""
    url = f"sqlite:///{tmp_path}/hub.db" if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    with make_env(url) as made:
        yield made


@contextmanager
def make_env(url: str) -> Iterator[Env]:
    """The emulators, the hub on the state store at ``url`` (SQLite or PostgreSQL) and its config."""
    clock = FrozenClock()
    running = {"stripe": RunningEmulator(StripeEmulator(rate_limit=100_000)).start(),
               "quickbooks": RunningEmulator(QuickBooksEmulator()).start(),
               "xero": RunningEmulator(XeroEmulator(EmulatorClock())).start()}
    store = make_store(url, clock)
    waits: list[float] = []
    connectors, configs = build_connectors(running, store, waits)
    config = build_config(url, configs)
    hub = Hub.from_config(config, store=store, connectors=connectors)
    yield Env(running["stripe"], running["quickbooks"], running["xero"], store, hub, config, clock, waits)
    hub.close()
    for r in running.values():
        r.stop()


@pytest.fixture
async def client(env: Env) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(env.config, env.hub, start_scheduler=False, clock=env.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def daemon(client: TestClient[Any, Any]) -> Daemon:
    server = client.server
    assert isinstance(server, TestServer)
    return server.app[DAEMON]


def auth(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def control(running: RunningEmulator, path: str, body: dict[str, Any]) -> Any:
    """POST to an emulator's control surface without blocking this loop."""
    async with aiohttp.ClientSession() as session, session.post(running.base_url + path, json=body) as response:
        text = await response.text()
        return json.loads(text) if text else None


@dataclass(frozen=True)
class Planted:
    """A synced customer, its QuickBooks record, and two open findings about it."""

    customer_id: str
    quickbooks_id: str
    duplicate: str  # finding id: a second QuickBooks record ("777") listed before the linked one
    orphan: str  # finding id: a Xero contact nobody else knows


async def plant_findings(env: Env, client: TestClient[Any, Any], name: str) -> Planted:
    """Sync one Stripe customer into the ledgers, then record a duplicate and an orphan finding."""
    env.stripe_emulator.seed_objects({"customers": [{"name": name, "email": f"{name.split()[0].lower()}@x.test"}]})
    jobs = daemon(client).jobs
    await jobs.run_now("sync:stripe:customer")
    await jobs.run_now("outbox")
    with env.store.transaction() as tx:
        stored = next(tx.entities_of("customer"))
        link = tx.link_for(stored.id, "quickbooks", "customer")
        assert link is not None
        duplicate, _ = tx.upsert_finding(
            fingerprint="d", kind="duplicate", entity="customer", system="quickbooks", canonical_id=stored.id,
            external_ids=["777", link.external_id], fields={"name": {"hub": name, "quickbooks": name}},
            detail="2 QuickBooks customers match", run_id=None)
        orphan, _ = tx.upsert_finding(fingerprint="o", kind="orphan", entity="customer", system="xero",
                                      canonical_id=None, external_ids=["x1"], fields={}, detail="", run_id=None)
    return Planted(stored.id, link.external_id, duplicate, orphan)
