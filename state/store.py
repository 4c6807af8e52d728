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

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from state.alerts import AlertsMixin
from state.audit import AuditMixin
from state.connections import ConnectionsMixin
from state.crypto import Cipher
from state.entities import EntitiesMixin
from state.erasure import ErasureMixin
from state.errors import (
    CorruptRow,
    DatabaseUnavailable,
    EmptyDatabaseFile,
    ForeignDatabase,
    MissingTables,
    NewerSchema,
    NotADatabase,
    StateError,
)
from state.holds import HoldsMixin
from state.links import LinksMixin
from state.outbox_views import OutboxViewsMixin
from state.queues import QueuesMixin
from state.records import Finding, InboxItem, Link, OutboxItem, Outcome, StoredEntity, utcnow
from state.runs import RunsMixin
from state.schema import metadata
from state.sightings import SightingsMixin
from state.txbase import TRY_LOCK, UNLOCK
from state.users import UsersMixin

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCAL_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def _load_json(value: str) -> Any:
    """JSON columns as stored; a damaged value is a domain error naming it, not a decoder crash."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CorruptRow(f"a stored JSON value is damaged ({exc}): {value[:60]!r}") from None


def url_problem(value: str) -> str | None:
    """SQLite on a file, or PostgreSQL; the value may hold a password, so it is never shown."""
    try:
        url = make_url(value)
    except ArgumentError:
        return "not a database URL — set sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            return "an in-memory SQLite database keeps nothing — set sqlite:///PATH to a file"
        return None
    if url.drivername in ("postgresql", "postgresql+psycopg"):  # make_engine uses psycopg for both
        return None
    return (f"{url.drivername} is not supported — set sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB")


def _damaged(exc: DatabaseError) -> bool:
    """SQLite's words for a file that is not a database or whose pages are broken."""
    words = str(exc.orig)
    return "file is not a database" in words or "malformed" in words or "not a database" in words


def make_engine(url: str) -> Engine:
    """Engine for a database URL, with the SQLite settings the hub relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_deserializer=_load_json)

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
    # The daemon's lanes run side by side on PostgreSQL (inbox, outbox, change feeds; each push
    # and each stream's advisory lock holds a connection): room for them and the requests.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_deserializer=_load_json)


# --------------------------------------------------------------------------- row views


class Tx(EntitiesMixin, LinksMixin, QueuesMixin, OutboxViewsMixin, RunsMixin, ConnectionsMixin, ErasureMixin,
         HoldsMixin, SightingsMixin, AlertsMixin, AuditMixin, UsersMixin):
    """Operations inside one transaction. Obtain with ``StateStore.transaction()``.

    One object over one connection; each table family's operations live in their own module
    (``state.entities``, ``state.links``, ``state.queues``, ``state.runs``,
    ``state.connections``, ``state.holds``), so callers keep calling ``tx.<operation>``."""


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
        # An SQLite file that already exists empty is refused by init(); one the hub is about to
        # create (the path did not exist) is a new database.
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._sqlite_path = Path(database) if database and database != ":memory:" else None
        self._empty_at_open = self._sqlite_path is not None and self._sqlite_path.is_file() \
            and self._sqlite_path.stat().st_size == 0
        self.cipher = cipher
        self.clock = clock

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def init(self) -> str:
        """Upgrade the schema to the newest migration; a no-op when already there.

        Refuses, changing nothing, a database this billhub cannot use: an SQLite file that was
        empty before the hub opened it, a file that is not a database or is damaged, another
        application's database, a schema from a newer billhub, or one missing tables."""
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        if self._empty_at_open and self._sqlite_path is not None and self._sqlite_path.stat().st_size == 0:
            raise EmptyDatabaseFile(
                f"{self._sqlite_path} is an empty file, not a billhub database — if it is a mistake, "
                "delete it and run `hub init` to create a new database there; otherwise restore it "
                "from a backup")
        known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
        try:
            with self.engine.begin() as conn:
                self._refuse_unusable(conn, known)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                missing = sorted(set(metadata.tables) - set(inspect(conn).get_table_names()))
        except OperationalError as exc:
            if _damaged(exc):
                raise self._not_a_database(exc) from None
            raise DatabaseUnavailable(f"cannot open the database at {self.safe_url}: {exc.orig}") from exc
        except DatabaseError as exc:
            if _damaged(exc):
                raise self._not_a_database(exc) from None
            raise
        if missing:
            raise MissingTables(f"the database at {self.safe_url} is at schema version {version} but table "
                                f"{', '.join(missing)} is missing — restore it from a backup")
        return str(version)

    def _refuse_unusable(self, conn: Connection, known: set[str]) -> None:
        """Before any migration runs: another application's tables, or a newer schema."""
        tables = set(inspect(conn).get_table_names())
        ours = tables & set(metadata.tables)
        if "alembic_version" not in tables:
            if tables:
                raise ForeignDatabase(
                    f"the database at {self.safe_url} holds tables ({', '.join(sorted(tables)[:5])}) but "
                    "no billhub schema version — it belongs to another application; set state.url to a "
                    "new database, or restore billhub's from a backup")
            return
        versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        unknown = sorted(versions - known)
        if unknown and not ours:
            raise ForeignDatabase(
                f"the database at {self.safe_url} has another application's schema (revision "
                f"{unknown[0]}) — set state.url to a new database")
        if unknown:
            raise NewerSchema(
                f"the database at {self.safe_url} was created by a newer billhub (schema revision "
                f"{unknown[0]}, unknown to this version) — upgrade billhub; nothing was changed")

    def _not_a_database(self, exc: DatabaseError) -> NotADatabase:
        return NotADatabase(f"{self._sqlite_path or self.safe_url} is not a usable database ({exc.orig}) — "
                            "it is damaged or another kind of file; restore it from a backup, or set "
                            "state.url to a new path")

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
        except DataError as exc:  # PostgreSQL: e.g. an id beyond BIGINT
            raise StateError(f"a value does not fit the database: {exc.orig}") from exc
        except OverflowError as exc:  # SQLite's driver refuses such an integer before the database
            raise StateError(f"a value does not fit the database: {exc}") from exc
        except DatabaseError as exc:
            if _damaged(exc):
                raise self._not_a_database(exc) from None
            raise

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
            acquired = bool(conn.execute(TRY_LOCK, {"k": key}).scalar())
            conn.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    conn.execute(UNLOCK, {"k": key})
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




__all__ = ["MIGRATIONS", "Finding", "InboxItem", "Link", "OutboxItem", "Outcome", "StateStore",
           "StoredEntity", "Tx", "make_engine", "url_problem", "utcnow"]
