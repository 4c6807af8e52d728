"""The contract suite run against the in-memory fake connector."""

from __future__ import annotations

import pytest

from connectors.base import Outbound
from connectors.fake.connector import FakeConnector, FakeSystem
from connectors.retry import RetryPolicy
from tests.contract import ConnectorContract, ContractHarness


class FakeHarness(ContractHarness):
    entity_type = "customer"

    def __init__(self) -> None:
        self.remote = FakeSystem(page_size=10)
        self._waits: list[float] = []
        self.connector = FakeConnector(self.remote, policy=RetryPolicy(sleep=self._waits.append))

    def seed(self, count: int) -> list[str]:
        return [self.remote.put("customer", {"name": f"Seeded {i}", "email": f"s{i}@example.com"})
                for i in range(count)]

    def modify(self, external_id: str) -> None:
        data = self.remote.live("customer")[external_id]
        self.remote.put("customer", {**data, "name": data["name"] + " (renamed)"}, external_id)

    def delete(self, external_id: str) -> None:
        self.remote.remove("customer", external_id)

    def outbound(self, hub_id: str) -> Outbound:
        return Outbound("customer", hub_id, {"name": "Hub Customer", "email": "hub@example.com"},
                        idempotency_key=f"key-{hub_id}")

    def count_marked(self, hub_id: str) -> int:
        return sum(1 for d in self.remote.live("customer").values() if d.get("hub_id") == hub_id)

    def fail_next_write_after_apply(self) -> None:
        self.remote.apply_then_fail_remaining = 1

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        self.remote.rate_limit_remaining = count
        self.remote.rate_limit_retry_after = retry_after

    def waits(self) -> list[float]:
        return self._waits


class TestFakeConnectorContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> ContractHarness:
        return FakeHarness()
