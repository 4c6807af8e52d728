"""Daily counts and sums for the console's charts, each one grouped SQL statement (issue 21, item 2).

Every function returns rows per UTC day (``YYYY-MM-DD``) and never loads the records themselves,
so a store of 100,000 invoices costs one scan per figure, not 100,000 decoded payloads. What the
rows mean over weeks and months (flows summed, stocks accumulated) is ``sync.chart_data``'s job.

Money has its own module, ``state.money_series``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from state import schema as t
from state.records import aware
from state.txbase import TxBase


def day_of(tx: TxBase, column: Any) -> ColumnElement[str]:
    """The UTC day of a timestamp column: SQLite keeps UTC text, PostgreSQL a timestamptz that
    is shown in the session's zone unless converted."""
    if tx.conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def _rows(tx: TxBase, query: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in tx.conn.execute(query)]


# --------------------------------------------------------------------------- findings


def findings_opened(tx: TxBase) -> list[tuple[str, str, int]]:
    """(day, kind, findings first seen that day)."""
    f = t.findings.c
    day = day_of(tx, f.first_seen)
    return [(str(d), str(k), int(n)) for d, k, n in _rows(
        tx, select(day, f.kind, func.count()).group_by(day, f.kind).order_by(day, f.kind))]


def findings_resolved(tx: TxBase) -> list[tuple[str, int]]:
    """(day, findings resolved that day and still resolved). A finding seen again is reopened
    with its resolution cleared, so an earlier resolution of a reopened one is not in the store."""
    f = t.findings.c
    day = day_of(tx, f.resolved_at)
    query = (select(day, func.count()).where(f.status == "resolved", f.resolved_at.is_not(None))
             .group_by(day).order_by(day))
    return [(str(d), int(n)) for d, n in _rows(tx, query)]


# --------------------------------------------------------------------------- outbox


def outbox_entered(tx: TxBase) -> list[tuple[str, int]]:
    """(day, writes queued that day)."""
    o = t.outbox.c
    day = day_of(tx, o.created_at)
    return [(str(d), int(n)) for d, n in _rows(tx, select(day, func.count()).group_by(day).order_by(day))]


def outbox_left(tx: TxBase) -> list[tuple[str, str, int]]:
    """(day, status, writes that left the queue that day as done, dead or dropped).

    Rows are never deleted and a finished row is not touched again until a person retries it
    (which makes it pending, its ``updated_at`` the retry), so ``updated_at`` of a finished row
    is when it left the queue."""
    o = t.outbox.c
    day = day_of(tx, o.updated_at)
    query = (select(day, o.status, func.count()).where(o.status.in_(["done", "dead", "dropped"]))
             .group_by(day, o.status).order_by(day, o.status))
    return [(str(d), str(s), int(n)) for d, s, n in _rows(tx, query)]


# --------------------------------------------------------------------------- sync runs


def sync_successes(tx: TxBase) -> list[tuple[str, str, datetime]]:
    """(scope, day, the last finish that day) of sync runs that ended ``ok``; a run's scope names
    the connections it covered, comma-separated."""
    r = t.runs.c
    day = day_of(tx, r.finished_at)
    query = (select(r.scope, day, func.max(r.finished_at))
             .where(r.kind == "sync", r.status == "ok", r.finished_at.is_not(None))
             .group_by(r.scope, day).order_by(day))
    found = []
    for scope, d, at in _rows(tx, query):
        when = aware(at if isinstance(at, datetime) else datetime.fromisoformat(str(at)))
        assert when is not None
        found.append((str(scope), str(d), when))
    return found


__all__ = ["day_of", "findings_opened", "findings_resolved", "outbox_entered", "outbox_left", "sync_successes"]
