"""The Xero emulator's state: tenants and their collections, saving one record through its
collection's rules, the webhook events a save raises, the wire form of a record, and seeding.

It knows nothing about HTTP; the ledger rules per collection live in ``contacts``, ``documents``
and ``payments`` (each a ``_save_<collection>`` the ``_save`` here dispatches to).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.emulation import EmulatorClock
from connectors.xero import wire
from connectors.xero.emulator.validation import Invalid

API = "/api.xro/2.0"
DEFAULT_TENANT = "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"

# collection -> (id field, element name)
COLLECTIONS: dict[str, tuple[str, str]] = {
    "Contacts": ("ContactID", "Contact"),
    "Items": ("ItemID", "Item"),
    "Invoices": ("InvoiceID", "Invoice"),
    "Payments": ("PaymentID", "Payment"),
    "CreditNotes": ("CreditNoteID", "CreditNote"),
    "Currencies": ("Code", "Currency"),
    "TaxRates": ("TaxType", "TaxRate"),
    "Accounts": ("AccountID", "Account"),
    "BankTransfers": ("BankTransferID", "BankTransfer"),  # banking.py
    "BankTransactions": ("BankTransactionID", "BankTransaction"),
}
# An organisation's country when a test names only its base currency.
COUNTRY_OF = {"USD": "US", "GBP": "GB", "AUD": "AU", "NZD": "NZ", "EUR": "IE", "CAD": "CA", "JPY": "JP"}
KEYED_FIELDS = {"Contacts": ("Name",), "Invoices": ("InvoiceNumber",), "CreditNotes": ("CreditNoteNumber",)}
# The order seeding saves collections in, so that each names only what came before it.
SEED_ORDER = ("Contacts", "Items", "Invoices", "CreditNotes", "Payments")


def _key_form(value: Any) -> str:
    """Names are unique regardless of case and surrounding spaces; so the index keys them."""
    return str(value or "").strip().casefold()


def replace(table: dict[str, dict[str, Any]], id_field: str, record: dict[str, Any],
            **changes: Any) -> dict[str, Any]:
    """Store a copy of ``record`` (with ``changes``) in its place and return the copy, for the
    caller to change further: a batch's snapshot shares the stored records, so they are never
    edited in place."""
    copy_ = {**record, **changes}
    table[record[id_field]] = copy_
    return copy_


@dataclass
class Tenant:
    tenant_id: str
    name: str
    base_currency: str = "USD"
    country_code: str = "US"
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    idempotency: dict[str, tuple[int, str]] = field(default_factory=dict)
    minute_calls: deque[datetime] = field(default_factory=deque)
    day_calls: deque[datetime] = field(default_factory=deque)
    in_flight: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    # (collection, field, normal form) -> ids of records ever saved with that value: Xero's
    # uniqueness rules checked without reading every record. Entries are only added, so each
    # lookup checks the candidates' current values (a rolled-back or renamed record drops out).
    keyed: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def table(self, collection: str) -> dict[str, dict[str, Any]]:
        return self.data.setdefault(collection, {})

    def note_keys(self, collection: str, record: dict[str, Any]) -> None:
        for field_name in KEYED_FIELDS.get(collection, ()):
            value = _key_form(record.get(field_name))
            if value:
                self.keyed.setdefault((collection, field_name, value), set()).add(record[COLLECTIONS[collection][0]])

    def with_key(self, collection: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        """Stored records of ``collection`` whose ``field_name`` has ``value``'s normal form."""
        wanted, table = _key_form(value), self.table(collection)
        found = (table.get(i) for i in sorted(self.keyed.get((collection, field_name, wanted), ())))
        return [r for r in found if r is not None and _key_form(r.get(field_name)) == wanted]

    def next_number(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}-{self.counters[prefix]:04d}"


class XeroStore:
    """Tenants, their records and pending webhook events; the base of the ledger mixins."""

    clock: EmulatorClock
    lock: asyncio.Lock

    def reset_ledger(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.pending_events: list[dict[str, Any]] = []
        self.add_tenant(DEFAULT_TENANT, "Billhub Demo Org")

    def add_tenant(self, tenant_id: str, name: str, base_currency: str = "USD",
                   country_code: str | None = None) -> Tenant:
        tenant = Tenant(tenant_id, name, base_currency, country_code or COUNTRY_OF.get(base_currency, "US"))
        self.tenants[tenant_id] = tenant
        now = self.clock.now()
        for code, desc in (("USD", "United States Dollar"), ("EUR", "Euro"), ("GBP", "British Pound"),
                           ("AUD", "Australian Dollar"), ("NZD", "New Zealand Dollar"),
                           ("JPY", "Japanese Yen")):
            tenant.table("Currencies")[code] = {"Code": code, "Description": desc}
        for tax_type, name_, rate in (("NONE", "No Tax", "0"), ("OUTPUT", "Sales Tax", "10"),
                                      ("OUTPUT2", "Standard Rate Sales", "20"),
                                      ("EXEMPTOUTPUT", "Exempt Sales", "0")):
            tenant.table("TaxRates")[tax_type] = {
                "Name": name_, "TaxType": tax_type, "Status": "ACTIVE", "ReportTaxType": "OUTPUT",
                "CanApplyToRevenue": True, "DisplayTaxRate": Decimal(rate),
                "EffectiveRate": Decimal(rate),
                "TaxComponents": [{"Name": name_, "Rate": Decimal(rate), "IsCompound": False,
                                   "IsNonRecoverable": False}]}
        for code, name_, type_, klass in (("200", "Sales", "REVENUE", "REVENUE"),
                                          ("260", "Other Revenue", "OTHERINCOME", "REVENUE"),
                                          ("090", "Business Bank Account", "BANK", "ASSET"),
                                          ("091", "Business Savings Account", "BANK", "ASSET"),
                                          ("404", "Bank Fees", "EXPENSE", "EXPENSE"),
                                          ("610", "Accounts Receivable", "CURRENT", "ASSET")):
            account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{code}"))
            account = {"AccountID": account_id, "Code": code, "Name": name_, "Type": type_,
                       "Status": "ACTIVE", "Class": klass, "TaxType": "OUTPUT",
                       "EnablePaymentsToAccount": type_ == "BANK", "UpdatedDateUTC": now}
            if type_ == "BANK":
                account.update({"BankAccountNumber": "12-3456-7890123-00", "CurrencyCode": base_currency,
                                "BankAccountType": "BANK"})
            tenant.table("Accounts")[account_id] = account
        return tenant

    @property
    def tenant(self) -> Tenant:
        """The default tenant (tests inspect it directly)."""
        return self.tenants[DEFAULT_TENANT]

    def live(self, collection: str, tenant_id: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        return list(self.tenants[tenant_id].table(collection).values())

    # -- saving ---------------------------------------------------------------------------

    def _save(self, tenant: Tenant, collection: str, data: dict[str, Any], *, create_only: bool
              ) -> dict[str, Any]:
        id_field, _ = COLLECTIONS[collection]
        table = tenant.table(collection)
        existing = None
        if data.get(id_field):
            existing = table.get(str(data[id_field]))
            if existing is None:
                raise Invalid(f"{COLLECTIONS[collection][1]} could not be found")
            if create_only:
                raise Invalid(f"{COLLECTIONS[collection][1]} already exists; use POST to update it")
        saver = getattr(self, f"_save_{collection.lower()}")
        record: dict[str, Any] = saver(tenant, data, existing)
        record["UpdatedDateUTC"] = self.clock.tick(0.001)
        table[record[id_field]] = record
        tenant.note_keys(collection, record)
        self._event(tenant, collection, record, "UPDATE" if existing else "CREATE")
        return record

    def _event(self, tenant: Tenant, collection: str, record: dict[str, Any], kind: str) -> None:
        category = {"Contacts": "CONTACT", "Invoices": "INVOICE"}.get(collection)
        if category is None:  # Xero has no webhooks for items, payments or credit notes
            return
        rid = record[COLLECTIONS[collection][0]]
        self.pending_events.append({
            "resourceUrl": f"https://api.xero.com{API}/{collection}/{rid}", "resourceId": rid,
            "eventDateUtc": record["UpdatedDateUTC"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "eventType": kind, "eventCategory": category, "tenantId": tenant.tenant_id,
            "tenantType": "ORGANISATION"})

    def render(self, collection: str, item: dict[str, Any]) -> dict[str, Any]:
        """Wire form: datetimes as ``/Date(ms+0000)/`` with ``…String`` ISO twins."""
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key.startswith("_"):
                continue
            if isinstance(value, datetime):
                out[key] = wire.ms_date(value)
                if key in ("Date", "DueDate", "FullyPaidOnDate", "UpdatedDateUTC") and collection != "Accounts":
                    out[key + "String"] = wire.iso_string(value)
            elif isinstance(value, list):
                out[key] = [self.render(collection, v) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, dict):
                out[key] = self.render(collection, value)
            else:
                out[key] = value
        return out

    # -- seed -----------------------------------------------------------------------------

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create objects given in Xero JSON shape: ``{"tenant_id"?, "Contacts": [...],
        "Items": [...], "Invoices": [...], "Payments": [...], "CreditNotes": [...]}``.

        Each list is saved in that order with Xero's own validation (so totals are computed);
        the answer lists the ids created per collection and any validation errors.
        """
        tenant = self.tenants.get(str(body.get("tenant_id") or DEFAULT_TENANT))
        if tenant is None:
            tenant = self.add_tenant(str(body["tenant_id"]), str(body.get("tenant_name", "Seeded Org")))
        created: dict[str, list[str]] = {}
        errors: list[str] = []
        async with self.lock:
            for collection in SEED_ORDER:
                for item in body.get(collection, []) or []:
                    try:
                        record = self._save(tenant, collection, dict(item), create_only=False)
                    except Invalid as exc:
                        errors.append(f"{collection}: {exc}")
                        continue
                    created.setdefault(collection, []).append(record[COLLECTIONS[collection][0]])
        return {"created": created, "errors": errors}

    def seed_now(self, body: dict[str, Any]) -> dict[str, Any]:
        """Synchronous seeding for code that owns the emulator object but not its loop."""
        created: dict[str, list[str]] = {}
        tenant = self.tenants[str(body.get("tenant_id") or DEFAULT_TENANT)]
        for collection in SEED_ORDER:
            for item in body.get(collection, []) or []:
                record = self._save(tenant, collection, dict(item), create_only=False)
                created.setdefault(collection, []).append(record[COLLECTIONS[collection][0]])
        return created
