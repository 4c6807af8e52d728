"""``upsert_entities`` stores a page with the same outcomes and state as one call per entity.

Each comparison runs the same batch once as a page and once record by record (what ingest does
for records it merges one at a time), inside transactions that are rolled back, on the same
committed starting state, and compares outcomes, entity rows and history rows. Runs on SQLite
and on the real PostgreSQL (the multi-row INSERT and INSERT … ON CONFLICT DO UPDATE statements).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from mapping.model import Customer, Entity, Invoice, InvoiceLine, Money, content_hash
from state import schema
from state.store import Outcome, StateStore, Tx
from tests.conftest import FrozenClock


class Rollback(Exception):
    pass


def customers(n: int, suffix: str = "", start: int = 0) -> list[Customer]:
    return [Customer(f"00000000-0000-0000-0000-{i:012d}", name=f"Customer {i}{suffix}",
                     email=f"c{i}@example.com") for i in range(start, start + n)]


def snapshot(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entities = [dict(r._mapping) for r in tx.conn.execute(
        select(schema.entities).order_by(schema.entities.c.id))]
    history = [{k: v for k, v in r._mapping.items() if k != "id"} for r in tx.conn.execute(
        select(schema.history).order_by(schema.history.c.id))]
    return entities, history


def run_rolled_back(store: StateStore, batch: Sequence[Entity], as_page: bool,
                    **kwargs: Any) -> tuple[list[Outcome], Any]:
    result: tuple[list[Outcome], Any] | None = None
    with pytest.raises(Rollback):
        with store.transaction() as tx:
            if as_page:
                outcomes = tx.upsert_entities(batch, "stripe", run_id="run-1", **kwargs)
            else:
                outcomes = [tx.upsert_entity(e, "stripe", run_id="run-1", **kwargs) for e in batch]
            result = (outcomes, snapshot(tx))
            raise Rollback
    assert result is not None
    return result


def assert_same(store: StateStore, batch: Sequence[Entity], **kwargs: Any) -> list[Outcome]:
    one_by_one_outcomes, one_by_one_state = run_rolled_back(store, batch, False, **kwargs)
    page_outcomes, page_state = run_rolled_back(store, batch, True, **kwargs)
    assert page_outcomes == one_by_one_outcomes
    assert page_state == one_by_one_state
    return page_outcomes


def invoice(n: int, total: int) -> Invoice:
    line = InvoiceLine(description=f"Plan {n}", quantity=Decimal("1.5"),
                       unit_amount=Money(total, "EUR"), amount=Money(total, "EUR"))
    return Invoice(f"10000000-0000-0000-0000-{n:012d}", customer_id="c", currency="EUR",
                   lines=(line,), subtotal=Money(total, "EUR"), total=Money(total, "EUR"),
                   amount_due=Money(total, "EUR"))


def test_first_load_matches_one_call_per_entity(store: StateStore) -> None:
    batch: list[Entity] = [*customers(30), *(invoice(i, 1000 + i) for i in range(10))]
    assert assert_same(store, batch) == ["added"] * 40
    with store.transaction() as tx:
        tx.upsert_entities(batch, "stripe")
        # The page hashes the data it converted once; it must be the entity's content hash.
        stored = [tx.get_entity(e.id) for e in batch]
        assert [s.content_hash if s else None for s in stored] == [content_hash(e) for e in batch]


def test_mixed_batch_of_unchanged_changed_and_new_matches_one_call_per_entity(
        store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        tx.upsert_entities([*customers(20), *(invoice(i, 500) for i in range(5))], "stripe")
    clock.advance(minutes=5)
    batch: list[Entity] = [*customers(10), *customers(10, " renamed", start=10),
                           *customers(5, start=20), invoice(0, 500), invoice(1, 501)]
    outcomes = assert_same(store, batch)
    assert outcomes.count("unchanged") == 11 and outcomes.count("changed") == 11
    assert outcomes.count("added") == 5


def test_deletes_match_one_call_per_entity(store: StateStore, clock: FrozenClock) -> None:
    with store.transaction() as tx:
        tx.upsert_entities(customers(6), "stripe")
        tx.upsert_entities(customers(2, start=6), "stripe", deleted=True)
    clock.advance(minutes=1)
    # live -> deleted, deleted -> deleted (unchanged), new deleted, changed and deleted
    batch = [*customers(3), *customers(2, start=6), *customers(2, start=20), *customers(1, " x", start=3)]
    outcomes = assert_same(store, batch, deleted=True)
    assert outcomes == ["changed"] * 3 + ["unchanged"] * 2 + ["added"] * 2 + ["changed"]


def test_a_repeated_id_is_applied_in_order_like_successive_calls(store: StateStore) -> None:
    (first,) = customers(1)
    (second,) = customers(1, " v2")
    with store.transaction() as tx:
        tx.upsert_entities([customers(1, start=5)[0]], "stripe")
        assert tx.upsert_entities([first, second, second, first], "stripe") == [
            "added", "changed", "unchanged", "changed"]
        stored = tx.get_entity(first.id)
        history = tx.history_of(first.id)
    assert stored is not None and stored.version == 3 and stored.entity() == first
    assert [h["action"] for h in history] == ["added", "changed", "changed"]
    assert history[1]["changes"] == {"name": ["Customer 0", "Customer 0 v2"]}


def test_a_large_batch_in_one_transaction_writes_only_what_changed(
        store: StateStore, clock: FrozenClock) -> None:
    n = 12_000
    with store.transaction() as tx:
        assert tx.upsert_entities(customers(n), "stripe") == ["added"] * n
    start = clock.advance(hours=1)
    changed = {i for i in range(0, n, 20)}
    batch = [Customer(c.id, name=c.name + " v2" if i in changed else c.name, email=c.email)
             for i, c in enumerate(customers(n))]
    with store.transaction() as tx:
        outcomes = tx.upsert_entities(batch, "stripe")
    assert outcomes.count("changed") == len(changed) == 600 and outcomes.count("unchanged") == n - 600
    with store.transaction() as tx:
        rewritten = tx.conn.execute(select(schema.entities.c.id, schema.entities.c.version)
                                    .where(schema.entities.c.updated_at == start)).all()
        assert tx.count_history() == n + 600
        again = tx.upsert_entities(batch, "stripe")
        assert tx.count_history() == n + 600
    assert len(rewritten) == 600 and {v for _id, v in rewritten} == {2}
    assert again == ["unchanged"] * n


def test_an_empty_batch_does_nothing(store: StateStore) -> None:
    with store.transaction() as tx:
        assert tx.upsert_entities([], "stripe") == []
        assert tx.count_history() == 0
