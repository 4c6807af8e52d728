"""The one rule for sending lines to a ledger: the ledger's own product gives the amount back."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from mapping.lines import exact_quantity_and_unit, line_discounts
from mapping.model import Discount, InvoiceLine
from mapping.money import Money


@pytest.mark.parametrize(("quantity", "minor", "currency", "places"), [
    (3, 15329, "USD", 4), (3, -5531, "USD", 4), (7, 100, "USD", 2), (3, 1000, "JPY", 4),
    (1000, 100001, "USD", 4), (100000, 9999999, "USD", 7), (12, 1234567, "KWD", 4)])
def test_the_ledgers_product_of_what_is_sent_is_the_amount(quantity: int, minor: int, currency: str,
                                                            places: int) -> None:
    amount = Money(minor, currency)
    q, unit = exact_quantity_and_unit(Decimal(quantity), amount, places)
    assert unit == unit.quantize(Decimal(1).scaleb(-places))  # within the ledger's precision
    assert Money.from_decimal(q * unit, currency, ROUND_HALF_UP) == amount
    assert q in (Decimal(quantity), Decimal(1))


def test_the_quantity_is_kept_when_a_unit_at_the_ledgers_precision_gives_the_amount_back() -> None:
    assert exact_quantity_and_unit(Decimal(3), Money(15329, "USD"), 4) == (Decimal(3), Decimal("51.0967"))
    assert exact_quantity_and_unit(Decimal(3), Money(15329, "USD"), 2) == (Decimal(1), Decimal("153.29"))
    assert str(exact_quantity_and_unit(Decimal(2), Money(20000, "USD"), 4)[1]) == "100"  # never 1E+2


def _line(minor: int, discount: int | None = None) -> InvoiceLine:
    return InvoiceLine("x", Decimal(1), Money(minor, "USD"), Money(minor, "USD"),
                       discount_amount=Money(discount, "USD") if discount else None)


def test_invoice_discounts_are_spread_in_proportion_and_sum_exactly() -> None:
    lines = [_line(80000), _line(38000), _line(1)]
    shares = line_discounts(lines, [Discount("c", Money(10000, "USD"))], "USD")
    assert sum(shares) == 10000 and shares == [6780, 3220, 0]


def test_discounts_the_source_allocated_are_kept_as_they_are() -> None:
    lines = [_line(5000, 1250), _line(3000)]
    assert line_discounts(lines, [Discount("c", Money(1250, "USD"))], "USD") == [1250, 0]
    assert line_discounts(lines, [], "USD") == [1250, 0]
