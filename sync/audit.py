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

import csv
import getpass
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mapping import exact_json
from state.audit import AuditEntry, AuditFilter
from state.store import Tx

# Keys whose values never reach the log (a token pasted into a connect form, a password reset).
SECRET_WORDS = ("token", "password", "secret", "credential", "authorization", "api_key", "private_key")
REDACTED = "[redacted]"
REASON_MAX = 2000


def _without_secrets(value: Any) -> Any:
    """Text under a key naming a secret is redacted (a flag like ``had_tokens`` or a count is kept)."""
    if isinstance(value, Mapping):
        return {str(k): REDACTED if isinstance(v, str | bytes) and any(w in str(k).lower() for w in SECRET_WORDS)
                else _without_secrets(v) for k, v in value.items()}
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


CSV_COLUMNS = ("id", "at", "actor", "action", "target_kind", "target_id", "canonical_id", "reason", "before", "after")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell a spreadsheet would run as a formula


def _cell(value: Any) -> str:
    """A CSV cell: JSON for before/after, and text a spreadsheet would evaluate quoted with '."""
    text = "" if value is None else value if isinstance(value, str) else exact_json.dumps(value, sort_keys=True)
    return "'" + text if text.startswith(_FORMULA) else text


def _day(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A filter's date: YYYY-MM-DD (UTC; as an end, the whole day included) or an ISO datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: a date YYYY-MM-DD or an ISO date and time, not {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and len(value) == 10:  # a bare date as the end: up to the end of that day
        parsed += timedelta(days=1)
    return parsed


def audit_filter(*, actor: str | None = None, action: str | None = None, target_kind: str | None = None,
                 target_id: str | None = None, record: str | None = None, since: str | None = None,
                 until: str | None = None) -> AuditFilter:
    """An ``AuditFilter`` from what a person typed (CLI options, console query); bad dates raise
    ValueError saying what to type."""
    return AuditFilter(actor=actor or None, action=action or None, target_kind=target_kind or None,
                       target_id=target_id or None, canonical_id=record or None,
                       since=_day(since, "since"), until=_day(until, "until", end=True))


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV (one header row; before/after as exact JSON text)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = entry.to_json()
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def audit_json(entries: Iterable[AuditEntry]) -> str:
    """The entries as one JSON document {"entries": [...]} (exact numbers, no floats)."""
    return exact_json.dumps({"entries": [e.to_json() for e in entries]}, indent=2, sort_keys=True)


def changes(entry: AuditEntry) -> list[str]:
    """What the action changed, for people: "status open → acknowledged" per key that differs."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    return [f"{key} {_said(before.get(key))} → {_said(after.get(key))}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def _said(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else exact_json.dumps(value, sort_keys=True)


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


__all__ = ["AuditEntry", "AuditFilter", "audit_csv", "audit_filter", "audit_for_record", "audit_json", "changes", "cli_actor",
           "list_actions", "record_action"]
