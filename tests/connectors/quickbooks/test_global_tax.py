"""The QuickBooks emulator as a company outside the US (issue 18, item 6): Intuit's global tax
model (TaxCodeRef per line, TxnTaxDetail.TaxLine per rate, GlobalTaxCalculation,
TaxInclusiveAmt), and what such a company refuses: a tax code it does not have, a line with no
VAT code, a negative invoice, a foreign currency with multicurrency off. Through the SDK over
HTTP; and the connector's own mapping of a GB invoice, read back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.base import InvalidError
from connectors.quickbooks.emulator.store import make_vat_company
from mapping.exact_json import dumps
from mapping.model import Invoice, InvoiceLine, Money
from tests.connectors.quickbooks.conftest import QboEnv


def _vat(env: QboEnv, *, multicurrency: bool = True) -> str:
    env.on_loop(lambda: make_vat_company(env.realm, "GB", "GBP", multicurrency=multicurrency))
    (customer,) = env.seed(Customer=[{"DisplayName": "London Ltd"}])["Customer"]
    return str(customer)


def _code(env: QboEnv, name: str) -> str:
    return next(c["Id"] for c in env.table("TaxCode").values() if c["Name"] == name)


def _create(env: QboEnv, body: dict[str, Any]) -> dict[str, Any]:
    connector = env.connector()
    answer: dict[str, Any] = connector.client.call(lambda qb: qb.create_object("Invoice", dumps(body)))
    return answer


def _line(amount: str, code: str | None, **detail: Any) -> dict[str, Any]:
    sales = dict(detail)
    if code is not None:
        sales["TaxCodeRef"] = {"value": code}
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": sales}


def test_a_gb_company_computes_vat_per_rate_and_takes_the_gross_of_inclusive_lines(qbo_env: QboEnv) -> None:
    customer = _vat(qbo_env)
    standard, zero = _code(qbo_env, "20.0% S"), _code(qbo_env, "0.0% Z")
    excluded = _create(qbo_env, {"CustomerRef": {"value": customer}, "GlobalTaxCalculation": "TaxExcluded",
                                 "Line": [_line("100.00", standard), _line("50.00", zero)]})["Invoice"]
    detail = {t["TaxLineDetail"]["TaxRateRef"]["name"]: (Decimal(str(t["Amount"])),
                                                        Decimal(str(t["TaxLineDetail"]["NetAmountTaxable"])))
              for t in excluded["TxnTaxDetail"]["TaxLine"]}
    assert detail == {"20.0% S": (Decimal("20.00"), Decimal("100.00")), "0.0% Z": (Decimal(0), Decimal("50.00"))}
    assert Decimal(str(excluded["TotalAmt"])) == Decimal("170.00")
    inclusive = _create(qbo_env, {"CustomerRef": {"value": customer}, "GlobalTaxCalculation": "TaxInclusive",
                                  "Line": [_line("100.00", standard, TaxInclusiveAmt="120.00")]})["Invoice"]
    assert Decimal(str(inclusive["TotalAmt"])) == Decimal("120.00")
    assert Decimal(str(inclusive["TxnTaxDetail"]["TotalTax"])) == Decimal("20.00")
    # the gross sent as Amount: a real company takes it as net and adds the VAT on top
    gross = _create(qbo_env, {"CustomerRef": {"value": customer}, "GlobalTaxCalculation": "TaxInclusive",
                              "Line": [_line("120.00", standard)]})["Invoice"]
    assert Decimal(str(gross["TotalAmt"])) == Decimal("144.00")


@pytest.mark.parametrize(("body", "expected"), [
    ({"Line": [_line("10.00", "TAX")]}, "2500"),  # US codes do not exist outside the US
    ({"Line": [_line("10.00", None)]}, "VAT rate"),
    ({"Line": [_line("10.00", "@standard")], "GlobalTaxCalculation": "Sometimes"}, "Invalid Enumeration"),
    ({"Line": [_line("10.00", "@standard"), {"DetailType": "DiscountLineDetail", "Amount": "20.00",
                                              "DiscountLineDetail": {"PercentBased": False}}]},
     "discount"),
    ({"Line": [_line("-10.00", "@standard")]}, "Transaction amount must be positive"),
])
def test_a_gb_company_refuses_what_a_real_one_refuses(qbo_env: QboEnv, body: dict[str, Any], expected: str) -> None:
    customer = _vat(qbo_env)
    for line in body["Line"]:
        ref = line.get("SalesItemLineDetail", {}).get("TaxCodeRef")
        if ref and ref["value"] == "@standard":
            ref["value"] = _code(qbo_env, "20.0% S")
    with pytest.raises(InvalidError, match=expected):
        _create(qbo_env, {"CustomerRef": {"value": customer}, **body})
    assert not qbo_env.table("Invoice")


def test_a_foreign_currency_is_refused_while_multicurrency_is_off(qbo_env: QboEnv) -> None:
    customer = _vat(qbo_env, multicurrency=False)
    prefs = qbo_env.table("Preferences")["1"]["CurrencyPrefs"]
    assert prefs == {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "GBP"}}
    body = {"CustomerRef": {"value": customer}, "CurrencyRef": {"value": "EUR"}, "ExchangeRate": "0.86",
            "Line": [_line("10.00", _code(qbo_env, "20.0% S"))]}
    with pytest.raises(InvalidError, match="Multicurrency"):
        _create(qbo_env, body)
    body["CurrencyRef"] = {"value": "GBP"}
    assert _create(qbo_env, body)["Invoice"]["CurrencyRef"]["value"] == "GBP"


class _Refs:
    def __init__(self, customer: str) -> None:
        self.customer = customer

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        return f"{entity_type}-{external_id}"

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        return self.customer if entity_type == "customer" else None


def test_the_connector_codes_a_gb_invoice_from_tax_codes_and_reads_it_back(qbo_env: QboEnv) -> None:
    customer = _vat(qbo_env)
    connector = qbo_env.connector(config={"tax_codes": {"20/standard": "20.0% S", "0/zero_rated": "0.0% Z"}})
    gbp = "GBP"
    invoice = Invoice(id="inv-1", customer_id="cus-1", currency=gbp, tax_inclusive=True, number="INV-9",
                      lines=(InvoiceLine("Support", Decimal(1), Money(12000, gbp), Money(12000, gbp),
                                         tax_rate=Decimal(20), tax_amount=Money(2000, gbp), tax_inclusive=True,
                                         tax_reason="standard_rated", tax_country="GB"),),
                      subtotal=Money(12000, gbp), tax=Money(2000, gbp), total=Money(12000, gbp),
                      amount_due=Money(12000, gbp))
    body = connector.from_canonical(invoice, _Refs(customer))
    assert body["GlobalTaxCalculation"] == "TaxInclusive"
    (line,) = body["Line"][:1]
    assert (line["Amount"], line["SalesItemLineDetail"]["TaxInclusiveAmt"]) == (Decimal("100.00"), Decimal("120.00"))
    stored = _create(qbo_env, body)["Invoice"]
    assert Decimal(str(stored["TotalAmt"])) == Decimal("120.00")
    back = connector.to_canonical(_record(stored), _Refs(customer))
    assert isinstance(back, Invoice) and back.totals_consistent()
    assert [(t.rate, t.amount) for t in back.tax_lines] == [(Decimal("20"), Money(2000, gbp))]
    assert back.lines[0].amount == Money(12000, gbp)
    zero_rated = InvoiceLine("Book", Decimal(1), Money(500, gbp), Money(500, gbp), tax_rate=Decimal(0),
                             tax_amount=Money(0, gbp), tax_reason="product_exempt")
    with pytest.raises(ValueError, match='"0/exempt"'):
        connector.from_canonical(Invoice(id="inv-2", customer_id="cus-1", currency=gbp, lines=(zero_rated,),
                                         subtotal=Money(500, gbp), total=Money(500, gbp)), _Refs(customer))


def _record(obj: dict[str, Any]) -> Any:
    from connectors.base import Record

    return Record("invoice", str(obj["Id"]), obj)
