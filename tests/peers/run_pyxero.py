"""pyxero (0.9.5) reading billhub's Xero emulator. Run by the peer venv's python, never imported
by billhub's tests: it reads what stdin asks (JSON) and prints what pyxero returned (JSON).

pyxero has a setting for the API's base (``OAuth2Credentials.base_url``, ``XERO_BASE_URL``), but
its OAuth2 auth (requests-oauthlib) refuses any URL that is not https ("OAuth 2 MUST utilize
https"), and its token URL, ``https://identity.xero.com/connect/token``, is a literal. So pyxero
keeps Xero's own https URLs and ``xero_loopback`` sends Xero's hosts to the plain-HTTP loopback
emulator at the transport. The OAuth2 refresh (Basic client credentials, requests-oauthlib),
``/connections``, the reads, filters and parsing are pyxero's own.

stdin: ``{"client_id", "client_secret", "refresh_token", "all": [manager, ...],
"get": {manager: id}, "filter": {label: [manager, {kwarg: value}]}}``; a ``since`` value is an ISO
datetime. stdout: ``{"tenants": [...], "token_rotated": bool, "all": {manager: records |
{"error": status}}, "get": ..., "filter": ...}`` with dates as ISO strings and amounts as pyxero's
numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, datetime
from typing import Any

from xero_loopback import route_xero_to  # beside this script: imported before the path is cleaned

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages must not be shadowed by billhub's modules of the same name.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from xero import Xero  # noqa: E402  (after the path is cleaned)
from xero.auth import OAuth2Credentials  # noqa: E402
from xero.exceptions import XeroException  # noqa: E402

SCOPE = ["offline_access", "accounting.transactions.read", "accounting.contacts.read",
         "accounting.settings.read", "accounting.journals.read"]


def _read(call: Any) -> Any:
    try:
        return call()
    except XeroException as exc:
        response = getattr(exc, "response", None)
        return {"error": getattr(response, "status_code", None), "text": str(exc)[:300]}


def _kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: datetime.fromisoformat(v) if k == "since" else v for k, v in raw.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def main() -> None:
    route_xero_to(os.environ["BILLHUB_XERO_EMULATOR"])
    asked = json.load(sys.stdin)
    # an expired access token and the refresh token: pyxero's own refresh gets the first one
    credentials = OAuth2Credentials(asked["client_id"], asked["client_secret"], scope=SCOPE, token={
        "access_token": "expired", "refresh_token": asked["refresh_token"], "token_type": "Bearer",
        "expires_in": -60, "expires_at": time.time() - 60})
    assert credentials.expired()
    credentials.refresh()
    tenants = credentials.get_tenants()
    credentials.set_default_tenant()
    xero = Xero(credentials)
    out: dict[str, Any] = {"tenants": tenants, "tenant_id": credentials.tenant_id,
                           "token_rotated": credentials.token["refresh_token"] != asked["refresh_token"]}
    out["all"] = {name: _read(getattr(xero, name).all) for name in asked.get("all", [])}
    out["get"] = {name: _read(lambda m=getattr(xero, name), i=ident: m.get(i))
                  for name, ident in asked.get("get", {}).items()}
    out["filter"] = {label: _read(lambda m=getattr(xero, name), k=_kwargs(kwargs): m.filter(**k))
                     for label, (name, kwargs) in asked.get("filter", {}).items()}
    json.dump(out, sys.stdout, default=_plain)


if __name__ == "__main__":
    main()
