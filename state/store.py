"""The one place that reads and writes hub state.

Usage::

    store = StateStore("sqlite:///hub.db", cipher=Cipher(key))
    store.init()                                   # alembic upgrade head (idempotent)
    with store.transaction() as tx:                # one transaction: all or nothing
        outcome = tx.upsert_entity(customer, source="stripe")
        tx.link(customer.id, "stripe", "customer", "cus_123")
        tx.set_cursor("stripe", "customer", "evt_…")

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout; each
transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing on a
lock upgrade. PostgreSQL claims queue rows with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from mapping.keys import key_digest, natural_digests
from mapping.model import (
    VOLATILE_FIELDS,
    Entity,
    canonical_json,
    changed_fields,
    content_hash,
    from_data,
    to_data,
)
from state import schema as t
from state.crypto import Cipher
from state.errors import CredentialsError, DatabaseUnavailable, LinkConflict, NotFound, StateError

Outcome = Literal["added", "changed", "unchanged"]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCAL_LOCKS: dict[tuple[str, str], threading.Lock] = {}
# Advisory locks are database-wide; the key carries the schema so hubs kept in different schemas
# of one database (tenants, staging next to production) never hold each other's locks.
_LOCK_KEY = "hashtextextended(current_schema() || '/' || :k, 0)"
_XACT_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_TRY_LOCK = text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")
_UNLOCK = text(f"SELECT pg_advisory_unlock({_LOCK_KEY})")

# The hot lookups, prebuilt once: the sync asks them for every record it reads or writes, and
# building SQLAlchemy expressions per call costs more than the queries themselves.
def _select(table: Any, where: str) -> Any:
    """A prebuilt SELECT of every column, named (a migrated table's column order may differ)."""
    names = ", ".join(c.name for c in table.c)
    return text(f"SELECT {names} FROM {table.name} WHERE {where}").columns(*table.c)


_ENTITY_BY_ID = _select(t.entities, "id = :id")
_LINK_BY_EXTERNAL = _select(t.links, "system = :system AND object_type = :object_type "
                                     "AND external_id = :external_id")
_LINK_BY_CANONICAL = _select(t.links, "canonical_id = :canonical_id AND system = :system "
                                      "AND object_type = :object_type")
_CURSOR = text("SELECT value FROM cursors WHERE connection = :connection AND stream = :stream")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC, so re-attach the zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    """Engine for a database URL, with the SQLite settings the hub relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (savepoints work).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


# --------------------------------------------------------------------------- row views


@dataclass(frozen=True, slots=True)
class Link:
    canonical_id: str
    system: str
    object_type: str
    external_id: str
    last_pushed_hash: str | None
    last_seen_hash: str | None
    remote_version: str | None
    deleted: bool
    last_payload_hash: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEntity:
    id: str
    type: str
    data: dict[str, Any]
    content_hash: str
    version: int
    deleted: bool
    updated_at: datetime
    source: str | None = None  # the connection (or "hub") that last changed it

    def entity(self) -> Entity:
        return from_data(self.type, self.data)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    canonical_id: str
    entity_type: str
    target: str
    operation: str
    idempotency_key: str
    content_hash: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    external_id: str | None


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    system: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    fingerprint: str
    kind: str
    entity: str
    system: str
    canonical_id: str | None
    external_ids: list[str]
    fields: dict[str, Any]
    detail: str
    status: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The finding as in DESIGN.md's report JSON."""
        return {
            "id": self.id, "fingerprint": self.fingerprint, "kind": self.kind,
            "entity": self.entity, "system": self.system, "canonical_id": self.canonical_id,
            "external_ids": self.external_ids, "fields": self.fields, "detail": self.detail,
            "status": self.status, "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


def _link(row: Row[Any]) -> Link:
    m = row._mapping
    return Link(m["canonical_id"], m["system"], m["object_type"], m["external_id"],
                m["last_pushed_hash"], m["last_seen_hash"], m["remote_version"], bool(m["deleted"]),
                m["last_payload_hash"])


def _outbox(row: Row[Any]) -> OutboxItem:
    m = row._mapping
    return OutboxItem(m["id"], m["canonical_id"], m["entity_type"], m["target"], m["operation"],
                      m["idempotency_key"], m["content_hash"], m["status"], m["attempts"],
                      _aware(m["next_attempt_at"]) or utcnow(), m["last_error"], m["external_id"])


def _finding(row: Row[Any]) -> Finding:
    m = row._mapping
    return Finding(m["id"], m["fingerprint"], m["kind"], m["entity"], m["system"],
                   m["canonical_id"], list(m["external_ids"]), dict(m["fields"]), m["detail"],
                   m["status"], _aware(m["first_seen"]) or utcnow(),
                   _aware(m["last_seen"]) or utcnow(), _aware(m["resolved_at"]))


def _stored(row: Row[Any]) -> StoredEntity:
    m = row._mapping
    return StoredEntity(m["id"], m["type"], dict(m["payload"]), m["content_hash"], m["version"],
                        bool(m["deleted"]), _aware(m["updated_at"]) or utcnow(), m["source"])


# --------------------------------------------------------------------------- the store


class StateStore:
    def __init__(
        self,
        url: str = "sqlite:///hub.db",
        *,
        cipher: Cipher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.cipher = cipher
        self.clock = clock

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def init(self) -> str:
        """Upgrade the schema to the newest migration; a no-op when already there."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            raise DatabaseUnavailable(f"cannot open the database at {self.safe_url}: {exc.orig}") from exc
        return str(version)

    @property
    def safe_url(self) -> str:
        """The URL without a password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One database transaction; commits on success, rolls back on any exception."""
        try:
            with self.engine.begin() as conn:
                yield Tx(conn, self)
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database error on {self.safe_url}: {exc.orig}") from exc
        except IntegrityError as exc:
            raise StateError(f"a uniqueness rule was violated: {exc.orig}") from exc

    def snapshot(self, path: Path) -> StateStore:
        """A consistent copy of an SQLite database as a new store (SQLite's online backup)."""
        import sqlite3

        if self.engine.dialect.name != "sqlite":
            raise StateError("snapshots are only for SQLite stores")
        raw = self.engine.raw_connection()
        try:
            target = sqlite3.connect(str(path))
            try:
                raw.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        finally:
            raw.close()
        return StateStore(f"sqlite:///{path}", cipher=self.cipher, clock=self.clock)

    @contextmanager
    def stream_lock(self, *parts: str) -> Iterator[bool]:
        """Hold the job lock for e.g. (connection, stream); yields False when another holds it.

        PostgreSQL: a session advisory lock on a dedicated connection, so several ``hub run``
        processes share the work with the database as the only coordinator, and a process that
        dies loses its locks with its connection. SQLite (one process): a process-local lock.
        """
        key = "/".join(parts)
        if not self.is_postgres:
            lock = _LOCAL_LOCKS.setdefault((self.url, key), threading.Lock())
            acquired = lock.acquire(blocking=False)
            try:
                yield acquired
            finally:
                if acquired:
                    lock.release()
            return
        with self.engine.connect() as conn:
            acquired = bool(conn.execute(_TRY_LOCK, {"k": key}).scalar())
            conn.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    conn.execute(_UNLOCK, {"k": key})
                    conn.commit()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


_ENTITY_COLUMNS = ("id", "type", "payload", "content_hash", "version", "deleted", "source", "updated_at")
_HISTORY_COLUMNS = ("canonical_id", "entity_type", "system", "action", "changes", "content_hash", "run_id",
                    "at")


def _bulk_digest(data: dict[str, Any]) -> str:
    """``content_hash`` from an entity's ``to_data`` (saves serialising the entity twice)."""
    hashable = {k: v for k, v in data.items() if k not in VOLATILE_FIELDS}
    return hashlib.sha256(canonical_json(hashable).encode("ascii")).hexdigest()


def _added_changes(data: dict[str, Any]) -> dict[str, list[Any]]:
    """``changed_fields(None, data)``, without comparing every field with nothing."""
    return {k: [None, data[k]] for k in sorted(data) if k not in VOLATILE_FIELDS and data[k] is not None}


@dataclass
class _Memo:
    """Link and entity lookups already answered in this transaction (see ``Tx.remembering``)."""

    by_external: dict[tuple[str, str, str], Link | None]  # (system, type, external id)
    by_canonical: dict[tuple[str, str, str], Link | None]  # (canonical id, system, type)
    entities: dict[str, StoredEntity | None]

    def keep(self, link: Link) -> None:
        self.by_external[(link.system, link.object_type, link.external_id)] = link
        self.by_canonical[(link.canonical_id, link.system, link.object_type)] = link


class Tx:
    """Operations inside one transaction. Obtain with ``StateStore.transaction()``."""

    def __init__(self, conn: Connection, store: StateStore) -> None:
        self.conn = conn
        self.store = store
        self._memo: _Memo | None = None

    # ------------------------------------------------------------------ remembered lookups

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

    def prefetch_links(self, system: str, object_type: str, external_ids: Iterable[str]) -> None:
        """Remember the links (or their absence) of these external records, and of the
        canonical records they link to."""
        memo = self._memo
        if memo is None:
            return
        wanted = [e for e in dict.fromkeys(external_ids) if (system, object_type, e) not in memo.by_external]
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            for e in chunk:
                memo.by_external[(system, object_type, e)] = None
            for row in self.conn.execute(select(t.links).where(
                    t.links.c.system == system, t.links.c.object_type == object_type,
                    t.links.c.external_id.in_(chunk))):
                memo.keep(_link(row))

    def prefetch_links_of(self, canonical_ids: Iterable[str], object_type: str, systems: Sequence[str]) -> None:
        """Remember the links (or their absence) of these canonical records in ``systems``."""
        memo = self._memo
        if memo is None or not systems:
            return
        wanted = [c for c in dict.fromkeys(canonical_ids)
                  if any((c, s, object_type) not in memo.by_canonical for s in systems)]
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            for c in chunk:
                for s in systems:
                    memo.by_canonical.setdefault((c, s, object_type), None)
            for row in self.conn.execute(select(t.links).where(
                    t.links.c.canonical_id.in_(chunk), t.links.c.system.in_(list(systems)),
                    t.links.c.object_type == object_type)):
                memo.keep(_link(row))

    def prefetch_entities(self, canonical_ids: Iterable[str]) -> None:
        memo = self._memo
        if memo is None:
            return
        wanted = [c for c in dict.fromkeys(canonical_ids) if c not in memo.entities]
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            for c in chunk:
                memo.entities[c] = None
            for row in self.conn.execute(select(t.entities).where(t.entities.c.id.in_(chunk))):
                memo.entities[row.id] = _stored(row)

    def _forget_links(self) -> None:
        if self._memo is not None:
            self._memo.by_external.clear()
            self._memo.by_canonical.clear()

    @property
    def now(self) -> datetime:
        return self.store.clock()

    def _insert_ignore(self, table: Any, values: dict[str, Any], keys: Sequence[str]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING (on ``keys``; with none, on any unique rule); True
        when a row was inserted."""
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing(
                index_elements=list(keys) or None)
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys) or None)
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise StateError(f"unsupported database {dialect}")
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING.
        returned = table.c[keys[0]] if keys else next(iter(table.primary_key.columns))
        return self.conn.execute(stmt.returning(returned)).first() is not None

    # ------------------------------------------------------------------ entities

    def get_entity(self, canonical_id: str) -> StoredEntity | None:
        if self._memo is not None and canonical_id in self._memo.entities:
            return self._memo.entities[canonical_id]
        row = self.conn.execute(_ENTITY_BY_ID, {"id": canonical_id}).first()
        found = _stored(row) if row else None
        if self._memo is not None:
            self._memo.entities[canonical_id] = found
        return found

    def entities_of(self, entity_type: str, *, include_deleted: bool = False) -> Iterator[StoredEntity]:
        query = select(t.entities).where(t.entities.c.type == entity_type).order_by(t.entities.c.id)
        if not include_deleted:
            query = query.where(t.entities.c.deleted.is_(False))
        for row in self.conn.execute(query):
            yield _stored(row)

    def upsert_entity(
        self, entity: Entity, source: str, *, run_id: str | None = None, deleted: bool = False
    ) -> Outcome:
        return self.upsert_entities([entity], source, run_id=run_id, deleted=deleted)[0]

    def upsert_entities(
        self, batch: Sequence[Entity], source: str, *, run_id: str | None = None, deleted: bool = False
    ) -> list[Outcome]:
        """Store canonical entities; returns added / changed / unchanged per entity, in order.

        Unchanged content (same hash) writes nothing, not even history.
        """
        if not batch:
            return []
        ids = list({e.id for e in batch})
        existing: dict[str, tuple[str, dict[str, Any], int, bool]] = {}
        if self._memo is not None:
            # Read again, not taken from the memo: another process may have written these since
            # the page was prefetched, and the version and history must follow from what is stored.
            for cid in ids:
                self._memo.entities.pop(cid, None)
        for chunk_start in range(0, len(ids), 900):
            chunk = ids[chunk_start : chunk_start + 900]
            for row in self.conn.execute(
                select(t.entities.c.id, t.entities.c.content_hash, t.entities.c.payload,
                       t.entities.c.version, t.entities.c.deleted).where(t.entities.c.id.in_(chunk))
            ):
                existing[row.id] = (row.content_hash, dict(row.payload), row.version, bool(row.deleted))
        now = self.now
        outcomes: list[Outcome] = []
        inserts: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for entity in batch:
            data = to_data(entity)
            digest = content_hash(entity)
            current = existing.get(entity.id)
            if current is None:
                inserts.append({"id": entity.id, "type": entity.type, "payload": data,
                                "content_hash": digest, "version": 1, "deleted": deleted,
                                "source": source, "updated_at": now})
                existing[entity.id] = (digest, data, 1, deleted)
                history.append(self._history_row(entity.id, entity.type, source,
                                                 "deleted" if deleted else "added",
                                                 changed_fields(None, data), digest, run_id))
                outcomes.append("added")
                continue
            old_hash, old_data, version, was_deleted = current
            if old_hash == digest and was_deleted == deleted:
                outcomes.append("unchanged")
                continue
            self.conn.execute(
                update(t.entities).where(t.entities.c.id == entity.id).values(
                    payload=data, content_hash=digest, version=version + 1, deleted=deleted,
                    source=source, updated_at=now)
            )
            existing[entity.id] = (digest, data, version + 1, deleted)
            action = "deleted" if deleted and not was_deleted else "changed"
            history.append(self._history_row(entity.id, entity.type, source, action,
                                             changed_fields(old_data, data), digest, run_id))
            outcomes.append("changed")
        if inserts:
            self.conn.execute(insert(t.entities), inserts)
        if history:
            self.conn.execute(insert(t.history), history)
        self._index_natural_keys({
            entity.id: (entity.type, existing[entity.id][1], existing[entity.id][3])
            for entity, outcome in zip(batch, outcomes, strict=True) if outcome != "unchanged"},
            new={row["id"] for row in inserts})
        return outcomes

    def _index_natural_keys(self, written: dict[str, tuple[str, dict[str, Any], bool]], *,
                            new: set[str]) -> None:
        """Keep ``natural_keys`` in step with entities just written: id -> (type, data, deleted);
        ``new`` ones (just inserted) have no keys to replace."""
        if not written:
            return
        ids = [cid for cid in written if cid not in new]
        for start in range(0, len(ids), 900):
            self.conn.execute(delete(t.natural_keys).where(t.natural_keys.c.entity_id.in_(ids[start:start + 900])))
        rows = [{"entity_id": cid, "key": key, "entity_type": etype, "digest": digest}
                for cid, (etype, data, deleted) in written.items() if not deleted
                for key, digest in natural_digests(data).items()]
        for start in range(0, len(rows), 5000):
            self.conn.execute(insert(t.natural_keys), rows[start:start + 5000])

    def drop_natural_keys(self, entity_id: str) -> None:
        """An erased entity is never matched again by email, number or name."""
        self.conn.execute(delete(t.natural_keys).where(t.natural_keys.c.entity_id == entity_id))

    # ------------------------------------------------------------------ placeholders

    def note_placeholders(self, entity_id: str, placeholders: Mapping[str, tuple[str, str, str]]) -> None:
        """``entity_id`` names records not linked yet: placeholder id -> (connection, type,
        external id) of the record it stands for (idempotent)."""
        for placeholder_id, (connection, object_type, external_id) in sorted(placeholders.items()):
            self._insert_ignore(t.placeholder_refs, {
                "placeholder_id": placeholder_id, "entity_id": entity_id, "connection": connection,
                "object_type": object_type, "external_id": external_id}, ())

    def placeholder_record(self, placeholder_id: str) -> tuple[str, str, str] | None:
        """(connection, type, external id) of the record a held placeholder stands for."""
        row = self.conn.execute(select(t.placeholder_refs.c.connection, t.placeholder_refs.c.object_type,
                                       t.placeholder_refs.c.external_id)
                                .where(t.placeholder_refs.c.placeholder_id == placeholder_id).limit(1)).first()
        return None if row is None else (row.connection, row.object_type, row.external_id)

    def take_placeholder_holders(self, placeholder_ids: Iterable[str]) -> dict[str, list[str]]:
        """The hub records holding each of these placeholders (which are now linked), and forget
        them, in one statement: DELETE … RETURNING hands back exactly the rows it removed, so a
        holder noted by another process between a read and a delete is never dropped unseen."""
        wanted = sorted(set(placeholder_ids))
        refs = t.placeholder_refs
        holders: dict[str, list[str]] = defaultdict(list)
        for start in range(0, len(wanted), 900):
            taken = self.conn.execute(delete(refs).where(refs.c.placeholder_id.in_(wanted[start:start + 900]))
                                      .returning(refs.c.placeholder_id, refs.c.entity_id))
            for placeholder_id, entity_id in sorted(taken):
                holders[placeholder_id].append(entity_id)
        return dict(holders)

    def entities_with_key(self, entity_type: str, key: str, value: str | None) -> list[str]:
        """Ids of the live entities of a type whose natural ``key`` matches ``value`` (in its
        normal form), in id order."""
        return self.entities_with_keys(entity_type, key, [value]).get(value or "", [])

    def entities_with_keys(self, entity_type: str, key: str,
                           values: Iterable[str | None]) -> dict[str, list[str]]:
        """``entities_with_key`` for many values in one statement per 900: value -> ids in id
        order (a value nothing has is left out). A page of first contacts asks this once."""
        by_digest: dict[str, list[str]] = defaultdict(list)
        for value in dict.fromkeys(values):
            digest = key_digest(value)
            if digest is not None and value is not None:
                by_digest[digest].append(value)
        found: dict[str, list[str]] = {}
        digests = list(by_digest)
        nk = t.natural_keys
        for start in range(0, len(digests), 900):
            rows = self.conn.execute(select(nk.c.digest, nk.c.entity_id).where(
                nk.c.entity_type == entity_type, nk.c.key == key,
                nk.c.digest.in_(digests[start:start + 900])).order_by(nk.c.entity_id))
            for digest, entity_id in rows:
                for value in by_digest[digest]:
                    found.setdefault(value, []).append(str(entity_id))
        return found

    def upsert_entities_bulk(
        self, batch: Sequence[Entity], source: str, *, run_id: str | None = None, deleted: bool = False
    ) -> list[Outcome]:
        """``upsert_entities`` for large loads: the same outcomes, rows and history, fewer trips.

        Each entity is converted once (``to_data``) and hashed from that; only the rows to write
        are serialised. Existing rows are read by hash (old payloads only for rows that changed);
        new rows, changed rows and history are written with one executemany each. On PostgreSQL the rows to write are COPYed into a temporary staging table and
        merged with one ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE content_hash IS DISTINCT
        FROM``, and history is COPYed. Payloads are stored as canonical JSON (sorted keys, no
        spaces): the same JSON values ``upsert_entities`` stores. An id repeated in the batch is
        applied in order, as successive ``upsert_entities`` calls would.
        """
        if self._memo is not None:
            for entity in batch:
                self._memo.entities.pop(entity.id, None)
        if not batch:
            return []
        prepared = [(entity, data, _bulk_digest(data)) for entity in batch for data in (to_data(entity),)]
        ids = list(dict.fromkeys(e.id for e, *_rest in prepared))
        # id -> [content_hash, payload (None until read), version, deleted]
        state: dict[str, list[Any]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for row in self.conn.execute(
                select(t.entities.c.id, t.entities.c.content_hash, t.entities.c.version,
                       t.entities.c.deleted).where(t.entities.c.id.in_(chunk))
            ):
                state[row.id] = [row.content_hash, None, row.version, bool(row.deleted)]
        existing = set(state)
        wanted = list(dict.fromkeys(
            e.id for e, _data, digest in prepared
            if e.id in existing and (state[e.id][0], state[e.id][3]) != (digest, deleted)))
        for start in range(0, len(wanted), 900):
            for old in self.conn.execute(select(t.entities.c.id, t.entities.c.payload)
                                         .where(t.entities.c.id.in_(wanted[start : start + 900]))):
                state[old.id][1] = dict(old.payload)
        outcomes: list[Outcome] = []
        history: list[tuple[str, str, str, str, str]] = []  # id, type, action, changes, hash
        written: dict[str, str] = {}  # id -> type
        for entity, data, digest in prepared:
            current = state.get(entity.id)
            if current is None:
                state[entity.id] = [digest, data, 1, deleted]
                history.append((entity.id, entity.type, "deleted" if deleted else "added",
                                canonical_json(_added_changes(data)), digest))
                outcomes.append("added")
                written[entity.id] = entity.type
                continue
            old_hash, old_data, version, was_deleted = current
            if old_hash == digest and was_deleted == deleted:
                outcomes.append("unchanged")
                continue
            state[entity.id] = [digest, data, version + 1, deleted]
            action = "deleted" if deleted and not was_deleted else "changed"
            history.append((entity.id, entity.type, action,
                            canonical_json(changed_fields(old_data, data)), digest))
            outcomes.append("changed")
            written[entity.id] = entity.type
        now = self.now
        rows = [(cid, etype, canonical_json(state[cid][1]), state[cid][0], state[cid][2])
                for cid, etype in written.items()]
        self._index_natural_keys({cid: (etype, state[cid][1], bool(state[cid][3])) for cid, etype in written.items()},
                                 new=set(written) - existing)
        if self.store.is_postgres:
            self._merge_entities_pg(rows, history, source, deleted, run_id, now)
            return outcomes
        dialect = self.conn.dialect
        ts = t.entities.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
        flag = t.entities.c.deleted.type.dialect_impl(dialect).bind_processor(dialect)
        at = ts(now) if ts else now
        gone = flag(deleted) if flag else deleted
        inserts = [(cid, etype, payload, digest, version, gone, source, at)
                   for cid, etype, payload, digest, version in rows if cid not in existing]
        updates = [(etype, payload, digest, version, gone, source, at, cid)
                   for cid, etype, payload, digest, version in rows if cid in existing]
        if inserts:
            self.conn.exec_driver_sql(
                f"INSERT INTO entities ({', '.join(_ENTITY_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                inserts)
        if updates:
            self.conn.exec_driver_sql(
                "UPDATE entities SET type = ?, payload = ?, content_hash = ?, version = ?, deleted = ?,"
                " source = ?, updated_at = ? WHERE id = ?", updates)
        if history:
            self.conn.exec_driver_sql(
                f"INSERT INTO history ({', '.join(_HISTORY_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(cid, etype, source, action, changes, digest, run_id, at)
                 for cid, etype, action, changes, digest in history])
        return outcomes

    def _merge_entities_pg(self, rows: list[tuple[str, str, str, str, int]],
                           history: list[tuple[str, str, str, str, str]], source: str,
                           deleted: bool, run_id: str | None, now: datetime) -> None:
        """COPY into a staging table, merge into ``entities``; COPY history (PostgreSQL)."""
        raw: Any = self.conn.connection.driver_connection
        cols = ", ".join(_ENTITY_COLUMNS)
        with raw.cursor() as cur:
            if rows:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS hub_bulk_entities (id varchar(36), type varchar(32),"
                    " payload json, content_hash varchar(64), version integer, deleted boolean,"
                    " source varchar(64), updated_at timestamptz) ON COMMIT DELETE ROWS")
                cur.execute("TRUNCATE hub_bulk_entities")
                with cur.copy(f"COPY hub_bulk_entities ({cols}) FROM STDIN") as copy:
                    for cid, etype, payload, digest, version in rows:
                        copy.write_row((cid, etype, payload, digest, version, deleted, source, now))
                cur.execute(
                    f"INSERT INTO entities ({cols}) SELECT {cols} FROM hub_bulk_entities"
                    " ON CONFLICT (id) DO UPDATE SET type = excluded.type, payload = excluded.payload,"
                    " content_hash = excluded.content_hash, version = excluded.version,"
                    " deleted = excluded.deleted, source = excluded.source,"
                    " updated_at = excluded.updated_at"
                    " WHERE entities.content_hash IS DISTINCT FROM excluded.content_hash"
                    " OR entities.deleted IS DISTINCT FROM excluded.deleted")
            if history:
                with cur.copy(f"COPY history ({', '.join(_HISTORY_COLUMNS)}) FROM STDIN") as copy:
                    for cid, etype, action, changes, digest in history:
                        copy.write_row((cid, etype, source, action, changes, digest, run_id, now))

    def _history_row(self, canonical_id: str, entity_type: str, system: str, action: str,
                     changes: dict[str, Any], digest: str | None, run_id: str | None) -> dict[str, Any]:
        return {"canonical_id": canonical_id, "entity_type": entity_type, "system": system,
                "action": action, "changes": changes, "content_hash": digest, "run_id": run_id,
                "at": self.now}

    def add_history(self, canonical_id: str, entity_type: str, system: str, action: str,
                    changes: dict[str, Any], run_id: str | None = None) -> None:
        self.conn.execute(insert(t.history).values(
            **self._history_row(canonical_id, entity_type, system, action, changes, None, run_id)))

    def history_of(self, canonical_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.history).where(t.history.c.canonical_id == canonical_id).order_by(t.history.c.id))
        return [dict(r._mapping) for r in rows]

    def count_history(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.history)).scalar_one())

    # ------------------------------------------------------------------ links

    def link(
        self,
        canonical_id: str,
        system: str,
        object_type: str,
        external_id: str,
        *,
        remote_version: str | None = None,
        seen_hash: str | None = None,
        pushed_hash: str | None = None,
        payload_hash: str | None = None,
        replace: bool = False,
    ) -> None:
        """Link a canonical entity to an external record (idempotent).

        Raises ``LinkConflict`` when the external record is linked to another canonical entity,
        or (unless ``replace``) when this canonical entity already links to another record in
        the same system.
        """
        key = and_(t.links.c.system == system, t.links.c.object_type == object_type,
                   t.links.c.external_id == external_id)
        current = self._link_by_external(system, object_type, external_id)
        if current is not None and current.canonical_id != canonical_id:
            raise LinkConflict(system, object_type, external_id, current.canonical_id)
        changes: dict[str, Any] = {"updated_at": self.now, "deleted": False}
        if remote_version is not None:
            changes["remote_version"] = remote_version
        if seen_hash is not None:
            changes["last_seen_hash"] = seen_hash
        if pushed_hash is not None:
            changes["last_pushed_hash"] = pushed_hash
        if payload_hash is not None:
            changes["last_payload_hash"] = payload_hash
        mine = and_(t.links.c.canonical_id == canonical_id, t.links.c.system == system,
                    t.links.c.object_type == object_type)
        other = None if current is not None else self.link_for(canonical_id, system, object_type)
        if other is not None and other.external_id == external_id:
            current, other = other, None  # made by another process since this transaction looked
        if current is not None:
            self.conn.execute(update(t.links).where(key).values(**changes))
            self._drop_link(current)
            return
        if other is not None:
            if not replace:
                raise LinkConflict(system, object_type, other.external_id, canonical_id)
            self.conn.execute(delete(t.links).where(mine))
            self._drop_link(other)
        values = {"canonical_id": canonical_id, "system": system, "object_type": object_type,
                  "external_id": external_id, "created_at": self.now, **changes}
        inserted = self._insert_ignore(t.links, values, ())
        if self._memo is not None:
            self._memo.by_external.pop((system, object_type, external_id), None)
            self._memo.by_canonical.pop((canonical_id, system, object_type), None)
        if not inserted:
            winner = self.conn.execute(select(t.links.c.canonical_id).where(key)).scalar()
            if winner == canonical_id:
                # Another process made this very link since this transaction looked (a webhook
                # and a change feed can carry one record at once): it is the same link.
                self.conn.execute(update(t.links).where(key).values(**changes))
                return
            # Lost a race with another process: report who won, as a domain error.
            if winner is None:
                winner = self.conn.execute(select(t.links.c.external_id).where(mine)).scalar()
            raise LinkConflict(system, object_type, external_id, str(winner))

    def _link_by_external(self, system: str, object_type: str, external_id: str) -> Link | None:
        return self._link_where("by_external", _LINK_BY_EXTERNAL, {
            "system": system, "object_type": object_type, "external_id": external_id})

    def _link_where(self, index: str, query: Any, params: dict[str, str]) -> Link | None:
        """The link with these values of a unique key (in the order of the memo's ``index``),
        answered from and kept in the memo while ``remembering``."""
        key = tuple(params.values())
        remembered: dict[Any, Link | None] | None = getattr(self._memo, index) if self._memo else None
        if remembered is not None and key in remembered:
            return remembered[key]
        row = self.conn.execute(query, params).first()
        found = _link(row) if row else None
        if remembered is not None:
            remembered[key] = found
        return found

    def _drop_link(self, link: Link) -> None:
        if self._memo is not None:
            self._memo.by_external.pop((link.system, link.object_type, link.external_id), None)
            self._memo.by_canonical.pop((link.canonical_id, link.system, link.object_type), None)

    def unlink(self, canonical_id: str, system: str, object_type: str) -> None:
        self._forget_links()
        self.conn.execute(delete(t.links).where(
            t.links.c.canonical_id == canonical_id, t.links.c.system == system,
            t.links.c.object_type == object_type))

    def mark_link_deleted(self, system: str, object_type: str, external_id: str) -> None:
        self._forget_links()
        self.conn.execute(update(t.links).where(
            t.links.c.system == system, t.links.c.object_type == object_type,
            t.links.c.external_id == external_id).values(deleted=True, updated_at=self.now))

    def canonical_for(self, system: str, object_type: str, external_id: str) -> str | None:
        link = self._link_by_external(system, object_type, external_id)
        return str(link.canonical_id) if link else None

    def link_for(self, canonical_id: str, system: str, object_type: str) -> Link | None:
        return self._link_where("by_canonical", _LINK_BY_CANONICAL, {
            "canonical_id": canonical_id, "system": system, "object_type": object_type})

    def links_of(self, canonical_id: str) -> list[Link]:
        rows = self.conn.execute(select(t.links).where(t.links.c.canonical_id == canonical_id)
                                 .order_by(t.links.c.system))
        return [_link(r) for r in rows]

    def links_in(self, system: str, object_type: str) -> Iterator[Link]:
        rows = self.conn.execute(select(t.links).where(
            t.links.c.system == system, t.links.c.object_type == object_type)
            .order_by(t.links.c.external_id))
        for row in rows:
            yield _link(row)

    # ------------------------------------------------------------------ cursors

    def get_cursor(self, connection: str, stream: str) -> str | None:
        value = self.conn.execute(_CURSOR, {"connection": connection, "stream": stream}).scalar()
        return None if value is None else str(value)

    def set_cursor(self, connection: str, stream: str, value: str | None) -> None:
        if not self._insert_ignore(t.cursors, {"connection": connection, "stream": stream,
                                               "value": value, "last_success": self.now},
                                   ("connection", "stream")):
            self.conn.execute(update(t.cursors).where(
                t.cursors.c.connection == connection, t.cursors.c.stream == stream)
                .values(value=value, last_success=self.now))

    def cursors(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(t.cursors).order_by(t.cursors.c.connection, t.cursors.c.stream))
        return [{**r._mapping, "last_success": _aware(r.last_success)} for r in rows]

    # ------------------------------------------------------------------ inbox

    def add_inbox(self, system: str, event_id: str, payload: dict[str, Any], event_type: str = "") -> bool:
        """Record a received event; False when (system, event_id) was already stored."""
        return self._insert_ignore(
            t.inbox, {"system": system, "event_id": event_id, "event_type": event_type,
                      "payload": payload, "status": "pending", "attempts": 0,
                      "received_at": self.now}, ("system", "event_id"))

    def claim_inbox(self, limit: int = 50, lease_seconds: float = 300,
                    system: str | None = None) -> list[InboxItem]:
        """Claim unprocessed events (and those whose claiming process died), oldest first."""
        now = self.now
        due = or_(t.inbox.c.status == "pending",
                  and_(t.inbox.c.status == "claimed", t.inbox.c.claimed_until < now))
        query = select(t.inbox).where(due).order_by(t.inbox.c.id).limit(limit)
        if system is not None:
            query = query.where(t.inbox.c.system == system)
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(self.conn.execute(query))
        if rows:
            self.conn.execute(update(t.inbox).where(t.inbox.c.id.in_([r.id for r in rows])).values(
                status="claimed", claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=t.inbox.c.attempts + 1))
        return [InboxItem(r.id, r.system, r.event_id, r.event_type, dict(r.payload), "claimed",
                          r.attempts + 1) for r in rows]

    def finish_inbox(self, item_id: int, *, error: str | None = None, retry_in: float | None = None) -> None:
        """Processed; or failed for good; or (``retry_in`` seconds) failed for now: the event
        stays claimed, with its error, until then, and ``claim_inbox`` hands it out again."""
        if error and retry_in is not None:
            self.conn.execute(update(t.inbox).where(t.inbox.c.id == item_id).values(
                status="claimed", error=error, claimed_until=self.now + timedelta(seconds=retry_in)))
            return
        self.conn.execute(update(t.inbox).where(t.inbox.c.id == item_id).values(
            status="failed" if error else "processed", error=error, processed_at=self.now,
            claimed_until=None))

    def finish_inbox_many(self, item_ids: Sequence[int]) -> None:
        """Several events processed, in one statement."""
        if item_ids:
            self.conn.execute(update(t.inbox).where(t.inbox.c.id.in_(list(item_ids))).values(
                status="processed", error=None, processed_at=self.now, claimed_until=None))

    def inbox_items(self, system: str) -> Iterator[InboxItem]:
        """Every stored event of one system, oldest first."""
        for r in self.conn.execute(select(t.inbox).where(t.inbox.c.system == system).order_by(t.inbox.c.id)):
            yield InboxItem(r.id, r.system, r.event_id, r.event_type, dict(r.payload), r.status, r.attempts,
                            _aware(r.received_at) or utcnow())

    def count_inbox(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(t.inbox)
        if status:
            query = query.where(t.inbox.c.status == status)
        return int(self.conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ outbox

    def enqueue(self, canonical_id: str, entity_type: str, target: str, operation: str,
                idempotency_key: str, digest: str, *, external_id: str | None = None) -> bool:
        """Record an intended write; False when the same idempotency key is already queued."""
        now = self.now
        return self._insert_ignore(
            t.outbox, {"canonical_id": canonical_id, "entity_type": entity_type, "target": target,
                       "operation": operation, "idempotency_key": idempotency_key,
                       "content_hash": digest, "status": "pending", "attempts": 0,
                       "next_attempt_at": now, "external_id": external_id,
                       "created_at": now, "updated_at": now}, ("idempotency_key",))

    def claim_outbox(self, limit: int = 100, *, target: str | None = None,
                     entity_type: str | None = None, lease_seconds: float = 300,
                     due_by: datetime | None = None) -> list[OutboxItem]:
        """Claim due items (and items whose lease expired because their process died).

        ``due_by`` (default now) lets a pass take only what was due when it began, so an item it
        put back for later is not taken again in the same pass.
        """
        now = self.now
        if self.store.is_postgres:
            # One claim per target at a time across processes, so the check below sees every
            # claim already made (SKIP LOCKED alone would let two processes each take one of two
            # items for the same record).
            self.conn.execute(_XACT_LOCK, {"k": "claim/" + (target or "")})
        due = or_(and_(t.outbox.c.status == "pending", t.outbox.c.next_attempt_at <= (due_by or now)),
                  and_(t.outbox.c.status == "in_flight", t.outbox.c.claimed_until < now))
        query = select(t.outbox).where(due)
        if target:
            query = query.where(t.outbox.c.target == target)
        if entity_type:
            query = query.where(t.outbox.c.entity_type == entity_type)
        query = query.order_by(t.outbox.c.id).limit(limit)
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(self.conn.execute(query))
        if not rows:
            return []
        # At most one write per (record, target) in flight: two items for one record (a webhook
        # and a change feed saw it with different content) sent together would both create it.
        # The later one waits; by its turn the link exists and it is an update or nothing.
        busy = {(r.canonical_id, r.target) for r in self.conn.execute(
            select(t.outbox.c.canonical_id, t.outbox.c.target).where(
                t.outbox.c.status == "in_flight", t.outbox.c.claimed_until >= now,
                t.outbox.c.canonical_id.in_({r.canonical_id for r in rows})))}
        chosen = []
        for row in rows:
            if (row.canonical_id, row.target) not in busy:
                busy.add((row.canonical_id, row.target))
                chosen.append(row)
        rows = chosen
        if not rows:
            return []
        self.conn.execute(update(t.outbox).where(t.outbox.c.id.in_([r.id for r in rows])).values(
            status="in_flight", attempts=t.outbox.c.attempts + 1,
            claimed_until=now + timedelta(seconds=lease_seconds), updated_at=now))
        return [replace(_outbox(r), status="in_flight", attempts=r.attempts + 1) for r in rows]

    def complete_outbox(self, item_id: int, external_id: str | None = None) -> None:
        self.conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
            status="done", external_id=external_id, last_error=None, claimed_until=None,
            updated_at=self.now))

    def fail_outbox(self, item_id: int, error: str, retry_at: datetime) -> None:
        self.conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
            status="pending", last_error=error[:2000], next_attempt_at=retry_at,
            claimed_until=None, updated_at=self.now))

    def defer_outbox(self, item_id: int, reason: str, retry_at: datetime) -> None:
        """Put a claimed item back without counting an attempt (it waited; it did not try)."""
        self.conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
            status="pending", last_error=reason[:2000], next_attempt_at=retry_at, claimed_until=None,
            attempts=func.max(t.outbox.c.attempts - 1, 0) if self.conn.dialect.name == "sqlite"
            else func.greatest(t.outbox.c.attempts - 1, 0), updated_at=self.now))

    def dead_outbox(self, item_id: int, error: str) -> None:
        self.conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(
            status="dead", last_error=error[:2000], claimed_until=None, updated_at=self.now))

    def retry_outbox(self, item_id: int) -> None:
        """Put a dead item back in the queue, due now."""
        result = self.conn.execute(update(t.outbox).where(
            t.outbox.c.id == item_id, t.outbox.c.status.in_(["dead", "pending", "dropped"]))
            .values(status="pending", next_attempt_at=self.now, attempts=0, updated_at=self.now))
        if not result.rowcount:
            raise NotFound(f"no outbox item {item_id} that can be retried (see `hub outbox list`)")

    def drop_outbox(self, item_id: int) -> None:
        """Give up on an item on purpose (kept for the audit trail as ``dropped``)."""
        result = self.conn.execute(update(t.outbox).where(
            t.outbox.c.id == item_id, t.outbox.c.status.in_(["dead", "pending"]))
            .values(status="dropped", updated_at=self.now))
        if not result.rowcount:
            raise NotFound(f"no pending or dead outbox item {item_id} (see `hub outbox list`)")

    def list_outbox(self, status: str | None = None, limit: int = 200) -> list[OutboxItem]:
        query = select(t.outbox).order_by(t.outbox.c.id).limit(limit)
        if status:
            query = query.where(t.outbox.c.status == status)
        return [_outbox(r) for r in self.conn.execute(query)]

    def outbox_depth(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.outbox.c.status, func.count()).group_by(t.outbox.c.status))
        return {status: int(n) for status, n in rows}

    # ------------------------------------------------------------------ runs

    def start_run(self, kind: str, scope: str = "") -> str:
        run_id = str(uuid.uuid4())
        self.conn.execute(insert(t.runs).values(id=run_id, kind=kind, scope=scope, status="running",
                                                counts={}, started_at=self.now))
        return run_id

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any],
                   error: str | None = None) -> None:
        self.conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(
            status=status, counts=counts, error=error, finished_at=self.now))

    def last_runs(self, limit: int = 10, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        if kind:
            query = query.where(t.runs.c.kind == kind)
        return [{**r._mapping, "started_at": _aware(r.started_at),
                 "finished_at": _aware(r.finished_at)} for r in self.conn.execute(query)]

    # ------------------------------------------------------------------ findings

    def upsert_finding(self, *, fingerprint: str, kind: str, entity: str, system: str,
                       canonical_id: str | None, external_ids: Sequence[str],
                       fields: dict[str, Any], detail: str, run_id: str | None) -> tuple[str, bool]:
        """Record a finding by its stable fingerprint; returns (id, newly opened)."""
        now = self.now
        row = self.conn.execute(select(t.findings).where(t.findings.c.fingerprint == fingerprint)).first()
        if row is None:
            finding_id = str(uuid.uuid4())
            self.conn.execute(insert(t.findings).values(
                id=finding_id, fingerprint=fingerprint, kind=kind, entity=entity, system=system,
                canonical_id=canonical_id, external_ids=list(external_ids), fields=fields,
                detail=detail, status="open", first_seen=now, last_seen=now, run_id=run_id))
            return finding_id, True
        reopened = row.status == "resolved"
        self.conn.execute(update(t.findings).where(t.findings.c.id == row.id).values(
            external_ids=list(external_ids), fields=fields, detail=detail, last_seen=now,
            run_id=run_id, canonical_id=canonical_id,
            status="open" if reopened else row.status, resolved_at=None))
        return row.id, reopened

    def resolve_unseen_findings(self, run_id: str, *, entity: str | None = None,
                                kinds: Iterable[str] | None = None) -> int:
        """Resolve open findings in scope that this diff run did not see again."""
        cond = [t.findings.c.status.in_(["open", "acknowledged"]),
                or_(t.findings.c.run_id.is_(None), t.findings.c.run_id != run_id)]
        if entity:
            cond.append(t.findings.c.entity == entity)
        if kinds is not None:
            cond.append(t.findings.c.kind.in_(list(kinds)))
        result = self.conn.execute(update(t.findings).where(*cond).values(
            status="resolved", resolved_at=self.now))
        return int(result.rowcount or 0)

    def resolve_finding(self, finding_id: str) -> None:
        self.conn.execute(update(t.findings).where(t.findings.c.id == finding_id).values(
            status="resolved", resolved_at=self.now))

    def ack_finding(self, finding_id: str) -> Finding:
        found = self.get_finding(finding_id)
        if found.status == "open":
            self.conn.execute(update(t.findings).where(t.findings.c.id == found.id)
                              .values(status="acknowledged"))
        return self.get_finding(found.id)

    def get_finding(self, finding_id: str) -> Finding:
        row = self.conn.execute(select(t.findings).where(
            or_(t.findings.c.id == finding_id, t.findings.c.id.startswith(finding_id)))).all()
        if len(row) != 1:
            raise NotFound(f"no finding {finding_id!r} (see `hub drift list`)" if not row else
                           f"{finding_id!r} matches {len(row)} findings; give more of the id")
        return _finding(row[0])

    def list_findings(self, *, kind: str | None = None, system: str | None = None,
                      status: str | None = None, entity: str | None = None,
                      limit: int | None = None) -> list[Finding]:
        query = select(t.findings).order_by(t.findings.c.first_seen, t.findings.c.id)
        for column, value in ((t.findings.c.kind, kind), (t.findings.c.system, system),
                              (t.findings.c.status, status), (t.findings.c.entity, entity)):
            if value:
                query = query.where(column == value)
        if limit:
            query = query.limit(limit)
        return [_finding(r) for r in self.conn.execute(query)]

    def open_findings_by_kind(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.findings.c.kind, func.count())
                                 .where(t.findings.c.status.in_(["open", "acknowledged"]))
                                 .group_by(t.findings.c.kind))
        return {kind: int(n) for kind, n in rows}

    # ------------------------------------------------------------------ credentials

    def _cipher(self) -> Cipher:
        if self.store.cipher is None:
            raise CredentialsError("no encryption key configured: set state.encryption_key")
        return self.store.cipher

    def save_credentials(self, connection: str, data: dict[str, Any]) -> None:
        """Encrypt and store a connection's tokens (commit before using a rotated token)."""
        token = self._cipher().encrypt(data)
        if not self._insert_ignore(t.credentials, {"connection": connection, "ciphertext": token,
                                                   "version": 1, "updated_at": self.now},
                                   ("connection",)):
            self.conn.execute(update(t.credentials).where(t.credentials.c.connection == connection)
                              .values(ciphertext=token, version=t.credentials.c.version + 1,
                                      updated_at=self.now))

    def load_credentials(self, connection: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """Decrypt a connection's tokens. ``for_update`` holds the connection's credentials lock
        until commit, so one refresh at a time runs per connection across processes.

        PostgreSQL: a transaction-scoped advisory lock, not ``SELECT ... FOR UPDATE`` — before
        the first refresh there is no row to lock, and two processes that both found none would
        both spend the configured refresh token (QuickBooks refuses the second: a lockout).
        The SELECT runs after the lock is granted, so under READ COMMITTED it sees the tokens
        the previous holder committed. SQLite: the transaction's BEGIN IMMEDIATE already
        serialises writers."""
        if for_update and self.store.is_postgres:
            self.conn.execute(_XACT_LOCK, {"k": "credentials/" + connection})
        query = select(t.credentials.c.ciphertext).where(t.credentials.c.connection == connection)
        token = self.conn.execute(query).scalar()
        return self._cipher().decrypt(token) if token else None

    def rotate_credentials(self) -> int:
        """Re-encrypt every stored credential with the newest key; returns how many."""
        cipher = self._cipher()
        rows = list(self.conn.execute(select(t.credentials.c.connection, t.credentials.c.ciphertext)))
        for name, token in rows:
            self.conn.execute(update(t.credentials).where(t.credentials.c.connection == name)
                              .values(ciphertext=cipher.rotate(token), updated_at=self.now))
        return len(rows)

    # ------------------------------------------------------------------ connection state

    def set_connection_state(self, connection: str, status: str, *, reason: str | None = None,
                             paused_until: datetime | None = None,
                             details: dict[str, Any] | None = None) -> None:
        values = {"status": status, "reason": reason, "paused_until": paused_until,
                  "details": details or {}, "updated_at": self.now}
        if not self._insert_ignore(t.connection_state, {"connection": connection, **values},
                                   ("connection",)):
            self.conn.execute(update(t.connection_state)
                              .where(t.connection_state.c.connection == connection).values(**values))

    def connection_state(self, connection: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.connection_state).where(
            t.connection_state.c.connection == connection)).first()
        if row is None:
            return None
        return {**row._mapping, "paused_until": _aware(row.paused_until),
                "updated_at": _aware(row.updated_at)}

    def connection_states(self) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(select(t.connection_state))
        return {r.connection: {**r._mapping, "paused_until": _aware(r.paused_until)} for r in rows}

    # ------------------------------------------------------------------ summaries

    def count_entities(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.entities.c.type, func.count())
                                 .where(t.entities.c.deleted.is_(False)).group_by(t.entities.c.type))
        return {kind: int(n) for kind, n in rows}


def dumps(value: Any) -> str:
    """JSON for CLI output (datetimes as ISO strings)."""
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
                      indent=2, sort_keys=True)
