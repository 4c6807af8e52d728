"""GST as Australian and Canadian accountants need it (issue 18, items 2 and 7): an AUD invoice
with 10 % GST and a GST-free line in an Australian QuickBooks company and an Australian Xero
organisation; a CAD invoice with a line taxed twice, GST 5 % and British Columbia's PST 7 %,
next to an Ontario HST line, in a Canadian QuickBooks company and a CAD Xero organisation. Each
ledger gets its code per line (the pair's combined code for the twice-taxed line), the tax per
rate to the cent, the customer's balance, and ``hub diff`` finds nothing; a line taxed twice
that no combined code fits is held, never booked at the summed rate. Stripe is driven through
the official SDK; the ledgers are read back from the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from connectors.quickbooks.emulator.store import make_vat_company
from connectors.xero.emulator.tax_rates import add_tax_rate, make_gst_organisation
from state.crypto import generate_key
from sync.config import load_config
from sync.demo import QBO_REALM, STRIPE_KEY, seed_company, start_emulators
from sync.runtime import Hub
from tests.e2e.conftest import Company
from tests.e2e.ledger_balances import (
    balances_of,
    canonical,
    hub_diff_is_clean,
    minor,
    qbo_invoice,
    xero_invoice,
)

AU_CODES = """
[tax_codes.quickbooks]
"10/standard/AU" = "GST"
"0/zero_rated/AU" = "FRE"

[tax_codes.xero]
"10/standard/AU" = "OUTPUT"
"0/zero_rated/AU" = "EXEMPTOUTPUT"
"""

CA_CODES = """
[tax_codes.quickbooks]
"5+7/standard/CA-BC" = "GST/PST BC"
"13/standard/CA-ON" = "HST ON"

[tax_codes.xero]
"5+7/standard/CA-BC" = "TAX001"
"13/standard/CA-ON" = "TAX002"
"""


def _company(tmp_path: Path, country: str, currency: str, codes: str) -> Company:
    """QuickBooks a company of ``country`` (its GST codes, ``currency`` home), Xero an
    organisation of that base currency (Australia's GST rates; for Canada the merchant's own
    GST + PST (BC) and HST (ON) rates, as a Canadian organisation on Xero's global edition makes
    them), and the hub with ``codes``."""
    emus = start_emulators(tmp_path)
    try:
        facts = seed_company(emus, customers=0, invoices=0)
        make_vat_company(emus.quickbooks.emulator.realm(QBO_REALM), country, currency)  # type: ignore[attr-defined]
        tenant: Any = emus.xero.emulator.tenant  # type: ignore[attr-defined]
        if country == "AU":
            make_gst_organisation(tenant)
        else:
            tenant.base_currency, tenant.country_code = currency, country
            tenant.table("Currencies")[currency] = {"Code": currency, "Description": "Canadian Dollar"}
            add_tax_rate(tenant, "TAX001", "GST + PST (BC)", [("GST", "5"), ("PST (BC)", "7")])
            add_tax_rate(tenant, "TAX002", "HST (ON)", [("HST", "13")])
        config = tmp_path / "hub.toml"
        config.write_text(emus.config_toml(f"sqlite:///{tmp_path}/hub.db", generate_key()) + codes)
        hub = Hub.from_config(load_config(config))
        hub.store.init()
    except Exception:
        emus.stop()
        raise
    return Company(emus, hub, facts, config)


@pytest.fixture
def au(tmp_path: Path) -> Iterator[Company]:
    company = _company(tmp_path, "AU", "AUD", AU_CODES)
    yield company
    company.hub.close()
    company.emus.stop()


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[Company]:
    company = _company(tmp_path, "CA", "CAD", CA_CODES)
    yield company
    company.hub.close()
    company.emus.stop()


def _sdk(company: Company) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url}, max_network_retries=0)


def _rate(client: stripe.StripeClient, name: str, percent: str, country: str, state: str | None = None,
          reason: str | None = None) -> str:
    params: dict[str, Any] = {"display_name": name, "percentage": percent, "inclusive": False,
                              "country": country, "tax_type": "gst" if name == "GST" else "sales_tax"}
    if state:
        params["state"] = state
    if reason:  # a manual rate carries no reason in Stripe: the merchant marks it
        params["metadata"] = {"taxability_reason": reason}
    return str(client.v1.tax_rates.create(params=params).id)  # type: ignore[arg-type]


def _invoice(client: stripe.StripeClient, customer: str, currency: str,
             lines: list[tuple[int, str, list[str]]]) -> str:
    invoice = client.v1.invoices.create(params={"customer": customer, "currency": currency,
                                                "collection_method": "send_invoice", "days_until_due": 30})
    assert invoice.id is not None
    for amount, description, rates in lines:
        client.v1.invoice_items.create(params={"customer": customer, "invoice": invoice.id, "amount": amount,
                                               "currency": currency, "description": description, "tax_rates": rates})
    client.v1.invoices.finalize_invoice(invoice.id)
    return invoice.id


def _qbo_codes(company: Company, doc: dict[str, Any]) -> list[str]:
    codes = company.qbo.table("TaxCode")
    return [codes[line["SalesItemLineDetail"]["TaxCodeRef"]["value"]]["Name"]
            for line in doc["Line"] if line["DetailType"] == "SalesItemLineDetail"]


def _qbo_tax_lines(company: Company, doc: dict[str, Any], currency: str) -> dict[str, tuple[str, int, int]]:
    """QuickBooks' TaxLine per rate name: (percent, tax, net taxable) in minor units."""
    rates = company.qbo.table("TaxRate")
    return {rates[t["TaxLineDetail"]["TaxRateRef"]["value"]]["Name"]:
            (str(t["TaxLineDetail"]["TaxPercent"]), minor(t["Amount"], currency),
             minor(t["TaxLineDetail"]["NetAmountTaxable"], currency))
            for t in doc["TxnTaxDetail"]["TaxLine"]}


def _xero_lines(doc: dict[str, Any], currency: str) -> list[tuple[str, int, int]]:
    return [(li["TaxType"], minor(li["LineAmount"], currency), minor(li["TaxAmount"], currency))
            for li in doc["LineItems"]]


def _clean_sync(company: Company) -> None:
    summary = company.hub.engine.sync()
    with company.hub.store.transaction() as tx:
        dead = [(i.entity_type, i.target, i.last_error) for i in tx.list_outbox("dead", limit=100)]
    assert summary.errors == [] and summary.totals().dead == 0, (summary.errors, dead)


def _pay(client: stripe.StripeClient, company: Company, invoice: str) -> None:
    client.v1.invoices.pay(invoice, params={"payment_method": "pm_card_visa"})
    _clean_sync(company)


def test_an_au_invoice_with_gst_and_a_gst_free_line_books_in_an_aud_quickbooks_and_xero(au: Company) -> None:
    client = _sdk(au)
    gst = _rate(client, "GST", "10", "AU")
    free = _rate(client, "GST free", "0", "AU", reason="zero_rated")
    customer = str(client.v1.customers.create(params={
        "name": "Sydney Pty Ltd", "email": "ap@sydney.example", "address": {"country": "AU", "city": "Sydney"},
        "tax_id_data": [{"type": "au_abn", "value": "12345678912"}]}).id)
    invoice = _invoice(client, customer, "aud", [(100000, "Licence", [gst]), (20000, "Export support", [free])])
    stripe_inv = au.stripe.table("invoice")[invoice]
    assert (stripe_inv["total"], sum(t["amount"] for t in stripe_inv["total_taxes"])) == (130000, 10000)

    _clean_sync(au)

    q = qbo_invoice(au, stripe_inv["number"])
    assert q["CurrencyRef"]["value"] == "AUD" and q["GlobalTaxCalculation"] == "TaxExcluded"
    assert _qbo_codes(au, q) == ["GST", "FRE"]
    assert _qbo_tax_lines(au, q, "AUD") == {"GST (sales)": ("10", 10000, 100000), "GST free": ("0", 0, 20000)}
    assert (minor(q["TxnTaxDetail"]["TotalTax"], "AUD"), minor(q["TotalAmt"], "AUD")) == (10000, 130000)
    x = xero_invoice(au, stripe_inv["number"])
    assert x["CurrencyCode"] == "AUD" and x["LineAmountTypes"] == "Exclusive"
    assert x.get("CurrencyRate") in (None, 1)  # the base currency: no rate
    assert _xero_lines(x, "AUD") == [("OUTPUT", 100000, 10000), ("EXEMPTOUTPUT", 20000, 0)]
    assert (minor(x["TotalTax"], "AUD"), minor(x["Total"], "AUD")) == (10000, 130000)
    (contact,) = [c for c in au.xero.table("Contacts").values() if c["Name"] == "Sydney Pty Ltd"]
    assert contact["TaxNumber"] == "12345678912"  # the ABN
    assert balances_of(au, customer, "AUD") == (130000, 130000)
    hub_diff_is_clean(au)

    _pay(client, au, invoice)
    assert minor(qbo_invoice(au, stripe_inv["number"])["Balance"], "AUD") == 0
    assert xero_invoice(au, stripe_inv["number"])["Status"] == "PAID"
    assert balances_of(au, customer, "AUD") == (0, 0)
    hub_diff_is_clean(au)


def test_a_ca_line_with_gst_and_pst_books_each_tax_at_its_rate_in_quickbooks_and_xero(ca: Company) -> None:
    client = _sdk(ca)
    gst, pst = _rate(client, "GST", "5", "CA"), _rate(client, "PST", "7", "CA", state="BC")
    hst = _rate(client, "HST", "13", "CA", state="ON")
    customer = str(client.v1.customers.create(params={
        "name": "Vancouver Ltd", "email": "ap@vancouver.example", "address": {"country": "CA", "state": "BC"}}).id)
    invoice = _invoice(client, customer, "cad", [(100000, "Licence (BC)", [gst, pst]),
                                                 (50000, "Training (ON)", [hst])])
    stripe_inv = ca.stripe.table("invoice")[invoice]
    assert [[t["amount"] for t in line["taxes"]] for line in stripe_inv["_lines"]] == [[5000, 7000], [6500]]
    assert stripe_inv["total"] == 168500

    _clean_sync(ca)

    # the canonical line keeps both taxes, each with its rate, amount and jurisdiction
    hub_id = canonical(ca, "stripe", "invoice", invoice)
    with ca.hub.store.transaction() as tx:
        stored = tx.get_entity(hub_id)
    assert stored is not None
    twice = stored.entity().lines[0]  # type: ignore[attr-defined]
    assert [(str(t.rate), t.amount.minor, t.country, t.state) for t in twice.taxes] == [
        ("5", 5000, "CA", None), ("7", 7000, "CA", "BC")]
    assert (str(twice.tax_rate), twice.tax_amount.minor, twice.tax_state) == ("12", 12000, "BC")

    q = qbo_invoice(ca, stripe_inv["number"])
    assert q["CurrencyRef"]["value"] == "CAD" and _qbo_codes(ca, q) == ["GST/PST BC", "HST ON"]
    # one TaxLine per rate, each tax to the cent Stripe computed, never 12 % on one line
    assert _qbo_tax_lines(ca, q, "CAD") == {"GST": ("5", 5000, 100000), "PST BC": ("7", 7000, 100000),
                                            "HST ON": ("13", 6500, 50000)}
    assert (minor(q["TxnTaxDetail"]["TotalTax"], "CAD"), minor(q["TotalAmt"], "CAD")) == (18500, 168500)
    x = xero_invoice(ca, stripe_inv["number"])
    assert _xero_lines(x, "CAD") == [("TAX001", 100000, 12000), ("TAX002", 50000, 6500)]
    assert (minor(x["TotalTax"], "CAD"), minor(x["Total"], "CAD")) == (18500, 168500)
    assert balances_of(ca, customer, "CAD") == (168500, 168500)
    hub_diff_is_clean(ca)

    _pay(client, ca, invoice)
    assert balances_of(ca, customer, "CAD") == (0, 0)
    hub_diff_is_clean(ca)

    # a refund of 500.00 reverses each tax in proportion: GST and PST apart, HST on its own
    intent = next(pid for pid, pi in ca.stripe.table("payment_intent").items() if pi.get("customer") == customer)
    refund = client.v1.refunds.create(params={"payment_intent": intent, "amount": 50000})
    _clean_sync(ca)
    refund_hub = canonical(ca, "stripe", "refund", str(refund.id))
    (receipt,) = [r for r in ca.qbo.table("RefundReceipt").values() if refund_hub in str(r.get("PrivateNote"))]
    assert _qbo_codes(ca, receipt) == ["GST/PST BC", "HST ON"]
    taxes = _qbo_tax_lines(ca, receipt, "CAD")
    assert set(taxes) == {"GST", "PST BC", "HST ON"}
    assert sum(tax for _p, tax, _n in taxes.values()) == minor(receipt["TxnTaxDetail"]["TotalTax"], "CAD")
    assert minor(receipt["TotalAmt"], "CAD") == 50000
    (note,) = [n for n in ca.xero.table("CreditNotes").values() if refund_hub in str(n.get("Reference"))]
    assert [li["TaxType"] for li in note["LineItems"]] == ["TAX001", "TAX002"]
    assert minor(note["Total"], "CAD") == 50000
    assert minor(note["TotalTax"], "CAD") == minor(receipt["TxnTaxDetail"]["TotalTax"], "CAD")
    assert balances_of(ca, customer, "CAD") == (0, 0)
    hub_diff_is_clean(ca)


def test_a_line_taxed_twice_that_no_combined_code_fits_is_held_never_booked_at_the_sum(ca: Company) -> None:
    client = _sdk(ca)
    gst, pst = _rate(client, "GST", "5", "CA"), _rate(client, "PST", "6", "CA", state="SK")  # Saskatchewan
    customer = str(client.v1.customers.create(params={"name": "Regina Ltd", "email": "ap@regina.example"}).id)
    invoice = _invoice(client, customer, "cad", [(10000, "Licence (SK)", [gst, pst])])
    ca.hub.engine.sync()
    number = ca.stripe.table("invoice")[invoice]["number"]
    assert [i for i in ca.qbo.table("Invoice").values() if i.get("DocNumber") == number] == []
    assert [i for i in ca.xero.table("Invoices").values() if i.get("InvoiceNumber") == number] == []
    hub_id = canonical(ca, "stripe", "invoice", invoice)
    with ca.hub.store.transaction() as tx:
        details = [f.detail for f in tx.list_findings(status="open") if f.canonical_id == hub_id]
    for ledger in ("quickbooks", "xero"):  # the key to add names both taxes, never "11"
        assert any('"5+6/standard"' in d and f"[tax_codes.{ledger}]" in d for d in details), details
