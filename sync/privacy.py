"""GDPR erasure of one customer's personal data from the hub's own store (``hub forget-customer``).

What is erased: the canonical customer's name, email, phone, addresses, tax ids, domain and free
``extra`` fields (the name becomes ``"[erased]"``, the rest ``None``/empty); the personal fields in
its ``history`` rows; the values and mentions in its drift ``findings``; and the copies of those
values in inbox payloads (webhook bodies), held records (raw vendor records not mapped yet) and
outbox errors that concern it.

What is kept: the canonical id, every link (the crosswalk to each system's id), the customer's
currency and active flag, and every invoice, payment, refund and credit note untouched — the
ledgers keep their money and their references.

The erasure is the hub's only: it writes the store directly (no ``Engine.plan``), so nothing is
queued for Stripe, QuickBooks, Xero or Salesforce — each vendor is its own controller of the copy
it holds. It is recorded as a ``history`` row with action ``erased`` naming the fields, never the
values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mapping import exact_json
from mapping.model import Customer, content_hash, from_data, to_data
from state.errors import NotFound
from state.store import StateStore, Tx

ERASED = "[erased]"
SOURCE = "privacy"  # the entities.source / history.system of an erasure
PERSONAL_FIELDS = ("name", "email", "phone", "address", "shipping_address", "tax_ids", "domain", "extra")
# ``extra`` keys that carry bookkeeping, not a person: kept through an erasure.
KEPT_EXTRA = frozenset({"balance", "billing_status", "currency_rate", "exchange_rate", "home_total"})
MIN_MENTION = 3  # shorter values (e.g. a two-letter country) are not searched for in free text


@dataclass
class Erasure:
    canonical_id: str
    fields: list[str] = field(default_factory=list)
    history_rows: int = 0
    findings: int = 0
    inbox_rows: int = 0
    held_rows: int = 0
    outbox_rows: int = 0
    links: int = 0
    already_erased: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"canonical_id": self.canonical_id, "fields": self.fields, "history_rows": self.history_rows,
                "findings": self.findings, "inbox_rows": self.inbox_rows, "held_rows": self.held_rows,
                "outbox_rows": self.outbox_rows,
                "links_kept": self.links, "already_erased": self.already_erased}


def resolve_customer(tx: Tx, ident: str) -> str:
    """A hub customer id, or ``CONNECTION:EXTERNAL_ID`` (``stripe:cus_…``), as the canonical id."""
    ident = ident.strip()
    stored = tx.get_entity(ident)
    if stored is not None:
        if stored.type != "customer":
            raise NotFound(f"{ident} is a hub {stored.type}, not a customer")
        return stored.id
    connection, sep, external_id = ident.partition(":")
    if sep and connection and external_id:
        canonical = tx.canonical_for(connection, "customer", external_id)
        if canonical is not None:
            return canonical
        raise NotFound(f"no hub customer is linked to {connection} customer {external_id}")
    raise NotFound(f"no hub customer {ident!r}: give the hub id or CONNECTION:EXTERNAL_ID (e.g. stripe:cus_123)")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every mention of a personal value replaced (JSON-shaped data)."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, ERASED)
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


def _mentions(data: dict[str, Any]) -> list[str]:
    """The personal values of a customer payload worth searching for, longest first."""
    values = {s.strip() for name in PERSONAL_FIELDS if name != "extra" for s in _strings(data.get(name))}
    extra = data.get("extra")
    if isinstance(extra, dict):
        values |= {s.strip() for k, v in extra.items() if k not in KEPT_EXTRA for s in _strings(v)}
    else:
        values |= {s.strip() for s in _strings(extra)}
    values.discard(ERASED)
    return sorted((v for v in values if len(v) >= MIN_MENTION), key=len, reverse=True)


def _tombstone(data: dict[str, Any]) -> dict[str, Any]:
    customer = from_data("customer", data)
    assert isinstance(customer, Customer)
    kept_extra = {k: v for k, v in customer.extra.items() if k in KEPT_EXTRA}
    erased = Customer(id=customer.id, name=ERASED, currency=customer.currency, active=customer.active,
                      updated_at=customer.updated_at, extra={**kept_extra, "erased": True})
    return to_data(erased)


def forget_customer(tx: Tx, ident: str) -> Erasure:
    """Erase one customer's personal data from the store, in the caller's transaction."""
    canonical_id = resolve_customer(tx, ident)
    tx.overwrite_freed_space()
    data, version = tx.entity_row(canonical_id)
    links = tx.links_of(canonical_id)
    result = Erasure(canonical_id, links=len(links))
    if (data.get("extra") or {}).get("erased") and data.get("name") == ERASED:
        result.already_erased = True
    mentions = _mentions(data)
    # Earlier versions of the record may have held other values: collect those from its history.
    history = tx.history_changes(canonical_id)
    for _id, changes in history:
        for name, pair in (changes or {}).items():
            if name in PERSONAL_FIELDS:
                mentions += _mentions({name: pair[0] if isinstance(pair, list) and pair else None})
                mentions += _mentions({name: pair[1] if isinstance(pair, list) and len(pair) > 1 else None})
    mentions = sorted(set(mentions), key=len, reverse=True)

    tombstone = _tombstone(data)
    result.fields = sorted(n for n in PERSONAL_FIELDS if data.get(n) not in (None, "", [], {}, ERASED)
                           and not (n == "extra" and set(data[n]) <= KEPT_EXTRA | {"erased"}))
    if tombstone != data:
        # Directly, not Tx.upsert_entities (its history row would keep the old values) and never
        # Engine.plan: the erasure stays in the hub and queues no write to any vendor.
        tx.overwrite_entity(canonical_id, tombstone, content_hash(from_data("customer", tombstone)),
                            version + 1, SOURCE)

    tx.drop_natural_keys(canonical_id)

    for history_id, changes in history:
        scrubbed = {name: ([None if v is None else ERASED for v in pair] if name in PERSONAL_FIELDS
                           and isinstance(pair, list) else _scrub(pair, mentions))
                    for name, pair in (changes or {}).items()}
        if scrubbed != changes:
            tx.overwrite_history(history_id, scrubbed)
            result.history_rows += 1

    external_ids = [link.external_id for link in links]
    for finding in tx.finding_texts():
        ours = finding.canonical_id == canonical_id or (
            finding.entity == "customer" and set(finding.external_ids or []) & set(external_ids))
        detail = _scrub(finding.detail or "", mentions)
        fields = finding.fields or {}
        if ours:
            fields = {name: ({k: (None if v is None else ERASED) for k, v in values.items()}
                             if name in PERSONAL_FIELDS and isinstance(values, dict) else _scrub(values, mentions))
                      for name, values in fields.items()}
        else:
            fields = _scrub(fields, mentions)
        if detail != finding.detail or fields != (finding.fields or {}):
            tx.overwrite_finding_text(finding.id, detail, fields)
            result.findings += 1

    if mentions:
        for item_id, payload, error in tx.inbox_texts():
            text = json.dumps(payload) + (error or "")
            if not any(m in text or json.dumps(m)[1:-1] in text for m in mentions):
                continue
            tx.overwrite_inbox_text(item_id, _scrub(payload, mentions), _scrub(error, mentions))
            result.inbox_rows += 1
        for hold_id, held, why in tx.hold_texts():
            # a record held unmapped is the raw vendor record: it names the customer as plainly
            if not any(m in held + why or json.dumps(m)[1:-1] in held + why for m in mentions):
                continue
            held_clean = exact_json.dumps(_scrub(exact_json.loads(held), mentions), default=exact_json.readable)
            tx.overwrite_hold_text(hold_id, held_clean, str(_scrub(why, mentions)))
            result.held_rows += 1
        for item_id, error in tx.outbox_errors():
            scrubbed_error = _scrub(error, mentions)
            if scrubbed_error != error:
                tx.overwrite_outbox_error(item_id, scrubbed_error)
                result.outbox_rows += 1

    if not result.already_erased:
        tx.add_history(canonical_id, "customer", SOURCE, "erased",
                       {name: [ERASED, None] for name in result.fields})
    return result


def purge_old_copies(store: StateStore) -> None:
    """After the erasure committed: SQLite still holds the old pages in its write-ahead log until
    a checkpoint; fold the log into the database and truncate it. (PostgreSQL keeps old row
    versions until VACUUM reclaims them; autovacuum does, or run ``VACUUM`` on the tables.)"""
    if store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()  # outside any transaction (the engine begins IMMEDIATE)
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()


__all__ = ["ERASED", "Erasure", "forget_customer", "purge_old_copies", "resolve_customer"]
