"""The rows an erasure rewrites (``hub forget-customer``): read and overwrite in place.

``sync/privacy.py`` decides what is personal and how it is scrubbed; these are its only reads and
writes. They bypass ``upsert_entities`` on purpose: its history row would keep the old values,
and an erasure must queue no write to any vendor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Row, select, update

from state import schema as t
from state.txbase import TxBase


class ErasureMixin(TxBase):
    def overwrite_freed_space(self) -> None:
        """SQLite: zero the old cells instead of leaving them in free pages (PostgreSQL: VACUUM)."""
        if self.conn.dialect.name == "sqlite":
            self.conn.exec_driver_sql("PRAGMA secure_delete=ON")

    def entity_row(self, canonical_id: str) -> tuple[dict[str, Any], int]:
        """A stored entity's payload and version (raises if there is none)."""
        row = self.conn.execute(select(t.entities.c.payload, t.entities.c.version)
                                .where(t.entities.c.id == canonical_id)).one()
        return dict(row.payload), int(row.version)

    def overwrite_entity(self, canonical_id: str, payload: dict[str, Any], content_hash: str,
                         version: int, source: str) -> None:
        self.conn.execute(update(t.entities).where(t.entities.c.id == canonical_id).values(
            payload=payload, content_hash=content_hash, version=version, source=source, updated_at=self.now))

    def history_changes(self, canonical_id: str) -> list[tuple[int, dict[str, Any]]]:
        rows = self.conn.execute(select(t.history.c.id, t.history.c.changes)
                                 .where(t.history.c.canonical_id == canonical_id))
        return [(int(history_id), dict(changes or {})) for history_id, changes in rows]

    def overwrite_history(self, history_id: int, changes: dict[str, Any]) -> None:
        self.conn.execute(update(t.history).where(t.history.c.id == history_id).values(changes=changes))

    def finding_texts(self) -> list[Row[Any]]:
        """Every finding's id, fields, detail, external ids, canonical id and entity."""
        return list(self.conn.execute(select(t.findings.c.id, t.findings.c.fields, t.findings.c.detail,
                                             t.findings.c.external_ids, t.findings.c.canonical_id,
                                             t.findings.c.entity)))

    def overwrite_finding_text(self, finding_id: str, detail: str, fields: dict[str, Any]) -> None:
        self.conn.execute(update(t.findings).where(t.findings.c.id == finding_id).values(
            detail=detail, fields=fields))

    def inbox_texts(self) -> Iterator[tuple[int, Any, str | None]]:
        """Every inbox row's id, payload and error."""
        for item in list(self.conn.execute(select(t.inbox.c.id, t.inbox.c.payload, t.inbox.c.error))):
            yield int(item.id), item.payload, item.error

    def overwrite_inbox_text(self, item_id: int, payload: Any, error: str | None) -> None:
        self.conn.execute(update(t.inbox).where(t.inbox.c.id == item_id).values(payload=payload, error=error))

    def outbox_errors(self) -> list[tuple[int, str]]:
        rows = self.conn.execute(select(t.outbox.c.id, t.outbox.c.last_error)
                                 .where(t.outbox.c.last_error.is_not(None)))
        return [(int(item_id), str(error)) for item_id, error in rows]

    def overwrite_outbox_error(self, item_id: int, error: str) -> None:
        self.conn.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(last_error=error))

    def hold_texts(self) -> Iterator[tuple[int, str, str]]:
        """Every held record's id, payload (exact JSON text) and reason."""
        for item in list(self.conn.execute(select(t.holds.c.id, t.holds.c.payload, t.holds.c.reason))):
            yield int(item.id), str(item.payload), str(item.reason)

    def overwrite_hold_text(self, hold_id: int, payload: str, reason: str) -> None:
        self.conn.execute(update(t.holds).where(t.holds.c.id == hold_id).values(payload=payload, reason=reason))
