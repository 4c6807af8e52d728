"""What the Xero writer puts on a request: deterministic Idempotency-Keys, quoted ``where``
values, payloads without None or the hub's private ``_`` keys (the SDK's serializer refuses
None), and the per-item refusal of a ``summarizeErrors=false`` answer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.base import InvalidError, Outbound
from connectors.xero.errors import validation_messages


def batch_key(prefix: str, items: Sequence[Outbound]) -> str:
    """A deterministic Idempotency-Key (<= 128 chars) for a request carrying these items."""
    digest = hashlib.sha256("\n".join(i.idempotency_key for i in items).encode()).hexdigest()
    return f"billhub-{prefix}-{digest[:64]}"


def quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def clean(value: Any) -> Any:
    """Drop None values and private ``_`` keys (the SDK serializer refuses None)."""
    if isinstance(value, Mapping):
        return {k: clean(v) for k, v in value.items() if v is not None and not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def item_error(system: str, data: Any) -> InvalidError | None:
    """One item's refusal in a ``summarizeErrors=false`` answer (Xero answers 200 overall)."""
    if isinstance(data, Mapping) and not data.get("HasErrors") and not data.get("ValidationErrors"):
        return None
    message = "; ".join(validation_messages(data)) or "Xero rejected the item"
    return InvalidError(message, system=system, status=400)


__all__ = ["batch_key", "clean", "item_error", "quote"]
