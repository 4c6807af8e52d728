"""What every family of ``Tx`` operations shares: one connection, the store's clock and
dialect, the transaction's memo of lookups, and INSERT … ON CONFLICT DO NOTHING."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Connection, DateTime, any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from state.crypto import Cipher
from state.errors import StateError
from state.records import Link, StoredEntity

# Advisory locks are database-wide; the key carries the schema so hubs kept in different schemas
# of one database (tenants, staging next to production) never hold each other's locks.
_LOCK_KEY = "hashtextextended(current_schema() || '/' || :k, 0)"
XACT_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
TRY_LOCK = text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")
UNLOCK = text(f"SELECT pg_advisory_unlock({_LOCK_KEY})")


def select_all(table: Any, where: str) -> Any:
    """A prebuilt SELECT of every column, named (a migrated table's column order may differ)."""
    names = ", ".join(c.name for c in table.c)
    return text(f"SELECT {names} FROM {table.name} WHERE {where}").columns(*table.c)


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT clauses."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StateError(f"unsupported database {dialect}")  # pragma: no cover - only these two


@cache
def insert_ignoring(dialect: str, table: Any, keys: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, built once per table: its values come as parameters, so
    SQLAlchemy compiles it once instead of once per call (``.values(**row)`` is a new statement
    each time, and compiling it cost more than the insert on a page of records)."""
    return dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys) or None)


@cache
def _insert_ignoring_returning(dialect: str, table: Any, keys: tuple[str, ...]) -> Any:
    """``insert_ignoring`` … RETURNING the first key column (or the primary key), built once: a
    new ``.returning()`` per call is a new statement whose cache key is worked out each time.
    RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING."""
    returned = table.c[keys[0]] if keys else next(iter(table.primary_key.columns))
    return insert_ignoring(dialect, table, keys).returning(returned)


@cache
def _pg_insert_sql(table: Any, names: tuple[str, ...], tail: str) -> tuple[str, tuple[str, ...]]:
    """INSERT … SELECT FROM json_populate_recordset(the table's row type, one JSON document of
    the rows) … ``tail`` (its ON CONFLICT clause), and the columns given as timestamps."""
    _check_defaults(table, names)
    columns = ", ".join(names)
    sql = (f"INSERT INTO {table.name} ({columns}) SELECT {columns}"
           f" FROM json_populate_recordset(NULL::{table.name}, %s::json) {tail}")
    return sql, tuple(name for name in names if isinstance(table.c[name].type, DateTime))


def pg_insert_rows(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], tail: str = "") -> None:
    """PostgreSQL: insert ``rows`` (dicts with the same keys) in one statement with one
    parameter, the rows as a JSON document the server reads into the table's row type. An
    executemany sends (and psycopg prepares and dumps) a query per row, a multi-row VALUES a
    placeholder per value; a page's history, outbox, natural-key and placeholder rows are
    several hundred. A JSON column's value is its slice of the document: the same text
    ``json.dumps`` gives it alone, as SQLAlchemy's JSON type stores it with the engine
    ``state.store`` makes (no ``json_serializer`` of its own; tests/state/test_fast_inserts.py
    compares the stored text)."""
    sql, stamps = _pg_insert_sql(table, tuple(rows[0]), tail)
    if stamps:
        rows = [{**row, **{name: row[name] and row[name].isoformat() for name in stamps}} for row in rows]
    conn.exec_driver_sql(sql, (json.dumps(rows),))


@cache
def _sqlite_insert_sql(dialect: Any, table: Any, names: tuple[str, ...], tail: str) -> tuple[str, tuple[Any, ...]]:
    """INSERT … VALUES (?, …) … ``tail``, and each column's bind processor (what SQLAlchemy
    applies to a value of its type: a timestamp's text, a JSON value's encoding)."""
    _check_defaults(table, names)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
           f" {tail}")
    return sql, tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)


def sqlite_insert_rows(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], tail: str = "") -> None:
    """SQLite: insert ``rows`` (dicts with the same keys) in one executemany of plain tuples,
    each value put through its column type's bind processor as SQLAlchemy would: the same
    stored values without SQLAlchemy's per-row parameter handling, which cost more than the
    inserts (a page of 100 invoices is ~1,300 rows)."""
    names = tuple(rows[0])
    sql, processors = _sqlite_insert_sql(conn.dialect, table, names, tail)
    columns = [[row[name] for row in rows] if process is None else [process(row[name]) for row in rows]
               for name, process in zip(names, processors, strict=True)]
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _check_defaults(table: Any, names: Sequence[str]) -> None:
    """The fast inserts are SQL: SQLAlchemy's Python-side column defaults would not be applied."""
    missing = [c.name for c in table.c if c.name not in names and c.default is not None]
    if missing:
        raise StateError(f"rows for {table.name} must give {', '.join(missing)}")


class StoreSettings(Protocol):
    """What a transaction reads from its ``StateStore`` (a protocol: the store imports this)."""

    clock: Callable[[], datetime]
    cipher: Cipher | None

    @property
    def is_postgres(self) -> bool: ...


@dataclass
class _Memo:
    """Link and entity lookups already answered in this transaction (see ``Tx.remembering``)."""

    by_external: dict[tuple[str, str, str], Link | None]  # (system, type, external id)
    by_canonical: dict[tuple[str, str, str], Link | None]  # (canonical id, system, type)
    entities: dict[str, StoredEntity | None]

    def keep(self, link: Link) -> None:
        self.by_external[(link.system, link.object_type, link.external_id)] = link
        self.by_canonical[(link.canonical_id, link.system, link.object_type)] = link


class TxBase:
    """One transaction's connection and memo; ``state.store.Tx`` adds the table families."""

    def __init__(self, conn: Connection, store: StoreSettings) -> None:
        self.conn = conn
        self.store = store
        self._memo: _Memo | None = None
        # (connection, entity type) -> whether any sightings exist (state.sightings): asked once
        # per transaction, so a first load with none costs no lookup per planned write
        self._sighted: dict[tuple[str, str], bool] = {}
        # idempotency key -> outbox row, while ``outbox_batch`` keeps a page's writes to insert at once
        self._outbox_waiting: dict[str, dict[str, Any]] | None = None
        # hub id -> (the entity object last stored, its content hash): the plan asks the hash of
        # the very object just stored, and working it out again cost a tenth of a first load
        self._stored_digests: dict[str, tuple[Any, str]] = {}

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Inside, ``canonical_for``, ``link_for`` and ``get_entity`` answer from what this
        transaction already read (``prefetch_*`` read a page's worth in one statement each);
        this Tx's own link and entity writes drop what they change. The engine ingests a page
        inside this: a record then costs its writes, not one lookup per question asked of it."""
        outer = self._memo
        self._memo = outer or _Memo({}, {}, {})
        try:
            yield
        finally:
            self._memo = outer

    def _among(self, column: Any, values: Sequence[Any]) -> Any:
        """``column IN (values)``; on PostgreSQL ``column = ANY(one array parameter)``: the
        statement's text is then the same for any number of values, so it is compiled, converted
        by psycopg and planned by the server once (prepared after a few uses), where an IN list
        is a new statement per length, with a placeholder per value to rewrite (a page's reads
        are ~30 statements, a third of a PostgreSQL re-sync's time)."""
        if self.conn.dialect.name != "postgresql":
            return column.in_(values)
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))

    @property
    def now(self) -> datetime:
        return self.store.clock()

    def _insert_ignore(self, table: Any, values: dict[str, Any], keys: Sequence[str]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING (on ``keys``; with none, on any unique rule); True
        when a row was inserted."""
        stmt = _insert_ignoring_returning(self.conn.dialect.name, table, tuple(keys))
        return self.conn.execute(stmt, values).first() is not None

    def _insert_ignore_many(self, table: Any, rows: Sequence[dict[str, Any]], keys: tuple[str, ...] = ()) -> None:
        """``_insert_ignore`` of many rows (same columns) in one statement, on ``keys``' unique
        rule (none: any): see ``_insert_rows``."""
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO NOTHING" if keys else "ON CONFLICT DO NOTHING"
        self._insert_rows(table, rows, conflict)

    def _insert_rows(self, table: Any, rows: Sequence[dict[str, Any]], tail: str = "") -> None:
        """Many rows (same columns) of ``table``, with ``tail`` (an ON CONFLICT clause, as SQL):
        one executemany of tuples on SQLite (``sqlite_insert_rows``), one JSON document on
        PostgreSQL (``pg_insert_rows``), the store's two databases. Not one statement with many
        VALUES rows: SQLAlchemy compiles those afresh per row count."""
        if not rows:
            return
        if self.conn.dialect.name == "sqlite":
            sqlite_insert_rows(self.conn, table, rows, tail)
        else:
            pg_insert_rows(self.conn, table, rows, tail)
