"""The audit entries of resyncs (a finding, one record, a range), for the CLI and the API.

A resync runs the engine through many transactions of its own, so its entry is written once it
is done, saying what it wrote; a dry run changed nothing and is not recorded. The action names
are the console's (``sync/web/console_record.py``, ``console_resync.py``): ``resync.finding``,
``resync.record``, ``resync.range``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from state.store import StateStore
from sync.audit import record_action
from sync.repair import RepairPlan
from sync.summary import SyncSummary


def _totals(summary: SyncSummary | None) -> dict[str, Any] | None:
    return None if summary is None else dataclasses.asdict(summary.totals())


def audit_finding_resync(store: StateStore, actor: str, plan: RepairPlan, *, keep: str | None = None,
                         reason: str | None = None) -> None:
    with store.transaction() as tx:
        now = tx.get_finding(plan.finding.id).status
        record_action(tx, actor, "resync.finding", "finding", plan.finding.id,
                      before={"status": plan.finding.status},
                      after={"status": now, "keep": keep, "actions": plan.actions, "totals": _totals(plan.summary)},
                      reason=reason)


def audit_record_resync(store: StateStore, actor: str, connection: str, entity: str, external_id: str,
                        summary: SyncSummary, *, reason: str | None = None) -> None:
    with store.transaction() as tx:
        canonical = tx.canonical_for(connection, entity, external_id)
        record_action(tx, actor, "resync.record", "record", canonical or f"{connection}:{entity}:{external_id}",
                      after={"connection": connection, "entity": entity, "external_id": external_id,
                             "totals": _totals(summary)}, reason=reason, record=canonical)


def audit_range_resync(store: StateStore, actor: str, entity: str, since: datetime, summary: SyncSummary, *,
                       reason: str | None = None) -> None:
    day = since.date().isoformat()
    with store.transaction() as tx:
        record_action(tx, actor, "resync.range", "range", f"{entity}:{day}",
                      after={"entity": entity, "since": day, "totals": _totals(summary)}, reason=reason)


__all__ = ["audit_finding_resync", "audit_range_resync", "audit_record_resync"]
