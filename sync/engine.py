"""The hub: pull -> map -> store -> plan -> push, exactly once.

* **Pull** reads a page of changes from a connection; one transaction stores the canonical
  changes, their history, the outbox intents they cause and the advanced cursor (invariant 3).
* **Map** goes through the connector's pure mapping; a record that fails to map is counted and
  reported, and the rest of the page proceeds.
* **Store** merges by field ownership (``sync.flows.Ownership``) and is gated by content hash:
  unchanged content writes nothing and plans nothing — which is also how echoes of the hub's own
  writes are dropped.
* **Plan** enqueues one outbox item per target connection with a deterministic idempotency key
  derived from (canonical id, target, content hash).
* **Push** claims due outbox items, checks what the target needs first (pre-flight), maps, writes
  in batches, and links the result. An item whose earlier outcome is unknown carries
  ``attempt > 1``, and the connector looks the record up by the hub's marker before creating.

First contact: a record seen for the first time in a system is matched to an existing canonical
record by the hub's marker, then by natural keys (email, name, number); exactly one candidate is
linked, several are a ``duplicate`` finding and nothing is written for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.base import (
    AuthError,
    ConflictError,
    Connector,
    ConnectorError,
    DuplicateError,
    InvalidError,
    Outbound,
    QuotaExhausted,
    RateLimited,
    Record,
    RetryableError,
    WriteResult,
)
from mapping.keys import NATURAL_KEYS, normalise_key
from mapping.model import (
    Deal,
    Entity,
    Invoice,
    InvoiceLine,
    Money,
    MoneyError,
    Price,
    Subscription,
    SubscriptionItem,
    content_hash,
    repoint,
    stable_id,
)
from state.errors import LinkConflict
from state.store import OutboxItem, StateStore, Tx
from sync.flows import ENTITY_ORDER, Routing

log = logging.getLogger("billhub.engine")

_KEY_NAMESPACE = uuid.UUID("0b5f1d0e-8a43-4d1b-9a55-3c1e7c2f9d20")
MAPPING_ERRORS = (KeyError, ValueError, TypeError, MoneyError, InvalidError, AttributeError)
# References a record needs in the target before it can be written there.
REFERENCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "price": (("product_id", "product"),),
    "subscription": (("customer_id", "customer"),),
    "invoice": (("customer_id", "customer"),),
    "payment": (("customer_id", "customer"), ("invoice_id", "invoice")),
    "refund": (("invoice_id", "invoice"),),
    "credit_note": (("customer_id", "customer"), ("invoice_id", "invoice")),
}


def idempotency_key(canonical_id: str, target: str, digest: str) -> str:
    """Deterministic, 36 characters (fits QuickBooks' requestid and every other system's key)."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{canonical_id}/{target}/{digest}"))


def payload_digest(payload: Mapping[str, Any]) -> str:
    """Hash of a target payload (Decimals and dates as text; key order irrelevant)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


class ConnectionPaused(Exception):
    """A connection cannot be used now (needs re-authorisation or a budget is spent)."""


@dataclass
class StreamStats:
    read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    linked: int = 0
    skipped: int = 0
    failed: int = 0
    written: int = 0
    held: int = 0
    dead: int = 0
    retried: int = 0


@dataclass
class SyncSummary:
    streams: dict[tuple[str, str], StreamStats] = field(default_factory=lambda: defaultdict(StreamStats))
    errors: list[str] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run: the writes it would make
    paused: dict[str, str] = field(default_factory=dict)

    def stats(self, connection: str, entity_type: str) -> StreamStats:
        return self.streams[(connection, entity_type)]

    def merge(self, other: SyncSummary) -> None:
        """Add another summary's figures to this one (work done side by side)."""
        for key, theirs in other.streams.items():
            mine = self.streams[key]
            for f in dataclasses.fields(StreamStats):
                setattr(mine, f.name, getattr(mine, f.name) + getattr(theirs, f.name))
        self.errors.extend(other.errors)
        self.planned.extend(other.planned)
        self.paused.update(other.paused)

    def totals(self) -> StreamStats:
        total = StreamStats()
        for s in self.streams.values():
            for f in dataclasses.fields(StreamStats):
                setattr(total, f.name, getattr(total, f.name) + getattr(s, f.name))
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "streams": [{"connection": c, "entity": e, **dataclasses.asdict(s)}
                        for (c, e), s in sorted(self.streams.items())],
            "totals": dataclasses.asdict(self.totals()),
            "errors": self.errors[:100],
            "planned": self.planned,
            "paused": self.paused,
        }


class LinkResolver:
    """``RefResolver`` for one connection inside one transaction."""

    def __init__(self, tx: Tx, connection: str) -> None:
        self.tx = tx
        self.connection = connection
        # placeholder -> (connection, type, external id): answered for records not linked yet
        self.placeholders: dict[str, tuple[str, str, str]] = {}

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        linked = self.tx.canonical_for(self.connection, entity_type, external_id)
        if linked:
            return linked
        placeholder = stable_id(self.connection, entity_type, external_id)
        self.placeholders[placeholder] = (self.connection, entity_type, external_id)
        return placeholder

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        link = self.tx.link_for(canonical_id, self.connection, entity_type)
        return None if link is None or link.deleted else link.external_id


class _AskedRefs:
    """A ``RefResolver`` that answers from nothing and notes the references it was asked."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.asked: dict[str, set[str]] = defaultdict(set)

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        self.asked[entity_type].add(external_id)
        return stable_id(self.connection, entity_type, external_id)

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None


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
    ) -> None:
        self.store = store
        self.connectors = dict(connectors)
        self.routing = routing
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.batch_size = batch_size
        # How long a claimed write stays claimed: a process that dies mid-write gives it back after
        # this. Longer than the slowest write, shorter than anyone wants to wait.
        self.lease_seconds = lease_seconds
        self.tax_codes = tax_codes or {}
        self.clock = clock or store.clock
        self._dry_conn: Any = None
        self.on_progress: Callable[[str, int], None] | None = None

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        """A store transaction, or a savepoint inside the dry run's never-committed one."""
        if self._dry_conn is None:
            with self.store.transaction() as tx:
                yield tx
            return
        with self._dry_conn.begin_nested():
            yield Tx(self._dry_conn, self.store)

    def connections_of(self, system: str) -> list[str]:
        return [name for name, c in self.connectors.items() if c.system == system]

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
                paused = self._paused_reason(name)
                if paused:
                    summary.paused[name] = paused
                    continue
                try:
                    with self.store.stream_lock("sync", name, entity_type) as mine:
                        if not mine:  # another process is reading this stream right now
                            summary.stats(name, entity_type).skipped += 1
                            continue
                        self.pull(name, entity_type, summary, run_id, full=full)
                except (AuthError, QuotaExhausted) as exc:
                    self._pause(name, exc)
                    summary.paused[name] = str(exc)
                except ConnectorError as exc:
                    summary.errors.append(f"{name} {entity_type}: {exc}")

    def _dry_run(self, chosen: Sequence[str], entities: Sequence[str] | None, summary: SyncSummary,
                 full: bool) -> SyncSummary:
        """Read and plan without writing anywhere.

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
                    before = _pending_ids(shadow_store)
                    shadow._pull_all(chosen, entities, summary, None, full)
                    with shadow_store.transaction() as tx:
                        summary.planned = _planned_writes(tx, before)
                finally:
                    shadow_store.dispose()
            return summary
        conn = self.store.engine.connect()
        outer = conn.begin()
        self._dry_conn = conn
        try:
            before = {i.id for i in Tx(conn, self.store).list_outbox(limit=10**9)}
            self._pull_all(chosen, entities, summary, None, full)
            summary.planned = _planned_writes(Tx(conn, self.store), before)
        finally:
            self._dry_conn = None
            outer.rollback()
            conn.close()
        return summary

    # ------------------------------------------------------------------ pull

    def pull(self, connection: str, entity_type: str, summary: SyncSummary, run_id: str | None,
             *, full: bool = False) -> None:
        connector = self.connectors[connection]
        with self._tx() as tx:
            cursor = tx.get_cursor(connection, entity_type)
        pages = connector.fetch_all(entity_type) if full else connector.fetch_changes(entity_type, cursor)
        for page in pages:
            with self._tx() as tx:
                self.ingest(tx, connector, page.records, summary, run_id)
                if page.cursor is not None and not full:
                    tx.set_cursor(connection, entity_type, page.cursor)
            if self.on_progress:
                self.on_progress(f"{connection} {entity_type}", len(page.records))

    def ingest(self, tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary,
               run_id: str | None) -> None:
        """Store a batch of records read from a connection (a page, or a webhook's records)."""
        refs = LinkResolver(tx, connector.name)
        linked: dict[str, str] = {}  # placeholder -> hub record, for the records linked here
        with tx.remembering():
            self._prefetch(tx, connector, records, refs)
            matches = self._match_unlinked(tx, connector, records, run_id)
            for record in records:
                stats = summary.stats(connector.name, record.entity_type)
                stats.read += 1
                try:
                    self._ingest_one(tx, connector, record, refs, matches, stats, summary, run_id, linked)
                except MAPPING_ERRORS as exc:
                    stats.failed += 1
                    summary.errors.append(f"{connector.name} {record.entity_type} {record.external_id}: "
                                          f"cannot map ({type(exc).__name__}: {exc})")
            if linked:
                self.repoint_holders(tx, connector, linked, summary, run_id)

    def repoint_holders(self, tx: Tx, connector: Connector, linked: Mapping[str, str],
                        summary: SyncSummary, run_id: str | None) -> set[str]:
        """Hub records that named a record of ``connector`` before it was linked hold its
        placeholder id; now it is linked (placeholder -> hub record), point them at the hub
        record it was linked to. Without this, a Stripe invoice stored before its customer was
        matched by email to the hub customer Salesforce made would name a customer no ledger
        will ever have, and its writes would wait for good. Returns the records re-pointed."""
        repointed_ids: set[str] = set()
        for placeholder, holders in tx.take_placeholder_holders(linked).items():
            canonical = linked[placeholder]
            if canonical == placeholder:
                continue  # linked as itself: the holders already name it
            for holder_id in holders:
                stored = tx.get_entity(holder_id)
                if stored is None or stored.deleted:
                    continue
                entity = stored.entity()
                if entity.extra.get("erased"):
                    continue
                repointed = repoint(entity, placeholder, canonical)
                if repointed == entity:
                    continue
                stats = summary.stats(connector.name, entity.type)
                outcome = tx.upsert_entity(repointed, connector.name, run_id=run_id)
                setattr(stats, outcome, getattr(stats, outcome) + 1)
                self._planned(tx, repointed, connector, summary, run_id)
                repointed_ids.add(holder_id)
        return repointed_ids

    def _prefetch(self, tx: Tx, connector: Connector, records: Sequence[Record], refs: LinkResolver) -> None:
        """Read what ingesting the page will ask, one statement per question for the page: the
        records' links, their hub records, and those records' links in every connection (the
        plan asks each). A record then costs its own writes, not a dozen single-row reads."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for record in records:
            by_type[record.entity_type].append(record.external_id)
        connections = list(self.connectors)
        for entity_type, external_ids in by_type.items():
            tx.prefetch_links(connector.name, entity_type, external_ids)
            canonical_ids = [refs.canonical_id(entity_type, e) for e in external_ids]
            tx.prefetch_entities(canonical_ids)
            tx.prefetch_links_of(canonical_ids, entity_type, connections)
        # The records' references (an invoice's customer, a payment's invoice): mapping the page
        # once against a resolver that only notes what it is asked costs far less than the one
        # link read per reference the real mapping would otherwise make.
        asked = _AskedRefs(connector.name)
        for record in records:
            if not record.deleted:
                try:
                    connector.to_canonical(record, asked)
                except MAPPING_ERRORS:
                    pass  # the real mapping reports it
        for entity_type, referenced in asked.asked.items():
            tx.prefetch_links(connector.name, entity_type, referenced)

    def _match_unlinked(self, tx: Tx, connector: Connector, records: Sequence[Record],
                        run_id: str | None) -> dict[str, str]:
        """First contact for a page: external id -> canonical id, or "ambiguous".

        Two records of one system claiming the same hub record are both held: that is a
        duplicate in the system, and linking either would be a guess.
        """
        matches: dict[str, str] = {}
        claims: dict[tuple[str, str], list[str]] = defaultdict(list)
        unlinked = [r for r in records
                    if not r.deleted and not tx.canonical_for(connector.name, r.entity_type, r.external_id)]
        keys = {id(r): connector.natural_keys(r) for r in unlinked}
        tx.prefetch_entities(k["hub_id"] for k in keys.values() if k.get("hub_id"))
        known: dict[tuple[str, str], dict[str, list[str]]] = {}  # (type, key) -> value -> ids
        for entity_type in {r.entity_type for r in unlinked}:
            for key in NATURAL_KEYS:
                values = [normalise_key(keys[id(r)].get(key)) for r in unlinked if r.entity_type == entity_type]
                if any(values):
                    known[(entity_type, key)] = tx.entities_with_keys(entity_type, key, values)
        for record in unlinked:
            match = self._first_contact(tx, connector, record, keys[id(record)], known, run_id)
            if match is None:
                continue
            matches[record.external_id] = match
            if match != "ambiguous":
                claims[(record.entity_type, match)].append(record.external_id)
        for (entity_type, canonical), claimants in claims.items():
            existing = tx.link_for(canonical, connector.name, entity_type)
            if existing is not None and not existing.deleted:
                claimants = [existing.external_id, *claimants]
            if len(claimants) < 2:
                continue
            for external_id in claimants:
                matches[external_id] = "ambiguous"
            self._finding(tx, "duplicate", entity_type, connector.name, canonical, claimants,
                          f"{len(claimants)} {connector.name} {entity_type} records match one hub record; "
                          "keep one with `hub resync --finding ID --keep EXTERNAL_ID`", run_id)
        return matches

    def _ingest_one(self, tx: Tx, connector: Connector, record: Record, refs: LinkResolver,
                    matches: Mapping[str, str], stats: StreamStats,
                    summary: SyncSummary, run_id: str | None, linked: dict[str, str]) -> None:
        name, system, etype = connector.name, connector.system, record.entity_type
        canonical = tx.canonical_for(name, etype, record.external_id)
        if record.deleted:
            self._ingest_deletion(tx, connector, record, canonical, stats, run_id)
            return
        refs.placeholders.clear()
        incoming = connector.to_canonical(record, refs)
        placeholder = incoming.id  # its own placeholder when it is not linked yet
        dangling = {p: named for p, named in refs.placeholders.items() if p != placeholder}
        is_source = self.routing.is_source(etype, system)
        first_sighting = canonical is None
        if canonical is None:
            match = matches.get(record.external_id)
            if match == "ambiguous":
                stats.held += 1
                return
            if match is None and not is_source:
                stats.skipped += 1  # a record only this system has: the diff calls it an orphan
                return
            canonical = match or incoming.id
        incoming = dataclasses.replace(incoming, id=canonical)
        stored = tx.get_entity(canonical)
        existing = stored.entity() if stored is not None else None
        if existing is None and not is_source:
            stats.skipped += 1
            return
        if existing is not None and existing.extra.get("erased"):
            stats.unchanged += 1  # erased on request (GDPR): never re-imported, never propagated
            return
        merged = self.routing.ownership.merge(existing, incoming, system)
        outcome = tx.upsert_entity(merged, name, run_id=run_id)
        setattr(stats, outcome, getattr(stats, outcome) + 1)
        try:
            tx.link(canonical, name, etype, record.external_id, seen_hash=content_hash(incoming),
                    remote_version=record.version)
        except LinkConflict as exc:
            self._finding(tx, "duplicate", etype, name, canonical, [record.external_id, exc.external_id],
                          f"{name} has two {etype} records for one hub record: {exc}", run_id)
            stats.held += 1
            return
        if dangling:
            tx.note_placeholders(canonical, dangling)
        if first_sighting:
            stats.linked += 1
            linked[placeholder] = canonical
        if outcome != "unchanged":
            self._planned(tx, merged, connector, summary, run_id)

    def _planned(self, tx: Tx, entity: Entity, connector: Connector, summary: SyncSummary,
                 run_id: str | None) -> None:
        """Plan the writes a hub record changed from ``connector`` calls for."""
        self.plan(tx, entity, source_system=connector.system, source_connection=connector.name)
        if isinstance(entity, Deal):
            self._derive_from_deal(tx, entity, summary, run_id)

    def _ingest_deletion(self, tx: Tx, connector: Connector, record: Record, canonical: str | None,
                         stats: StreamStats, run_id: str | None) -> None:
        if canonical is None:
            stats.skipped += 1
            return
        tx.mark_link_deleted(connector.name, record.entity_type, record.external_id)
        stored = tx.get_entity(canonical)
        owner = self.routing.ownership.owner(record.entity_type, "*")
        if stored is not None and owner == connector.system and not stored.deleted:
            tx.upsert_entity(stored.entity(), connector.name, run_id=run_id, deleted=True)
            stats.changed += 1
        else:
            stats.unchanged += 1

    def _first_contact(self, tx: Tx, connector: Connector, record: Record, keys: Mapping[str, str],
                       known: Mapping[tuple[str, str], Mapping[str, list[str]]], run_id: str | None) -> str | None:
        """Match an unlinked record to canonical records: marker, then natural keys (``known``:
        the page's key lookups, asked once for the page before any of it is stored)."""
        marker = keys.get("hub_id")
        if marker:
            stored = tx.get_entity(marker)
            if stored is not None and stored.type == record.entity_type:
                return marker
        for key in NATURAL_KEYS:
            value = normalise_key(keys.get(key))
            if not value:
                continue
            candidates = known.get((record.entity_type, key), {}).get(value, [])
            if len(candidates) == 1:
                return candidates[0]
            if len(candidates) > 1:
                self._finding(tx, "duplicate", record.entity_type, connector.name, None,
                              [record.external_id],
                              f"{connector.name} {record.entity_type} {record.external_id} matches "
                              f"{len(candidates)} hub records by {key} {value!r}; link the right one "
                              "with `hub resync --finding ID --keep EXTERNAL_ID`", run_id,
                              fields={key: {"hub": value}})
                return "ambiguous"
        return None

    # ------------------------------------------------------------------ plan

    def plan(self, tx: Tx, entity: Entity, *, source_system: str, source_connection: str | None = None) -> int:
        """Enqueue the writes a canonical change calls for; returns how many were queued."""
        digest = content_hash(entity)
        queued = 0
        if entity.extra.get("erased"):
            return 0  # an erasure stays in the hub; the ledgers keep what the books need
        for target_system in self.routing.targets(entity, source_system):
            for connection in self.connections_of(target_system):
                if connection == source_connection:
                    continue
                link = tx.link_for(entity.id, connection, entity.type)
                if link is not None and link.last_pushed_hash == digest:
                    continue
                operation = "upsert"
                if _is_void(entity):
                    if link is None or link.deleted:
                        continue  # a void only follows to a record the target already has
                    operation = "void"
                if tx.enqueue(entity.id, entity.type, connection, operation,
                              idempotency_key(entity.id, connection, digest), digest,
                              external_id=link.external_id if link else None):
                    queued += 1
        return queued

    def _derive_from_deal(self, tx: Tx, deal: Deal, summary: SyncSummary, run_id: str | None) -> None:
        """A won deal becomes a subscription (recurring lines) or a one-off invoice."""
        if not deal.won or not deal.customer_id:
            return
        recurring = [line for line in deal.lines if line.recurring_interval]
        one_off = [line for line in deal.lines if not line.recurring_interval]
        if recurring:
            items = []
            for line in recurring:
                price = self._price_for(tx, line.product_id, line.unit_amount, line.recurring_interval)
                if price is None:
                    self._finding(tx, "missing", "price", "stripe", deal.id, [],
                                  f"deal {deal.name!r}: no active {line.recurring_interval}ly price of "
                                  f"{line.unit_amount} for product {line.product_id}; create it in Stripe",
                                  run_id)
                    summary.stats("hub", "subscription").held += 1
                    return
                items.append(SubscriptionItem(price.id, int(line.quantity)))
            sub = Subscription(stable_id("hub", "subscription", deal.id), customer_id=deal.customer_id,
                               status="active", currency=deal.currency, items=tuple(items), deal_id=deal.id)
            if tx.upsert_entity(sub, "hub", run_id=run_id) != "unchanged":
                self.plan(tx, sub, source_system="hub")
        if one_off:
            lines = tuple(InvoiceLine(line.description, line.quantity, line.unit_amount,
                                      line.unit_amount.times(line.quantity), product_id=line.product_id)
                          for line in one_off)
            subtotal = Money(sum(line.amount.minor for line in lines), deal.currency)
            invoice = Invoice(stable_id("hub", "invoice", deal.id), customer_id=deal.customer_id,
                              status="open", currency=deal.currency, lines=lines, subtotal=subtotal,
                              total=subtotal, amount_due=subtotal, tax=Money(0, deal.currency),
                              amount_paid=Money(0, deal.currency), deal_id=deal.id)
            if tx.upsert_entity(invoice, "hub", run_id=run_id) != "unchanged":
                self.plan(tx, invoice, source_system="hub")

    def _price_for(self, tx: Tx, product_id: str | None, amount: Money, interval: str | None) -> Price | None:
        for stored in tx.entities_of("price"):
            price = stored.entity()
            assert isinstance(price, Price)
            if (price.product_id == product_id and price.active and price.unit_amount == amount
                    and price.recurring_interval == interval):
                return price
        return None

    # ------------------------------------------------------------------ push

    def push(self, connection: str, summary: SyncSummary, run_id: str | None,
             *, entities: Sequence[str] | None = None, max_batches: int | None = None) -> None:
        """Drain this connection's due outbox items, in reference order; with ``max_batches``,
        stop after that many batches (the daemon's pass then ends and its other work, one job at
        a time, gets its turn; the next pass goes on where this one stopped)."""
        connector = self.connectors[connection]
        started = self.clock()  # each due item at most once per pass (deferred ones wait)
        batches = 0
        for entity_type in ENTITY_ORDER:
            if entities and entity_type not in entities:
                continue
            if not self._ensure_first_contact(connector, entity_type, summary, run_id):
                continue  # never write before the target's existing records were read and matched
            while True:
                if max_batches is not None and batches >= max_batches:
                    return
                with self.store.transaction() as tx:
                    items = tx.claim_outbox(self.batch_size, target=connection, entity_type=entity_type,
                                            lease_seconds=self.lease_seconds, due_by=started)
                if not items:
                    break
                batches += 1
                try:
                    self._push_batch(connector, entity_type, items, summary, run_id)
                except ConnectionPaused as exc:
                    summary.paused[connection] = str(exc)
                    return
                if self.on_progress:
                    self.on_progress(f"push {connection} {entity_type}", len(items))

    def _push_batch(self, connector: Connector, entity_type: str, items: Sequence[OutboxItem],
                    summary: SyncSummary, run_id: str | None) -> None:
        stats = summary.stats(connector.name, entity_type)
        ready: list[tuple[OutboxItem, Outbound]] = []
        digests: dict[str, str] = {}  # idempotency key -> hash of the payload sent
        with self.store.transaction() as tx, tx.remembering():
            self._prefetch_for_push(tx, connector.name, entity_type, items)
            refs = LinkResolver(tx, connector.name)
            for item in items:
                outbound = self._prepare(tx, connector, item, refs, stats, run_id)
                if outbound is not None:
                    ready.append((item, outbound))
                    digests[outbound.idempotency_key] = payload_digest(outbound.payload)
        if not ready:
            return
        try:
            results = connector.upsert(entity_type, [o for _, o in ready])
        except (AuthError, QuotaExhausted) as exc:
            self._release(ready, exc)
            self._pause(connector.name, exc)
            raise ConnectionPaused(str(exc)) from exc
        except ConnectorError as exc:
            results = [WriteResult(o.idempotency_key, error=exc) for _, o in ready]
        if len(results) != len(ready):
            raise RuntimeError(f"{connector.name} returned {len(results)} results for {len(ready)} writes")
        with self.store.transaction() as tx, tx.remembering():
            # The links each result is written into, read for the batch at once.
            tx.prefetch_links_of([item.canonical_id for item, _ in ready], entity_type, [connector.name])
            tx.prefetch_links(connector.name, entity_type, [r.external_id for r in results if r.ok and r.external_id])
            for (item, outbound), result in zip(ready, results, strict=True):
                if result.ok and result.external_id:
                    self._written(tx, connector, item, result, stats, run_id, digests[item.idempotency_key])
                else:
                    self._failed(tx, connector, item, outbound, result.error, stats, run_id)

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

        Returns False when that read is impossible now (another process holds the stream, or
        the read failed): the writes wait for a later pass rather than risk duplicates.
        """
        if entity_type not in self.routing.reads(connector.system) or entity_type not in connector.entity_types():
            return True
        with self.store.transaction() as tx:
            if tx.get_cursor(connector.name, entity_type) is not None:
                return True
        try:
            with self.store.stream_lock("sync", connector.name, entity_type) as mine:
                if not mine:
                    return False
                self.pull(connector.name, entity_type, summary, run_id)
        except ConnectorError as exc:
            summary.errors.append(f"{connector.name} {entity_type}: first read before writing failed: {exc}")
            return False
        with self.store.transaction() as tx:
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
            tx.complete_outbox(item.id, link.external_id if link else None)  # superseded or done
            return None
        entity = stored.entity()
        missing = self._missing_reference(entity, refs)
        if missing is not None and self._follow_placeholder(tx, missing[1], item.canonical_id):
            tx.complete_outbox(item.id, link.external_id if link else None)  # re-pointed: re-planned
            return None
        if missing is not None:
            # Waiting for a dependency is not an attempt: the diff reports it if it never arrives.
            tx.defer_outbox(item.id, f"waiting for {missing[0]} {missing[1]} to exist in {connector.name}",
                            self.clock() + timedelta(seconds=self.backoff_seconds))
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
                and link.last_payload_hash == payload_digest(payload)):
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
        connector = self.connectors.get(connection)
        canonical = tx.canonical_for(connection, object_type, external_id)
        if connector is None or canonical is None or canonical == ref_id:
            return False
        return holder_id in self.repoint_holders(tx, connector, {ref_id: canonical}, SyncSummary(), None)

    def _preflight(self, entity: Entity, connector: Connector) -> str | None:
        """What a ledger would refuse: inconsistent totals, unmapped tax rates."""
        if isinstance(entity, Invoice):
            if not entity.totals_consistent():
                return (f"invoice {entity.number or entity.id}: total {entity.total} is not lines + tax - "
                        "discounts; fix the invoice at its source")
            codes = self.tax_codes.get(connector.system)
            if codes:
                for line in entity.lines:
                    rate = _rate_key(line.tax_rate)
                    if rate is not None and rate not in codes:
                        return (f"no {connector.system} tax code for rate {rate}%: add it under "
                                f"[tax_codes.{connector.system}] in the config")
        return None

    def _written(self, tx: Tx, connector: Connector, item: OutboxItem, result: WriteResult,
                 stats: StreamStats, run_id: str | None, digest: str) -> None:
        assert result.external_id is not None
        version = result.record.version if result.record else None
        try:
            tx.link(item.canonical_id, connector.name, item.entity_type, result.external_id,
                    pushed_hash=item.content_hash, payload_hash=digest, remote_version=version, replace=True)
        except LinkConflict as exc:
            self._finding(tx, "duplicate", item.entity_type, connector.name, item.canonical_id,
                          [result.external_id], f"{connector.name} answered with {result.external_id}, "
                          f"which is linked to hub record {exc.existing}", run_id)
            tx.dead_outbox(item.id, str(exc))
            stats.dead += 1
            return
        tx.complete_outbox(item.id, result.external_id)
        stats.written += 1

    def _failed(self, tx: Tx, connector: Connector, item: OutboxItem, outbound: Outbound,
                error: ConnectorError | None, stats: StreamStats, run_id: str | None) -> None:
        error = error or RetryableError("no external id in the write result", system=connector.name)
        if isinstance(error, DuplicateError):
            self._finding(tx, "duplicate", item.entity_type, connector.name, item.canonical_id,
                          error.candidates, f"{error}: several {connector.name} records match; pick one "
                          "with `hub resync --finding ID --keep EXTERNAL_ID`", run_id)
            tx.dead_outbox(item.id, str(error))
            stats.held += 1
        elif isinstance(error, InvalidError):
            self._hold(tx, connector, item, f"rejected by {connector.name}: {error.message}", stats, run_id)
        elif isinstance(error, (RetryableError, ConflictError, AuthError, QuotaExhausted)):
            self._hold_or_retry(tx, connector, item, str(error), stats, run_id, retryable=True,
                                retry_after=error.retry_after if isinstance(error, RateLimited) else None)
        else:
            self._hold(tx, connector, item, str(error), stats, run_id)

    def _hold_or_retry(self, tx: Tx, connector: Connector, item: OutboxItem, reason: str,
                       stats: StreamStats, run_id: str | None, *, retryable: bool,
                       retry_after: float | None = None) -> None:
        if retryable and item.attempts < self.max_attempts:
            delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (item.attempts - 1)
            tx.fail_outbox(item.id, reason, self.clock() + timedelta(seconds=min(delay, 3600)))
            stats.retried += 1
            return
        self._hold(tx, connector, item, f"gave up after {item.attempts} attempts: {reason}", stats, run_id)

    def _hold(self, tx: Tx, connector: Connector, item: OutboxItem, reason: str, stats: StreamStats,
              run_id: str | None) -> None:
        """Dead-letter the write and open a finding that says what to fix."""
        tx.dead_outbox(item.id, reason)
        self._finding(tx, "missing", item.entity_type, connector.name, item.canonical_id, [],
                      f"held: {reason}", run_id, key="held")
        stats.dead += 1

    def _release(self, ready: Sequence[tuple[OutboxItem, Outbound]], exc: ConnectorError) -> None:
        until = exc.until if isinstance(exc, QuotaExhausted) and exc.until else self.clock() + timedelta(minutes=5)
        with self.store.transaction() as tx:
            for item, _ in ready:
                tx.fail_outbox(item.id, str(exc), until)

    def _pause(self, connection: str, exc: ConnectorError) -> None:
        with self._tx() as tx:
            if isinstance(exc, AuthError) and exc.needs_reauth:
                tx.set_connection_state(connection, "needs_reauth", reason=str(exc))
            elif isinstance(exc, QuotaExhausted):
                tx.set_connection_state(connection, "paused", reason=str(exc), paused_until=exc.until)
        log.warning("connection %s paused: %s", connection, exc)

    def _paused_reason(self, connection: str) -> str | None:
        with self._tx() as tx:
            state = tx.connection_state(connection)
        if not state or state["status"] == "ok":
            return None
        until = state.get("paused_until")
        if state["status"] == "paused" and until is not None and until <= self.clock():
            return None
        return f"{state['status']}: {state.get('reason') or ''}".strip()

    def _finding(self, tx: Tx, kind: str, entity: str, system: str, canonical_id: str | None,
                 external_ids: Sequence[str], detail: str, run_id: str | None, *,
                 fields: dict[str, Any] | None = None, key: str = "") -> None:
        fp = fingerprint(kind, entity, system, canonical_id or "", ",".join(sorted(external_ids)), key)
        tx.upsert_finding(fingerprint=fp, kind=kind, entity=entity, system=system,
                          canonical_id=canonical_id, external_ids=list(external_ids),
                          fields=fields or {}, detail=detail, run_id=run_id)

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

    def repush(self, tx: Tx, canonical_id: str, *, only: str | None = None, nonce: str = "") -> int:
        """Queue the canonical truth again for every target (or ``only`` one connection).

        ``nonce`` makes the idempotency keys new for this request (a repair must really write,
        while retries of that repair still share one key).
        """
        stored = tx.get_entity(canonical_id)
        if stored is None:
            return 0
        entity = stored.entity()
        source = self.connectors[stored.source].system if stored.source in self.connectors else "hub"
        targets = [only] if only else [c for system in self.routing.targets(entity, source)
                                       for c in self.connections_of(system)]
        queued = 0
        for connection in targets:
            link = tx.link_for(canonical_id, connection, entity.type)
            if link is not None:  # forget what was written, so the repair really writes
                tx.link(canonical_id, connection, entity.type, link.external_id, pushed_hash="",
                        payload_hash="")
            key = idempotency_key(canonical_id, connection, f"{stored.content_hash}/{nonce}")
            if tx.enqueue(canonical_id, entity.type, connection, "upsert", key, stored.content_hash,
                          external_id=link.external_id if link and not link.deleted else None):
                queued += 1
        return queued


def _pending_ids(store: StateStore) -> set[int]:
    with store.transaction() as tx:
        return {i.id for i in tx.list_outbox(limit=10**9)}


def _planned_writes(tx: Tx, before: set[int]) -> list[dict[str, Any]]:
    """The outbox items a dry run queued, as (system, operation, record, changed fields)."""
    planned = []
    for item in tx.list_outbox("pending", limit=10**9):
        if item.id in before:
            continue
        history = tx.history_of(item.canonical_id)
        changes = history[-1]["changes"] if history else {}
        planned.append({"system": item.target, "operation": "update" if item.external_id else "create",
                        "entity": item.entity_type, "record": item.canonical_id,
                        "external_id": item.external_id, "changed_fields": sorted(changes)})
    return planned


def _is_void(entity: Entity) -> bool:
    """A voided document: never created in a target, only voided where it already exists."""
    return entity.type in ("invoice", "credit_note") and getattr(entity, "status", "") == "void"


def _rate_key(rate: Decimal | None) -> str | None:
    if rate is None:
        return None
    return format(rate.normalize(), "f")


__all__ = ["ConnectionPaused", "Engine", "LinkResolver", "SyncSummary", "idempotency_key"]
