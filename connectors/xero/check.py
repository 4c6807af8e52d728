"""``hub check`` for Xero: the organisation of the tenant the tokens open (``GET Organisation``)."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import ConnectionCheck
from connectors.xero.client import XeroClient


def check_organisation(client: XeroClient, accounts: Mapping[str, str | None]) -> ConnectionCheck:
    body = client.call("get_organisations")
    orgs = body.get("Organisations") if isinstance(body, Mapping) else None
    org = orgs[0] if isinstance(orgs, list) and orgs and isinstance(orgs[0], Mapping) else {}
    chart = client.call("get_accounts")
    codes = {str(a.get("Code")) for a in (chart.get("Accounts") or []) if isinstance(a, Mapping)}
    missing = tuple(f"account code {code} ({key}): not in this organisation's chart of accounts"
                    for key, code in accounts.items() if code and str(code) not in codes)
    scope = client.tokens.extra("scope")
    currency = org.get("BaseCurrency")
    return ConnectionCheck(account=f"{org.get('Name') or 'organisation'} (tenant {client.tenant_id})",
                           base_currency=str(currency).upper() if currency else None,
                           scopes=_scopes(scope), missing=missing,
                           details={"country": org.get("CountryCode")})


def _scopes(scope: object) -> tuple[str, ...]:
    """The granted scopes, stored space-separated (OAuth's form) or, by older versions, as a list."""
    if isinstance(scope, (list, tuple)):
        return tuple(str(s) for s in scope)
    return tuple(str(scope).split()) if scope else ()
