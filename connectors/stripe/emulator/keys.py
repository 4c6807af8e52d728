"""Restricted API keys (``rk_test_…``): keys that lack some permissions, answered as Stripe answers
them — 403, ``invalid_request_error``, naming the permission that would let the request through
(docs.stripe.com/keys, restricted API keys; the message is the one Stripe's API gives, e.g. for
``rak_subscription_read``).

The emulator's option ``restricted_keys`` maps each restricted key to the permissions it lacks,
e.g. ``{"rk_test_reader": {"rak_event_read"}}``: a key that may not read events (Stripe's
"Events: None"). A permission's name is Stripe's: ``rak_<resource>_<read|write>``; lacking the
read permission of a resource takes its write permission too (Stripe's "None").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from connectors.stripe.emulator.wire import StripeAPIError

# The first path segment after /v1/ -> the resource in Stripe's permission names (prices are
# still "plan" there: the permission predates prices).
RESOURCES = {
    "events": "event", "customers": "customer", "products": "product", "prices": "plan",
    "plans": "plan", "subscriptions": "subscription", "subscription_items": "subscription",
    "invoices": "invoice", "invoiceitems": "invoice", "invoice_payments": "invoice",
    "payment_intents": "payment_intent", "charges": "charge", "refunds": "refund",
    "credit_notes": "credit_note", "payouts": "payout", "balance": "balance",
    "balance_transactions": "balance_transaction_source", "tax_rates": "tax_rate",
    "coupons": "coupon", "promotion_codes": "promotion_code", "webhook_endpoints": "webhook",
    "billing": "billing_meter",
}


def permission_for(method: str, path: str) -> str | None:
    """The permission a request needs, or None for paths outside the table."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1" or parts[1] not in RESOURCES:
        return None
    return f"rak_{RESOURCES[parts[1]]}_{'read' if method == 'GET' else 'write'}"


def masked(key: str) -> str:
    return f"{key[:8]}{'*' * max(len(key) - 14, 4)}{key[-6:]}"


class RestrictedKeysMixin:
    """Accepts the configured restricted keys and refuses what each one lacks."""

    restricted_keys: Mapping[str, Collection[str]] = {}

    def is_restricted_key(self, key: str) -> bool:
        return key in self.restricted_keys

    def check_permission(self, key: str, method: str, path: str) -> None:
        lacking = self.restricted_keys.get(key)
        needed = permission_for(method, path) if lacking is not None else None
        if lacking is None or needed is None:
            return
        read = needed.rsplit("_", 1)[0] + "_read"
        if needed in lacking or read in lacking:
            raise StripeAPIError(
                403, f"The provided key '{masked(key)}' does not have the required permissions for "
                f"this endpoint on account 'acct_1Emulated'. Having the '{needed}' permission would "
                "allow this request to continue.")
