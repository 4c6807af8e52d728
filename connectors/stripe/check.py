"""``hub check`` for Stripe: the account the key belongs to (``GET /v1/account``)."""

from __future__ import annotations

from connectors.base import ConnectionCheck
from connectors.stripe.client import StripeApi
from connectors.stripe.streams import to_plain


def check_account(api: StripeApi, key_prefix: str) -> ConnectionCheck:
    account = to_plain(api.call(lambda c: c.v1.accounts.retrieve_current()))
    profile = account.get("business_profile") or {}
    settings = (account.get("settings") or {}).get("dashboard") or {}
    name = profile.get("name") or settings.get("display_name") or account.get("email") or ""
    kind = "restricted key" if key_prefix.startswith("rk_") else "secret key"
    mode = "live" if key_prefix.startswith(("sk_live_", "rk_live_")) else "test"
    currency = account.get("default_currency")
    return ConnectionCheck(account=f"{account['id']}{f' ({name})' if name else ''}",
                           base_currency=str(currency).upper() if currency else None,
                           scopes=(f"{mode} mode {kind}",),
                           details={"country": account.get("country"), "charges_enabled": account.get("charges_enabled")})
