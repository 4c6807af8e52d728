"""Fields real Xero always sends (issue 19): contacts with ContactGroups, ContactPersons,
HasValidationErrors, both address types and the four phone types; invoices with the payments
and credit notes applied to them (Payments[], CreditNotes[], AmountCredited), IsDiscounted,
HasErrors, Prepayments[], Overpayments[]; credit notes with their Allocations[] and Payments[].
Raw HTTP against one emulator for the module; every answer validated against
xero_accounting.yaml (the spec's schemas and its GET examples are the reference)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.emulation import RunningEmulator
from connectors.xero import wire
from connectors.xero.emulator import (
    XeroEmulator,
)
from tests.connectors.xero.raw_http import API, accounting_spec, token_session


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return accounting_spec()


@pytest.fixture(scope="module")
def http(running: RunningEmulator) -> Iterator[requests.Session]:
    emulator = running.emulator
    assert isinstance(emulator, XeroEmulator)
    emulator.limits.minute = 10_000  # the module makes more calls than one tenant-minute allows
    session = token_session(running, emulator)
    yield session
    session.close()


class Xero:
    """Calls that check the status and validate each answer against the spec."""

    def __init__(self, running: RunningEmulator, http: requests.Session, spec: OpenAPI) -> None:
        self.base, self.http, self.spec = running.base_url + API, http, spec

    def call(self, method: str, path: str, body: Any = None, status: int = 200, **params: str) -> Any:
        answer = self.http.request(method, self.base + path, params=params, timeout=10,
                                   data=None if body is None else wire.dumps(body),
                                   headers={"Content-Type": "application/json"})
        assert answer.status_code == status, answer.text
        url = urlsplit(answer.url)
        self.spec.validate_response(
            MockRequest("https://api.xero.com", method.lower(), url.path, args=dict(parse_qsl(url.query))),
            MockResponse(answer.content, status_code=answer.status_code,
                         content_type=answer.headers.get("Content-Type", "application/json")))
        return wire.loads(answer.content)

    def one(self, collection: str, ident: str) -> dict[str, Any]:
        (item,) = self.call("GET", f"/{collection}/{ident}")[collection]
        return dict(item)


@pytest.fixture(scope="module")
def xero(running: RunningEmulator, http: requests.Session, spec: OpenAPI) -> Xero:
    return Xero(running, http, spec)


LINE = {"Description": "Pro", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200", "TaxType": "OUTPUT"}


@pytest.fixture(scope="module")
def contact_id(xero: Xero) -> str:
    body = {"Contacts": [{"Name": "Field Co", "EmailAddress": "field@example.com",
                          "Addresses": [{"AddressType": "STREET", "AddressLine1": "1 Main St", "City": "Springfield"}],
                          "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "555-0101"}],
                          "ContactPersons": [{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@example.com"}]}]}
    return str(xero.call("PUT", "/Contacts", body)["Contacts"][0]["ContactID"])


def test_a_contact_answers_every_list_and_both_address_types(xero: Xero, contact_id: str) -> None:
    contact = xero.one("Contacts", contact_id)
    assert contact["ContactGroups"] == [] and contact["HasValidationErrors"] is False
    assert contact["ContactPersons"] == [{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@example.com",
                                          "IncludeInEmails": False}]
    assert [a["AddressType"] for a in contact["Addresses"]] == ["STREET", "POBOX"]
    street, pobox = contact["Addresses"]
    assert (street["AddressLine1"], street["City"], street["PostalCode"]) == ("1 Main St", "Springfield", "")
    assert set(pobox.values()) == {"POBOX", ""}
    assert [p["PhoneType"] for p in contact["Phones"]] == ["DEFAULT", "DDI", "FAX", "MOBILE"]
    assert [p["PhoneNumber"] for p in contact["Phones"]] == ["", "", "", "555-0101"]
    # a write of one address type keeps the other (and the phones it does not name)
    xero.call("POST", "/Contacts", {"Contacts": [{"ContactID": contact_id, "Addresses": [
        {"AddressType": "POBOX", "AddressLine1": "PO Box 7", "PostalCode": "99501"}]}]})
    listed = xero.call("GET", "/Contacts", where=f'ContactID==Guid("{contact_id}")')["Contacts"]
    assert [(a["AddressType"], a["AddressLine1"]) for a in listed[0]["Addresses"]] == [
        ("STREET", "1 Main St"), ("POBOX", "PO Box 7")]
    assert listed[0]["Phones"][3]["PhoneNumber"] == "555-0101"
    refused = xero.call("POST", "/Contacts", {"Contacts": [{"ContactID": contact_id, "Addresses": [
        {"AddressType": "DELIVERY", "City": "x"}]}]}, status=400)
    assert "AddressType" in refused["Elements"][0]["ValidationErrors"][0]["Message"]


def test_an_invoice_lists_the_payments_and_credit_notes_applied_to_it(xero: Xero, contact_id: str) -> None:
    (invoice,) = xero.call("PUT", "/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact_id},
                                                              "Status": "AUTHORISED", "LineItems": [LINE]}]})["Invoices"]
    invoice_id = invoice["InvoiceID"]
    fresh = xero.one("Invoices", invoice_id)
    assert (fresh["Payments"], fresh["CreditNotes"], fresh["Prepayments"], fresh["Overpayments"]) == ([], [], [], [])
    assert (fresh["AmountCredited"], fresh["IsDiscounted"], fresh["HasErrors"]) == (Decimal(0), False, False)
    assert fresh["Contact"] == {"ContactID": contact_id, "Name": "Field Co", "Addresses": [], "Phones": [],
                                "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": False}

    (payment,) = xero.call("PUT", "/Payments", {"Payments": [{"Invoice": {"InvoiceID": invoice_id},
                                                             "Account": {"Code": "090"}, "Amount": "50.00",
                                                             "Reference": "bank 1", "Date": "2026-11-03"}]})["Payments"]
    (note,) = xero.call("PUT", "/CreditNotes", {"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED",
        "LineItems": [{**LINE, "UnitAmount": 10}]}]})["CreditNotes"]
    (allocation,) = xero.call("PUT", f"/CreditNotes/{note['CreditNoteID']}/Allocations", {"Allocations": [
        {"Invoice": {"InvoiceID": invoice_id}, "Amount": "11.00", "Date": "2026-11-04"}]})["Allocations"]

    paid = xero.call("GET", "/Invoices", IDs=invoice_id)["Invoices"][0]
    assert [(p["PaymentID"], p["Amount"], p["Reference"]) for p in paid["Payments"]] == [
        (payment["PaymentID"], Decimal("50.00"), "bank 1")]
    assert paid["Payments"][0]["Date"] == payment["Date"]
    (credit,) = paid["CreditNotes"]
    assert (credit["CreditNoteID"], credit["CreditNoteNumber"], credit["AppliedAmount"], credit["Total"]) == (
        note["CreditNoteID"], note["CreditNoteNumber"], Decimal("11.00"), Decimal("11.00"))
    assert (paid["AmountPaid"], paid["AmountCredited"], paid["AmountDue"]) == (
        Decimal("50.00"), Decimal("11.00"), Decimal("49.00"))
    allocated = xero.one("CreditNotes", note["CreditNoteID"])
    assert [(a["AllocationID"], a["Amount"], a["Invoice"]["InvoiceID"]) for a in allocated["Allocations"]] == [
        (allocation["AllocationID"], Decimal("11.00"), invoice_id)]

    # a deleted payment and a deleted allocation leave the invoice's lists
    xero.call("POST", f"/Payments/{payment['PaymentID']}", {"Payments": [{"Status": "DELETED"}]})
    xero.call("DELETE", f"/CreditNotes/{note['CreditNoteID']}/Allocations/{allocation['AllocationID']}")
    back = xero.one("Invoices", invoice_id)
    assert (back["Payments"], back["CreditNotes"], back["AmountCredited"], back["AmountDue"]) == (
        [], [], Decimal(0), Decimal("110.00"))


def test_a_refunded_credit_note_lists_its_payments(xero: Xero, contact_id: str) -> None:
    (note,) = xero.call("PUT", "/CreditNotes", {"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED",
        "LineItems": [{**LINE, "UnitAmount": 5}]}]})["CreditNotes"]
    assert (note["Allocations"], note["Payments"]) == ([], [])
    (refund,) = xero.call("PUT", "/Payments", {"Payments": [{"CreditNote": {"CreditNoteID": note["CreditNoteID"]},
                                                            "Account": {"Code": "090"}, "Amount": "5.50",
                                                            "Reference": "refund"}]})["Payments"]
    refunded = xero.call("GET", "/CreditNotes", where=f'CreditNoteID=Guid("{note["CreditNoteID"]}")')["CreditNotes"][0]
    assert [(p["PaymentID"], p["Amount"]) for p in refunded["Payments"]] == [(refund["PaymentID"], Decimal("5.50"))]
    assert (refunded["Status"], refunded["RemainingCredit"]) == ("PAID", Decimal(0))
