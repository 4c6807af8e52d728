"""The hub: pull -> map -> store -> plan -> push, exactly once.

``Engine`` is the façade callers use (the CLI, the daemon's jobs, repairs, tests); the work is
done by one collaborator per job, sharing one ``SyncContext`` (store, connections, settings):

* ``sync.ingest.Ingest`` — pull -> map -> store, first contact, placeholders;
* ``sync.plan.Planner`` — the outbox items a change calls for (and ``sync.deals``, the flow
  rule that derives a subscription or invoice from a won deal);
* ``sync.push.Pusher`` — outbox -> connector: pre-flight, holds, results, pauses;
* ``sync.policy`` — the one error -> action table pull, push and the inbox go by.

Here: one pass over the chosen streams (``sync``), the dry run, and re-sync of one record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import Connector, ConnectorError, Record
from mapping.model import Entity
from state.store import StateStore, Tx
from sync.context import (
    MAX_AMOUNT_MINOR,
    ConnectionPaused,
    LinkResolver,
    SyncContext,
    fingerprint,
    idempotency_key,
    payload_digest,
)
from sync.dry_run import preview
from sync.flows import ENTITY_ORDER, Routing
from sync.ingest import Ingest
from sync.plan import Planner
from sync.push import Pusher
from sync.run_lease import run_lease
from sync.summary import StreamStats, SyncSummary


class Engine:
    def __init__(
        self,
        store: StateStore,
        connectors: Mapping[str, Connector],
        routing: Routing,
        *,
        max_attempts: int = 8,
        backoff_seconds: float = 30.0,
        batch_size: int = 200,
        lease_seconds: float = 300.0,
        tax_codes: Mapping[str, Mapping[str, str]] | None = None,
        clock: Callable[[], datetime] | None = None,
        random: Callable[[], float] | None = None,
        max_amount_minor: int = MAX_AMOUNT_MINOR,
    ) -> None:
        extra: dict[str, Any] = {"random": random} if random is not None else {}
        extra["max_amount_minor"] = max_amount_minor
        self.ctx = SyncContext(store, connectors, routing, max_attempts=max_attempts,
                               backoff_seconds=backoff_seconds, batch_size=batch_size,
                               lease_seconds=lease_seconds, tax_codes=tax_codes or {},
                               clock=clock or store.clock, **extra)
        self.planner = Planner(self.ctx)
        self.ingester = Ingest(self.ctx, self.planner)
        self.pusher = Pusher(self.ctx, self.ingester)

    # ------------------------------------------------------------------ what callers read and set

    @property
    def store(self) -> StateStore:
        return self.ctx.store

    @property
    def connectors(self) -> dict[str, Connector]:
        return self.ctx.connectors

    @property
    def routing(self) -> Routing:
        return self.ctx.routing

    @property
    def tax_codes(self) -> Mapping[str, Mapping[str, str]]:
        return self.ctx.tax_codes

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    @clock.setter
    def clock(self, value: Callable[[], datetime]) -> None:
        self.ctx.clock = value

    @property
    def max_attempts(self) -> int:
        return self.ctx.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.ctx.max_attempts = value

    @property
    def backoff_seconds(self) -> float:
        return self.ctx.backoff_seconds

    @backoff_seconds.setter
    def backoff_seconds(self, value: float) -> None:
        self.ctx.backoff_seconds = value

    @property
    def batch_size(self) -> int:
        return self.ctx.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.ctx.batch_size = value

    @property
    def on_progress(self) -> Callable[[str, int], None] | None:
        """Called after each committed page or batch (the daemon stops there)."""
        return self.ctx.on_progress

    @on_progress.setter
    def on_progress(self, hook: Callable[[str, int], None] | None) -> None:
        self.ctx.on_progress = hook

    def connections_of(self, system: str) -> list[str]:
        return self.ctx.connections_of(system)

    # ------------------------------------------------------------------ the collaborators' work

    def pull(self, connection: str, entity_type: str, summary: SyncSummary, run_id: str | None,
             *, full: bool = False) -> None:
        self.ingester.pull(connection, entity_type, summary, run_id, full=full)

    def ingest(self, tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary,
               run_id: str | None) -> None:
        """Store a batch of records read from a connection (a page, or a webhook's records)."""
        self.ingester.ingest(tx, connector, records, summary, run_id)

    def repoint_holders(self, tx: Tx, connector: Connector, linked: Mapping[str, str],
                        summary: SyncSummary, run_id: str | None) -> set[str]:
        return self.ingester.repoint_holders(tx, connector, linked, summary, run_id)

    def plan(self, tx: Tx, entity: Entity, *, source_system: str, source_connection: str | None = None) -> int:
        return self.planner.plan(tx, entity, source_system=source_system, source_connection=source_connection)

    def repush(self, tx: Tx, canonical_id: str, *, only: str | None = None, nonce: str = "") -> int:
        return self.planner.repush(tx, canonical_id, only=only, nonce=nonce)

    def push(self, connection: str, summary: SyncSummary, run_id: str | None,
             *, entities: Sequence[str] | None = None, max_batches: int | None = None) -> None:
        self.pusher.push(connection, summary, run_id, entities=entities, max_batches=max_batches)

    # ------------------------------------------------------------------ one pass

    def sync(
        self,
        *,
        systems: Sequence[str] | None = None,
        entities: Sequence[str] | None = None,
        dry_run: bool = False,
        full: bool = False,
    ) -> SyncSummary:
        """One pass: pull every selected stream, then push what the pass planned."""
        summary = SyncSummary()
        chosen = [n for n, c in self.connectors.items()
                  if not systems or c.system in systems or n in systems]
        if dry_run:
            return self._dry_run(chosen, entities, summary, full)
        with self.store.transaction() as tx:
            run_id = tx.start_run("sync", ",".join(chosen))
        status = "ok"
        try:
            with run_lease(self.store, run_id):
                self._pull_all(chosen, entities, summary, run_id, full)
                for name in chosen:
                    if name in summary.paused:
                        continue
                    self.push(name, summary, run_id, entities=entities)
        except Exception as exc:
            status = "failed"
            summary.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if status == "ok" and summary.errors:
                status = "partial"
            with self.store.transaction() as tx:
                tx.finish_run(run_id, status, summary.to_json()["totals"],
                              "; ".join(summary.errors[:5]) or None)
        return summary

    def _pull_all(self, chosen: Sequence[str], entities: Sequence[str] | None, summary: SyncSummary,
                  run_id: str | None, full: bool) -> None:
        for entity_type in ENTITY_ORDER:
            if entities and entity_type not in entities:
                continue
            for name in chosen:
                connector = self.connectors[name]
                if name in summary.paused or entity_type not in self.routing.reads(connector.system):
                    continue
                if entity_type not in connector.entity_types():
                    continue
                paused = self.ctx.paused_reason(name)
                if paused:
                    summary.paused[name] = paused
                    continue
                try:
                    with self.store.stream_lock("sync", name, entity_type) as mine:
                        if not mine:  # another process is reading this stream right now
                            summary.stats(name, entity_type).skipped += 1
                            continue
                        self.pull(name, entity_type, summary, run_id, full=full)
                except ConnectorError as exc:
                    action = self.ctx.error_policy.decide(exc, 1)  # a read is retried next pass
                    if action.pauses:
                        self.ctx.pause(name, action)
                        summary.paused[name] = action.reason
                    else:
                        summary.errors.append(f"{name} {entity_type}: {exc}")

    def _dry_run(self, chosen: Sequence[str], entities: Sequence[str] | None, summary: SyncSummary,
                 full: bool) -> SyncSummary:
        """Read and plan without writing anywhere, then say what the push would do with each
        write planned (``sync.dry_run``: linked, unchanged, updated, created or held, and why).

        The reads and plans happen in state that is thrown away: on SQLite a snapshot copy of
        the database, on PostgreSQL one transaction that is rolled back. Connectors keep the
        real store, so a rotated OAuth refresh token is still saved for real (losing it would
        lock the hub out).
        """
        if self.store.engine.dialect.name == "sqlite":
            with tempfile.TemporaryDirectory(prefix="hub-dry-run-") as tmp:
                shadow_store = self.store.snapshot(Path(tmp) / "dry-run.db")
                try:
                    shadow = Engine(shadow_store, self.connectors, self.routing, tax_codes=self.tax_codes,
                                    clock=self.clock)
                    shadow._pull_all(chosen, entities, summary, None, full)
                    preview(shadow.pusher, chosen, entities, summary, self.held_for_review(chosen))
                finally:
                    shadow_store.dispose()
            return summary
        conn = self.store.engine.connect()
        outer = conn.begin()
        self.ctx.dry_conn = conn
        try:
            self._pull_all(chosen, entities, summary, None, full)
            preview(self.pusher, chosen, entities, summary, self.held_for_review(chosen))
        finally:
            self.ctx.dry_conn = None
            outer.rollback()
            conn.close()
        return summary

    @property
    def review_connections(self) -> set[str]:
        """Connections with ``first_contact = "review"`` (``sync.review``)."""
        return self.pusher.review

    @review_connections.setter
    def review_connections(self, names: set[str]) -> None:
        self.pusher.review = set(names)

    def held_for_review(self, chosen: Sequence[str]) -> list[str]:
        """The chosen connections whose writes wait for a person's approval."""
        return [name for name in chosen if self.pusher.awaiting_review(name)]

    # ------------------------------------------------------------------ resync

    def resync_record(self, connection: str, entity_type: str, external_id: str,
                      summary: SyncSummary | None = None) -> SyncSummary:
        """Re-read one record from its system and re-push wherever it belongs."""
        summary = summary or SyncSummary()
        connector = self.connectors[connection]
        with self.store.transaction() as tx:
            canonical = tx.canonical_for(connection, entity_type, external_id)
        record = None
        if canonical is not None:
            record = connector.lookup(entity_type, canonical)
        if record is None:
            for page in connector.fetch_all(entity_type):
                record = next((r for r in page.records if r.external_id == external_id), None)
                if record is not None:
                    break
        if record is None:
            raise LookupError(f"{connection} has no {entity_type} {external_id}")
        with self.store.transaction() as tx:
            self.ingest(tx, connector, [record], summary, None)
            canonical = tx.canonical_for(connection, entity_type, external_id)
            if canonical:
                self.repush(tx, canonical, nonce=f"resync:{self.clock().isoformat()}")
        for name in self.connectors:
            self.push(name, summary, None, entities=[entity_type])
        return summary


__all__ = ["ConnectionPaused", "Engine", "LinkResolver", "StreamStats", "SyncSummary", "fingerprint",
           "idempotency_key", "payload_digest"]
