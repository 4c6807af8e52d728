"""Daily counts and sums for the console's charts, each one grouped SQL statement (issue 21, item 2).

Every function returns rows per UTC day (``YYYY-MM-DD``) and never loads the records themselves,
so a store of 100,000 invoices costs one scan per figure, not 100,000 decoded payloads. What the
rows mean over weeks and months (flows summed, stocks accumulated) is ``sync.chart_data``'s job.

Money stays integer minor units, grouped by each amount's own currency: no sum crosses one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import aliased

from state import schema as t
from state.records import aware
from state.txbase import TxBase

# Invoices that were ever owed: a void one never was, a draft not yet. Receivables count only
# these two current statuses (the store keeps no date for a void or a write-off, so an
# uncollectible invoice is left out of every month, as the overview's receivables leave it out).
OWED = ("open", "paid")
BILLED = ("open", "paid", "uncollectible")  # revenue invoiced: what was issued and not voided


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


# --------------------------------------------------------------------------- money


def _text(entity: Any, *path: str) -> ColumnElement[str]:
    found: ColumnElement[str] = entity.c.payload[path if len(path) > 1 else path[0]].as_string()
    return found


def _minor(entity: Any, *path: str) -> ColumnElement[int]:
    # BIGINT: one yen or dong invoice can pass 2**31 minor units
    return cast(_text(entity, *path), BigInteger)


def _live(entity: Any, entity_type: str) -> ColumnElement[bool]:
    return and_(entity.c.type == entity_type, entity.c.deleted.is_(False))


def _day_text(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.substr(column, 1, 10)  # payload timestamps are ISO 8601 UTC text ("…Z")


def _per_currency_day(tx: TxBase, currency: Any, when: Any, amount: Any,
                      where: Iterable[Any], froms: Any = None) -> list[tuple[str, str, int]]:
    day = _day_text(when)
    query = select(currency, day, func.sum(amount)).where(when.is_not(None), *where)
    if froms is not None:
        query = query.select_from(froms)
    query = query.group_by(currency, day).order_by(day, currency)
    return [(str(c), str(d), int(n)) for c, d, n in _rows(tx, query) if n is not None]


def invoiced(tx: TxBase) -> list[tuple[str, str, int]]:
    """(currency, day, totals of the invoices issued that day), void and draft ones left out."""
    i = t.entities
    return _per_currency_day(tx, _text(i, "total", "currency"), _text(i, "issued_at"),
                             _minor(i, "total", "minor"),
                             [_live(i, "invoice"), _text(i, "status").in_(BILLED)])


def credited(tx: TxBase) -> list[tuple[str, str, int]]:
    """(currency, day, totals of the credit notes issued that day), void ones left out."""
    n = t.entities
    return _per_currency_day(tx, _text(n, "total", "currency"), _text(n, "issued_at"),
                             _minor(n, "total", "minor"),
                             [_live(n, "credit_note"), _text(n, "status") != "void"])


def receivable_moves(tx: TxBase) -> dict[str, list[tuple[str, str, int]]]:
    """What changed the open balance of owed invoices, per (currency, day), each kind a sign:

    ``issued`` + the invoice's total; ``paid`` − a succeeded payment applied to it; ``credited`` −
    a credit note on it, less what the note refunded (a refund pays money back, it does not
    lower what is owed); ``settled`` − what a paid invoice still showed owing when it was paid
    (a payment the hub has no record of, or none dated), so a paid invoice ends at zero."""
    inv, pay, note = aliased(t.entities), aliased(t.entities), aliased(t.entities)
    owed = [_live(inv, "invoice"), _text(inv, "status").in_(OWED), _text(inv, "issued_at").is_not(None)]
    paid_where = [_live(pay, "payment"), _text(pay, "status") == "succeeded"]
    note_where = [_live(note, "credit_note"), _text(note, "status") != "void"]
    note_applied = _minor(note, "total", "minor") - func.coalesce(_minor(note, "refund_amount", "minor"), 0)
    moves = {
        "issued": _per_currency_day(tx, _text(inv, "total", "currency"), _text(inv, "issued_at"),
                                    _minor(inv, "total", "minor"), owed),
        "paid": _per_currency_day(
            tx, _text(pay, "amount", "currency"), _text(pay, "paid_at"), _minor(pay, "amount", "minor"),
            [*paid_where, *owed], froms=pay.join(inv, inv.c.id == _text(pay, "invoice_id"))),
        "credited": _per_currency_day(
            tx, _text(note, "total", "currency"), _text(note, "issued_at"), note_applied,
            [*note_where, *owed], froms=note.join(inv, inv.c.id == _text(note, "invoice_id"))),
    }
    # What each paid invoice's dated payments and credit notes covered, in one grouped pass each.
    # (One expression object per grouped column: PostgreSQL matches GROUP BY to the select list
    # by text, and two objects would bind the same JSON path as two parameters.)
    paid_for, noted_for = _text(pay, "invoice_id"), _text(note, "invoice_id")
    paid_sum = (select(paid_for.label("invoice_id"), func.sum(_minor(pay, "amount", "minor")).label("minor"))
                .where(*paid_where, _text(pay, "paid_at").is_not(None)).group_by(paid_for).subquery())
    note_sum = (select(noted_for.label("invoice_id"), func.sum(note_applied).label("minor"))
                .where(*note_where, _text(note, "issued_at").is_not(None)).group_by(noted_for).subquery())
    left = (_minor(inv, "total", "minor") - func.coalesce(paid_sum.c.minor, 0)
            - func.coalesce(note_sum.c.minor, 0))
    moves["settled"] = _per_currency_day(
        tx, _text(inv, "total", "currency"), func.coalesce(_text(inv, "paid_at"), _text(inv, "issued_at")),
        case((left > 0, left), else_=literal(0)),
        [*owed, _text(inv, "status") == "paid"],
        froms=inv.outerjoin(paid_sum, paid_sum.c.invoice_id == inv.c.id)
        .outerjoin(note_sum, note_sum.c.invoice_id == inv.c.id))
    return moves


def undated(tx: TxBase) -> dict[str, int]:
    """How many billed invoices and succeeded payments carry no date, so no chart can place them."""
    e = t.entities
    checks = {"invoice": and_(_live(e, "invoice"), _text(e, "status").in_(BILLED), _text(e, "issued_at").is_(None)),
              "payment": and_(_live(e, "payment"), _text(e, "status") == "succeeded", _text(e, "paid_at").is_(None))}
    found = {}
    for name, cond in checks.items():
        found[name] = int(tx.conn.execute(select(func.count()).select_from(e).where(or_(cond))).scalar_one())
    return found


__all__ = ["BILLED", "OWED", "credited", "day_of", "findings_opened", "findings_resolved", "invoiced",
           "outbox_entered", "outbox_left", "receivable_moves", "sync_successes", "undated"]
