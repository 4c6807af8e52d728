"""An organisation's tax rates as Xero's ``TaxRates`` endpoint gives them (spec: TaxRate with its
``TaxComponents``, ``EffectiveRate``, ``ReportTaxType``), and the set-up of a GST organisation.

Every rate's ``TaxType`` is the code a line item names. A rate may have several components (a
US organisation's "NY State and City", a Canadian "GST + PST (BC)"): its effective rate is their
sum when none is compound, which is all Stripe's rates can be (each applies to the line amount).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.store import Tenant


def tax_rate(tax_type: str, name: str, components: Sequence[tuple[str, str]], *, report: str = "OUTPUT",
             revenue: bool = True) -> dict[str, Any]:
    """One TaxRate record: ``components`` as (name, percent), none compound."""
    rate = sum((Decimal(pct) for _n, pct in components), Decimal(0))
    return {"Name": name, "TaxType": tax_type, "Status": "ACTIVE", "ReportTaxType": report,
            "CanApplyToRevenue": revenue, "CanApplyToExpenses": not revenue,
            "DisplayTaxRate": rate, "EffectiveRate": rate,
            "TaxComponents": [{"Name": n, "Rate": Decimal(pct), "IsCompound": False, "IsNonRecoverable": False}
                              for n, pct in components]}


def add_tax_rate(tenant: Tenant, tax_type: str, name: str, components: Sequence[tuple[str, str]],
                 **options: Any) -> None:
    tenant.table("TaxRates")[tax_type] = tax_rate(tax_type, name, components, **options)


# An Australian organisation's GST rates (Xero's AU tax types): GST on Income 10 %, GST free
# income, GST-free exports, input-taxed sales, BAS excluded, GST on expenses (purchases only).
AU_RATES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("OUTPUT", "GST on Income", "10", "OUTPUT", True),
    ("EXEMPTOUTPUT", "GST Free Income", "0", "EXEMPTOUTPUT", True),
    ("EXEMPTEXPORT", "GST Free Exports", "0", "EXEMPTEXPORT", True),
    ("INPUTTAXED", "Input Taxed", "0", "INPUTTAXED", True),
    ("BASEXCLUDED", "BAS Excluded", "0", "BASEXCLUDED", True),
    ("INPUT", "GST on Expenses", "10", "INPUT", False),
)


def make_gst_organisation(tenant: Tenant, country: str = "AU", base_currency: str = "AUD") -> None:
    """Turn ``tenant`` into an Australian organisation: its country, base currency and GST rates
    in place of the default ones. ``NONE`` stays (the hub's untaxed refund and fee lines use it
    unless configured otherwise)."""
    if country.upper() != "AU":
        raise ValueError(f"no GST set-up for {country!r}: only AU")
    tenant.country_code, tenant.base_currency = "AU", base_currency.upper()
    none = tenant.table("TaxRates").get("NONE")
    tenant.data["TaxRates"] = {}
    for tax_type, name, percent, report, revenue in AU_RATES:
        add_tax_rate(tenant, tax_type, name, [("GST", percent)], report=report, revenue=revenue)
    if none is not None:
        tenant.table("TaxRates")["NONE"] = none


__all__ = ["AU_RATES", "add_tax_rate", "make_gst_organisation", "tax_rate"]
