"""Small helpers shared by the Stripe tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connectors.base import Page, Record
from connectors.stripe.emulator import StripeEmulator
from mapping.model import stable_id


def drain(pages: Iterable[Page]) -> tuple[list[Record], str | None]:
    records: list[Record] = []
    cursor = None
    for page in pages:
        records += page.records
        if page.cursor is not None:
            cursor = page.cursor
    return records, cursor


def calls(emulator: StripeEmulator, key: str) -> int:
    return int(emulator.stats.calls.get(key, 0))


class Refs:
    """A RefResolver over an in-memory link table (what the engine's store provides)."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        for (etype, canonical), ext in self.links.items():
            if etype == entity_type and ext == external_id:
                return canonical
        return stable_id("stripe", entity_type, external_id)

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return self.links.get((entity_type, canonical_id))

    def link(self, entity_type: str, canonical_id: str, external_id: str) -> None:
        self.links[(entity_type, canonical_id)] = external_id


def company(emulator: StripeEmulator) -> dict[str, Any]:
    """A small realistic company, created in-process as if through the API."""
    return emulator.seed_objects({
        "tax_rates": [
            {"ref": "vat", "display_name": "VAT", "percentage": "20", "inclusive": False, "country": "DE"},
            {"ref": "gst", "display_name": "GST", "percentage": "10", "inclusive": True, "country": "AU"},
        ],
        "customers": [
            {"ref": "acme", "name": "Acme Inc", "email": "billing@acme.test"},
            {"ref": "kaisha", "name": "Kaisha KK", "email": "keiri@kaisha.test", "currency": "jpy"},
            {"ref": "gmbh", "name": "Beispiel GmbH", "email": "rechnung@beispiel.test"},
        ],
        "products": [{"ref": "basic", "name": "Basic"}, {"ref": "pro", "name": "Pro"},
                     {"ref": "setup", "name": "Setup"}],
        "prices": [
            {"ref": "basic_m", "product": "@basic", "currency": "usd", "unit_amount": 2000,
             "recurring": {"interval": "month"}},
            {"ref": "pro_m", "product": "@pro", "currency": "usd", "unit_amount": 5000,
             "recurring": {"interval": "month"}},
            {"ref": "setup_jpy", "product": "@setup", "currency": "jpy", "unit_amount": 12345},
            {"ref": "setup_eur", "product": "@setup", "currency": "eur", "unit_amount": 1999},
        ],
    })
