"""Held source records: read from a connection, not mappable yet, kept instead of dropped.

A hold is the raw record as read (secret fields already removed by the caller), why it failed and
the fingerprint of its ``unreadable`` finding. The engine tries it again on every pass of its
stream; a version that maps removes it. Acknowledging the finding drops the hold
(``RunsMixin.ack_finding``), and while a hold exists no diff resolves its finding
(``RunsMixin.resolve_unseen_findings``): the diff not seeing the problem does not mean the record
reached the hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from mapping import exact_json
from state import schema as t
from state.errors import CorruptRow
from state.records import aware
from state.txbase import TxBase


@dataclass(frozen=True, slots=True)
class Hold:
    connection: str
    entity_type: str
    external_id: str
    payload: dict[str, Any]
    version: str | None
    record_updated_at: datetime | None
    reason: str
    fingerprint: str
    attempts: int
    first_tried: datetime
    last_tried: datetime


def _hold_row(row: Any) -> Hold:
    try:
        payload = exact_json.loads(row.payload)
    except ValueError as exc:
        raise CorruptRow(f"held record {row.connection} {row.entity_type} {row.external_id} is damaged "
                         f"({exc})") from None
    first, last = aware(row.first_tried), aware(row.last_tried)
    assert first is not None and last is not None  # NOT NULL columns
    return Hold(row.connection, row.entity_type, row.external_id, dict(payload), row.version,
                aware(row.record_updated_at), row.reason, row.fingerprint, int(row.attempts), first, last)


class HoldsMixin(TxBase):
    def hold_record(self, *, connection: str, entity_type: str, external_id: str,
                    payload: Mapping[str, Any], version: str | None, record_updated_at: datetime | None,
                    reason: str, fingerprint: str) -> int:
        """Hold (or hold again, with this newer payload) a record that failed to map; returns its
        attempts so far."""
        now = self.now
        # ``readable``: a non-JSON value an SDK handed over (a date) is kept as its text.
        text = exact_json.dumps(dict(payload), default=exact_json.readable)
        where = (t.holds.c.connection == connection, t.holds.c.entity_type == entity_type,
                 t.holds.c.external_id == external_id)
        values = {"payload": text, "version": version, "record_updated_at": record_updated_at,
                  "reason": reason, "fingerprint": fingerprint, "last_tried": now}
        if self._insert_ignore(t.holds, {"connection": connection, "entity_type": entity_type,
                                         "external_id": external_id, "attempts": 1, "first_tried": now,
                                         **values}, ("connection", "entity_type", "external_id")):
            return 1
        self.conn.execute(update(t.holds).where(*where).values(attempts=t.holds.c.attempts + 1, **values))
        return int(self.conn.execute(select(t.holds.c.attempts).where(*where)).scalar_one())

    def holds_of(self, connection: str, entity_type: str, *, tried_before: datetime | None = None) -> list[Hold]:
        """The held records of one stream, oldest first (``tried_before``: not tried since)."""
        query = select(t.holds).where(t.holds.c.connection == connection,
                                      t.holds.c.entity_type == entity_type).order_by(t.holds.c.id)
        if tried_before is not None:
            query = query.where(t.holds.c.last_tried < tried_before)
        return [_hold_row(r) for r in self.conn.execute(query)]

    def held_ids(self, connection: str, entity_type: str, external_ids: Iterable[str]) -> dict[str, str]:
        """Of these external ids of one stream, the held ones: external id -> finding fingerprint."""
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 1000):  # bounded IN lists (SQLite's parameter limit)
            found.update((r.external_id, r.fingerprint) for r in self.conn.execute(
                select(t.holds.c.external_id, t.holds.c.fingerprint).where(
                    t.holds.c.connection == connection, t.holds.c.entity_type == entity_type,
                    self._among(t.holds.c.external_id, wanted[start:start + 1000]))))
        return found

    def release_hold(self, connection: str, entity_type: str, external_id: str, fingerprint: str) -> None:
        """The record mapped (or was deleted at its source): forget the hold and resolve its
        open finding."""
        self.conn.execute(delete(t.holds).where(
            t.holds.c.connection == connection, t.holds.c.entity_type == entity_type,
            t.holds.c.external_id == external_id))
        self.conn.execute(update(t.findings).where(
            t.findings.c.fingerprint == fingerprint, t.findings.c.status == "open").values(
            status="resolved", resolved_at=self.now))

    def finding_status(self, fingerprint: str) -> str | None:
        """open, acknowledged or resolved; None when there is no such finding."""
        value = self.conn.execute(select(t.findings.c.status).where(t.findings.c.fingerprint == fingerprint)).scalar()
        return None if value is None else str(value)

    def drop_holds_of_finding(self, fingerprint: str) -> int:
        """The finding was acknowledged: its held records are not tried again."""
        return int(self.conn.execute(delete(t.holds).where(t.holds.c.fingerprint == fingerprint)).rowcount or 0)

    def count_holds(self, connection: str | None = None, entity_type: str | None = None) -> int:
        query = select(func.count()).select_from(t.holds)
        if connection is not None:
            query = query.where(t.holds.c.connection == connection)
        if entity_type is not None:
            query = query.where(t.holds.c.entity_type == entity_type)
        return int(self.conn.execute(query).scalar_one())


__all__ = ["Hold", "HoldsMixin"]
