"""Reads: SOQL per entity type, raw rows -> ``Record``, and the ``(SystemModstamp, Id)`` cursor.

Incremental reads are inclusive with overlap: ``WHERE SystemModstamp >= cursor - overlap`` via
``queryAll`` (so deletions arrive as ``IsDeleted = true`` rows), ordered by ``SystemModstamp, Id``.
To keep the overlap from repeating records, the cursor remembers which ids it has already
returned at which ``SystemModstamp`` inside the overlap window; a row is skipped only when that
exact (id, SystemModstamp) was seen. A record committed late with a timestamp at or before the
cursor (the reason for the overlap) therefore still comes through.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import Record
from mapping.salesforce import parse_sf_datetime

SYSTEM = ("Id", "IsDeleted", "SystemModstamp")
CURRENCY = "CurrencyIsoCode"  # only a multi-currency org has it


@dataclass(frozen=True)
class Child:
    """A child sub-query: ``(SELECT fields FROM relationship tail)``."""

    relationship: str  # the parent's name for the children (Contacts)
    sobject: str  # the children's sObject (Contact)
    fields: tuple[str, ...]
    tail: str = ""  # WHERE / ORDER BY / LIMIT

    def soql(self) -> str:
        return f"SELECT {', '.join(self.fields)} FROM {self.relationship}" + (f" {self.tail}" if self.tail else "")


@dataclass(frozen=True)
class Stream:
    entity_type: str
    sobject: str
    fields: tuple[str, ...]
    children: tuple[Child, ...] = ()

    def select(self, where: str | None = None, *, order: bool = True) -> str:
        parts = ", ".join([*self.fields, *(f"({c.soql()})" for c in self.children)])
        text = f"SELECT {parts} FROM {self.sobject}"
        if where:
            text += f" WHERE {where}"
        if order:
            text += " ORDER BY SystemModstamp, Id"
        return text


def streams(settings: Mapping[str, Any], *, multi_currency: bool = True) -> dict[str, Stream]:
    """The SOQL each canonical entity type is read with (custom names from config). Only a
    multi-currency org is asked for ``CurrencyIsoCode``: elsewhere the field does not exist."""
    hub = str(settings["hub_id_field"])
    email_field = settings["email_field"]
    system = (*SYSTEM, CURRENCY) if multi_currency else SYSTEM
    account = [*system, hub, "Name", "Phone", "Website", "Billing_Status__c",
               *(f"{kind}{part}" for kind in ("Billing", "Shipping")
                 for part in ("Street", "City", "State", "PostalCode", "Country"))]
    if email_field:
        account.append(str(email_field))
    # The primary Contact's email is the fallback while the configured field is still empty
    # (accounts the hub has not written yet).
    contacts = Child("Contacts", "Contact", ("Id", "Email"),
                     "WHERE Email != null ORDER BY CreatedDate, Id LIMIT 1")
    lines = Child("OpportunityLineItems", "OpportunityLineItem",
                  ("Id", "Product2Id", "PricebookEntryId", "Quantity", "UnitPrice", "TotalPrice",
                   "Description", "Name", "PricebookEntry.Billing_Interval__c"), "ORDER BY Id")
    return {
        "customer": Stream("customer", "Account", tuple(account), (contacts,)),
        "product": Stream("product", "Product2",
                          (*system, hub, "Name", "ProductCode", "Description", "IsActive")),
        "price": Stream("price", "PricebookEntry",
                        (*system, hub, "Product2Id", "Pricebook2Id", "UnitPrice", "IsActive",
                         "Billing_Interval__c")),
        "deal": Stream("deal", "Opportunity",
                       (*system, hub, "Name", "AccountId", "StageName", "IsWon", "IsClosed", "CloseDate",
                        "Amount"), (lines,)),
        "invoice": Stream("invoice", str(settings["invoice_object"]),
                          (*system, hub, "Name", "Invoice_Number__c", "Account__c", "Opportunity__c",
                           "Amount__c", "Amount_Paid__c", "Amount_Credited__c", "Status__c", "Due_Date__c",
                           "Paid_Date__c")),
    }


def needed_fields(by_type: Mapping[str, Stream]) -> dict[str, list[str]]:
    """sObject -> every field the streams read (and so the writes send), in reading order,
    ``CurrencyIsoCode`` aside (it exists or not with the org's currencies). A parent path
    (``PricebookEntry.Billing_Interval__c``) is the parent's own field, listed there."""
    needed: dict[str, list[str]] = {}

    def add(sobject: str, fields: tuple[str, ...]) -> None:
        names = needed.setdefault(sobject, [])
        names.extend(f for f in fields if "." not in f and f != CURRENCY and f not in names)

    for stream in by_type.values():
        add(stream.sobject, stream.fields)
        for child in stream.children:
            add(child.sobject, child.fields)
    return needed


def plain(value: Any) -> Any:
    """SDK row -> JSON-able data: no ``attributes``, sub-queries as lists, decimals as strings."""
    if isinstance(value, Mapping):
        if "records" in value and "totalSize" in value:
            return [plain(v) for v in value.get("records") or []]
        return {str(k): plain(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):  # never produced with parse_float=Decimal; refuse silently lossy data
        raise ValueError("Salesforce returned a float where a decimal was expected")
    return value


def to_record(stream: Stream, row: Mapping[str, Any]) -> Record:
    data = plain(row)
    if not isinstance(data, dict) or not data.get("Id"):
        raise ValueError(f"a {stream.sobject} row without an Id")
    stamp = parse_sf_datetime(data.get("SystemModstamp"))
    return Record(stream.entity_type, str(data["Id"]), data, updated_at=stamp,
                  deleted=bool(data.get("IsDeleted")), version=data.get("SystemModstamp"))


# --------------------------------------------------------------------------- cursor


@dataclass
class Cursor:
    """High-water ``SystemModstamp`` plus the (id -> stamp) rows already returned near it."""

    ts: datetime | None
    seen: dict[str, datetime]

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls(None, {})
        try:
            raw = json.loads(text)
            ts = parse_sf_datetime(raw["ts"])
            seen: dict[str, datetime] = {}
            if ts is not None:
                for offset, ids in raw.get("seen", {}).items():
                    for record_id in ids:
                        seen[str(record_id)] = ts - timedelta(milliseconds=int(offset))
            return cls(ts, seen)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"unreadable Salesforce cursor: {str(text)[:60]!r}") from exc

    def observe(self, record: Record) -> bool:
        """Note a row; False when exactly this version was already returned (skip it)."""
        stamp = record.updated_at
        if stamp is None:
            return True
        if self.seen.get(record.external_id) == stamp:
            return False
        self.seen[record.external_id] = stamp
        if self.ts is None or stamp > self.ts:
            self.ts = stamp
        return True

    def encode(self, overlap: timedelta) -> str:
        if self.ts is None:
            return json.dumps({"ts": None, "seen": {}})
        horizon = self.ts - overlap
        grouped: dict[str, list[str]] = {}
        for record_id, stamp in sorted(self.seen.items()):
            if stamp >= horizon:
                offset = int((self.ts - stamp) / timedelta(milliseconds=1))
                grouped.setdefault(str(offset), []).append(record_id)
        self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
        return json.dumps({"ts": self.ts.isoformat(), "seen": grouped}, separators=(",", ":"))

    def lower_bound(self, overlap: timedelta) -> str:
        """The SOQL datetime literal of ``ts - overlap``, floored to the second (inclusive)."""
        assert self.ts is not None
        bound = (self.ts - overlap).replace(microsecond=0)
        return bound.strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"
