"""The vendor side of ``hub connect``: the OAuth 2.0 authorization-code flow of QuickBooks, Xero
and Salesforce — the authorize URL (with PKCE S256 where the vendor supports it), the code
exchange, which company/organisation/org the grant is for, and revocation.

Facts (vendor docs): Intuit's consent is ``appcenter.intuit.com/connect/oauth2`` with scope
``com.intuit.quickbooks.accounting`` and redirects back with ``code``, ``state`` and the
company's ``realmId``; its revoke endpoint takes ``{"token": ...}`` as JSON with Basic client
credentials. Xero's is ``login.xero.com/identity/connect/authorize`` (PKCE S256 supported); the
tenants a grant covers are ``GET api.xero.com/connections`` (``tenantId``); revocation is
``identity.xero.com/connect/revocation``. Salesforce's web server flow is
``/services/oauth2/authorize`` (PKCE supported), its token answer names the org as
``instance_url``, and ``/services/oauth2/revoke`` revokes a token.

Nothing here logs or returns a token in text: ``Connected.__repr__`` hides them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

OAUTH_SYSTEMS = ("quickbooks", "xero", "salesforce")
# The config key that names the place a grant is for; ``hub connect`` stores it beside the tokens.
PLACE_KEYS = {"quickbooks": "realm_id", "xero": "tenant_id", "salesforce": "instance_url"}
SCOPES = {"quickbooks": "com.intuit.quickbooks.accounting",
          "xero": "offline_access accounting.transactions accounting.contacts accounting.settings",
          "salesforce": "api refresh_token"}
PKCE = {"quickbooks": False, "xero": True, "salesforce": True}
VENDORS = {"quickbooks": "QuickBooks", "xero": "Xero", "salesforce": "Salesforce"}
TIMEOUT = 30.0


class ConnectError(Exception):
    """The flow cannot finish; the message says what to do (never holds a token)."""


@dataclass(frozen=True)
class Authorization:
    """One authorize request: the URL to open and what the callback is checked against."""

    url: str
    state: str
    redirect_uri: str
    code_verifier: str | None = field(default=None, repr=False)


@dataclass
class Connected:
    """A code exchanged: the tokens and where they are for (realm, tenant or instance)."""

    access_token: str
    refresh_token: str
    expires_in: float
    place_key: str
    place: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show tokens
        return f"Connected({self.place_key}={self.place!r})"


def pkce_pair() -> tuple[str, str]:
    """RFC 7636: a 43-character verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization(system: str, settings: Mapping[str, Any], redirect_uri: str) -> Authorization:
    """The authorize URL for a connection's app, with a fresh random state (and PKCE pair)."""
    state = secrets.token_urlsafe(24)
    params = {"client_id": str(settings["client_id"]), "response_type": "code",
              "scope": SCOPES[system], "redirect_uri": redirect_uri, "state": state}
    verifier = None
    if PKCE[system]:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return Authorization(f"{settings['authorize_url']}?{urlencode(params)}", state, redirect_uri, verifier)


def _verify(settings: Mapping[str, Any]) -> bool | str:
    return str(settings.get("ca_bundle") or "") or True


def _client_auth(system: str, settings: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(form fields, headers): Intuit and Xero take Basic client credentials, Salesforce the form."""
    client_id, secret = str(settings["client_id"]), str(settings["client_secret"])
    if system == "salesforce":
        return {"client_id": client_id, "client_secret": secret}, {}
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {}, {"Authorization": "Basic " + basic}


def _answer(response: requests.Response, what: str, vendor: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", "") if isinstance(body, dict) else ""
        detail = body.get("error_description", "") if isinstance(body, dict) else ""
        raise ConnectError(f"{vendor} refused the {what} (HTTP {response.status_code} {error}"
                           f"{': ' + detail if detail else ''})")
    return body


def exchange(system: str, settings: Mapping[str, Any], auth: Authorization, callback: Mapping[str, str],
             *, tenant: str | None = None, session: requests.Session | None = None) -> Connected:
    """Check the callback's state, exchange its code, and pick the place the grant is for."""
    vendor = VENDORS[system]
    if callback.get("error"):
        raise ConnectError(f"{vendor} did not grant access: {callback['error']}"
                           f"{' (' + callback['error_description'] + ')' if callback.get('error_description') else ''}")
    if not secrets.compare_digest(callback.get("state", ""), auth.state):
        raise ConnectError("the callback's state does not match this request: refused (start again)")
    if not callback.get("code"):
        raise ConnectError(f"{vendor} redirected back without a code")
    http = session or requests.Session()
    form, headers = _client_auth(system, settings)
    form.update(grant_type="authorization_code", code=callback["code"], redirect_uri=auth.redirect_uri)
    if auth.code_verifier:
        form["code_verifier"] = auth.code_verifier
    response = http.post(str(settings["token_url"]), data=form, timeout=TIMEOUT, verify=_verify(settings),
                         headers={**headers, "Accept": "application/json"})
    body = _answer(response, "authorization code", vendor)
    if not body.get("access_token") or not body.get("refresh_token"):
        raise ConnectError(f"{vendor}'s token answer has no refresh token (is offline access in the scope?)")
    expires_in = float(body.get("expires_in") or settings.get("session_seconds") or 3600)
    connected = Connected(str(body["access_token"]), str(body["refresh_token"]), expires_in,
                          PLACE_KEYS[system], "")
    if system == "quickbooks":
        connected.place = callback.get("realmId", "")
        if not connected.place:
            raise ConnectError("QuickBooks redirected back without a realmId (the company)")
    elif system == "salesforce":
        connected.place = str(body.get("instance_url") or "")
        if not connected.place:
            raise ConnectError("Salesforce's token answer has no instance_url")
        connected.extra["instance_url"] = connected.place
        if body.get("id"):  # the identity URL: its last part is the integration user (hub setup salesforce)
            connected.extra["identity"] = str(body["id"])
    else:
        connected.place = _xero_tenant(settings, connected.access_token, tenant, http)
        connected.extra["scope"] = SCOPES["xero"]  # space-separated, as the token answer says it
    return connected


def _xero_tenant(settings: Mapping[str, Any], access_token: str, wanted: str | None,
                 http: requests.Session) -> str:
    """The one tenant the grant covers, or ``wanted`` among several (else say how to choose)."""
    response = http.get(str(settings["identity_base"]).rstrip("/") + "/connections", timeout=TIMEOUT,
                        headers={"Authorization": "Bearer " + access_token, "Accept": "application/json"})
    if response.status_code != 200:
        raise ConnectError(f"Xero GET /connections answered HTTP {response.status_code}")
    tenants = [t for t in response.json() if t.get("tenantType", "ORGANISATION") == "ORGANISATION"]
    ids = [str(t["tenantId"]) for t in tenants]
    if wanted:
        if wanted not in ids:
            raise ConnectError(f"tenant {wanted} is not among the organisations this consent covers: "
                               + ", ".join(f"{t['tenantId']} ({t.get('tenantName')})" for t in tenants))
        return wanted
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise ConnectError("the consent covers no Xero organisation: choose one on Xero's consent page")
    listing = "; ".join(f"{t['tenantId']} ({t.get('tenantName')})" for t in tenants)
    raise ConnectError(f"the consent covers {len(ids)} Xero organisations: {listing}. Run hub connect again "
                       "with --tenant TENANT_ID (or set tenant_id in the connection's config)")


def revoke(system: str, settings: Mapping[str, Any], refresh_token: str,
           session: requests.Session | None = None) -> None:
    """Revoke the grant at the vendor (RFC 7009; Intuit's takes JSON)."""
    http = session or requests.Session()
    form, headers = _client_auth(system, settings)
    url = str(settings["revoke_url"])
    if system == "quickbooks":
        response = http.post(url, json={"token": refresh_token}, timeout=TIMEOUT, verify=_verify(settings),
                             headers={**headers, "Accept": "application/json"})
    else:
        response = http.post(url, data={**form, "token": refresh_token, "token_type_hint": "refresh_token"},
                             timeout=TIMEOUT, verify=_verify(settings), headers=headers)
    if response.status_code != 200:
        raise ConnectError(f"{VENDORS[system]} refused the revocation (HTTP {response.status_code})")


__all__ = ["OAUTH_SYSTEMS", "PLACE_KEYS", "Authorization", "ConnectError", "Connected", "authorization",
           "exchange", "pkce_pair", "revoke"]
