"""The fields vendors document as secret, and removing them from a stored copy of a payload.

One list for every place that keeps a vendor's body: the webhook inbox (``sync/web/intake.py``)
and the held records that failed to map (``sync/ingest.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields a vendor documents as secret, removed wherever they appear in a stored body. Stripe's
# ``client_secret`` (PaymentIntent, SetupIntent, Checkout Session, CustomerSession …) lets a
# browser confirm a payment; the hub has no use for it (the inbox's refetch re-reads the object).
# QuickBooks and Xero webhooks carry ids only.
SECRET_FIELDS: Mapping[str, frozenset[str]] = {"stripe": frozenset({"client_secret"})}


def without_secrets(system: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` without the system's secret fields, at any depth."""
    secret = SECRET_FIELDS.get(system, frozenset())

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if k not in secret}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(payload) if secret else dict(payload)


__all__ = ["SECRET_FIELDS", "without_secrets"]
