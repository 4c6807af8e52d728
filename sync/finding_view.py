"""A drift finding as a finance operator reads it (issue 21, item 1): the ``about`` object of the
report JSON, built from what the hub stores and what the diff captured on the finding.

``about`` (the contract in ARCHITECTURE.md): ``customer``, ``document`` (the number people know,
INV-0031 / 00000031-0002, never a system's internal id), ``date``, ``amount`` (minor units and
currency) with ``amount_text`` (``mapping.money.format_money``), ``links`` (system -> the record in
that vendor's own web app), plus

* ``values``: each field that differs, with the hub's value and every holder's side by side — a
  system's own finding says its value, a linked system without one agreed at the last diff;
* ``candidates``: for a duplicate or an orphan, each record's name, email, open balance, created
  date and the documents the hub linked to it (captured by the diff, ``sync/finding_facts.py``);
* ``action``: what would settle it, in neutral words (``resync``, ``keep`` or ``none``): each
  surface says it its own way (the CLI its command, the console its button); ``said`` is the
  finding's detail without the command line's instructions in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from mapping.model import CreditNote, Customer, Entity, Invoice, Payment, Payout, Price, Product, Refund
from mapping.money import MoneyError, format_money
from state.records import Finding, Link
from state.store import StateStore, Tx
from sync.diff_money import said_by
from sync.finding_facts import day_of, money_json

# The finding fields that hold an amount in minor units (the diff's money, balance and tax fields).
MONEY_FIELDS = frozenset({"total", "tax", "subtotal", "discount", "amount_paid", "amount_credited", "amount_due",
                          "amount", "unit_amount", "fee_total", "balance"})
NOT_VALUES = frozenset({"candidates", "kept"})  # finding fields that are not one value per system


@dataclass(frozen=True)
class Place:
    """Where a connection's records live for a person: its system, and Salesforce's org."""

    system: str
    instance_url: str | None = None
    sobjects: Mapping[str, str] | None = None  # Salesforce: entity type -> sObject


Places = Mapping[str, Place]

# Each vendor's own web app, per entity type: {id} is the record's id there.
_WEB = {
    "quickbooks": {"customer": "https://app.qbo.intuit.com/app/customerdetail?nameId={id}",
                   "invoice": "https://app.qbo.intuit.com/app/invoice?txnId={id}",
                   "payment": "https://app.qbo.intuit.com/app/recvpayment?txnId={id}",
                   "credit_note": "https://app.qbo.intuit.com/app/creditmemo?txnId={id}",
                   "refund": "https://app.qbo.intuit.com/app/refundreceipt?txnId={id}",
                   "payout": "https://app.qbo.intuit.com/app/deposit?txnId={id}"},
    "xero": {"customer": "https://go.xero.com/Contacts/View/{id}",
             "invoice": "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={id}",
             "credit_note": "https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={id}"},
    # live-mode addresses: whether an id is a test-mode one is not knowable from the id
    "stripe": {"customer": "https://dashboard.stripe.com/customers/{id}",
               "invoice": "https://dashboard.stripe.com/invoices/{id}",
               "payment": "https://dashboard.stripe.com/payments/{id}",
               "refund": "https://dashboard.stripe.com/refunds/{id}",
               "product": "https://dashboard.stripe.com/products/{id}",
               "price": "https://dashboard.stripe.com/prices/{id}",
               "subscription": "https://dashboard.stripe.com/subscriptions/{id}",
               "payout": "https://dashboard.stripe.com/payouts/{id}"},
}


def places_of(connections: Mapping[str, Any], store: StateStore | None = None) -> dict[str, Place]:
    """The places of configured connections (``Config.connections``); Salesforce's org address
    is the one ``hub connect`` stored where there is one (as the connector uses it)."""
    from connectors.base import ConnectorError
    from connectors.registry import with_connected_place
    from connectors.salesforce.streams import streams

    places: dict[str, Place] = {}
    for name, conn in connections.items():
        if conn.system != "salesforce":
            places[name] = Place(conn.system)
            continue
        try:
            conn = with_connected_place(conn, store) if store is not None else conn
        except ConnectorError:
            pass  # not connected and no address configured: no links, the rest still shown
        url = str(conn.get("instance_url") or "").rstrip("/") or None
        places[name] = Place("salesforce", url, {k: s.sobject for k, s in streams(conn.settings).items()})
    return places


def web_link(place: Place | None, entity_type: str, external_id: str | None) -> str | None:
    """The record in its vendor's own web app, or None where that vendor has no page for it."""
    if place is None or not external_id:
        return None
    if place.system == "salesforce":
        sobject = (place.sobjects or {}).get(entity_type)
        if not place.instance_url or not sobject:
            return None
        return f"{place.instance_url}/lightning/r/{sobject}/{quote(external_id, safe='')}/view"
    pattern = _WEB.get(place.system, {}).get(entity_type)
    return pattern.format(id=quote(external_id, safe="")) if pattern else None


def money_text(minor: Any, currency: str | None) -> str | None:
    """``format_money`` for a finding's value, or None when it is not an amount in a known currency."""
    if isinstance(minor, bool) or not isinstance(minor, int) or not currency:
        return None
    try:
        return format_money(minor, currency)
    except MoneyError:
        return None


def value_text(name: str, value: Any, currency: str | None) -> str:
    """One system's value of a finding field as a person reads it."""
    if value is None:
        return "—"
    if name in MONEY_FIELDS:
        said = money_text(value, currency)
        if said is not None:
            return said
    if name == "tax_by_rate" and isinstance(value, dict):
        return ", ".join(f"{rate}%: {money_text(v, currency) or v}" for rate, v in sorted(value.items())) or "none"
    if isinstance(value, dict | list):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else ", ".join(map(str, value))
    return str(value)


# --------------------------------------------------------------------------- the detail, neutral

_COMMAND = re.compile(r"`hub [^`]*`")
_PARENTHESIS = re.compile(r"\s*\([^()]*`hub [^`]*`[^()]*\)")


def neutral_detail(detail: str) -> str:
    """The finding's detail without the command line's instructions (a clause naming a ``hub``
    command is dropped: each surface says what to do its own way)."""
    text = _PARENTHESIS.sub("", detail)
    clauses = [c for c in re.split(r";\s+", text) if not _COMMAND.search(c)]
    return "; ".join(clauses).strip().rstrip(";,") or detail


def action_of(finding: Finding) -> dict[str, str]:
    """What would settle the finding: ``keep`` (choose the record), ``resync`` (with what it
    does), ``reread`` (take the owner's change in) or ``none`` (a person decides outside the hub)."""
    kind, system, key = finding.kind, finding.system, _key(finding)
    if kind in ("duplicate", "orphan"):
        return {"kind": "keep", "words": f"choose the {system} {finding.entity} to keep"
                + (" (the others stay in " + system + " untouched)" if kind == "duplicate" else "")}
    if kind == "broken_link" and (finding.fields.get("status") or {}).get(system) == "void":
        return {"kind": "none", "words": "the owner voids or re-issues it; a resync cannot undo a void"}
    if kind in ("unreadable", "totals"):
        return {"kind": "none", "words": f"check it in {system}, then acknowledge it"}
    if kind == "mismatch" and key == "source":
        return {"kind": "resync", "words": f"resync reads {system}'s record into the hub and passes it on"}
    return {"kind": "resync", "words": f"resync writes the hub's {finding.entity} to {system}"}


def _key(finding: Finding) -> str:
    # the fingerprint does not say its key; the diff's words do (a source finding re-reads)
    return "source" if "no event reached the hub" in finding.detail else ""


# --------------------------------------------------------------------------- the view


class FindingView:
    """Builds ``about`` for findings read in one transaction; entities and links are read once."""

    def __init__(self, tx: Tx, places: Places | None = None) -> None:
        self.tx = tx
        self.places: Places = places or {}
        self._entities: dict[str, Entity | None] = {}
        self._linked: dict[tuple[str, str], list[Link]] = {}
        self._related: dict[str, list[Finding]] = {}
        self._systems: list[str] = sorted(self.places)

    def prime(self, findings: Sequence[Finding]) -> None:
        """Read the records, the records they name and their links in a few statements (the
        transaction must be ``remembering``): an export of thousands is not a query per finding."""
        self._systems = sorted({*self.places, *(f.system for f in findings)})
        records = [f.canonical_id for f in findings if f.canonical_id and f.kind != "totals"]
        self.tx.prefetch_entities(records)
        named = [getattr(e, ref, None) for e in map(self.entity, records)
                 for ref in ("customer_id", "invoice_id", "credit_note_id", "product_id")]
        self.tx.prefetch_entities([n for n in named if isinstance(n, str) and n])
        by_type: dict[str, list[str]] = {}
        for f in findings:
            if f.canonical_id and f.kind != "totals":
                by_type.setdefault(f.entity, []).append(f.canonical_id)
        for entity_type, ids in by_type.items():
            self.tx.prefetch_links_of(ids, entity_type, self._systems)

    def entity(self, canonical_id: str | None) -> Entity | None:
        if not canonical_id:
            return None
        if canonical_id not in self._entities:
            stored = self.tx.get_entity(canonical_id)
            self._entities[canonical_id] = stored.entity() if stored is not None else None
        return self._entities[canonical_id]

    def linked(self, canonical_id: str, entity_type: str) -> list[Link]:
        """The record's live links of its own type, one per system."""
        key = (canonical_id, entity_type)
        if key not in self._linked:
            if self._systems:
                found = [self.tx.link_for(canonical_id, s, entity_type) for s in self._systems]
                links = [link for link in found if link is not None]
            else:
                links = [link for link in self.tx.links_of(canonical_id) if link.object_type == entity_type]
            self._linked[key] = sorted((link for link in links if not link.deleted), key=lambda link: link.system)
        return self._linked[key]

    def relate(self, findings: Iterable[Finding]) -> None:
        """The unresolved findings of the same records (their systems' values)."""
        for f in findings:
            if f.canonical_id and f.status != "resolved":
                self._related.setdefault(f.canonical_id, []).append(f)

    def about(self, finding: Finding) -> dict[str, Any]:
        subject = self.entity(finding.canonical_id) if finding.kind != "totals" else None
        about = self._said_of(subject)
        facts = self._facts(finding)
        if subject is None and facts:  # an orphan, or one that could not be read: the record's own facts
            first = facts[0][1]
            about.update(customer=first.get("name") if finding.entity == "customer" else first.get("customer"),
                         document=first.get("number") if finding.entity != "customer" else None,
                         date=first.get("date") or first.get("created"), amount=first.get("amount"))
        if finding.kind == "totals":
            about.update(self._totals(finding))
        if finding.entity == "customer" and "balance" in finding.fields:
            balance, currency = finding.fields["balance"].get("hub"), (finding.fields.get("currency") or {}).get("hub")
            if isinstance(balance, int) and currency:
                about["amount"] = {"minor": balance, "currency": currency}
        amount = about.get("amount")
        about["amount_text"] = money_text(amount["minor"], amount["currency"]) if amount else None
        about["links"] = self._links(finding)
        about["values"] = self._values(finding, amount["currency"] if amount else None)
        about["candidates"] = self._candidates(finding, facts)
        about["action"] = action_of(finding)
        about["said"] = self._said(finding, about.get("document"))
        return about

    @staticmethod
    def _said(finding: Finding, document: str | None) -> str:
        """The neutral detail, a document named by its number rather than the system's internal id."""
        said = neutral_detail(finding.detail)
        if document and finding.entity != "customer":
            for ext in finding.external_ids:
                said = said.replace(f"{finding.system} {finding.entity} {ext}",
                                    f"{finding.system} {finding.entity} {document} (id {ext} there)")
        return said

    # -- what the hub's record says

    def _said_of(self, entity: Entity | None) -> dict[str, Any]:
        said: dict[str, Any] = {"customer": None, "document": None, "date": None, "amount": None}
        if entity is None:
            return said
        if isinstance(entity, Customer):
            said["customer"] = entity.name or entity.email
            return said
        said["customer"] = self._customer_name(getattr(entity, "customer_id", None))
        if isinstance(entity, Invoice | CreditNote):
            said.update(document=entity.number, date=day_of(entity.issued_at), amount=money_json(entity.total))
        elif isinstance(entity, Payment):
            said.update(document=self._number_of(entity.invoice_id) or entity.reference,
                        date=day_of(entity.paid_at), amount=money_json(entity.amount))
        elif isinstance(entity, Refund):
            said.update(document=self._number_of(entity.credit_note_id) or self._number_of(entity.invoice_id),
                        date=day_of(entity.refunded_at), amount=money_json(entity.amount))
        elif isinstance(entity, Payout):
            said.update(date=day_of(entity.arrival_date), amount=money_json(entity.amount))
        elif isinstance(entity, Product):
            said.update(document=entity.name or entity.sku)
        elif isinstance(entity, Price):
            said.update(document=self._product_name(entity.product_id), amount=money_json(entity.unit_amount))
        return said

    def _customer_name(self, customer_id: str | None) -> str | None:
        customer = self.entity(customer_id)
        return (customer.name or customer.email) if isinstance(customer, Customer) else None

    def _number_of(self, document_id: str | None) -> str | None:
        document = self.entity(document_id)
        return document.number if isinstance(document, Invoice | CreditNote) else None

    def _product_name(self, product_id: str | None) -> str | None:
        product = self.entity(product_id)
        return product.name if isinstance(product, Product) else None

    @staticmethod
    def _totals(finding: Finding) -> dict[str, Any]:
        """A day's totals: its day, and the unexplained difference as the amount."""
        day, _, rest = _totals_key(finding).partition("/")
        currency = rest.split("/")[0] if rest else None
        values: dict[str, Any] = next(iter(finding.fields.values()), {})
        theirs, ours = values.get(finding.system), values.get("hub")
        amount = None
        if isinstance(theirs, int) and isinstance(ours, int) and currency:
            amount = {"minor": theirs - ours, "currency": currency}
        return {"date": day or None, "amount": amount, "document": None, "customer": None}

    # -- the systems

    def _links(self, finding: Finding) -> dict[str, str]:
        links: dict[str, str] = {}
        if finding.canonical_id and finding.kind != "totals":
            for link in self.linked(finding.canonical_id, finding.entity):
                url = web_link(self.places.get(link.system), finding.entity, link.external_id)
                if url:
                    links[link.system] = url
        if finding.system not in links and finding.external_ids and finding.kind != "totals":
            url = web_link(self.places.get(finding.system), finding.entity, finding.external_ids[0])
            if url:
                links[finding.system] = url
        return links

    def _holders(self, finding: Finding) -> list[str]:
        linked = [] if not finding.canonical_id or finding.kind == "totals" else [
            link.system for link in self.linked(finding.canonical_id, finding.entity)]
        return sorted({*linked, finding.system})

    def _values(self, finding: Finding, currency: str | None) -> dict[str, Any]:
        """Each differing field: the hub's value and every holder's, as text, side by side."""
        holders = self._holders(finding)
        same = [f for f in self._related.get(finding.canonical_id or "", []) if f.id != finding.id] \
            if finding.kind != "totals" else []
        said: dict[str, dict[str, Any]] = {}  # field -> system -> raw value
        for f in [finding, *same]:
            for name, vals in f.fields.items():
                if name in NOT_VALUES or not isinstance(vals, dict):
                    continue
                for system, value in vals.items():
                    said.setdefault(name, {}).setdefault(system, value)
                    if system != "hub" and system not in holders:
                        holders.append(system)
        rows = []
        for name, vals in said.items():
            money_in = {s: (said.get("currency") or {}).get(s) or currency for s in ["hub", *holders]}
            cells = {"hub": value_text(name, vals.get("hub"), money_in["hub"]) if "hub" in vals else "—"}
            for system in holders:
                if system in vals:
                    cells[system] = value_text(name, vals[system], money_in[system])
                elif not self._holds(system, finding.entity, name):
                    cells[system] = "not held there"  # e.g. an invoice's tax in Salesforce
                else:  # linked and no finding of its own on this field: it agreed with the hub
                    cells[system] = "same as hub"
            rows.append({"field": name, "values": cells})
        return {"systems": ["hub", *holders], "rows": rows}

    def _holds(self, connection: str, entity_type: str, name: str) -> bool:
        """Whether the connection's system expresses the field at all (the diff's own rule)."""
        place = self.places.get(connection)
        return place is None or said_by(place.system, entity_type, {name: 0}).get(name) is not None

    # -- duplicates and orphans

    @staticmethod
    def _facts(finding: Finding) -> list[tuple[str, dict[str, Any]]]:
        captured = finding.fields.get("candidates")
        if not isinstance(captured, dict):
            return []
        return [(ext, facts if isinstance(facts, dict) else {}) for ext, facts in captured.items()]

    def _candidates(self, finding: Finding, facts: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        if finding.kind not in ("duplicate", "orphan"):
            return []
        link = next((x for x in self.linked(finding.canonical_id, finding.entity) if x.system == finding.system),
                    None) if finding.canonical_id else None
        place = self.places.get(finding.system)
        known = dict(facts)
        shown = []
        for ext in finding.external_ids:
            said = known.get(ext, {})
            balance, amount = said.get("balance"), said.get("amount")
            documents = [{**d, "amount_text": money_text((d.get("amount") or {}).get("minor"),
                                                         (d.get("amount") or {}).get("currency"))}
                         for d in said.get("documents") or []]
            shown.append({
                "external_id": ext, "linked": link is not None and link.external_id == ext,
                "name": said.get("name"), "email": said.get("email"), "number": said.get("number"),
                "date": said.get("date"), "created": said.get("created"), "customer": said.get("customer"),
                "status": said.get("status"),
                "balance": balance, "balance_text": money_text(balance["minor"], balance["currency"]) if balance else None,
                "amount": amount, "amount_text": money_text(amount["minor"], amount["currency"]) if amount else None,
                "documents": documents, "documents_count": said.get("documents_count"),
                "link": web_link(place, finding.entity, ext)})
        return shown


def _totals_key(finding: Finding) -> str:
    """A totals finding's ``day/currency[/measure]``: said in its detail ("... for DAY in CUR ...")."""
    match = re.search(r"for (\d{4}-\d{2}-\d{2}) in ([A-Z]{3})", finding.detail)
    return f"{match.group(1)}/{match.group(2)}" if match else ""


def abouts(tx: Tx, findings: Sequence[Finding], places: Places | None = None) -> dict[str, dict[str, Any]]:
    """Finding id -> its ``about``, the findings of the same records read once for all."""
    view = FindingView(tx, places)
    records = sorted({f.canonical_id for f in findings if f.canonical_id})
    with tx.remembering():
        view.prime(findings)
        view.relate(tx.findings_of_records(records) if records else [])
        return {f.id: view.about(f) for f in findings}


__all__ = ["MONEY_FIELDS", "FindingView", "Place", "Places", "abouts", "action_of", "money_text",
           "neutral_detail", "places_of", "value_text", "web_link"]
