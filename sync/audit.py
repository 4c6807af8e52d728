"""Who did what: the one writer of the audit log, and the CLI's name for its person.

Every state-changing action a person takes — through the console, the API or the CLI — calls
``record_action`` inside the transaction that makes the change, so the entry and the change
commit together or not at all. The web layer names its person with
``sync.web.auth.actor_of(request)``; the CLI with ``cli_actor()``.

Usage::

    with store.transaction() as tx:
        before = tx.get_finding(finding_id).status
        after = tx.ack_finding(finding_id).status
        record_action(tx, cli_actor(), "finding.ack", "finding", finding_id,
                      before={"status": before}, after={"status": after}, reason=comment)
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

from state.audit import AuditEntry, AuditFilter
from state.store import Tx

# Keys whose values never reach the log (a token pasted into a connect form, a password reset).
SECRET_WORDS = ("token", "password", "secret", "credential", "authorization", "api_key", "private_key")
REDACTED = "[redacted]"
REASON_MAX = 2000


def _without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): REDACTED if any(w in str(k).lower() for w in SECRET_WORDS) else _without_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    return value


def record_action(tx: Tx, actor: str, action: str, target_kind: str, target_id: str | int, *,
                  before: Any = None, after: Any = None, reason: str | None = None,
                  record: str | None = None) -> int:
    """Append one audit entry (at the store's clock) in ``tx``; its id.

    ``actor``: ``actor_of(request)`` or ``cli_actor()``. ``action``: "<family>.<verb>", e.g.
    "finding.ack", "outbox.drop", "resync.record", "user.add". ``target_kind``/``target_id``:
    what it acted on ("finding", "outbox", "record", "connection", "user", "job", "range", ...).
    ``before``/``after``: JSON values of the state it changed (statuses, ids; no floats — a float
    raises TypeError; keys naming secrets are redacted). ``reason``: the person's comment.
    ``record``: the hub record it concerns, when not derivable — a finding's and an outbox
    item's record are looked up, a "record" target is its own."""
    if not actor or not action:
        raise ValueError("an audit entry needs an actor and an action")
    target = str(target_id)
    canonical = record or tx.record_of_target(target_kind, target)
    text = (reason or "").strip() or None
    return tx.append_audit(actor, action, target_kind, target, canonical_id=canonical,
                           before=_without_secrets(before), after=_without_secrets(after),
                           reason=text[:REASON_MAX] if text else None)


def cli_actor() -> str:
    """The CLI's person: "cli:<operating-system user>" (the login running ``hub``)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        name = "unknown"
    return f"cli:{name}"


def audit_for_record(tx: Tx, canonical_id: str) -> list[AuditEntry]:
    """The people's actions on one hub record, oldest first — for its timeline."""
    return tx.audit_of_record(canonical_id)


def list_actions(tx: Tx, where: AuditFilter | None = None, *, limit: int = 50,
                 offset: int = 0) -> list[AuditEntry]:
    """Audit entries newest first, filtered (``state.audit.AuditFilter``)."""
    return tx.list_audit(where, limit=limit, offset=offset)


__all__ = ["AuditEntry", "AuditFilter", "audit_for_record", "cli_actor", "list_actions", "record_action"]
