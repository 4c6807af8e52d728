"""The Xero emulator's ``order`` sort: numbers and dates ranked exactly (Decimal), nulls first,
text last, ties by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.xero.emulator.where import order

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(i["ID"]) for i in items]


def test_amounts_order_exactly_even_where_a_float_could_not_tell_them_apart() -> None:
    items: list[dict[str, Any]] = [{"ID": "a", "Total": Decimal("10000000000000000.02")},
             {"ID": "b", "Total": Decimal("10000000000000000.01")},
             {"ID": "c", "Total": None}, {"ID": "d", "Total": 3}, {"ID": "e", "Total": "n/a"}]
    assert ids(order(items, "Total", "ID")) == ["c", "d", "b", "a", "e"]
    assert ids(order(items, "Total DESC", "ID")) == ["e", "a", "b", "d", "c"]


def test_dates_order_to_the_microsecond_and_ties_fall_back_to_the_id() -> None:
    items: list[dict[str, Any]] = [{"ID": "z", "UpdatedDateUTC": BASE + timedelta(microseconds=1), "Name": "x"},
             {"ID": "y", "UpdatedDateUTC": BASE, "Name": "x"},
             {"ID": "x", "UpdatedDateUTC": BASE, "Name": "w"}]
    assert ids(order(items, "", "ID")) == ["x", "y", "z"]
    assert ids(order(items, "Name ASC, UpdatedDateUTC DESC", "ID")) == ["x", "z", "y"]
