"""XML on the wire (issue 19): Xero takes PUT/POST bodies as XML (``application/xml`` or
``text/xml``) as well as JSON, and answers XML to a client whose Accept asks for it. The bodies
here are the shapes pyxero 0.9.5 writes (``<Contacts><Contact>…``, a lone ``<Item>``, plural
lists of singular elements, booleans as ``true``/``False``, dates ``%Y-%m-%dT%H:%M:%S``, the
allocation as ``<Allocation>…<AppliedAmount>``); each is read to what its JSON twin saves."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectors.emulation import RunningEmulator
from connectors.xero import wire
from connectors.xero.emulator import (
    XeroEmulator,
)
from tests.connectors.xero.raw_http import API, token_session

XML = {"Content-Type": "application/xml", "Accept": "application/json"}


@pytest.fixture(scope="module")
def http(running: RunningEmulator) -> Iterator[requests.Session]:
    emulator = running.emulator
    assert isinstance(emulator, XeroEmulator)
    session = token_session(running, emulator, accept_json=False)
    yield session
    session.close()


@pytest.fixture(scope="module")
def base(running: RunningEmulator) -> str:
    return running.base_url + API


def put(http: requests.Session, url: str, xml: str, *, content_type: str = "application/xml",
        status: int = 200) -> dict[str, Any]:
    answer = http.put(url, data=xml.encode(), headers={**XML, "Content-Type": content_type}, timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = wire.loads(answer.content)
    return body


CONTACT = ("<Contacts><Contact><Name>Xml Co</Name><EmailAddress>xml@example.com</EmailAddress>"
           "<IsCustomer>true</IsCustomer><Addresses><Address><AddressType>STREET</AddressType>"
           "<AddressLine1>1 Xml Rd</AddressLine1><City>Leeds</City></Address></Addresses>"
           "<Phones><Phone><PhoneType>DEFAULT</PhoneType><PhoneNumber>0113 496 0000</PhoneNumber></Phone></Phones>"
           "<ContactPersons /><HasAttachments>False</HasAttachments></Contact></Contacts>")


@pytest.fixture(scope="module")
def contact(http: requests.Session, base: str) -> dict[str, Any]:
    (saved,) = put(http, f"{base}/Contacts", CONTACT)["Contacts"]
    return dict(saved)


@pytest.fixture(scope="module")
def invoice(http: requests.Session, base: str, contact: dict[str, Any]) -> dict[str, Any]:
    xml = (f"<Invoices><Invoice><Type>ACCREC</Type><Contact><ContactID>{contact['ContactID']}</ContactID></Contact>"
           "<Date>2026-11-01T00:00:00</Date><DueDate>2026-11-15T00:00:00</DueDate><Status>AUTHORISED</Status>"
           "<LineAmountTypes>Exclusive</LineAmountTypes><LineItems><LineItem><Description>Pro plan</Description>"
           "<Quantity>2</Quantity><UnitAmount>49.95</UnitAmount><AccountCode>200</AccountCode>"
           "<TaxType>OUTPUT</TaxType><Tracking /></LineItem></LineItems></Invoice></Invoices>")
    (saved,) = put(http, f"{base}/Invoices", xml)["Invoices"]
    return dict(saved)


def test_an_xml_contact_saves_as_its_json_twin(contact: dict[str, Any]) -> None:
    assert (contact["Name"], contact["EmailAddress"], contact["IsCustomer"]) == ("Xml Co", "xml@example.com", True)
    assert [(a["AddressType"], a["AddressLine1"], a["City"]) for a in contact["Addresses"]] == [
        ("STREET", "1 Xml Rd", "Leeds"), ("POBOX", "", "")]
    assert contact["Phones"][0] == {"PhoneType": "DEFAULT", "PhoneNumber": "0113 496 0000", "PhoneAreaCode": "",
                                    "PhoneCountryCode": ""}
    assert contact["ContactPersons"] == []


def test_a_lone_xml_item_with_nested_details(http: requests.Session, base: str) -> None:
    xml = ("<Item><Code>XML-1</Code><Name>Xml item</Name><IsSold>true</IsSold>"
           "<SalesDetails><UnitPrice>12.50</UnitPrice><AccountCode>200</AccountCode></SalesDetails></Item>")
    (item,) = put(http, f"{base}/Items", xml, content_type="text/xml")["Items"]
    assert (item["Code"], item["IsSold"], item["SalesDetails"]) == (
        "XML-1", True, {"UnitPrice": Decimal("12.50"), "AccountCode": "200"})


def test_xml_invoice_payment_credit_note_and_allocation(
        http: requests.Session, base: str, contact: dict[str, Any], invoice: dict[str, Any]) -> None:
    line = invoice["LineItems"][0]
    assert (line["Quantity"], line["UnitAmount"], line["LineAmount"], line["Tracking"]) == (
        Decimal(2), Decimal("49.95"), Decimal("99.90"), [])
    assert (invoice["Total"], invoice["Status"], invoice["DateString"]) == (
        Decimal("109.89"), "AUTHORISED", "2026-11-01T00:00:00")
    payment_xml = (f"<Payments><Payment><Invoice><InvoiceID>{invoice['InvoiceID']}</InvoiceID></Invoice>"
                   "<Account><Code>090</Code></Account><Date>2026-11-02T00:00:00</Date><Amount>9.89</Amount>"
                   "<Reference>xml pay</Reference></Payment></Payments>")
    (payment,) = put(http, f"{base}/Payments", payment_xml)["Payments"]
    assert (payment["Amount"], payment["Reference"], payment["Invoice"]["InvoiceID"]) == (
        Decimal("9.89"), "xml pay", invoice["InvoiceID"])
    note_xml = (f"<CreditNote><Type>ACCRECCREDIT</Type><Contact><ContactID>{contact['ContactID']}</ContactID>"
                "</Contact><Status>AUTHORISED</Status><LineItems><LineItem><Description>Goodwill</Description>"
                "<Quantity>1</Quantity><UnitAmount>20</UnitAmount><AccountCode>200</AccountCode>"
                "<TaxType>NONE</TaxType></LineItem></LineItems></CreditNote>")
    (note,) = put(http, f"{base}/CreditNotes", note_xml, content_type="text/xml; charset=utf-8")["CreditNotes"]
    assert note["Total"] == Decimal(20)
    allocation_xml = (f"<Allocation><Invoice><InvoiceID>{invoice['InvoiceID']}</InvoiceID></Invoice>"
                      "<AppliedAmount>20.00</AppliedAmount><Date>2026-11-03T00:00:00</Date></Allocation>")
    (allocation,) = put(http, f"{base}/CreditNotes/{note['CreditNoteID']}/Allocations", allocation_xml)["Allocations"]
    assert allocation["Amount"] == Decimal("20.00")
    after = wire.loads(http.get(f"{base}/Invoices/{invoice['InvoiceID']}", headers={"Accept": "application/json"},
                                timeout=10).content)["Invoices"][0]
    assert (after["AmountPaid"], after["AmountCredited"], after["AmountDue"]) == (
        Decimal("9.89"), Decimal("20.00"), Decimal("80.00"))


def test_xml_answers_when_accept_asks_for_xml(
        http: requests.Session, base: str, invoice: dict[str, Any]) -> None:
    answer = http.get(f"{base}/Invoices/{invoice['InvoiceID']}", headers={"Accept": "application/xml"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
    assert "X-MinLimit-Remaining" in answer.headers
    root = ET.fromstring(answer.content)
    assert (root.tag, root.findtext("Status")) == ("Response", "OK")
    (element,) = root.findall("Invoices/Invoice")
    assert element.findtext("InvoiceID") == invoice["InvoiceID"]
    assert element.findtext("Date") == "2026-11-01T00:00:00" and element.find("DateString") is None
    assert [li.findtext("LineAmount") for li in element.findall("LineItems/LineItem")] == ["99.90"]
    assert element.findtext("Contact/ContactID") == invoice["Contact"]["ContactID"]
    assert element.findtext("IsDiscounted") == "false"
    # JSON when JSON is preferred, or when Accept names neither
    for accept in ("application/json", "application/xml;q=0.5, application/json", "*/*"):
        json_answer = http.get(f"{base}/Invoices/{invoice['InvoiceID']}", headers={"Accept": accept}, timeout=10)
        assert json_answer.headers["Content-Type"].startswith("application/json"), accept


def test_xml_refusals(http: requests.Session, base: str) -> None:
    broken = put(http, f"{base}/Contacts", "<Contacts><Contact><Name>x</Name></Contacts>", status=400)
    assert broken["Type"] == "ValidationException" and "XML" in broken["Message"]
    answer = http.put(f"{base}/Contacts", data=b"<Contact><Name>  </Name></Contact>",
                      headers={"Content-Type": "application/xml", "Accept": "text/xml"}, timeout=10)
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(answer.content)
    assert (root.tag, root.findtext("ErrorNumber"), root.findtext("Type")) == (
        "ApiException", "10", "ValidationException")
    (element,) = root.findall("Elements/DataContractBase")
    assert element.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "Contact"
    assert element.findtext("ValidationErrors/ValidationError/Message") == "The contact name must be specified"
