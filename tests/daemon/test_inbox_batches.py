"""How an inbox claim's Stripe records are split into transactions: an object read once for
several events is stored once; a deletion and a snapshot of one object stay in their order, in
separate batches; references (customers) come before what names them within a batch. And a
page's references are read with the page, not one by one."""

from __future__ import annotations

from sqlalchemy import event

from connectors.base import Record
from sync.engine import SyncSummary
from sync.scheduler import distinct_batches
from tests.daemon.conftest import Env


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


def test_a_page_of_stripe_invoices_reads_its_customers_links_in_one_statement(env: Env) -> None:
    """References (each invoice's customer) are prefetched with the page: no single link read
    per reference while the page is stored."""
    created = env.stripe_emulator.seed_objects({
        "customers": [{"ref": f"c{i}", "name": f"Ref {i}", "email": f"ref{i}@example.com"} for i in range(20)],
        "products": [{"ref": "p", "name": "P"}],
        "prices": [{"ref": "one", "product": "@p", "currency": "usd", "unit_amount": 500}],
        "invoices": [{"customer": f"@c{i}", "currency": "usd", "status": "open", "items": [{"price": "@one"}]}
                     for i in range(20)]})["created"]
    engine, summary = env.hub.engine, SyncSummary()
    engine.pull("stripe", "customer", summary, None)
    single_link_reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if "FROM links" in statement and "external_id = " in statement:
            single_link_reads.append(statement)

    event.listen(env.store.engine, "before_cursor_execute", note)
    try:
        engine.pull("stripe", "invoice", summary, None)
    finally:
        event.remove(env.store.engine, "before_cursor_execute", note)
    assert summary.stats("stripe", "invoice").read == len(created["invoices"]) == 20
    assert single_link_reads == []
