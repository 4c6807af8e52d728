"""What the store hands back: frozen views of its rows, and the converters from rows to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row

from mapping.model import Entity, from_data

Outcome = Literal["added", "changed", "unchanged"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC, so re-attach the zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)



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


def link_row(row: Row[Any]) -> Link:
    m = row._mapping
    return Link(m["canonical_id"], m["system"], m["object_type"], m["external_id"],
                m["last_pushed_hash"], m["last_seen_hash"], m["remote_version"], bool(m["deleted"]),
                m["last_payload_hash"])


def outbox_row(row: Row[Any]) -> OutboxItem:
    m = row._mapping
    return OutboxItem(m["id"], m["canonical_id"], m["entity_type"], m["target"], m["operation"],
                      m["idempotency_key"], m["content_hash"], m["status"], m["attempts"],
                      aware(m["next_attempt_at"]) or utcnow(), m["last_error"], m["external_id"])


def finding_row(row: Row[Any]) -> Finding:
    m = row._mapping
    return Finding(m["id"], m["fingerprint"], m["kind"], m["entity"], m["system"],
                   m["canonical_id"], list(m["external_ids"]), dict(m["fields"]), m["detail"],
                   m["status"], aware(m["first_seen"]) or utcnow(),
                   aware(m["last_seen"]) or utcnow(), aware(m["resolved_at"]))


def stored_row(row: Row[Any]) -> StoredEntity:
    m = row._mapping
    return StoredEntity(m["id"], m["type"], dict(m["payload"]), m["content_hash"], m["version"],
                        bool(m["deleted"]), aware(m["updated_at"]) or utcnow(), m["source"])


# --------------------------------------------------------------------------- the store
