"""``Tx.add_inbox_many``: a delivery's events in one multi-row insert, each (system, event id) once."""

from __future__ import annotations

from state.queues import INBOX_TEXT_LIMITS
from state.store import StateStore


def test_a_delivery_is_stored_once_per_event_id_and_counts_only_new_rows(store: StateStore) -> None:
    events = [(f"evt_{i}", {"id": f"evt_{i}", "n": i}, "customer.updated") for i in range(1200)]
    with store.transaction() as tx:
        assert tx.add_inbox("stripe", "evt_3", {"id": "evt_3", "n": "first"}, "customer.created") is True
        # evt_3 stored before, evt_5 repeated inside the delivery: neither counts, neither overwrites.
        assert tx.add_inbox_many("stripe", [*events, ("evt_5", {"id": "evt_5", "n": "again"}, "x")]) == 1199
        assert tx.add_inbox_many("stripe", events) == 0
        assert tx.add_inbox_many("xero", events[:2]) == 2
        assert tx.add_inbox_many("xero", []) == 0
        stored = {i.event_id: i for i in tx.inbox_items("stripe")}
    assert len(stored) == 1200
    assert stored["evt_3"].payload["n"] == "first" and stored["evt_3"].event_type == "customer.created"
    assert stored["evt_5"].payload["n"] == 5 and stored["evt_5"].status == "pending"


def test_the_inbox_text_limits_are_the_schema_column_sizes() -> None:
    from sqlalchemy import String

    from state import schema

    for name in ("event_id", "event_type", "system"):
        column_type = schema.inbox.c[name].type
        assert isinstance(column_type, String)
        assert INBOX_TEXT_LIMITS[name] == column_type.length
    assert INBOX_TEXT_LIMITS["event_id"] == 255
