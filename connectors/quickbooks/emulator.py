"""A stateful, realm-scoped QuickBooks Online emulator that python-quickbooks and intuit-oauth
talk to unchanged.

Wire behaviour reproduced (see shared/reference/api-facts.md §2, §5-§9):

* ``/v3/company/{realm}/{entity}``: create, read, full and sparse update with ``SyncToken``
  (stale -> 5010), ``?operation=delete`` for transactions, ``?operation=void`` (and
  ``?operation=update&include=void`` for payments), ``Active=false`` for names; ``DisplayName``
  unique across customers, ``Name`` across items (6240); faults as ``Fault.Error[{Message,
  Detail, code}]`` (610 not found, 2020 required, 2500 bad reference, 6000 business rule).
* Multicurrency: home currency, ``CurrencyRef`` + ``ExchangeRate``, ``HomeTotalAmt``/``HomeBalance``.
* ``/query`` (the query language in ``qbql``), ``/cdc`` (30-day look-back, <= 1,000 objects,
  deletions as ``status: "Deleted"``), ``/batch`` (<= 30 items, per-item faults).
* ``requestid``: a repeated id returns the original response and changes nothing.
* OAuth: discovery document, token endpoint with rotating refresh tokens (a used one gets
  ``invalid_grant``), access tokens that expire (401 / 3200).
* Throttles per realm (500/min, 10 concurrent, 40 batch/min; adjustable) answered with the XML
  429 body real QBO sends.
* Webhooks signed with ``intuit-signature`` in the legacy and CloudEvents formats.

Control surface beyond the shared one (``connectors.emulation``):

    POST /__emulator/seed     {"realm"?, "home_currency"?, "Customer": [{...}], "Item": [...],
                               "Invoice": [...], "ExchangeRate": [{"SourceCurrencyCode": "EUR",
                               "Rate": "1.08", "AsOfDate": "2026-11-01"}],
                               "refresh_tokens": ["RT-x"], "webhook_verifier_token": "..."}
                              -> {"realm": ..., "Customer": ["1", ...], ...}
    POST /__emulator/edit     {"realm"?, "entity": "Customer", "id": "1", "set": {...}}
                              | {..., "delete": true}   (behind the hub's back)
    POST /__emulator/oauth    {"access_ttl": 3600, "expire_access_tokens": true,
                               "revoke_refresh_tokens": true}
    GET  /__emulator/oauth    {"refreshes": n, "invalid_grant": n, "active_refresh_tokens": n}
    POST /__emulator/throttle {"per_minute": 500, "concurrent": 10, "batch_per_minute": 40,
                               "format": "xml" | "json"}
    POST /__emulator/webhook  {"url": ..., "format": "legacy" | "cloudevents",
                               "events": [{"name": "Customer", "id": "1", "operation": "Update"}],
                               "bad_signature": false} -> {"status": 200, "body": "..."}

Throttle windows run on wall time (``time.monotonic``): the emulator clock is pinned in tests
and would otherwise never let a minute pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from connectors.emulation import CONTROL, Emulator, EmulatorClock, Handler
from connectors.quickbooks import qbql
from mapping.exact_json import dumps, loads

PACIFIC = ZoneInfo("America/Los_Angeles")
DEFAULT_REALM = "9130350000000001"
DEFAULT_CLIENT_ID = "test-client-id"
DEFAULT_CLIENT_SECRET = "test-client-secret"
DEFAULT_REFRESH_TOKEN = "RT-initial"
DEFAULT_VERIFIER_TOKEN = "test-verifier-token"
CENT = Decimal("0.01")

# url segment -> QBO entity name
ENTITIES = {
    "customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment",
    "creditmemo": "CreditMemo", "refundreceipt": "RefundReceipt", "account": "Account",
    "taxcode": "TaxCode", "taxrate": "TaxRate", "companyinfo": "CompanyInfo",
    "preferences": "Preferences", "exchangerate": "ExchangeRate",
}
BY_NAME = {v.lower(): v for v in ENTITIES.values()}
NAME_LISTS = {"Customer", "Item", "Account", "TaxCode", "TaxRate"}  # deactivated, never deleted
SALES_DOCS = {"Invoice", "CreditMemo", "RefundReceipt"}
TRANSACTIONS = SALES_DOCS | {"Payment"}
READ_ONLY = {"CompanyInfo", "Preferences", "TaxCode", "TaxRate"}


def qbo_time(value: datetime) -> str:
    """QBO renders timestamps in Pacific time with an offset, to the second."""
    return value.astimezone(PACIFIC).isoformat(timespec="seconds")


def money(value: Any) -> Decimal:
    """Amounts arrive as JSON numbers or (from python-quickbooks) decimal strings."""
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise Fault(2050, "Invalid Number", f"{value!r} is not a number") from None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _clean(value: Any) -> Any:
    """Drop the ``""`` and ``null`` the SDK sends for unset attributes (dates, amounts, refs)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v not in ("", None)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class Fault(Exception):
    """One QBO fault; rendered as ``{"Fault": {"Error": [...], "type": ...}}``."""

    def __init__(self, code: int, message: str, detail: str = "", status: int = 400,
                 element: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.detail, self.status, self.element = code, message, detail, status, element

    def body(self) -> dict[str, Any]:
        kind = "ValidationFault" if self.code < 10000 else "SystemFault"
        return {"Error": [{"Message": self.message, "Detail": self.detail or self.message,
                           "code": str(self.code), "element": self.element}], "type": kind}


def fault_json(fault: Fault, now: datetime) -> web.Response:
    return web.json_response({"Fault": fault.body(), "time": qbo_time(now)}, status=fault.status)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def sign(body: bytes, verifier_token: str) -> str:
    """``intuit-signature``: base64(HMAC-SHA256(verifier token, raw body))."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def webhook_body(fmt: str, realm: str, events: Iterable[Mapping[str, Any]], now: datetime) -> bytes:
    """A delivery in the legacy ``eventNotifications`` or the CloudEvents format."""
    events = list(events)
    if fmt == "cloudevents":
        out: list[dict[str, Any]] = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "//quickbooks.api.intuit.com",
                "type": f"qbo.{str(e['name']).lower()}.{_past(str(e.get('operation', 'Update')))}.v1",
                "datacontenttype": "application/json",
                "time": e.get("lastUpdated") or now.isoformat().replace("+00:00", "Z"),
                "intuitentityid": str(e["id"]), "intuitaccountid": realm, "data": {}}
               for e in events]
        return json.dumps(out).encode()
    entities = [{"name": e["name"], "id": str(e["id"]), "operation": e.get("operation", "Update"),
                 "lastUpdated": e.get("lastUpdated") or now.isoformat().replace("+00:00", "Z")}
                for e in events]
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": entities}}]}).encode()


def _past(operation: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted", "merge": "merged",
            "void": "voided"}.get(operation.lower(), operation.lower())


# --------------------------------------------------------------------------- state


@dataclass
class Realm:
    realm_id: str
    home_currency: str = "USD"
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    tombstones: list[tuple[str, str, datetime]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    doc_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: deque[float] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> folded name -> Id (active)
    # (entity, path) -> Id -> the lowered text at path, for the paths LIKE queries asked about:
    # the hub's marker lookups ('%hub:…%', one per record of unknown outcome) test a substring
    # of one short string per row instead of walking every stored object.
    texts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.tables.setdefault(entity, {})

    def store(self, entity: str, obj: dict[str, Any]) -> None:
        self.table(entity)[obj["Id"]] = obj
        for (kind, path), column in self.texts.items():
            if kind == entity:
                column[obj["Id"]] = _text_at(obj, path)

    def remove(self, entity: str, object_id: str) -> None:
        del self.table(entity)[object_id]
        for (kind, _path), column in self.texts.items():
            if kind == entity:
                column.pop(object_id, None)

    def text_column(self, entity: str, path: str) -> dict[str, str]:
        column = self.texts.get((entity, path.lower()))
        if column is None:
            column = {oid: _text_at(obj, path) for oid, obj in self.table(entity).items()}
            self.texts[(entity, path.lower())] = column
        return column


def _text_at(obj: Mapping[str, Any], path: str) -> str:
    return str(qbql.value_at(obj, path) or "").lower()


@dataclass
class Throttle:
    per_minute: int = 500
    concurrent: int = 10
    batch_per_minute: int = 40
    format: str = "xml"


@dataclass
class OAuthState:
    clients: dict[str, str] = field(default_factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> "active" | "used"
    access_tokens: dict[str, datetime] = field(default_factory=dict)  # token -> expiry
    access_ttl: int = 3600
    counts: Counter[str] = field(default_factory=Counter)


class QuickBooksEmulator(Emulator):
    system = "quickbooks"

    def __init__(self, clock: EmulatorClock | None = None, *, require_auth: bool = True) -> None:
        self.require_auth = require_auth
        super().__init__(clock)

    # ------------------------------------------------------------------ setup

    def reset_state(self) -> None:
        self.realms: dict[str, Realm] = {}
        self.oauth = OAuthState()
        self.oauth.refresh_tokens[DEFAULT_REFRESH_TOKEN] = "active"
        self.throttle = Throttle()
        self.verifier_token = DEFAULT_VERIFIER_TOKEN
        self.realm(DEFAULT_REALM)

    def realm(self, realm_id: str) -> Realm:
        if realm_id not in self.realms:
            realm = Realm(realm_id)
            self.realms[realm_id] = realm
            self._base_records(realm)
        return self.realms[realm_id]

    def _base_records(self, realm: Realm) -> None:
        """What a new company has: accounts, tax codes, company info, preferences."""
        stamp = {"CreateTime": qbo_time(self.clock.now()), "LastUpdatedTime": qbo_time(self.clock.now())}
        realm.table("Account").update({
            "1": {"Id": "1", "Name": "Services", "AccountType": "Income", "Active": True, "SyncToken": "0",
                  "MetaData": stamp},
            "2": {"Id": "2", "Name": "Checking", "AccountType": "Bank", "Active": True, "SyncToken": "0",
                  "MetaData": stamp},
        })
        realm.table("TaxCode").update({
            "TAX": {"Id": "TAX", "Name": "TAX", "Taxable": True, "Active": True, "SyncToken": "0", "MetaData": stamp},
            "NON": {"Id": "NON", "Name": "NON", "Taxable": False, "Active": True, "SyncToken": "0", "MetaData": stamp},
        })
        realm.table("CompanyInfo")[realm.realm_id] = {
            "Id": realm.realm_id, "CompanyName": "Emulated Company", "Country": "US", "SyncToken": "0",
            "MetaData": stamp}
        self._preferences(realm)
        for _ in range(10):  # ids 1-10 are the base records' namespace
            next(realm.ids)

    def _preferences(self, realm: Realm) -> None:
        realm.table("Preferences")["1"] = {
            "Id": "1", "SyncToken": "0",
            "CurrencyPrefs": {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": realm.home_currency}}}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/.well-known/openid_configuration", self._discovery)
        router.add_post("/oauth2/v1/tokens/bearer", self._token)
        router.add_post(CONTROL + "edit", self._edit)
        router.add_get(CONTROL + "oauth", self._oauth_stats)
        router.add_post(CONTROL + "oauth", self._oauth_control)
        router.add_post(CONTROL + "throttle", self._throttle_control)
        router.add_post(CONTROL + "webhook", self._send_webhook)
        base = "/v3/company/{realm}"
        router.add_post(base + "/query", self._query)
        router.add_get(base + "/query", self._query)
        router.add_get(base + "/cdc", self._cdc)
        router.add_post(base + "/batch", self._batch)
        router.add_get(base + "/exchangerate", self._exchange_rate)
        router.add_get(base + "/{entity}/{id}", self._read)
        router.add_post(base + "/{entity}", self._write_route)

    def stat_key(self, request: web.Request) -> str:
        entity = request.match_info.get("entity")
        if entity:
            return f"{request.method} /v3/company/{{realm}}/{entity}"
        return super().stat_key(request)

    # ------------------------------------------------------------------ wire shapes

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return fault_json(Fault(10000, "An application error has occurred while processing your request",
                                message, status=status), self.clock.now())

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        if self.throttle.format == "json":
            return fault_json(Fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                    "The request limit was reached.", status=429), self.clock.now())
        xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{qbo_time(self.clock.now())}">'
               '<Fault type="SERVICE"><Error code="3001" element="">'
               '<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
               '<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>')
        return web.Response(text=xml, status=429, content_type="application/xml")

    def _auth_fault(self, detail: str) -> web.Response:
        body = {"warnings": None, "intuitObject": None,
                "fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                     "detail": detail, "code": "3200", "element": None}],
                          "type": "AUTHENTICATION"},
                "time": qbo_time(self.clock.now())}
        return web.json_response(body, status=401, headers={"WWW-Authenticate": 'Bearer realm="Intuit"'})

    # ------------------------------------------------------------------ middleware

    def faults_apply(self, request: web.Request) -> bool:
        """Faults hit the accounting API only, never the OAuth endpoints."""
        return request.path.startswith("/v3/") and self.faults.applies(request.path)

    def is_write(self, request: web.Request) -> bool:
        """QBO reads (``/query``) are POSTs too: only real writes count for apply-then-fail."""
        return request.method == "POST" and not request.path.endswith("/query")

    async def serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Auth and the realm's throttles around every ``/v3`` call."""
        if not request.path.startswith("/v3/"):
            return await handler(request)
        if self.require_auth:
            denied = self._check_bearer(request)
            if denied is not None:
                return denied
        realm = self.realm(request.match_info.get("realm", DEFAULT_REALM))
        if self._throttled(realm, request.path.endswith("/batch")):
            self.stats.faults_injected["throttle"] += 1
            return self.rate_limit_response(60)
        realm.in_flight += 1
        try:
            return await handler(request)
        finally:
            realm.in_flight -= 1

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expiry = self.oauth.access_tokens.get(token)
        if expiry is None:
            return self._auth_fault("Token invalid")
        if expiry <= self.clock.now():
            return self._auth_fault("Token expired")
        return None

    def _throttled(self, realm: Realm, batch: bool) -> bool:
        now = time.monotonic()
        for window in (realm.requests, realm.batches):
            while window and window[0] <= now - 60:
                window.popleft()
        if realm.in_flight >= self.throttle.concurrent or len(realm.requests) >= self.throttle.per_minute:
            return True
        if batch and len(realm.batches) >= self.throttle.batch_per_minute:
            return True
        realm.requests.append(now)
        if batch:
            realm.batches.append(now)
        return False

    # ------------------------------------------------------------------ OAuth

    async def _discovery(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return web.json_response({
            "issuer": "https://oauth.platform.intuit.com/op/v1",
            "authorization_endpoint": base + "/connect/oauth2",
            "token_endpoint": base + "/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
            "revocation_endpoint": base + "/oauth2/v1/tokens/revoke",
            "jwks_uri": base + "/op/v1/jwks"})

    def _client_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        expected = self.oauth.clients.get(client_id)
        return expected is not None and hmac.compare_digest(expected, secret)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.oauth.counts["token_calls"] += 1
        if not self._client_ok(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        presented = str(form.get("refresh_token", ""))
        if self.oauth.refresh_tokens.get(presented) != "active":
            self.oauth.counts["invalid_grant"] += 1
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.oauth.refresh_tokens[presented] = "used"
        new_refresh = "RT-" + secrets.token_urlsafe(18)
        access = "AT-" + secrets.token_urlsafe(24)
        self.oauth.refresh_tokens[new_refresh] = "active"
        self.oauth.access_tokens[access] = self.clock.now() + timedelta(seconds=self.oauth.access_ttl)
        self.oauth.counts["refreshes"] += 1
        return web.json_response({"token_type": "bearer", "access_token": access, "refresh_token": new_refresh,
                                  "expires_in": self.oauth.access_ttl,
                                  "x_refresh_token_expires_in": 8726400})

    async def _oauth_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.oauth_stats())

    def oauth_stats(self) -> dict[str, int]:
        active = sum(1 for s in self.oauth.refresh_tokens.values() if s == "active")
        return {"refreshes": self.oauth.counts["refreshes"], "invalid_grant": self.oauth.counts["invalid_grant"],
                "token_calls": self.oauth.counts["token_calls"], "active_refresh_tokens": active}

    async def _oauth_control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.oauth_control(**body)
        return web.json_response(self.oauth_stats())

    def oauth_control(self, access_ttl: int | None = None, expire_access_tokens: bool = False,
                      revoke_refresh_tokens: bool = False, refresh_tokens: list[str] | None = None,
                      access_tokens: list[str] | None = None) -> None:
        if access_ttl is not None:
            self.oauth.access_ttl = int(access_ttl)
        if expire_access_tokens:
            for token in self.oauth.access_tokens:
                self.oauth.access_tokens[token] = self.clock.now()
        if revoke_refresh_tokens:
            self.oauth.refresh_tokens = {t: "used" for t in self.oauth.refresh_tokens}
        for token in refresh_tokens or []:
            self.oauth.refresh_tokens[token] = "active"
        for token in access_tokens or []:
            self.oauth.access_tokens[token] = self.clock.now() + timedelta(seconds=self.oauth.access_ttl)

    async def _throttle_control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        for key, value in body.items():
            if not hasattr(self.throttle, key):
                return web.json_response({"error": f"unknown throttle setting {key}"}, status=400)
            setattr(self.throttle, key, value)
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ control: seed, edit, webhook

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        realm = self.realm(str(body.get("realm", DEFAULT_REALM)))
        if "home_currency" in body:
            realm.home_currency = str(body["home_currency"]).upper()
            self._preferences(realm)
        if "webhook_verifier_token" in body:
            self.verifier_token = str(body["webhook_verifier_token"])
        self.oauth_control(refresh_tokens=body.get("refresh_tokens"), access_tokens=body.get("access_tokens"))
        out: dict[str, Any] = {"realm": realm.realm_id}
        for rate in body.get("ExchangeRate", []):
            self.put_exchange_rate(realm, rate)
        order = ["Account", "Customer", "Item", "Invoice", "CreditMemo", "RefundReceipt", "Payment"]
        async with self.lock:
            for entity in order:
                ids = []
                for obj in body.get(entity, []):
                    saved = self.save(realm, entity, dict(obj))
                    ids.append(saved["Id"])
                if ids:
                    out[entity] = ids
        return out

    def put_exchange_rate(self, realm: Realm, rate: Mapping[str, Any]) -> None:
        source = str(rate["SourceCurrencyCode"]).upper()
        as_of = str(rate.get("AsOfDate") or self.clock.now().date().isoformat())
        key = f"{source}-{as_of}"
        realm.table("ExchangeRate")[key] = {
            "Id": key, "SourceCurrencyCode": source,
            "TargetCurrencyCode": str(rate.get("TargetCurrencyCode", realm.home_currency)),
            "Rate": money(rate["Rate"]), "AsOfDate": as_of, "SyncToken": "0",
            "MetaData": {"LastUpdatedTime": qbo_time(self.clock.now())}}

    def rate_for(self, realm: Realm, currency: str, on: str) -> Decimal | None:
        rows = [r for r in realm.table("ExchangeRate").values()
                if r["SourceCurrencyCode"] == currency and r["AsOfDate"] <= on]
        return max(rows, key=lambda r: r["AsOfDate"])["Rate"] if rows else None

    async def _edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        realm = self.realm(str(body.get("realm", DEFAULT_REALM)))
        try:
            async with self.lock:
                if body.get("delete"):
                    result = self.remove(realm, str(body["entity"]), str(body["id"]))
                else:
                    result = self.edit(realm, str(body["entity"]), str(body["id"]), dict(body.get("set", {})))
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return _json({body["entity"]: result})

    def edit(self, realm: Realm, entity: str, ext_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A sparse change made directly in QuickBooks (a person in the UI)."""
        current = realm.table(entity).get(ext_id)
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {ext_id} not found")
        return self.save(realm, entity, {**changes, "Id": ext_id, "SyncToken": current["SyncToken"],
                                         "sparse": True})

    def remove(self, realm: Realm, entity: str, ext_id: str) -> dict[str, Any]:
        """Delete a transaction, or deactivate a name, directly in QuickBooks."""
        current = realm.table(entity).get(ext_id)
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {ext_id} not found")
        if entity in NAME_LISTS:
            return self.edit(realm, entity, ext_id, {"Active": False})
        return self.delete(realm, entity, {"Id": ext_id, "SyncToken": current["SyncToken"]})

    async def _send_webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        realm = str(body.get("realm", DEFAULT_REALM))
        payload = webhook_body(str(body.get("format", "legacy")), realm, body.get("events", []), self.clock.now())
        signature = sign(payload, self.verifier_token)
        if body.get("bad_signature"):
            signature = sign(payload, self.verifier_token + "-wrong")
        headers = {"intuit-signature": signature, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session, session.post(
                str(body["url"]), data=payload, headers=headers) as response:
            text = await response.text()
        return web.json_response({"status": response.status, "body": text, "payload": payload.decode()})

    # ------------------------------------------------------------------ the write core

    def stamp(self) -> datetime:
        """Each mutation gets its own second; the clock moves on after it, so a read's ``time``
        is strictly later than every change it could have seen."""
        now = self.clock.now()
        self.clock.advance(1)
        return now

    def save(self, realm: Realm, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create, or (with ``Id``) full/sparse update. Raises ``Fault``."""
        if entity in READ_ONLY:
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        f"{entity} cannot be written through this operation")
        body = _clean(body)
        body.pop("domain", None)
        sparse = bool(body.pop("sparse", False))
        table = realm.table(entity)
        ext_id = str(body["Id"]) if body.get("Id") else None
        existing = table.get(ext_id) if ext_id else None
        if ext_id and existing is None:
            raise Fault(610, "Object Not Found", f"Object Not Found : Something you're trying to use has been "
                        f"made inactive. Check the fields with accounts, customers, items, vendors or employees. "
                        f"{entity} Id={ext_id}")
        if existing is not None:
            if str(body.get("SyncToken", "")) != existing["SyncToken"]:
                raise Fault(5010, "Stale Object Error",
                            f"Stale Object Error : You and {entity.lower()} were working on this at the same "
                            f"time. {entity.lower()} finished before you did, so your work was not saved.")
            merged = {**existing, **body} if sparse else {**body, "Id": ext_id}
            merged["MetaData"] = dict(existing["MetaData"])
        else:
            merged = {**body, "Id": str(next(realm.ids))}
            merged["MetaData"] = {}
        obj = self._normalise(realm, entity, merged, existing)
        stamp = qbo_time(self.stamp())
        obj["SyncToken"] = str(int(existing["SyncToken"]) + 1) if existing else "0"
        obj["MetaData"]["LastUpdatedTime"] = stamp
        obj["MetaData"].setdefault("CreateTime", stamp)
        obj["domain"], obj["sparse"] = "QBO", False
        if entity == "Payment":
            if existing is not None:
                self._apply_payment(realm, existing, sign_=+1)
            self._apply_payment(realm, obj, sign_=-1)
        self._index_name(realm, entity, existing, obj)
        realm.store(entity, obj)
        return obj

    def delete(self, realm: Realm, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        f"You can't delete a {entity}; make it inactive instead (Active=false)")
        current = realm.table(entity).get(str(body.get("Id", "")))
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {body.get('Id')} not found")
        if str(body.get("SyncToken", "")) != current["SyncToken"]:
            raise Fault(5010, "Stale Object Error", "Stale Object Error : the object was changed")
        if entity == "Invoice" and money(current.get("Balance")) != money(current.get("TotalAmt")):
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        "This invoice has payments applied; delete or unapply the payments first")
        if entity == "Payment":
            self._apply_payment(realm, current, sign_=+1)
        realm.remove(entity, current["Id"])
        realm.tombstones.append((entity, current["Id"], self.stamp()))
        return {"Id": current["Id"], "status": "Deleted", "domain": "QBO"}

    def void(self, realm: Realm, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if entity not in TRANSACTIONS:
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        f"{entity} cannot be voided")
        current = realm.table(entity).get(str(body.get("Id", "")))
        if current is None:
            raise Fault(610, "Object Not Found", f"{entity} {body.get('Id')} not found")
        if str(body.get("SyncToken", "")) != current["SyncToken"]:
            raise Fault(5010, "Stale Object Error", "Stale Object Error : the object was changed")
        if entity == "Payment":
            self._apply_payment(realm, current, sign_=+1)
        voided = dict(current)
        note = current.get("PrivateNote", "")
        voided["PrivateNote"] = "Voided" + (f" - {note}" if note and not note.startswith("Voided") else "")
        voided["Line"] = [{**line, "Amount": Decimal(0)} for line in current.get("Line", [])]
        for key in ("TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "UnappliedAmt"):
            if key in voided:
                voided[key] = Decimal(0)
        if "TxnTaxDetail" in voided:
            voided["TxnTaxDetail"] = {**voided["TxnTaxDetail"], "TotalTax": Decimal(0)}
        voided["SyncToken"] = str(int(current["SyncToken"]) + 1)
        voided["MetaData"] = {**current["MetaData"], "LastUpdatedTime": qbo_time(self.stamp())}
        realm.store(entity, voided)
        return voided

    # ------------------------------------------------------------------ validation and totals

    def _ref(self, realm: Realm, obj: Mapping[str, Any], key: str, entity: str, required: bool) -> None:
        ref = obj.get(key)
        if not ref:
            if required:
                raise Fault(2020, "Required param missing, need to supply the required value for the API",
                            f"Required parameter {key} is missing in the request", element=key)
            return
        value = str(ref.get("value", "")) if isinstance(ref, Mapping) else ""
        target = realm.table(entity).get(value)
        if target is None or target.get("Active") is False:
            raise Fault(2500, "Invalid Reference Id", f"Invalid Reference Id : {entity} {value!r} does not exist",
                        element=key)

    def _normalise(self, realm: Realm, entity: str, obj: dict[str, Any],
                   existing: Mapping[str, Any] | None) -> dict[str, Any]:
        if entity == "Customer":
            return self._customer(realm, obj)
        if entity == "Item":
            return self._item(realm, obj)
        if entity in TRANSACTIONS:
            return self._transaction(realm, entity, obj, existing)
        obj.setdefault("Active", True)
        return obj

    def _customer(self, realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj.get("DisplayName") or obj.get("CompanyName") or " ".join(
            p for p in (obj.get("GivenName"), obj.get("FamilyName")) if p)
        if not name:
            raise Fault(2020, "Required param missing, need to supply the required value for the API",
                        "Required parameter DisplayName is missing in the request", element="DisplayName")
        if ":" in name:
            raise Fault(2050, "Invalid String", "DisplayName cannot contain a colon (:)", element="DisplayName")
        obj["DisplayName"] = name
        obj.setdefault("Active", True)
        if obj["Active"]:
            self._unique_name(realm, "Customer", "DisplayName", obj)
        elif not str(name).endswith("(deleted)"):
            obj["DisplayName"] = f"{name} (deleted)"
        obj["FullyQualifiedName"] = obj["DisplayName"]
        obj.setdefault("CurrencyRef", {"value": realm.home_currency})
        obj.setdefault("Balance", Decimal(0))
        return obj

    def _item(self, realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
        if not obj.get("Name"):
            raise Fault(2020, "Required param missing, need to supply the required value for the API",
                        "Required parameter Name is missing in the request", element="Name")
        obj.setdefault("Active", True)
        obj.setdefault("Type", "Service")
        if obj["Active"]:
            self._unique_name(realm, "Item", "Name", obj)
        if obj["Type"] in ("Service", "NonInventory"):
            obj.setdefault("IncomeAccountRef", {"value": "1", "name": "Services"})
            self._ref(realm, obj, "IncomeAccountRef", "Account", required=True)
        obj["FullyQualifiedName"] = obj["Name"]
        return obj

    NAME_KEYS = {"Customer": "DisplayName", "Item": "Name"}

    @staticmethod
    def _fold(name: Any) -> str:
        return " ".join(str(name or "").split()).casefold()

    def _unique_name(self, realm: Realm, entity: str, key: str, obj: Mapping[str, Any]) -> None:
        holder = realm.names.setdefault(entity, {}).get(self._fold(obj[key]))
        if holder is not None and holder != obj["Id"]:
            raise Fault(6240, "Duplicate Name Exists Error",
                        f"The name supplied already exists. : Another {entity.lower()}, vendor or employee "
                        f"is already using this name. Please use a different name. Id={holder}",
                        element=key)

    def _index_name(self, realm: Realm, entity: str, old: Mapping[str, Any] | None,
                    new: Mapping[str, Any]) -> None:
        key = self.NAME_KEYS.get(entity)
        if key is None:
            return
        index = realm.names.setdefault(entity, {})
        if old is not None and index.get(self._fold(old.get(key))) == old["Id"]:
            del index[self._fold(old.get(key))]
        if new.get("Active", True):
            index[self._fold(new.get(key))] = new["Id"]

    def _transaction(self, realm: Realm, entity: str, obj: dict[str, Any],
                     existing: Mapping[str, Any] | None) -> dict[str, Any]:
        self._ref(realm, obj, "CustomerRef", "Customer", required=True)
        obj.setdefault("TxnDate", self.clock.now().astimezone(PACIFIC).date().isoformat())
        try:
            date.fromisoformat(str(obj["TxnDate"]))
        except ValueError:
            raise Fault(2010, "Invalid Date", f"TxnDate {obj['TxnDate']!r} is not a date") from None
        currency = str(obj.setdefault("CurrencyRef", {"value": realm.home_currency}).get("value")).upper()
        obj["CurrencyRef"] = {"value": currency}
        if currency == realm.home_currency:
            obj["ExchangeRate"] = Decimal(1)
        else:
            rate = money(obj["ExchangeRate"]) if obj.get("ExchangeRate") not in (None, "", 0) else \
                self.rate_for(realm, currency, str(obj["TxnDate"]))
            if rate is None or rate <= 0:
                raise Fault(6000, "A business validation error has occurred while processing your request",
                            f"No exchange rate for {currency} on {obj['TxnDate']}; supply ExchangeRate")
            obj["ExchangeRate"] = rate
        if entity == "Payment":
            return self._payment(realm, obj)
        if entity == "RefundReceipt":
            obj.setdefault("DepositToAccountRef", {"value": "2", "name": "Checking"})
            self._ref(realm, obj, "DepositToAccountRef", "Account", required=True)
        lines, subtotal, discount = [], Decimal(0), Decimal(0)
        for number, line in enumerate(x for x in obj.get("Line", []) if x.get("DetailType") != "SubTotalLineDetail"):
            line = dict(line)
            kind = line.get("DetailType")
            if kind == "SalesItemLineDetail":
                detail = dict(line.get("SalesItemLineDetail") or {})
                if "Amount" not in line:
                    raise Fault(2020, "Required param missing, need to supply the required value for the API",
                                "Required parameter Line.Amount is missing in the request", element="Amount")
                amount = money(line["Amount"])
                if "Qty" in detail and "UnitPrice" in detail and \
                        cents(money(detail["Qty"]) * money(detail["UnitPrice"])) != cents(amount):
                    raise Fault(6070, "Amount is not equal to UnitPrice * Qty",
                                f"Amount {amount} is not equal to UnitPrice * Qty", element="Amount")
                if detail.get("ItemRef"):
                    self._ref(realm, detail, "ItemRef", "Item", required=True)
                if detail.get("TaxCodeRef"):
                    self._ref(realm, detail, "TaxCodeRef", "TaxCode", required=True)
                line["SalesItemLineDetail"] = detail
                line["Amount"] = cents(amount)
                subtotal += line["Amount"]
            elif kind == "DiscountLineDetail":
                line["Amount"] = cents(money(line.get("Amount")))
                discount += line["Amount"]
            elif kind == "DescriptionOnly":
                line["Amount"] = Decimal(0)
            else:
                raise Fault(2010, "Invalid Enumeration", f"Line DetailType {kind!r} is not supported",
                            element="DetailType")
            line["Id"], line["LineNum"] = str(number + 1), number + 1
            lines.append(line)
        if not lines:
            raise Fault(2020, "Required param missing, need to supply the required value for the API",
                        "Required parameter Line is missing in the request", element="Line")
        tax = cents(money((obj.get("TxnTaxDetail") or {}).get("TotalTax")))
        obj["TxnTaxDetail"] = {**(obj.get("TxnTaxDetail") or {}), "TotalTax": tax}
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        obj["Line"] = lines
        inclusive = obj.get("GlobalTaxCalculation") == "TaxInclusive"
        total = subtotal - discount + (Decimal(0) if inclusive else tax)
        obj["TotalAmt"] = total
        if entity in SALES_DOCS and not obj.get("DocNumber"):
            obj["DocNumber"] = str(next(realm.doc_numbers))
        if len(str(obj.get("DocNumber", ""))) > 21:
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        "DocNumber is longer than 21 characters", element="DocNumber")
        paid = Decimal(0)
        if existing is not None and entity == "Invoice":
            paid = money(existing.get("TotalAmt")) - money(existing.get("Balance"))
        if entity in ("Invoice", "CreditMemo"):
            obj["Balance"] = total - paid
        if currency != realm.home_currency:
            obj["HomeTotalAmt"] = cents(total * obj["ExchangeRate"])
            if "Balance" in obj:
                obj["HomeBalance"] = cents(obj["Balance"] * obj["ExchangeRate"])
        return obj

    def _payment(self, realm: Realm, obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("TotalAmt") in (None, ""):
            raise Fault(2020, "Required param missing, need to supply the required value for the API",
                        "Required parameter TotalAmt is missing in the request", element="TotalAmt")
        total = cents(money(obj["TotalAmt"]))
        applied, lines = Decimal(0), []
        for line in obj.get("Line", []):
            line = dict(line)
            amount = cents(money(line.get("Amount")))
            for linked in line.get("LinkedTxn", []):
                if linked.get("TxnType") == "Invoice":
                    invoice = realm.table("Invoice").get(str(linked.get("TxnId")))
                    if invoice is None:
                        raise Fault(2500, "Invalid Reference Id",
                                    f"Invalid Reference Id : Invoice {linked.get('TxnId')!r} does not exist")
                    if invoice["CustomerRef"]["value"] != obj["CustomerRef"]["value"]:
                        raise Fault(6000, "A business validation error has occurred while processing your request",
                                    "The invoice belongs to another customer")
            line["Amount"] = amount
            applied += amount
            lines.append(line)
        if applied > total:
            raise Fault(6000, "A business validation error has occurred while processing your request",
                        "The payment amount is less than the amounts applied to transactions")
        obj["Line"], obj["TotalAmt"], obj["UnappliedAmt"] = lines, total, total - applied
        if obj["CurrencyRef"]["value"] != realm.home_currency:
            obj["HomeTotalAmt"] = cents(total * obj["ExchangeRate"])
        return obj

    def _apply_payment(self, realm: Realm, payment: Mapping[str, Any], sign_: int) -> None:
        """Move invoice balances: -1 applies a payment, +1 takes it back (update/delete/void)."""
        for line in payment.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                invoice = realm.table("Invoice").get(str(linked.get("TxnId")))
                if linked.get("TxnType") != "Invoice" or invoice is None:
                    continue
                balance = money(invoice.get("Balance")) + sign_ * money(line.get("Amount"))
                if balance < 0:
                    raise Fault(6000, "A business validation error has occurred while processing your request",
                                f"The amount applied exceeds the open balance of invoice {invoice['Id']}")
                invoice["Balance"] = balance
                if "HomeBalance" in invoice:
                    invoice["HomeBalance"] = cents(balance * money(invoice.get("ExchangeRate", 1)))
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                invoice["MetaData"] = {**invoice["MetaData"], "LastUpdatedTime": qbo_time(self.clock.now())}

    # ------------------------------------------------------------------ handlers

    def _entity(self, request: web.Request) -> str:
        segment = request.match_info.get("entity", "").lower()
        if segment not in ENTITIES:
            raise Fault(4000, "Unsupported Operation", f"Operation {segment} is not supported", status=400)
        return ENTITIES[segment]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        text = await request.text()
        try:
            body = loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            raise Fault(2010, "Request has invalid or unsupported property", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Fault(2010, "Request has invalid or unsupported property", "the body must be an object")
        return body

    def _one(self, realm: Realm, entity: str, body: dict[str, Any], operation: str, include: str) -> dict[str, Any]:
        if operation == "delete":
            return self.delete(realm, entity, body)
        if operation == "void" or include == "void":
            return self.void(realm, entity, body)
        return self.save(realm, entity, body)

    async def _write_route(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        request_id = request.query.get("requestid")
        key = f"{request_id}"
        if request_id and key in realm.replies:
            status, reply = realm.replies[key]
            return _json(reply, status)
        try:
            entity = self._entity(request)
            body = await self._body(request)
            async with self.lock:
                obj = self._one(realm, entity, body, request.query.get("operation", ""),
                                request.query.get("include", ""))
            status, reply = 200, {entity: obj, "time": qbo_time(self.clock.now())}
        except Fault as fault:
            status, reply = fault.status, {"Fault": fault.body(), "time": qbo_time(self.clock.now())}
        if request_id:
            realm.replies[key] = (status, loads(dumps(reply)))
        return _json(reply, status)

    async def _read(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        try:
            entity = self._entity(request)
            obj = realm.table(entity).get(request.match_info["id"])
            if obj is None:
                raise Fault(610, "Object Not Found",
                            f"Object Not Found : Something you're trying to use has been made inactive. "
                            f"{entity} Id={request.match_info['id']}")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return _json({entity: obj, "time": qbo_time(self.clock.now())})

    async def _exchange_rate(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        currency = request.query.get("sourcecurrencycode", "").upper()
        on = request.query.get("asofdate") or self.clock.now().date().isoformat()
        rows = [r for r in realm.table("ExchangeRate").values()
                if r["SourceCurrencyCode"] == currency and r["AsOfDate"] <= on]
        if not rows:
            return fault_json(Fault(610, "Object Not Found", f"No exchange rate for {currency} on {on}"),
                              self.clock.now())
        return _json({"ExchangeRate": max(rows, key=lambda r: r["AsOfDate"]), "time": qbo_time(self.clock.now())})

    def run_query(self, realm: Realm, text: str) -> dict[str, Any]:
        try:
            query = qbql.parse(text)
        except qbql.QueryError as exc:
            raise Fault(4000, "Error parsing query", str(exc)) from None
        entity = BY_NAME.get(query.entity.lower())
        if entity is None:
            raise Fault(4000, "Error parsing query", f"QueryParserError: Invalid entity {query.entity!r}")
        rows = self._candidates(realm, entity, query)
        if entity in NAME_LISTS and not query.mentions("Active") and not query.mentions("Id"):
            rows = [r for r in rows if r.get("Active", True)]
        rows = [r for r in rows if all(qbql.matches(r, c) for c in query.where)]
        if query.count:
            return {"QueryResponse": {"totalCount": len(rows)}}
        order = query.order_by or "Id"
        rows.sort(key=lambda r: qbql.sort_key(r, order), reverse=query.descending)
        page = rows[query.start - 1: query.start - 1 + query.max_results]
        response: dict[str, Any] = {"startPosition": query.start, "maxResults": len(page)}
        if page:
            response[entity] = page
        return {"QueryResponse": response}

    @staticmethod
    def _candidates(realm: Realm, entity: str, query: qbql.Query) -> list[dict[str, Any]]:
        """The rows a query can match: for a ``LIKE '%text%'`` condition, those whose text holds
        it (from the realm's text column); otherwise all. Every condition is still checked."""
        table = realm.table(entity)
        for cond in query.where:
            pattern = str(cond.value)
            if cond.op == "LIKE" and len(pattern) > 2 and pattern[0] == pattern[-1] == "%" \
                    and "%" not in pattern[1:-1]:
                needle = pattern[1:-1].lower()
                return [table[oid] for oid, text in realm.text_column(entity, cond.path).items() if needle in text]
        return list(table.values())

    async def _query(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        text = request.query.get("query") if request.method == "GET" else await request.text()
        try:
            result = self.run_query(realm, text or "")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return _json({**result, "time": qbo_time(self.clock.now())})

    async def _cdc(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        now = self.clock.now()
        try:
            since_text = request.query.get("changedSince", "")
            try:
                since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
            except ValueError:
                raise Fault(2010, "Invalid Date", f"changedSince {since_text!r} is not a timestamp") from None
            if since.tzinfo is None:
                since = since.replace(tzinfo=PACIFIC)
            if since < now - timedelta(days=30):
                raise Fault(2010, "Invalid changedSince",
                            "changedSince must be within the last 30 days; use a query on "
                            "MetaData.LastUpdatedTime instead")
            names = [BY_NAME.get(n.strip().lower()) for n in request.query.get("entities", "").split(",") if n]
            if not names or None in names:
                raise Fault(2010, "Invalid entities", f"unknown entity in {request.query.get('entities')!r}")
        except Fault as fault:
            return fault_json(fault, now)
        changes: list[tuple[datetime, str, dict[str, Any]]] = []
        for entity in names:
            assert entity is not None
            for obj in realm.table(entity).values():
                changed = datetime.fromisoformat(obj["MetaData"]["LastUpdatedTime"])
                if changed >= since:
                    changes.append((changed, entity, obj))
            for dead_entity, dead_id, when in realm.tombstones:
                if dead_entity == entity and when >= since:
                    changes.append((when, entity, {"Id": dead_id, "status": "Deleted", "domain": "QBO",
                                                   "MetaData": {"LastUpdatedTime": qbo_time(when)}}))
        changes.sort(key=lambda c: c[0])
        changes = changes[:1000]
        responses = []
        for entity in names:
            assert entity is not None
            objs = [o for _w, e, o in changes if e == entity]
            block: dict[str, Any] = {"startPosition": 1, "maxResults": len(objs), "totalCount": len(objs)}
            if objs:
                block[entity] = objs
            responses.append(block)
        return _json({"CDCResponse": [{"QueryResponse": responses}], "time": qbo_time(now)})

    async def _batch(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        try:
            body = await self._body(request)
            items = body.get("BatchItemRequest")
            if not isinstance(items, list) or not items:
                raise Fault(2020, "Required param missing, need to supply the required value for the API",
                            "BatchItemRequest is missing")
            if len(items) > 30:
                raise Fault(6000, "A business validation error has occurred while processing your request",
                            f"Batch size {len(items)} exceeds the maximum of 30 items")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        out = []
        async with self.lock:
            for item in items:
                out.append(self._batch_item(realm, item))
        return _json({"BatchItemResponse": out, "time": qbo_time(self.clock.now())})

    def _batch_item(self, realm: Realm, item: Mapping[str, Any]) -> dict[str, Any]:
        bid = item.get("bId")
        try:
            if "Query" in item:
                return {"bId": bid, **self.run_query(realm, str(item["Query"]))}
            names = [k for k in item if k in BY_NAME.values()]
            if len(names) != 1:
                raise Fault(2010, "Request has invalid or unsupported property", "one entity per batch item")
            entity = names[0]
            operation = str(item.get("operation", "create"))
            body = dict(item[entity])
            if operation == "create":
                body.pop("Id", None)
            elif operation == "update" and not body.get("Id"):
                raise Fault(2020, "Required param missing, need to supply the required value for the API",
                            "Required parameter Id is missing in the request")
            obj = self._one(realm, entity, body, operation if operation in ("delete", "void") else "", "")
            return {"bId": bid, entity: obj}
        except Fault as fault:
            return {"bId": bid, "Fault": fault.body()}
