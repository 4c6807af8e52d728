"""Tax on QuickBooks Online sales documents, as Intuit's two tax models have it.

* **US companies** (sales tax): every line says ``TaxCodeRef`` ``TAX`` or ``NON``; the document's
  ``TxnTaxDetail`` carries ``TotalTax`` and, when ``[tax_codes.quickbooks]`` names one for the
  rate, the sales tax code of the whole transaction (``TxnTaxCodeRef``).
* **Every other company** (the global tax model: VAT, GST): each line's ``TaxCodeRef`` is the
  company's tax code that ``[tax_codes.quickbooks]`` gives its rate, reason and country
  (``mapping.tax_codes``); ``TxnTaxDetail.TaxLine`` has one ``TaxLineDetail`` per tax rate
  (``TaxRateRef``, ``PercentBased``, ``TaxPercent``, ``NetAmountTaxable``) with its exact tax;
  ``GlobalTaxCalculation`` says ``TaxExcluded`` or ``TaxInclusive``, and an inclusive line sends
  its net in ``Amount`` and its gross in ``SalesItemLineDetail.TaxInclusiveAmt`` — a gross
  ``Amount`` would have VAT added on top.
* A line with **several taxes** (GST 5 % + PST 7 %: ``InvoiceLine.taxes``) takes the company's
  code for the combination (``"5+7/standard/CA-BC"`` = ``"GST/PST BC"``), which must hold one
  sales rate per tax, at the same percents; each tax goes to its rate's ``TaxLine`` with the exact
  amount and taxable net the source gave it. A code whose rates differ holds the document.

The company's codes (``CompanyTaxCode``: id, name, sales rates) are read by the connector;
this module stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mapping.model import InvoiceLine, Money
from mapping.tax_codes import LineTax, TaxCodeMissing, TaxCodes, rate_text

US_TAXABLE, US_NON_TAXABLE = "TAX", "NON"


class QboTaxError(ValueError):
    """A document whose tax QuickBooks cannot be told exactly (held, the message says why)."""


@dataclass(frozen=True, slots=True)
class CompanyTaxCode:
    id: str
    name: str
    rates: tuple[tuple[str, Decimal], ...] = ()  # the code's sales TaxRate (Id, percent)


@dataclass(frozen=True)
class QboTax:
    """What the mapping needs to code a document: the configured table and the company."""

    codes: TaxCodes
    country: str = "US"
    company_codes: Mapping[str, CompanyTaxCode] = field(default_factory=dict)  # by Id and by Name

    @property
    def us(self) -> bool:
        return self.country.upper() == "US"

    def resolve(self, configured: str) -> CompanyTaxCode:
        code = self.company_codes.get(configured)
        if code is None:
            raise QboTaxError(f"[tax_codes.quickbooks] names tax code {configured!r}, which this QuickBooks "
                              "company does not have: use the Id or Name of one of its tax codes")
        return code


def _code(line: InvoiceLine, tax: QboTax) -> CompanyTaxCode:
    try:
        configured = tax.codes.code_for(line)
    except TaxCodeMissing as exc:
        raise QboTaxError(str(exc)) from None
    code = tax.resolve(configured)
    rate = line.tax_rate or Decimal(0)
    total = sum((pct for _rid, pct in code.rates), Decimal(0))
    if not code.rates or total != rate:
        raise QboTaxError(f"tax code {code.name!r} is {rate_text(total)}% in QuickBooks but the line "
                          f"{line.description!r} is taxed at {rate_text(rate)}%: correct [tax_codes.quickbooks]")
    if line.taxes and sorted(pct for _rid, pct in code.rates) != sorted(Decimal(t.rate) for t in line.taxes):
        raise QboTaxError(f"tax code {code.name!r} has the rates {_percents(p for _r, p in code.rates)} in "
                          f"QuickBooks but the line {line.description!r} is taxed "
                          f"{_percents(t.rate for t in line.taxes)}: each tax needs its own rate in the code "
                          "(correct [tax_codes.quickbooks])")
    return code


def _percents(rates: Iterable[Decimal]) -> str:
    return " + ".join(f"{rate_text(r)}%" for r in sorted(rates))


def _components(line: InvoiceLine, code: CompanyTaxCode, net: int) -> list[tuple[str, Decimal, int, int]]:
    """(rate id, percent, tax, taxable net) of each of the line's taxes on the code's rates: a
    line of several taxes gives each its own amount (the code's rates matched by percent, as
    ``_code`` checked); one tax is split over a code of several rates by their weights."""
    if not line.taxes:
        shares = _split(_line_tax(line), [pct for _rid, pct in code.rates])
        return [(rate_id, pct, share, net) for (rate_id, pct), share in zip(code.rates, shares, strict=True)]
    free = list(code.rates)
    out = []
    for component in line.taxes:
        rate_id, pct = next(r for r in free if r[1] == Decimal(component.rate))
        free.remove((rate_id, pct))
        taxable = component.taxable_amount.minor if component.taxable_amount is not None else net
        out.append((rate_id, pct, component.amount.minor, taxable))
    return out


def _line_tax(line: InvoiceLine) -> int:
    return line.tax_amount.minor if line.tax_amount else 0


def _net(line: InvoiceLine, discount: int, inclusive: bool) -> int:
    """The amount the line's tax was computed on: the source's, else its amount after discount
    (less its tax when that is inside)."""
    if line.taxable_amount is not None:
        return line.taxable_amount.minor
    base = line.amount.minor - discount
    return base - _line_tax(line) if inclusive else base


def code_lines(rows: list[dict[str, Any]], lines: Sequence[InvoiceLine], tax: QboTax | None,
               *, taxable: bool, inclusive: bool) -> None:
    """Set each sales row's ``TaxCodeRef`` (and, inclusive, its net ``Amount`` and gross
    ``TaxInclusiveAmt``); ``rows`` are the SalesItemLineDetail rows in the order of ``lines``."""
    for row, line in zip(rows, lines, strict=True):
        detail = row["SalesItemLineDetail"]
        if tax is None or tax.us:
            line_taxed = taxable and bool(line.tax_rate or (line.tax_amount and line.tax_amount.minor))
            detail["TaxCodeRef"] = {"value": US_TAXABLE if line_taxed else US_NON_TAXABLE}
            continue
        detail["TaxCodeRef"] = {"value": _code(line, tax).id}
        if inclusive:
            gross = line.amount
            net = Money(gross.minor - _line_tax(line), gross.currency)
            row["Amount"] = net.to_decimal()
            detail["TaxInclusiveAmt"] = gross.to_decimal()
            detail.pop("Qty", None)  # Qty x UnitPrice is the gross; QuickBooks checks it against Amount
            detail.pop("UnitPrice", None)


def tax_detail(lines: Sequence[InvoiceLine], discounts: Sequence[int], total_tax: Money,
               tax: QboTax | None, *, inclusive: bool) -> tuple[dict[str, Any], str | None]:
    """(``TxnTaxDetail``, ``GlobalTaxCalculation`` or None for a US company)."""
    detail: dict[str, Any] = {"TotalTax": total_tax.to_decimal()}
    if tax is None:
        return detail, None
    if tax.us:
        taxed = [line for line in lines if line.tax_rate]
        found = tax.codes.find(LineTax.of(taxed[0])) if taxed and tax.codes else None
        if found is not None:
            detail["TxnTaxCodeRef"] = {"value": tax.resolve(found).id}
        return detail, None
    if not any(line.tax_rate is not None for line in lines) and not total_tax.minor:
        return detail, "NotApplicable"
    by_rate: dict[str, list[int]] = {}
    percents: dict[str, Decimal] = {}
    for line, discount in zip(lines, discounts, strict=True):
        for rate_id, pct, share, net in _components(line, _code(line, tax), _net(line, discount, inclusive)):
            agg = by_rate.setdefault(rate_id, [0, 0])
            agg[0] += share
            agg[1] += net
            percents[rate_id] = pct
    currency = total_tax.currency
    detail["TaxLine"] = [
        {"DetailType": "TaxLineDetail", "Amount": Money(amount, currency).to_decimal(),
         "TaxLineDetail": {"TaxRateRef": {"value": rate_id}, "PercentBased": True,
                           "TaxPercent": percents[rate_id],
                           "NetAmountTaxable": Money(net, currency).to_decimal()}}
        for rate_id, (amount, net) in by_rate.items()]
    if sum(amount for amount, _net in by_rate.values()) != total_tax.minor:
        raise QboTaxError(f"the lines' tax ({Money(sum(a for a, _n in by_rate.values()), currency)}) is not "
                          f"the document's ({total_tax}): fix the invoice at its source")
    return detail, "TaxInclusive" if inclusive else "TaxExcluded"


def _split(amount: int, weights: Sequence[Decimal]) -> list[int]:
    """``amount`` over ``weights`` exactly (largest remainder): a code of two rates (GST + PST)."""
    total = sum(weights, Decimal(0))
    if len(weights) <= 1 or not total:
        return [amount] + [0] * (len(weights) - 1)
    exact = [Decimal(amount) * w / total for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda n: -(exact[n] - shares[n]))
    for n in order[: amount - sum(shares)]:
        shares[n] += 1
    return shares


def tax_lines_in(obj: Mapping[str, Any]) -> list[tuple[str, Decimal, Decimal, Decimal | None]]:
    """(TaxRate Id, percent, tax, net taxable) of each ``TxnTaxDetail.TaxLine`` QuickBooks holds."""
    out = []
    for raw in (obj.get("TxnTaxDetail") or {}).get("TaxLine") or []:
        detail = raw.get("TaxLineDetail") or {}
        rate = (detail.get("TaxRateRef") or {}).get("value")
        if rate is None or detail.get("TaxPercent") in (None, ""):
            continue
        net = detail.get("NetAmountTaxable")
        out.append((str(rate), Decimal(str(detail["TaxPercent"])), Decimal(str(raw.get("Amount") or 0)),
                    Decimal(str(net)) if net not in (None, "") else None))
    return out


__all__ = ["CompanyTaxCode", "QboTax", "QboTaxError", "code_lines", "tax_detail", "tax_lines_in"]
