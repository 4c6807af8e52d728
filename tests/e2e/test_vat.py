"""VAT as a UK accountant needs it (issue 18, item 2): a GB VAT QuickBooks company and a GBP Xero
organisation get 20 % exclusive, 20 % inclusive, zero-rated and reverse-charge lines with the
right tax code per line, the rate detail, inclusive lines net with their gross beside them, the
customer's VAT number, totals to the penny, and ``hub diff`` finds nothing. A rate no code is
configured for is held with a finding naming the key to add; a US sales-tax invoice books as
before. Stripe is driven through the official SDK; the ledgers are read back from the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stripe

from connectors.quickbooks.emulator.store import make_vat_company
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

TAX_CODES = """
[tax_codes.quickbooks]
"20/standard" = "20.0% S"
"0/zero_rated" = "0.0% Z"
"0/reverse_charge" = "0.0% ECS"
"0" = "No VAT"

[tax_codes.xero]
"20/standard" = "OUTPUT2"
"0/zero_rated" = "ZERORATEDOUTPUT"
"0/exempt" = "EXEMPTOUTPUT"
"0/reverse_charge" = "ECZROUTPUTSERVICES"
"""


@pytest.fixture
def uk(tmp_path: Path) -> Iterator[Company]:
    """A UK company: QuickBooks GB (VAT codes, GBP home), Xero GBP with its UK tax rates."""
    emus = start_emulators(tmp_path)
    try:
        facts = seed_company(emus, customers=0, invoices=0)
        realm = emus.quickbooks.emulator.realm(QBO_REALM)  # type: ignore[attr-defined]
        make_vat_company(realm, "GB", "GBP")
        tenant: Any = emus.xero.emulator.tenant  # type: ignore[attr-defined]
        tenant.base_currency = "GBP"
        for tax_type, name in (("ZERORATEDOUTPUT", "Zero Rated Income"),
                               ("ECZROUTPUTSERVICES", "Zero Rated EC Services")):
            xero_tax_rate(tenant, tax_type, name, [(name, "0")])
        config = tmp_path / "hub.toml"
        config.write_text(emus.config_toml(f"sqlite:///{tmp_path}/hub.db", generate_key()) + TAX_CODES)
        hub = Hub.from_config(load_config(config))
        hub.store.init()
    except Exception:
        emus.stop()
        raise
    company = Company(emus, hub, facts, config)
    yield company
    hub.close()
    emus.stop()


def xero_tax_rate(tenant: Any, tax_type: str, name: str, components: list[tuple[str, str]],
                  report: str = "OUTPUT") -> None:
    """A sales tax rate of the organisation (Xero TaxRates: its components' rates add up to the
    effective rate, none compound here)."""
    rate = sum((Decimal(r) for _n, r in components), Decimal(0))
    tenant.table("TaxRates")[tax_type] = {
        "Name": name, "TaxType": tax_type, "Status": "ACTIVE", "ReportTaxType": report,
        "CanApplyToRevenue": True, "DisplayTaxRate": rate, "EffectiveRate": rate,
        "TaxComponents": [{"Name": n, "Rate": Decimal(r), "IsCompound": False, "IsNonRecoverable": False}
                          for n, r in components]}


def with_tax_codes(company: Company, toml: str) -> None:
    """The company's hub restarted with ``toml`` (``[tax_codes.*]`` tables) added to its config."""
    company.config_path.write_text(company.config_path.read_text() + toml)
    company.hub.close()
    company.hub = Hub.from_config(load_config(company.config_path))


def _sdk(company: Company) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url}, max_network_retries=0)


def _invoice(client: stripe.StripeClient, customer: str, lines: list[tuple[int, str, str]]) -> str:
    invoice = client.v1.invoices.create(params={"customer": customer, "currency": "gbp",
                                                "collection_method": "send_invoice", "days_until_due": 30})
    assert invoice.id is not None
    for amount, description, rate in lines:
        client.v1.invoice_items.create(params={"customer": customer, "invoice": invoice.id, "amount": amount,
                                               "currency": "gbp", "description": description, "tax_rates": [rate]})
    client.v1.invoices.finalize_invoice(invoice.id)
    return invoice.id


def _rates(client: stripe.StripeClient) -> dict[str, str]:
    specs = {"standard": {"display_name": "VAT", "percentage": 20, "inclusive": False, "country": "GB",
                          "tax_type": "vat"},
             "inclusive": {"display_name": "VAT (incl.)", "percentage": 20, "inclusive": True, "country": "GB",
                           "tax_type": "vat"},
             # manual rates carry no taxability reason in Stripe: the merchant marks the rate
             "zero": {"display_name": "VAT zero rate", "percentage": 0, "inclusive": False, "country": "GB",
                      "tax_type": "vat", "metadata": {"taxability_reason": "zero_rated"}},
             "reverse": {"display_name": "Reverse charge", "percentage": 0, "inclusive": False, "country": "DE",
                         "tax_type": "vat", "metadata": {"taxability_reason": "reverse_charge"}},
             "exempt": {"display_name": "Exempt", "percentage": 0, "inclusive": False, "country": "GB",
                        "tax_type": "vat", "metadata": {"taxability_reason": "product_exempt"}}}
    return {name: str(client.v1.tax_rates.create(params=spec).id) for name, spec in specs.items()}  # type: ignore[arg-type]


def _tax_lines(qbo_inv: dict[str, Any], company: Company) -> dict[str, tuple[str, Decimal, Decimal]]:
    """QuickBooks' TaxLine per rate name: (percent, tax, net taxable)."""
    rates = company.qbo.table("TaxRate")
    return {rates[t["TaxLineDetail"]["TaxRateRef"]["value"]]["Name"]:
            (str(t["TaxLineDetail"]["TaxPercent"]), Decimal(str(t["Amount"])),
             Decimal(str(t["TaxLineDetail"]["NetAmountTaxable"])))
            for t in qbo_inv["TxnTaxDetail"]["TaxLine"]}


def _code_names(qbo_inv: dict[str, Any], company: Company) -> list[str]:
    codes = company.qbo.table("TaxCode")
    return [codes[line["SalesItemLineDetail"]["TaxCodeRef"]["value"]]["Name"]
            for line in qbo_inv["Line"] if line["DetailType"] == "SalesItemLineDetail"]


def test_uk_vat_lines_book_with_their_codes_rates_and_vat_number_in_both_ledgers(uk: Company) -> None:
    client = _sdk(uk)
    rates = _rates(client)
    london = client.v1.customers.create(params={"name": "London Ltd", "email": "ap@london.example",
                                                "address": {"country": "GB", "city": "London"}})
    berlin = client.v1.customers.create(params={
        "name": "Berlin GmbH", "email": "ap@berlin.example", "address": {"country": "DE", "city": "Berlin"},
        "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}]})
    exclusive = _invoice(client, str(london.id), [(10000, "Licence", rates["standard"]),
                                                  (5000, "Printed manual", rates["zero"])])
    inclusive = _invoice(client, str(london.id), [(12000, "Support (VAT inclusive)", rates["inclusive"])])
    reverse = _invoice(client, str(berlin.id), [(20000, "Consulting", rates["reverse"])])

    summary = uk.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0
    stripe_inv = {key: uk.stripe.table("invoice")[sid] for key, sid in
                  (("exclusive", exclusive), ("inclusive", inclusive), ("reverse", reverse))}
    assert [stripe_inv[k]["total"] for k in ("exclusive", "inclusive", "reverse")] == [17000, 12000, 20000]

    # QuickBooks GB: a code per line, the rate detail, GlobalTaxCalculation, net + gross inclusive
    q_ex = qbo_invoice(uk, stripe_inv["exclusive"]["number"])
    assert _code_names(q_ex, uk) == ["20.0% S", "0.0% Z"]
    assert q_ex["GlobalTaxCalculation"] == "TaxExcluded"
    assert _tax_lines(q_ex, uk) == {"20.0% S": ("20", Decimal("20.00"), Decimal("100.00")),
                                    "0.0% Z": ("0", Decimal("0.00"), Decimal("50.00"))}
    assert Decimal(str(q_ex["TxnTaxDetail"]["TotalTax"])) == Decimal("20.00")
    assert minor(q_ex["TotalAmt"], "GBP") == 17000
    q_in = qbo_invoice(uk, stripe_inv["inclusive"]["number"])
    (line,) = [ln for ln in q_in["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    assert q_in["GlobalTaxCalculation"] == "TaxInclusive"
    assert Decimal(str(line["Amount"])) == Decimal("100.00")  # net: a gross Amount would get VAT added
    assert Decimal(str(line["SalesItemLineDetail"]["TaxInclusiveAmt"])) == Decimal("120.00")
    assert _tax_lines(q_in, uk) == {"20.0% S": ("20", Decimal("20.00"), Decimal("100.00"))}
    assert minor(q_in["TotalAmt"], "GBP") == 12000
    q_rc = qbo_invoice(uk, stripe_inv["reverse"]["number"])
    assert _code_names(q_rc, uk) == ["0.0% ECS"] and minor(q_rc["TotalAmt"], "GBP") == 20000
    assert _tax_lines(q_rc, uk) == {"0.0% ECS": ("0", Decimal("0.00"), Decimal("200.00"))}
    (qbo_berlin,) = [c for c in uk.qbo.table("Customer").values() if c["DisplayName"] == "Berlin GmbH"]
    assert qbo_berlin["PrimaryTaxIdentifier"] == "DE123456789"

    # Xero GBP: TaxType per reason, exact TaxAmount, the contact's VAT number
    x_ex = xero_invoice(uk, stripe_inv["exclusive"]["number"])
    assert [(li["TaxType"], Decimal(str(li["TaxAmount"]))) for li in x_ex["LineItems"]] == [
        ("OUTPUT2", Decimal("20.00")), ("ZERORATEDOUTPUT", Decimal("0.00"))]
    x_in = xero_invoice(uk, stripe_inv["inclusive"]["number"])
    assert x_in["LineAmountTypes"] == "Inclusive"
    assert [(li["TaxType"], Decimal(str(li["TaxAmount"]))) for li in x_in["LineItems"]] == [
        ("OUTPUT2", Decimal("20.00"))]
    x_rc = xero_invoice(uk, stripe_inv["reverse"]["number"])
    assert [li["TaxType"] for li in x_rc["LineItems"]] == ["ECZROUTPUTSERVICES"]
    for key, x_inv in (("exclusive", x_ex), ("inclusive", x_in), ("reverse", x_rc)):
        assert minor(x_inv["Total"], "GBP") == stripe_inv[key]["total"]
        assert minor(x_inv["TotalTax"], "GBP") == sum(t["amount"] for t in stripe_inv[key]["total_taxes"])
    (xero_berlin,) = [c for c in uk.xero.table("Contacts").values() if c["Name"] == "Berlin GmbH"]
    assert xero_berlin["TaxNumber"] == "DE123456789"

    # the canonical lines keep what a return needs
    hub_id = canonical(uk, "stripe", "invoice", reverse)
    with uk.hub.store.transaction() as tx:
        stored = tx.get_entity(hub_id)
    assert stored is not None
    (rc_line,) = stored.entity().lines  # type: ignore[attr-defined]
    assert (rc_line.tax_reason, rc_line.tax_country, rc_line.tax_rate) == ("reverse_charge", "DE", Decimal(0))

    # London owes both its invoices (170.00 + 120.00), Berlin its 200.00, VAT included, in each ledger
    assert balances_of(uk, str(london.id), "GBP") == (29000, 29000)
    assert balances_of(uk, str(berlin.id), "GBP") == (20000, 20000)
    hub_diff_is_clean(uk)


def test_a_line_with_no_configured_code_is_held_with_a_finding_naming_the_key(uk: Company) -> None:
    client = _sdk(uk)
    rates = _rates(client)
    customer = client.v1.customers.create(params={"name": "Bookshop Ltd", "email": "ap@books.example"})
    invoice = _invoice(client, str(customer.id), [(3000, "Training (exempt)", rates["exempt"])])
    uk.hub.engine.sync()
    number = uk.stripe.table("invoice")[invoice]["number"]
    assert [i for i in uk.qbo.table("Invoice").values() if i.get("DocNumber") == number] == []
    hub_id = canonical(uk, "stripe", "invoice", invoice)
    with uk.hub.store.transaction() as tx:
        details = [f.detail for f in tx.list_findings(status="open") if f.canonical_id == hub_id]
    assert any('"0/exempt"' in d and "[tax_codes.quickbooks]" in d for d in details), details
    assert xero_invoice(uk, number)["LineItems"][0]["TaxType"] == "EXEMPTOUTPUT"  # Xero has the key


def test_a_us_sales_tax_invoice_books_as_before(company: Company) -> None:
    # a US Xero organisation's sales tax is a rate the merchant made (TaxType TAX001 ...)
    xero_tax_rate(company.xero, "TAX001", "NY State and City", [("NY sales tax", "8.875")])
    with_tax_codes(company, '\n[tax_codes.xero]\n"8.875/standard/US-NY" = "TAX001"\n')
    client = _sdk(company)
    rate = client.v1.tax_rates.create(params={"display_name": "NY sales tax", "percentage": 8.875,
                                              "inclusive": False, "country": "US", "state": "NY",
                                              "tax_type": "sales_tax"})
    customer = client.v1.customers.create(params={"name": "Brooklyn Inc", "email": "ap@brooklyn.example"})
    invoice = client.v1.invoices.create(params={"customer": str(customer.id), "currency": "usd",
                                                "collection_method": "send_invoice", "days_until_due": 30})
    assert invoice.id is not None
    client.v1.invoice_items.create(params={"customer": str(customer.id), "invoice": invoice.id, "amount": 10000,
                                           "currency": "usd", "description": "Widgets", "tax_rates": [str(rate.id)]})
    client.v1.invoice_items.create(params={"customer": str(customer.id), "invoice": invoice.id, "amount": 2500,
                                           "currency": "usd", "description": "Shipping"})
    client.v1.invoices.finalize_invoice(invoice.id)
    company.hub.engine.sync()
    stripe_inv = company.stripe.table("invoice")[invoice.id]
    q = qbo_invoice(company, stripe_inv["number"])
    assert [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in q["Line"]
            if ln["DetailType"] == "SalesItemLineDetail"] == ["TAX", "NON"]
    assert Decimal(str(q["TxnTaxDetail"]["TotalTax"])) == Decimal("8.88")
    assert "TaxLine" not in q["TxnTaxDetail"] and q.get("GlobalTaxCalculation") is None
    assert minor(q["TotalAmt"], "USD") == stripe_inv["total"] == 13388
    x = xero_invoice(company, stripe_inv["number"])
    assert [(li["TaxType"], minor(li["TaxAmount"], "USD")) for li in x["LineItems"]] == [("TAX001", 888), ("NONE", 0)]
    assert minor(x["Total"], "USD") == 13388 and minor(x["TotalTax"], "USD") == 888
    assert balances_of(company, str(customer.id)) == (13388, 13388)
    hub_diff_is_clean(company)
