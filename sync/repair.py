"""Repair on request: ``hub resync --finding ID [--keep EXTERNAL_ID] [--dry-run]``.

* mismatch against the record's owner (the diff's ``source`` finding: every field it names is
  owned by that system): the owner changed it and no event reached the hub. The record is read
  again from the owner and taken in as a sync would (``Engine.ingest``: the hub takes the owner's
  fields and plans one write per target, to linked records, so nothing is posted twice and a void
  follows as a void), then those writes are pushed;
* a void in the hub is pushed as a void, never as an upsert (the planner's repush), so a
  resync never un-voids; a document voided in a ledger while the hub has it live is a
  ``broken_link`` the repair refuses (exit 2) with what to do: void it in the owner too, or
  re-issue it there — never un-voided, never a second document guessed;
* a Xero payment mismatch (its rate): Xero cannot edit a payment, only delete it, so the payment
  is replaced: one outbox write (operation ``replace``) deletes the linked payment and creates it
  again as the hub has it. It is queued before anything happens in Xero, and each attempt re-reads
  the payments carrying the hub's marker (connectors/xero/writes.py), so a crash between the
  delete and the create leaves the write pending and the next push finishes it, never paying the
  invoice twice;
* an invoice mismatch only in what is paid on it (amount paid, amount due, status): refused, the
  payment or credit note findings are the ones to repair (pushing the invoice changes nothing);
* missing, mismatch, stale, broken_link: push the canonical truth to that system again (a
  broken link is forgotten first; every repair write is queued as one that may already exist
  (``may_exist``), so each connector looks the record up by the hub's marker before creating it);
* unreadable: nothing to push — the system holds the record, the hub cannot read it; fix it there;
* duplicate, orphan: link the record the user picks with ``--keep`` (an orphan has no hub record
  to link: keeping it records that it is meant to exist only there); the others are left alone —
  nothing in a ledger is ever deleted by the hub. The decision is kept on the resolved finding,
  so later diffs that see the same records do not report them again;
* totals: nothing to push; the record-level findings of that day are what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mapping.model import stable_id
from state.store import Finding
from sync.context import idempotency_key
from sync.diff_record import RecordDiff, diff_record
from sync.engine import SyncSummary
from sync.runtime import Hub


class RepairError(ValueError):
    """The finding cannot be repaired as asked; the message says what to do instead."""


@dataclass
class RepairPlan:
    finding: Finding
    actions: list[str] = field(default_factory=list)
    summary: SyncSummary | None = None
    recheck: RecordDiff | None = None  # the record compared again right after the repair

    def to_json(self) -> dict[str, Any]:
        return {"finding": self.finding.to_json(), "actions": self.actions, "dry_run": self.summary is None,
                "written": self.summary.totals().written if self.summary else 0,
                "recheck": self.recheck.in_words() if self.recheck else None}


def repair_finding(hub: Hub, finding_id: str, *, keep: str | None = None, dry_run: bool = False) -> RepairPlan:
    """Repair one finding (see the module's doc); after a repair that wrote, its record is
    compared again at once (``sync/diff_record.py``), so a fixed finding resolves now rather than
    at the next scheduled diff — for the CLI, the API and the console alike."""
    plan = _repair(hub, finding_id, keep=keep, dry_run=dry_run)
    canonical = plan.finding.canonical_id
    if plan.summary is not None and canonical is not None and plan.finding.kind not in ("duplicate", "orphan"):
        plan.recheck = diff_record(hub, canonical)  # a kept duplicate or orphan is resolved by the repair
        plan.actions.append(f"compared hub {plan.finding.entity} {canonical} again: {plan.recheck.in_words()}")
    return plan


def _repair(hub: Hub, finding_id: str, *, keep: str | None, dry_run: bool) -> RepairPlan:
    with hub.store.transaction() as tx:
        finding = tx.get_finding(finding_id)
    plan = RepairPlan(finding)
    if finding.status == "resolved":
        raise RepairError(f"finding {finding.id[:8]} is already resolved")
    kind, system, entity = finding.kind, finding.system, finding.entity
    if kind == "unreadable":
        raise RepairError(f"{system} {entity} {', '.join(finding.external_ids)} is there but cannot be read "
                          f"({finding.detail}); fix it in {system} or acknowledge the finding")
    if kind == "totals":
        raise RepairError("a totals finding has no single record to push; fix the record findings of "
                          f"that day (`hub drift list --system {system}`) and run `hub diff` again")
    if kind in ("duplicate", "orphan"):
        if keep is None:
            raise RepairError(f"pick the {system} record to keep: --keep one of {', '.join(finding.external_ids)}")
        if keep not in finding.external_ids:
            raise RepairError(f"{keep} is not one of {', '.join(finding.external_ids)}")
        canonical = finding.canonical_id
        others = ", ".join(x for x in finding.external_ids if x != keep) or "nothing"
        if canonical is not None:
            plan.actions.append(f"link hub {entity} {canonical} to {system} {keep}; leave {others} untouched")
        else:
            # an orphan matches no hub record: there is nothing to link it to, and the ledger is
            # not a source of this entity. Keeping it records the decision so the diff stops asking.
            plan.actions.append(f"keep {system} {entity} {keep} as a record only {system} has; nothing is "
                                "linked or deleted")
        if not dry_run:
            with hub.store.transaction() as tx:
                if canonical is not None:
                    tx.link(canonical, system, entity, keep, replace=True)
                    connector = hub.connectors.get(system)
                    if connector is not None:  # records that named the kept one while unlinked follow it
                        hub.engine.repoint_holders(tx, connector, {stable_id(system, entity, keep): canonical},
                                                   SyncSummary(), None)
                # the decision lives on the finding (resolved, ``kept``): later diffs that see the
                # same set of records skip it; nothing is deleted in the ledger
                tx.upsert_finding(fingerprint=finding.fingerprint, kind=kind, entity=entity, system=system,
                                  canonical_id=canonical, external_ids=finding.external_ids,
                                  fields={**finding.fields, "kept": {system: keep}},
                                  detail=finding.detail + f" — kept {keep}", run_id=None)
                tx.resolve_finding(finding.id)
            plan.summary = SyncSummary()
        return plan
    if finding.canonical_id is None:
        raise RepairError(f"{kind} finding {finding.id[:8]} names no hub record to push")
    if kind == "broken_link" and (finding.fields.get("status") or {}).get(system) == "void":
        # never un-void (QuickBooks cannot, and an update of a voided document would bring the
        # receivable back) and never guess a second document: the finding says what to do
        raise RepairError(f"{finding.detail}; then run `hub diff` again")
    if kind == "mismatch" and _allocation_only(finding):
        raise RepairError(f"{system} {entity} {', '.join(finding.external_ids)} differs only in what is paid "
                          f"on it ({', '.join(sorted(finding.fields))}): repair the payment or credit note "
                          f"findings of {system} (`hub drift list --system {system}`), then run `hub diff` again")
    if kind == "mismatch" and entity == "payment" and hub.connectors[system].system == "xero":
        return _replace_payment(hub, plan, dry_run)  # Xero's API cannot edit a payment, only delete it
    if kind == "mismatch" and _against_owner(hub, finding):
        return _read_from_owner(hub, plan, dry_run)
    plan.actions.append(f"push hub {entity} {finding.canonical_id} to {system}"
                        + (" (re-create: its link is broken)" if kind == "broken_link" else ""))
    if dry_run:
        return plan
    current = None
    if kind in ("mismatch", "stale"):
        # The target was changed behind the hub's back (or may have been): read its current
        # version first, so the overwrite carries the fresh concurrency token (QuickBooks
        # SyncToken) instead of failing on the old one and being judged "already written".
        current = hub.connectors[system].lookup(entity, finding.canonical_id)
    with hub.store.transaction() as tx:
        link = tx.link_for(finding.canonical_id, system, entity)
        if current is not None and current.version and link is not None and (
                link.external_id == current.external_id):
            tx.link(finding.canonical_id, system, entity, link.external_id, remote_version=current.version)
        if kind == "broken_link":
            tx.unlink(finding.canonical_id, system, entity)
        for item in tx.list_outbox("dead", limit=10**6):
            if item.canonical_id == finding.canonical_id and item.target == system:
                tx.drop_outbox(item.id)  # superseded by this repair's own write
        nonce = f"repair:{finding.id}:{finding.last_seen.isoformat()}"
        if not hub.engine.repush(tx, finding.canonical_id, only=system, nonce=nonce):
            raise RepairError(f"hub record {finding.canonical_id} no longer exists")
    summary = SyncSummary()
    hub.engine.push(system, summary, None, entities=[entity])
    plan.summary = summary
    return plan


ALLOCATION_FIELDS = frozenset({"amount_paid", "amount_credited", "amount_due", "status"})


def _allocation_only(finding: Finding) -> bool:
    """An invoice whose payments or credits differ, not its content, or a customer's open balance
    (the sum of its documents, sync/diff_balance.py): pushing the record changes nothing."""
    if finding.entity == "customer" and "balance" in finding.fields:
        return True
    return finding.entity == "invoice" and bool(finding.fields) and set(finding.fields) <= ALLOCATION_FIELDS and (
        (finding.fields.get("status") or {}).get("hub") != "void")


def _replace_payment(hub: Hub, plan: RepairPlan, dry_run: bool) -> RepairPlan:
    """Queue the Xero payment's replacement (delete, then create as the hub has it) and push it."""
    finding = plan.finding
    canonical, system = finding.canonical_id, finding.system
    assert canonical is not None
    plan.actions.append(f"replace {system} payment {', '.join(finding.external_ids)}: delete it and create hub "
                        f"payment {canonical} again as the hub has it (Xero cannot edit a payment)")
    if dry_run:
        return plan
    with hub.store.transaction() as tx:
        stored, link = tx.get_entity(canonical), tx.link_for(canonical, system, "payment")
        if stored is None:
            raise RepairError(f"hub record {canonical} no longer exists")
        if link is None or link.deleted:
            raise RepairError(f"hub payment {canonical} is linked to no live {system} payment; run `hub diff` "
                              "again and repair its broken link")
        tx.link(canonical, system, "payment", link.external_id, pushed_hash="", payload_hash="")
        for item in tx.list_outbox("dead", limit=10**6):
            if item.canonical_id == canonical and item.target == system:
                tx.drop_outbox(item.id)  # superseded by this repair's own write
        nonce = f"repair:{finding.id}:{finding.last_seen.isoformat()}"
        tx.enqueue(canonical, "payment", system, "replace", idempotency_key(canonical, system,
                                                                             f"{stored.content_hash}/{nonce}"),
                   stored.content_hash, external_id=link.external_id, may_exist=True)
    summary = SyncSummary()
    hub.engine.push(system, summary, None, entities=["payment"])
    plan.summary = summary
    return plan


def _against_owner(hub: Hub, finding: Finding) -> bool:
    """A mismatch in fields the finding's system owns: the hub lags its source."""
    connector = hub.connectors.get(finding.system)
    return connector is not None and bool(finding.fields) and all(
        hub.routing.ownership.owner(finding.entity, name) == connector.system for name in finding.fields)


def _read_from_owner(hub: Hub, plan: RepairPlan, dry_run: bool) -> RepairPlan:
    finding = plan.finding
    connector, entity = hub.connectors[finding.system], finding.entity
    (external_id,) = finding.external_ids
    plan.actions.append(f"read {finding.system} {entity} {external_id} again and take it into hub {entity} "
                        f"{finding.canonical_id}; push the change to the systems that hold it")
    if dry_run:
        return plan
    # One full read of that entity from the owner, stopped at the record: the Connector protocol
    # has no read by id for every system (and ``lookup`` finds only records carrying the hub's
    # marker). A repair is asked for one record at a time, and the diff itself reads in full.
    record = next((r for page in connector.fetch_all(entity) for r in page.records
                   if r.external_id == external_id), None)
    if record is None:
        raise RepairError(f"{finding.system} {entity} {external_id} is no longer there; run `hub diff` again")
    summary = SyncSummary()
    with hub.store.transaction() as tx:
        hub.engine.ingest(tx, connector, [record], summary, None)
    if summary.errors:
        raise RepairError("; ".join(summary.errors))
    for name in hub.connectors:
        if name != finding.system:
            hub.engine.push(name, summary, None, entities=[entity])
    plan.summary = summary
    return plan


def resync_since(hub: Hub, entity: str, since: datetime, *, dry_run: bool = False) -> SyncSummary:
    """``hub resync --entity E --since DATE``: re-push every record of ``entity`` changed since
    ``since`` (a naive date is taken as UTC), then re-read that entity in full from its sources."""
    if dry_run:
        return hub.engine.sync(entities=[entity], dry_run=True, full=True)
    cutoff = since.replace(tzinfo=None)
    with hub.store.transaction() as tx:
        for stored in tx.entities_of(entity):
            if stored.updated_at.replace(tzinfo=None) >= cutoff:
                hub.engine.repush(tx, stored.id, nonce=f"resync:{since.isoformat()}")
    return hub.engine.sync(entities=[entity], full=True)
