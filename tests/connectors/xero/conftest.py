"""Fixtures: a Xero emulator served on loopback and a connector built from config against it.

Time is pinned: the hub's clock is the emulator's clock, retry/rate-limit sleeps are recorded
instead of slept.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.settings import ConnectionConfig
from connectors.xero.connector import XeroConnector, build
from connectors.xero.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_TENANT,
    DEFAULT_WEBHOOK_KEY,
    XeroEmulator,
)
from state.store import StateStore
from tests.conftest import make_store
from tests.connectors.xero.raw_http import module_xero  # noqa: F401  (fixture 'running': the module's own emulator)


@dataclass
class Sleeps:
    """Injected sleep: records every wait, never sleeps."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def xero_emulator() -> Iterator[RunningEmulator]:
    running = RunningEmulator(XeroEmulator(EmulatorClock())).start()
    yield running
    running.stop()


@pytest.fixture
def emu(xero_emulator: RunningEmulator) -> XeroEmulator:
    emulator = xero_emulator.emulator
    assert isinstance(emulator, XeroEmulator)
    return emulator


def xero_config(base_url: str, name: str = "xero", **overrides: Any) -> ConnectionConfig:
    settings: dict[str, Any] = {
        "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "tenant_id": DEFAULT_TENANT,
        "refresh_token": DEFAULT_REFRESH_TOKEN, "api_base": base_url, "identity_base": base_url,
        "token_url": base_url + "/connect/token", "webhook_key": DEFAULT_WEBHOOK_KEY,
        "rate_limit_per_minute": 60.0, "concurrency": 5, "batch_size": 50, "timeout_seconds": 10.0,
        "max_attempts": 6, "sales_account_code": "200", "payment_account_code": "090",
        "overlap_seconds": 300, "page_size": 1000, "tax_types": None}
    settings.update(overrides)
    return ConnectionConfig(name, "xero", settings)


@pytest.fixture
def hub_store(tmp_path: Path) -> Iterator[StateStore]:
    store = make_store(f"sqlite:///{tmp_path}/hub.db")
    yield store
    store.dispose()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_connector(running: RunningEmulator, store: StateStore, sleeps: Sleeps, **overrides: Any
                   ) -> XeroConnector:
    emulator = running.emulator
    connector = build(xero_config(running.base_url, **overrides), store, sleep=sleeps,
                      now=emulator.clock.now, monotonic=lambda: emulator.clock.now().timestamp())
    connector.client.limiter.sleep = lambda _s: None  # local bucket waits are not under test here
    return connector


@pytest.fixture
def connector(xero_emulator: RunningEmulator, hub_store: StateStore, sleeps: Sleeps) -> Iterator[XeroConnector]:
    conn = make_connector(xero_emulator, hub_store, sleeps)
    yield conn
    conn.close()


class Refs:
    """A RefResolver over a dict, standing in for the engine's crosswalk."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}

    def link(self, entity_type: str, canonical_id: str, external_id: str) -> None:
        self.links[(entity_type, canonical_id)] = external_id

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        for (etype, cid), ext in self.links.items():
            if etype == entity_type and ext == external_id:
                return cid
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero/{entity_type}/{external_id}"))

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return self.links.get((entity_type, canonical_id))


@pytest.fixture
def refs() -> Refs:
    return Refs()
