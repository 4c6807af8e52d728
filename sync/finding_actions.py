"""Acknowledging a finding, the one way every door does it (CLI, console, API, bulk): the status
change and its audit entry — who, the status before and after, their comment — in one
transaction."""

from __future__ import annotations

from state.records import Finding
from state.store import Tx
from sync.audit import record_action

ACK_ACTION = "finding.ack"


def acknowledge(tx: Tx, finding_id: str, *, actor: str, comment: str | None = None) -> Finding:
    """Acknowledge ``finding_id`` (an id or a unique prefix) as ``actor``, saying why; the finding
    as it now is. Acknowledging one already acknowledged or resolved changes nothing but is still
    recorded (the comment may add to the story)."""
    before = tx.get_finding(finding_id)
    after = tx.ack_finding(before.id)
    record_action(tx, actor, ACK_ACTION, "finding", after.id, before={"status": before.status},
                  after={"status": after.status}, reason=comment,
                  record=before.canonical_id)  # known already: no second read of the finding
    return after


__all__ = ["ACK_ACTION", "acknowledge"]
