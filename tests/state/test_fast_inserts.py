"""The fast row inserts (``state.txbase``: PostgreSQL's one JSON document, ``pg_insert_rows``;
SQLite's executemany of tuples, ``sqlite_insert_rows``) store exactly what SQLAlchemy's executemany
of the same rows stores: the same columns, the same JSON text, NULLs (a column of NULLs only
too), timestamps, and the same ON CONFLICT answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Integer, insert, select

from state import schema as t
from state.errors import StateError
from state.store import StateStore
from state.txbase import insert_ignoring, pg_insert_rows, sqlite_insert_rows
from tests.conftest import fresh_pg_schema, make_store

AT = datetime(2026, 11, 1, 12, 0, 30, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def two_pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateStore, StateStore]]:
    """Two fresh stores of one database kind: one written by SQLAlchemy's executemany, one by
    the fast insert (``fast``)."""
    if request.param == "sqlite":
        a, b = make_store(f"sqlite:///{tmp_path}/a.db"), make_store(f"sqlite:///{tmp_path}/b.db")
        yield a, b
    else:
        with fresh_pg_schema(request.getfixturevalue("pg_url")) as a_url, \
                fresh_pg_schema(request.getfixturevalue("pg_url")) as b_url:
            a, b = make_store(a_url), make_store(b_url)
            yield a, b
    a.dispose()
    b.dispose()


def fast(conn: Connection, table: Any, rows: list[dict[str, Any]], tail: str = "") -> None:
    if conn.dialect.name == "postgresql":
        pg_insert_rows(conn, table, rows, tail)
    else:
        sqlite_insert_rows(conn, table, rows, tail)


def _rows(store: StateStore, table: Any, *order: Any) -> list[dict[str, Any]]:
    """Every row, without a serial id (the two stores number theirs alike, but need not)."""
    columns = [c for c in table.c if c.name != "id" or not isinstance(c.type, Integer)]
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*columns).order_by(*order))]


def _entity(i: int, payload: Any) -> dict[str, Any]:
    return {"id": f"00000000-0000-0000-0000-{i:012d}", "type": "invoice", "payload": payload,
            "content_hash": f"{i:064d}", "version": i, "deleted": i % 2 == 0, "source": None,
            "updated_at": AT}


def test_rows_are_stored_as_executemany_stores_them(two_pg: tuple[StateStore, StateStore]) -> None:
    by_executemany, by_arrays = two_pg
    entities = [_entity(1, {"name": "Zoë ×\u2028 \"q\" \\", "lines": [{"a": None}], "n": 10**15}),
                _entity(2, {}), _entity(3, [1, "x", None])]
    history = [{"canonical_id": e["id"], "entity_type": "invoice", "system": "stripe", "action": "added",
                "changes": {"name": [None, "Zoë"]}, "content_hash": None, "run_id": None, "at": AT}
               for e in entities]
    outbox = [{"canonical_id": e["id"], "entity_type": "invoice", "target": "xero", "operation": "upsert",
               "idempotency_key": f"key-{k}", "content_hash": "h", "status": "pending", "attempts": k,
               "next_attempt_at": AT, "external_id": None if k else "INV-1", "created_at": AT, "updated_at": AT}
              for k, e in enumerate(entities)]
    keys = [{"entity_id": e["id"], "key": "number", "entity_type": "invoice", "digest": "d" * 64}
            for e in entities]
    for store in two_pg:
        with store.transaction() as tx:
            if store is by_executemany:
                for table, rows in ((t.entities, entities), (t.history, history), (t.outbox, outbox),
                                    (t.natural_keys, keys)):
                    tx.conn.execute(insert(table), rows)
            else:
                for table, rows in ((t.entities, entities), (t.history, history), (t.outbox, outbox),
                                    (t.natural_keys, keys)):
                    fast(tx.conn, table, rows)
    for table, order in ((t.entities, t.entities.c.id), (t.history, t.history.c.canonical_id),
                         (t.outbox, t.outbox.c.idempotency_key), (t.natural_keys, t.natural_keys.c.entity_id)):
        assert _rows(by_arrays, table, order) == _rows(by_executemany, table, order)
    texts = "SELECT CAST(payload AS TEXT) FROM entities ORDER BY id"  # the JSON text, not only its value
    with by_arrays.engine.connect() as conn:
        fast_texts = conn.exec_driver_sql(texts).scalars().all()
    with by_executemany.engine.connect() as conn:
        assert fast_texts == conn.exec_driver_sql(texts).scalars().all()


def test_on_conflict_answers_as_executemany(two_pg: tuple[StateStore, StateStore]) -> None:
    """DO NOTHING keeps the first row of a key, in the statement and against stored rows."""
    by_executemany, by_arrays = two_pg
    first = {"placeholder_id": "p1", "entity_id": "e1", "connection": "stripe", "object_type": "customer",
             "external_id": "cus_1"}
    again = [{**first, "external_id": "cus_other"}, {**first, "entity_id": "e2", "external_id": "cus_2"},
             {**first, "entity_id": "e2", "external_id": "cus_3"}]
    for store in two_pg:
        with store.transaction() as tx:
            tx.conn.execute(insert(t.placeholder_refs), [first])
            if store is by_executemany:
                tx.conn.execute(insert_ignoring(tx.conn.dialect.name, t.placeholder_refs, ()), again)
            else:
                fast(tx.conn, t.placeholder_refs, again, "ON CONFLICT DO NOTHING")
    order = (t.placeholder_refs.c.placeholder_id, t.placeholder_refs.c.entity_id)
    assert _rows(by_arrays, t.placeholder_refs, *order) == _rows(by_executemany, t.placeholder_refs, *order)
    assert [r["external_id"] for r in _rows(by_arrays, t.placeholder_refs, *order)] == ["cus_1", "cus_2"]


def test_a_column_with_a_python_default_must_be_given(two_pg: tuple[StateStore, StateStore]) -> None:
    """The statement is SQL: a default SQLAlchemy would fill in is refused, not left NULL."""
    _, store = two_pg
    row = _entity(1, {})
    del row["version"]  # entities.version has default=1 in the schema
    with pytest.raises(StateError, match="version"), store.transaction() as tx:
        fast(tx.conn, t.entities, [row])
