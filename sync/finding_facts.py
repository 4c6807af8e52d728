"""What a person needs to tell one system record from another, captured by the diff when it reads
the record (issue 21, item 1): name, email, number, date, amount, open balance, created date and
the customer a document names — as that system holds them, original spelling kept.

The diff keeps these facts for the records of a duplicate or an orphan finding (its
``candidates``), because after the diff the hub no longer has the records it did not link: a
bookkeeper choosing which of two QuickBooks customers to keep must see each one's name, balance,
creation date and documents, not "11 / 1112". Amounts are integer minor units with the currency
(the report JSON's money form); people's text is made from them by ``mapping.money.format_money``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from mapping.model import CreditNote, Customer, Entity, Invoice, Payment, Payout, Price, Product, Refund
from mapping.money import Money, MoneyError
from state.store import StateStore


class Found(Protocol):
    """What ``note_documents`` reads of a diff finding (``sync.findings.DiffFinding``)."""

    kind: str
    entity: str
    system: str
    canonical_id: str | None
    fields: dict[str, Any]

Facts = dict[str, Any]


def money_json(amount: Money | None) -> dict[str, Any] | None:
    return None if amount is None else {"minor": amount.minor, "currency": amount.currency}


def day_of(value: datetime | date | None) -> str | None:
    """A moment or a day as ``YYYY-MM-DD`` (a moment in UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(UTC)).date().isoformat()
    return value.isoformat()


def created_of(system: str, data: Mapping[str, Any]) -> str | None:
    """The day the system says the record was created, where its API says one."""
    try:
        if system == "stripe" and isinstance(data.get("created"), int):
            return day_of(datetime.fromtimestamp(data["created"], UTC))
        if system == "quickbooks":
            stamp = (data.get("MetaData") or {}).get("CreateTime")
            return str(stamp)[:10] if stamp else None
        if system == "salesforce" and data.get("CreatedDate"):
            return str(data["CreatedDate"])[:10]
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None
    return None  # Xero says when a contact or document was last changed, never when it was made


def customer_named(system: str, data: Mapping[str, Any]) -> str | None:
    """The customer's name a document carries on it (QuickBooks' and Xero's references name it)."""
    try:
        if system == "quickbooks":
            return (data.get("CustomerRef") or {}).get("name") or None
        if system == "xero":
            return (data.get("Contact") or {}).get("Name") or None
        if system == "stripe":
            return data.get("customer_name") or None
    except AttributeError:
        return None
    return None


def _balance(customer: Customer, currency: str | None) -> dict[str, Any] | None:
    text = customer.extra.get("balance")
    if text in (None, "") or not currency:
        return None
    try:
        return money_json(Money.from_decimal(str(text), currency))
    except MoneyError:
        return None


def record_facts(system: str, entity: Entity, data: Mapping[str, Any], currency: str | None = None) -> Facts:
    """The facts of one system record (``entity`` its canonical mapping, ``data`` its own JSON);
    ``currency`` is a customer's ledger currency where the record does not say one. Keys with
    nothing to say are left out."""
    facts: Facts = {"created": created_of(system, data), "customer": customer_named(system, data)}
    if isinstance(entity, Customer):
        facts.update(name=entity.name or None, email=entity.email,
                     balance=_balance(entity, entity.currency or currency))
    elif isinstance(entity, Invoice | CreditNote):
        facts.update(number=entity.number, date=day_of(entity.issued_at), amount=money_json(entity.total),
                     status=entity.status)
    elif isinstance(entity, Payment):
        facts.update(number=entity.reference, date=day_of(entity.paid_at), amount=money_json(entity.amount),
                     status=entity.status)
    elif isinstance(entity, Refund):
        facts.update(date=day_of(entity.refunded_at), amount=money_json(entity.amount), status=entity.status)
    elif isinstance(entity, Payout):
        facts.update(date=day_of(entity.arrival_date), amount=money_json(entity.amount), status=entity.status)
    elif isinstance(entity, Product):
        facts.update(name=entity.name or None, number=entity.sku)
    elif isinstance(entity, Price):
        facts.update(amount=money_json(entity.unit_amount))
    return {k: v for k, v in facts.items() if v not in (None, "")}


def candidates(db: sqlite3.Connection, system: str, external_ids: Sequence[str]) -> dict[str, Facts]:
    """external id -> its facts (the diff's scratch ``facts`` table), for the records of a
    duplicate or an orphan finding."""
    marks = ",".join("?" * len(external_ids))
    found = {ext: json.loads(text) for ext, text in db.execute(
        f"SELECT external_id, facts FROM facts WHERE system = ? AND external_id IN ({marks})",
        (system, *external_ids))}
    return {ext: found.get(ext, {}) for ext in external_ids}


DOCUMENT_TYPES = ("invoice", "credit_note")
SHOWN_DOCUMENTS = 10  # per candidate; the count says how many more


def note_documents(store: StateStore, findings: Sequence[Found]) -> None:
    """Give the candidate of a duplicate customer that the hub record is linked to its documents
    there: the hub's invoices and credit notes of the customer linked in that system (the hub
    wrote them to it, naming that very record). Other candidates' documents, made in the system by
    hand, are not known to the hub (the view says so). One pass over the documents, and only
    when a diff found duplicate customers."""
    wanted: dict[str, dict[str, Facts]] = defaultdict(dict)  # hub customer -> system -> linked facts
    with store.transaction() as tx, tx.remembering():
        for f in findings:
            if f.kind != "duplicate" or f.entity != "customer" or not f.canonical_id:
                continue
            link = tx.link_for(f.canonical_id, f.system, "customer")
            chosen = (f.fields.get("candidates") or {}).get(link.external_id) if link else None
            if chosen is not None:
                chosen["documents"], chosen["documents_count"] = [], 0
                wanted[f.canonical_id][f.system] = chosen
        if not wanted:
            return
        systems = sorted({s for per in wanted.values() for s in per})
        for entity_type in DOCUMENT_TYPES:
            # the documents of the wanted customers, then their links in one statement (not a
            # lookup per document: a ledger has thousands)
            documents = [(stored.id, document) for stored in tx.entities_of(entity_type)
                         if isinstance(document := stored.entity(), Invoice | CreditNote)
                         and document.customer_id in wanted]
            tx.prefetch_links_of([i for i, _ in documents], entity_type, systems)
            for document_id, document in documents:
                for system, chosen in wanted[document.customer_id or ""].items():
                    link = tx.link_for(document_id, system, entity_type)
                    if link is None or link.deleted:
                        continue
                    chosen["documents_count"] += 1
                    if len(chosen["documents"]) < SHOWN_DOCUMENTS:
                        chosen["documents"].append({
                            "type": entity_type, "number": document.number, "external_id": link.external_id,
                            "date": day_of(document.issued_at), "amount": money_json(document.total),
                            "status": document.status})


__all__ = ["Facts", "candidates", "created_of", "customer_named", "day_of", "money_json", "note_documents",
           "record_facts"]
