"""A Xero document's currency is what Xero says, or the record is held (issue 23: never guess)."""

from __future__ import annotations

import pytest

from mapping import xero
from mapping.model import Invoice
from mapping.refs import RefResolver


class _Refs(RefResolver):
    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"hub-{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None


@pytest.mark.parametrize("entity_type", ["invoice", "payment", "credit_note"])
@pytest.mark.parametrize("code", [None, "", "ZZZ"])
def test_a_document_without_a_known_currency_is_refused_not_taken_for_usd(entity_type: str, code: str | None) -> None:
    data = {"InvoiceID": "i1", "CreditNoteID": "c1", "PaymentID": "p1", "CurrencyCode": code, "Status": "AUTHORISED",
            "Total": "10.00", "SubTotal": "10.00", "Amount": "10.00", "Invoice": {"InvoiceID": "i1", "CurrencyCode": code}}
    with pytest.raises(xero.MappingError, match="CurrencyCode|currency"):
        xero.to_canonical(entity_type, "x1", data, _Refs())


def test_a_stated_currency_is_read_as_stated() -> None:
    data = {"InvoiceID": "i1", "CurrencyCode": "gbp", "Status": "AUTHORISED", "Total": "10.00", "SubTotal": "10.00"}
    invoice = xero.to_canonical("invoice", "x1", data, _Refs())
    assert isinstance(invoice, Invoice) and invoice.currency == "GBP"
