"""Natural keys: the values that identify a record across systems before any link exists."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

# The canonical fields first contact matches on, most specific first.
NATURAL_KEYS = ("email", "number", "name")
# A payment or refund carries none of those in most ledgers (no email, rarely a number): it is
# matched by what it settles, amount + currency + day + the invoice it applies to, once the
# marker and the keys above found nothing. Last, being the least specific.
SETTLEMENT = "settlement"
MATCH_KEYS = (*NATURAL_KEYS, SETTLEMENT)
_SETTLED_AT = {"payment": "paid_at", "refund": "refunded_at"}


def normalise_key(value: str | None) -> str | None:
    """Case- and space-insensitive form of a natural key (emails, names, numbers)."""
    if value is None:
        return None
    folded = " ".join(value.split()).casefold()
    return folded or None


def key_digest(value: Any) -> str | None:
    """The stored form of a natural key: a digest of its normal form, so the index that finds
    records by email or name holds no email or name."""
    normal = normalise_key(value) if isinstance(value, str) else None
    return hashlib.sha256(normal.encode()).hexdigest() if normal else None


def settlement_key(entity_type: str, data: Mapping[str, Any]) -> str | None:
    """"<minor> <currency> <UTC day> <invoice>" of a canonical payment or refund's data (None
    for other types, or without an amount or a day). Computed from the canonical form on both
    sides, so each ledger's own mapping (its dates, its amounts) is the normalisation."""
    when = _SETTLED_AT.get(entity_type)
    amount = data.get("amount") if when else None
    day = str(data.get(when) or "")[:10] if when else ""
    if not isinstance(amount, Mapping) or amount.get("minor") in (None, 0) or not day:
        return None
    return f"{amount['minor']} {amount.get('currency')} {day} {data.get('invoice_id') or '-'}"


def natural_digests(data: Mapping[str, Any], entity_type: str | None = None) -> dict[str, str]:
    """key -> digest for each natural key a canonical record's data carries (with its type: a
    payment's or refund's settlement key too)."""
    found = {key: key_digest(data.get(key)) for key in NATURAL_KEYS}
    if entity_type:
        found[SETTLEMENT] = key_digest(settlement_key(entity_type, data))
    return {key: digest for key, digest in found.items() if digest}
