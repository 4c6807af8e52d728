"""The shared connector contract, run against the Xero emulator through the real SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from connectors.base import Outbound
from connectors.emulation import RunningEmulator
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import DEFAULT_TENANT, XeroEmulator
from state.store import StateStore
from tests.connectors.xero.conftest import Sleeps, make_connector
from tests.contract import ConnectorContract, ContractHarness


class ContactHarness(ContractHarness):
    entity_type = "customer"

    def __init__(self, running: RunningEmulator, connector: XeroConnector, sleeps: Sleeps) -> None:
        emulator = running.emulator
        assert isinstance(emulator, XeroEmulator)
        self.emu = emulator
        self.connector = connector
        self.sleeps = sleeps

    def seed(self, count: int) -> list[str]:
        batch = uuid.uuid4().hex[:6]
        created = self.emu.seed_now({"Contacts": [{"Name": f"Seeded {batch} {i}"} for i in range(count)]})
        ids: list[str] = created["Contacts"]
        return ids

    def modify(self, external_id: str) -> None:
        record = self.emu.tenant.table("Contacts")[external_id]
        record["Name"] += " (renamed)"
        record["UpdatedDateUTC"] = self.emu.clock.tick(0.001)

    def delete(self, external_id: str) -> None:
        record = self.emu.tenant.table("Contacts")[external_id]
        record["ContactStatus"] = "ARCHIVED"
        record["UpdatedDateUTC"] = self.emu.clock.tick(0.001)

    def outbound(self, hub_id: str) -> Outbound:
        return Outbound("customer", hub_id, {"Name": f"Hub Customer {hub_id}", "EmailAddress": "hub@example.com"},
                        idempotency_key=f"key-{hub_id}")

    def count_marked(self, hub_id: str) -> int:
        return sum(1 for c in self.emu.live("Contacts")
                   if c.get("ContactNumber") == hub_id and c.get("ContactStatus") == "ACTIVE")

    def fail_next_write_after_apply(self) -> None:
        self.emu.set_faults(apply_then_fail=1)

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        self.emu.set_faults(burst_429=count, retry_after=retry_after)

    def waits(self) -> list[float]:
        return self.sleeps.waits

    def advance_clock(self, seconds: float) -> None:
        self.emu.clock.advance(seconds)

    def now(self) -> datetime:
        return self.emu.clock.now()

    def token_calls(self) -> int:
        return self.emu.stats.calls.get("POST /connect/token", 0)

    def signed_delivery(self) -> tuple[dict[str, str], bytes]:
        event = {"resourceUrl": "https://api.xero.com/api.xro/2.0/Contacts/c-1", "resourceId": "c-1",
                 "eventDateUtc": "2026-11-01T12:00:00.000", "eventType": "UPDATE", "eventCategory": "CONTACT",
                 "tenantId": DEFAULT_TENANT, "tenantType": "ORGANISATION"}
        body = json.dumps({"events": [event], "firstEventSequence": 1, "lastEventSequence": 1,
                           "entropy": "CONTRACT"}).encode()
        return {"x-xero-signature": self.emu.sign(body)}, body


class TestXeroContactContract(ConnectorContract):
    @pytest.fixture
    def harness(self, xero_emulator: RunningEmulator, hub_store: StateStore,
                sleeps: Sleeps) -> Iterator[ContractHarness]:
        connector = make_connector(xero_emulator, hub_store, sleeps)
        yield ContactHarness(xero_emulator, connector, sleeps)
        connector.close()
