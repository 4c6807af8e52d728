"""Issue 18's scenario "an EUR invoice in a USD QuickBooks and a GBP Xero" (item 7): one EUR
invoice paid in Stripe (which settles in USD), booked in both ledgers at once, read back through
the official SDKs: the invoice and its payment in EUR to the cent, each ledger's rate in its own
convention, nothing owed, the customer's balance 0 in both, and a diff that reports nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.stripe.emulator.money import FX_TO_USD
from mapping.model import Customer
from sync.diff_scratch import ScratchRefs
from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import hub_diff_is_clean


def _balances(company: Company, connection: str, customer_ids: set[str]) -> dict[str, str | None]:
    """The ledger's customer balance as the hub reads it (the official SDK, the system's mapping)."""
    connector = company.hub.connectors[connection]
    found: dict[str, str | None] = {}
    for page in connector.fetch_all("customer"):
        for record in page.records:
            if record.external_id in customer_ids:
                entity = connector.to_canonical(record, ScratchRefs(connection))
                assert isinstance(entity, Customer)
                found[record.external_id] = entity.extra.get("balance")
    return found


def test_an_eur_invoice_in_a_usd_quickbooks_and_a_gbp_xero_is_booked_in_eur_paid_and_owes_nothing(
        company: Company) -> None:
    qbo: Any = company.emus.quickbooks.emulator
    qbo.put_exchange_rate(company.qbo, {"SourceCurrencyCode": "EUR", "TargetCurrencyCode": "USD", "Rate": "1.09",
                                        "AsOfDate": "2020-01-01"})  # the company's own table, not Stripe's
    company.xero.base_currency = "GBP"  # the organisation's setting, read by the hub before its first write
    seeded = company.stripe.seed_objects({
        "customers": [{"ref": "eu", "name": "Lyon Logistique", "email": "ap@lyon.example"}],
        "invoices": [{"customer": "@eu", "currency": "eur", "status": "paid",
                      "items": [{"amount": 123_457, "description": "Annual licence"}]}]})
    assert "error" not in seeded
    (stripe_id,) = seeded["created"]["invoices"]
    stripe_invoice = company.stripe.table("invoice")[stripe_id]
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0, summary.errors

    # QuickBooks (home USD): invoice and payment in EUR, the rate USD per EUR
    (q_inv,) = [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == stripe_invoice["number"]]
    (q_pay,) = [p for p in company.qbo.table("Payment").values()
                if any(t.get("TxnId") == q_inv["Id"] for line in p["Line"] for t in line.get("LinkedTxn", []))]
    assert q_inv["CurrencyRef"]["value"] == q_pay["CurrencyRef"]["value"] == "EUR"
    assert q_inv["TotalAmt"] == q_pay["TotalAmt"] == Decimal("1234.57") and q_inv["Balance"] == 0
    # Stripe settled in USD, the home currency: its USD per EUR is QuickBooks' own direction
    assert q_pay["ExchangeRate"] == FX_TO_USD["eur"] and q_inv["ExchangeRate"] > 0
    # Xero (base GBP): in EUR, no rate sent (Stripe's is USD per EUR, no GBP pair): Xero's own stands
    (x_inv,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == stripe_invoice["number"]]
    (x_pay,) = [p for p in company.xero.table("Payments").values()
                if p.get("Invoice", {}).get("InvoiceID") == x_inv["InvoiceID"] and p["Status"] != "DELETED"]
    assert x_inv["CurrencyCode"] == "EUR" and x_inv["Total"] == x_pay["Amount"] == Decimal("1234.57")
    assert x_inv["Status"] == "PAID" and x_inv["AmountDue"] == 0
    assert x_pay["CurrencyRate"] == x_inv["CurrencyRate"] != 1

    # the customer's balance, read as the hub reads it: 0 in both ledgers
    for connection, customer in (("quickbooks", q_inv["CustomerRef"]["value"]), ("xero", x_inv["Contact"]["ContactID"])):
        (balance,) = _balances(company, connection, {customer}).values()
        assert balance is not None and Decimal(balance) == 0, (connection, balance)
    hub_diff_is_clean(company)
