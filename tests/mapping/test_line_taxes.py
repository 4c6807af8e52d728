"""Several taxes on one line (issue 18): every tax kept from Stripe, the ledger code chosen for
the combination (never the summed rate), QuickBooks' TaxLines per component with Stripe's exact
amounts, Xero's combined rate checked against the organisation's, a part split exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mapping.model import InvoiceLine, Money, TaxLine, to_data
from mapping.postings import split
from mapping.quickbooks_tax import CompanyTaxCode, QboTax, QboTaxError, tax_detail
from mapping.stripe import to_canonical
from mapping.tax_codes import LineTax, TaxCodeMissing, TaxCodes, key_problem
from mapping.xero import MappingError, _tax_type


class Refs:
    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}:{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return None


def _tax(name: str, pct: str, amount: int, state: str | None = None, reason: str | None = None) -> TaxLine:
    return TaxLine(name, Decimal(pct), Money(amount, "CAD"), taxable_amount=Money(10000, "CAD"), reason=reason,
                   country="CA", state=state)


def _line(*taxes: TaxLine, amount: int = 10000) -> InvoiceLine:
    total = sum(t.amount.minor for t in taxes)
    return InvoiceLine("Licence", Decimal(1), Money(amount, "CAD"), Money(amount, "CAD"),
                       tax_rate=sum((t.rate for t in taxes), Decimal(0)), tax_amount=Money(total, "CAD"),
                       tax_country="CA", tax_state="BC", taxes=taxes)


GST_PST = _line(_tax("GST", "5", 500), _tax("PST", "7", 700, "BC"))


def test_combined_keys_are_valid_and_badly_formed_ones_say_why() -> None:
    for key in ("5+7/standard/CA-BC", "4+4.875", "0+5/exempt+standard", "5+7/standard"):
        assert key_problem(key) is None, key
    assert "ascending" in str(key_problem("7+5/standard"))
    assert "treatments for" in str(key_problem("5+7/standard+exempt+exempt"))
    assert "plainly" in str(key_problem("5+x"))
    assert "unknown treatment" in str(key_problem("5+7/standard+nope"))


def test_a_line_taxed_twice_is_coded_by_both_rates_never_by_their_sum() -> None:
    assert LineTax.of(GST_PST).candidates() == ["5+7/standard/CA-BC", "5+7/standard/CA", "5+7/standard", "5+7"]
    summed = TaxCodes({"12": "WRONG", "12/standard/CA-BC": "WRONG"}, "quickbooks")
    with pytest.raises(TaxCodeMissing, match=r'add "5\+7/standard"') as caught:
        summed.code_for(GST_PST)
    assert "5% and 7%" in str(caught.value)
    assert TaxCodes({"5+7/standard/CA-BC": "GST/PST BC"}, "quickbooks").code_for(GST_PST) == "GST/PST BC"
    mixed = _line(_tax("GST", "5", 500, reason="standard_rated"), _tax("PST", "0", 0, "BC", "product_exempt"))
    assert LineTax.of(mixed).candidates()[-1] == "0+5/exempt+standard"  # ascending rates, one treatment each


def test_taxes_partly_inclusive_get_no_code() -> None:
    inside = TaxLine("PST", Decimal(7), Money(700, "CAD"), inclusive=True, country="CA", state="BC")
    line = _line(_tax("GST", "5", 500), inside)
    codes = TaxCodes({"5+7": "X", "5+7/standard": "X"}, "xero")
    assert codes.find(LineTax.of(line)) is None
    assert "partly inclusive" in str(codes.first_missing([line]))


def test_stripe_lines_keep_every_tax_and_a_line_of_one_tax_is_stored_as_before() -> None:
    def entry(rate_id: str, pct: str, amount: int, state: str | None) -> dict[str, Any]:
        return {"amount": amount, "taxable_amount": 10000, "tax_behavior": "exclusive", "taxability_reason": None,
                "tax_rate_details": {"tax_rate": {"id": rate_id, "display_name": rate_id, "percentage": pct,
                                                  "country": "CA", "state": state}}}
    lines = [{"id": "il_1", "amount": 10000, "quantity": 1, "taxes": [entry("GST", "5", 500, None),
                                                                       entry("PST", "7", 700, "BC")]},
             {"id": "il_2", "amount": 10000, "quantity": 1, "taxes": [entry("GST", "5", 500, None)]}]
    invoice = to_canonical("invoice", {"id": "in_1", "object": "invoice", "currency": "cad", "status": "open",
                                       "lines": {"data": lines}, "subtotal": 20000, "total": 21700,
                                       "total_taxes": [], "amount_remaining": 21700}, Refs())
    twice, once = invoice.lines  # type: ignore[attr-defined]
    assert [(t.name, t.rate, t.amount.minor, t.state) for t in twice.taxes] == [
        ("GST", Decimal(5), 500, None), ("PST", Decimal(7), 700, "BC")]
    assert (twice.tax_rate, twice.tax_amount.minor, twice.tax_country, twice.tax_state) == (Decimal(12), 1200, "CA", "BC")
    assert once.taxes == () and once.tax_rate == Decimal(5)
    assert "taxes" not in to_data(invoice)["lines"][1]  # so its content hash is what it was


def _company() -> QboTax:
    codes = {"GST/PST BC": CompanyTaxCode("4", "GST/PST BC", (("101", Decimal(5)), ("103", Decimal(7)))),
             "HST-12": CompanyTaxCode("9", "HST-12", (("109", Decimal(12)),))}
    return QboTax(TaxCodes({"5+7/standard/CA-BC": "GST/PST BC"}, "quickbooks"), "CA", codes)


def test_quickbooks_gets_a_tax_line_per_component_with_stripes_own_amounts() -> None:
    # 5.01 + 6.99: a split of 12.00 by the rates' weights would say 5.00 + 7.00
    line = _line(_tax("GST", "5", 501), _tax("PST", "7", 699, "BC"))
    detail, calculation = tax_detail([line], [0], Money(1200, "CAD"), _company(), inclusive=False)
    assert calculation == "TaxExcluded"
    assert [(t["TaxLineDetail"]["TaxRateRef"]["value"], t["Amount"], t["TaxLineDetail"]["NetAmountTaxable"])
            for t in detail["TaxLine"]] == [("101", Decimal("5.01"), Decimal("100.00")),
                                            ("103", Decimal("6.99"), Decimal("100.00"))]


def test_a_quickbooks_code_of_other_rates_holds_the_line() -> None:
    company = _company()
    wrong = QboTax(TaxCodes({"5+7/standard/CA-BC": "HST-12"}, "quickbooks"), "CA", company.company_codes)
    with pytest.raises(QboTaxError, match=r"rates 12% .* taxed 5% \+ 7%"):
        tax_detail([GST_PST], [0], Money(1200, "CAD"), wrong, inclusive=False)


def test_xero_needs_an_organisation_rate_with_one_component_per_tax() -> None:
    table = {"5+7/standard/CA-BC": "TAX001"}
    assert _tax_type(GST_PST, table, {"TAX001": (Decimal(7), Decimal(5))}) == "TAX001"
    with pytest.raises(MappingError, match=r"components 12% .* taxed 5% \+ 7%"):
        _tax_type(GST_PST, table, {"TAX001": (Decimal(12),)})
    with pytest.raises(MappingError, match="unknown to the hub"):
        _tax_type(GST_PST, table, None)


def test_a_part_of_a_line_taxed_twice_splits_each_tax_exactly() -> None:
    lines = [_line(_tax("GST", "5", 500), _tax("PST", "7", 700, "BC"))]
    for amount in (1, 3333, 5000, 11200):
        part, rest = split(lines, Money(amount, "CAD"))
        for pieces in (part, rest):
            for piece in pieces:
                assert sum(t.amount.minor for t in piece.taxes) == (piece.tax_amount.minor if piece.tax_amount else 0)
        assert [sum(t.amount.minor for p in part + rest for t in p.taxes if t.name == n) for n in ("GST", "PST")] \
            == [500, 700]
