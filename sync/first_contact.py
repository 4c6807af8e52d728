"""First contact with a connection that already holds the data (README "What it does").

A hub started fresh against systems that already agree must link, not write: every record the
target has is matched before anything is sent (the hub's marker, then natural keys, then, for
payments and refunds, what they settle: ``mapping.keys.settlement_key``), and a matched record
gets an update only when what would be sent differs from what it holds. "What it holds" is the
target's record mapped to canonical and back through the same mapping (``agreed_digest``): the
mapping's own normalisation decides, so a field the target cannot hold, or holds in another
form, is never a difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import Connector, Record
from mapping.keys import NATURAL_KEYS, SETTLEMENT, key_digest, normalise_key, settlement_key
from mapping.model import CreditNote, Entity, Invoice, Refund, stable_id, to_data
from mapping.postings import credit_posting, refund_posting
from mapping.refs import RefResolver
from state.store import Tx
from sync.context import MAPPING_ERRORS, payload_digest
from sync.diff_money import comparable, invoice_differing, payment_rates, said_by
from sync.diff_scratch import view_of
from sync.ingest_page import ids_by_type

# The references a record's agreement includes (hub ids on both sides: the target's record is
# mapped through its links, so a payment applied to another invoice there differs).
REFERENCES: dict[str, tuple[str, ...]] = {
    "price": ("product_id",), "subscription": ("customer_id",), "invoice": ("customer_id",),
    "payment": ("customer_id", "invoice_id"), "refund": ("invoice_id",),
    "credit_note": ("customer_id", "invoice_id"),
}


def match_keys(connector: Connector, record: Record, refs: RefResolver) -> dict[str, str]:
    """The keys first contact matches ``record`` by: the connector's (marker as ``hub_id``,
    email, number, name) and, for a payment or refund, its settlement key from its canonical
    form (its invoice named by hub id: invoices are read and linked before payments)."""
    keys = dict(connector.natural_keys(record))
    if record.entity_type in ("payment", "refund") and not record.deleted:
        try:
            entity = connector.to_canonical(record, refs)
        except MAPPING_ERRORS:
            return keys  # the real mapping reports it
        settled = settlement_key(record.entity_type, to_data(entity))
        if settled:
            keys[SETTLEMENT] = settled
    return keys


def take_turns(tx: Tx, connector: Connector, records: Sequence[Record]) -> None:
    """Before a page is read for first contact: lock (``Tx.lock_first_contacts``) the keys its
    records not linked yet would be matched by or stored under — the id each would be made with
    (its placeholder), its marker (the same id, where the hub made it), its email, number and
    name. Two transactions that meet one record by any of them take turns, the second reading
    what the first stored (a Stripe customer and the Salesforce account of the same company, read
    by two processes or lanes at once, were two hub customers, each written to the ledgers: one
    dead-lettered as "already linked", its invoices missing). A settlement key is not locked: it
    needs the record mapped, and payments and refunds have one source. Costs one statement (and,
    on PostgreSQL only, one read of the page's links, which the ingest then reads again).

    Lock order: these are the first locks of their transaction — every caller of
    ``Ingest.ingest`` (a page, a webhook batch, a held record tried again, a repair or resync of
    one record) opens a transaction for that one call, and ``ingest`` takes them before anything
    else, so before the links ``sync.versions`` reads FOR UPDATE. Stream locks are session locks
    taken outside any transaction, and only tried (never waited for). So no two transactions
    wait for each other's first-contact locks in a cycle."""
    if not tx.store.is_postgres:
        return  # one writer at a time
    name = connector.name
    fresh = [r for r in records if not r.gone and not r.deleted]
    for entity_type, external_ids in ids_by_type(fresh).items():
        tx.prefetch_links(name, entity_type, external_ids)
    keys: list[tuple[str, str]] = []
    for record in fresh:
        if tx.canonical_for(name, record.entity_type, record.external_id):
            continue
        keys.append((record.entity_type, "id:" + stable_id(name, record.entity_type, record.external_id)))
        try:
            natural = connector.natural_keys(record)
        except MAPPING_ERRORS:
            continue  # unreadable: the page holds it (``Ingest._hold``), nothing is matched by it
        if natural.get("hub_id"):
            keys.append((record.entity_type, "id:" + natural["hub_id"]))
        for key in NATURAL_KEYS:
            value = normalise_key(natural.get(key))
            if value:
                keys.append((record.entity_type, f"{key}:{value}"))
    tx.lock_first_contacts(keys)


def agreed_digest(tx: Tx, connector: Connector, held: Entity, refs: RefResolver) -> str | None:
    """The digest of the payload the hub would send for ``held`` (the target's own record, as
    canonical under the hub's id): stored on the link made at first contact, so the push finds
    "unchanged" when the hub's record maps to the same payload and writes nothing. None when it
    cannot be mapped (the push then writes, as before)."""
    try:
        return payload_digest(connector.from_canonical(posting(tx, held), refs))
    except MAPPING_ERRORS:
        return None


def differing(system: str, ours: Entity, theirs: Entity, home: str | None) -> list[str]:
    """The fields in which the target's record (``theirs``, as canonical) differs from the
    hub's, by the diff's own rules (``sync.diff``: the comparable view, what the system can say,
    the rate the hub prescribes there) with no rounding excused, plus the records they name. An
    empty list: the target already holds what the hub would write."""
    entity_type = ours.type
    mine = json.loads(json.dumps(said_by(system, entity_type, view_of(ours).fields)))
    other = json.loads(json.dumps(said_by(system, entity_type, view_of(theirs).fields)))
    if entity_type == "invoice":
        mine, other = comparable(mine, other)
    if entity_type == "payment":
        mine, other = payment_rates(mine, other, system, home)
    if entity_type == "customer":  # an open balance follows the documents, compared by the diff
        mine, other = {**mine, "balance": None}, {**other, "balance": None}
    if entity_type == "invoice":
        found = invoice_differing(mine, other, max(1, len(getattr(ours, "lines", ()))), 0)
    else:
        found = [k for k, v in other.items() if v is not None and mine.get(k) is not None and v != mine[k]]
    for name in REFERENCES.get(entity_type, ()):
        a, b = getattr(ours, name, None), getattr(theirs, name, None)
        if a is not None and b is not None and a != b:
            found.append(name)
    return sorted(set(found))


def summary_of(fields: Mapping[str, Any]) -> str:
    return ", ".join(sorted(fields)) or "-"


def posting(tx: Tx, entity: Entity) -> Entity:
    """The document a ledger books for ``entity`` (README "Posting model"): a refund with its
    credit note's lines or its invoice's tax reversed, a credit note less what its refund paid out.
    Built here, from the store, because the mapping is pure and these need the other record."""
    if isinstance(entity, Refund):
        note = _stored(tx, entity.credit_note_id)
        invoice = _stored(tx, entity.invoice_id) if note is None else None
        return refund_posting(entity, note if isinstance(note, CreditNote) else None,
                              invoice if isinstance(invoice, Invoice) else None)
    if isinstance(entity, CreditNote):
        return credit_posting(entity)
    return entity


def _stored(tx: Tx, canonical_id: str | None) -> Entity | None:
    stored = tx.get_entity(canonical_id) if canonical_id else None
    return stored.entity() if stored is not None and not stored.deleted else None


def hub_digests(entity_id: str, natural: Mapping[str, str]) -> dict[str, str]:
    """A hub record's sighting digests: its natural keys and its id (a record the target holds
    with the hub's marker, read before the hub had the record, is found by it)."""
    digest = key_digest(entity_id)
    return {"hub_id": digest, **natural} if digest else dict(natural)


__all__ = ["REFERENCES", "agreed_digest", "differing", "hub_digests", "match_keys", "posting", "take_turns"]
