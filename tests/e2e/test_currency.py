"""Foreign exchange as Xero books it (issue 18, currency): Stripe charges settle in USD at the
emulator's fixed rates; Xero's CurrencyRate is foreign units per base unit and only a document in
a foreign currency has one. Read back through Xero's own API shapes, to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.stripe.emulator.money import FX_TO_USD
from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import balances_as_stripe, hub_diff_is_clean


def _paid_invoices(company: Company, currency: str, amounts: list[int]) -> list[str]:
    seeded = company.stripe.seed_objects({
        "customers": [{"ref": "fx", "name": f"{currency} buyer", "email": f"ap@{currency}.example"}],
        "invoices": [{"customer": "@fx", "currency": currency, "status": "paid",
                      "items": [{"amount": amount, "description": "Licence"}]} for amount in amounts]})
    assert "error" not in seeded
    return list(seeded["created"]["invoices"])


def _owes_nothing(company: Company, *stripe_invoices: str) -> None:
    """Each invoice's customer owes nothing in either ledger, and ``hub diff`` is quiet."""
    for invoice in stripe_invoices:
        assert balances_as_stripe(company, company.stripe.table("invoice")[invoice]["customer"]) == 0
    hub_diff_is_clean(company)


def _xero_payment_of(company: Company, stripe_invoice: str) -> tuple[dict[str, Any], dict[str, Any]]:
    number = company.stripe.table("invoice")[stripe_invoice]["number"]
    (invoice,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
    (payment,) = [p for p in company.xero.table("Payments").values()
                  if p.get("Invoice", {}).get("InvoiceID") == invoice["InvoiceID"] and p["Status"] != "DELETED"]
    return invoice, payment


def _settled_usd(company: Company, stripe_invoice: str) -> Decimal:
    """What Stripe banked for the invoice, in USD (its balance transaction's amount)."""
    intent = company.stripe.table("payment_intent")[company.stripe.paid_intent_of(stripe_invoice)]
    charge = company.stripe.table("charge")[intent["latest_charge"]]
    return Decimal(company.stripe.table("balance_transaction")[charge["balance_transaction"]]["amount"]) / 100


def test_a_foreign_payment_in_a_usd_organisation_carries_the_inverse_of_stripes_rate(company: Company) -> None:
    (eur_invoice,) = _paid_invoices(company, "eur", [10000])
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    invoice, payment = _xero_payment_of(company, eur_invoice)
    expected_rate = (1 / FX_TO_USD["eur"]).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert payment["CurrencyRate"] == expected_rate  # EUR per USD, never Stripe's USD per EUR
    assert payment["Amount"] == Decimal("100.00")
    assert payment["BankAmount"] == _settled_usd(company, eur_invoice) == Decimal("108.00")
    assert invoice["Status"] == "PAID" and invoice["AmountDue"] == 0
    _owes_nothing(company, eur_invoice)


def test_a_gbp_organisation_banks_a_gbp_payment_at_par_and_leaves_a_eur_rate_to_xero(company: Company) -> None:
    company.xero.base_currency = "GBP"  # the organisation's own setting; the hub reads it from Organisation
    gbp_invoice, eur_invoice = _paid_invoices(company, "gbp", [50000]) + _paid_invoices(company, "eur", [10000])
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0

    invoice, payment = _xero_payment_of(company, gbp_invoice)
    # Stripe's 1.27 (USD per GBP) sent here once banked 500.00 GBP as 393.70
    assert payment["CurrencyRate"] == 1 and payment["Amount"] == payment["BankAmount"] == Decimal("500.00")
    assert invoice["CurrencyRate"] == 1 and invoice["Status"] == "PAID" and invoice["AmountDue"] == 0

    invoice, payment = _xero_payment_of(company, eur_invoice)
    # Stripe settled in USD: no EUR/GBP rate is known, so none is sent and Xero's day rate stands
    assert payment["CurrencyRate"] == invoice["CurrencyRate"] != 1
    assert invoice["Status"] == "PAID" and invoice["AmountDue"] == 0
    _owes_nothing(company, gbp_invoice, eur_invoice)


def test_the_organisation_refuses_a_rate_on_a_base_currency_document(company: Company) -> None:
    """The emulator holds the hub to Xero's rule rather than absorbing a wrong rate."""
    from connectors.xero.emulator.validation import Invalid

    emulator: Any = company.emus.xero.emulator
    tenant = company.xero
    (contact,) = emulator.seed_now({"Contacts": [{"Name": "Par buyer"}]})["Contacts"]
    try:
        emulator.seed_now({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "CurrencyCode": "USD",
                                         "CurrencyRate": "1.27", "LineItems": [
                                             {"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}]}]})
    except Invalid as exc:
        assert "base currency (USD)" in str(exc)
    else:
        raise AssertionError("a rate on a base-currency invoice was accepted")
    assert tenant.base_currency == "USD"


def _qbo_payment_of(company: Company, stripe_invoice: str) -> tuple[dict[str, Any], dict[str, Any]]:
    number = company.stripe.table("invoice")[stripe_invoice]["number"]
    (invoice,) = [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number]
    (payment,) = [p for p in company.qbo.table("Payment").values()
                  if any(t.get("TxnId") == invoice["Id"] for line in p.get("Line") or []
                         for t in line.get("LinkedTxn") or [])]
    return invoice, payment


def _gbp_company(company: Company) -> Any:
    from connectors.quickbooks.emulator.store import set_preferences

    qbo: Any = company.emus.quickbooks.emulator
    realm = company.qbo
    realm.home_currency = "GBP"  # the company's own preference, which the hub reads
    set_preferences(realm)
    realm.table("ExchangeRate").clear()  # the seeded USD company's rates are for another pair
    for code, rate in (("EUR", "0.86"), ("USD", "0.79")):  # the company's own FX table
        qbo.put_exchange_rate(realm, {"SourceCurrencyCode": code, "TargetCurrencyCode": "GBP", "Rate": rate,
                                      "AsOfDate": "2020-01-01"})
    return realm


def test_a_gbp_quickbooks_company_posts_foreign_payments_at_its_own_rate_and_home_ones_at_par(
        company: Company) -> None:
    _gbp_company(company)
    gbp_invoice, eur_invoice = _paid_invoices(company, "gbp", [50000]) + _paid_invoices(company, "eur", [10000])
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0

    invoice, payment = _qbo_payment_of(company, gbp_invoice)
    assert invoice["CurrencyRef"]["value"] == "GBP" and invoice["ExchangeRate"] == 1
    assert payment["ExchangeRate"] == 1 and payment["TotalAmt"] == Decimal("500.00") and invoice["Balance"] == 0

    invoice, payment = _qbo_payment_of(company, eur_invoice)
    # Stripe settled in USD at 1.08 USD per EUR: that is no GBP rate, so the company's own stands
    assert payment["ExchangeRate"] == invoice["ExchangeRate"] == Decimal("0.86")
    assert payment["TotalAmt"] == Decimal("100.00") and invoice["Balance"] == 0
    _owes_nothing(company, gbp_invoice, eur_invoice)


def test_a_configured_home_currency_the_company_contradicts_stops_quickbooks_before_any_write(
        company: Company, tmp_path: Any) -> None:
    from sync.config import load_config
    from sync.runtime import Hub

    _gbp_company(company)
    text = company.config_path.read_text().replace('system = "quickbooks"', 'system = "quickbooks"\nhome_currency = "USD"', 1)
    company.config_path.write_text(text)
    hub = Hub.from_config(load_config(company.config_path))
    try:
        before = len(company.qbo.table("Invoice"))
        _paid_invoices(company, "gbp", [50000])
        summary = hub.engine.sync()
        assert any("home_currency = 'USD'" in e and "GBP" in e for e in summary.errors), summary.errors
        assert len(company.qbo.table("Invoice")) == before
    finally:
        hub.close()
