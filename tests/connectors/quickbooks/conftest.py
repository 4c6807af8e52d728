"""Fixtures: a QuickBooks emulator on loopback and a connector built against it.

The connector's clock is the emulator's (pinned) clock and its sleep records waits instead of
sleeping, so no test waits on wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.quickbooks.connector import QuickBooksConnector, build
from connectors.quickbooks.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_VERIFIER_TOKEN,
    QuickBooksEmulator,
    Realm,
)
from connectors.retry import RetryPolicy
from connectors.settings import ConnectionConfig
from state.store import StateStore
from tests.conftest import make_store

T = TypeVar("T")


def qbo_config(base_url: str, name: str = "quickbooks", **overrides: Any) -> ConnectionConfig:
    settings: dict[str, Any] = {
        "realm_id": DEFAULT_REALM, "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": DEFAULT_REFRESH_TOKEN, "api_base": base_url,
        "discovery_url": f"{base_url}/.well-known/openid_configuration",
        "token_url": f"{base_url}/oauth2/v1/tokens/bearer",
        "webhook_verifier_token": DEFAULT_VERIFIER_TOKEN, "timeout_seconds": 10.0,
    }
    settings.update(overrides)
    return ConnectionConfig(name, "quickbooks", settings)  # unset keys: their declared defaults


@dataclass
class QboEnv:
    running: RunningEmulator
    store: StateStore
    waits: list[float] = field(default_factory=list)
    connectors: list[QuickBooksConnector] = field(default_factory=list)

    @property
    def emulator(self) -> QuickBooksEmulator:
        emulator = self.running.emulator
        assert isinstance(emulator, QuickBooksEmulator)
        return emulator

    @property
    def realm(self) -> Realm:
        return self.emulator.realm(DEFAULT_REALM)

    def on_loop(self, fn: Callable[[], T]) -> T:
        return self.running.on_loop(fn)

    def seed(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.running.call(self.emulator.seed(body))
        return result

    def connector(self, **options: Any) -> QuickBooksConnector:
        overrides = options.pop("config", {})
        options.setdefault("policy", RetryPolicy(sleep=self.waits.append))
        options.setdefault("sleep", self.waits.append)
        options.setdefault("now", self.emulator.clock.now)
        connector = build(qbo_config(self.running.base_url, **overrides), self.store, **options)
        self.connectors.append(connector)
        return connector

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.realm.table(entity)

    def calls(self, suffix: str) -> int:
        return sum(n for key, n in self.emulator.stats.calls.items() if key.endswith(suffix))


@pytest.fixture
def qbo_env(tmp_path: Path) -> Iterator[QboEnv]:
    store = make_store(f"sqlite:///{tmp_path}/hub.db")
    with RunningEmulator(QuickBooksEmulator(EmulatorClock())) as running:  # pinned: tests set the time
        env = QboEnv(running, store)
        yield env
        for connector in env.connectors:
            connector.close()
    store.dispose()
