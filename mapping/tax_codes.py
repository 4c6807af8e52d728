"""One mapping from a line's tax (rate, taxability reason, country) to a ledger's tax code.

Both ledgers' mappings and the push's pre-flight ask this module, so a line either gets the code
the config names or is held with a finding that names the key to add — never a guessed code.

Keys of ``[tax_codes.xero]`` / ``[tax_codes.quickbooks]`` (documented in config.example.toml)::

    RATE                       "20"                  any line at 20 % whose reason is standard,
                                                     reduced or unknown
    RATE/TREATMENT             "0/zero_rated"        a treatment at that rate
    RATE/TREATMENT/COUNTRY     "0/reverse_charge/DE" ... in one country (ISO 3166-1 alpha-2)
    RATE/TREATMENT/US-STATE    "8.875/standard/US-NY" ... in one US state

RATE is a plain percent ("20", "5.5", never "20.0"). TREATMENT is one of ``TREATMENTS``, the
boxes of a VAT/GST return, which Stripe's ``taxability_reason`` values fall into (``REASONS``).
The most specific key wins. A rate-only key never catches a zero-rated, exempt, reverse-charge,
out-of-scope or not-collecting line: those land in different boxes of the return, so each needs
its own key. A manual Stripe tax rate reports no reason (``not_available``); the rate's
``metadata[taxability_reason]`` gives one, and a positive rate without it counts as standard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from mapping.model import InvoiceLine

TREATMENTS = ("standard", "reduced", "zero_rated", "exempt", "reverse_charge", "out_of_scope",
              "not_collecting")
# Stripe's taxability_reason values (invoice line ``taxes[]``) -> the return box they land in
REASONS: dict[str, str] = {
    "standard_rated": "standard", "portion_standard_rated": "standard",
    "proportionally_rated": "standard", "taxable_basis_reduced": "standard",
    "reduced_rated": "reduced", "portion_reduced_rated": "reduced",
    "zero_rated": "zero_rated",
    "customer_exempt": "exempt", "product_exempt": "exempt", "product_exempt_holiday": "exempt",
    "portion_product_exempt": "exempt",
    "reverse_charge": "reverse_charge",
    "not_subject_to_tax": "out_of_scope", "not_supported": "out_of_scope",
    "not_collecting": "not_collecting",
}
# treatments a rate-only key may stand for (the rate alone tells their box)
_PLAIN = frozenset({None, "standard", "reduced"})


class TaxCodeMissing(ValueError):
    """No configured code fits a line; the message names the key to add."""


def rate_text(rate: Decimal | None) -> str:
    """A percent as keys write it: "20", "5.5", "0"."""
    text = format((rate or Decimal(0)).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def treatment(reason: str | None, rate: Decimal | None) -> str | None:
    """The return box of a line: its reason's (a treatment name is taken as itself), else
    standard for a positive rate, else unknown (None)."""
    if reason in TREATMENTS:
        return reason
    if reason and reason in REASONS:
        return REASONS[reason]
    return "standard" if rate is not None and rate > 0 else None


@dataclass(frozen=True, slots=True)
class LineTax:
    """What picks a line's code."""

    rate: Decimal
    treatment: str | None
    country: str | None = None
    state: str | None = None

    @classmethod
    def of(cls, line: InvoiceLine) -> LineTax:
        rate = line.tax_rate or Decimal(0)
        return cls(rate, treatment(line.tax_reason, line.tax_rate),
                   line.tax_country.upper() if line.tax_country else None,
                   line.tax_state.upper() if line.tax_state else None)

    def candidates(self) -> list[str]:
        """Config keys that fit, most specific first."""
        rate = rate_text(self.rate)
        keys: list[str] = []
        if self.treatment is not None:
            if self.country and self.state:
                keys.append(f"{rate}/{self.treatment}/{self.country}-{self.state}")
            if self.country:
                keys.append(f"{rate}/{self.treatment}/{self.country}")
            keys.append(f"{rate}/{self.treatment}")
        if self.treatment in _PLAIN:
            keys.append(rate)
        return keys

    def describe(self) -> str:
        where = f" in {self.country}{'-' + self.state if self.state else ''}" if self.country else ""
        kind = self.treatment.replace("_", "-") if self.treatment else "untreated"
        return f"a {rate_text(self.rate)}% {kind} line{where}"


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid tax-code key (config validation), or None."""
    parts = key.split("/")
    rate = parts[0]
    try:
        number = Decimal(rate)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0 or rate_text(number) != rate:
        return "a tax rate is a percent written plainly, e.g. \"20\" or \"5.5\""
    if len(parts) > 3:
        return "a key is RATE, RATE/TREATMENT or RATE/TREATMENT/COUNTRY, e.g. \"0/zero_rated/GB\""
    if len(parts) >= 2 and parts[1] not in TREATMENTS:
        return f"unknown treatment {parts[1]!r}; known are {', '.join(TREATMENTS)}"
    if len(parts) == 3:
        country, _, state = parts[2].partition("-")
        if len(country) != 2 or not country.isalpha() or not country.isupper() or (
                state and not (state.isalnum() and state.isupper() and len(state) <= 3)):
            return "a country is ISO 3166-1 alpha-2 in capitals (\"GB\"), a US state \"US-NY\""
    return None


class TaxCodes:
    """A ledger's configured table (``[tax_codes.<system>]``) and the lookup both mappings use."""

    def __init__(self, table: Mapping[str, str], system: str) -> None:
        self.table = dict(table)
        self.system = system

    def __bool__(self) -> bool:
        return bool(self.table)

    def find(self, tax: LineTax) -> str | None:
        return next((self.table[key] for key in tax.candidates() if key in self.table), None)

    def code_for(self, line: InvoiceLine) -> str:
        tax = LineTax.of(line)
        code = self.find(tax)
        if code is None:
            raise TaxCodeMissing(self.missing_message(tax))
        return code

    def missing_message(self, tax: LineTax) -> str:
        rate = rate_text(tax.rate)
        wanted = f"{rate}/{tax.treatment}" if tax.treatment else rate
        also = f" (or \"{rate}\" for every such rate)" if tax.treatment in _PLAIN and tax.treatment else ""
        return (f"no {self.system} tax code for {tax.describe()}: add \"{wanted}\" = \"<code>\"{also} "
                f"under [tax_codes.{self.system}] in the config")

    def first_missing(self, lines: Iterable[InvoiceLine]) -> str | None:
        """The message for the first line no key fits, or None when every line has a code."""
        for line in lines:
            tax = LineTax.of(line)
            if self.find(tax) is None:
                return self.missing_message(tax)
        return None


__all__ = ["REASONS", "TREATMENTS", "LineTax", "TaxCodeMissing", "TaxCodes", "key_problem", "rate_text",
           "treatment"]
