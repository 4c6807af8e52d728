"""Natural keys: the values that identify a record across systems before any link exists."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

# The canonical fields first contact matches on, most specific first.
NATURAL_KEYS = ("email", "number", "name")


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


def natural_digests(data: Mapping[str, Any]) -> dict[str, str]:
    """key -> digest for each natural key a canonical record's data carries."""
    found = {key: key_digest(data.get(key)) for key in NATURAL_KEYS}
    return {key: digest for key, digest in found.items() if digest}
