"""How the Xero emulator reads the values of one item: Xero's per-item validation error, numbers
as exact Decimals, money rounded to cents and dates in either of Xero's forms."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from mapping.xero_dates import parse_date

TWO = Decimal("0.01")


class Invalid(Exception):
    """A validation error on one item (Xero's ``ValidationErrors[].Message``)."""


def to_decimal(value: Any, what: str) -> Decimal:
    """A number field; empty counts as zero, anything non-numeric is the item's error."""
    if value is None or value == "":
        return Decimal(0)
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise Invalid(f"{what} must be a number") from None
    if not result.is_finite():
        raise Invalid(f"{what} must be a number")
    return result


def money(value: Decimal) -> Decimal:
    return value.quantize(TWO, rounding=ROUND_HALF_UP)


def to_date(value: Any) -> datetime | None:
    """A date field (MS-JSON or ISO); None if empty, an unreadable one is the item's error."""
    try:
        return parse_date(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def find(table: dict[str, dict[str, Any]], ident: Any) -> dict[str, Any] | None:
    """The record a request names by id, in any form Xero reads a Guid in (dashed or 32 hex
    digits, any case; the emulator keys records by the dashed lower-case form)."""
    if ident in (None, ""):
        return None
    found = table.get(str(ident))
    if found is None:
        try:
            found = table.get(str(uuid.UUID(str(ident).strip())))
        except ValueError:
            return None
    return found
