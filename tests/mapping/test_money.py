"""Money: exact minor units for every ISO 4217 exponent, never mixing currencies."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapping.money import EXPONENTS, CurrencyMismatch, Money, MoneyError, exponent

currencies = st.sampled_from(sorted(EXPONENTS))
minor_units = st.integers(min_value=-(10**15), max_value=10**15)


@given(minor_units, currencies)
def test_money_round_trips_through_decimal_strings_for_every_exponent(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    text = money.to_decimal_str()
    assert Money.from_decimal(text, currency) == money
    places = text.split(".")[1] if "." in text else ""
    assert len(places) == exponent(currency)


@given(minor_units, minor_units, currencies, currencies)
def test_adding_or_subtracting_never_mixes_currencies(a: int, b: int, c1: str, c2: str) -> None:
    x, y = Money(a, c1), Money(b, c2)
    if c1 == c2:
        assert (x + y).minor == a + b and (x - y).minor == a - b
    else:
        with pytest.raises(CurrencyMismatch):
            x + y
        with pytest.raises(CurrencyMismatch):
            x - y


def test_exponent_table_knows_zero_two_and_three_decimal_currencies() -> None:
    assert (exponent("JPY"), exponent("KRW"), exponent("EUR"), exponent("KWD"), exponent("BHD")) == (0, 0, 2, 3, 3)
    assert len(EXPONENTS) > 150


def test_conversion_refuses_to_lose_precision_silently() -> None:
    with pytest.raises(MoneyError, match="decimal places"):
        Money.from_decimal("19.999", "USD")
    with pytest.raises(MoneyError):
        Money.from_decimal("1.5", "JPY")
    assert Money.from_decimal("19.995", "USD", rounding=ROUND_HALF_UP) == Money(2000, "USD")
    assert Money.from_decimal("1.234", "KWD") == Money(1234, "KWD")
    assert Money.from_decimal(Decimal("500"), "JPY") == Money(500, "JPY")


def test_floats_and_unknown_currencies_are_refused() -> None:
    with pytest.raises(MoneyError, match="float"):
        Money.from_decimal(19.99, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="unknown currency"):
        Money(100, "XYZ")
    with pytest.raises(MoneyError):
        Money(1.5, "USD")  # type: ignore[arg-type]


def test_quantity_multiplication_is_exact_unless_rounding_is_named() -> None:
    assert Money(1999, "USD").times(3) == Money(5997, "USD")
    with pytest.raises(MoneyError):
        Money(1999, "USD").times(Decimal("0.5"))
    assert Money(1999, "USD").times(Decimal("0.5"), rounding=ROUND_HALF_UP) == Money(1000, "USD")


def test_amounts_for_people_group_thousands_and_keep_the_currency_exponent() -> None:
    from mapping.money import format_money
    assert Money(123450, "USD").for_people() == "1,234.50 USD"
    assert Money(-123456789, "USD").for_people() == "-1,234,567.89 USD"
    assert Money(-1000, "JPY").for_people() == "-1,000 JPY"
    assert format_money(125, "kwd") == "0.125 KWD"
    assert format_money(5, "EUR") == "0.05 EUR"
