"""Four emulators, a seeded company and a hub wired to them through the real SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from state.crypto import generate_key
from sync.config import load_config
from sync.demo import QBO_REALM, Emulators, SeedFacts, seed_company, start_emulators
from sync.runtime import Hub


@dataclass
class Company:
    emus: Emulators
    hub: Hub
    facts: SeedFacts
    config_path: Path

    @property
    def stripe(self) -> Any:
        return self.emus.stripe.emulator

    @property
    def qbo(self) -> Any:
        emulator: Any = self.emus.quickbooks.emulator
        return emulator.realm(QBO_REALM)

    @property
    def xero(self) -> Any:
        emulator: Any = self.emus.xero.emulator
        return emulator.tenant

    @property
    def salesforce(self) -> Any:
        return self.emus.salesforce.emulator

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: dict(r.emulator.stats.calls) for name, r in self.emus.all.items()}


def start_company(workdir: Path, *, customers: int, invoices: int, state_url: str | None = None) -> Company:
    """``state_url``: the hub's database (default a SQLite file in ``workdir``)."""
    emus = start_emulators(workdir)
    try:
        facts = seed_company(emus, customers=customers, invoices=invoices)
        config_path = workdir / "hub.toml"
        config_path.write_text(emus.config_toml(state_url or f"sqlite:///{workdir}/hub.db", generate_key()))
        hub = Hub.from_config(load_config(config_path))
        hub.store.init()
    except Exception:
        emus.stop()
        raise
    return Company(emus, hub, facts, config_path)


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    c = start_company(tmp_path, customers=30, invoices=60)
    yield c
    c.hub.close()
    c.emus.stop()
