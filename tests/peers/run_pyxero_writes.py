"""pyxero (0.9.5) writing to billhub's Xero emulator, as its README shows: ``put`` (create) and
``save`` (create or update) of contacts, items, invoices, payments and credit notes, a credit-note
allocation, each sent as pyxero sends every body, XML (``Content-Type: application/xml``), with
JSON asked for the answer. Run by the peer venv's python, never imported by billhub's tests
(the reads are run_pyxero.py's); Xero's hosts reach the loopback emulator through
``xero_loopback`` as there.

stdin: ``{"client_id", "client_secret", "refresh_token"}``. stdout: ``{step: what pyxero returned
| {"error": status, "problems": [...]}}`` with dates as ISO strings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from xero_loopback import route_xero_to  # beside this script: imported before the path is cleaned

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from xero import Xero  # noqa: E402  (after the path is cleaned)
from xero.auth import OAuth2Credentials  # noqa: E402
from xero.exceptions import XeroBadRequest, XeroException  # noqa: E402

LINE = {"Description": "Py plan", "Quantity": 2, "UnitAmount": 49.95, "AccountCode": "200", "TaxType": "OUTPUT"}


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)  # Decimal and the like


def main() -> None:
    route_xero_to(os.environ["BILLHUB_XERO_EMULATOR"])
    asked = json.load(sys.stdin)
    credentials = OAuth2Credentials(asked["client_id"], asked["client_secret"], scope=["offline_access"], token={
        "access_token": "expired", "refresh_token": asked["refresh_token"], "token_type": "Bearer",
        "expires_in": -60, "expires_at": time.time() - 60})
    credentials.refresh()
    credentials.set_default_tenant()
    xero = Xero(credentials)
    out: dict[str, Any] = {}

    def step(name: str, call: Callable[[], Any]) -> Any:
        try:
            out[name] = call()
        except XeroBadRequest as exc:
            out[name] = {"error": 400, "problems": exc.errors}
        except XeroException as exc:
            out[name] = {"error": getattr(getattr(exc, "response", None), "status_code", None), "text": str(exc)}
        return out[name]

    (contact,) = step("contacts.put", lambda: xero.contacts.put({
        "Name": "Py Co", "EmailAddress": "py@example.com", "IsCustomer": True,
        "Addresses": [{"AddressType": "POBOX", "AddressLine1": "PO Box 1", "City": "Wellington"}],
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555 0101"}],
        "ContactPersons": [{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@example.com",
                            "IncludeInEmails": True}]}))
    fetched = xero.contacts.get(contact["ContactID"])[0]  # sent back whole, as pyxero's README edits one
    fetched["EmailAddress"] = "accounts@example.com"
    step("contacts.save", lambda: xero.contacts.save(fetched))
    step("items.put", lambda: xero.items.put({"Code": "PY-1", "Name": "Py item", "IsSold": True,
                                              "SalesDetails": {"UnitPrice": 12.5, "AccountCode": "200"}}))
    (invoice,) = step("invoices.put", lambda: xero.invoices.put({
        "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "Status": "AUTHORISED",
        "Date": date(2026, 11, 1), "DueDate": date(2026, 11, 30), "LineAmountTypes": "Exclusive",
        "Reference": "py-1", "LineItems": [LINE]}))
    step("payments.put", lambda: xero.payments.put({
        "Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 9.89,
        "Date": date(2026, 11, 2), "Reference": "py pay"}))
    (note,) = step("creditnotes.put", lambda: xero.creditnotes.put({
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": contact["ContactID"]}, "Status": "AUTHORISED",
        "LineItems": [{**LINE, "Quantity": 1, "UnitAmount": 20, "TaxType": "NONE"}]}))
    step("creditnotes.put_allocation", lambda: xero.creditnotes.put_allocation(note["CreditNoteID"], {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 20, "Date": date(2026, 11, 3)}))
    step("invoices.get", lambda: xero.invoices.get(invoice["InvoiceID"]))
    step("invoices.save", lambda: xero.invoices.save({"InvoiceID": invoice["InvoiceID"], "Reference": "py-1b"}))
    step("invoices.put refused", lambda: xero.invoices.put({
        "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "LineItems": []}))
    json.dump(out, sys.stdout, default=_plain)


if __name__ == "__main__":
    main()
