"""The one tax-code table (issue 18, item 2): key syntax validated by the config, Xero's old
``tax_types`` folded into [tax_codes.xero] (refused when they disagree), the lookup by rate,
reason and country, and model payloads stored before the new tax fields hashing as before."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from mapping.model import Invoice, InvoiceLine, Money, TaxLine, content_hash, from_data, to_data
from mapping.tax_codes import LineTax, TaxCodes
from sync.config import ConfigError, parse_config

XERO = """
[connections.xero]
system = "xero"
client_id = "id"
client_secret = "secret"
tenant_id = "t"
"""


def _parse(text: str) -> object:
    return parse_config(tomllib.loads(text), env={})


@pytest.mark.parametrize(("table", "message"), [
    ('"20/standrd" = "OUTPUT2"', "unknown treatment 'standrd'"),
    ('"0/zero_rated/gb" = "X"', "ISO 3166-1 alpha-2"),
    ('"0/zero_rated/GB/x" = "X"', "RATE, RATE/TREATMENT or RATE/TREATMENT/COUNTRY"),
    ('"20.0/standard" = "X"', "percent written plainly"),
])
def test_a_bad_key_is_refused_naming_it(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _parse(f"[tax_codes.xero]\n{table}\n")
    assert str(caught.value).startswith("tax_codes.xero.")


def test_the_ledger_connection_gets_its_tax_codes_table_and_the_old_tax_types_fold_into_it() -> None:
    config = parse_config(tomllib.loads(XERO + 'tax_types = { "20" = "OUTPUT2" }\n'
                                        '[tax_codes.xero]\n"0/zero_rated" = "ZERORATEDOUTPUT"\n'), env={})
    expected = {"0/zero_rated": "ZERORATEDOUTPUT", "20": "OUTPUT2"}
    assert config.tax_codes["xero"] == expected  # what the push's pre-flight reads ...
    assert config.connections["xero"]["tax_codes"] == expected  # ... and the mapping


def test_tax_types_that_disagree_with_tax_codes_are_refused() -> None:
    with pytest.raises(ConfigError, match="tax_types is deprecated"):
        _parse(XERO + 'tax_types = { "20" = "OUTPUT" }\n[tax_codes.xero]\n"20" = "OUTPUT2"\n')
    with pytest.raises(ConfigError, match=r"under \[tax_codes.xero\]"):
        _parse(XERO + 'tax_codes = { "20" = "OUTPUT2" }\n')


def _line(rate: str, reason: str | None, country: str | None = None) -> InvoiceLine:
    return InvoiceLine("x", Decimal(1), Money(100, "GBP"), Money(100, "GBP"), tax_rate=Decimal(rate),
                       tax_reason=reason, tax_country=country)


def test_the_most_specific_key_wins_and_a_rate_alone_never_stands_for_a_zero_rated_line() -> None:
    codes = TaxCodes({"0": "NONE", "20": "OUTPUT2", "0/reverse_charge": "ECZROUTPUTSERVICES",
                      "0/reverse_charge/DE": "DE-RC"}, "xero")
    assert codes.code_for(_line("20", "standard_rated")) == "OUTPUT2"
    assert codes.code_for(_line("20", None)) == "OUTPUT2"
    assert codes.code_for(_line("0", "reverse_charge", "FR")) == "ECZROUTPUTSERVICES"
    assert codes.code_for(_line("0", "reverse_charge", "DE")) == "DE-RC"
    assert codes.code_for(_line("0", None)) == "NONE"
    with pytest.raises(ValueError, match=r'add "0/zero_rated" = "<code>" under \[tax_codes.xero\]'):
        codes.code_for(_line("0", "zero_rated"))
    assert LineTax.of(_line("5", "reduced_rated")).candidates() == ["5/reduced", "5"]


def test_payloads_without_the_new_tax_fields_hash_and_decode_as_before() -> None:
    line = InvoiceLine("x", Decimal(1), Money(100, "GBP"), Money(100, "GBP"), tax_rate=Decimal(20))
    invoice = Invoice(id="i", currency="GBP", lines=(line,),
                      tax_lines=(TaxLine("VAT", Decimal(20), Money(20, "GBP")),))
    data = to_data(invoice)
    assert "tax_reason" not in data["lines"][0] and "reason" not in data["tax_lines"][0]
    assert from_data("invoice", data) == invoice
    marked = Invoice(id="i", currency="GBP", lines=(_line("0", "zero_rated", "GB"),))
    assert content_hash(marked) != content_hash(Invoice(id="i", currency="GBP", lines=(_line("0", None),)))
    assert from_data("invoice", to_data(marked)) == marked
