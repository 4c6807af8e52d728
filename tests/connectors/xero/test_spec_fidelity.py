"""Every answer the emulator gave while the connector exercised each endpoint it uses is valid
against Xero's published OpenAPI specs (shared/specs/xero).

Spec quirk: xero_accounting.yaml does not pass openapi-spec-validator itself (string defaults
such as ``default: 'false'`` on booleans), so it is loaded with the spec check off; response
validation is unaffected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.base import Outbound
from connectors.emulation import RunningEmulator
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from mapping.model import CreditNote, Customer, Invoice, InvoiceLine, Money, Payment, Product, Refund
from tests.connectors.xero.conftest import Refs

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "xero"

# every (method, route) the connector calls; the test fails if one goes unexercised
CONNECTOR_ENDPOINTS = {
    ("GET", "/Connections"),
    ("GET", "/api.xro/2.0/Contacts"), ("PUT", "/api.xro/2.0/Contacts"), ("POST", "/api.xro/2.0/Contacts"),
    ("GET", "/api.xro/2.0/Items"), ("PUT", "/api.xro/2.0/Items"), ("POST", "/api.xro/2.0/Items"),
    ("GET", "/api.xro/2.0/Invoices"), ("PUT", "/api.xro/2.0/Invoices"), ("POST", "/api.xro/2.0/Invoices"),
    ("GET", "/api.xro/2.0/Invoices/{id}"),
    ("GET", "/api.xro/2.0/Payments"), ("PUT", "/api.xro/2.0/Payments"), ("POST", "/api.xro/2.0/Payments/{id}"),
    ("GET", "/api.xro/2.0/CreditNotes"), ("PUT", "/api.xro/2.0/CreditNotes"),
    ("POST", "/api.xro/2.0/CreditNotes"), ("GET", "/api.xro/2.0/CreditNotes/{id}"),
    ("PUT", "/api.xro/2.0/CreditNotes/{id}/Allocations"),
    ("DELETE", "/api.xro/2.0/CreditNotes/{id}/Allocations/{AllocationID}"),
}


@pytest.fixture(scope="session")
def accounting_spec() -> OpenAPI:
    from openapi_core import Config
    return OpenAPI.from_file_path(str(SPECS / "xero_accounting.yaml"), config=Config(spec_validator_cls=None))


@pytest.fixture(scope="session")
def identity_spec() -> OpenAPI:
    from openapi_core import Config
    return OpenAPI.from_file_path(str(SPECS / "xero-identity.yaml"), config=Config(spec_validator_cls=None))


def _exercise(emu: XeroEmulator, connector: XeroConnector, refs: Refs) -> None:
    cust = Customer(id="hub-c-1", name="Spec Co", email="spec@example.com")
    (c,) = connector.upsert("customer", [Outbound("customer", cust.id, connector.from_canonical(cust, refs), "k1")])
    refs.link("customer", cust.id, str(c.external_id))
    connector.upsert("customer", [Outbound("customer", cust.id, {"Name": "Spec Co 2"}, "k1b",
                                           external_id=c.external_id)])
    prod = Product(id="hub-p-1", name="Pro", sku="PRO")
    (p,) = connector.upsert("product", [Outbound("product", prod.id, connector.from_canonical(prod, refs), "k2")])
    connector.upsert("product", [Outbound("product", prod.id, {"Code": "PRO", "Name": "Pro 2"}, "k2b",
                                          external_id=p.external_id)])
    line = InvoiceLine("Pro", Decimal(2), Money(1000, "USD"), Money(2000, "USD"), tax_rate=Decimal(10),
                       tax_amount=Money(200, "USD"))
    inv = Invoice(id="hub-i-1", customer_id=cust.id, status="open", lines=(line,),
                  issued_at=datetime(2026, 11, 1, tzinfo=UTC), subtotal=Money(2000, "USD"),
                  tax=Money(200, "USD"), total=Money(2200, "USD"))
    (i,) = connector.upsert("invoice", [Outbound("invoice", inv.id, connector.from_canonical(inv, refs), "k3")])
    refs.link("invoice", inv.id, str(i.external_id))
    connector.upsert("invoice", [Outbound("invoice", inv.id, connector.from_canonical(inv, refs), "k3b",
                                          external_id=i.external_id)])
    pay = Payment(id="hub-pay-1", invoice_id=inv.id, amount=Money(1000, "USD"))
    (pm,) = connector.upsert("payment", [Outbound("payment", pay.id, connector.from_canonical(pay, refs), "k4")])
    refund = Refund(id="hub-r-1", invoice_id=inv.id, customer_id=cust.id, amount=Money(300, "USD"))
    connector.upsert("refund", [Outbound("refund", refund.id, connector.from_canonical(refund, refs), "k5")])
    credit = CreditNote(id="hub-cn-1", invoice_id=inv.id, customer_id=cust.id, currency="USD",
                        total=Money(100, "USD"), issued_at=datetime(2026, 11, 2, tzinfo=UTC),
                        lines=(InvoiceLine("Goodwill", Decimal(1), Money(100, "USD"), Money(100, "USD")),))
    (allocated,) = connector.upsert("credit_note", [Outbound(
        "credit_note", credit.id, connector.from_canonical(credit, refs), "k5c")])  # allocated to the invoice
    # the invoice while a payment and an allocated credit note are on it: Payments[] and
    # CreditNotes[] filled (issue 19), the contact with its address and phone types
    settled = connector.client.call("get_invoice", invoice_id=str(i.external_id))["Invoices"][0]
    assert settled["Payments"] and settled["CreditNotes"] and settled["AmountCredited"] > 0, settled
    connector.client.call("get_credit_note", credit_note_id=str(allocated.external_id))
    connector.client.call("get_contact", contact_id=str(c.external_id))
    connector.upsert("credit_note", [Outbound("credit_note", credit.id, {}, "k5v", external_id=allocated.external_id,
                                              operation="void")])  # its allocation deleted first
    note = {"Type": "ACCRECCREDIT", "Contact": {"ContactID": c.external_id},
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}
    (cn,) = connector.upsert("credit_note", [Outbound("credit_note", "hub-cn-x", note, "k6", attempt=2)])
    connector.upsert("credit_note", [Outbound("credit_note", "hub-cn-x", {**note, "Status": "AUTHORISED"}, "k6b",
                                              external_id=cn.external_id)])
    connector.upsert("payment", [Outbound("payment", pay.id, {}, "k7", external_id=pm.external_id,
                                          operation="delete")])
    for entity_type in connector.entity_types():
        list(connector.fetch_all(entity_type))
        list(connector.fetch_changes(entity_type, None))
    connector.lookup("customer", "hub-c-1")
    connector.client.connections()
    # an error answer is validated too
    connector.upsert("invoice", [Outbound("invoice", "hub-bad", {"Type": "ACCREC", "Contact": {
        "ContactID": c.external_id}, "LineItems": []}, "k8")])


def test_emulator_answers_match_the_published_specs(
        xero_emulator: RunningEmulator, emu: XeroEmulator, connector: XeroConnector, refs: Refs,
        accounting_spec: OpenAPI, identity_spec: OpenAPI) -> None:
    emu.captured = []
    _exercise(emu, connector, refs)
    covered: set[tuple[str, str]] = set()
    problems: list[str] = []
    for answer in emu.captured:
        spec, server, path = (identity_spec, "https://api.xero.com", "/Connections") \
            if answer["route"] in ("/connections", "/Connections") \
            else (accounting_spec, "https://api.xero.com", answer["path"])
        route = "/Connections" if spec is identity_spec else answer["route"]
        covered.add((answer["method"], route))
        request = MockRequest(server, answer["method"].lower(), path, args=dict(_query(answer["query"])),
                              headers={"xero-tenant-id": emu.tenant.tenant_id})
        response = MockResponse(answer["body"], status_code=answer["status"],
                                content_type=answer["content_type"] or "application/json")
        try:
            spec.validate_response(request, response)
        except Exception as exc:
            problems.append(f"{answer['method']} {path} {answer['status']}: {exc} {getattr(exc, '__cause__', '')}")
    assert not problems, "\n".join(problems[:5])
    missing = CONNECTOR_ENDPOINTS - covered
    assert not missing, f"endpoints the connector calls that were not validated: {sorted(missing)}"


def _query(text: str) -> list[tuple[str, Any]]:
    from urllib.parse import parse_qsl
    return parse_qsl(text)
