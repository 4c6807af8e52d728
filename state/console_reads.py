"""Reads for the console's daily pages that no other part of the hub needs: the outbox per
target connection (a connection's dead letters and waiting writes, for its health), and one
record's writes and links with their times (its history across systems)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from state import schema as t
from state.records import aware
from state.txbase import TxBase


def outbox_by_target(tx: TxBase) -> dict[str, dict[str, int]]:
    """target connection -> outbox status -> count (done and dropped writes included)."""
    o = t.outbox
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for target, status, n in tx.conn.execute(select(o.c.target, o.c.status, func.count()).group_by(o.c.target,
                                                                                                  o.c.status)):
        found[str(target)][str(status)] = int(n)
    return dict(found)


def deferred_by_target(tx: TxBase) -> dict[str, int]:
    """Pending writes that already waited once (an error or a pause put them back): per target."""
    o = t.outbox
    rows = tx.conn.execute(select(o.c.target, func.count()).where(o.c.status == "pending",
                                                                  o.c.last_error.is_not(None)).group_by(o.c.target))
    return {str(target): int(n) for target, n in rows}


def writes_of_record(tx: TxBase, canonical_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """The outbox writes of one hub record (indexed by canonical id), oldest first."""
    o = t.outbox
    rows = tx.conn.execute(select(o.c.id, o.c.target, o.c.entity_type, o.c.operation, o.c.status, o.c.attempts,
                                  o.c.last_error, o.c.external_id, o.c.created_at, o.c.updated_at)
                           .where(o.c.canonical_id == canonical_id).order_by(o.c.id).limit(limit))
    return [{**r._mapping, "created_at": aware(r.created_at), "updated_at": aware(r.updated_at)} for r in rows]


def links_of_record(tx: TxBase, canonical_id: str) -> list[dict[str, Any]]:
    """One hub record's links with when each was made and last changed."""
    lk = t.links
    rows = tx.conn.execute(select(lk.c.system, lk.c.object_type, lk.c.external_id, lk.c.deleted, lk.c.created_at,
                                  lk.c.updated_at).where(lk.c.canonical_id == canonical_id).order_by(lk.c.id))
    return [{**r._mapping, "deleted": bool(r.deleted), "created_at": aware(r.created_at),
             "updated_at": aware(r.updated_at)} for r in rows]


__all__ = ["deferred_by_target", "links_of_record", "outbox_by_target", "writes_of_record"]
