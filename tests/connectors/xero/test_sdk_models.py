"""The emulator's answers deserialize into xero-python's strict models (MS dates, enums,
Decimals) — what any SDK user, not just our raw-JSON reader, would see."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator


def test_sdk_models_deserialize_emulator_answers(emu: XeroEmulator, connector: XeroConnector) -> None:
    contact = emu.seed_now({"Contacts": [{"Name": "Model Co"}]})["Contacts"][0]
    emu.seed_now({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "Status": "AUTHORISED",
                                "LineAmountTypes": "Inclusive", "CurrencyCode": "EUR", "CurrencyRate": "0.9",
                                "LineItems": [{"Description": "x", "Quantity": "3", "UnitAmount": "3.33",
                                               "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    invoice_id = emu.live("Invoices")[0]["InvoiceID"]
    emu.seed_now({"Payments": [{"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"},
                                "Amount": "9.99", "Date": "2026-11-02"}]})
    api, tenant = connector.client.accounting, connector.client.tenant_id
    connector.client.tokens.refresh_credentials()
    invoices = api.get_invoices(tenant, page=1, page_size=10).invoices
    (invoice,) = invoices
    assert str(getattr(invoice.status, "value", invoice.status)) == "PAID" and isinstance(invoice.updated_date_utc, datetime)
    # Inclusive 20%: 9.99 gross -> tax 1.67, subtotal 8.32 (computed by the emulator)
    assert (invoice.total, invoice.total_tax, invoice.sub_total) == (Decimal("9.99"), Decimal("1.67"),
                                                                      Decimal("8.32"))
    assert invoice.currency_rate == Decimal("0.9")
    (payment,) = api.get_payments(tenant).payments
    assert payment.amount == Decimal("9.99") and payment.date.isoformat() == "2026-11-02"
    (model,) = api.get_contacts(tenant, page=1).contacts
    assert str(getattr(model.contact_status, "value", model.contact_status)) == "ACTIVE"
    connections = connector.client.identity.get_connections()
    assert connections[0].tenant_id == tenant
