"""An in-memory system and connector, for engine tests and the contract suite's own check.

``FakeSystem`` behaves like a vendor API: records with ids, a change feed with a sequence
cursor, deletions, rate-limit answers and apply-then-fail faults. It stores canonical payloads
(``to_data``) with the hub's marker in ``hub_id``; references between records are kept as
canonical ids, so mapping is the identity apart from the record's own id.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.base import (
    Capabilities,
    ConnectionHealth,
    InvalidError,
    Outbound,
    Page,
    RateLimited,
    Record,
    RetryableError,
    WriteResult,
)
from connectors.retry import RetryPolicy
from mapping.model import ENTITY_TYPES, Entity, from_data, to_data
from mapping.refs import RefResolver


@dataclass
class _Stored:
    data: dict[str, Any]
    seq: int
    deleted: bool = False


@dataclass
class FakeSystem:
    """The 'remote' side. Thread-safe; inspect ``records`` directly in tests."""

    name: str = "fake"
    records: dict[str, dict[str, _Stored]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    page_size: int = 100
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    rate_limit_remaining: int = 0
    rate_limit_retry_after: float = 1.0
    apply_then_fail_remaining: int = 0
    fail_before_apply_remaining: int = 0
    idempotency: dict[str, str] = field(default_factory=dict)  # key -> external id it created
    # A validation rule, as a vendor has: returns why a payload is refused, or None.
    reject: Callable[[Mapping[str, Any]], str | None] | None = None

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.rate_limit_remaining > 0:
            self.rate_limit_remaining -= 1
            raise RateLimited("429 too many requests", retry_after=self.rate_limit_retry_after,
                              system=self.name, status=429)
        if self.fail_before_apply_remaining > 0:
            self.fail_before_apply_remaining -= 1
            raise RetryableError("503 service unavailable", system=self.name, status=503)

    def table(self, entity_type: str) -> dict[str, _Stored]:
        return self.records.setdefault(entity_type, {})

    def put(self, entity_type: str, data: dict[str, Any], external_id: str | None = None) -> str:
        """Create or replace a record directly (out of band, as a person would)."""
        with self._lock:
            ext = external_id or f"{entity_type[:3]}_{next(self._ids):06d}"
            self.table(entity_type)[ext] = _Stored({**data, "id": ext}, next(self._seq))
            return ext

    def remove(self, entity_type: str, external_id: str) -> None:
        with self._lock:
            stored = self.table(entity_type)[external_id]
            stored.deleted = True
            stored.seq = next(self._seq)

    def live(self, entity_type: str) -> dict[str, dict[str, Any]]:
        return {k: v.data for k, v in self.table(entity_type).items() if not v.deleted}


class FakeConnector:
    """A Connector over a FakeSystem, honouring the same contract as the real ones."""

    def __init__(self, system: FakeSystem, name: str | None = None,
                 policy: RetryPolicy | None = None, kind: str = "fake") -> None:
        self.remote = system
        self.name = name or system.name
        self.system = kind  # which real system it stands in for, for routing in engine tests
        self.policy = policy or RetryPolicy(sleep=lambda _s: None)

    def entity_types(self) -> Sequence[str]:
        return ENTITY_TYPES

    def _record(self, entity_type: str, ext: str, stored: _Stored) -> Record:
        return Record(entity_type, ext, dict(stored.data), deleted=stored.deleted,
                      version=str(stored.seq), updated_at=datetime.now(UTC))

    def _page(self, entity_type: str, after_seq: int, include_deleted: bool) -> tuple[list[Record], int]:
        self.policy.call(lambda: self.remote._call(f"list {entity_type}"))
        with self.remote._lock:
            rows = sorted(((s.seq, ext, s) for ext, s in self.remote.table(entity_type).items()
                           if s.seq > after_seq and (include_deleted or not s.deleted)),
                          key=lambda r: r[0])[: self.remote.page_size]
        last = rows[-1][0] if rows else after_seq
        return [self._record(entity_type, ext, s) for _seq, ext, s in rows], last

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        after = 0
        while True:
            records, after = self._page(entity_type, after, include_deleted=False)
            yield Page(records)
            if len(records) < self.remote.page_size:
                return

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        after = int(cursor or 0)
        while True:
            records, after = self._page(entity_type, after, include_deleted=cursor is not None)
            yield Page(records, cursor=str(after))
            if len(records) < self.remote.page_size:
                return

    def _write_one(self, entity_type: str, item: Outbound) -> WriteResult:
        reason = self.remote.reject(item.payload) if self.remote.reject else None
        if reason:
            raise InvalidError(f"{entity_type} rejected: {reason}", system=self.name)
        ext = item.external_id or self.remote.idempotency.get(item.idempotency_key)
        if ext is None and item.attempt > 1:
            found = self.lookup(entity_type, item.hub_id)
            ext = found.external_id if found else None
        created = ext is None
        self.remote._call(f"write {entity_type}")
        ext = self.remote.put(entity_type, {**item.payload, "hub_id": item.hub_id}, ext)
        self.remote.idempotency[item.idempotency_key] = ext
        if self.remote.apply_then_fail_remaining > 0:
            self.remote.apply_then_fail_remaining -= 1
            raise RetryableError("connection reset after write", system=self.name)
        stored = self.remote.table(entity_type)[ext]
        return WriteResult(item.idempotency_key, ext, created, self._record(entity_type, ext, stored))

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        results = []
        for item in batch:
            try:
                results.append(self.policy.call(partial(self._write_one, entity_type, item)))
            except (RetryableError, InvalidError) as exc:
                results.append(WriteResult(item.idempotency_key, error=exc))
        return results

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        self.policy.call(lambda: self.remote._call(f"lookup {entity_type}"))
        for ext, stored in self.remote.table(entity_type).items():
            if stored.data.get("hub_id") == hub_id and not stored.deleted:
                return self._record(entity_type, ext, stored)
        return None

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        data = {k: v for k, v in record.data.items() if k != "hub_id"}
        data["id"] = refs.canonical_id(record.entity_type, record.external_id)
        return from_data(record.entity_type, data)

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        data = to_data(entity)
        data.pop("id", None)
        data.pop("updated_at", None)
        return data

    def natural_keys(self, record: Record) -> dict[str, str]:
        keys = {"hub_id": str(record.data["hub_id"])} if record.data.get("hub_id") else {}
        for name in ("email", "number", "name"):
            value = record.data.get(name)
            if value:
                keys[name] = str(value)
        return keys

    def health(self) -> ConnectionHealth:
        return ConnectionHealth()

    def capabilities(self) -> Capabilities:
        return Capabilities(retries=self.policy)

    def close(self) -> None:
        return None
