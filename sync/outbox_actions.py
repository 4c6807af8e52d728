"""A person's actions on the outbox, audited: the one place the CLI, the console and the API drop
a write (``hub outbox drop ID --reason TEXT``) or retry one (``hub outbox retry ID``).

Dropping a write gives up on a change a system should have had, so it takes a reason (a careful
finance team wants to know later why an invoice never reached a ledger) and names the person: both
go to the audit log in the transaction that drops it, and the diff reads them back for the
acknowledged ``missing`` finding that keeps the gap in sight (``sync/diff_dropped.py``).
"""

from __future__ import annotations

from state.store import Tx
from sync.audit import record_action
from sync.diff_dropped import DROP_ACTION

RETRY_ACTION = "outbox.retry"
REASON_NEEDED = "say why the write is dropped (--reason TEXT): it is kept in the audit log and on the finding"


def drop_write(tx: Tx, item_id: int, *, actor: str, reason: str, reason_needed: str = REASON_NEEDED) -> None:
    """Drop outbox item ``item_id`` on ``actor``'s word, with ``reason``, in the audit log.
    ``NotFound`` when there is no such item or it is not pending or dead (asked first: an unknown
    id is the answer even without a reason); ``ValueError(reason_needed)`` for a blank reason."""
    before = tx.outbox_status(item_id)
    if before is not None and not reason.strip():
        raise ValueError(reason_needed)
    tx.drop_outbox(item_id)
    record_action(tx, actor, DROP_ACTION, "outbox", item_id, before={"status": before},
                  after={"status": "dropped"}, reason=reason)


def retry_write(tx: Tx, item_id: int, *, actor: str, reason: str | None = None) -> None:
    """Put outbox item ``item_id`` (dead, dropped or pending) back in the queue, due now, on
    ``actor``'s word, in the audit log; ``NotFound`` when it cannot be retried. A dropped write
    retried and landed resolves its ``missing`` finding at the next diff."""
    before = tx.outbox_status(item_id)
    tx.retry_outbox(item_id)
    record_action(tx, actor, RETRY_ACTION, "outbox", item_id, before={"status": before},
                  after={"status": "pending"}, reason=reason)


__all__ = ["REASON_NEEDED", "RETRY_ACTION", "drop_write", "retry_write"]
