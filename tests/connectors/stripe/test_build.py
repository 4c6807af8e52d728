"""Building the connector from config, as the engine and the demo do."""

from __future__ import annotations

import json

from connectors.emulation import RunningEmulator
from connectors.registry import build_connector
from connectors.stripe.connector import StripeConnector
from connectors.stripe.emulator import StripeEmulator
from state.store import StateStore
from sync.config import parse_config
from tests.connectors.stripe.conftest import API_KEY, WEBHOOK_SECRET
from tests.connectors.stripe.helpers import Refs, company, drain


def test_config_table_builds_a_working_connector_through_the_registry(
        running_stripe: RunningEmulator, emulator: StripeEmulator, sqlite_store: StateStore) -> None:
    config = parse_config({"connections": {"stripe": {
        "api_key": "${STRIPE_KEY}", "api_base": running_stripe.base_url,
        "webhook_secret": WEBHOOK_SECRET, "rate_limit_per_second": 500, "page_limit": 50}}},
        env={"STRIPE_KEY": API_KEY})
    connector = build_connector(config.connections["stripe"], sqlite_store)
    try:
        assert isinstance(connector, StripeConnector) and connector.name == "stripe"
        assert API_KEY not in repr(connector) and WEBHOOK_SECRET not in repr(connector)
        company(emulator)
        records, _ = drain(connector.fetch_all("customer"))
        assert len(records) == 3
        assert set(connector.entity_types()) == {"customer", "product", "price", "subscription", "invoice",
                                                 "payment", "refund", "credit_note", "payout"}
        keys = connector.natural_keys(records[0])
        assert keys["email"] == records[0].data["email"]
        entity = connector.to_canonical(records[0], Refs())
        assert entity.type == "customer"
    finally:
        connector.close()


def test_invoice_event_records_carry_their_tax_rates(
        emulator: StripeEmulator, connector: StripeConnector) -> None:
    refs = company(emulator)["refs"]
    emulator.seed_objects({"invoices": [{"customer": refs["gmbh"], "currency": "eur", "status": "open",
                                         "default_tax_rates": [refs["vat"]],
                                         "items": [{"amount": 1000, "description": "x"}]}]})
    event = next(e for e in reversed(emulator.events) if e["type"] == "invoice.finalized")
    (record,) = connector.records_for_event(json.loads(json.dumps(event)))
    assert record.data["total_taxes"][0]["tax_rate_details"]["tax_rate"]["display_name"] == "VAT"
