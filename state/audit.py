"""The audit log's store half (``audit_log``): append an entry, read them back filtered.

Append-only by construction: this mixin has no update or delete, and the database refuses both
with a trigger (migration 0009), so an entry, once written, is what happened. ``before`` and
``after`` are kept as exact JSON (``mapping.exact_json``: no floats, amounts stay exact).
``sync.audit.record_action`` is the one writer callers use; it names the actor and the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select

from mapping import exact_json
from state import schema as t
from state.errors import CorruptRow
from state.queues import OUTBOX_ID_MAX
from state.records import aware
from state.txbase import TxBase

AUDIT_PAGE = 50  # entries per page when a caller does not say


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target_kind: str
    target_id: str
    canonical_id: str | None
    before: Any
    after: Any
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "target_kind": self.target_kind, "target_id": self.target_id,
                "canonical_id": self.canonical_id, "before": self.before, "after": self.after,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries: each given field narrows. ``actor`` matches the whole actor or the name after
    its channel ("alice" finds "console:alice" and "api:alice"); ``action`` the whole action or its
    family ("finding" finds "finding.ack"); ``since`` is inclusive, ``until`` exclusive."""

    actor: str | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    canonical_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> ColumnElement[bool]:
        c = t.audit_log.c
        terms: list[ColumnElement[bool]] = []
        if self.actor:
            terms.append(or_(c.actor == self.actor, c.actor.endswith(":" + self.actor, autoescape=True)))
        if self.action:
            terms.append(or_(c.action == self.action, c.action.startswith(self.action + ".", autoescape=True)))
        if self.target_kind:
            terms.append(c.target_kind == self.target_kind)
        if self.target_id:
            terms.append(c.target_id == self.target_id)
        if self.canonical_id:
            terms.append(c.canonical_id == self.canonical_id)
        if self.since is not None:
            terms.append(c.at >= self.since)
        if self.until is not None:
            terms.append(c.at < self.until)
        return and_(True, *terms)


def _decode(entry_id: int, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return exact_json.loads(text)
    except ValueError as exc:
        raise CorruptRow(f"audit entry {entry_id} is damaged ({exc})") from None


def _entry(row: Any) -> AuditEntry:
    at = aware(row.at)
    assert at is not None  # NOT NULL
    return AuditEntry(int(row.id), at, row.actor, row.action, row.target_kind, row.target_id, row.canonical_id,
                      _decode(row.id, row.before), _decode(row.id, row.after), row.reason)


class AuditMixin(TxBase):
    def append_audit(self, actor: str, action: str, target_kind: str, target_id: str, *,
                     canonical_id: str | None = None, before: Any = None, after: Any = None,
                     reason: str | None = None) -> int:
        """Write one entry at the store's clock; its id. ``before``/``after`` must be JSON values
        without floats (a float is refused: an amount would lose cents)."""
        values = {"at": self.now, "actor": actor, "action": action, "target_kind": target_kind,
                  "target_id": target_id, "canonical_id": canonical_id, "reason": reason,
                  "before": None if before is None else exact_json.dumps(before, sort_keys=True),
                  "after": None if after is None else exact_json.dumps(after, sort_keys=True)}
        return int(self.conn.execute(insert(t.audit_log).values(**values).returning(t.audit_log.c.id)).scalar_one())

    def list_audit(self, where: AuditFilter | None = None, *, limit: int = AUDIT_PAGE,
                   offset: int = 0) -> list[AuditEntry]:
        """Entries newest first (ties: the later written first)."""
        query: Select[Any] = select(t.audit_log).where((where or AuditFilter()).where()) \
            .order_by(t.audit_log.c.at.desc(), t.audit_log.c.id.desc()).limit(limit).offset(offset)
        return [_entry(row) for row in self.conn.execute(query)]

    def count_audit(self, where: AuditFilter | None = None) -> int:
        query = select(func.count()).select_from(t.audit_log).where((where or AuditFilter()).where())
        return int(self.conn.execute(query).scalar_one())

    def record_of_target(self, target_kind: str, target_id: str) -> str | None:
        """The hub record a finding or an outbox write concerns (None when it names none)."""
        if target_kind == "record":
            return target_id
        if target_kind == "finding":
            return self.conn.execute(select(t.findings.c.canonical_id)
                                     .where(t.findings.c.id == target_id)).scalar()
        if target_kind == "outbox" and target_id.isdecimal() and int(target_id) <= OUTBOX_ID_MAX:
            return self.conn.execute(select(t.outbox.c.canonical_id)
                                     .where(t.outbox.c.id == int(target_id))).scalar()
        return None

    def audit_of_record(self, canonical_id: str) -> list[AuditEntry]:
        """What people did to one hub record (its findings, its outbox writes, resyncs of it),
        oldest first, as a timeline reads."""
        query = select(t.audit_log).where(t.audit_log.c.canonical_id == canonical_id) \
            .order_by(t.audit_log.c.at, t.audit_log.c.id)
        return [_entry(row) for row in self.conn.execute(query)]


__all__ = ["AUDIT_PAGE", "AuditEntry", "AuditFilter", "AuditMixin"]
