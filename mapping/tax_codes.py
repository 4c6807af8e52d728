"""One mapping from a line's tax (rate, taxability reason, country) to a ledger's tax code.

Both ledgers' mappings and the push's pre-flight ask this module, so a line either gets the code
the config names or is held with a finding that names the key to add — never a guessed code.

Keys of ``[tax_codes.xero]`` / ``[tax_codes.quickbooks]`` (documented in config.example.toml)::

    RATE                       "20"                  any line at 20 % whose reason is standard,
                                                     reduced or unknown
    RATE/TREATMENT             "0/zero_rated"        a treatment at that rate
    RATE/TREATMENT/COUNTRY     "0/reverse_charge/DE" ... in one country (ISO 3166-1 alpha-2)
    RATE/TREATMENT/US-STATE    "8.875/standard/US-NY" ... in one US state
    RATE+RATE/...              "5+7/standard/CA-BC"  a line taxed twice (GST 5 % and British
                                                     Columbia's PST 7 %): the code for the pair

RATE is a plain percent ("20", "5.5", never "20.0"). TREATMENT is one of ``TREATMENTS``, the
boxes of a VAT/GST return, which Stripe's ``taxability_reason`` values fall into (``REASONS``).
The most specific key wins. A rate-only key never catches a zero-rated, exempt, reverse-charge,
out-of-scope or not-collecting line: those land in different boxes of the return, so each needs
its own key. A manual Stripe tax rate reports no reason (``not_available``); the rate's
``metadata[taxability_reason]`` gives one, and a positive rate without it counts as standard.

A line with several taxes (``InvoiceLine.taxes``) is looked up by all of them, never by their sum:
its rates joined by ``+`` in ascending order (``"4+4.875"``), one treatment when every component
has it (``"5+7/standard"``) or one per component in the rates' order (``"0+5/exempt+standard"``),
and the jurisdiction they share: the country, and the state or province one of them names
(``CA-BC``: GST is Canada's, PST British Columbia's). A key for the summed rate ("12") never
catches such a line, and a line mixing inclusive and exclusive taxes gets no code at all.
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
    """What picks a line's code: its rate and treatment, or, for a line with several taxes, each
    component's (``components``, ascending), with the jurisdiction the line's tax belongs to."""

    rate: Decimal
    treatment: str | None
    country: str | None = None
    state: str | None = None
    components: tuple[tuple[Decimal, str | None], ...] = ()
    mixed_inclusive: bool = False  # some components inside the amount, some on top: no code fits

    @classmethod
    def of(cls, line: InvoiceLine) -> LineTax:
        country = line.tax_country.upper() if line.tax_country else None
        state = line.tax_state.upper() if line.tax_state else None
        if line.taxes:
            parts = tuple(sorted(((Decimal(t.rate), treatment(t.reason, Decimal(t.rate))) for t in line.taxes),
                                 key=lambda p: (p[0], p[1] or "")))
            kinds = {kind for _rate, kind in parts}
            return cls(sum((r for r, _k in parts), Decimal(0)), kinds.pop() if len(kinds) == 1 else None,
                       country, state, parts, len({t.inclusive for t in line.taxes}) > 1)
        rate = line.tax_rate or Decimal(0)
        return cls(rate, treatment(line.tax_reason, line.tax_rate), country, state)

    def rate_key(self) -> str:
        """"20", or the components' rates "5+7"."""
        return "+".join(rate_text(r) for r, _k in self.components) if self.components else rate_text(self.rate)

    def treatment_key(self) -> str | None:
        """The treatment part of a key: the one all components share, else each one's in the
        rates' order ("exempt+standard"), else None (a component's treatment is unknown)."""
        if self.treatment is not None or not self.components:
            return self.treatment
        kinds = [kind for _r, kind in self.components]
        return None if None in kinds else "+".join(str(kind) for kind in kinds)

    def plain(self) -> bool:
        """May a rate-only key stand for it (the rate alone tells the return's box)?"""
        kinds = [kind for _r, kind in self.components] if self.components else [self.treatment]
        return all(kind in _PLAIN for kind in kinds)

    def candidates(self) -> list[str]:
        """Config keys that fit, most specific first (none for mixed inclusive and exclusive)."""
        if self.mixed_inclusive:
            return []
        rate, kind = self.rate_key(), self.treatment_key()
        keys: list[str] = []
        if kind is not None:
            if self.country and self.state:
                keys.append(f"{rate}/{kind}/{self.country}-{self.state}")
            if self.country:
                keys.append(f"{rate}/{kind}/{self.country}")
            keys.append(f"{rate}/{kind}")
        if self.plain():
            keys.append(rate)
        return keys

    def describe(self) -> str:
        where = f" in {self.country}{'-' + self.state if self.state else ''}" if self.country else ""
        kind = self.treatment_key()
        kind = kind.replace("_", "-") if kind else "untreated"
        if self.components:
            rates = " + ".join(f"{rate_text(r)}%" for r, _k in self.components)
            return f"a line taxed {rates} ({kind}){where}"
        return f"a {rate_text(self.rate)}% {kind} line{where}"


def _percent(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 and rate_text(number) == text else None


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid tax-code key (config validation), or None."""
    parts = key.split("/")
    rates = [_percent(text) for text in parts[0].split("+")]
    if any(rate is None for rate in rates):
        return "a tax rate is a percent written plainly, e.g. \"20\" or \"5.5\" (several: \"5+7\")"
    if rates != sorted(rates):  # type: ignore[type-var]
        return "the rates of a line taxed several times are written in ascending order, e.g. \"5+7\""
    if len(parts) > 3:
        return "a key is RATE, RATE/TREATMENT or RATE/TREATMENT/COUNTRY, e.g. \"0/zero_rated/GB\""
    if len(parts) >= 2:
        kinds = parts[1].split("+")
        unknown = next((kind for kind in kinds if kind not in TREATMENTS), None)
        if unknown is not None:
            return f"unknown treatment {unknown!r}; known are {', '.join(TREATMENTS)}"
        if len(kinds) > 1 and len(kinds) != len(rates):
            return (f"{len(kinds)} treatments for {len(rates)} rates: one for them all, or one per rate "
                    "in the rates' order, e.g. \"0+5/exempt+standard\"")
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
        if tax.mixed_inclusive:
            return (f"no {self.system} tax code fits {tax.describe()} whose taxes are partly inclusive, partly "
                    "exclusive: no ledger code says both; correct the line's tax rates at the source")
        rate, kind = tax.rate_key(), tax.treatment_key()
        wanted = f"{rate}/{kind}" if kind else rate
        also = f" (or \"{rate}\" for every such rate)" if tax.plain() and kind else ""
        several = (f" — the {self.system} code for these taxes together, whose rates are "
                   f"{' and '.join(rate_text(r) + '%' for r, _k in tax.components)}") if tax.components else ""
        return (f"no {self.system} tax code for {tax.describe()}: add \"{wanted}\" = \"<code>\"{also} "
                f"under [tax_codes.{self.system}] in the config{several}")

    def first_missing(self, lines: Iterable[InvoiceLine]) -> str | None:
        """The message for the first line no key fits, or None when every line has a code."""
        for line in lines:
            tax = LineTax.of(line)
            if self.find(tax) is None:
                return self.missing_message(tax)
        return None


__all__ = ["REASONS", "TREATMENTS", "LineTax", "TaxCodeMissing", "TaxCodes", "key_problem", "rate_text",
           "treatment"]
