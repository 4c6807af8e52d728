"""The shared connector contract, run against the Stripe emulator through the real SDK."""

from __future__ import annotations

import json

import pytest
import stripe

from connectors.base import Outbound
from connectors.emulation import RunningEmulator
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator, sign_payload
from tests.connectors.stripe.conftest import WEBHOOK_SECRET, Waits, seed
from tests.contract import ConnectorContract, ContractHarness


class StripeHarness(ContractHarness):
    entity_type = "customer"

    def __init__(self, running: RunningEmulator, emulator: StripeEmulator, connector: StripeConnector,
                 waits: Waits, raw: stripe.StripeClient) -> None:
        self.running = running
        self.emulator = emulator
        self.connector = connector
        self._waits = waits
        self.raw = raw
        self.n = 0

    def seed(self, count: int) -> list[str]:
        start, self.n = self.n, self.n + count
        body = {"customers": [{"name": f"Seeded {i}", "email": f"s{i}@example.com"}
                              for i in range(start, start + count)]}
        return list(seed(self.running, body)["created"]["customers"])

    def modify(self, external_id: str) -> None:
        self.raw.v1.customers.update(external_id, params={"name": "Renamed"})

    def delete(self, external_id: str) -> None:
        self.raw.v1.customers.delete(external_id)

    def outbound(self, hub_id: str) -> Outbound:
        return Outbound("customer", hub_id, {"name": "Hub Customer", "email": "hub@example.com"},
                        idempotency_key=f"key-{hub_id}")

    def count_marked(self, hub_id: str) -> int:
        return sum(1 for c in self.emulator.live("customer") if c["metadata"].get("hub_id") == hub_id)

    def fail_next_write_after_apply(self) -> None:
        self.emulator.set_faults(apply_then_fail=1)

    def rate_limit_next(self, count: int, retry_after: float) -> None:
        self.emulator.set_faults(burst_429=count, retry_after=retry_after)

    def waits(self) -> list[float]:
        return self._waits.waits

    def advance_clock(self, seconds: float) -> None:
        self.emulator.clock.advance(seconds)

    def signed_delivery(self) -> tuple[dict[str, str], bytes]:
        body = json.dumps({"id": "evt_contract_1", "object": "event", "type": "customer.updated",
                           "data": {"object": {"id": "cus_contract", "object": "customer"}}}).encode()
        moment = int(self.emulator.clock.now().timestamp())
        return {"Stripe-Signature": sign_payload(WEBHOOK_SECRET, body, moment)}, body


class TestStripeContract(ConnectorContract):
    @pytest.fixture
    def harness(self, running_stripe: RunningEmulator, emulator: StripeEmulator,
                connector: StripeConnector, waits: Waits, raw_client: stripe.StripeClient) -> ContractHarness:
        return StripeHarness(running_stripe, emulator, connector, waits, raw_client)
