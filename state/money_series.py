"""Revenue and the moves of receivables per currency per UTC day, for the console's charts
(issue 21, item 2): one SQL statement, however many invoices, payments and credit notes.

Each record's payload is read once, into one table per entity type holding the few fields the
figures need: on PostgreSQL a MATERIALIZED CTE of the statement (payloads are ``json`` text there,
where every ``->>`` parses the whole document again, so each row is converted to ``jsonb`` once
and its fields taken from that; the joins are hashed), on SQLite a temporary table dropped after.
Every figure is then a GROUP BY over those tables, all in one UNION ALL.

Money stays integer minor units, grouped by each amount's own currency: no sum crosses one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB

from state import schema as t
from state.txbase import TxBase

# Invoices that were ever owed: a void one never was, a draft not yet. Receivables count only
# these two current statuses (the store keeps no date for a void or a write-off, so an
# uncollectible invoice is left out of every month, as the overview's receivables leave it out).
OWED = ("open", "paid")
BILLED = ("open", "paid", "uncollectible")  # revenue invoiced: what was issued and not voided

# What each kind of move does to the open balance (``chart_data`` adds them up).
RECEIVABLE_SIGN = {"issued": 1, "paid": -1, "noted": -1, "settled": -1}


def _fields(tx: TxBase, entity_type: str, name: str, texts: dict[str, Any], minors: dict[str, Any],
            scratch: list[Table]) -> Any:
    """A table of the live records of ``entity_type``: ``id`` and each named payload path, read
    once (``minors``: integer minor units, as BIGINT — one yen or dong invoice can pass 2**31).

    PostgreSQL: a MATERIALIZED CTE. SQLite: a temporary table with ``id`` as its key, filled in
    one pass (a materialized CTE there has no index to join on, and a subquery folded into each
    use reads the payloads once per figure); it is added to ``scratch`` for the caller to drop."""
    e = t.entities
    live = and_(e.c.type == entity_type, e.c.deleted.is_(False))
    postgres = tx.conn.dialect.name == "postgresql"
    source: Any
    if postgres:
        # OFFSET 0 keeps the planner from folding the conversion into every field below.
        docs = select(e.c.id, cast(e.c.payload, JSONB).label("doc")).where(live).offset(0).subquery()
        doc, key, source = docs.c.doc, docs.c.id, docs
    else:
        doc, key, source = e.c.payload, e.c.id, e

    def read(path: Any) -> ColumnElement[str]:
        found: ColumnElement[str] = doc[path].as_string()
        return found
    columns: list[Any] = [key.label("id")]
    columns += [read(path).label(label) for label, path in texts.items()]
    columns += [cast(read(path), BigInteger).label(label) for label, path in minors.items()]
    query = select(*columns).select_from(source)
    if postgres:
        return query.cte(name).prefix_with("MATERIALIZED")
    table = Table(name, MetaData(), Column("id", String(36), primary_key=True),
                  *(Column(label, Text) for label in texts), *(Column(label, BigInteger) for label in minors),
                  prefixes=["TEMPORARY"])
    table.drop(tx.conn, checkfirst=True)  # left by an earlier request on this connection that failed
    table.create(tx.conn)
    scratch.append(table)
    tx.conn.execute(table.insert().from_select([c.name for c in table.c], query.where(live)))
    return table


def _day(column: Any) -> ColumnElement[str]:
    return func.substr(column, 1, 10)  # payload timestamps are ISO 8601 UTC text ("…Z")


def _grouped(kind: str, currency: Any, when: Any, amount: Any, *where: Any, froms: Any = None) -> Any:
    day = _day(when)
    query = select(literal(kind).label("kind"), currency.label("currency"), day.label("day"),
                   func.sum(amount).label("minor")).where(when.is_not(None), *where)
    if froms is not None:
        query = query.select_from(froms)
    return query.group_by(currency, day)


def _hash_joined(tx: TxBase, statement: Any) -> list[Any]:
    """The statement's rows; on PostgreSQL planned without nested loops. Its row estimates for
    tables built from JSON fields are guesses (and right after a first load the statistics are
    stale), and a nested loop picked on a guess of a few rows joins 100,000 payments to 100,000
    invoices pairwise; hash joins cost one pass over each. The setting is put back after."""
    if tx.conn.dialect.name != "postgresql":
        return list(tx.conn.execute(statement))
    before = tx.conn.execute(text("SELECT current_setting('enable_nestloop')")).scalar_one()
    tx.conn.execute(text("SELECT set_config('enable_nestloop', 'off', true)"))
    try:
        return list(tx.conn.execute(statement))
    finally:
        tx.conn.execute(text("SELECT set_config('enable_nestloop', :before, true)"), {"before": before})


def money_moves(tx: TxBase) -> dict[str, list[tuple[str, str, int]]]:
    """(currency, day, minor units) per kind, in one statement:

    ``invoiced`` invoice totals on their issue day (void and draft ones left out); ``credited``
    credit note totals (void ones left out). The open balance of owed invoices moves by
    ``issued`` (+ the total), ``paid`` (− a succeeded payment applied to it), ``noted`` (− a
    credit note on it, less what the note refunded: a refund pays money back, it does not lower
    what is owed) and ``settled`` (− what a paid invoice still showed owing on its paid day: a
    payment the hub has no record of, or none dated), so a paid invoice ends at zero.
    ``undated-invoice`` and ``undated-payment`` count (in ``minor``) billed invoices and succeeded
    payments without a date, which no period can hold."""
    scratch: list[Table] = []
    try:
        return _moves(tx, scratch)
    finally:
        for table in scratch:
            table.drop(tx.conn)


def _moves(tx: TxBase, scratch: list[Table]) -> dict[str, list[tuple[str, str, int]]]:
    inv = _fields(tx, "invoice", "chart_invoices",
                  {"currency": ("total", "currency"), "status": "status", "issued": "issued_at", "paid_on": "paid_at"},
                  {"total": ("total", "minor")}, scratch)
    pay = _fields(tx, "payment", "chart_payments",
                  {"invoice_id": "invoice_id", "currency": ("amount", "currency"), "status": "status",
                   "paid_on": "paid_at"}, {"amount": ("amount", "minor")}, scratch)
    note = _fields(tx, "credit_note", "chart_notes",
                   {"invoice_id": "invoice_id", "currency": ("total", "currency"), "status": "status",
                    "issued": "issued_at"}, {"total": ("total", "minor"), "refunded": ("refund_amount", "minor")},
                   scratch)
    owed = and_(inv.c.status.in_(OWED), inv.c.issued.is_not(None))
    paid = pay.c.status == "succeeded"
    noted = note.c.status != "void"
    applied = note.c.total - func.coalesce(note.c.refunded, 0)
    # What each invoice's dated payments and credit notes covered.
    paid_sum = (select(pay.c.invoice_id, func.sum(pay.c.amount).label("minor"))
                .where(paid, pay.c.paid_on.is_not(None)).group_by(pay.c.invoice_id).subquery())
    note_sum = (select(note.c.invoice_id, func.sum(applied).label("minor"))
                .where(noted, note.c.issued.is_not(None)).group_by(note.c.invoice_id).subquery())
    left = inv.c.total - func.coalesce(paid_sum.c.minor, 0) - func.coalesce(note_sum.c.minor, 0)

    def undated(kind: str, table: Any, *where: Any) -> Any:
        return select(literal(kind).label("kind"), null().label("currency"), null().label("day"),
                      func.count().label("minor")).select_from(table).where(*where)
    statement = union_all(
        _grouped("invoiced", inv.c.currency, inv.c.issued, inv.c.total, inv.c.status.in_(BILLED)),
        _grouped("credited", note.c.currency, note.c.issued, note.c.total, noted),
        _grouped("issued", inv.c.currency, inv.c.issued, inv.c.total, owed),
        _grouped("paid", pay.c.currency, pay.c.paid_on, pay.c.amount, paid, owed,
                 froms=pay.join(inv, inv.c.id == pay.c.invoice_id)),
        _grouped("noted", note.c.currency, note.c.issued, applied, noted, owed,
                 froms=note.join(inv, inv.c.id == note.c.invoice_id)),
        _grouped("settled", inv.c.currency, func.coalesce(inv.c.paid_on, inv.c.issued),
                 case((left > 0, left), else_=literal(0)), owed, inv.c.status == "paid",
                 froms=inv.outerjoin(paid_sum, paid_sum.c.invoice_id == inv.c.id)
                 .outerjoin(note_sum, note_sum.c.invoice_id == inv.c.id)),
        undated("undated-invoice", inv, inv.c.status.in_(BILLED), inv.c.issued.is_(None)),
        undated("undated-payment", pay, paid, pay.c.paid_on.is_(None)),
    )
    found: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for kind, currency, day, minor in _hash_joined(tx, statement):
        if minor is not None:
            found[str(kind)].append((str(currency or ""), str(day or ""), int(minor)))
    for rows in found.values():
        rows.sort(key=lambda row: (row[1], row[0]))
    return dict(found)


def money_totals(tx: TxBase) -> dict[str, dict[str, int]]:
    """The overview's all-time figures per currency in one grouped statement: ``collected``
    (succeeded payments less succeeded refunds) and ``receivables`` (what open invoices show
    due). No record is decoded; each payload is read once."""
    e = t.entities

    def text_at(*path: str) -> ColumnElement[str]:
        found: ColumnElement[str] = e.c.payload[path if len(path) > 1 else path[0]].as_string()
        return found

    def minor_at(*path: str) -> ColumnElement[int]:
        return cast(text_at(*path), BigInteger)

    def total(figure: str, entity_type: str, money: str, status: str, sign: int) -> Any:
        currency = text_at(money, "currency")
        return (select(literal(figure).label("figure"), currency.label("currency"),
                       func.sum(minor_at(money, "minor") * sign).label("minor"))
                .where(e.c.type == entity_type, e.c.deleted.is_(False), text_at("status") == status)
                .group_by(currency))
    statement = union_all(total("collected", "payment", "amount", "succeeded", 1),
                          total("collected", "refund", "amount", "succeeded", -1),
                          total("receivables", "invoice", "amount_due", "open", 1))
    found: dict[str, dict[str, int]] = {"collected": {}, "receivables": {}}
    for figure, currency, minor in tx.conn.execute(statement):
        if currency is not None and minor is not None:
            per = found[str(figure)]
            per[str(currency)] = per.get(str(currency), 0) + int(minor)
    return found


__all__ = ["BILLED", "OWED", "RECEIVABLE_SIGN", "money_moves", "money_totals"]
