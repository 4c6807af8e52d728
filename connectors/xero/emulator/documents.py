"""The Xero emulator's invoices and credit notes: lines and totals from tax rates and
``LineAmountTypes``, currency rates, numbering, and the status transitions Xero allows."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.xero.emulator.contacts import contact_ref
from connectors.xero.emulator.store import Tenant, XeroStore
from connectors.xero.emulator.validation import Invalid, money, to_date, to_decimal

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
# status -> the statuses a document may move to from it (VOIDED and DELETED are final)
TRANSITIONS = {
    "DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"VOIDED"},
    "PAID": set(),
}
# Xero's refusal to edit or void a document with a payment or an allocation on it: they must
# be deleted first (an allocated credit note included; Xero help, "Edit, delete or void an
# invoice, bill or credit note")
SETTLED = "This document cannot be edited as it has a payment or credit note allocated to it."


class DocumentsMixin(XeroStore):
    def _save_invoices(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        record = self._document(tenant, data, existing, kind="invoice")
        # what Xero always sends on an invoice (spec Invoice; its Invoices examples): the payments
        # and the credit notes applied to it (payments.py keeps both), the prepayments and
        # overpayments allocated (none modelled yet), and the flags
        for key in ("Payments", "CreditNotes", "Prepayments", "Overpayments"):
            record.setdefault(key, [])
        record.setdefault("AmountCredited", Decimal(0))
        record.setdefault("IsDiscounted", False)
        record.setdefault("SentToContact", False)
        record.setdefault("HasErrors", False)
        return record

    def _save_creditnotes(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                          ) -> dict[str, Any]:
        record = self._document(tenant, data, existing, kind="credit note")
        record.setdefault("Allocations", [])
        record.setdefault("Payments", [])
        return record

    def _document(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None, *,
                  kind: str) -> dict[str, Any]:
        """Invoices and credit notes share their shape and arithmetic."""
        id_field = "InvoiceID" if kind == "invoice" else "CreditNoteID"
        number_field = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
        record: dict[str, Any] = dict(existing) if existing else {
            id_field: str(uuid.uuid4()), "Status": "DRAFT", "LineAmountTypes": "Exclusive",
            "AmountPaid": Decimal(0), "CurrencyCode": tenant.base_currency, "CurrencyRate": Decimal(1),
            "HasAttachments": False, "Date": self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)}
        if existing and existing["Status"] in ("VOIDED", "DELETED"):
            raise Invalid(f"This document cannot be edited as it has been {existing['Status'].lower()}")
        if existing and existing["Status"] == "PAID" and data.get("Status") not in (None, "PAID"):
            raise Invalid(SETTLED)
        if "Type" in data:
            allowed = ("ACCREC", "ACCPAY") if kind == "invoice" else ("ACCRECCREDIT", "ACCPAYCREDIT")
            if data["Type"] not in allowed:
                raise Invalid(f"'{data['Type']}' is not a valid {kind} type")
            record["Type"] = data["Type"]
        if not record.get("Type"):
            raise Invalid("The document type must be specified")
        if "Contact" in data or not existing:
            record["Contact"] = contact_ref(tenant, data)
        for key in ("Reference", "CurrencyCode", "BrandingThemeID", "SentToContact"):
            if key in data:
                record[key] = data[key]
        for key in ("Date", "DueDate"):
            if key in data:
                record[key] = to_date(data[key])
        if "LineAmountTypes" in data:
            if data["LineAmountTypes"] not in LINE_AMOUNT_TYPES:
                raise Invalid(f"'{data['LineAmountTypes']}' is not a valid LineAmountTypes")
            record["LineAmountTypes"] = data["LineAmountTypes"]
        currency = record["CurrencyCode"]
        if currency not in tenant.table("Currencies"):
            raise Invalid(f"The currency '{currency}' is not enabled for this organisation")
        if currency != tenant.base_currency:
            if data.get("CurrencyRate") not in (None, ""):
                rate = to_decimal(data["CurrencyRate"], "CurrencyRate")
                if rate <= 0:
                    raise Invalid("The CurrencyRate must be greater than zero")
                record["CurrencyRate"] = rate
            elif not existing or record.get("CurrencyRate") in (None, Decimal(1)):
                record["CurrencyRate"] = Decimal("1.5")  # the "XE.com day rate" stand-in
        else:
            # Xero's rate is foreign units per base unit: a base-currency document has none to
            # set, and one sent anyway (a copied payment rate) would restate it in another money.
            if data.get("CurrencyRate") not in (None, "") and to_decimal(data["CurrencyRate"], "CurrencyRate") != 1:
                raise Invalid(f"A CurrencyRate cannot be set on a document in the organisation's base "
                              f"currency ({currency})")
            record["CurrencyRate"] = Decimal(1)
        if "LineItems" in data or not existing:
            if existing and existing["Status"] not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
                raise Invalid("Line items cannot be changed on this document")
            lines, subtotal, tax = line_items(tenant, data.get("LineItems"), record["LineAmountTypes"])
            record.update(LineItems=lines, SubTotal=subtotal, TotalTax=tax, Total=subtotal + tax)
        number = data.get(number_field)
        if number:
            for other in tenant.with_key("Invoices" if kind == "invoice" else "CreditNotes", number_field, number):
                if other[id_field] != record[id_field] and other.get(number_field) == number and \
                        other.get("Status") != "DELETED":
                    raise Invalid(f"{'Invoice' if kind == 'invoice' else 'Credit Note'} # must be unique.")
            record[number_field] = number
        elif not record.get(number_field):
            record[number_field] = tenant.next_number("INV" if kind == "invoice" else "CN")
        transition(record, data.get("Status", record["Status"]), kind)
        paid = record.get("AmountPaid", Decimal(0)) + record.get("AmountCredited", Decimal(0))
        if kind == "invoice":
            record["AmountDue"] = record["Total"] - paid
        else:
            record["RemainingCredit"] = record["Total"] - record.get("_allocated", Decimal(0))
        if record["Total"] < 0:
            raise Invalid("The document total cannot be negative")
        return record


def line_items(tenant: Tenant, raw_lines: Any, amount_types: str
               ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """A document's stored lines, its subtotal and its total tax."""
    if not isinstance(raw_lines, list) or not raw_lines:
        raise Invalid("At least one line item must be specified")
    accounts = {a["Code"] for a in tenant.table("Accounts").values()}
    rates = tenant.table("TaxRates")
    lines = []
    subtotal = tax_total = Decimal(0)
    for raw in raw_lines:
        if not isinstance(raw, dict):
            raise Invalid("Line items must be objects")
        qty = to_decimal(raw.get("Quantity", 1), "Quantity")
        unit = to_decimal(raw.get("UnitAmount"), "UnitAmount").quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        discount = to_decimal(raw.get("DiscountRate"), "DiscountRate")
        code = raw.get("AccountCode")
        if raw.get("ItemCode"):
            item = next((i for i in tenant.table("Items").values()
                         if i.get("Code") == raw["ItemCode"] and not i.get("_deleted")), None)
            if item is None:
                raise Invalid(f"Item code '{raw['ItemCode']}' is not valid")
        if not code:
            raise Invalid("Account code must be specified")
        if code not in accounts:
            raise Invalid(f"Account code '{code}' is not a valid code for this document.")
        tax_type = raw.get("TaxType") or ("NONE" if amount_types == "NoTax" else "OUTPUT")
        if tax_type not in rates:
            raise Invalid(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type "
                          "of transaction.")
        rate = Decimal(0) if amount_types == "NoTax" else Decimal(str(rates[tax_type]["EffectiveRate"]))
        discount_amount = money(to_decimal(raw.get("DiscountAmount"), "DiscountAmount"))
        if discount and discount_amount:
            raise Invalid("A line item cannot have both a DiscountRate and a DiscountAmount")
        # the spec: LineAmount = Quantity * UnitAmount * ((100 - DiscountRate)/100), or
        # (Quantity * UnitAmount) - DiscountAmount
        line_amount = money(qty * unit) - discount_amount if discount_amount else money(qty * unit * (1 - discount / 100))
        if "TaxAmount" in raw and raw["TaxAmount"] not in (None, ""):
            tax = money(to_decimal(raw["TaxAmount"], "TaxAmount"))
        elif amount_types == "Inclusive":
            tax = money(line_amount * rate / (100 + rate))
        else:
            tax = money(line_amount * rate / 100)
        net = line_amount - tax if amount_types == "Inclusive" else line_amount
        subtotal += net
        tax_total += tax
        line = {"LineItemID": str(raw.get("LineItemID") or uuid.uuid4()),
                "Description": raw.get("Description", ""), "Quantity": qty, "UnitAmount": unit,
                "AccountCode": code, "TaxType": tax_type, "TaxAmount": tax, "LineAmount": line_amount,
                "Tracking": raw.get("Tracking") or []}
        if discount:
            line["DiscountRate"] = discount
        if discount_amount:
            line["DiscountAmount"] = discount_amount
        if raw.get("ItemCode"):
            line["ItemCode"] = raw["ItemCode"]
        lines.append(line)
    return lines, subtotal, tax_total


def transition(record: dict[str, Any], status: str, kind: str) -> None:
    """Move a document to ``status`` if Xero allows it from its current one."""
    if status not in INVOICE_STATUSES:
        raise Invalid(f"'{status}' is not a valid status for {kind}s")
    current = record["Status"]
    if status == current:
        return
    if status not in TRANSITIONS.get(current, set()):
        raise Invalid(f"Cannot change the status of a {current} {kind} to {status}")
    if status == "VOIDED" and (record.get("AmountPaid") or record.get("AmountCredited")
                               or record.get("_allocated")):
        raise Invalid(SETTLED)
    record["Status"] = status
