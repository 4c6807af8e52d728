"""The Xero emulator's bank documents (xero_accounting.yaml ``BankTransfer``, ``BankTransaction``):
money moved between two bank accounts, and money spent from or received into one.

* BankTransfer: ``FromBankAccount``, ``ToBankAccount`` (BANK accounts by ``Code`` or
  ``AccountID``, not the same one) and ``Amount`` (> 0) required; it cannot be edited (the spec
  has no update, only create and delete); ``CreatedDateUTC``, the two bank transaction ids and
  ``CurrencyRate`` are Xero's.
* BankTransaction: ``Type`` (RECEIVE, SPEND and their overpayment/prepayment forms),
  ``BankAccount`` (a BANK account) and ``LineItems`` required; a ``Contact`` by ``ContactID``, or
  by ``Name`` (matched among active contacts, else created, as Xero does); each line's
  ``AccountCode`` and ``TaxType`` must exist; totals follow ``LineAmountTypes`` (NoTax,
  Exclusive, Inclusive).
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.xero.emulator.store import Tenant, XeroStore
from connectors.xero.emulator.validation import Invalid, money, to_date, to_decimal

TRANSACTION_TYPES = frozenset({"RECEIVE", "SPEND", "RECEIVE-OVERPAYMENT", "SPEND-OVERPAYMENT",
                               "RECEIVE-PREPAYMENT", "SPEND-PREPAYMENT"})
LINE_AMOUNT_TYPES = frozenset({"NoTax", "Exclusive", "Inclusive"})
CENT = Decimal("0.01")


class BankingMixin(XeroStore):
    def _bank_account(self, tenant: Tenant, ref: Any, what: str) -> dict[str, Any]:
        ref = ref if isinstance(ref, dict) else {}
        account = next((a for a in tenant.table("Accounts").values()
                        if (ref.get("AccountID") and a.get("AccountID") == ref.get("AccountID"))
                        or (ref.get("Code") and a.get("Code") == ref.get("Code"))), None)
        if account is None:
            raise Invalid(f"{what} could not be found")
        if account.get("Type") != "BANK":
            raise Invalid(f"{what} must be a bank account")
        return account

    def _save_banktransfers(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                            ) -> dict[str, Any]:
        if existing is not None:
            raise Invalid("A bank transfer cannot be edited; delete it and enter a new one")
        source = self._bank_account(tenant, data.get("FromBankAccount"), "From bank account")
        target = self._bank_account(tenant, data.get("ToBankAccount"), "To bank account")
        if source["AccountID"] == target["AccountID"]:
            raise Invalid("The from and to bank accounts must be different")
        amount = money(to_decimal(data.get("Amount"), "Amount"))
        if amount <= 0:
            raise Invalid("Amount must be greater than zero")
        now = self.clock.now()
        return {"BankTransferID": str(uuid.uuid4()),
                "FromBankAccount": {k: source[k] for k in ("AccountID", "Code", "Name")},
                "ToBankAccount": {k: target[k] for k in ("AccountID", "Code", "Name")},
                "Amount": amount, "Date": to_date(data.get("Date")) or now,
                "Reference": str(data.get("Reference") or ""), "CurrencyRate": Decimal(1),
                "FromBankTransactionID": str(uuid.uuid4()), "ToBankTransactionID": str(uuid.uuid4()),
                "FromIsReconciled": False, "ToIsReconciled": False, "HasAttachments": False,
                "CreatedDateUTC": now}

    def _contact_for(self, tenant: Tenant, ref: Any) -> dict[str, Any]:
        ref = ref if isinstance(ref, dict) else {}
        contacts = tenant.table("Contacts")
        if ref.get("ContactID"):
            contact = contacts.get(str(ref["ContactID"]))
            if contact is None:
                raise Invalid("Contact could not be found")
            return contact
        name = str(ref.get("Name") or "").strip()
        if not name:
            raise Invalid("A Contact must be specified for this type of transaction")
        live = [c for c in tenant.with_key("Contacts", "Name", name) if c.get("ContactStatus") != "ARCHIVED"]
        return live[0] if live else self._save(tenant, "Contacts", {"Name": name}, create_only=True)

    def _save_banktransactions(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                               ) -> dict[str, Any]:
        base = {**(existing or {}), **data}
        kind = base.get("Type")
        if kind not in TRANSACTION_TYPES:
            raise Invalid("Type must be one of " + ", ".join(sorted(TRANSACTION_TYPES)))
        account = self._bank_account(tenant, base.get("BankAccount"), "Bank account")
        contact = self._contact_for(tenant, base.get("Contact"))
        amount_types = str(base.get("LineAmountTypes") or "Exclusive")
        if amount_types not in LINE_AMOUNT_TYPES:
            raise Invalid("LineAmountTypes must be NoTax, Exclusive or Inclusive")
        lines, subtotal, total_tax = [], Decimal(0), Decimal(0)
        codes = {a.get("Code") for a in tenant.table("Accounts").values()}
        for raw in base.get("LineItems") or []:
            line = dict(raw) if isinstance(raw, dict) else {}
            if line.get("AccountCode") not in codes:
                raise Invalid(f"Account code '{line.get('AccountCode')}' is not a valid code for this document")
            tax_type = str(line.get("TaxType") or "NONE")
            rate = tenant.table("TaxRates").get(tax_type)
            if rate is None:
                raise Invalid(f"The TaxType code '{tax_type}' does not exist or cannot be used")
            quantity = to_decimal(line.get("Quantity") or 1, "Quantity")
            amount = (quantity * to_decimal(line.get("UnitAmount"), "UnitAmount")).quantize(CENT, ROUND_HALF_UP)
            percent = Decimal(0) if amount_types == "NoTax" else Decimal(str(rate["EffectiveRate"]))
            tax = (amount * percent / (100 + percent) if amount_types == "Inclusive"
                   else amount * percent / 100).quantize(CENT, ROUND_HALF_UP)
            line.update(Quantity=quantity, LineAmount=amount, TaxType=tax_type, TaxAmount=tax,
                        LineItemID=str(line.get("LineItemID") or uuid.uuid4()))
            subtotal += amount - (tax if amount_types == "Inclusive" else 0)
            total_tax += tax
            lines.append(line)
        if not lines:
            raise Invalid("A bank transaction must have at least one line item")
        return {"BankTransactionID": (existing or {}).get("BankTransactionID") or str(uuid.uuid4()),
                "Type": kind, "Contact": {k: contact.get(k) for k in ("ContactID", "Name")},
                "BankAccount": {k: account[k] for k in ("AccountID", "Code", "Name")},
                "LineItems": lines, "LineAmountTypes": amount_types, "IsReconciled": False,
                "Date": to_date(base.get("Date")) or self.clock.now(), "Reference": str(base.get("Reference") or ""),
                "CurrencyCode": str(base.get("CurrencyCode") or account.get("CurrencyCode") or tenant.base_currency),
                "CurrencyRate": Decimal(1), "Status": str(base.get("Status") or "AUTHORISED"),
                "SubTotal": subtotal, "TotalTax": total_tax, "Total": subtotal + total_tax, "HasAttachments": False}
