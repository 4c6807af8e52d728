"""Reads of the outbox for those who watch it rather than drain it: the diff (writes a person
dropped, which stay a gap in the books) and the progress display (what a push has still to send).
The queue itself — enqueue, claim, complete, retry, drop — is ``state.queues``."""

from __future__ import annotations

from sqlalchemy import exists, func, select

from state import schema as t
from state.txbase import TxBase


class OutboxViewsMixin(TxBase):
    def outbox_status(self, item_id: int) -> str | None:
        """One outbox item's status (None when there is no such item): the audit log's "before"."""
        status = self.conn.execute(select(t.outbox.c.status).where(t.outbox.c.id == item_id)).scalar()
        return None if status is None else str(status)

    def dropped_writes(self, entity_type: str) -> list[tuple[str, str, int]]:
        """Writes of ``entity_type`` a person gave up on (dropped) and that no later write of the
        record to that target followed: (canonical id, target, outbox id). The diff keeps each in
        sight as a record missing from its target (a repair's drop of a write it supersedes is
        followed by its own write, so it is not one of these)."""
        o, later = t.outbox.alias("o"), t.outbox.alias("later")
        rows = self.conn.execute(
            select(o.c.canonical_id, o.c.target, o.c.id)
            .where(o.c.entity_type == entity_type, o.c.status == "dropped",
                   ~exists().where(later.c.canonical_id == o.c.canonical_id, later.c.target == o.c.target,
                                   later.c.id > o.c.id))
            .order_by(o.c.id))
        return [(str(c), str(target), int(item_id)) for c, target, item_id in rows]

    def due_writes(self, target: str | None = None, entity_type: str | None = None) -> int:
        """Writes due now and not claimed, of one target and entity (None: every one): what a push
        has still to send (the progress display's totals)."""
        o = t.outbox.c
        query = select(func.count()).select_from(t.outbox).where(o.status == "pending", o.next_attempt_at <= self.now)
        if target is not None:
            query = query.where(o.target == target)
        if entity_type is not None:
            query = query.where(o.entity_type == entity_type)
        return int(self.conn.execute(query).scalar_one())


__all__ = ["OutboxViewsMixin"]
