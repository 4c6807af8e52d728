"""Pull -> map -> store: what a connection's records change in the hub.

* **Pull** reads a page of changes from a connection; one transaction stores the canonical
  changes, their history, the outbox intents they cause and the advanced cursor (invariant 3).
* **Map** goes through the connector's pure mapping; a record that fails to map is **held**
  (``state.holds``: its raw record, secrets removed) with an ``unreadable`` finding, and the rest
  of the page proceeds. Every later pass of the stream tries it again (``retry_held``); a version
  that maps is ingested and resolves the finding; acknowledging the finding lets it go.
* **Store** merges by field ownership (``sync.flows.Ownership``) and is gated by content hash:
  unchanged content writes nothing and plans nothing — which is also how echoes of the hub's own
  writes are dropped.
* **Unchanged reads cost nothing.** Each link keeps the hash of the record as last read
  (``last_seen_hash``: the vendor's own JSON, before mapping). A change-feed page's record whose
  raw payload hashes the same, linked to a live hub record, is counted unchanged before it is
  mapped: no mapping, no write. A full read (``hub resync``, a repair) and one-record ingests
  (the repairs) map every record again, so a changed mapping or ownership rule is applied by them.

First contact: a record seen for the first time in a system is matched to an existing canonical
record by the hub's marker, then by natural keys (email, name, number), then a payment's or
refund's settlement key (amount, currency, day, invoice); exactly one candidate is linked, several
are a ``duplicate`` finding and nothing is written for them. The link remembers what the record
holds as the hub would send it (``sync.first_contact``): a record that agrees is not written.

Placeholders: a reference to a record of the system not linked yet is stored as that record's
placeholder id; once the record is linked, its holders are re-pointed (``repoint_holders``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from connectors.base import Connector, ConnectorError, Record
from mapping.model import CreditNote, Entity, repoint
from state.errors import LinkConflict
from state.links import LinkWrite
from state.records import Outcome
from state.store import Tx
from sync.billing import made_in_billing
from sync.context import (
    MAPPING_ERRORS,
    AskedRefs,
    LinkResolver,
    Question,
    SyncContext,
    payload_digest,
    same_answers,
)
from sync.first_contact import agreed_digest, match_keys, take_turns
from sync.ingest_held import HeldRecords
from sync.ingest_match import FirstContacts
from sync.ingest_page import Bounded, PageBatch, PageRun, Pending, ids_by_type
from sync.plan import Planner
from sync.postings import claim_refund
from sync.summary import StreamStats, SyncSummary
from sync.versions import drop_stale

# At most this many first contacts (and sightings) are remembered for the push, the newest: a
# first load of a million records would otherwise hold a million entities until it pushes.
REMEMBERED = 20_000


class Ingest(HeldRecords, FirstContacts):
    def __init__(self, ctx: SyncContext, planner: Planner) -> None:
        self.ctx = ctx
        self.planner = planner
        self._homes: dict[str, str | None] = {}
        # (connection, type, hub id) -> the target's record as canonical, for records linked at
        # first contact in this process and not written since: the push writes to such a record
        # only where it differs. Kept in memory: a process that stops between the read and the
        # push forgets it, and its writes are then sent as updates (safe, only not minimal); and only
        # the newest ``REMEMBERED`` are kept, so memory stays flat with the records read.
        self.first_seen: dict[tuple[str, str, str], Entity] = Bounded(REMEMBERED)
        # (connection, type, hub id) of hub records first contact could not match to one record
        # of that connection (several candidates: a duplicate finding): the push creates none of
        # them there, since a create would add one more copy (``Pusher._prepare``)
        self.ambiguous: set[tuple[str, str, str]] = set()
        # (connection, type, external id) -> a sighted record as canonical (placeholder id) and the
        # hub marker it carries: moved to ``first_seen`` when the planner links it (``linked_sighting``)
        self.sighted: dict[tuple[str, str, str], tuple[Entity, str | None]] = Bounded(REMEMBERED)
        planner.on_sighting_linked = self.linked_sighting

    def pull(self, connection: str, entity_type: str, summary: SyncSummary, run_id: str | None,
             *, full: bool = False) -> None:
        """Read a stream's changes (``full``: every record, each mapped again) page by page."""
        connector = self.ctx.connectors[connection]
        facts = connector.capabilities().facts
        if facts is not None:  # before the page transactions map what is read (MappingFacts)
            facts.learn()
        self._learn_home(connector)
        with self.ctx.tx() as tx:
            cursor = tx.get_cursor(connection, entity_type)
        pages = connector.fetch_all(entity_type) if full else connector.fetch_changes(entity_type, cursor)
        for page in pages:
            with self.ctx.tx() as tx:
                self.ingest(tx, connector, page.records, summary, run_id, skip_unchanged=not full)
                if page.cursor is not None and not full:
                    tx.set_cursor(connection, entity_type, page.cursor)
            self.ctx.progress(f"{connection} {entity_type}", len(page.records))
        self.retry_held(connector, entity_type, summary, run_id)

    def ingest(self, tx: Tx, connector: Connector, records: Sequence[Record], summary: SyncSummary,
               run_id: str | None, *, retried: bool = False, skip_unchanged: bool = False) -> None:
        """Store a batch of records read from a connection (a page, or a webhook's records);
        ``retried``: held records tried again (not read now, so not counted as read);
        ``skip_unchanged``: a record whose raw payload is the one last read is counted unchanged
        without being mapped (``_unchanged_reads``)."""
        refs = LinkResolver(tx, connector.name)
        linked: dict[str, str] = {}  # placeholder -> hub record, for the records linked here
        with tx.remembering():
            take_turns(tx, connector, records)  # first, before anything it decides from is read
            gone = [r for r in records if r.gone]
            if gone:
                self._gone(tx, connector, gone, summary, run_id)
                records = [r for r in records if not r.gone]
            records = drop_stale(tx, connector, records, summary, retried=retried)
            held = self._held(tx, connector, records)
            seen = {id(r): payload_digest(r.data) for r in records if not r.deleted}
            if skip_unchanged and not retried:
                records = self._unchanged_reads(tx, connector, records, seen, held, summary)
            premapped = self._prefetch(tx, connector, records, refs)
            page = PageRun(tx, connector, refs, summary, run_id, retried, held, linked,
                         self._match_unlinked(tx, connector, records, run_id), premapped)
            for record in records:
                stats = summary.stats(connector.name, record.entity_type)
                if not retried:
                    stats.read += 1
                if record.deleted:
                    self._flush(page)  # a deletion reads what the pending writes change
                try:
                    pending = self._prepare(page, record, stats, seen.get(id(record)))
                    if pending is not None and page.pending.depends(pending, connector.name):
                        # it names, or is, a record still pending: store those first, map it again
                        self._flush(page)
                        pending = self._prepare(page, record, stats, seen.get(id(record)))
                except MAPPING_ERRORS as exc:
                    self._hold(tx, connector, record, exc, stats, summary, run_id, retried=retried)
                    continue
                if pending is None:
                    page.release(record)
                else:
                    page.pending.add(pending)
            self._flush(page)
            if linked:
                self.repoint_holders(tx, connector, linked, summary, run_id)

    def _unchanged_reads(self, tx: Tx, connector: Connector, records: Sequence[Record],
                         seen: Mapping[int, str], held: Mapping[tuple[str, str], str],
                         summary: SyncSummary) -> list[Record]:
        """Count unchanged, and leave out, the records read exactly as last time: linked to a
        live hub record with the same raw-payload hash (``seen``: id(record) -> hash). A
        re-sync then maps and writes only what changed. Returns the records still to ingest."""
        name = connector.name
        for entity_type, external_ids in ids_by_type(records).items():
            tx.prefetch_links(name, entity_type, external_ids)
        same: dict[int, str] = {}  # id(record) -> hub record
        for record in records:
            if record.deleted or (record.entity_type, record.external_id) in held:
                continue  # a deletion is news; a held record is tried again
            link = tx.link_by_external(name, record.entity_type, record.external_id)
            if link is not None and not link.deleted and link.last_seen_hash == seen.get(id(record)):
                same[id(record)] = link.canonical_id
        if not same:
            return list(records)
        live = tx.live_entity_ids(same.values())
        rest: list[Record] = []
        for record in records:
            canonical = same.get(id(record))
            if canonical is None or canonical not in live:
                rest.append(record)
                continue
            stats = summary.stats(name, record.entity_type)
            stats.read += 1
            stats.unchanged += 1
            # read again: what it held at first contact no longer counts (as in ``_finish``)
            self.first_seen.pop((name, record.entity_type, canonical), None)
        return rest

    def linked_sighting(self, connection: str, entity_type: str, external_id: str, canonical: str) -> None:
        """A record sighted before its source was read is linked now to hub record ``canonical``:
        compared at the push like any first contact (same marker rule as ``_finish``)."""
        seen = self.sighted.pop((connection, entity_type, external_id), None)
        connector = self.ctx.connectors.get(connection)
        if seen is None or connector is None:
            return
        incoming, marker = seen
        if not connector.capabilities().upserts_by_marker or marker == canonical:
            self.first_seen[(connection, entity_type, canonical)] = dataclasses.replace(incoming, id=canonical)

    def home(self, connection: str) -> str | None:
        return self._homes.get(connection)

    def _learn_home(self, connector: Connector) -> None:
        """A ledger's home currency, read once before any transaction (first contact compares a
        payment's rate in it, as the diff does); unknown: rates are not compared."""
        currency = connector.capabilities().currency
        if connector.name not in self._homes and currency is not None:
            try:
                self._homes[connector.name] = currency.home_currency().upper()
            except ConnectorError:
                self._homes[connector.name] = None

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
                # linked as itself: the holders already name it, but a credit note waiting for
                # its refund claims it now (``sync.postings``)
                self._claim_linked(tx, connector, holders, run_id)
                continue
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
                self.planner.planned(tx, repointed, connector, summary, run_id)
                repointed_ids.add(holder_id)
        return repointed_ids

    def _claim_linked(self, tx: Tx, connector: Connector, holders: Sequence[str], run_id: str | None) -> None:
        for holder_id in holders:
            stored = tx.get_entity(holder_id)
            if stored is not None and not stored.deleted and stored.type == "credit_note":
                note = stored.entity()
                assert isinstance(note, CreditNote)
                claim_refund(tx, note, connector.name, run_id, self.planner.plan_derived)

    def _prefetch(self, tx: Tx, connector: Connector, records: Sequence[Record],
                  refs: LinkResolver) -> dict[int, tuple[Entity, list[Question]]]:
        """Read what ingesting the page will ask, one statement per question for the page: the
        records' links, their hub records, and those records' links in every connection (the
        plan asks each). A record then costs its own writes, not a dozen single-row reads."""
        connections = list(self.ctx.connectors)
        for entity_type, external_ids in ids_by_type(records).items():
            tx.prefetch_links(connector.name, entity_type, external_ids)
            canonical_ids = [refs.canonical_id(entity_type, e) for e in external_ids]
            tx.prefetch_entities(canonical_ids)
            tx.prefetch_links_of(canonical_ids, entity_type, connections)
        # The records' references (an invoice's customer, a payment's invoice): mapping the page
        # once against a resolver that only notes what it is asked costs far less than the one
        # link read per reference the real mapping would otherwise make.
        # Each record's entity and the questions it asked are kept: where the real resolver
        # answers them alike (nothing it names is linked otherwise), it is not mapped again.
        asked = AskedRefs(connector.name)
        premapped: dict[int, tuple[Entity, list[Question]]] = {}
        for record in records:
            if not record.deleted:
                start = len(asked.questions)
                try:
                    premapped[id(record)] = (connector.to_canonical(record, asked), asked.questions[start:])
                except MAPPING_ERRORS:
                    pass  # the real mapping reports it
        for entity_type, referenced in asked.asked.items():
            tx.prefetch_links(connector.name, entity_type, referenced)
            # and, for those not linked yet, that their hub records (placeholders) have no link
            # here: first contact maps each record back (``agreed_digest``), which asks it by hub
            # id - one read per record otherwise (linked ones are remembered both ways already)
            tx.prefetch_links_of([refs.canonical_id(entity_type, e) for e in referenced], entity_type,
                                 [connector.name])
        # and the hub records they name: what the plan derives reads them (an invoice's customer,
        # for its billing state), one read per record otherwise - a round trip each on PostgreSQL
        tx.prefetch_entities(refs.canonical_id(entity_type, e)
                             for entity_type, referenced in asked.asked.items() for e in referenced)
        return premapped

    def _prepare(self, page: PageRun, record: Record, stats: StreamStats,
                 seen_hash: str | None) -> Pending | None:
        """Map and merge one record, writing nothing yet; None when it needs no entity write
        (a deletion, done here; a record held, skipped or erased)."""
        tx, connector = page.tx, page.connector
        name, system, etype = connector.name, connector.system, record.entity_type
        canonical = tx.canonical_for(name, etype, record.external_id)
        if record.deleted:
            self._ingest_deletion(tx, connector, record, canonical, stats, page.run_id)
            return None
        refs = page.refs
        refs.placeholders.clear()
        early = page.premapped.pop(id(record), None)
        if early is not None and same_answers(refs, early[1]):
            incoming = early[0]  # mapped by ``_prefetch`` against the same answers: the same entity
        else:
            refs.placeholders.clear()
            incoming = connector.to_canonical(record, refs)
        placeholder = incoming.id  # its own placeholder when it is not linked yet
        dangling = {p: named for p, named in refs.placeholders.items() if p != placeholder}
        is_source = self.ctx.routing.is_source(etype, system)
        first_sighting = canonical is None
        if canonical is None:
            match = page.matches.get(record.external_id)
            if match == "ambiguous":
                stats.held += 1
                return None
            if match is None and not is_source:
                # A record only this system has (the diff calls it an orphan) - or one whose
                # source is read later: remembered, so that record links to it (state.sightings).
                keys = match_keys(connector, record, refs)
                tx.note_sighting(name, etype, record.external_id, keys)
                # as read, for the push to compare once the source's record links to it
                self.sighted[(name, etype, record.external_id)] = (incoming, keys.get("hub_id"))
                stats.skipped += 1
                return None
            canonical = match or incoming.id
        incoming = dataclasses.replace(incoming, id=canonical)
        stored = tx.get_entity(canonical)
        existing = stored.entity() if stored is not None else None
        if existing is None and not is_source:
            stats.skipped += 1
            return None
        if existing is not None and existing.extra.get("erased"):
            stats.unchanged += 1  # erased on request (GDPR): never re-imported, never propagated
            return None
        merged = self.ctx.routing.ownership.merge(existing, incoming, system)
        if etype == "customer":
            merged = made_in_billing(merged, system, hub_made=bool(connector.natural_keys(record).get("hub_id")))
        return Pending(record, stats, canonical, placeholder, incoming, merged, dangling, first_sighting,
                        seen_hash)

    def _flush(self, page: PageRun) -> None:
        """Store the pending records of a page at once (one ``upsert_entities``), link them at
        once (one ``link_many``), then note and plan each in order, as one record at a time would."""
        batch, page.pending = page.pending, PageBatch()
        if not batch.items:
            return
        tx, name = page.tx, page.connector.name
        try:
            outcomes: list[Outcome] | None = tx.upsert_entities([p.merged for p in batch.items], name,
                                                               run_id=page.run_id)
        except MAPPING_ERRORS:
            outcomes = None  # one record cannot be stored: each alone, that one held (nothing written yet)
        placeholders: dict[str, dict[str, tuple[str, str, str]]] = {}
        with tx.outbox_batch():  # the batch's planned writes: one insert
            stored: list[tuple[Pending, Outcome, LinkWrite]] = []
            for i, pending in enumerate(batch.items):
                try:
                    outcome = outcomes[i] if outcomes is not None else tx.upsert_entity(
                        pending.merged, name, run_id=page.run_id)
                    stored.append((pending, outcome, self._stored(page, pending, outcome)))
                except MAPPING_ERRORS as exc:
                    self._hold(tx, page.connector, pending.record, exc, pending.stats, page.summary,
                               page.run_id, retried=page.retried)
            # the batch's links at once: its records name distinct external and hub records, and
            # none names another's (``PageBatch.depends``), so each is linked as it would be alone
            conflicts = tx.link_many([link for _, _, link in stored])
            for (pending, outcome, _), conflict in zip(stored, conflicts, strict=True):
                try:
                    self._finish(page, pending, outcome, conflict, placeholders)
                except MAPPING_ERRORS as exc:
                    self._hold(tx, page.connector, pending.record, exc, pending.stats, page.summary,
                               page.run_id, retried=page.retried)
                    continue
                page.release(pending.record)
        tx.note_placeholders_many(placeholders)

    def _stored(self, page: PageRun, pending: Pending, outcome: Outcome) -> LinkWrite:
        """After the record's entity write: counted, remembered for the push, and the link it
        is to get (``_finish`` goes on once the batch is linked)."""
        tx, connector, record, stats = page.tx, page.connector, pending.record, pending.stats
        name, etype, canonical, incoming = connector.name, record.entity_type, pending.canonical, pending.incoming
        first_sighting = pending.first_sighting
        setattr(stats, outcome, getattr(stats, outcome) + 1)
        # First contact: what the record holds, as the hub would send it (a record that maps to
        # the same payload is never written), and as canonical, for the push to compare by the
        # diff's rules (``sync.first_contact.differing``).
        # Where writes go by the hub's marker (Salesforce's upsert by Hub_Id__c), a record matched
        # by email or name cannot agree until the marker is written: without it the next write
        # would make a second Account.
        agreeable = first_sighting and (not connector.capabilities().upserts_by_marker
                                        or connector.natural_keys(record).get("hub_id") == canonical)
        agreed = agreed_digest(tx, connector, incoming, page.refs) if agreeable else None
        if agreeable:
            self.first_seen[(name, etype, canonical)] = incoming  # the push compares it (FirstSeen)
        elif not first_sighting:  # read again since: what it held at first contact is stale
            self.first_seen.pop((name, etype, canonical), None)
        return LinkWrite(canonical, name, etype, record.external_id, remote_version=record.version,
                         seen_hash=pending.seen_hash, payload_hash=agreed)

    def _finish(self, page: PageRun, pending: Pending, outcome: Outcome, conflict: LinkConflict | None,
                placeholders: dict[str, dict[str, tuple[str, str, str]]]) -> None:
        """After the record's link (``conflict``: why it could not be linked): placeholders, plan."""
        tx, connector, record, stats = page.tx, page.connector, pending.record, pending.stats
        name, etype, canonical = connector.name, record.entity_type, pending.canonical
        if conflict is not None:
            self.ctx.finding(tx, "duplicate", etype, name, canonical, [record.external_id, conflict.external_id],
                             f"{name} has two {etype} records for one hub record: {conflict}", page.run_id)
            stats.held += 1
            return
        if pending.dangling:
            placeholders[canonical] = pending.dangling
        if pending.first_sighting:
            stats.linked += 1
            page.linked[pending.placeholder] = canonical
        if outcome != "unchanged":
            self.planner.planned(tx, pending.merged, connector, page.summary, page.run_id)

    def _ingest_deletion(self, tx: Tx, connector: Connector, record: Record, canonical: str | None,
                         stats: StreamStats, run_id: str | None) -> None:
        if canonical is None:
            tx.drop_sightings(connector.name, record.entity_type, [record.external_id])
            stats.skipped += 1
            return
        tx.mark_link_deleted(connector.name, record.entity_type, record.external_id)
        stored = tx.get_entity(canonical)
        owner = self.ctx.routing.ownership.owner(record.entity_type, "*")
        if stored is not None and owner == connector.system and not stored.deleted:
            tx.upsert_entity(stored.entity(), connector.name, run_id=run_id, deleted=True)
            stats.changed += 1
        else:
            stats.unchanged += 1


__all__ = ["Ingest"]
