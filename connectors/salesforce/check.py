"""``hub check`` for Salesforce: the org's limits and whether it holds what billhub needs."""

from __future__ import annotations

from typing import Any

from connectors.base import ConnectionCheck
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceSetupError


def check_org(client: SalesforceClient, learn: Any, currency: Any) -> ConnectionCheck:
    """``learn``: the connector's first contact (describe), raising ``SalesforceSetupError`` that
    names what the org lacks; ``currency``: the org's currency after it (None: per record)."""
    limits = client.call(lambda sf: sf.restful("limits"))
    daily = (limits or {}).get("DailyApiRequests") or {}
    missing: tuple[str, ...] = ()
    try:
        learn()
    except SalesforceSetupError as exc:
        missing = (str(exc),)
    details: dict[str, Any] = {"daily_api_requests": {"max": daily.get("Max"), "remaining": daily.get("Remaining")}}
    return ConnectionCheck(account=f"org at {client.instance_url}", base_currency=currency(),
                           scopes=("api", "refresh_token"), missing=missing, details=details)
