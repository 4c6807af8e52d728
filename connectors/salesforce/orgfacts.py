"""First contact with an org: what it holds, learnt once per connector, before anything is read
or written there.

* **Schema.** One ``describe`` per sObject the connector uses. Every field its reads select (and
  so its writes send) must be there; what is missing — billhub's custom fields, the invoice
  object, or a standard field the integration user's profile cannot see — is one
  ``SalesforceSetupError`` that names all of it (``Object.Field``) and where to create it,
  instead of the first query's raw ``INVALID_FIELD``. The hub's marker must also be an External
  ID, since writes upsert by it.
* **Currencies.** A multi-currency org describes ``CurrencyIsoCode`` on its objects and each
  record says its currency. A single-currency org (Salesforce's default; enabling multiple
  currencies cannot be undone) has no such field anywhere: every amount is in the org's currency,
  ``Organization.DefaultCurrencyIsoCode``, read once with SOQL. It replaces the config's
  ``default_currency``; a ``default_currency`` that disagrees with it is a setup error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import InvalidError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceSetupError
from connectors.salesforce.streams import CURRENCY

SETUP_SECTION = 'README.md, section "Salesforce setup"'
SETUP_COMMAND = "hub setup salesforce"  # connectors/salesforce/setup.py
ORG_CURRENCY_SOQL = "SELECT DefaultCurrencyIsoCode FROM Organization"


@dataclass(frozen=True)
class OrgFacts:
    multi_currency: bool
    currency: str | None  # a single-currency org's one currency; None where each record says
    described: frozenset[str]  # the sObjects described


def learn_org(client: SalesforceClient, wanted: Mapping[str, Sequence[str]], *, hub_field: str,
              configured_currency: str | None) -> OrgFacts:
    """Describe every sObject in ``wanted`` (sObject -> fields used), check it holds them, and
    learn the org's currencies. Raises ``SalesforceSetupError`` naming everything missing."""
    problems: list[str] = []
    standard_missing = False
    has_currency: dict[str, bool] = {}
    for sobject, fields in wanted.items():
        described = _describe(client, sobject)
        if described is None:
            custom = [f for f in fields if f.endswith("__c")]
            problems.append(f"the {'custom ' if sobject.endswith('__c') else ''}object {sobject}"
                            + (f" with its fields {', '.join(custom)}" if custom else ""))
            standard_missing = standard_missing or not sobject.endswith("__c")
            continue
        by_name = {str(f.get("name", "")).lower(): f for f in described.get("fields") or []
                   if isinstance(f, dict)}
        has_currency[sobject] = CURRENCY.lower() in by_name
        for name in fields:
            found = by_name.get(name.lower())
            if found is None:
                problems.append(f"{sobject}.{name}")
                standard_missing = standard_missing or not name.endswith("__c")
            elif name == hub_field and not found.get("externalId"):
                problems.append(f"{sobject}.{name} (it exists but is not marked External ID)")
    if problems:
        advice = f"Create them with `{SETUP_COMMAND}`, or by hand as {SETUP_SECTION} lists (with their types)"
        if standard_missing:
            advice += ("; a standard object or field listed exists in every org, so the integration "
                       "user's profile cannot see it: grant it object and field-level access")
        raise SalesforceSetupError(
            f"the Salesforce org lacks {len(problems)} thing(s) billhub reads and writes there: "
            f"{'; '.join(problems)}. {advice}. Nothing was read or written.", system=client.name)
    multi = has_currency.get("Account", any(has_currency.values()))
    if multi:
        return OrgFacts(True, None, frozenset(wanted))
    currency = _org_currency(client, configured_currency)
    if configured_currency and configured_currency.upper() != currency:
        raise SalesforceSetupError(
            f"default_currency = {configured_currency!r} in this connection's config disagrees with the "
            f"Salesforce org, which has a single currency, {currency} (Setup > Company Information > "
            f"Currency Locale): set default_currency = {currency!r} or remove it (the org's currency is "
            "used)", system=client.name)
    return OrgFacts(False, currency, frozenset(wanted))


def _describe(client: SalesforceClient, sobject: str) -> dict[str, Any] | None:
    """``GET sobjects/{T}/describe``; None when the org has no such object (404)."""
    try:
        answer = client.call(lambda sf: sf.restful(f"sobjects/{sobject}/describe"))
    except InvalidError as exc:
        if exc.status == 404:
            return None
        raise
    if not isinstance(answer, dict):
        raise InvalidError(f"unexpected answer to the describe of {sobject}", system=client.name)
    return answer


def _org_currency(client: SalesforceClient, configured: str | None) -> str:
    try:
        answer = client.call(lambda sf: sf.query(ORG_CURRENCY_SOQL))
    except InvalidError as exc:
        if configured:  # the user said which currency; the org only refuses to tell
            return configured.upper()
        raise SalesforceSetupError(
            f"this Salesforce org has a single currency, but it would not say which ({ORG_CURRENCY_SOQL}: "
            f"{exc.message}); set default_currency in this connection's config to the org's currency "
            "(Setup > Company Information > Currency Locale)", system=client.name) from exc
    rows = answer.get("records") if isinstance(answer, dict) else None
    code = rows[0].get("DefaultCurrencyIsoCode") if rows and isinstance(rows[0], dict) else None
    if not code:
        raise SalesforceSetupError(f"the org answered {ORG_CURRENCY_SOQL} without a currency",
                                   system=client.name)
    return str(code).upper()
