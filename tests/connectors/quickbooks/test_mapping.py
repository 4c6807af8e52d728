"""Mapping both ways, exact to the minor unit, plus error classification of SDK exceptions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from quickbooks import exceptions as qbe

from connectors.base import (
    AuthError,
    ConflictError,
    DuplicateError,
    InvalidError,
    RateLimited,
    RetryableError,
)
from connectors.quickbooks.errors import NotFound, classify
from mapping.model import Customer, Invoice, Money
from mapping.quickbooks import MappingError, from_canonical, marker_of, to_canonical


class Refs:
    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}:{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        prefix = entity_type + ":"
        return canonical_id[len(prefix):] if canonical_id.startswith(prefix) else None


INVOICE = {
    "Id": "130", "SyncToken": "3", "DocNumber": "1037", "TxnDate": "2026-10-30", "DueDate": "2026-11-29",
    "CustomerRef": {"value": "58", "name": "Acme"}, "CurrencyRef": {"value": "USD"},
    "Line": [
        {"Id": "1", "DetailType": "SalesItemLineDetail", "Amount": Decimal("33.33"), "Description": "Thirds",
         "SalesItemLineDetail": {"ItemRef": {"value": "7"}, "Qty": Decimal("3"), "UnitPrice": Decimal("11.11")}},
        {"Id": "2", "DetailType": "SalesItemLineDetail", "Amount": Decimal("0.10"),
         "SalesItemLineDetail": {"Qty": Decimal("3"), "UnitPrice": Decimal("0.0333333")}},
        {"DetailType": "DiscountLineDetail", "Amount": Decimal("1.01"), "DiscountLineDetail": {}},
        {"DetailType": "SubTotalLineDetail", "Amount": Decimal("33.43"), "SubTotalLineDetail": {}},
    ],
    "TxnTaxDetail": {"TotalTax": Decimal("2.68")}, "TotalAmt": Decimal("35.10"), "Balance": Decimal("10.10"),
    "MetaData": {"LastUpdatedTime": "2026-11-01T05:00:00-07:00"},
}


def test_invoice_maps_exactly_to_the_cent_and_totals_agree() -> None:
    invoice = to_canonical("invoice", INVOICE, Refs())
    assert isinstance(invoice, Invoice)
    assert invoice.customer_id == "customer:58" and invoice.number == "1037"
    assert [line.amount.minor for line in invoice.lines] == [3333, 10]
    assert invoice.lines[1].unit_amount == Money(3, "USD")  # QBO's sub-cent price, rounded half-up
    assert invoice.discounts[0].amount == Money(101, "USD")
    assert (invoice.subtotal.minor, invoice.tax.minor, invoice.total.minor) == (3343, 268, 3510)
    assert (invoice.amount_paid.minor, invoice.amount_due.minor, invoice.status) == (2500, 1010, "open")
    assert invoice.totals_consistent()
    assert invoice.updated_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_invoice_round_trip_keeps_every_amount() -> None:
    refs = Refs()
    invoice = to_canonical("invoice", INVOICE, refs)
    body = from_canonical(invoice, refs)
    assert body["CustomerRef"] == {"value": "58"}
    amounts = [line["Amount"] for line in body["Line"]]
    assert amounts == [Decimal("33.33"), Decimal("0.10"), Decimal("1.01")]
    assert all(isinstance(a, Decimal) for a in amounts)
    assert body["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "7"}
    assert body["TxnTaxDetail"] == {"TotalTax": Decimal("2.68")}
    assert body["DocNumber"] == "1037" and body["TxnDate"] == "2026-10-30"


def test_zero_decimal_currency_and_refused_fractions() -> None:
    obj = {**INVOICE, "CurrencyRef": {"value": "JPY"}, "Line": [
        {"DetailType": "SalesItemLineDetail", "Amount": Decimal("1500"), "SalesItemLineDetail": {}}],
        "TxnTaxDetail": {}, "TotalAmt": Decimal("1500"), "Balance": Decimal("1500")}
    assert to_canonical("invoice", obj, Refs()).total == Money(1500, "JPY")  # type: ignore[attr-defined]
    with pytest.raises(MappingError):
        to_canonical("invoice", {**obj, "TotalAmt": Decimal("1500.5")}, Refs())


def test_unlinked_customer_is_a_mapping_error_not_a_guess() -> None:
    invoice = Invoice(id="x", customer_id="not-linked")
    with pytest.raises(MappingError, match="not linked"):
        from_canonical(invoice, Refs())


def test_customer_round_trip_and_marker() -> None:
    refs = Refs()
    body = from_canonical(Customer(id="c", name="Ta: Da", email="a@b.example", currency="EUR"), refs)
    assert body["DisplayName"] == "Ta- Da"  # QBO refuses ':' in names
    back = to_canonical("customer", {**body, "Id": "5", "Active": False, "DisplayName": "Ta- Da (deleted)",
                                     "Notes": "hub:c"}, refs)
    assert isinstance(back, Customer)
    assert (back.name, back.email, back.currency, back.active) == ("Ta- Da", "a@b.example", "EUR", False)
    assert marker_of("customer", {"Notes": "hub:c"}) == "c"
    assert marker_of("invoice", {"PrivateNote": "Voided - hub:inv-1"}) == "inv-1"


@pytest.mark.parametrize("exc, kind", [
    (qbe.QuickbooksException("Error reading json response: <?xml version=\"1.0\"?><IntuitResponse><Fault>"
                             "<Error code=\"3001\"><Message>message=ThrottleExceeded; errorCode=003001; "
                             "statusCode=429</Message></Error></Fault></IntuitResponse>", 10000), RateLimited),
    (qbe.ValidationException("message=ThrottleExceeded", 3001), RateLimited),
    (qbe.AuthorizationException("Application authentication failed", 401, "{}"), AuthError),
    (qbe.QuickbooksException("Stale Object Error", 5010), ConflictError),
    (qbe.QuickbooksException("Duplicate Name Exists Error", 6240, "... Id=58"), DuplicateError),
    (qbe.ObjectNotFoundException("Object Not Found", 610), NotFound),
    (qbe.ValidationException("Required param missing", 2020), InvalidError),
    (qbe.SevereException("An application error has occurred", 10000), RetryableError),
    (qbe.QuickbooksException("Error reading json response: <html>502 Bad Gateway</html>", 10000), RetryableError),
])
def test_sdk_exceptions_are_classified_by_fault_code_and_message(exc: Exception, kind: type) -> None:
    error = classify(exc)
    assert type(error) is kind
    if isinstance(error, RateLimited):
        assert error.retry_after == 60.0
    if isinstance(error, DuplicateError):
        assert error.candidates == ["58"]
