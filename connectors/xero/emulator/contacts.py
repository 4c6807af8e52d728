"""The Xero emulator's contacts and items: their fields, limits and uniqueness rules, and how a
document names its contact."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.store import Tenant, XeroStore, replace
from connectors.xero.emulator.validation import Invalid, find

CONTACT_FIELDS = ("Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber",
                  "TaxNumber", "DefaultCurrency", "ContactStatus", "IsCustomer", "CompanyNumber", "Website")
# Xero answers every contact with both its address types and all four phone types, the unset
# ones empty (the spec's Contacts examples); a write changes the types it names and keeps the rest.
ADDRESS_TYPES = ("STREET", "POBOX")
ADDRESS_FIELDS = ("AddressLine1", "AddressLine2", "AddressLine3", "AddressLine4", "City", "Region",
                  "PostalCode", "Country", "AttentionTo")
PHONE_TYPES = ("DEFAULT", "DDI", "FAX", "MOBILE")
PHONE_ENUM = (*PHONE_TYPES, "OFFICE")  # the spec's Phone.PhoneType; OFFICE only when sent
PHONE_FIELDS = ("PhoneNumber", "PhoneAreaCode", "PhoneCountryCode")
PERSON_FIELDS = ("FirstName", "LastName", "EmailAddress", "IncludeInEmails")
ITEM_FIELDS = ("Code", "Name", "Description", "PurchaseDescription", "IsSold", "IsPurchased",
               "SalesDetails")


class ContactsMixin(XeroStore):
    def _save_contacts(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        record: dict[str, Any] = dict(existing) if existing else {
            "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "IsCustomer": False, "IsSupplier": False,
            "Addresses": addresses([], []), "Phones": phones([], []), "ContactGroups": [], "ContactPersons": [],
            "BankAccountDetails": "", "HasAttachments": False, "HasValidationErrors": False}
        for key in CONTACT_FIELDS:
            if key in data:
                record[key] = data[key]
        if "Addresses" in data:
            record["Addresses"] = addresses(record["Addresses"], data["Addresses"])
        if "Phones" in data:
            record["Phones"] = phones(record["Phones"], data["Phones"])
        if "ContactPersons" in data:
            record["ContactPersons"] = persons(data["ContactPersons"])
        name = str(record.get("Name") or "").strip()
        if not name:
            raise Invalid("The contact name must be specified")
        if len(name) > 255:
            raise Invalid("The contact name must not exceed 255 characters")
        if len(str(record.get("ContactNumber") or "")) > 50:
            raise Invalid("The Contact Number must not exceed 50 characters")
        if record.get("ContactStatus") not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            raise Invalid(f"'{record.get('ContactStatus')}' is not a valid ContactStatus")
        if record.get("DefaultCurrency") and record["DefaultCurrency"] not in tenant.table("Currencies"):
            raise Invalid(f"The currency '{record['DefaultCurrency']}' is not enabled for this organisation")
        if record["ContactStatus"] == "ACTIVE":
            for other in tenant.with_key("Contacts", "Name", name):
                if (other["ContactID"] != record["ContactID"] and other.get("ContactStatus") == "ACTIVE"
                        and str(other.get("Name", "")).strip().casefold() == name.casefold()):
                    raise Invalid(f"The contact name {name} is already assigned to another contact. "
                                  "The contact name must be unique across all active contacts.")
        record["Name"] = name
        return record

    def _save_items(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                    ) -> dict[str, Any]:
        record: dict[str, Any] = dict(existing) if existing else {"ItemID": str(uuid.uuid4()), "IsSold": True,
                                                  "IsPurchased": False, "IsTrackedAsInventory": False}
        for key in ITEM_FIELDS:
            if key in data:
                record[key] = data[key]
        code = str(record.get("Code") or "").strip()
        if not code:
            raise Invalid("Item code must be specified")
        if len(code) > 30:
            raise Invalid("The Item Code must not exceed 30 characters")
        if len(str(record.get("Name") or "")) > 50:
            raise Invalid("The Item Name must not exceed 50 characters")
        for other in tenant.table("Items").values():
            if other["ItemID"] != record["ItemID"] and not other.get("_deleted") and other.get("Code") == code:
                raise Invalid(f"Item code '{code}' already exists")
        record["Code"] = code
        record.pop("_deleted", None)
        return record


def addresses(current: list[dict[str, Any]], sent: Any) -> list[dict[str, Any]]:
    """Both address types, each as last sent (unset fields empty), STREET then POBOX."""
    by_type = {a["AddressType"]: a for a in current}
    for raw in _objects(sent, "Addresses"):
        kind = str(raw.get("AddressType") or "POBOX").upper()
        if kind not in ADDRESS_TYPES:
            raise Invalid(f"'{raw.get('AddressType')}' is not a valid AddressType (POBOX or STREET)")
        by_type[kind] = {"AddressType": kind, **{f: str(raw.get(f) or "") for f in ADDRESS_FIELDS}}
    return [by_type.get(kind) or {"AddressType": kind, **dict.fromkeys(ADDRESS_FIELDS, "")}
            for kind in ADDRESS_TYPES]


def phones(current: list[dict[str, Any]], sent: Any) -> list[dict[str, Any]]:
    """The four phone types (and OFFICE once sent), each as last sent, unset ones empty."""
    by_type = {p["PhoneType"]: p for p in current}
    for raw in _objects(sent, "Phones"):
        kind = str(raw.get("PhoneType") or "DEFAULT").upper()
        if kind not in PHONE_ENUM:
            raise Invalid(f"'{raw.get('PhoneType')}' is not a valid PhoneType")
        by_type[kind] = {"PhoneType": kind, **{f: str(raw.get(f) or "") for f in PHONE_FIELDS}}
    return [by_type.get(kind) or {"PhoneType": kind, **dict.fromkeys(PHONE_FIELDS, "")}
            for kind in PHONE_ENUM if kind in PHONE_TYPES or kind in by_type]


def persons(sent: Any) -> list[dict[str, Any]]:
    """A contact's ContactPersons, replaced whole by a write (Xero keeps at most five)."""
    people = [{f: raw[f] for f in PERSON_FIELDS if f in raw} for raw in _objects(sent, "ContactPersons")]
    if len(people) > 5:
        raise Invalid("A contact can have a maximum of 5 contact persons")
    for person in people:
        person.setdefault("IncludeInEmails", False)
    return people


def _objects(sent: Any, what: str) -> list[dict[str, Any]]:
    if sent in (None, ""):
        return []
    if not isinstance(sent, list) or not all(isinstance(x, dict) for x in sent):
        raise Invalid(f"{what} must be a list of objects")
    return sent


def contact_ref(tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
    """The ``Contact`` a document names (by id, else by active name), marked as a customer."""
    ref = data.get("Contact") or {}
    contact = find(tenant.table("Contacts"), ref.get("ContactID"))
    if contact is None and ref.get("Name"):
        contact = next((c for c in tenant.table("Contacts").values()
                        if c.get("Name") == ref["Name"] and c.get("ContactStatus") == "ACTIVE"), None)
    if contact is None:
        raise Invalid("A Contact must be specified for this type of transaction" if not ref
                      else "The Contact could not be found")
    if not contact.get("IsCustomer"):
        contact = replace(tenant.table("Contacts"), "ContactID", contact, IsCustomer=True)
    # the summary a document carries (the spec's Invoices list example): the lists Xero always
    # sends, empty; GET Contacts/{id} has the rest
    return {"ContactID": contact["ContactID"], "Name": contact["Name"], "Addresses": [], "Phones": [],
            "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": False}


# Balances per side of the ledger: (invoice type, credit note type)
SIDES = {"AccountsReceivable": ("ACCREC", "ACCRECCREDIT"), "AccountsPayable": ("ACCPAY", "ACCPAYCREDIT")}


def contact_balances(tenant: Tenant, today: date) -> dict[str, dict[str, dict[str, Decimal]]]:
    """Contact id -> ``Balances`` (spec: Contact.Balances, read only): per side, ``Outstanding``
    what its AUTHORISED invoices still owe (``AmountDue``) less the ``RemainingCredit`` of its
    AUTHORISED credit notes, ``Overdue`` what of those invoices is past its due date. The raw
    amounts, not converted to the base currency (the spec's words): a contact billed in two
    currencies gets their plain sum, as Xero gives it. One pass over the documents per request."""
    sums: dict[str, dict[str, dict[str, Decimal]]] = {}

    def side(contact: str, name: str) -> dict[str, Decimal]:
        sides = sums.setdefault(contact, {s: {"Outstanding": Decimal(0), "Overdue": Decimal(0)} for s in SIDES})
        return sides[name]

    for name, (invoice_type, note_type) in SIDES.items():
        for invoice in tenant.table("Invoices").values():
            if invoice.get("Type") != invoice_type or invoice.get("Status") != "AUTHORISED":
                continue
            due, owed = invoice.get("DueDate"), Decimal(invoice.get("AmountDue") or 0)
            totals = side(str((invoice.get("Contact") or {}).get("ContactID")), name)
            totals["Outstanding"] += owed
            if due is not None and due.date() < today:
                totals["Overdue"] += owed
        for note in tenant.table("CreditNotes").values():
            if note.get("Type") == note_type and note.get("Status") == "AUTHORISED":
                side(str((note.get("Contact") or {}).get("ContactID")), name)["Outstanding"] -= Decimal(
                    note.get("RemainingCredit") or 0)
    return sums


def zero_balances() -> dict[str, dict[str, Decimal]]:
    return {s: {"Outstanding": Decimal(0), "Overdue": Decimal(0)} for s in SIDES}
