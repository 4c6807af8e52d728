"""mapping/salesforce.py: exact money, references through the resolver, both directions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mapping import salesforce as m
from mapping.model import Customer, Invoice, Money
from tests.connectors.salesforce.test_reads import FakeRefs


def test_account_maps_with_configured_email_field_address_and_billing_status() -> None:
    data = {"Id": "001A", "Name": "Acme", "Billing_Email__c": "ap@acme.test", "BillingStreet": "1 Road\nUnit 2",
            "BillingCity": "Leeds", "BillingCountry": "gb", "Website": "https://www.acme.test/about",
            "CurrencyIsoCode": "GBP", "Billing_Status__c": "overdue",
            "SystemModstamp": "2026-11-01T12:00:00.000+0000",
            "Contacts": [{"Email": "someone@else.test"}]}
    customer = m.account_to_customer(data, FakeRefs(), email_field="Billing_Email__c")
    assert customer.id == "customer:001A" and customer.email == "ap@acme.test"
    assert customer.address is not None and (customer.address.line2, customer.address.country) == ("Unit 2", "GB")
    assert customer.domain == "acme.test" and customer.currency == "GBP"
    assert customer.extra == {"billing_status": "overdue"}
    assert customer.updated_at == datetime(2026, 11, 1, 12, tzinfo=UTC)
    back = m.customer_to_account(customer, FakeRefs(), email_field="Billing_Email__c")
    assert back["Billing_Email__c"] == "ap@acme.test" and back["Billing_Status__c"] == "overdue"
    assert back["BillingStreet"] == "1 Road\nUnit 2"


@pytest.mark.parametrize(("amount", "currency", "minor"), [("19.99", "USD", 1999), ("1500", "JPY", 1500),
                                                            ("12.345", "KWD", 12345)])
def test_invoice_amounts_are_exact_in_minor_units(amount: str, currency: str, minor: int) -> None:
    data = {"Id": "a0B1", "Amount__c": amount, "CurrencyIsoCode": currency, "Status__c": "Paid",
            "Paid_Date__c": "2026-11-03", "Account__c": "001A", "Opportunity__c": "006B"}
    invoice = m.billing_invoice_to_invoice(data, FakeRefs())
    assert invoice.total == Money(minor, currency) and invoice.amount_paid == invoice.total
    assert invoice.status == "paid" and invoice.paid_at == datetime(2026, 11, 3, tzinfo=UTC)
    assert (invoice.customer_id, invoice.deal_id) == ("customer:001A", "deal:006B")


def test_amounts_finer_than_the_currency_or_floats_are_refused() -> None:
    with pytest.raises(m.SalesforceMappingError, match="Amount__c"):
        m.billing_invoice_to_invoice({"Id": "x", "Amount__c": "1.005", "CurrencyIsoCode": "USD"}, FakeRefs())
    with pytest.raises(m.SalesforceMappingError):
        m.billing_invoice_to_invoice({"Id": "x", "Amount__c": 1.5, "CurrencyIsoCode": "USD"}, FakeRefs())


def test_invoice_to_record_needs_a_linked_account_and_never_guesses() -> None:
    invoice = Invoice(id="inv-1", customer_id="cust-1", total=Money(1999, "EUR"), currency="EUR",
                      due_date=date(2026, 12, 1), status="open")
    with pytest.raises(m.SalesforceMappingError, match="not linked"):
        m.invoice_to_billing_invoice(invoice, FakeRefs())
    refs = FakeRefs()
    refs.links[("customer", "cust-1")] = "001A"
    body = m.invoice_to_billing_invoice(invoice, refs)
    assert (body["Account__c"], str(body["Amount__c"]), body["Status__c"], body["Due_Date__c"]) == (
        "001A", "19.99", "Open", "2026-12-01")
    assert "Opportunity__c" not in body


def test_open_opportunity_is_not_won_and_has_no_close_date() -> None:
    deal = m.opportunity_to_deal({"Id": "006A", "StageName": "Prospecting", "CloseDate": "2026-12-01",
                                  "Amount": None, "AccountId": "001A"}, FakeRefs())
    assert not deal.won and deal.closed_at is None and deal.amount == Money(0, "USD")
    assert isinstance(m.account_to_customer({"Id": "001B"}, FakeRefs()), Customer)
