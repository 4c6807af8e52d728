"""Finding records by what a person knows (issue 21, item 2, the console's search), on SQLite and
PostgreSQL: an email or number exactly (any case), any system's id, the hub id or its first
characters, a part of a name or number; deleted records are not found by a part of their name,
and LIKE's wildcards in the query are taken literally."""

from __future__ import annotations

import uuid

from mapping.model import ENTITY_TYPES, Customer, Invoice
from mapping.money import Money
from state.search import search_records
from state.store import StateStore


def _ids(store: StateStore, q: str) -> list[tuple[str, str]]:
    with store.transaction() as tx:
        return [(h.canonical_id, h.matched) for h in search_records(
            tx, q, systems=["stripe", "quickbooks"], object_types=list(ENTITY_TYPES))]


def test_search_by_email_number_ids_and_parts(store: StateStore) -> None:
    acme, gone, bill = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with store.transaction() as tx:
        tx.upsert_entities([Customer(acme, name="Acme 100% Ltd", email="ap@acme.test")], "stripe")
        tx.upsert_entities([Customer(gone, name="Acme Gone")], "stripe", deleted=True)
        tx.upsert_entities([Invoice(bill, customer_id=acme, number="INV-0031", currency="USD",
                                    total=Money(9900, "USD"))], "stripe")
        tx.link(acme, "stripe", "customer", "cus_A1")
        tx.link(bill, "quickbooks", "invoice", "00000031-0002")
    assert _ids(store, " AP@Acme.TEST ") == [(acme, "email")]
    assert _ids(store, "inv-0031") == [(bill, "number")]
    assert _ids(store, "cus_A1") == [(acme, "stripe id")]
    assert _ids(store, "00000031-0002") == [(bill, "quickbooks id")]
    assert _ids(store, acme) == [(acme, "hub id")]
    assert _ids(store, acme[:8]) == [(acme, "hub id")]
    assert _ids(store, "0031") == [(bill, "name, email or number contains")]
    assert _ids(store, "acme") == [(acme, "name, email or number contains")]  # not the deleted one
    assert _ids(store, "100%") == [(acme, "name, email or number contains")]
    assert _ids(store, "1_0") == []  # "_" is a character here, not LIKE's wildcard
    assert _ids(store, "   ") == []
