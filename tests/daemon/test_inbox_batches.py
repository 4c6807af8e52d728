"""How an inbox claim's Stripe records are split into transactions: an object read once for
several events is stored once; a deletion and a snapshot of one object stay in their order, in
separate batches; references (customers) come before what names them within a batch."""

from __future__ import annotations

from connectors.base import Record
from sync.scheduler import distinct_batches


def _ids(batches: list[list[Record]]) -> list[list[str]]:
    return [[f"{r.entity_type}:{r.external_id}{' (deleted)' if r.deleted else ''}" for r in b] for b in batches]


def test_one_read_named_by_several_events_is_stored_once_in_entity_order() -> None:
    invoice = Record("invoice", "in_1", {"id": "in_1"})
    customer = Record("customer", "cus_1", {"id": "cus_1"})
    other = Record("invoice", "in_2", {"id": "in_2"})
    batches = distinct_batches([invoice, invoice, customer, other, invoice])
    assert _ids(batches) == [["customer:cus_1", "invoice:in_1", "invoice:in_2"]]


def test_a_deletion_and_a_snapshot_of_one_object_stay_in_order_in_separate_batches() -> None:
    snapshot = Record("customer", "cus_1", {"id": "cus_1", "name": "Before"})
    deletion = Record("customer", "cus_1", {"id": "cus_1"}, deleted=True)
    other = Record("customer", "cus_2", {"id": "cus_2"})
    batches = distinct_batches([snapshot, other, deletion, other])
    assert _ids(batches) == [["customer:cus_1", "customer:cus_2"], ["customer:cus_1 (deleted)", "customer:cus_2"]]
    assert distinct_batches([]) == []
