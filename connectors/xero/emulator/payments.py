"""The Xero emulator's payments and credit-note allocations: what each may be made against,
and how both reduce what a document still owes (``AmountDue``/``RemainingCredit``) and move
it between AUTHORISED and PAID."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.store import Tenant, XeroStore, replace
from connectors.xero.emulator.validation import Invalid, find, money, to_date, to_decimal


class PaymentsMixin(XeroStore):
    def _save_payments(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        if existing is not None:
            if data.get("Status") != "DELETED" or set(data) - {"Status", "PaymentID"}:
                raise Invalid("A payment can only be deleted (Status DELETED); it cannot be edited")
            if existing["Status"] == "DELETED":
                raise Invalid("This payment has already been deleted")
            record = dict(existing)
            record["Status"] = "DELETED"
            self._apply_payment(tenant, record, -record["Amount"])
            return record
        target_ref = data.get("Invoice") or data.get("CreditNote")
        if not isinstance(target_ref, dict):
            raise Invalid("An Invoice or CreditNote must be specified for the payment")
        is_invoice = "Invoice" in data
        table = tenant.table("Invoices" if is_invoice else "CreditNotes")
        target = find(table, target_ref.get("InvoiceID" if is_invoice else "CreditNoteID"))
        if target is None and is_invoice and target_ref.get("InvoiceNumber"):
            target = next((i for i in table.values() if i.get("InvoiceNumber") == target_ref["InvoiceNumber"]),
                          None)
        if target is None:
            raise Invalid(("Invoice" if is_invoice else "Credit note") + " could not be found")
        if target["Status"] != "AUTHORISED":
            raise Invalid("Payment can only be made against an AUTHORISED document; this one is "
                          + target["Status"])
        account_ref = data.get("Account") or {}
        account = next((a for a in tenant.table("Accounts").values()
                        if a.get("AccountID") == account_ref.get("AccountID")
                        or (account_ref.get("Code") and a.get("Code") == account_ref.get("Code"))), None)
        if account is None or not account.get("EnablePaymentsToAccount"):
            raise Invalid("Account must be valid and enabled for payments")
        amount = money(to_decimal(data.get("Amount"), "Amount"))
        if amount <= 0:
            raise Invalid("Payment amount must be greater than zero")
        outstanding = target["AmountDue"] if is_invoice else target["RemainingCredit"]
        if amount > outstanding:
            raise Invalid(f"Payment amount ({amount}) exceeds the amount outstanding on this document "
                          f"({outstanding})")
        when = to_date(data.get("Date")) or self.clock.now()
        if target["CurrencyCode"] == tenant.base_currency and data.get("CurrencyRate") not in (None, "") \
                and to_decimal(data["CurrencyRate"], "CurrencyRate") != 1:
            raise Invalid(f"A CurrencyRate cannot be set on a payment of a document in the organisation's "
                          f"base currency ({tenant.base_currency})")
        rate = to_decimal(data.get("CurrencyRate") or target.get("CurrencyRate") or 1, "CurrencyRate")
        if rate <= 0:
            raise Invalid("The CurrencyRate must be greater than zero")
        record = {
            "PaymentID": str(uuid.uuid4()), "Date": when, "Amount": amount, "CurrencyRate": rate,
            "Reference": data.get("Reference", ""), "Status": "AUTHORISED", "IsReconciled": False,
            "PaymentType": "ACCRECPAYMENT" if is_invoice else "ARCREDITPAYMENT",
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "BankAmount": money(amount / rate) if rate else amount, "HasAccount": True,
            "HasValidationErrors": False,
        }
        summary = {"Type": target["Type"], "Contact": target["Contact"], "CurrencyCode": target["CurrencyCode"]}
        if is_invoice:
            record["Invoice"] = {"InvoiceID": target["InvoiceID"], "InvoiceNumber": target["InvoiceNumber"],
                                 **summary}
        else:
            record["CreditNote"] = {"CreditNoteID": target["CreditNoteID"],
                                    "CreditNoteNumber": target["CreditNoteNumber"], **summary}
        self._apply_payment(tenant, record, amount)
        return record

    def _apply_payment(self, tenant: Tenant, payment: dict[str, Any], delta: Decimal) -> None:
        """Apply a payment (``delta`` > 0) or take a deleted one back (< 0): the document's
        amounts, status and its ``Payments[]`` (Xero lists the live payments on it)."""
        if "Invoice" in payment:
            target = replace(tenant.table("Invoices"), "InvoiceID", tenant.table("Invoices")[payment["Invoice"]["InvoiceID"]])
            target["Payments"] = applied(target.get("Payments"), payment, delta)
            target["AmountPaid"] = target.get("AmountPaid", Decimal(0)) + delta
            target["AmountDue"] = target["AmountDue"] - delta
            self._settle(target, "AmountDue")
            self._event(tenant, "Invoices", target, "UPDATE")
        else:
            notes = tenant.table("CreditNotes")
            target = replace(notes, "CreditNoteID", notes[payment["CreditNote"]["CreditNoteID"]])
            target["Payments"] = applied(target.get("Payments"), payment, delta)
            target["_allocated"] = target.get("_allocated", Decimal(0)) + delta
            target["RemainingCredit"] = target["RemainingCredit"] - delta
            self._settle(target, "RemainingCredit")
        target["UpdatedDateUTC"] = self.clock.tick(0.001)

    def _settle(self, target: dict[str, Any], field_name: str) -> None:
        if target[field_name] == 0 and target["Status"] == "AUTHORISED":
            target["Status"] = "PAID"
            target["FullyPaidOnDate"] = self.clock.now()
        elif target[field_name] > 0 and target["Status"] == "PAID":
            target["Status"] = "AUTHORISED"
            target.pop("FullyPaidOnDate", None)

    def _allocation(self, tenant: Tenant, note: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
        """Allocate part of a credit note to an invoice (``PUT CreditNotes/{id}/Allocations``)."""
        if note["Status"] != "AUTHORISED":
            raise Invalid("Credit note must be AUTHORISED to be allocated; it is " + note["Status"])
        invoice = find(tenant.table("Invoices"), (raw.get("Invoice") or {}).get("InvoiceID"))
        if invoice is None:
            raise Invalid("Invoice could not be found")
        if invoice["Status"] != "AUTHORISED":
            raise Invalid("Credit can only be allocated to an AUTHORISED invoice")
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            raise Invalid("The credit note and invoice currencies must match")
        amount = money(to_decimal(raw.get("Amount"), "Amount"))
        if amount <= 0 or amount > note["RemainingCredit"] or amount > invoice["AmountDue"]:
            raise Invalid("The allocation amount must be positive and no more than the remaining credit "
                          "and the amount due")
        when = to_date(raw.get("Date")) or self.clock.now()
        allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount, "Date": when,
                      "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]}}
        note["Allocations"] = [*note.get("Allocations", []), allocation]
        note["_allocated"] = note.get("_allocated", Decimal(0)) + amount
        note["RemainingCredit"] -= amount
        invoice["AmountCredited"] = invoice.get("AmountCredited", Decimal(0)) + amount
        invoice["AmountDue"] -= amount
        # the invoice lists the credit applied to it (spec Invoice.CreditNotes, AppliedAmount)
        invoice["CreditNotes"] = [*(invoice.get("CreditNotes") or []), {
            "CreditNoteID": note["CreditNoteID"], "CreditNoteNumber": note.get("CreditNoteNumber"),
            "ID": note["CreditNoteID"], "AppliedAmount": amount, "Date": when, "Total": note["Total"],
            "LineItems": [], "_AllocationID": allocation["AllocationID"]}]
        self._settle(invoice, "AmountDue")
        self._settle(note, "RemainingCredit")
        now = self.clock.tick(0.001)
        invoice["UpdatedDateUTC"] = note["UpdatedDateUTC"] = now
        self._event(tenant, "Invoices", invoice, "UPDATE")
        return {**allocation, "CreditNote": {"CreditNoteID": note["CreditNoteID"]}}

    def _deallocation(self, tenant: Tenant, note_id: str, allocation_id: str) -> dict[str, Any] | None:
        """Delete one allocation of a credit note (``DELETE CreditNotes/{id}/Allocations/{id}``):
        the invoice owes the amount again and the note holds it as credit again, each back to
        AUTHORISED if it was PAID. ``None`` when there is no such allocation (Xero's 404)."""
        notes = tenant.table("CreditNotes")
        stored = notes.get(note_id)
        allocation = next((a for a in (stored or {}).get("Allocations") or []
                           if a.get("AllocationID") == allocation_id), None)
        if stored is None or allocation is None:
            return None
        if stored["Status"] in ("VOIDED", "DELETED"):
            raise Invalid(f"This document cannot be edited as it has been {stored['Status'].lower()}")
        amount = allocation["Amount"]
        note = replace(notes, "CreditNoteID", stored)
        note["Allocations"] = [a for a in stored["Allocations"] if a is not allocation]
        note["_allocated"] = note.get("_allocated", Decimal(0)) - amount
        note["RemainingCredit"] += amount
        self._settle(note, "RemainingCredit")
        invoices = tenant.table("Invoices")
        invoice = replace(invoices, "InvoiceID", invoices[allocation["Invoice"]["InvoiceID"]])
        invoice["AmountCredited"] = invoice.get("AmountCredited", Decimal(0)) - amount
        invoice["CreditNotes"] = [c for c in invoice.get("CreditNotes") or []
                                  if c.get("_AllocationID") != allocation_id]
        invoice["AmountDue"] += amount
        self._settle(invoice, "AmountDue")
        now = self.clock.tick(0.001)
        invoice["UpdatedDateUTC"] = note["UpdatedDateUTC"] = now
        self._event(tenant, "Invoices", invoice, "UPDATE")
        return {**allocation, "CreditNote": {"CreditNoteID": note_id}, "IsDeleted": True}


def applied(current: list[dict[str, Any]] | None, payment: dict[str, Any], delta: Decimal) -> list[dict[str, Any]]:
    """A document's ``Payments[]`` with ``payment`` added (``delta`` > 0) or removed: the summary
    the spec's Invoices and CreditNotes examples carry (a new list: stored records are shared
    with a batch's snapshot)."""
    kept = [p for p in current or [] if p.get("PaymentID") != payment["PaymentID"]]
    if delta <= 0:
        return kept
    return [*kept, {"PaymentID": payment["PaymentID"], "Date": payment["Date"], "Amount": payment["Amount"],
                    "Reference": payment.get("Reference", ""), "CurrencyRate": payment["CurrencyRate"],
                    "HasAccount": False, "HasValidationErrors": False}]
