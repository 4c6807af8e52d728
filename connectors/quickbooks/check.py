"""``hub check`` for QuickBooks: the company the tokens open (``CompanyInfo``, ``Preferences``)."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import ConnectionCheck
from connectors.quickbooks.company import CompanyCurrency
from connectors.quickbooks.streams import Reader

SCOPE = "com.intuit.quickbooks.accounting"  # the one scope billhub asks for


def check_company(reader: Reader, company: CompanyCurrency, realm_id: str,
                  accounts: Mapping[str, str | None]) -> ConnectionCheck:
    answer = reader.query("SELECT * FROM CompanyInfo")
    rows = (answer.get("QueryResponse") or {}).get("CompanyInfo") or [{}]
    info = rows[0] if isinstance(rows[0], dict) else {}
    missing = []
    for key, account_id in accounts.items():
        if account_id:
            found = (reader.query(f"SELECT * FROM Account WHERE Id = '{account_id}'").get("QueryResponse") or {})
            if not found.get("Account"):
                missing.append(f"account {account_id} ({key}): no such account in this company")
    return ConnectionCheck(account=f"{info.get('CompanyName') or 'company'} (realm {realm_id})",
                           base_currency=company.home(), scopes=(SCOPE,), missing=tuple(missing),
                           details={"country": info.get("Country")})
