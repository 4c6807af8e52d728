"""The shared connector contract, run against the Salesforce emulator through simple-salesforce."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from connectors.base import Outbound
from connectors.salesforce.emulator import SalesforceEmulator
from tests.connectors.salesforce.conftest import Built, SfEnv
from tests.contract import ConnectorContract, ContractHarness


class SalesforceHarness(ContractHarness):
    entity_type = "customer"

    def __init__(self, env: SfEnv, built: Built) -> None:
        self.emulator: SalesforceEmulator = env.emulator
        self.built = built
        self.connector = built.connector
        self.counter = 0

    def seed(self, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            self.counter += 1
            ids.append(self.emulator.insert("Account", {"Name": f"Seeded {self.counter}"}))
        return ids

    def modify(self, external_id: str) -> None:
        self.emulator.update("Account", external_id, {"Name": "Renamed in Salesforce"})

    def delete(self, external_id: str) -> None:
        self.emulator.delete("Account", external_id)

    def outbound(self, hub_id: str) -> Outbound:
        return Outbound("customer", hub_id, {"Name": "Hub Customer", "Phone": "+1 555 0100"},
                        idempotency_key=f"key-{hub_id}")

    def count_marked(self, hub_id: str) -> int:
        return sum(1 for r in self.emulator.records("Account") if r["Hub_Id__c"] == hub_id)

    def fail_next_write_after_apply(self) -> None:
        self.emulator.set_faults(apply_then_fail=1)

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        self.emulator.set_faults(burst_429=count, retry_after=retry_after)

    def waits(self) -> list[float]:
        return self.built.policy.waits

    def advance_clock(self, seconds: float) -> None:
        self.emulator.clock.advance(seconds)

    def now(self) -> datetime:
        return self.emulator.clock.now()

    def token_calls(self) -> int:
        return self.emulator.oauth.counts["token_calls"]


class TestSalesforceContract(ConnectorContract):
    @pytest.fixture
    def harness(self, sf: SfEnv, make_connector: Callable[..., Built]) -> ContractHarness:
        return SalesforceHarness(sf, make_connector())
