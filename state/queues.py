"""The inbox (events received, processed once) and the outbox (writes intended, sent once).

PostgreSQL claims rows with ``FOR UPDATE SKIP LOCKED``; a claim is a lease, so the rows of a
process that died are claimed again when it runs out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql

from state import schema as t
from state.errors import NotFound
from state.records import InboxItem, OutboxItem, aware, outbox_row, utcnow
from state.txbase import XACT_LOCK, TxBase, dialect_insert

# Outbox states of a write that has not (yet) landed.
UNDELIVERED = ("pending", "in_flight", "dead", "dropped")

# The longest text each bounded inbox column holds, read from the schema, so intake can refuse an
# over-long event id or type with a 400 before the database does (PostgreSQL raises DataError).
INBOX_TEXT_LIMITS: Mapping[str, int] = {
    c.name: c.type.length for c in t.inbox.c if isinstance(c.type, String) and c.type.length}
# The largest outbox id: its column is an Integer, 32 bits on PostgreSQL (SQLite's are 64), so a
# larger id asked for is refused as a usage error before the database raises an overflow.
OUTBOX_ID_MAX = 2**31 - 1


def outbox_due(now: datetime, due_by: datetime | None = None) -> Any:
    """What a push claims: pending items due by ``due_by`` (default ``now``), and items in
    flight whose lease lapsed (their process died). One condition for ``claim_outbox`` and the
    cluster's sweep (``state.job_queue.due_targets``), on ``ix_outbox_due``."""
    o = t.outbox.c
    return or_(and_(o.status == "pending", o.next_attempt_at <= (due_by or now)),
               and_(o.status == "in_flight", o.claimed_until < now))


class QueuesMixin(TxBase):
    def add_inbox(self, system: str, event_id: str, payload: dict[str, Any], event_type: str = "") -> bool:
        """Record a received event; False when (system, event_id) was already stored."""
        return self._insert_ignore(
            t.inbox, {"system": system, "event_id": event_id, "event_type": event_type,
                      "payload": payload, "status": "pending", "attempts": 0,
                      "received_at": self.now}, ("system", "event_id"))

    def add_inbox_many(self, system: str, events: Iterable[tuple[str, Mapping[str, Any], str]]) -> int:
        """Record a delivery's events, (event id, payload, event type) each, in one INSERT … ON
        CONFLICT DO NOTHING; returns how many were new (not stored before, and not repeated
        earlier in ``events``)."""
        rows: dict[str, tuple[Mapping[str, Any], str]] = {}
        for event_id, payload, event_type in events:
            rows.setdefault(event_id, (payload, event_type))
        if not rows:
            return 0
        if self.conn.dialect.name == "postgresql":
            return self._add_inbox_recordset(system, rows)
        now = self.now
        stmt = dialect_insert(self.conn.dialect.name, t.inbox).on_conflict_do_nothing(
            index_elements=["system", "event_id"]).returning(t.inbox.c.id)
        # One statement compiled once; SQLAlchemy's insertmanyvalues sends it as multi-row VALUES
        # pages (SQLite parses those fast). RETURNING counts what was inserted.
        return len(self.conn.execute(stmt, [
            {"system": system, "event_id": event_id, "event_type": event_type, "payload": dict(payload),
             "status": "pending", "attempts": 0, "received_at": now}
            for event_id, (payload, event_type) in rows.items()]).all())

    def _add_inbox_recordset(self, system: str, rows: Mapping[str, tuple[Mapping[str, Any], str]]) -> int:
        """PostgreSQL: the rows as one JSON document, ``INSERT … SELECT FROM json_to_recordset(…)``.
        Multi-row VALUES of 5,000 events is 35,000 placeholders that psycopg rewrites with a regex
        on every page (two thirds of the time measured), and text arrays of JSON escape every
        quote; one JSON parameter is sent as it is and parsed by the server. Each payload is
        stored as the JSON column would store it (the same serializer, the same text)."""
        dumps = getattr(self.conn.dialect, "_json_serializer", None) or json.dumps
        document = dumps([{"event_id": event_id, "event_type": event_type, "payload": dict(payload)}
                          for event_id, (payload, event_type) in rows.items()])
        given = func.json_to_recordset(cast(bindparam("rows", document, Text), JSON)).table_valued(
            column("event_id", Text), column("event_type", Text), column("payload", JSON)).render_derived(
            with_types=True)
        stmt = postgresql.insert(t.inbox).from_select(
            ["system", "event_id", "event_type", "payload", "status", "attempts", "received_at"],
            select(literal(system, String), given.c.event_id, given.c.event_type, given.c.payload,
                   literal("pending", String), literal(0, Integer), literal(self.now, t.inbox.c.received_at.type)),
        ).on_conflict_do_nothing(index_elements=["system", "event_id"]).returning(t.inbox.c.id)
        return len(self.conn.execute(stmt).all())

    def inbox_payloads(self, system: str, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored payloads of these event ids of one system (those stored), by event id."""
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 1000):  # bounded IN lists (SQLite's parameter limit)
            chunk = wanted[start:start + 1000]
            found.update((r.event_id, dict(r.payload)) for r in self.conn.execute(
                select(t.inbox.c.event_id, t.inbox.c.payload).where(
                    t.inbox.c.system == system, t.inbox.c.event_id.in_(chunk))))
        return found

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
                            aware(r.received_at) or utcnow())

    def waiting_inbox_payloads(self, system: str) -> Iterator[dict[str, Any]]:
        """Payloads of one connection's events not handled yet (pending, or claimed and to be
        tried again): the diff's evidence that a change in that system is on its way."""
        query = select(t.inbox.c.payload).where(t.inbox.c.system == system,
                                                t.inbox.c.status.in_(["pending", "claimed"]))
        for (payload,) in self.conn.execute(query.order_by(t.inbox.c.id)):
            yield dict(payload)

    def count_inbox(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(t.inbox)
        if status:
            query = query.where(t.inbox.c.status == status)
        return int(self.conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ outbox

    def enqueue(self, canonical_id: str, entity_type: str, target: str, operation: str,
                idempotency_key: str, digest: str, *, external_id: str | None = None,
                may_exist: bool = False) -> bool:
        """Record an intended write; False when the same idempotency key is already queued.

        ``may_exist``: the record may already be in the target (a repair): the item starts as if
        one attempt's outcome were unknown, so even its first try carries ``attempt > 1`` and every
        connector looks the record up by the hub's marker before creating it.
        """
        now = self.now
        row = {"canonical_id": canonical_id, "entity_type": entity_type, "target": target,
               "operation": operation, "idempotency_key": idempotency_key,
               "content_hash": digest, "status": "pending", "attempts": int(may_exist),
               "next_attempt_at": now, "external_id": external_id, "created_at": now, "updated_at": now}
        waiting = self._outbox_waiting
        if waiting is not None:
            if idempotency_key in waiting:
                return False
            waiting[idempotency_key] = row
            return True
        return self._insert_ignore(t.outbox, row, ("idempotency_key",))

    @contextmanager
    def outbox_batch(self) -> Iterator[None]:
        """Inside, ``enqueue`` keeps its rows and they are inserted at the end in one
        executemany (ON CONFLICT DO NOTHING, as one by one): a page's plan is a page of inserts,
        not one statement per write. Inside, ``enqueue`` says True for a key the outbox already
        holds from before (it cannot know without asking); the insert still ignores it."""
        if self._outbox_waiting is not None:
            yield  # already batching: the outer batch inserts
            return
        self._outbox_waiting = {}
        try:
            yield
            rows = list(self._outbox_waiting.values())
        finally:
            self._outbox_waiting = None
        self._insert_ignore_many(t.outbox, rows, ("idempotency_key",))

    def carry_unknown_outcome(self, canonical_id: str, target: str) -> None:
        """The record's other queued writes to ``target`` start as ``may_exist`` ones: an
        earlier write of unknown outcome may have created it (see ``enqueue``)."""
        o = t.outbox.c
        self.conn.execute(update(t.outbox).where(
            o.canonical_id == canonical_id, o.target == target, o.status == "pending", o.attempts == 0,
        ).values(attempts=1, updated_at=self.now))

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
            self.conn.execute(XACT_LOCK, {"k": "claim/" + (target or "")})
        query = select(t.outbox).where(outbox_due(now, due_by))
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
        return [replace(outbox_row(r), status="in_flight", attempts=r.attempts + 1) for r in rows]

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
        return [outbox_row(r) for r in self.conn.execute(query)]

    def newest_dead_letter(self) -> OutboxItem | None:
        """The write that went dead last (alerts name it), or None."""
        row = self.conn.execute(select(t.outbox).where(t.outbox.c.status == "dead")
                                .order_by(t.outbox.c.id.desc()).limit(1)).first()
        return None if row is None else outbox_row(row)

    def undelivered_writes(self, entity_type: str) -> list[tuple[str, str, str, str, str | None]]:
        """Writes of ``entity_type`` that have not landed (pending, in flight, dead or dropped), in
        order: (canonical id, target, content hash, status, last error). The diff's evidence that
        a target lags the hub, and its reason for holding a record."""
        rows = self.conn.execute(
            select(t.outbox.c.canonical_id, t.outbox.c.target, t.outbox.c.content_hash,
                   t.outbox.c.status, t.outbox.c.last_error)
            .where(t.outbox.c.entity_type == entity_type, t.outbox.c.status.in_(UNDELIVERED))
            .order_by(t.outbox.c.id))
        return [(str(c), str(target), str(digest), str(status), error) for c, target, digest, status, error in rows]

    def outbox_depth(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.outbox.c.status, func.count()).group_by(t.outbox.c.status))
        return {status: int(n) for status, n in rows}
