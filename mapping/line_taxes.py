"""Several taxes on one line (issue 18): Canada's GST + PST, a US state's and a county's sales tax.

Stripe lists every tax of a line in ``lines.data[].taxes`` (one entry per tax rate, each with its
amount, taxable amount, behaviour and reason). The canonical line keeps them all in
``InvoiceLine.taxes`` when there are several; its ``tax_rate`` is then their combined rate, which
only ever chooses a ledger code together with the components (``mapping.tax_codes``: a key such as
``"5+7/standard/CA-BC"``), never alone. A line of one tax is said by the line's own fields, as
before, so its payload and content hash are what they always were.

Pure: reading the Stripe entries, the combination's facts, and a line's part (a refund of part of
it) split exactly over its components.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from mapping.model import TaxLine
from mapping.money import Money
from mapping.stripe_wire import stripe_money, tax_facts, tax_rate_info

Data = Mapping[str, Any]


def stripe_line_taxes(taxes: Sequence[Data], currency: str,
                      rate_of: Callable[[Data], Decimal]) -> tuple[TaxLine, ...]:
    """Every tax of a Stripe invoice or credit note line that has several, in Stripe's order;
    () for a line of one tax or none. ``rate_of`` gives an entry's rate when its tax rate
    object is not expanded."""
    if len(taxes) < 2:
        return ()
    out = []
    for tax in taxes:
        _rid, name, pct = tax_rate_info(tax)
        reason, country, state = tax_facts(tax)
        taxable = tax.get("taxable_amount")
        out.append(TaxLine(name=name, rate=pct if pct is not None else rate_of(tax),
                           amount=stripe_money(int(tax.get("amount") or 0), currency),
                           inclusive=tax.get("tax_behavior") == "inclusive",
                           taxable_amount=stripe_money(taxable, currency) if isinstance(taxable, int) else None,
                           reason=reason, country=country, state=state))
    return tuple(out)


def combined_rate(taxes: Sequence[TaxLine]) -> Decimal:
    """The rate of the components together: their sum (each applies to the line's amount)."""
    return sum((Decimal(t.rate) for t in taxes), Decimal(0))


def combined_facts(taxes: Sequence[TaxLine]) -> tuple[str | None, str | None, str | None]:
    """(reason, country, state) of the combination: the reason all components share (else
    None), their one country, and the one state (province) any of them names — GST is
    Canada's, PST British Columbia's: together CA-BC."""
    reasons = {t.reason for t in taxes}
    countries = {t.country for t in taxes if t.country}
    states = {t.state for t in taxes if t.state}
    country = countries.pop() if len(countries) == 1 else None
    return (reasons.pop() if len(reasons) == 1 else None, country,
            states.pop() if country and len(states) == 1 else None)


def taxes_part(taxes: Sequence[TaxLine], tax: int | None, net: int, currency: str) -> tuple[TaxLine, ...]:
    """The components of a part of a line whose tax is ``tax`` on ``net`` (tax-exclusive): the
    tax spread over the components in proportion to theirs, largest remainder first, so the
    parts' components always sum to the part's tax and, over all parts, to the line's."""
    if not taxes or tax is None:
        return ()
    weights = [t.amount.minor for t in taxes]
    pool = sum(weights)
    if tax == pool:
        shares = weights
    elif pool > 0 and all(w >= 0 for w in weights):
        shares = [tax * w // pool for w in weights]
        order = sorted(range(len(weights)), key=lambda n: (-(tax * weights[n] % pool), n))
        for n in order[: tax - sum(shares)]:
            shares[n] += 1
    else:  # nothing to weigh by (all zero): the first component carries it
        shares = [tax] + [0] * (len(weights) - 1)
    return tuple(dataclasses.replace(t, amount=Money(share, currency), inclusive=False,
                                     taxable_amount=Money(net, currency))
                 for t, share in zip(taxes, shares, strict=True))


def negated(taxes: Sequence[TaxLine]) -> tuple[TaxLine, ...]:
    """The components of a negated line (a negative invoice booked as a credit)."""
    return tuple(dataclasses.replace(t, amount=-t.amount,
                                     taxable_amount=-t.taxable_amount if t.taxable_amount is not None else None)
                 for t in taxes)


__all__ = ["combined_facts", "combined_rate", "negated", "stripe_line_taxes", "taxes_part"]
