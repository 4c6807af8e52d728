"""Fixtures: one TLS Salesforce emulator per session (reset for every test) and connectors
pointed at it through the real simple-salesforce, with injected sleep and a pinned clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.emulation import EmulatorClock, Faults, RunningEmulator, Stats
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
from state.store import StateStore

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class SfEnv:
    """The running emulator plus what a connector needs to reach it."""

    emulator: SalesforceEmulator
    running: RunningEmulator
    cert: Path

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {  # unset keys: ConnectionConfig fills the declared defaults
            "instance_url": self.base_url, "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": DEFAULT_REFRESH_TOKEN,
            "token_url": f"{self.base_url}/services/oauth2/token", "ca_bundle": str(self.cert),
        }
        values.update(overrides)
        return values


@dataclass
class Built:
    connector: SalesforceConnector
    policy: RetryPolicy
    store: StateStore
    sleeps: list[float] = field(default_factory=list)


@pytest.fixture(scope="session")
def sf_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SfEnv]:
    ctx, cert = server_context(tmp_path_factory.mktemp("sf-tls"))
    emulator = SalesforceEmulator(EmulatorClock(START))
    running = RunningEmulator(emulator, ssl_context=ctx).start()
    yield SfEnv(emulator, running, cert)
    abort_connections(running)
    running.stop()


@pytest.fixture
def sf(sf_running: SfEnv) -> SfEnv:
    """The session's emulator, emptied and with its clock back at START."""
    emulator = sf_running.emulator
    with emulator.state_lock:
        emulator.clock.now_value = START
        emulator.reset_state()
        emulator.faults = Faults()
        emulator.stats = Stats()
    return sf_running


@pytest.fixture
def make_connector(sf: SfEnv, sqlite_store: StateStore) -> Iterator[Callable[..., Built]]:
    built: list[Built] = []

    def make(name: str = "salesforce", **overrides: Any) -> Built:
        sleeps: list[float] = []
        policy = RetryPolicy(sleep=sleeps.append, max_attempts=int(overrides.pop("max_attempts", 6)))
        limiter = RateLimiter(1000.0, sleep=sleeps.append)
        config = ConnectionConfig(name, "salesforce", sf.settings(**overrides))
        connector = SalesforceConnector(config, sqlite_store, policy=policy, limiter=limiter,
                                        clock=sf.emulator.clock.now)
        item = Built(connector, policy, sqlite_store, sleeps)
        built.append(item)
        return item

    yield make
    for item in built:
        item.connector.close()


@pytest.fixture
def connector(make_connector: Callable[..., Built]) -> SalesforceConnector:
    return make_connector().connector


@pytest.fixture
def sdk(sf: SfEnv) -> Iterator[Any]:
    """A bare simple-salesforce client on the emulator (for wire-fidelity tests)."""
    from decimal import Decimal

    import requests
    from simple_salesforce.api import Salesforce

    session = requests.Session()
    session.verify = str(sf.cert)
    session.trust_env = False
    yield Salesforce(instance_url=sf.base_url, session_id=sf.emulator.issue_session(), version="59.0",
                     session=session, parse_float=Decimal)
    session.close()


def drain(pages: Any) -> tuple[list[Any], str | None]:
    """All records of a page iterator and the last cursor."""
    records: list[Any] = []
    cursor = None
    for page in pages:
        records.extend(page.records)
        if page.cursor is not None:
            cursor = page.cursor
    return records, cursor


def query_calls(emulator: SalesforceEmulator) -> int:
    return sum(n for key, n in emulator.stats.calls.items()
               if key.startswith("GET query") or key.startswith("GET queryAll"))
