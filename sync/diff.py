"""Reconciliation: what every system actually holds versus what the hub knows.

For one entity type, each system's records are streamed (its connector's full fetch) into an
on-disk scratch database next to a projection of the canonical store, so memory stays bounded
however many records there are. Records are grouped by key — the canonical id through links,
then natural keys — and classified as in DESIGN.md:

* none on the system's side for a record it should hold  -> ``missing`` (or ``broken_link``
  when a link exists: deleted behind the hub's back; voided there while live in the hub is a
  ``broken_link`` keyed ``voided`` that no resync undoes — the owner voids or re-issues it)
* a system record that is linked to nothing and matches nothing -> ``orphan``
* a system record that cannot be mapped -> ``unreadable`` (with the reason); never a deletion
* two or more system records for one key -> ``duplicate``
* one and one -> compared field by field, normalised (case and spacing of names and emails,
  per-line rounding tolerance; an invoice on money and status as ``sync/diff_money.py`` says). Fields the system does not own: ``mismatch``; or ``stale`` when
  the hub changed after its last push and the SLA has passed. Fields the system owns (per field,
  ``sync/flows.py`` Ownership: Stripe an invoice, Salesforce a customer's name): the owner changed
  the record and the hub never took the change in (no event, no poll saw it) -> ``mismatch``
  against the owner, keyed ``source``; ``hub resync --finding ID`` re-reads the record from it.
  Lag is not drift, so a difference in owned fields is not reported while the change may still be
  on its way: an event of that connection not handled yet names the record (any string in the
  event's payload equal to its id), the owner's record changed within ``stale_sla`` (its own
  time, where the system gives one), the hub's record changed within ``stale_sla``, or a write of
  the hub to that system has not landed (then the hub's value is the one being written: those
  fields follow the ``stale`` rule)
* per day and currency, the sums that are not explained by the record-level findings above
  -> ``totals``: invoices, payments, refunds and credit notes by amount; payouts by net amount
  (the ledgers' transfer) and, apart, by fee total (their fee Purchase / SPEND, keyed
  ``day/currency/fee_total``). A payout's record mismatch (a fee document edited by hand)
  explains its day's difference, so it is reported once; what no record finding explains (a
  cent off within a record's rounding tolerance, the day's is exact) is the day's ``totals``

Findings are upserted by a stable fingerprint, so a recurring problem is one finding with
``first_seen`` / ``last_seen``; findings of this scope that a run no longer sees are resolved.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import Connector, ConnectorError, Record
from mapping.keys import normalise_key
from mapping.model import Customer, Entity
from state.store import StateStore
from sync.context import MAPPING_ERRORS
from sync.diff_balance import (
    balance_currency,
    balance_finding_fields,
    hub_balance_field,
    hub_balances,
    load_lag,
)
from sync.diff_balance import create_tables as create_balance_tables
from sync.diff_balance import lagging as balance_lagging
from sync.diff_dropped import create_table as create_dropped_table
from sync.diff_dropped import dropped_finding, load_dropped
from sync.diff_money import comparable, invoice_differing, payment_rates, said_by
from sync.diff_run import diff_run
from sync.diff_scratch import (
    MONEY_FIELDS,
    NATURAL_KEYS,
    ScratchRefs,
    create_scratch,
    fields_digest,
    named_ids,
    resolve_keys,
    utc_iso,
    view_of,
)
from sync.diff_totals import TOTALLED, measure_totals
from sync.finding_facts import Facts, candidates, note_documents, record_facts
from sync.findings import DiffFinding, DiffResult, store_findings
from sync.flows import Routing

log = logging.getLogger("billhub.diff")

BATCH = 5000  # rows per executemany into the scratch database


@dataclass(frozen=True)
class Tolerances:
    line_rounding_minor: int = 1  # per line, where a ledger rounds per line
    totals_minor: int = 0  # per day and currency
    stale_sla: timedelta = timedelta(minutes=60)

    @classmethod
    def from_config(cls, diff_cfg: Mapping[str, Any]) -> Tolerances:
        return cls(int(diff_cfg.get("line_rounding_tolerance_minor", 1)),
                   int(diff_cfg.get("totals_tolerance_minor", 0)),
                   timedelta(minutes=float(diff_cfg.get("stale_sla_minutes", 60))))


class Differ:
    """Runs reconciliation for one entity type at a time."""

    def __init__(self, store: StateStore, connectors: Mapping[str, Connector], routing: Routing,
                 tolerances: Tolerances | None = None, *, clock: Callable[[], datetime] | None = None,
                 scratch_dir: str | None = None) -> None:
        self.store = store
        self.connectors = dict(connectors)
        self.routing = routing
        self.tolerances = tolerances or Tolerances()
        self.clock = clock or store.clock
        self.scratch_dir = scratch_dir
        self._homes: dict[str, str | None] = {}

    def _home(self, name: str) -> str | None:
        """The ledger's home (base) currency, read once; None where it has none or cannot say."""
        if name not in self._homes:
            currency = self.connectors[name].capabilities().currency
            try:
                self._homes[name] = currency.home_currency().upper() if currency else None
            except ConnectorError as exc:  # no rate compared rather than no diff at all
                log.warning("diff: %s home currency unknown (%s); its rates are not compared", name, exc)
                self._homes[name] = None
        return self._homes[name]

    def holders(self, entity_type: str) -> list[str]:
        """Connections that hold (or should hold) this entity type."""
        result = []
        for name, connector in self.connectors.items():
            if entity_type in connector.entity_types() and entity_type in self.routing.reads(connector.system):
                result.append(name)
        return result

    def run(self, entity_types: Sequence[str]) -> DiffResult:
        with diff_run(self.store, self.clock, ",".join(entity_types)) as result:
            self._run_entities(entity_types, result.run_id, result)
        return result

    def _run_entities(self, entity_types: Sequence[str], run_id: str, result: DiffResult) -> None:
        for entity_type in entity_types:
            with self.store.stream_lock("diff", entity_type) as mine:
                if not mine:  # another process is reconciling this entity right now
                    result.errors.append(f"{entity_type}: skipped, a diff is running elsewhere")
                    continue
                try:
                    found = self.diff_entity(entity_type, result)
                except ConnectorError as exc:
                    # One system that cannot be read spoils this entity's comparison only: a
                    # partial view is never taken for deletions, so nothing is reported or
                    # resolved for it, and the other entities are still reconciled.
                    result.errors.append(f"{entity_type} not compared: {exc} - run hub diff again "
                                         "once it answers")
                    continue
            with self.store.transaction() as tx:
                store_findings(tx, entity_type, found, run_id, result)
                result.resolved += tx.resolve_unseen_findings(run_id, entity=entity_type)

    # ------------------------------------------------------------------ one entity type

    def diff_entity(self, entity_type: str, result: DiffResult) -> list[DiffFinding]:
        holders = self.holders(entity_type)
        with tempfile.TemporaryDirectory(dir=self.scratch_dir, prefix="hub-diff-") as tmp:
            db = sqlite3.connect(str(Path(tmp) / "diff.db"))
            try:
                started = time.perf_counter()
                create_scratch(db)
                self._load_hub(db, entity_type, holders)
                loaded_hub = time.perf_counter()
                for name in holders:
                    result.compared[f"{name}:{entity_type}"] = self._load_system(db, name, entity_type)
                db.commit()
                loaded = time.perf_counter()
                resolve_keys(db)
                keyed = time.perf_counter()
                findings = list(self._classify(db, entity_type, holders))
                note_documents(self.store, findings)
                log.info("diff %s: hub %.1fs, systems %.1fs, keys %.1fs, classify %.1fs, %d findings",
                         entity_type, loaded_hub - started, loaded - loaded_hub, keyed - loaded,
                         time.perf_counter() - keyed, len(findings))
            finally:
                db.close()
        return findings

    def _load_hub(self, db: sqlite3.Connection, entity_type: str, holders: Sequence[str]) -> None:
        """Project the canonical store into the scratch database, streaming in batches."""
        hub_rows: list[tuple[Any, ...]] = []
        key_rows: list[tuple[str, str, str]] = []

        def flush() -> None:
            db.executemany("INSERT INTO hub VALUES (?,?,?,?,?,?,?,?,?,?,?)", hub_rows)
            db.executemany("INSERT INTO hub_keys VALUES (?,?,?)", key_rows)
            hub_rows.clear()
            key_rows.clear()

        systems = {n: self.connectors[n].system for n in holders}
        balances: dict[str, dict[str, int]] = {}
        create_balance_tables(db)
        create_dropped_table(db)
        with self.store.transaction() as tx:
            if entity_type == "customer":  # its open balance, from the hub's own documents
                balances = hub_balances(tx)
                load_lag(db, tx, holders)
            for stored in tx.entities_of(entity_type, include_deleted=True):
                entity = stored.entity()
                view = view_of(entity)
                if isinstance(entity, Customer):
                    balance, currency = hub_balance_field(balances, stored.id)
                    view = replace(view, fields={**view.fields, "balance": balance})
                    db.execute("INSERT INTO balance_currency VALUES (?,?)", (stored.id, currency or entity.currency))
                source = self.connectors[stored.source].system if stored.source in self.connectors else "hub"
                expected = ","  # ",conn,conn," so SQL can test membership with instr()
                if not stored.deleted:
                    wanted = {source, *self.routing.targets(entity, source)}
                    expected += "".join(f"{n}," for n in holders if systems[n] in wanted)
                fields = json.dumps(view.fields, sort_keys=True)
                hub_rows.append((stored.id, stored.content_hash, stored.updated_at.isoformat(),
                                 int(stored.deleted), fields, expected, view.day, view.currency, view.amount,
                                 int(view.void), fields_digest(fields)))
                key_rows.extend((k, v, stored.id) for k, v in view.keys.items() if v)
                if len(hub_rows) >= BATCH:
                    flush()
            flush()
            for name in holders:
                batch: list[tuple[Any, ...]] = []
                for link in tx.links_in(name, entity_type):
                    batch.append((link.canonical_id, name, link.external_id, int(link.deleted),
                                  link.last_pushed_hash))
                    if len(batch) >= BATCH:
                        db.executemany("INSERT INTO links VALUES (?,?,?,?,?)", batch)
                        batch.clear()
                db.executemany("INSERT INTO links VALUES (?,?,?,?,?)", batch)
            # Writes that have not landed: dead ones are held (the reason is the finding's
            # detail); any of them for the current content is evidence of a stale target.
            for canonical_id, target, digest, status, error in tx.undelivered_writes(entity_type):
                db.execute("INSERT OR IGNORE INTO intents VALUES (?,?,?)", (canonical_id, target, digest))
                if status == "dead":
                    db.execute("INSERT OR REPLACE INTO held VALUES (?,?,?)", (canonical_id, target, error or ""))
            load_dropped(db, tx, entity_type)  # given up on by a person: a gap, not a write on its way

    def _load_system(self, db: sqlite3.Connection, name: str, entity_type: str) -> int:
        """Stream one connection's full fetch into the scratch database; returns the count."""
        connector = self.connectors[name]
        refs = ScratchRefs(name)
        count = 0
        for page in connector.fetch_all(entity_type):
            rows = []
            facts: list[tuple[str, str, str]] = []  # what a person tells the records apart by
            for record in page.records:
                try:
                    entity = connector.to_canonical(record, refs)
                except MAPPING_ERRORS as exc:
                    # seen but not understood: its own finding, never taken for a deletion
                    db.execute("INSERT OR REPLACE INTO unreadable VALUES (?,?,?)",
                               (name, record.external_id, f"{type(exc).__name__}: {exc}"))
                    continue
                view = view_of(entity)
                if isinstance(entity, Customer) and entity.currency:
                    db.execute("INSERT OR REPLACE INTO ledger_currency VALUES (?,?,?)",
                               (name, record.external_id, entity.currency))
                keys = {**view.keys, **{k: normalise_key(v) or "" for k, v in
                                        connector.natural_keys(record).items()}}
                fields = json.dumps(said_by(connector.system, entity_type, view.fields), sort_keys=True)
                rows.append((name, record.external_id, int(record.deleted), fields, fields_digest(fields),
                             view.day, view.currency, view.amount, view.lines, int(view.void),
                             *(keys.get(k) or None for k in NATURAL_KEYS), utc_iso(record.updated_at)))
                facts.append((name, record.external_id, json.dumps(self._facts(name, entity, record))))
            db.executemany("INSERT INTO sys (system, external_id, deleted, fields, fhash, day, currency, amount, "
                           "lines, void, k_email, k_number, k_name, changed_at) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.executemany("INSERT OR REPLACE INTO facts VALUES (?,?,?)", facts)
            count += len(rows)
        if self.routing.ownership.owns_any(entity_type, connector.system):
            self._load_waiting(db, name)
        return count

    def _facts(self, name: str, entity: Entity, record: Record) -> Facts:
        """The record's facts for a person (``sync/finding_facts.py``); a ledger customer's
        balance is in the ledger's home currency when the record names none."""
        currency = None
        if isinstance(entity, Customer) and not entity.currency and entity.extra.get("balance") not in (None, ""):
            currency = self._home(name)
        return record_facts(self.connectors[name].system, entity, record.data, currency)

    def _load_waiting(self, db: sqlite3.Connection, name: str) -> None:
        """The ids named by this connection's events still in the inbox: their changes are on their way."""
        with self.store.transaction() as tx:
            for payload in tx.waiting_inbox_payloads(name):
                db.executemany("INSERT OR IGNORE INTO waiting VALUES (?,?)",
                               [(name, external_id) for external_id in named_ids(payload)])

    # ------------------------------------------------------------------ classification

    def _classify(self, db: sqlite3.Connection, entity_type: str, holders: Sequence[str]) -> Iterator[DiffFinding]:
        now = self.clock()
        sla_cutoff = (now - self.tolerances.stale_sla).isoformat()
        sla_utc = utc_iso(now - self.tolerances.stale_sla)  # for the systems' own times
        record_findings: list[DiffFinding] = []
        lag: list[DiffFinding] = []  # owners' changes still on their way to the hub

        # duplicate: two or more live records of one system resolve to one key
        for key, system, ids in db.execute(
                "SELECT key, system, group_concat(external_id, char(31)) FROM sys WHERE key IS NOT NULL "
                "AND deleted = 0 GROUP BY key, system HAVING count(*) > 1"):
            external_ids = sorted(ids.split("\x1f"))
            record_findings.append(DiffFinding(
                "duplicate", entity_type, system, key, external_ids,
                f"{len(external_ids)} {system} {entity_type} records for one hub record "
                f"({', '.join(external_ids)}); keep one with `hub resync --finding ID --keep EXTERNAL_ID`",
                {"candidates": candidates(db, system, external_ids)}))
        # keyed, so the pair pass below probes it instead of scanning it per record
        db.execute("CREATE TEMP TABLE dup (key TEXT, system TEXT, PRIMARY KEY (key, system)) WITHOUT ROWID")
        db.execute("INSERT INTO dup SELECT key, system FROM sys WHERE key IS NOT NULL AND deleted = 0 "
                   "GROUP BY key, system HAVING count(*) > 1")

        # orphan: linked to nothing, matching nothing, in a system that does not source this type
        for system, external_id in db.execute(
                "SELECT system, external_id FROM sys WHERE key IS NULL AND deleted = 0 AND void = 0"):
            if self.routing.is_source(entity_type, self.connectors[system].system):
                continue
            record_findings.append(DiffFinding(
                "orphan", entity_type, system, None, [external_id],
                f"{system} {entity_type} {external_id} is linked to no hub record and matches none; "
                f"keep it as it is with `hub resync --finding ID --keep {external_id}` or remove it in {system}",
                {"candidates": candidates(db, system, [external_id])}))

        # unreadable: read but not mapped. Its hub record (when linked) is neither broken_link nor
        # missing: the record is there, the hub only cannot read it.
        for system, external_id, reason, canonical in db.execute(
                "SELECT u.system, u.external_id, u.reason, l.canonical_id FROM unreadable u "
                "LEFT JOIN links l ON l.system = u.system AND l.external_id = u.external_id"):
            linked_to = f" (linked to hub {entity_type} {canonical})" if canonical else ""
            record_findings.append(DiffFinding(
                "unreadable", entity_type, system, None, [external_id],
                f"{system} {entity_type} {external_id}{linked_to} could not be read or mapped: {reason}; "
                f"fix it in {system} (the next diff reads it again) or acknowledge it",
                {"reason": {system: reason}, **({"canonical_id": {"hub": canonical}} if canonical else {})}))

        # broken_link: linked, but gone (or deleted/voided) in the system while the hub is live.
        # A void in the record's owner is the owner's change, not the hub's to undo: it is a
        # source finding below, repaired by reading it in (never by writing the record again).
        for canonical, system, external_id, voided in db.execute(
                "SELECT l.canonical_id, l.system, l.external_id, s.deleted = 0 AND s.void = 1 "
                "FROM links l JOIN hub h ON h.canonical_id = l.canonical_id "
                "LEFT JOIN sys s ON s.system = l.system AND s.external_id = l.external_id "
                "WHERE h.deleted = 0 AND (s.external_id IS NULL OR s.deleted = 1 OR (s.void = 1 AND h.void = 0)) "
                "AND NOT EXISTS (SELECT 1 FROM unreadable u WHERE u.system = l.system "
                "                AND u.external_id = l.external_id)"):
            if voided and self._owns_record(entity_type, system):
                continue
            if voided:
                # A void cannot be undone in a ledger (QuickBooks keeps it voided, Xero keeps its
                # number), and a second document is a guess: the owner decides. The repair refuses.
                owner = (self.routing.ownership.owner(entity_type, "*") or "the source").capitalize()
                record_findings.append(DiffFinding(
                    "broken_link", entity_type, system, canonical, [external_id],
                    f"{system} {entity_type} {external_id} was voided behind the hub's back while it is "
                    f"live in the hub; a void is not undone and the hub does not guess a new document: "
                    f"void it in {owner} too, or re-issue the {entity_type} in {owner}",
                    {"status": {"hub": "live", system: "void"}}, key="voided"))
                continue
            record_findings.append(DiffFinding(
                "broken_link", entity_type, system, canonical, [external_id],
                f"{system} {entity_type} {external_id} was deleted behind the hub's back; "
                "`hub resync --finding ID` writes it again"))

        # missing: the hub says it belongs in the system; nothing live there and no link (a
        # deleted or voided copy matched by number does not hold it). One
        # set-based pass per connection (a void document is never created in a target, and a
        # recent change may still be on its way unless its write is already held or dropped).
        for system in holders:
            for canonical, error, dropped in db.execute(
                    "SELECT h.canonical_id, d.error, x.item_id IS NOT NULL FROM hub h "
                    "LEFT JOIN held d ON d.canonical_id = h.canonical_id AND d.target = ?1 "
                    "LEFT JOIN dropped x ON x.canonical_id = h.canonical_id AND x.target = ?1 "
                    "WHERE h.deleted = 0 AND h.void = 0 AND instr(h.expected, ',' || ?1 || ',') > 0 "
                    "AND (d.error IS NOT NULL OR x.item_id IS NOT NULL OR h.updated_at <= ?2) "
                    "AND NOT EXISTS (SELECT 1 FROM links l WHERE l.canonical_id = h.canonical_id AND l.system = ?1) "
                    "AND NOT EXISTS (SELECT 1 FROM sys s WHERE s.key = h.canonical_id AND s.system = ?1 "
                    "                AND s.deleted = 0 AND s.void = 0)",
                    (system, sla_cutoff)):
                if error is not None:
                    record_findings.append(DiffFinding("missing", entity_type, system, canonical, [],
                                                       f"held: {error}", key="held"))
                    continue
                if dropped:  # a person gave up on its write: acknowledged, with who and why
                    record_findings.append(dropped_finding(db, "missing", entity_type, system, canonical, []))
                    continue
                record_findings.append(DiffFinding(
                    "missing", entity_type, system, canonical, [],
                    f"{entity_type} {canonical} should be in {system} but is not (silent sync failure); "
                    "`hub resync --finding ID` writes it"))

        # mismatch / stale / source: one and one, compared field by field. SQL narrows to the pairs
        # whose normalised fields differ at all; Python applies ownership and tolerances to those.
        for (system, external_id, key, sys_fields, lines, changed_at, hub_fields, updated_at, lagging,
             writing, waiting, dropped) in db.execute(
                "SELECT s.system, s.external_id, s.key, s.fields, s.lines, s.changed_at, h.fields, h.updated_at, "
                "(coalesce(l.last_pushed_hash, h.hash) != h.hash OR (coalesce(l.last_pushed_hash, '') != h.hash "
                " AND EXISTS (SELECT 1 FROM intents i WHERE i.canonical_id = h.canonical_id "
                "             AND i.target = s.system AND i.hash = h.hash))), "
                "EXISTS (SELECT 1 FROM intents i WHERE i.canonical_id = h.canonical_id AND i.target = s.system), "
                "EXISTS (SELECT 1 FROM waiting w WHERE w.system = s.system AND w.external_id = s.external_id), "
                "EXISTS (SELECT 1 FROM dropped x WHERE x.canonical_id = h.canonical_id AND x.target = s.system) "
                "FROM sys s JOIN hub h ON h.canonical_id = s.key "
                "LEFT JOIN links l ON l.canonical_id = s.key AND l.system = s.system "
                "WHERE s.deleted = 0 AND s.fhash != h.fhash "
                "AND NOT EXISTS (SELECT 1 FROM dup WHERE dup.key = s.key AND dup.system = s.system)"):
            owner_system = self.connectors[system].system
            theirs, ours = json.loads(sys_fields), json.loads(hub_fields)
            if entity_type == "invoice":
                ours, theirs = comparable(ours, theirs)
            if entity_type == "payment":  # the rate, where the hub prescribes one there
                ours, theirs = payment_rates(ours, theirs, owner_system, self._home(system))
            if entity_type == "customer":
                record_findings.extend(self._balance_finding(db, system, external_id, key, ours, theirs))
                ours, theirs = {**ours, "balance": None}, {**theirs, "balance": None}
            if theirs.get("status") == "void" != ours.get("status") and not self._owns_record(entity_type, system):
                continue  # voided there while live in the hub: the broken_link above says it all
            differing = self._differing(entity_type, ours, theirs, lines)
            owned = [f for f in differing if self.routing.ownership.owner(entity_type, f) == owner_system]
            if writing:
                owned = []  # the hub's own write to it has not landed: its value is the one on the way
            others = [f for f in differing if f not in owned]
            if owned:
                source = self._source_finding(entity_type, system, external_id, key, owned, ours, theirs)
                on_its_way = waiting or updated_at > sla_cutoff or (changed_at is not None and changed_at > sla_utc)
                # lag: not reported, but its amount is no ledger's fault in the day totals either
                (lag if on_its_way else record_findings).append(source)
            if not others:
                continue
            fields = {f: {"hub": ours.get(f), system: theirs.get(f)} for f in others}
            if lagging:
                # the hub meant to write this content and it has not landed: stale once the
                # SLA has passed, otherwise the write may still be on its way — unless a person
                # dropped it: then it is not on its way, and the gap is reported now
                if dropped:
                    record_findings.append(dropped_finding(db, "stale", entity_type, system, key, [external_id],
                                                           fields))
                elif updated_at <= sla_cutoff:
                    record_findings.append(DiffFinding(
                        "stale", entity_type, system, key, [external_id],
                        f"the hub changed {', '.join(others)} at {updated_at[:19]} and {system} still has "
                        f"the old value past the SLA; `hub resync --finding ID` pushes it", fields))
                continue
            record_findings.append(DiffFinding(
                "mismatch", entity_type, system, key, [external_id],
                f"{system} {entity_type} {external_id} disagrees with the hub on {', '.join(others)}",
                fields))

        yield from record_findings
        yield from self._totals(db, entity_type, holders, [*record_findings, *lag])

    @staticmethod
    def _balance_finding(db: sqlite3.Connection, system: str, external_id: str, canonical: str,
                         ours: dict[str, Any], theirs: dict[str, Any]) -> Iterator[DiffFinding]:
        """The customer's open balance in ``system`` against the hub's (``sync/diff_balance.py``)."""
        if ours.get("balance") is None or theirs.get("balance") is None or ours["balance"] == theirs["balance"]:
            return
        if balance_lagging(db, canonical, system):
            return  # a document of the customer is still being written there
        said = balance_finding_fields(ours, theirs, system, balance_currency(db, canonical, system, external_id))
        if said is not None:
            fields, detail = said
            yield DiffFinding("mismatch", "customer", system, canonical, [external_id],
                              f"{system} customer {external_id}: {detail}", fields, key="balance")

    def _owns_record(self, entity_type: str, connection: str) -> bool:
        return self.routing.ownership.owner(entity_type, "*") == self.connectors[connection].system

    @staticmethod
    def _source_finding(entity_type: str, connection: str, external_id: str, canonical: str, owned: list[str],
                        ours: dict[str, Any], theirs: dict[str, Any]) -> DiffFinding:
        """The owner changed the record and no event brought the change to the hub."""
        changes = ", ".join(f"{f} (hub {ours.get(f)}, {connection} {theirs.get(f)})" for f in owned)
        return DiffFinding(
            "mismatch", entity_type, connection, canonical, [external_id],
            f"{connection} {entity_type} {external_id} changed {changes} and no event reached the hub; "
            f"`hub resync --finding ID` re-reads it from {connection}",
            {f: {"hub": ours.get(f), connection: theirs.get(f)} for f in owned}, key="source")

    def _differing(self, entity_type: str, ours: dict[str, Any], theirs: dict[str, Any],
                   lines: int) -> list[str]:
        if entity_type == "invoice":
            return invoice_differing(ours, theirs, lines, self.tolerances.line_rounding_minor)
        differing = []
        for name, value in theirs.items():
            if value is None or ours.get(name) is None:
                continue  # a system that cannot express a field is not drifting on it
            if name in MONEY_FIELDS and isinstance(value, int):
                if abs(value - int(ours[name])) <= self.tolerances.line_rounding_minor * lines:
                    continue
            elif value == ours.get(name):
                continue
            differing.append(name)
        return sorted(differing)

    def _totals(self, db: sqlite3.Connection, entity_type: str, holders: Sequence[str],
                record_findings: Sequence[DiffFinding]) -> Iterator[DiffFinding]:
        """Per day and currency, sums that record-level findings do not explain."""
        if entity_type not in TOTALLED:
            return
        sources = [n for n in holders if self.routing.is_source(entity_type, self.connectors[n].system)]
        if not sources:
            return
        for measure in TOTALLED[entity_type]:
            yield from measure_totals(db, entity_type, holders, sources, record_findings, measure,
                                      self.tolerances.totals_minor)
