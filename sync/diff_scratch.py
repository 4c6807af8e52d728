"""The diff's scratch database: the comparable view of a record, the on-disk tables the systems
and the hub are streamed into, and how each system record is keyed to a hub record.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mapping.keys import normalise_key
from mapping.model import (
    CreditNote,
    Customer,
    Entity,
    Invoice,
    Payment,
    Payout,
    Price,
    Product,
    Refund,
    stable_id,
)
from mapping.postings import credit_left
from sync.diff_balance import ledger_balance
from sync.diff_money import invoice_fields

# per-line rounding tolerance for these (payments, refunds, credit notes, prices); an invoice's
# fields follow sync/diff_money.py
MONEY_FIELDS = frozenset({"total", "amount", "unit_amount"})
NATURAL_KEYS = ("email", "number", "name")


@dataclass(frozen=True)
class View:
    """What is compared of one record: normalised fields, natural keys and its money facts."""

    fields: dict[str, Any]
    keys: dict[str, str]
    day: str | None = None
    currency: str | None = None
    amount: int | None = None
    lines: int = 1
    void: bool = False


def _norm(value: str | None) -> str | None:
    return normalise_key(value)


def view_of(entity: Entity) -> View:
    """The comparable projection of a canonical entity (systems map into canonical first)."""
    if isinstance(entity, Customer):
        # a ledger's open balance (its mapping's ``extra["balance"]``); the hub's is derived
        # from its documents by the diff (``sync/diff_balance.py``). ``billing_status`` is the
        # hub's derivation (``sync/billing.py``), compared only where Salesforce holds it
        return View({"name": _norm(entity.name), "email": _norm(entity.email),
                     "balance": ledger_balance(entity.extra.get("balance")),
                     "billing_status": entity.extra.get("billing_status") or None},
                    {"email": _norm(entity.email) or "", "name": _norm(entity.name) or ""})
    if isinstance(entity, Product):
        return View({"name": _norm(entity.name)}, {"name": _norm(entity.name) or ""})
    if isinstance(entity, Price):
        return View({"unit_amount": entity.unit_amount.minor, "currency": entity.unit_amount.currency}, {})
    if isinstance(entity, Invoice):
        day = entity.issued_at.date().isoformat() if entity.issued_at else None
        void = entity.status == "void"
        return View(invoice_fields(entity),
                    {"number": _norm(entity.number) or ""}, day, entity.total.currency,
                    entity.total.minor, max(1, len(entity.lines)), void)
    if isinstance(entity, Payment):
        day = entity.paid_at.date().isoformat() if entity.paid_at else None
        # its rate: Stripe's (settlement per payment unit, and where it settled) in the hub, a
        # ledger's own read back; ``diff_money.payment_rates`` compares them in that ledger's terms
        rate = {"exchange_rate": format(entity.exchange_rate, "f"),
                "settled_in": entity.net.currency if entity.net else None} if entity.exchange_rate else {}
        return View({"amount": entity.amount.minor, "currency": entity.amount.currency, **rate},
                    {"number": _norm(entity.reference) or ""}, day, entity.amount.currency,
                    entity.amount.minor, 1, entity.status in ("failed", "canceled"))
    if isinstance(entity, Refund):
        day = entity.refunded_at.date().isoformat() if entity.refunded_at else None
        return View({"amount": entity.amount.minor, "currency": entity.amount.currency}, {}, day,
                    entity.amount.currency, entity.amount.minor, 1, entity.status in ("failed", "canceled"))
    if isinstance(entity, CreditNote):
        # compared as the credit it leaves (README "Posting model"): what its refunds paid out is
        # booked, and compared, as theirs; a ledger's credit document holds the rest
        day = entity.issued_at.date().isoformat() if entity.issued_at else None
        credit = credit_left(entity).minor
        void = entity.status == "void"  # compared as a void, as invoices are: QuickBooks zeroes its amounts
        fields = {"currency": entity.currency, "status": "void"} if void else {"total": credit, "currency": entity.currency}
        return View(fields, {"number": _norm(entity.number) or ""},
                    day, entity.currency, credit, max(1, len(entity.lines)), void)
    if isinstance(entity, Payout):  # a ledger reads its transfer and fee document back as one
        day = entity.arrival_date.isoformat() if entity.arrival_date else None
        return View({"amount": entity.amount.minor, "fee_total": entity.fee_total.minor,
                     "currency": entity.currency, "status": entity.status}, {}, day, entity.currency,
                    entity.amount.minor, 1, entity.status in ("failed", "canceled"))
    return View({}, {})


def create_scratch(db: sqlite3.Connection) -> None:
    db.executescript("""
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        PRAGMA temp_store = FILE;
        PRAGMA cache_size = -32768;
        CREATE TABLE hub (canonical_id TEXT PRIMARY KEY, hash TEXT, updated_at TEXT, deleted INT,
                          fields TEXT, expected TEXT, day TEXT, currency TEXT, amount INT, void INT, fhash TEXT);
        CREATE TABLE hub_keys (name TEXT, value TEXT, canonical_id TEXT);
        CREATE TABLE links (canonical_id TEXT, system TEXT, external_id TEXT, deleted INT, last_pushed_hash TEXT);
        CREATE TABLE held (canonical_id TEXT, target TEXT, error TEXT, PRIMARY KEY (canonical_id, target));
        CREATE TABLE intents (canonical_id TEXT, target TEXT, hash TEXT, PRIMARY KEY (canonical_id, target, hash));
        CREATE TABLE sys (system TEXT, external_id TEXT, deleted INT, fields TEXT, fhash TEXT, day TEXT,
                          currency TEXT, amount INT, lines INT, void INT, k_email TEXT, k_number TEXT,
                          k_name TEXT, key TEXT, changed_at TEXT);
        CREATE TABLE unreadable (system TEXT, external_id TEXT, reason TEXT, PRIMARY KEY (system, external_id));
        CREATE TABLE facts (system TEXT, external_id TEXT, facts TEXT, PRIMARY KEY (system, external_id)) WITHOUT ROWID;
        CREATE TABLE waiting (system TEXT, external_id TEXT, PRIMARY KEY (system, external_id)) WITHOUT ROWID;
    """)


def resolve_keys(db: sqlite3.Connection) -> None:
    """Key every system record: its link, else a unique natural-key match, else nothing."""
    db.executescript("""
        CREATE INDEX ix_links_ext ON links (system, external_id);
        CREATE INDEX ix_links_can ON links (canonical_id, system);
        CREATE INDEX ix_sys_ext ON sys (system, external_id);
        CREATE INDEX ix_hub_keys ON hub_keys (name, value);
        UPDATE sys SET key = (SELECT canonical_id FROM links l
                              WHERE l.system = sys.system AND l.external_id = sys.external_id);
    """)
    for name in NATURAL_KEYS:
        db.execute(f"""
            UPDATE sys SET key = (SELECT min(k.canonical_id) FROM hub_keys k
                                  WHERE k.name = '{name}' AND k.value = sys.k_{name}
                                  HAVING count(*) = 1)
            WHERE key IS NULL AND k_{name} IS NOT NULL""")
    db.execute("CREATE INDEX ix_sys_key ON sys (key, system)")
    db.commit()


def fields_digest(fields_json: str) -> str:
    """A short digest of the normalised fields: equal digests need no field-by-field look."""
    return hashlib.blake2b(fields_json.encode(), digest_size=12).hexdigest()


class ScratchRefs:
    """References for mapping a system record into its comparable view.

    The view never uses references (a record's fields, keys and money only), so resolving
    them through the store — two point queries per reference — would be pure cost. Records
    are keyed afterwards in SQL from a bulk copy of the links.
    """

    def __init__(self, connection: str) -> None:
        self.connection = connection

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return stable_id(self.connection, entity_type, external_id)

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None


def utc_iso(moment: datetime | None) -> str | None:
    """A moment as comparable text (UTC, microseconds always written); a naive one is UTC."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def named_ids(payload: Any, found: set[str] | None = None) -> set[str]:
    """Every string value in an event's payload: the ids it may name, whatever the system's shape
    (Stripe ``data.object.id``, a QuickBooks entity list, a Xero ``resourceId``). Over-matching
    only excuses a record for one more diff; under-matching would report lag as drift."""
    found = set() if found is None else found
    if isinstance(payload, str):
        if 0 < len(payload) <= 255:
            found.add(payload)
    elif isinstance(payload, dict):
        for value in payload.values():
            named_ids(value, found)
    elif isinstance(payload, list | tuple):
        for value in payload:
            named_ids(value, found)
    return found
