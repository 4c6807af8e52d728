"""A customer's open balance, the hub's and each ledger's, for the diff (issue 18, item 5).

The hub's open balance of a customer, per currency, is what its open invoices still owe (the
sum of ``amount_due`` of its invoices that are neither void nor draft) less the credit it holds
(what its credit notes post to the ledgers, ``mapping.postings.credit_posting`` — the part no
refund paid out — less what of them was applied to invoices, ``amount_credited``). That is the
definition both ledgers use for their customer balance: QuickBooks ``Customer.Balance`` (open
invoices' ``Balance`` less credit memos' ``RemainingCredit`` and unapplied payments) and Xero
``Contact.Balances.AccountsReceivable.Outstanding`` (AUTHORISED invoices' ``AmountDue`` less
AUTHORISED credit notes' ``RemainingCredit``). Refunds and payouts leave it be.

Each side says its balance as a decimal string in the view's ``balance`` field, so equal
balances have equal digests and need no look; the finding carries minor units and the
currency. It is compared only where the balance is in one currency: a hub customer with open
amounts in two currencies has no single number to hold against a ledger's (Xero sums the raw
amounts of all currencies), so its ``balance`` is None and never drift. While a write of one of
the customer's documents to a ledger is on its way (pending or in flight), that ledger's balance
is not compared: it is lag, not drift.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mapping.model import CreditNote, Invoice, decimal_str
from mapping.money import Money, MoneyError
from mapping.postings import credit_posting, fully_refunded
from state.store import Tx
from sync.diff_money import credited

DOCUMENTS = ("invoice", "credit_note", "payment", "refund")  # whose writes move a ledger's balance
ON_ITS_WAY = ("pending", "in_flight")


def balance_text(minor: int, currency: str) -> str:
    """A balance as the view holds it: the normalised decimal ("-12.5", "0")."""
    return decimal_str(Money(minor, currency).to_decimal())


def ledger_balance(value: Any) -> str | None:
    """A ledger's balance (decimal text) in the view's form, or None if it says none."""
    if value in (None, ""):
        return None
    return decimal_str(Decimal(str(value)))


def hub_balances(tx: Tx) -> dict[str, dict[str, int]]:
    """Customer id -> currency -> the hub's open balance in minor units: every currency the
    customer was billed or credited in, settled ones at 0."""
    owed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for stored in tx.entities_of("invoice"):
        invoice = stored.entity()
        assert isinstance(invoice, Invoice)
        if invoice.status in ("void", "draft") or not invoice.customer_id or invoice.total.minor < 0:
            continue  # a negative invoice is booked as its credit note, which counts below
        currency = invoice.total.currency
        owed[invoice.customer_id][currency] += invoice.amount_due.minor
        # what credit settled of it was the customer's credit, applied: no longer held
        owed[invoice.customer_id][currency] += max(0, credited(invoice))
    for stored in tx.entities_of("credit_note"):
        note = stored.entity()
        assert isinstance(note, CreditNote)
        if note.status == "void" or not note.customer_id or fully_refunded(note):
            continue
        owed[note.customer_id][note.currency] -= credit_posting(note).total.minor
    return {customer: dict(by_currency) for customer, by_currency in owed.items()}


def hub_balance_field(balances: dict[str, dict[str, int]], customer_id: str) -> tuple[str | None, str | None]:
    """(the view's ``balance``, its currency) for one hub customer: "0" with nothing open (in its
    one currency, when it was billed in only one), None when open in more than one currency."""
    billed = balances.get(customer_id) or {}
    open_ = {c: v for c, v in billed.items() if v}
    if len(open_) > 1:
        return None, None
    if not open_:
        return "0", next(iter(billed)) if len(billed) == 1 else None
    ((currency, minor),) = open_.items()
    return balance_text(minor, currency), currency


def create_tables(db: sqlite3.Connection) -> None:
    db.executescript("""
        CREATE TABLE balance_lag (canonical_id TEXT, system TEXT, PRIMARY KEY (canonical_id, system)) WITHOUT ROWID;
        CREATE TABLE balance_currency (canonical_id TEXT PRIMARY KEY, currency TEXT) WITHOUT ROWID;
        CREATE TABLE ledger_currency (system TEXT, external_id TEXT, currency TEXT,
                                      PRIMARY KEY (system, external_id)) WITHOUT ROWID;
    """)


def load_lag(db: sqlite3.Connection, tx: Tx, holders: Sequence[str]) -> None:
    """(customer, connection) pairs with a write of one of the customer's documents on its way."""
    waiting: dict[str, set[str]] = defaultdict(set)  # document id -> targets
    for entity_type in DOCUMENTS:
        for canonical_id, target, _digest, status, _error in tx.undelivered_writes(entity_type):
            if status in ON_ITS_WAY and target in holders:
                waiting[canonical_id].add(target)
    if not waiting:
        return
    rows: set[tuple[str, str]] = set()
    for entity_type in DOCUMENTS:
        for stored in tx.entities_of(entity_type):
            if stored.id not in waiting:
                continue
            customer = getattr(stored.entity(), "customer_id", None)
            if customer:
                rows.update((customer, target) for target in waiting[stored.id])
    db.executemany("INSERT OR IGNORE INTO balance_lag VALUES (?,?)", sorted(rows))


def lagging(db: sqlite3.Connection, customer_id: str, system: str) -> bool:
    return db.execute("SELECT 1 FROM balance_lag WHERE canonical_id = ? AND system = ?",
                      (customer_id, system)).fetchone() is not None


def balance_currency(db: sqlite3.Connection, customer_id: str, system: str, external_id: str) -> str | None:
    """The currency the balance is in: the hub's (what is open, else what the customer was billed
    in, else its own), else the ledger customer's own."""
    row = db.execute("SELECT currency FROM balance_currency WHERE canonical_id = ?", (customer_id,)).fetchone()
    if row and row[0]:
        return str(row[0])
    row = db.execute("SELECT currency FROM ledger_currency WHERE system = ? AND external_id = ?",
                     (system, external_id)).fetchone()
    return str(row[0]) if row and row[0] else None


def balance_finding_fields(ours: dict[str, Any], theirs: dict[str, Any], system: str,
                           currency: str | None) -> tuple[dict[str, Any], str] | None:
    """The finding's fields ({"balance": {"hub": minor, system: minor}, "currency": {...: C}}) and a
    bookkeeper's sentence, or None when the balance's currency is unknown or the ledger's
    balance is not an amount in it."""
    if not currency:
        return None
    try:
        hub = Money.from_decimal(str(ours["balance"]), currency)
        ledger = Money.from_decimal(str(theirs["balance"]), currency)
    except (MoneyError, KeyError, ValueError):
        return None
    delta = ledger - hub
    detail = (f"open balance {_owes(ledger)} in {system}, {_owes(hub)} by the hub's invoices and credit "
              f"notes ({abs(delta).to_decimal_str()} {currency} {'more' if delta.minor > 0 else 'less'} owed "
              f"in {system}): a payment or credit applied to the wrong customer or invoice, or a document "
              f"entered, changed or removed there by hand; the invoice, payment and credit note findings "
              f"of {system} say which")
    # every field of a finding says each side's value (the report contract, DESIGN.md)
    return {"balance": {"hub": hub.minor, system: ledger.minor}, "currency": {"hub": currency, system: currency}}, detail


def _owes(amount: Money) -> str:
    if amount.minor > 0:
        return f"the customer owes {amount.to_decimal_str()} {amount.currency}"
    if amount.minor < 0:
        return f"the customer holds {(-amount).to_decimal_str()} {amount.currency} of credit"
    return "nothing owed"
