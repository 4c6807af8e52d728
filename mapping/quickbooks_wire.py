"""QuickBooks Online's wire shapes, shared by the QuickBooks mapping's readers and writers:
entity names, the hub's marker and where it lives, exact Decimal amounts (a float or a value
with more places than the currency is refused), references, times and addresses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from mapping.model import Address, Money
from mapping.refs import RefResolver

ENTITY_NAMES: dict[str, str] = {
    "customer": "Customer", "product": "Item", "invoice": "Invoice", "payment": "Payment",
    "credit_note": "CreditMemo", "refund": "RefundReceipt",
    "payout": "Transfer",  # with its fees as a Purchase (mapping/quickbooks_payouts.py)
}
CANONICAL_TYPES: dict[str, str] = {v: k for k, v in ENTITY_NAMES.items()}
MARKER_FIELDS: dict[str, str] = {
    "customer": "Notes", "product": "PurchaseDesc", "invoice": "PrivateNote", "payment": "PrivateNote",
    "credit_note": "PrivateNote", "refund": "PrivateNote", "payout": "PrivateNote",
}
NAME_ENTITIES = frozenset({"customer", "product"})
MARKER_PREFIX = "hub:"
VOID_PREFIX = "Voided"
QBO_UNIT_PLACES = 7  # QuickBooks keeps UnitPrice to 7 decimal places


class MappingError(ValueError):
    """A record that cannot be mapped (a missing link, an amount that is not exact)."""


def marker(hub_id: str) -> str:
    return f"{MARKER_PREFIX}{hub_id}"


def marker_of(entity_type: str, obj: Mapping[str, Any]) -> str | None:
    """The canonical id in the object's marker field, if the hub wrote it."""
    text = str(obj.get(MARKER_FIELDS[entity_type]) or "")
    at = text.find(MARKER_PREFIX)
    return text[at + len(MARKER_PREFIX):].split()[0] if at >= 0 and text[at + len(MARKER_PREFIX):] else None


def dec(value: Any, field: str = "amount") -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        raise MappingError(f"{field}: float {value!r} refused; parse QuickBooks JSON with Decimal")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{field}: {value!r} is not a number") from None


def money(value: Any, currency: str, field: str = "amount") -> Money:
    try:
        return Money.from_decimal(dec(value, field), currency)
    except ValueError as exc:
        raise MappingError(f"{field}: {exc}") from None


def ref_value(obj: Mapping[str, Any], key: str) -> str | None:
    ref = obj.get(key)
    if isinstance(ref, Mapping) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise MappingError(f"timestamp {value!r} has no offset")
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def at_midnight(value: date | None) -> datetime | None:
    return datetime.combine(value, time(0), tzinfo=UTC) if value else None


def updated_of(obj: Mapping[str, Any]) -> datetime | None:
    meta = obj.get("MetaData")
    return parse_time(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def required_ref(refs: RefResolver, entity_type: str, canonical_id: str | None, what: str) -> dict[str, str]:
    external = refs.external_id(entity_type, canonical_id) if canonical_id else None
    if external is None:
        raise MappingError(f"{what} {canonical_id or '(none)'} is not linked to a QuickBooks {entity_type} yet")
    return {"value": external}


def currency_of(obj: Mapping[str, Any], home_currency: str) -> str:
    return (ref_value(obj, "CurrencyRef") or home_currency).upper()


def address_in(obj: Any) -> Address | None:
    if not isinstance(obj, Mapping) or not any(obj.get(k) for k in ("Line1", "City", "PostalCode", "Country")):
        return None
    return Address(line1=obj.get("Line1"), line2=obj.get("Line2"), city=obj.get("City"),
                   region=obj.get("CountrySubDivisionCode"), postal_code=obj.get("PostalCode"),
                   country=obj.get("Country"))


def address_out(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    pairs = {"Line1": address.line1, "Line2": address.line2, "City": address.city,
             "CountrySubDivisionCode": address.region, "PostalCode": address.postal_code,
             "Country": address.country}
    return {k: v for k, v in pairs.items() if v}


__all__ = ["CANONICAL_TYPES", "ENTITY_NAMES", "MARKER_FIELDS", "MARKER_PREFIX", "NAME_ENTITIES", "QBO_UNIT_PLACES",
           "VOID_PREFIX", "MappingError", "address_in", "address_out", "at_midnight", "currency_of", "dec", "marker",
           "marker_of", "money", "parse_date", "parse_time", "ref_value", "required_ref", "updated_of"]
