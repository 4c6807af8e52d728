"""The shared connector contract, run against the QuickBooks emulator through the real SDKs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from connectors.base import Outbound
from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_VERIFIER_TOKEN, sign
from mapping.model import Customer
from mapping.quickbooks import customer_from_canonical, marker
from tests.connectors.quickbooks.conftest import QboEnv
from tests.contract import ConnectorContract, ContractHarness


class QuickBooksHarness(ContractHarness):
    entity_type = "customer"

    def __init__(self, env: QboEnv) -> None:
        self.env = env
        self.connector = env.connector()

    def seed(self, count: int) -> list[str]:
        tag = uuid.uuid4().hex[:8]
        result = self.env.seed(Customer=[{"DisplayName": f"Seeded {tag} {i}",
                                          "PrimaryEmailAddr": {"Address": f"s{i}-{tag}@example.com"}}
                                         for i in range(count)])
        return list(result["Customer"])

    def modify(self, external_id: str) -> None:
        self.env.on_loop(lambda: self.env.emulator.edit(self.env.realm, "Customer", external_id,
                                                        {"CompanyName": "Renamed Ltd"}))

    def delete(self, external_id: str) -> None:
        self.env.on_loop(lambda: self.env.emulator.remove(self.env.realm, "Customer", external_id))

    def outbound(self, hub_id: str) -> Outbound:
        payload = customer_from_canonical(Customer(id=hub_id, name=f"Hub {hub_id}", email=f"{hub_id}@example.com"))
        return Outbound("customer", hub_id, payload, idempotency_key=f"key-{hub_id}")

    def count_marked(self, hub_id: str) -> int:
        return sum(1 for c in self.env.table("Customer").values()
                   if c.get("Notes") == marker(hub_id) and c.get("Active", True))

    def fail_next_write_after_apply(self) -> None:
        self.env.emulator.set_faults(apply_then_fail=1)

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        self.env.emulator.set_faults(burst_429=count, retry_after=retry_after)

    def waits(self) -> list[float]:
        return self.env.waits

    def advance_clock(self, seconds: float) -> None:
        self.env.on_loop(lambda: self.env.emulator.clock.advance(seconds))

    def now(self) -> datetime:
        return self.env.on_loop(self.env.emulator.clock.now)

    def token_calls(self) -> int:
        return self.env.on_loop(lambda: self.env.emulator.oauth_stats()["token_calls"])

    def signed_delivery(self) -> tuple[dict[str, str], bytes]:
        body = json.dumps({"eventNotifications": [{"realmId": DEFAULT_REALM, "dataChangeEvent": {"entities": [
            {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-11-01T12:00:00Z"}]}}]}).encode()
        return {"intuit-signature": sign(body, DEFAULT_VERIFIER_TOKEN)}, body


class TestQuickBooksContract(ConnectorContract):
    @pytest.fixture
    def harness(self, qbo_env: QboEnv) -> ContractHarness:
        return QuickBooksHarness(qbo_env)


def test_registry_builds_the_connector_from_a_config_table(qbo_env: QboEnv) -> None:
    from connectors.base import Connector
    from connectors.registry import build_connector
    from sync.config import parse_config

    base = qbo_env.running.base_url
    config = parse_config({"connections": {"qbo_us": {
        "system": "quickbooks", "realm_id": "9130350000000001", "client_id": "test-client-id",
        "client_secret": "test-client-secret", "refresh_token": "RT-initial", "api_base": base,
        "discovery_url": f"{base}/.well-known/openid_configuration",
        "token_url": f"{base}/oauth2/v1/tokens/bearer"}}}, env={})
    connector = build_connector(config.connections["qbo_us"], qbo_env.store)
    try:
        assert isinstance(connector, Connector)
        assert connector.lookup("customer", "nobody") is None  # discovery + refresh + query all worked
        assert qbo_env.emulator.oauth_stats()["refreshes"] == 1
    finally:
        connector.close()
