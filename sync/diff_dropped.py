"""Writes a person dropped: the diff keeps each in sight as the record missing from its target.

``hub outbox drop`` (and the console's and the API's Drop) gives up on a write on purpose, with a
reason, in the audit log. The record is still in its source and in the other systems, and not in
the target: that is a gap in the books, and it must not vanish from the diff — before, the
dropped write still counted as "on its way", so within ``stale_sla`` the record was neither
missing nor counted in the day totals. Now a dropped write that no later write of the record to
that target followed is ``missing`` at once (an update given up on: ``stale`` at once, the old
content staying there), acknowledged (a person decided), naming who dropped it, when and why; its
amount is the finding's, so the day totals count it as that gap.
``hub outbox retry ID`` queues it again: once it lands, the next diff no longer sees the record
missing and resolves the finding.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from state.audit import AuditEntry, AuditFilter
from state.store import Tx
from sync.audit import list_actions
from sync.findings import DiffFinding

DROP_ACTION = "outbox.drop"  # the audit action of a dropped write (CLI, console, API)
DROPPED_KEY = "dropped"  # the missing finding's key: apart from a dead write's ("held")


def create_table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE dropped (canonical_id TEXT, target TEXT, item_id INT, actor TEXT, reason TEXT, "
               "at TEXT, PRIMARY KEY (canonical_id, target)) WITHOUT ROWID")


def load_dropped(db: sqlite3.Connection, tx: Tx, entity_type: str) -> None:
    """The dropped writes of ``entity_type`` still standing, with who dropped each and why (its
    newest audit entry; one dropped before the audit log existed says so)."""
    standing = tx.dropped_writes(entity_type)
    if not standing:
        return
    # one read of the drops' audit entries (newest first), not one per dropped write
    drops = AuditFilter(action=DROP_ACTION, target_kind="outbox")
    newest: dict[str, AuditEntry] = {}
    for entry in list_actions(tx, drops, limit=tx.count_audit(drops)):
        newest.setdefault(entry.target_id, entry)
    for canonical_id, target, item_id in standing:
        said = newest.get(str(item_id))
        db.execute("INSERT OR REPLACE INTO dropped VALUES (?,?,?,?,?,?)",
                   (canonical_id, target, item_id, said.actor if said else None,
                    said.reason if said else None, said.at.isoformat() if said else None))


def dropped_finding(db: sqlite3.Connection, kind: str, entity_type: str, system: str, canonical: str,
                    external_ids: list[str], fields: dict[str, Any] | None = None) -> DiffFinding:
    """The finding of a record whose write to ``system`` a person dropped: ``missing`` (never
    written there) or ``stale`` (an update given up on: the old content stays there), acknowledged,
    naming who dropped it, when and why, and how to undo it (``load_dropped`` rows)."""
    item_id, actor, reason, at = db.execute("SELECT item_id, actor, reason, at FROM dropped WHERE canonical_id = ? "
                                            "AND target = ?", (canonical, system)).fetchone()
    who = (f"{actor} dropped its write (outbox item {item_id}) at {at[:16].replace('T', ' ')} UTC"
           if actor and at else f"its write (outbox item {item_id}) was dropped (before the audit log: "
                                "no one named)")
    why = f": {reason}" if reason else " (no reason given)"
    state = "is not in" if kind == "missing" else f"keeps its old {', '.join(sorted(fields or {}))} in"
    return DiffFinding(
        kind, entity_type, system, canonical, external_ids,
        f"{entity_type} {canonical} {state} {system}: {who}{why}; "
        f"`hub outbox retry {item_id}` writes it, and the next diff resolves this",
        {**(fields or {}), "dropped_by": {system: actor}, "reason": {system: reason}},
        key=DROPPED_KEY, status="acknowledged")


__all__ = ["DROPPED_KEY", "DROP_ACTION", "create_table", "dropped_finding", "load_dropped"]
