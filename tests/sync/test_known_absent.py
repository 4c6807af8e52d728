"""A reference to a record the hub does not have is answered without asking the database.

``LinkResolver.external_id`` (first contact maps each new record back to learn what it holds:
an invoice names its customer) answers None at once when the transaction has read that there is
no such hub record (``Tx.known_absent``): ``links.canonical_id`` references ``entities.id``, so
no link can name it. Once the record is stored, or when it exists, the link is asked as before.
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from mapping.model import Customer
from state.store import StateStore
from sync.context import LinkResolver

ABSENT = "00000000-0000-0000-0000-00000000000a"
PRESENT = "00000000-0000-0000-0000-00000000000b"


@contextmanager
def counting(store: StateStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def test_a_hub_record_known_absent_needs_no_link_read(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.upsert_entity(Customer(PRESENT, name="Present"), "stripe")
        tx.link(PRESENT, "stripe", "customer", "cus_present")
    with store.transaction() as tx, tx.remembering():
        tx.prefetch_entities([ABSENT, PRESENT])
        refs = LinkResolver(tx, "stripe")
        assert tx.known_absent(ABSENT) and not tx.known_absent(PRESENT)
        with counting(store) as seen:
            assert refs.external_id("customer", ABSENT) is None
        assert seen == []
        with counting(store) as seen:
            assert refs.external_id("customer", PRESENT) == "cus_present"
        assert len(seen) == 1  # a present record's link is still asked
        tx.upsert_entity(Customer(ABSENT, name="Stored now"), "stripe")
        tx.link(ABSENT, "stripe", "customer", "cus_new")
        assert not tx.known_absent(ABSENT)  # stored since: asked again, and found
        assert refs.external_id("customer", ABSENT) == "cus_new"


def test_outside_a_remembering_transaction_nothing_is_known_absent(store: StateStore) -> None:
    with store.transaction() as tx:
        assert tx.get_entity(ABSENT) is None
        assert not tx.known_absent(ABSENT)  # no memo: every question goes to the database
