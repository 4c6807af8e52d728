"""``Tx.link_many`` (a page's links at once) leaves the same rows and answers the same per record
as ``Tx.link`` one record at a time: new links, an existing link updated, an external record
linked to another hub record, a hub record linked to another external record, and links made by
"another transaction" after the page's links were read (the same link; another hub record's; the
hub record's to another external record). The two ways run side by side in one store, each in
its own system's links. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, insert, select

from mapping.model import Customer
from state import schema as t
from state.errors import LinkConflict
from state.links import LinkWrite
from state.store import StateStore, Tx

Linker = Callable[[Tx, list[LinkWrite]], list[str | None]]


def _id(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def _writes(system: str) -> list[LinkWrite]:
    return [
        LinkWrite(_id(1), system, "customer", "cus_existing", remote_version="7", seen_hash="s1"),
        LinkWrite(_id(2), system, "customer", "cus_taken", seen_hash="s2"),  # linked to hub record 9
        LinkWrite(_id(3), system, "customer", "cus_new3", seen_hash="s3"),  # 3 is linked to cus_old3
        LinkWrite(_id(4), system, "customer", "cus_new4", seen_hash="s4", payload_hash="p4"),
        LinkWrite(_id(5), system, "customer", "cus_new5", remote_version="5"),
        LinkWrite(_id(6), system, "customer", "cus_raced6", seen_hash="s6"),  # the same link, made since
        LinkWrite(_id(7), system, "customer", "cus_raced7", seen_hash="s7"),  # linked to 8 since
        LinkWrite(_id(10), system, "customer", "cus_raced10", seen_hash="s10"),  # 10 linked elsewhere since
    ]


def _run(store: StateStore, system: str, link: Linker) -> tuple[list[str | None], list[tuple[object, ...]], int]:
    """The page's links by ``link``: its answers, what later questions get, the rows, statements."""
    writes = _writes(system)
    with store.transaction() as tx:
        tx.link(_id(1), system, "customer", "cus_existing", seen_hash="old", remote_version="3")
        tx.link(_id(9), system, "customer", "cus_taken")
        tx.link(_id(3), system, "customer", "cus_old3")
    statements: list[str] = []
    with store.transaction() as tx, tx.remembering():
        tx.prefetch_links(system, "customer", [w.external_id for w in writes])
        tx.prefetch_links_of([w.canonical_id for w in writes], "customer", [system])
        now = tx.now
        for canonical, external in ((_id(6), "cus_raced6"), (_id(8), "cus_raced7"), (_id(10), "cus_elsewhere")):
            tx.conn.execute(insert(t.links).values(canonical_id=canonical, system=system, object_type="customer",
                                                   external_id=external, deleted=False, created_at=now,
                                                   updated_at=now))

        def count(*_args: object) -> None:
            statements.append("")

        event.listen(store.engine, "before_cursor_execute", count)
        try:
            answers = link(tx, writes)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        answers += [repr(tx.link_by_external(system, "customer", w.external_id)) for w in writes]
    cols = [c for c in t.links.c if c.name not in ("id", "system")]
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*cols).where(t.links.c.system == system)
                                               .order_by(t.links.c.external_id))]
    return [a.replace(system, "SYSTEM") if a else a for a in answers], rows, len(statements)


def _one_by_one(tx: Tx, writes: list[LinkWrite]) -> list[str | None]:
    answers: list[str | None] = []
    for w in writes:
        try:
            tx.link(w.canonical_id, w.system, w.object_type, w.external_id, remote_version=w.remote_version,
                    seen_hash=w.seen_hash, payload_hash=w.payload_hash)
            answers.append(None)
        except LinkConflict as exc:
            answers.append(f"{exc} [{exc.external_id}]")
    return answers


def _at_once(tx: Tx, writes: list[LinkWrite]) -> list[str | None]:
    return [None if c is None else f"{c} [{c.external_id}]" for c in tx.link_many(writes)]


def test_a_page_linked_at_once_leaves_the_rows_and_answers_of_one_by_one(store: StateStore) -> None:
    with store.transaction() as tx:
        for i in range(1, 12):
            tx.upsert_entity(Customer(_id(i), name=f"Customer {i}", email=f"c{i}@example.com"), "stripe")
    expected, expected_rows, one_by_one = _run(store, "alone", _one_by_one)
    assert expected[:8] == [
        None, f"SYSTEM customer cus_taken is already linked to canonical {_id(9)} [cus_taken]",
        f"SYSTEM customer cus_old3 is already linked to canonical {_id(3)} [cus_old3]", None, None, None,
        f"SYSTEM customer cus_raced7 is already linked to canonical {_id(8)} [cus_raced7]",
        "SYSTEM customer cus_raced10 is already linked to canonical cus_elsewhere [cus_raced10]"]
    answers, rows, at_once = _run(store, "paged", _at_once)
    assert answers == expected
    assert rows == expected_rows
    assert len(rows) == 8  # 3 before, 3 made "since" (cus_raced6 the very link), 2 new: cus_new4, cus_new5
    assert at_once < one_by_one  # the new links in one statement
