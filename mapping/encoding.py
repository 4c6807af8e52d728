"""Canonical values -> JSON-able values (``mapping.model.to_data``), and the small pure helpers
the model's ids and timestamps are made with.

The encoder dispatches on the exact type: a first load converts every entity once, and a chain
of isinstance checks per value (a few hundred values an invoice) cost a fifth of the store.
Subclasses of these types, and dataclasses seen for the first time, take ``_encode_other``,
which answers as the chain did and registers each dataclass's own encoder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from mapping.money import Money

# Fields added after payloads were stored, left out of the JSON while at their default (the
# model fills it in: dataclass -> field -> default). See ``mapping.model``.
OMITTED_AT_DEFAULT: dict[type, dict[str, Any]] = {}


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, built from the SHA-1 digest directly: the same
    text without the ``UUID`` object and its integer arithmetic, which cost more than the hash
    (a page's mapping asks for a dozen ids per invoice, its plan for two keys per record)."""
    raw = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc(value: datetime) -> datetime:
    """Normalise to timezone-aware UTC; naive datetimes are refused (their zone is unknown)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: timestamps must carry a timezone")
    return value.astimezone(UTC)


def decimal_str(value: Decimal) -> str:
    """Canonical text of a Decimal: no exponent, no trailing zeros ("1.50" -> "1.5")."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def _same(value: Any) -> Any:
    return value


def _encode_datetime(value: datetime) -> str:
    return utc(value).isoformat().replace("+00:00", "Z")


def _encode_money(value: Money) -> dict[str, Any]:
    return {"minor": value.minor, "currency": value.currency}


def _encode_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [encode(v) for v in value]


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): encode(v) for k, v in value.items()}


def _dataclass_encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    """The encoder of one dataclass: its field names read once, the defaults it leaves out."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    omitted = OMITTED_AT_DEFAULT.get(cls)
    if omitted:
        def encode_omitting(value: Any) -> dict[str, Any]:
            out = {}
            for name in names:
                v = getattr(value, name)
                if name not in omitted or v != omitted[name]:
                    out[name] = encode(v)
            return out
        return encode_omitting

    def encode_fields(value: Any) -> dict[str, Any]:
        return {name: encode(getattr(value, name)) for name in names}
    return encode_fields


# exact type -> encoder; dataclasses are added as they are first met
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    type(None): _same, bool: _same, int: _same, str: _same, Money: _encode_money, Decimal: decimal_str,
    datetime: _encode_datetime, date: date.isoformat, list: _encode_list, tuple: _encode_list,
    dict: _encode_dict,
}


def encode(value: Any) -> Any:
    """A canonical value as JSON-able data (floats refused: amounts are ``Money``)."""
    encoder = _ENCODERS.get(type(value))
    return encoder(value) if encoder is not None else _encode_other(value)


def _encode_other(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Money):
        return _encode_money(value)
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, datetime):
        return _encode_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        encoder = _ENCODERS[type(value)] = _dataclass_encoder(type(value))
        return encoder(value)
    if isinstance(value, (list, tuple)):
        return _encode_list(value)
    if isinstance(value, dict):
        return _encode_dict(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical entities; use Decimal or Money")
    raise TypeError(f"cannot encode {type(value).__name__} in a canonical entity")


__all__ = ["OMITTED_AT_DEFAULT", "decimal_str", "encode", "utc", "uuid5_text"]
