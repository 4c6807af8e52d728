"""Push: outbox -> connector, exactly once.

Claims due outbox items, checks what the target needs first (pre-flight: references written,
totals consistent, tax codes mapped), maps, writes in batches, and links the result. An item
whose earlier outcome is unknown carries ``attempt > 1``, and the connector looks the record up
by the hub's marker before creating. A failed write goes by the one error table
(``sync.policy``): retried after a jittered wait, re-read after a conflict, held (dead-lettered,
with a finding that says what to fix), or the connection pauses and its items wait.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta

from connectors.base import (
    Connector,
    ConnectorError,
    DuplicateError,
    InvalidError,
    Outbound,
    RetryableError,
    WriteResult,
)
from mapping.model import CreditNote, Entity, Invoice, Subscription
from mapping.money import Money
from mapping.tax_codes import TaxCodes
from state.errors import LinkConflict
from state.records import Link
from state.store import OutboxItem, Tx
from sync.context import (
    MAPPING_ERRORS,
    ConnectionPaused,
    LinkResolver,
    SyncContext,
    payload_digest,
)
from sync.first_contact import differing, posting
from sync.flows import ENTITY_ORDER
from sync.ingest import Ingest
from sync.policy import Action, Do
from sync.review import REVIEW_WAIT, approved
from sync.summary import StreamStats, SyncSummary

# References a record needs in the target before it can be written there.
REFERENCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "price": (("product_id", "product"),),
    "subscription": (("customer_id", "customer"),),
    "invoice": (("customer_id", "customer"),),
    "payment": (("customer_id", "customer"), ("invoice_id", "invoice")),
    "refund": (("invoice_id", "invoice"),),
    "credit_note": (("customer_id", "customer"), ("invoice_id", "invoice")),
}
# How long the writes of a paused connection wait when the system named no time.
PAUSE_SECONDS = 300


class Pusher:
    def __init__(self, ctx: SyncContext, ingest: Ingest) -> None:
        self.ctx = ctx
        self.ingest = ingest
        # a dry run's preview (``sync.dry_run``) collects why each write would be held here
        self.notes: dict[int, str] | None = None
        # first_contact = "review" (``sync.review``): these connections' writes wait for approval
        self.review: set[str] = set()
        self._approved: set[str] = set()
        self._pushing: dict[str, threading.Lock] = {}  # connection -> held while it is pushed
        self._pushing_lock = threading.Lock()

    def push(self, connection: str, summary: SyncSummary, run_id: str | None,
             *, entities: Sequence[str] | None = None, max_batches: int | None = None) -> None:
        """Drain this connection's due outbox items, in reference order; with ``max_batches``,
        stop after that many batches (the daemon's pass then ends and its other work, one job at
        a time, gets its turn; the next pass goes on where this one stopped).

        One push per connection at a time in this process: the daemon's lanes run side by side
        on PostgreSQL (``sync/scheduler.py``), and a push that finds another under way for the
        same connection leaves the draining to it (its writes go with that pass or the next)."""
        with self._pushing_lock:
            busy = self._pushing.setdefault(connection, threading.Lock())
        if not busy.acquire(blocking=False):
            return
        try:
            self._push(connection, summary, run_id, entities=entities, max_batches=max_batches)
        finally:
            busy.release()

    def _push(self, connection: str, summary: SyncSummary, run_id: str | None,
              *, entities: Sequence[str] | None, max_batches: int | None) -> None:
        connector = self.ctx.connectors[connection]
        hold = self.awaiting_review(connection)  # prepared as usual, but nothing is sent
        facts = connector.capabilities().facts
        if facts is not None:  # read before any transaction maps a record for it (MappingFacts)
            try:
                facts.learn()
            except ConnectorError as exc:
                summary.errors.append(f"{connection}: cannot read what writing to it needs: {exc}")
                return
        started = self.ctx.clock()  # each due item at most once per pass (deferred ones wait)
        batches = 0
        for entity_type in ENTITY_ORDER:
            if entities and entity_type not in entities:
                continue
            if not self._ensure_first_contact(connector, entity_type, summary, run_id):
                continue  # never write before the target's existing records were read and matched
            while True:
                if max_batches is not None and batches >= max_batches:
                    return
                with self.ctx.store.transaction() as tx:
                    items = tx.claim_outbox(self.ctx.batch_size, target=connection, entity_type=entity_type,
                                            lease_seconds=self.ctx.lease_seconds, due_by=started)
                if not items:
                    break
                batches += 1
                try:
                    self._push_batch(connector, entity_type, items, summary, run_id, hold=hold)
                except ConnectionPaused as exc:
                    summary.paused[connection] = str(exc)
                    return
                self.ctx.progress(f"push {connection} {entity_type}", len(items))

    def awaiting_review(self, connection: str) -> bool:
        """Whether ``connection`` is held for a person's approval (``first_contact = "review"``)."""
        if connection not in self.review or connection in self._approved:
            return False
        with self.ctx.tx() as tx:
            self._approved |= approved(tx) & self.review
        return connection not in self._approved

    def _push_batch(self, connector: Connector, entity_type: str, items: Sequence[OutboxItem],
                    summary: SyncSummary, run_id: str | None, *, hold: bool = False) -> None:
        stats = summary.stats(connector.name, entity_type)
        ready: list[tuple[OutboxItem, Outbound]] = []
        digests: dict[str, str] = {}  # idempotency key -> hash of the payload sent
        with self.ctx.store.transaction() as tx, tx.remembering():
            self._prefetch_for_push(tx, connector.name, entity_type, items)
            refs = LinkResolver(tx, connector.name)
            for item in items:
                outbound = self._prepare(tx, connector, item, refs, stats, run_id)
                if outbound is not None:
                    ready.append((item, outbound))
                    digests[outbound.idempotency_key] = payload_digest(outbound.payload)
            if hold and ready:
                # first_contact = "review": the writes that would really be sent stay queued (not an
                # attempt) until `hub review approve`; records that agree were completed above
                for item, _ in ready:
                    tx.defer_outbox(item.id, REVIEW_WAIT, self.ctx.clock())
                summary.waiting_review[connector.name] = summary.waiting_review.get(connector.name, 0) + len(ready)
                return
        if not ready:
            return
        try:
            results = connector.upsert(entity_type, [o for _, o in ready])
        except ConnectorError as exc:
            action = self.ctx.error_policy.decide(exc, 1)  # only asked whether it pauses
            if action.pauses:
                self._release([item for item, _ in ready], action)
                self.ctx.pause(connector.name, action)
                raise ConnectionPaused(action.reason) from exc
            results = [WriteResult(o.idempotency_key, error=exc) for _, o in ready]
        if len(results) != len(ready):
            raise RuntimeError(f"{connector.name} returned {len(results)} results for {len(ready)} writes")
        with self.ctx.store.transaction() as tx, tx.remembering():
            # The links each result is written into, read for the batch at once.
            tx.prefetch_links_of([item.canonical_id for item, _ in ready], entity_type, [connector.name])
            tx.prefetch_links(connector.name, entity_type, [r.external_id for r in results if r.ok and r.external_id])
            paused: list[OutboxItem] = []
            pause: Action | None = None
            for (item, _outbound), result in zip(ready, results, strict=True):
                if result.ok and result.external_id:
                    self._written(tx, connector, item, result, stats, run_id, digests[item.idempotency_key])
                    continue
                wait_for = self._failed(tx, connector, item, result.error, stats, run_id)
                if wait_for is not None:
                    paused.append(item)
                    pause = pause or wait_for
        if pause is not None:
            # An item answered that the connection cannot be used now: the connection pauses, as
            # when the whole call is refused; the items wait for it instead of using up attempts.
            self._release(paused, pause)
            self.ctx.pause(connector.name, pause)
            raise ConnectionPaused(pause.reason)

    @staticmethod
    def _prefetch_for_push(tx: Tx, connection: str, entity_type: str, items: Sequence[OutboxItem]) -> None:
        """Read what preparing a batch asks, one statement per question: the hub records, their
        links in the target, and the target links of the records they refer to (an invoice's
        customer, a payment's invoice). Preparing then costs no single-row reads."""
        ids = [item.canonical_id for item in items]
        tx.prefetch_entities(ids)
        tx.prefetch_links_of(ids, entity_type, [connection])
        referenced: dict[str, list[str]] = defaultdict(list)
        for stored in filter(None, map(tx.get_entity, ids)):
            for field_name, ref_type in REFERENCE_FIELDS.get(stored.type, ()):
                if stored.data.get(field_name):
                    referenced[ref_type].append(str(stored.data[field_name]))
        for ref_type, ref_ids in referenced.items():
            tx.prefetch_links_of(ref_ids, ref_type, [connection])

    def _ensure_first_contact(self, connector: Connector, entity_type: str, summary: SyncSummary,
                              run_id: str | None) -> bool:
        """Before the first write to a stream, read it once so existing records are matched.

        Returns False when that read is impossible now (another job holds the stream, or the
        read failed): the writes wait for a later pass rather than risk duplicates. A stream
        being read right now also waits, cursor or not: a first read commits its cursor page
        by page, so a push between two of its pages (another process's, or this process's inbox
        run while the read has handed the lane on) took "a cursor exists" for "every record was
        matched", and created in Stripe a customer whose twin was on a page not read yet (the
        0.1x chaos run: 12 'duplicate stripe customer' findings, 207 records missing).
        """
        if entity_type not in self.ctx.routing.reads(connector.system) or entity_type not in connector.entity_types():
            return True
        try:
            with self.ctx.store.stream_lock("sync", connector.name, entity_type) as mine:
                if not mine:
                    return False
                with self.ctx.store.transaction() as tx:
                    if tx.get_cursor(connector.name, entity_type) is not None:
                        return True
                self.ingest.pull(connector.name, entity_type, summary, run_id)
        except ConnectorError as exc:
            summary.errors.append(f"{connector.name} {entity_type}: first read before writing failed: {exc}")
            return False
        with self.ctx.store.transaction() as tx:
            return tx.get_cursor(connector.name, entity_type) is not None

    def _prepare(self, tx: Tx, connector: Connector, item: OutboxItem, refs: LinkResolver,
                 stats: StreamStats, run_id: str | None) -> Outbound | None:
        stored = tx.get_entity(item.canonical_id)
        if stored is None:
            tx.dead_outbox(item.id, "the canonical record no longer exists")
            stats.dead += 1
            return None
        link = tx.link_for(item.canonical_id, connector.name, item.entity_type)
        if stored.content_hash != item.content_hash or (
                link is not None and link.last_pushed_hash == item.content_hash):
            if link is None and item.attempts > 0:
                # superseded while its create's outcome is unknown: the write that replaces it
                # may find the record this one made, so it must look before it creates
                tx.carry_unknown_outcome(item.canonical_id, item.target)
            tx.complete_outbox(item.id, link.external_id if link else None)  # superseded or done
            return None
        entity = stored.entity()
        source = self.ctx.connectors[stored.source].system if stored.source in self.ctx.connectors else "hub"
        if item.operation == "upsert" and connector.system not in self.ctx.routing.targets(entity, source):
            # planned before the record's posting changed (a negative invoice, now its credit
            # note; a credit note its refund since paid out whole): nothing of it goes here
            tx.complete_outbox(item.id, link.external_id if link else None)
            return None
        if link is None and (connector.name, item.entity_type, item.canonical_id) in self.ingest.ambiguous:
            self._hold(tx, connector, item, f"first contact found several {connector.name} {item.entity_type} "
                       "records for this hub record, or several hub records for one of them (a duplicate "
                       "finding): nothing is created there until one is kept (`hub resync --finding ID "
                       "--keep EXTERNAL_ID`)", stats, run_id)
            return None
        entity = posting(tx, entity)
        missing = self._missing_reference(entity, refs)
        if missing is not None and self._follow_placeholder(tx, missing[1], item.canonical_id):
            tx.complete_outbox(item.id, link.external_id if link else None)  # re-pointed: re-planned
            return None
        if missing is not None:
            # Waiting for a dependency is not an attempt: the diff reports it if it never arrives.
            waiting = f"waiting for {missing[0]} {missing[1]} to exist in {connector.name}"
            tx.defer_outbox(item.id, waiting, self.ctx.clock() + timedelta(seconds=self.ctx.backoff_seconds))
            if self.notes is not None:
                self.notes[item.id] = waiting
            stats.retried += 1
            return None
        problem = self._preflight(entity, connector)
        if problem:
            self._hold(tx, connector, item, problem, stats, run_id)
            return None
        try:
            payload = connector.from_canonical(entity, refs)
        except MAPPING_ERRORS as exc:
            self._hold(tx, connector, item, f"cannot map for {connector.name}: {exc}", stats, run_id)
            return None
        if (link is not None and not link.deleted and item.operation == "upsert"
                and (link.last_payload_hash == payload_digest(payload) or self._agrees(connector, entity, link))):
            # The change is invisible to this target (it cannot hold the changed field): no write.
            tx.link(item.canonical_id, connector.name, item.entity_type, link.external_id,
                    pushed_hash=item.content_hash)
            tx.complete_outbox(item.id, link.external_id)
            stats.unchanged += 1
            return None
        return Outbound(item.entity_type, item.canonical_id, payload, item.idempotency_key,
                        external_id=link.external_id if link and not link.deleted else None,
                        operation=item.operation, attempt=item.attempts,
                        remote_version=link.remote_version if link else None)

    def _agrees(self, connector: Connector, entity: Entity, link: Link) -> bool:
        """Whether the record linked at first contact (never written by the hub since) already
        holds what the hub has, by the diff's rules: then it is linked and not written."""
        seen = self.ingest.first_seen.get((connector.name, entity.type, link.canonical_id))
        if seen is None or link.last_pushed_hash == "":
            return False  # not first contact, or a repair that must really write (``Planner.repush``)
        return not differing(connector.system, entity, seen, self.ingest.home(connector.name))

    def _missing_reference(self, entity: Entity, refs: LinkResolver) -> tuple[str, str] | None:
        """(type, hub id) of a record ``entity`` names that the target does not have yet."""
        for field_name, ref_type in REFERENCE_FIELDS.get(entity.type, ()):
            ref = getattr(entity, field_name, None)
            if ref and refs.external_id(ref_type, ref) is None:
                return ref_type, ref
        if isinstance(entity, Subscription):
            for sub_item in entity.items:
                if refs.external_id("price", sub_item.price_id) is None:
                    return "price", sub_item.price_id
        return None

    def _follow_placeholder(self, tx: Tx, ref_id: str, holder_id: str) -> bool:
        """A write of ``holder_id`` waits for ``ref_id``: if that is the placeholder of a record
        linked since to another hub record, re-point its holders (and re-plan them) and say
        whether ``holder_id`` was among them (its write is then superseded). This is for a
        link made by another process while the holder was stored: neither transaction saw the
        other, so the link's own re-pointing (``repoint_holders``) found no holder."""
        named = tx.placeholder_record(ref_id)
        if named is None:
            return False
        connection, object_type, external_id = named
        connector = self.ctx.connectors.get(connection)
        canonical = tx.canonical_for(connection, object_type, external_id)
        if connector is None or canonical is None or canonical == ref_id:
            return False
        return holder_id in self.ingest.repoint_holders(tx, connector, {ref_id: canonical}, SyncSummary(), None)

    def _preflight(self, entity: Entity, connector: Connector) -> str | None:
        """What a ledger would refuse or the hub must not guess at: an amount beyond the sanity
        bound, inconsistent totals, unmapped tax rates. (A negative invoice never gets here for a
        ledger: it is routed as the credit note ``sync.postings`` derives from it.)"""
        bound = self.ctx.max_amount_minor
        largest = max((m for m in _amounts(entity)), key=lambda m: abs(m.minor), default=None)
        if largest is not None and abs(largest.minor) > bound:
            return (f"{entity.type} {getattr(entity, 'number', None) or entity.id}: amount {largest} is beyond "
                    f"the sanity bound of {bound:,} minor units ([flows] max_amount_minor); check the record "
                    "at its source, or raise the bound if the amount is real")
        if isinstance(entity, Invoice):
            if not entity.totals_consistent():
                return (f"invoice {entity.number or entity.id}: total {entity.total} is not lines + tax - "
                        "discounts; fix the invoice at its source")
        if isinstance(entity, (Invoice, CreditNote)):
            # the one lookup the ledger mappings use (rate, reason, country; mapping/tax_codes.py);
            # untaxed lines are the mapping's to code (a US company's NON, Xero's "0")
            codes = TaxCodes(self.ctx.tax_codes.get(connector.system) or {}, connector.system)
            if codes:
                missing = codes.first_missing(line for line in entity.lines if line.tax_rate is not None)
                if missing:
                    return missing
        return None

    def _written(self, tx: Tx, connector: Connector, item: OutboxItem, result: WriteResult,
                 stats: StreamStats, run_id: str | None, digest: str) -> None:
        assert result.external_id is not None
        version = result.record.version if result.record else None
        try:
            tx.link(item.canonical_id, connector.name, item.entity_type, result.external_id,
                    pushed_hash=item.content_hash, payload_hash=digest, remote_version=version, replace=True)
        except LinkConflict as exc:
            self.ctx.finding(tx, "duplicate", item.entity_type, connector.name, item.canonical_id,
                          [result.external_id], f"{connector.name} answered with {result.external_id}, "
                          f"which is linked to hub record {exc.existing}", run_id)
            tx.dead_outbox(item.id, str(exc))
            stats.dead += 1
            return
        tx.complete_outbox(item.id, result.external_id)
        self.ingest.first_seen.pop((connector.name, item.entity_type, item.canonical_id), None)  # written now
        stats.written += 1

    def _failed(self, tx: Tx, connector: Connector, item: OutboxItem, error: ConnectorError | None,
                stats: StreamStats, run_id: str | None) -> Action | None:
        """Act on a failed write by the error table; returns the action when it pauses the
        connection (the caller releases the item and pauses), else None."""
        error = error or RetryableError("no external id in the write result", system=connector.name)
        action = self.ctx.error_policy.decide(error, item.attempts)
        if action.pauses:
            return action
        if action.do in (Do.RETRY, Do.REREAD):
            # A re-read needs nothing more here: the next attempt carries ``attempt > 1`` and the
            # connection's current version, so the connector reads the record before it writes.
            assert action.wait is not None
            tx.fail_outbox(item.id, str(error), self.ctx.clock() + timedelta(seconds=action.wait))
            stats.retried += 1
        elif isinstance(error, DuplicateError):
            self.ctx.finding(tx, "duplicate", item.entity_type, connector.name, item.canonical_id,
                             error.candidates, f"{error}: several {connector.name} records match; pick one "
                             "with `hub resync --finding ID --keep EXTERNAL_ID`", run_id)
            tx.dead_outbox(item.id, str(error))
            stats.held += 1
        elif isinstance(error, InvalidError):
            self._hold(tx, connector, item, f"rejected by {connector.name}: {error.message}", stats, run_id)
        else:
            self._hold(tx, connector, item, action.reason, stats, run_id)
        return None

    def _hold(self, tx: Tx, connector: Connector, item: OutboxItem, reason: str, stats: StreamStats,
              run_id: str | None) -> None:
        """Dead-letter the write and open a finding that says what to fix."""
        if self.notes is not None:
            self.notes[item.id] = reason
        tx.dead_outbox(item.id, reason)
        self.ctx.finding(tx, "missing", item.entity_type, connector.name, item.canonical_id, [],
                         f"held: {reason}", run_id, key="held")
        stats.dead += 1

    def _release(self, items: Sequence[OutboxItem], action: Action) -> None:
        """Give claimed writes back, due when the paused connection may be used again."""
        until = action.until or self.ctx.clock() + timedelta(seconds=PAUSE_SECONDS)
        with self.ctx.store.transaction() as tx:
            for item in items:
                tx.fail_outbox(item.id, action.reason, until)


def _amounts(value: object) -> Iterator[Money]:
    """Every amount in an entity, its lines' included."""
    if isinstance(value, Money):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _amounts(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _amounts(getattr(value, f.name))


__all__ = ["REFERENCE_FIELDS", "Pusher"]
