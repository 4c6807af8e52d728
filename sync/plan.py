"""Plan: the outbox items a canonical change calls for, one per target connection, each with a
deterministic idempotency key derived from (canonical id, target, content hash)."""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import Connector
from mapping.keys import MATCH_KEYS, natural_digests
from mapping.model import Deal, Entity, content_hash, to_data
from state.store import Tx
from sync.billing import derive_billing
from sync.context import SyncContext, idempotency_key
from sync.deals import derive_from_deal
from sync.first_contact import hub_digests
from sync.flows import billable_targets
from sync.postings import derive_postings
from sync.summary import SyncSummary

AMBIGUOUS = "ambiguous"


class Planner:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        # told when a sighted record is linked (``Ingest.linked_sighting``: the push compares it)
        self.on_sighting_linked: Callable[[str, str, str, str], None] | None = None

    def plan(self, tx: Tx, entity: Entity, *, source_system: str, source_connection: str | None = None) -> int:
        """Enqueue the writes a canonical change calls for; returns how many were queued."""
        digest = tx.known_digest(entity) or content_hash(entity)
        queued = 0
        if entity.extra.get("erased"):
            return 0  # an erasure stays in the hub; the ledgers keep what the books need
        for target_system in self.ctx.routing.targets(entity, source_system):
            for connection in self.ctx.connections_of(target_system):
                if connection == source_connection:
                    continue
                link = tx.link_for(entity.id, connection, entity.type)
                if link is None and not _is_void(entity):
                    sighted = self._link_sighted(tx, entity, connection)
                    if sighted == AMBIGUOUS:
                        continue  # a duplicate finding: writing would create a third copy
                    link = tx.link_for(entity.id, connection, entity.type) if sighted else None
                if link is not None and link.last_pushed_hash == digest:
                    continue
                operation = "upsert"
                if _is_void(entity):
                    if link is None or link.deleted:
                        continue  # a void only follows to a record the target already has
                    operation = "void"
                # The key names what the write replaces too: content alone repeats when a record
                # returns to what was written before (a credit applied to an invoice, then voided:
                # it owes its whole amount again), and that key, long used, would be ignored.
                prior = link.last_pushed_hash if link is not None else None
                key = idempotency_key(entity.id, connection, f"{digest}/after/{prior}" if prior else digest)
                if tx.enqueue(entity.id, entity.type, connection, operation, key, digest,
                              external_id=link.external_id if link else None):
                    queued += 1
        return queued

    def _link_sighted(self, tx: Tx, entity: Entity, connection: str) -> str | None:
        """Link ``entity`` to the record ``connection`` already has for it, read before the hub
        knew it (``state.sightings``); returns its id, ``AMBIGUOUS`` or None.

        The same rule as first contact when the source is read first: the hub's marker, then
        natural keys, most specific first, then a payment's or refund's settlement key; exactly one candidate is linked (the write then updates it), several are
        a duplicate finding and nothing is written."""
        if not tx.any_sightings(connection, entity.type):
            return None  # nothing sighted there (one lookup per transaction): no keys to work out
        digests = hub_digests(entity.id, natural_digests(to_data(entity), entity.type))
        found = tx.sightings_matching(connection, entity.type, digests)
        for key in ("hub_id", *MATCH_KEYS):
            stale = [x for x in found.get(key, []) if tx.canonical_for(connection, entity.type, x)]
            tx.drop_sightings(connection, entity.type, stale)  # linked since: not waiting any more
            candidates = [x for x in found.get(key, []) if x not in stale]
            if len(candidates) == 1:
                tx.link(entity.id, connection, entity.type, candidates[0])
                if self.on_sighting_linked is not None:
                    self.on_sighting_linked(connection, entity.type, candidates[0], entity.id)
                tx.drop_sightings(connection, entity.type, candidates)
                return candidates[0]
            if len(candidates) > 1:
                self.ctx.finding(tx, "duplicate", entity.type, connection, entity.id, candidates,
                                 f"{len(candidates)} {connection} {entity.type} records match one hub "
                                 f"record by {key}; keep one with `hub resync --finding ID --keep "
                                 "EXTERNAL_ID`", None)
                return AMBIGUOUS
        return None

    def planned(self, tx: Tx, entity: Entity, connector: Connector, summary: SyncSummary,
                run_id: str | None) -> None:
        """Plan the writes a hub record changed from ``connector`` calls for, and what the flow
        rules derive from it (a won deal's subscription or invoice, its customer's billing state)."""
        self.plan(tx, entity, source_system=connector.system, source_connection=connector.name)
        if isinstance(entity, Deal):
            derive_from_deal(self.ctx, tx, entity, summary, run_id, self._plan_hub_record)
        derive_billing(tx, entity, self.ctx.clock().date(), self.plan_derived, run_id, self._ledgers())
        derive_postings(tx, entity, connector.name, run_id, self.plan_derived)

    def plan_derived(self, tx: Tx, entity: Entity, source: str) -> int:
        """Plan a record a posting rule changed, as from ``source`` (its connection, or "hub")."""
        system = self.ctx.connectors[source].system if source in self.ctx.connectors else "hub"
        return self.plan(tx, entity, source_system=system, source_connection=source)

    def _plan_hub_record(self, tx: Tx, entity: Entity) -> int:
        queued = self.plan(tx, entity, source_system="hub")
        derive_billing(tx, entity, self.ctx.clock().date(), self.plan_derived, None, self._ledgers())
        return queued

    def _ledgers(self) -> list[str]:
        """The connections a customer reaches once billable (those of the ledgers)."""
        return [c for system in billable_targets(self.ctx.routing.flows) for c in self.ctx.connections_of(system)]

    def repush(self, tx: Tx, canonical_id: str, *, only: str | None = None, nonce: str = "") -> int:
        """Queue the canonical truth again for every target (or ``only`` one connection).

        ``nonce`` makes the idempotency keys new for this request (a repair must really write,
        while retries of that repair still share one key).
        """
        stored = tx.get_entity(canonical_id)
        if stored is None:
            return 0
        entity = stored.entity()
        connectors = self.ctx.connectors
        source = connectors[stored.source].system if stored.source in connectors else "hub"
        targets = [only] if only else [c for system in self.ctx.routing.targets(entity, source)
                                       for c in self.ctx.connections_of(system)]
        queued = 0
        for connection in targets:
            link = tx.link_for(canonical_id, connection, entity.type)
            operation = "upsert"
            if _is_void(entity):
                # a void is pushed as a void, never an upsert (which would un-void it in
                # QuickBooks), and only to a record the target has
                if link is None or link.deleted or link.last_pushed_hash == stored.content_hash:
                    continue  # nothing there to void, or this very void has landed
                operation = "void"
            if link is not None:  # forget what was written, so the repair really writes
                tx.link(canonical_id, connection, entity.type, link.external_id, pushed_hash="",
                        payload_hash="")
            key = idempotency_key(canonical_id, connection, f"{stored.content_hash}/{nonce}")
            # a repair's record may already be there (a lost or broken link): look it up first
            if tx.enqueue(canonical_id, entity.type, connection, operation, key, stored.content_hash,
                          external_id=link.external_id if link and not link.deleted else None,
                          may_exist=True):
                queued += 1
        return queued


def _is_void(entity: Entity) -> bool:
    """A voided document: never created in a target, only voided where it already exists."""
    if entity.type == "payout":  # a payout that failed after it was paid follows only where it is
        return getattr(entity, "status", "") in ("failed", "canceled")
    return entity.type in ("invoice", "credit_note") and getattr(entity, "status", "") == "void"


__all__ = ["Planner"]
