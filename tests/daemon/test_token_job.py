"""The token job and the expiry metric on the three OAuth connections (QuickBooks, Xero,
Salesforce), each against its emulator on a pinned clock: refreshed ahead of expiry, not before,
and one ``billhub_token_expiry_timestamp_seconds`` sample per connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import Connector
from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.quickbooks import connector as qbo
from connectors.quickbooks.emulator import QuickBooksEmulator
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    SalesforceEmulator,
    abort_connections,
)
from connectors.salesforce.tls import server_context
from connectors.settings import ConnectionConfig
from connectors.xero import connector as xero
from connectors.xero.emulator import XeroEmulator
from sync.metrics import Metrics
from sync.runtime import Hub
from sync.scheduler import Jobs
from tests.conftest import FrozenClock, make_store
from tests.connectors.quickbooks.conftest import qbo_config
from tests.connectors.xero.conftest import xero_config
from tests.daemon.conftest import build_config

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
OAUTH = ("quickbooks", "xero", "salesforce")


@dataclass
class World:
    hub: Hub
    jobs: Jobs
    metrics: Metrics
    clocks: dict[str, EmulatorClock]
    token_calls: dict[str, Callable[[], int]]

    def calls(self) -> dict[str, int]:
        return {name: count() for name, count in self.token_calls.items()}

    def expiry_samples(self) -> dict[str, float]:
        return {s.labels["connection"]: s.value
                for family in text_string_to_metric_families(self.metrics.render().decode())
                for s in family.samples if s.name == "billhub_token_expiry_timestamp_seconds"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    waits: list[float] = []
    q = RunningEmulator(QuickBooksEmulator(EmulatorClock(START))).start()
    x = RunningEmulator(XeroEmulator(EmulatorClock(START))).start()
    ctx, cert = server_context(tmp_path / "tls")
    sf_emulator = SalesforceEmulator(EmulatorClock(START))
    s = RunningEmulator(sf_emulator, ssl_context=ctx).start()
    store = make_store(f"sqlite:///{tmp_path}/hub.db", FrozenClock())
    qbo_emulator, xero_emulator = q.emulator, x.emulator
    assert isinstance(qbo_emulator, QuickBooksEmulator) and isinstance(xero_emulator, XeroEmulator)
    configs = {"quickbooks": qbo_config(q.base_url), "xero": xero_config(x.base_url),
               "salesforce": ConnectionConfig("salesforce", "salesforce", {
                   "instance_url": s.base_url, "client_id": DEFAULT_CLIENT_ID,
                   "client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": DEFAULT_REFRESH_TOKEN,
                   "token_url": f"{s.base_url}/services/oauth2/token", "ca_bundle": str(cert)})}
    connectors: dict[str, Connector] = {
        "quickbooks": qbo.build(configs["quickbooks"], store, policy=RetryPolicy(sleep=waits.append),
                                sleep=waits.append, now=qbo_emulator.clock.now),
        "xero": xero.build(configs["xero"], store, sleep=waits.append, now=xero_emulator.clock.now,
                           monotonic=lambda: xero_emulator.clock.now().timestamp()),
        "salesforce": SalesforceConnector(configs["salesforce"], store, policy=RetryPolicy(sleep=waits.append),
                                          limiter=RateLimiter(1000.0, sleep=waits.append),
                                          clock=sf_emulator.clock.now),
    }
    hub = Hub.from_config(build_config(store.url, configs), store=store, connectors=connectors)
    executor = ThreadPoolExecutor(max_workers=2)
    metrics = Metrics(store, hub.connectors, FrozenClock(), lambda: {})
    jobs = Jobs(hub, executor, metrics, clock=FrozenClock())
    yield World(hub, jobs, metrics,
                {"quickbooks": qbo_emulator.clock, "xero": xero_emulator.clock, "salesforce": sf_emulator.clock},
                {"quickbooks": lambda: q.on_loop(lambda: qbo_emulator.oauth_stats()["token_calls"]),
                 "xero": lambda: xero_emulator.stats.calls.get("POST /connect/token", 0),
                 "salesforce": lambda: sf_emulator.oauth.counts["token_calls"]})
    executor.shutdown()
    hub.close()
    abort_connections(s)
    for running in (q, x, s):
        running.stop()
    assert waits == []  # nothing was retried or waited for


def test_the_token_job_refreshes_every_oauth_connection_ahead_of_expiry(world: World) -> None:
    assert world.jobs.refresh_tokens() == "checked " + ", ".join(OAUTH)
    assert world.calls() == {name: 1 for name in OAUTH}  # the first access token of each
    first = world.expiry_samples()
    assert set(first) == set(OAUTH)

    assert world.jobs.refresh_tokens() == "checked " + ", ".join(OAUTH)
    assert world.calls() == {name: 1 for name in OAUTH}, "refreshed a token far from its expiry"

    for name in OAUTH:  # each clock to 60 s before its token expires: inside every skew
        clock = world.clocks[name]
        clock.advance(first[name] - clock.now().timestamp() - 60)
    world.jobs.refresh_tokens()
    assert world.calls() == {name: 2 for name in OAUTH}
    second = world.expiry_samples()
    assert all(second[name] > first[name] for name in OAUTH), (first, second)
    with world.hub.store.transaction() as tx:
        assert {name: (tx.connection_state(name) or {}).get("status") for name in OAUTH} == \
            {name: None for name in OAUTH}
