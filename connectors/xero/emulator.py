"""A stateful, tenant-scoped Xero emulator that ``xero-python`` talks to unchanged.

Wire behaviour it reproduces (see shared/reference/api-facts.md §3, §5-§9):

* ``POST /connect/token``: refresh grant only; access tokens live 30 minutes, every refresh
  returns a new refresh token, and a used refresh token keeps working for a 30-minute grace
  period (so a client that lost the response can retry) and is refused afterwards.
* ``GET /connections`` and ``/Connections`` list the tenants the token may use; every
  accounting call needs a known ``xero-tenant-id``.
* ``/api.xro/2.0/{Contacts,Items,Invoices,Payments,CreditNotes,Currencies,TaxRates,Accounts}``:
  GET by id, ``where``, ``order``, ``page``/``pageSize`` (<= 1000), ``If-Modified-Since`` (ISO or
  RFC 1123) against ``UpdatedDateUTC``, ``includeArchived``; PUT (create) and POST (create or
  update) with up to 50 items; ``summarizeErrors=False`` answers 200 with per-item
  ``HasErrors``/``ValidationErrors``, otherwise any invalid item fails the whole request with
  Xero's 400 ``ValidationException`` and nothing is saved.
* Totals computed from lines, tax rates and ``LineAmountTypes``; payments reduce ``AmountDue``
  and mark an invoice PAID; credit-note allocations likewise; contact names unique among
  active contacts; invoice numbers unique.
* ``Idempotency-Key`` replays the first answer for PUT/POST.
* Limits per tenant (60/min, 5,000/day, 5 concurrent) and app-wide (10,000/min), answered with
  429, ``Retry-After`` and ``X-Rate-Limit-Problem``; ``X-MinLimit-Remaining``,
  ``X-DayLimit-Remaining`` and ``X-AppMinLimit-Remaining`` on every API response.
* Webhooks signed ``x-xero-signature = base64(HMAC-SHA256(webhook_key, body))``, including the
  intent-to-receive check (one correctly and one incorrectly signed empty delivery).

Extra control calls (besides the shared reset/seed/stats/faults/clock):

    POST /__emulator/limits   {"minute": 60, "day": 5000, "concurrent": 5, "app_minute": 10000}
    POST /__emulator/webhooks {"url": "...", "events": [...] | omitted = pending, "valid": true}
    POST /__emulator/intent   {"url": "..."} -> {"valid_status", "invalid_status", "passed"}
    POST /__emulator/tokens   {"refresh_token": "...", "access_token": "..."} (issue a grant)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import aiohttp
from aiohttp import web

from connectors.emulation import Emulator, EmulatorClock
from connectors.xero import wire
from mapping.xero_dates import parse_date

API = "/api.xro/2.0"
ACCESS_TTL = 1800
REFRESH_GRACE = timedelta(minutes=30)
REFRESH_UNUSED_TTL = timedelta(days=60)
MAX_BATCH = 50
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

DEFAULT_TENANT = "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
DEFAULT_CLIENT_ID = "billhub-test-client"
DEFAULT_CLIENT_SECRET = "billhub-test-secret"
DEFAULT_REFRESH_TOKEN = "rt-initial"
DEFAULT_WEBHOOK_KEY = "billhub-test-webhook-key"

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")

# collection -> (id field, element name, marker of "archived/deleted" to hide by default)
COLLECTIONS: dict[str, tuple[str, str]] = {
    "Contacts": ("ContactID", "Contact"),
    "Items": ("ItemID", "Item"),
    "Invoices": ("InvoiceID", "Invoice"),
    "Payments": ("PaymentID", "Payment"),
    "CreditNotes": ("CreditNoteID", "CreditNote"),
    "Currencies": ("Code", "Currency"),
    "TaxRates": ("TaxType", "TaxRate"),
    "Accounts": ("AccountID", "Account"),
}
PAGED = frozenset({"Contacts", "Invoices", "Payments", "CreditNotes"})
WRITABLE = frozenset({"Contacts", "Items", "Invoices", "Payments", "CreditNotes"})
TWO = Decimal("0.01")


class Invalid(Exception):
    """A validation error on one item (Xero's ``ValidationErrors[].Message``)."""


@dataclass
class Limits:
    minute: int = 60
    day: int = 5000
    concurrent: int = 5
    app_minute: int = 10000


@dataclass
class Tenant:
    tenant_id: str
    name: str
    base_currency: str = "USD"
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    idempotency: dict[str, tuple[int, str]] = field(default_factory=dict)
    minute_calls: deque[datetime] = field(default_factory=deque)
    day_calls: deque[datetime] = field(default_factory=deque)
    in_flight: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    # (collection, field, normal form) -> ids of records ever saved with that value: Xero's
    # uniqueness rules checked without reading every record. Entries are only added, so each
    # lookup checks the candidates' current values (a rolled-back or renamed record drops out).
    keyed: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def table(self, collection: str) -> dict[str, dict[str, Any]]:
        return self.data.setdefault(collection, {})

    def note_keys(self, collection: str, record: dict[str, Any]) -> None:
        for field_name in KEYED_FIELDS.get(collection, ()):
            value = _key_form(record.get(field_name))
            if value:
                self.keyed.setdefault((collection, field_name, value), set()).add(record[COLLECTIONS[collection][0]])

    def with_key(self, collection: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        """Stored records of ``collection`` whose ``field_name`` has ``value``'s normal form."""
        wanted, table = _key_form(value), self.table(collection)
        found = (table.get(i) for i in sorted(self.keyed.get((collection, field_name, wanted), ())))
        return [r for r in found if r is not None and _key_form(r.get(field_name)) == wanted]

    def next_number(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}-{self.counters[prefix]:04d}"


@dataclass
class RefreshGrant:
    client_id: str
    tenants: list[str]
    issued_at: datetime
    used_at: datetime | None = None


def _dec(value: Any, what: str) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise Invalid(f"{what} must be a number") from None
    if not result.is_finite():
        raise Invalid(f"{what} must be a number")
    return result


KEYED_FIELDS = {"Contacts": ("Name",), "Invoices": ("InvoiceNumber",), "CreditNotes": ("CreditNoteNumber",)}


def _key_form(value: Any) -> str:
    """Names are unique regardless of case and surrounding spaces; so the index keys them."""
    return str(value or "").strip().casefold()


def _replace(table: dict[str, dict[str, Any]], id_field: str, record: dict[str, Any],
             **changes: Any) -> dict[str, Any]:
    """Store a copy of ``record`` (with ``changes``) in its place and return the copy, for the
    caller to change further: a batch's snapshot shares the stored records, so they are never
    edited in place."""
    copy_ = {**record, **changes}
    table[record[id_field]] = copy_
    return copy_


def _money(value: Decimal) -> Decimal:
    return value.quantize(TWO, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- where / order


_CLAUSE = re.compile(
    r'^\s*([A-Za-z][A-Za-z0-9_.]*)(?:\.(ToLower|ToUpper)\(\))?\s*(==|!=|>=|<=|>|<)\s*'
    r'(?:"((?:[^"\\]|\\.)*)"|(null|true|false|-?\d+(?:\.\d+)?)|(DateTime\([^)]*\)))\s*$'
)


def _get_path(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _compile_where(text: str) -> Callable[[dict[str, Any]], bool]:
    """A tiny subset of Xero's where grammar: ``A=="x" AND B!=null OR C>=1`` (AND binds tighter)."""
    alternatives = []
    for alt in re.split(r"\s+OR\s+|\s*\|\|\s*", text.strip()):
        clauses = []
        for part in re.split(r"\s+AND\s+|\s*&&\s*", alt):
            match = _CLAUSE.match(part)
            if not match:
                raise Invalid(f"Invalid where clause: {part.strip()!r}")
            path, fn, op, quoted, literal, dt = match.groups()
            if quoted is not None:
                wanted: Any = quoted.replace('\\"', '"')
            elif dt is not None:
                nums = [int(n) for n in re.findall(r"\d+", dt)]
                wanted = datetime(nums[0], nums[1], nums[2], tzinfo=UTC) if len(nums) >= 3 else None
            elif literal == "null":
                wanted = None
            elif literal in ("true", "false"):
                wanted = literal == "true"
            else:
                wanted = Decimal(str(literal))
            clauses.append((path, fn, op, wanted))
        alternatives.append(clauses)

    def test(obj: dict[str, Any]) -> bool:
        for clauses in alternatives:
            if all(_match(obj, *c) for c in clauses):
                return True
        return False

    return test


def _match(obj: dict[str, Any], path: str, fn: str | None, op: str, wanted: Any) -> bool:
    value = _get_path(obj, path)
    if isinstance(value, str) and fn:
        value = value.lower() if fn == "ToLower" else value.upper()
    if op == "==":
        return bool(value == wanted)
    if op == "!=":
        return bool(value != wanted)
    if value is None or wanted is None:
        return False
    try:
        if op == ">":
            return bool(value > wanted)
        if op == "<":
            return bool(value < wanted)
        if op == ">=":
            return bool(value >= wanted)
        return bool(value <= wanted)
    except TypeError:
        return False


# --------------------------------------------------------------------------- the emulator


class XeroEmulator(Emulator):
    system = "xero"

    def __init__(self, clock: EmulatorClock | None = None, *, limits: Limits | None = None,
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 webhook_key: str = DEFAULT_WEBHOOK_KEY) -> None:
        self.limits = limits or Limits()
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_key = webhook_key
        super().__init__(clock)

    # -- state ----------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.access_tokens: dict[str, tuple[datetime, list[str]]] = {}
        self.app_minute_calls: deque[datetime] = deque()
        self.pending_events: list[dict[str, Any]] = []
        self.refresh_refusals = 0
        # Set to a list to record every API answer (the spec-validation test reads it).
        self.captured: list[dict[str, Any]] | None = getattr(self, "captured", None)
        self.add_tenant(DEFAULT_TENANT, "Billhub Demo Org")
        self.issue_refresh_token(DEFAULT_REFRESH_TOKEN)

    def add_tenant(self, tenant_id: str, name: str, base_currency: str = "USD") -> Tenant:
        tenant = Tenant(tenant_id, name, base_currency)
        self.tenants[tenant_id] = tenant
        now = self.clock.now()
        for code, desc in (("USD", "United States Dollar"), ("EUR", "Euro"), ("GBP", "British Pound"),
                           ("AUD", "Australian Dollar"), ("NZD", "New Zealand Dollar"),
                           ("JPY", "Japanese Yen")):
            tenant.table("Currencies")[code] = {"Code": code, "Description": desc}
        for tax_type, name_, rate in (("NONE", "No Tax", "0"), ("OUTPUT", "Sales Tax", "10"),
                                      ("OUTPUT2", "Standard Rate Sales", "20"),
                                      ("EXEMPTOUTPUT", "Exempt Sales", "0")):
            tenant.table("TaxRates")[tax_type] = {
                "Name": name_, "TaxType": tax_type, "Status": "ACTIVE", "ReportTaxType": "OUTPUT",
                "CanApplyToRevenue": True, "DisplayTaxRate": Decimal(rate),
                "EffectiveRate": Decimal(rate),
                "TaxComponents": [{"Name": name_, "Rate": Decimal(rate), "IsCompound": False,
                                   "IsNonRecoverable": False}]}
        for code, name_, type_, klass in (("200", "Sales", "REVENUE", "REVENUE"),
                                          ("260", "Other Revenue", "OTHERINCOME", "REVENUE"),
                                          ("090", "Business Bank Account", "BANK", "ASSET"),
                                          ("610", "Accounts Receivable", "CURRENT", "ASSET")):
            account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{code}"))
            account = {"AccountID": account_id, "Code": code, "Name": name_, "Type": type_,
                       "Status": "ACTIVE", "Class": klass, "TaxType": "OUTPUT",
                       "EnablePaymentsToAccount": type_ == "BANK", "UpdatedDateUTC": now}
            if type_ == "BANK":
                account.update({"BankAccountNumber": "12-3456-7890123-00", "CurrencyCode": base_currency,
                                "BankAccountType": "BANK"})
            tenant.table("Accounts")[account_id] = account
        return tenant

    def issue_refresh_token(self, token: str, tenants: list[str] | None = None) -> None:
        self.refresh_grants[token] = RefreshGrant(self.client_id, tenants or list(self.tenants),
                                                  self.clock.now())

    def issue_access_token(self, token: str, tenants: list[str] | None = None) -> None:
        self.access_tokens[token] = (self.clock.now() + timedelta(seconds=ACCESS_TTL),
                                     tenants or list(self.tenants))

    @property
    def tenant(self) -> Tenant:
        """The default tenant (tests inspect it directly)."""
        return self.tenants[DEFAULT_TENANT]

    def live(self, collection: str, tenant_id: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        return list(self.tenants[tenant_id].table(collection).values())

    # -- routes ---------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/connect/token", self._token)
        router.add_get("/connections", self._connections)
        router.add_get("/Connections", self._connections)
        router.add_get(API + "/{collection}", self._api)
        router.add_put(API + "/{collection}", self._api)
        router.add_post(API + "/{collection}", self._api)
        router.add_get(API + "/{collection}/{id}", self._api)
        router.add_post(API + "/{collection}/{id}", self._api)
        router.add_delete(API + "/{collection}/{id}", self._api)
        router.add_put(API + "/{collection}/{id}/Allocations", self._api)
        router.add_post("/__emulator/limits", self._set_limits)
        router.add_post("/__emulator/webhooks", self._send_webhooks)
        router.add_post("/__emulator/intent", self._intent)
        router.add_post("/__emulator/tokens", self._grant_tokens)

    # -- error shapes ---------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return web.json_response({"Title": "An error occurred", "Detail": message, "Status": status,
                                  "Type": None, "Instance": str(uuid.uuid4())}, status=status)

    def rate_limit_response(self, retry_after: float, problem: str = "minute") -> web.StreamResponse:
        return web.Response(status=429, text="Rate limit exceeded", headers={
            "Retry-After": str(int(retry_after)), "X-Rate-Limit-Problem": problem})

    def _auth_error(self, status: int, detail: str) -> web.Response:
        title = "Unauthorized" if status == 401 else "Forbidden"
        return web.json_response({"Type": None, "Title": title, "Status": status, "Detail": detail,
                                  "Instance": str(uuid.uuid4()), "Extensions": {}}, status=status)

    @staticmethod
    def _validation_400(elements: list[dict[str, Any]], message: str = "A validation exception occurred"
                        ) -> web.Response:
        body = {"ErrorNumber": 10, "Type": "ValidationException", "Message": message,
                "Elements": elements}
        return web.Response(status=400, text=wire.dumps(body), content_type="application/json")

    def stat_key(self, request: web.Request) -> str:
        collection = request.match_info.get("collection")
        if collection:
            suffix = "/{id}" if "id" in request.match_info else ""
            suffix += "/Allocations" if request.path.endswith("/Allocations") else ""
            return f"{request.method} {API}/{collection}{suffix}"
        return super().stat_key(request)

    # -- identity -------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        secret = str(form.get("client_secret", ""))
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return web.json_response({"error": "invalid_client"}, status=400)
        if client_id != self.client_id or secret != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=400)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        async with self.lock:
            token = str(form.get("refresh_token", ""))
            grant = self.refresh_grants.get(token)
            now = self.clock.now()
            if (grant is None or (grant.used_at is not None and now - grant.used_at > REFRESH_GRACE)
                    or now - grant.issued_at > REFRESH_UNUSED_TTL):
                self.refresh_refusals += 1
                return web.json_response({"error": "invalid_grant"}, status=400)
            if grant.used_at is None:
                grant.used_at = now
            access = "at-" + uuid.uuid4().hex
            refresh = "rt-" + uuid.uuid4().hex
            self.access_tokens[access] = (now + timedelta(seconds=ACCESS_TTL), list(grant.tenants))
            self.refresh_grants[refresh] = RefreshGrant(grant.client_id, list(grant.tenants), now)
        scope = str(form.get("scope") or "offline_access accounting.transactions accounting.contacts")
        return web.json_response({"id_token": None, "access_token": access, "expires_in": ACCESS_TTL,
                                  "token_type": "Bearer", "refresh_token": refresh, "scope": scope})

    def _bearer(self, request: web.Request) -> tuple[list[str] | None, web.Response | None]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None, self._auth_error(401, "AuthenticationUnsuccessful")
        entry = self.access_tokens.get(auth[7:])
        if entry is None:
            return None, self._auth_error(401, "AuthenticationUnsuccessful")
        if entry[0] <= self.clock.now():
            return None, self._auth_error(401, "TokenExpired: token expired at "
                                          + entry[0].strftime("%m/%d/%Y %H:%M:%S"))
        return entry[1], None

    async def _connections(self, request: web.Request) -> web.Response:
        tenants, error = self._bearer(request)
        if error is not None:
            return error
        out = []
        for tid in tenants or []:
            tenant = self.tenants.get(tid)
            if tenant is None:
                continue
            stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # spec: RFC 3339 date-time
            out.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "conn/" + tid)),
                        "authEventId": str(uuid.uuid5(uuid.NAMESPACE_URL, "auth/" + tid)),
                        "tenantId": tid, "tenantType": "ORGANISATION", "tenantName": tenant.name,
                        "createdDateUtc": stamp, "updatedDateUtc": stamp})
        response = web.json_response(out)
        self._capture(request, response)
        return response

    # -- limits ---------------------------------------------------------------------------

    def _limit_check(self, tenant: Tenant) -> web.StreamResponse | None:
        now = self.clock.now()
        minute_ago = now - timedelta(minutes=1)
        for calls in (tenant.minute_calls, self.app_minute_calls):
            while calls and calls[0] <= minute_ago:
                calls.popleft()
        day_start = now - timedelta(days=1)
        while tenant.day_calls and tenant.day_calls[0] <= day_start:
            tenant.day_calls.popleft()
        if len(tenant.day_calls) >= self.limits.day:
            wait = (tenant.day_calls[0] + timedelta(days=1) - now).total_seconds()
            return self._limited(tenant, max(1.0, wait), "day")
        if len(self.app_minute_calls) >= self.limits.app_minute:
            wait = (self.app_minute_calls[0] + timedelta(minutes=1) - now).total_seconds()
            return self._limited(tenant, max(1.0, wait), "appminute")
        if len(tenant.minute_calls) >= self.limits.minute:
            wait = (tenant.minute_calls[0] + timedelta(minutes=1) - now).total_seconds()
            return self._limited(tenant, max(1.0, wait), "minute")
        if tenant.in_flight >= self.limits.concurrent:
            return self._limited(tenant, 1.0, "concurrent")
        tenant.minute_calls.append(now)
        tenant.day_calls.append(now)
        self.app_minute_calls.append(now)
        return None

    def _limited(self, tenant: Tenant, retry_after: float, problem: str) -> web.StreamResponse:
        response = self.rate_limit_response(-(-retry_after // 1), problem)
        self._quota_headers(response, tenant)
        return response

    def rate_limit_response_for(self, problem: str, retry_after: float) -> web.StreamResponse:
        return self.rate_limit_response(retry_after, problem)

    def _quota_headers(self, response: web.StreamResponse, tenant: Tenant) -> None:
        response.headers["X-MinLimit-Remaining"] = str(max(0, self.limits.minute - len(tenant.minute_calls)))
        response.headers["X-DayLimit-Remaining"] = str(max(0, self.limits.day - len(tenant.day_calls)))
        response.headers["X-AppMinLimit-Remaining"] = str(
            max(0, self.limits.app_minute - len(self.app_minute_calls)))

    # -- the accounting API ---------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        tenants, error = self._bearer(request)
        if error is not None:
            return error
        tenant_id = request.headers.get("xero-tenant-id", "")
        tenant = self.tenants.get(tenant_id)
        if not tenant_id or tenant is None or tenant_id not in (tenants or []):
            return self._auth_error(403, "AuthorizationUnsuccessful")
        limited = self._limit_check(tenant)
        if limited is not None:
            return limited
        tenant.in_flight += 1
        try:
            response = await self._dispatch(request, tenant)
        finally:
            tenant.in_flight -= 1
        self._quota_headers(response, tenant)
        self._capture(request, response)
        return response

    def _capture(self, request: web.Request, response: web.StreamResponse) -> None:
        if self.captured is not None and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            self.captured.append({"method": request.method, "path": request.path,
                                  "route": self.stat_key(request).split(" ", 1)[1],
                                  "query": request.query_string, "status": response.status,
                                  "body": body, "content_type": response.content_type})

    async def _dispatch(self, request: web.Request, tenant: Tenant) -> web.StreamResponse:
        collection = request.match_info["collection"]
        if collection not in COLLECTIONS:
            return web.Response(status=404, text="The resource you're looking for cannot be found")
        if request.method == "GET":
            return self._get(request, tenant, collection)
        if request.method == "DELETE":
            return await self._delete(request, tenant, collection)
        if collection not in WRITABLE:
            return web.Response(status=405, text="Method not allowed")
        key = request.headers.get("Idempotency-Key")
        raw = await request.read()
        async with self.lock:
            if key:
                if len(key) > 128:
                    return self._validation_400([], "Idempotency-Key must be at most 128 characters")
                scoped = f"{request.method} {request.path}|{key}"
                if scoped in tenant.idempotency:
                    status, text = tenant.idempotency[scoped]
                    return web.Response(status=status, text=text, content_type="application/json")
            response = self._write(request, tenant, collection, raw)
            if key and response.status < 500 and isinstance(response, web.Response):
                tenant.idempotency[f"{request.method} {request.path}|{key}"] = (
                    response.status, response.text or "")
            return response

    def _envelope(self, collection: str, items: list[dict[str, Any]],
                  pagination: dict[str, int] | None = None) -> web.Response:
        body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "billhub-emulator",
                                "DateTimeUTC": wire.ms_date(self.clock.now())}
        if pagination is not None:
            body["pagination"] = pagination
        body[collection] = [self.render(collection, item) for item in items]
        return web.Response(text=wire.dumps(body), content_type="application/json")

    def render(self, collection: str, item: dict[str, Any]) -> dict[str, Any]:
        """Wire form: datetimes as ``/Date(ms+0000)/`` with ``…String`` ISO twins."""
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key.startswith("_"):
                continue
            if isinstance(value, datetime):
                out[key] = wire.ms_date(value)
                if key in ("Date", "DueDate", "FullyPaidOnDate", "UpdatedDateUTC") and collection != "Accounts":
                    out[key + "String"] = wire.iso_string(value)
            elif isinstance(value, list):
                out[key] = [self.render(collection, v) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, dict):
                out[key] = self.render(collection, value)
            else:
                out[key] = value
        return out

    def _get(self, request: web.Request, tenant: Tenant, collection: str) -> web.StreamResponse:
        id_field, _ = COLLECTIONS[collection]
        table = tenant.table(collection)
        if "id" in request.match_info:
            ident = request.match_info["id"]
            found = table.get(ident) or next(
                (v for v in table.values() if ident in (v.get("InvoiceNumber"), v.get("Code"),
                                                        v.get("ContactNumber"))), None)
            if found is None:
                return web.Response(status=404, text="The resource you're looking for cannot be found")
            return self._envelope(collection, [found])
        query = request.query
        items = list(table.values())
        try:
            if "where" in query:
                test = _compile_where(query["where"])
                items = [i for i in items if test(i)]
            since_header = request.headers.get("If-Modified-Since")
            if since_header:
                since = wire.parse_http_date(since_header)
                items = [i for i in items if i.get("UpdatedDateUTC") and i["UpdatedDateUTC"] >= since]
        except (Invalid, ValueError) as exc:
            return self._validation_400([], str(exc))
        if "searchTerm" in query:  # case-insensitive text search across the main text fields
            term = query["searchTerm"].casefold()
            items = [i for i in items if any(term in str(i.get(f) or "").casefold() for f in (
                "Name", "FirstName", "LastName", "ContactNumber", "EmailAddress", "InvoiceNumber",
                "Reference", "CompanyNumber"))]
        include_archived = query.get("includeArchived", "").lower() == "true"
        if collection == "Contacts" and not include_archived:
            items = [i for i in items if i.get("ContactStatus") != "ARCHIVED"]
        if collection == "Items":
            items = [i for i in items if not i.get("_deleted")]
        for name, key in (("IDs", id_field), ("Statuses", "Status"), ("InvoiceNumbers", "InvoiceNumber"),
                          ("ContactIDs", "Contact.ContactID")):
            if name in query:
                wanted = set(query[name].split(","))
                items = [i for i in items if str(_get_path(i, key)) in wanted]
        items = self._order(items, query.get("order", ""), id_field)
        pagination = None
        if "page" in query and collection in PAGED:
            try:
                page = max(1, int(query["page"]))
                size = min(MAX_PAGE_SIZE, max(1, int(query.get("pageSize", DEFAULT_PAGE_SIZE))))
            except ValueError:
                return self._validation_400([], "page and pageSize must be integers")
            total = len(items)
            pagination = {"page": page, "pageSize": size, "pageCount": -(-total // size) if total else 0,
                          "itemCount": total}
            items = items[(page - 1) * size: page * size]
        return self._envelope(collection, items, pagination)

    @staticmethod
    def _order(items: list[dict[str, Any]], order: str, id_field: str) -> list[dict[str, Any]]:
        keys = [part.strip().split() for part in order.split(",") if part.strip()] or [["UpdatedDateUTC"]]

        def sort_key(value: Any) -> tuple[int, Any]:
            if value is None:
                return (0, "")
            if isinstance(value, datetime):
                return (1, value.timestamp())
            if isinstance(value, (int, Decimal)):
                return (1, float(value))
            return (2, str(value))

        ordered = sorted(items, key=lambda i: sort_key(i.get(id_field)))
        for spec in reversed(keys):
            desc = len(spec) > 1 and spec[1].upper() == "DESC"
            path = spec[0]

            def by_field(item: dict[str, Any], path: str = path) -> tuple[int, Any]:
                return sort_key(_get_path(item, path))

            ordered.sort(key=by_field, reverse=desc)
        return ordered

    async def _delete(self, request: web.Request, tenant: Tenant, collection: str) -> web.StreamResponse:
        if collection != "Items":
            return web.Response(status=405, text="Method not allowed")
        async with self.lock:
            item = tenant.table("Items").get(request.match_info["id"])
            if item is None or item.get("_deleted"):
                return web.Response(status=404, text="The resource you're looking for cannot be found")
            item["_deleted"] = True
            item["UpdatedDateUTC"] = self.clock.tick(0.001)
        return web.Response(status=204)

    # -- writes ---------------------------------------------------------------------------

    def _write(self, request: web.Request, tenant: Tenant, collection: str, raw: bytes) -> web.Response:
        try:
            body = wire.loads(raw) if raw else {}
        except ValueError:
            return self._validation_400([], "The request body could not be parsed as JSON")
        summarize = request.query.get("summarizeErrors", "true").lower() != "false"
        if request.path.endswith("/Allocations"):
            return self._allocate(tenant, request.match_info["id"], body, summarize)
        if "id" in request.match_info:
            # POST /Collection/{id}: update one (payments: {"Status": "DELETED"})
            body = {collection: [{**(body.get(collection, [body])[0] if isinstance(body, dict) else {}),
                                  COLLECTIONS[collection][0]: request.match_info["id"]}]}
        items = body.get(collection) if isinstance(body, dict) else None
        if not isinstance(items, list):
            return self._validation_400([], f"The request must contain a {collection} array")
        if len(items) > MAX_BATCH:
            return self._validation_400([], f"A maximum of {MAX_BATCH} {collection} can be sent at once")
        # Stored records are replaced, never edited in place, while a batch is saved (see
        # _replace): a copy of each table's mapping is then a snapshot to roll back to, at a
        # fraction of a deep copy's cost once the tenant holds tens of thousands of records.
        snapshot = {name: dict(table) for name, table in tenant.data.items()}
        counters = dict(tenant.counters)
        results: list[dict[str, Any]] = []
        any_error = False
        for raw_item in items:
            if not isinstance(raw_item, dict):
                raw_item = {}
            try:
                saved = self._save(tenant, collection, raw_item, create_only=request.method == "PUT")
                results.append({**self.render(collection, saved), "StatusAttributeString": "OK"})
            except Invalid as exc:
                any_error = True
                echo = {k: v for k, v in raw_item.items() if not isinstance(v, (dict, list))}
                results.append({**self.render(collection, echo), "HasErrors": True,
                                "StatusAttributeString": "ERROR",
                                "ValidationErrors": [{"Message": str(exc)}]})
        if any_error and summarize:
            tenant.data = snapshot  # all or nothing when errors are summarised
            tenant.counters = counters
            return self._validation_400(results)
        body_out = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "billhub-emulator",
                    "DateTimeUTC": wire.ms_date(self.clock.now()), collection: results}
        return web.Response(text=wire.dumps(body_out), content_type="application/json")

    def _save(self, tenant: Tenant, collection: str, data: dict[str, Any], *, create_only: bool
              ) -> dict[str, Any]:
        id_field, _ = COLLECTIONS[collection]
        table = tenant.table(collection)
        existing = None
        if data.get(id_field):
            existing = table.get(str(data[id_field]))
            if existing is None:
                raise Invalid(f"{COLLECTIONS[collection][1]} could not be found")
            if create_only:
                raise Invalid(f"{COLLECTIONS[collection][1]} already exists; use POST to update it")
        saver = getattr(self, f"_save_{collection.lower()}")
        record: dict[str, Any] = saver(tenant, data, existing)
        record["UpdatedDateUTC"] = self.clock.tick(0.001)
        table[record[id_field]] = record
        tenant.note_keys(collection, record)
        self._event(tenant, collection, record, "UPDATE" if existing else "CREATE")
        return record

    def _event(self, tenant: Tenant, collection: str, record: dict[str, Any], kind: str) -> None:
        category = {"Contacts": "CONTACT", "Invoices": "INVOICE"}.get(collection)
        if category is None:  # Xero has no webhooks for items, payments or credit notes
            return
        rid = record[COLLECTIONS[collection][0]]
        self.pending_events.append({
            "resourceUrl": f"https://api.xero.com{API}/{collection}/{rid}", "resourceId": rid,
            "eventDateUtc": record["UpdatedDateUTC"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "eventType": kind, "eventCategory": category, "tenantId": tenant.tenant_id,
            "tenantType": "ORGANISATION"})

    # contacts -------------------------------------------------------------------------------

    def _save_contacts(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        record = dict(existing) if existing else {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE",
                                                  "IsCustomer": False, "IsSupplier": False,
                                                  "Addresses": [], "Phones": [], "HasAttachments": False}
        for key in ("Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber",
                    "TaxNumber", "DefaultCurrency", "Addresses", "Phones", "ContactStatus",
                    "IsCustomer", "CompanyNumber", "Website"):
            if key in data:
                record[key] = data[key]
        name = str(record.get("Name") or "").strip()
        if not name:
            raise Invalid("The contact name must be specified")
        if len(name) > 255:
            raise Invalid("The contact name must not exceed 255 characters")
        if len(str(record.get("ContactNumber") or "")) > 50:
            raise Invalid("The Contact Number must not exceed 50 characters")
        if record.get("ContactStatus") not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            raise Invalid(f"'{record.get('ContactStatus')}' is not a valid ContactStatus")
        if record.get("DefaultCurrency") and record["DefaultCurrency"] not in tenant.table("Currencies"):
            raise Invalid(f"The currency '{record['DefaultCurrency']}' is not enabled for this organisation")
        if record["ContactStatus"] == "ACTIVE":
            for other in tenant.with_key("Contacts", "Name", name):
                if (other["ContactID"] != record["ContactID"] and other.get("ContactStatus") == "ACTIVE"
                        and str(other.get("Name", "")).strip().casefold() == name.casefold()):
                    raise Invalid(f"The contact name {name} is already assigned to another contact. "
                                  "The contact name must be unique across all active contacts.")
        record["Name"] = name
        return record

    # items ----------------------------------------------------------------------------------

    def _save_items(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                    ) -> dict[str, Any]:
        record = dict(existing) if existing else {"ItemID": str(uuid.uuid4()), "IsSold": True,
                                                  "IsPurchased": False, "IsTrackedAsInventory": False}
        for key in ("Code", "Name", "Description", "PurchaseDescription", "IsSold", "IsPurchased",
                    "SalesDetails"):
            if key in data:
                record[key] = data[key]
        code = str(record.get("Code") or "").strip()
        if not code:
            raise Invalid("Item code must be specified")
        if len(code) > 30:
            raise Invalid("The Item Code must not exceed 30 characters")
        if len(str(record.get("Name") or "")) > 50:
            raise Invalid("The Item Name must not exceed 50 characters")
        for other in tenant.table("Items").values():
            if other["ItemID"] != record["ItemID"] and not other.get("_deleted") and other.get("Code") == code:
                raise Invalid(f"Item code '{code}' already exists")
        record["Code"] = code
        record.pop("_deleted", None)
        return record

    # invoices and credit notes --------------------------------------------------------------

    def _contact_ref(self, tenant: Tenant, data: dict[str, Any]) -> dict[str, Any]:
        ref = data.get("Contact") or {}
        contact = tenant.table("Contacts").get(str(ref.get("ContactID") or ""))
        if contact is None and ref.get("Name"):
            contact = next((c for c in tenant.table("Contacts").values()
                            if c.get("Name") == ref["Name"] and c.get("ContactStatus") == "ACTIVE"), None)
        if contact is None:
            raise Invalid("A Contact must be specified for this type of transaction" if not ref
                          else "The Contact could not be found")
        if not contact.get("IsCustomer"):
            contact = _replace(tenant.table("Contacts"), "ContactID", contact, IsCustomer=True)
        return {"ContactID": contact["ContactID"], "Name": contact["Name"]}

    def _lines(self, tenant: Tenant, raw_lines: Any, amount_types: str) -> tuple[list[dict[str, Any]], Decimal,
                                                                                 Decimal]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise Invalid("At least one line item must be specified")
        accounts = {a["Code"] for a in tenant.table("Accounts").values()}
        rates = tenant.table("TaxRates")
        lines = []
        subtotal = tax_total = Decimal(0)
        for raw in raw_lines:
            if not isinstance(raw, dict):
                raise Invalid("Line items must be objects")
            qty = _dec(raw.get("Quantity", 1), "Quantity")
            unit = _dec(raw.get("UnitAmount"), "UnitAmount").quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            discount = _dec(raw.get("DiscountRate"), "DiscountRate")
            code = raw.get("AccountCode")
            if raw.get("ItemCode"):
                item = next((i for i in tenant.table("Items").values()
                             if i.get("Code") == raw["ItemCode"] and not i.get("_deleted")), None)
                if item is None:
                    raise Invalid(f"Item code '{raw['ItemCode']}' is not valid")
            if not code:
                raise Invalid("Account code must be specified")
            if code not in accounts:
                raise Invalid(f"Account code '{code}' is not a valid code for this document.")
            tax_type = raw.get("TaxType") or ("NONE" if amount_types == "NoTax" else "OUTPUT")
            if tax_type not in rates:
                raise Invalid(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type "
                              "of transaction.")
            rate = Decimal(0) if amount_types == "NoTax" else Decimal(str(rates[tax_type]["EffectiveRate"]))
            line_amount = _money(qty * unit * (1 - discount / 100))
            if "TaxAmount" in raw and raw["TaxAmount"] not in (None, ""):
                tax = _money(_dec(raw["TaxAmount"], "TaxAmount"))
            elif amount_types == "Inclusive":
                tax = _money(line_amount * rate / (100 + rate))
            else:
                tax = _money(line_amount * rate / 100)
            net = line_amount - tax if amount_types == "Inclusive" else line_amount
            subtotal += net
            tax_total += tax
            line = {"LineItemID": str(raw.get("LineItemID") or uuid.uuid4()),
                    "Description": raw.get("Description", ""), "Quantity": qty, "UnitAmount": unit,
                    "AccountCode": code, "TaxType": tax_type, "TaxAmount": tax, "LineAmount": line_amount,
                    "Tracking": raw.get("Tracking") or []}
            if discount:
                line["DiscountRate"] = discount
            if raw.get("ItemCode"):
                line["ItemCode"] = raw["ItemCode"]
            lines.append(line)
        return lines, subtotal, tax_total

    def _document(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None, *,
                  kind: str) -> dict[str, Any]:
        """Invoices and credit notes share their shape and arithmetic."""
        id_field = "InvoiceID" if kind == "invoice" else "CreditNoteID"
        number_field = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
        record: dict[str, Any] = dict(existing) if existing else {
            id_field: str(uuid.uuid4()), "Status": "DRAFT", "LineAmountTypes": "Exclusive",
            "AmountPaid": Decimal(0), "CurrencyCode": tenant.base_currency, "CurrencyRate": Decimal(1),
            "HasAttachments": False, "Date": self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)}
        if existing and existing["Status"] in ("VOIDED", "DELETED"):
            raise Invalid(f"This document cannot be edited as it has been {existing['Status'].lower()}")
        if existing and existing["Status"] == "PAID" and data.get("Status") not in (None, "PAID"):
            raise Invalid("This document cannot be edited as it has payments allocated to it")
        if "Type" in data:
            allowed = ("ACCREC", "ACCPAY") if kind == "invoice" else ("ACCRECCREDIT", "ACCPAYCREDIT")
            if data["Type"] not in allowed:
                raise Invalid(f"'{data['Type']}' is not a valid {kind} type")
            record["Type"] = data["Type"]
        if not record.get("Type"):
            raise Invalid("The document type must be specified")
        if "Contact" in data or not existing:
            record["Contact"] = self._contact_ref(tenant, data)
        for key in ("Reference", "CurrencyCode", "BrandingThemeID", "SentToContact"):
            if key in data:
                record[key] = data[key]
        for key in ("Date", "DueDate"):
            if key in data:
                try:
                    record[key] = parse_date(data[key])
                except ValueError as exc:
                    raise Invalid(str(exc)) from None
        if "LineAmountTypes" in data:
            if data["LineAmountTypes"] not in LINE_AMOUNT_TYPES:
                raise Invalid(f"'{data['LineAmountTypes']}' is not a valid LineAmountTypes")
            record["LineAmountTypes"] = data["LineAmountTypes"]
        currency = record["CurrencyCode"]
        if currency not in tenant.table("Currencies"):
            raise Invalid(f"The currency '{currency}' is not enabled for this organisation")
        if currency != tenant.base_currency:
            if data.get("CurrencyRate") not in (None, ""):
                rate = _dec(data["CurrencyRate"], "CurrencyRate")
                if rate <= 0:
                    raise Invalid("The CurrencyRate must be greater than zero")
                record["CurrencyRate"] = rate
            elif not existing or record.get("CurrencyRate") in (None, Decimal(1)):
                record["CurrencyRate"] = Decimal("1.5")  # the "XE.com day rate" stand-in
        else:
            record["CurrencyRate"] = Decimal(1)
        if "LineItems" in data or not existing:
            if existing and existing["Status"] not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
                raise Invalid("Line items cannot be changed on this document")
            lines, subtotal, tax = self._lines(tenant, data.get("LineItems"), record["LineAmountTypes"])
            record.update(LineItems=lines, SubTotal=subtotal, TotalTax=tax, Total=subtotal + tax)
        number = data.get(number_field)
        if number:
            for other in tenant.with_key("Invoices" if kind == "invoice" else "CreditNotes", number_field, number):
                if other[id_field] != record[id_field] and other.get(number_field) == number and \
                        other.get("Status") != "DELETED":
                    raise Invalid(f"{'Invoice' if kind == 'invoice' else 'Credit Note'} # must be unique.")
            record[number_field] = number
        elif not record.get(number_field):
            record[number_field] = tenant.next_number("INV" if kind == "invoice" else "CN")
        status = data.get("Status", record["Status"])
        self._transition(record, status, kind)
        paid = record.get("AmountPaid", Decimal(0)) + record.get("AmountCredited", Decimal(0))
        if kind == "invoice":
            record["AmountDue"] = record["Total"] - paid
        else:
            record["RemainingCredit"] = record["Total"] - record.get("_allocated", Decimal(0))
        if record["Total"] < 0:
            raise Invalid("The document total cannot be negative")
        return record

    @staticmethod
    def _transition(record: dict[str, Any], status: str, kind: str) -> None:
        if status not in INVOICE_STATUSES:
            raise Invalid(f"'{status}' is not a valid status for {kind}s")
        current = record["Status"]
        if status == current:
            return
        allowed = {
            "DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED"},
            "SUBMITTED": {"DRAFT", "AUTHORISED", "DELETED"},
            "AUTHORISED": {"VOIDED"},
            "PAID": set(),
        }.get(current, set())
        if status not in allowed:
            raise Invalid(f"Cannot change the status of a {current} {kind} to {status}")
        if status == "VOIDED" and (record.get("AmountPaid") or record.get("AmountCredited")
                                   or record.get("_allocated")):
            raise Invalid("Payments and credit allocations must be removed before the document is voided")
        record["Status"] = status

    def _save_invoices(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        return self._document(tenant, data, existing, kind="invoice")

    def _save_creditnotes(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                          ) -> dict[str, Any]:
        record = self._document(tenant, data, existing, kind="credit note")
        record.setdefault("Allocations", [])
        record.setdefault("Payments", [])
        return record

    # payments and allocations ----------------------------------------------------------------

    def _save_payments(self, tenant: Tenant, data: dict[str, Any], existing: dict[str, Any] | None
                       ) -> dict[str, Any]:
        if existing is not None:
            if data.get("Status") != "DELETED" or set(data) - {"Status", "PaymentID"}:
                raise Invalid("A payment can only be deleted (Status DELETED); it cannot be edited")
            if existing["Status"] == "DELETED":
                raise Invalid("This payment has already been deleted")
            record = dict(existing)
            record["Status"] = "DELETED"
            self._apply_payment(tenant, record, -record["Amount"])
            return record
        target_ref = data.get("Invoice") or data.get("CreditNote")
        if not isinstance(target_ref, dict):
            raise Invalid("An Invoice or CreditNote must be specified for the payment")
        is_invoice = "Invoice" in data
        table = tenant.table("Invoices" if is_invoice else "CreditNotes")
        target = table.get(str(target_ref.get("InvoiceID" if is_invoice else "CreditNoteID") or ""))
        if target is None and is_invoice and target_ref.get("InvoiceNumber"):
            target = next((i for i in table.values() if i.get("InvoiceNumber") == target_ref["InvoiceNumber"]),
                          None)
        if target is None:
            raise Invalid(("Invoice" if is_invoice else "Credit note") + " could not be found")
        if target["Status"] != "AUTHORISED":
            raise Invalid("Payment can only be made against an AUTHORISED document; this one is "
                          + target["Status"])
        account_ref = data.get("Account") or {}
        account = next((a for a in tenant.table("Accounts").values()
                        if a.get("AccountID") == account_ref.get("AccountID")
                        or (account_ref.get("Code") and a.get("Code") == account_ref.get("Code"))), None)
        if account is None or not account.get("EnablePaymentsToAccount"):
            raise Invalid("Account must be valid and enabled for payments")
        amount = _money(_dec(data.get("Amount"), "Amount"))
        if amount <= 0:
            raise Invalid("Payment amount must be greater than zero")
        outstanding = target["AmountDue"] if is_invoice else target["RemainingCredit"]
        if amount > outstanding:
            raise Invalid(f"Payment amount ({amount}) exceeds the amount outstanding on this document "
                          f"({outstanding})")
        try:
            when = parse_date(data.get("Date")) or self.clock.now()
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        rate = _dec(data.get("CurrencyRate") or target.get("CurrencyRate") or 1, "CurrencyRate")
        record = {
            "PaymentID": str(uuid.uuid4()), "Date": when, "Amount": amount, "CurrencyRate": rate,
            "Reference": data.get("Reference", ""), "Status": "AUTHORISED", "IsReconciled": False,
            "PaymentType": "ACCRECPAYMENT" if is_invoice else "ARCREDITPAYMENT",
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "BankAmount": _money(amount / rate) if rate else amount, "HasAccount": True,
        }
        summary = {"Type": target["Type"], "Contact": target["Contact"], "CurrencyCode": target["CurrencyCode"]}
        if is_invoice:
            record["Invoice"] = {"InvoiceID": target["InvoiceID"], "InvoiceNumber": target["InvoiceNumber"],
                                 **summary}
        else:
            record["CreditNote"] = {"CreditNoteID": target["CreditNoteID"],
                                    "CreditNoteNumber": target["CreditNoteNumber"], **summary}
        self._apply_payment(tenant, record, amount)
        return record

    def _apply_payment(self, tenant: Tenant, payment: dict[str, Any], delta: Decimal) -> None:
        if "Invoice" in payment:
            target = _replace(tenant.table("Invoices"), "InvoiceID", tenant.table("Invoices")[payment["Invoice"]["InvoiceID"]])
            target["AmountPaid"] = target.get("AmountPaid", Decimal(0)) + delta
            target["AmountDue"] = target["AmountDue"] - delta
            self._settle(target, "AmountDue")
            self._event(tenant, "Invoices", target, "UPDATE")
        else:
            notes = tenant.table("CreditNotes")
            target = _replace(notes, "CreditNoteID", notes[payment["CreditNote"]["CreditNoteID"]])
            target["_allocated"] = target.get("_allocated", Decimal(0)) + delta
            target["RemainingCredit"] = target["RemainingCredit"] - delta
            self._settle(target, "RemainingCredit")
        target["UpdatedDateUTC"] = self.clock.tick(0.001)

    def _settle(self, target: dict[str, Any], field_name: str) -> None:
        if target[field_name] == 0 and target["Status"] == "AUTHORISED":
            target["Status"] = "PAID"
            target["FullyPaidOnDate"] = self.clock.now()
        elif target[field_name] > 0 and target["Status"] == "PAID":
            target["Status"] = "AUTHORISED"
            target.pop("FullyPaidOnDate", None)

    def _allocate(self, tenant: Tenant, credit_note_id: str, body: Any, summarize: bool) -> web.Response:
        note = tenant.table("CreditNotes").get(credit_note_id)
        if note is None:
            return web.Response(status=404, text="The resource you're looking for cannot be found")
        items = body.get("Allocations") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return self._validation_400([], "The request must contain an Allocations array")
        results: list[dict[str, Any]] = []
        errors = False
        for raw in items:
            try:
                results.append(self._allocation(tenant, note, raw if isinstance(raw, dict) else {}))
            except Invalid as exc:
                errors = True
                results.append({"Amount": raw.get("Amount") if isinstance(raw, dict) else None,
                                "StatusAttributeString": "ERROR",
                                "ValidationErrors": [{"Message": str(exc)}]})
        if errors and summarize:
            return self._validation_400(results)
        body_out = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "billhub-emulator",
                    "DateTimeUTC": wire.ms_date(self.clock.now()),
                    "Allocations": [self.render("CreditNotes", r) for r in results]}
        return web.Response(text=wire.dumps(body_out), content_type="application/json")

    def _allocation(self, tenant: Tenant, note: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
        if note["Status"] != "AUTHORISED":
            raise Invalid("Credit note must be AUTHORISED to be allocated; it is " + note["Status"])
        invoice = tenant.table("Invoices").get(str((raw.get("Invoice") or {}).get("InvoiceID") or ""))
        if invoice is None:
            raise Invalid("Invoice could not be found")
        if invoice["Status"] != "AUTHORISED":
            raise Invalid("Credit can only be allocated to an AUTHORISED invoice")
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            raise Invalid("The credit note and invoice currencies must match")
        amount = _money(_dec(raw.get("Amount"), "Amount"))
        if amount <= 0 or amount > note["RemainingCredit"] or amount > invoice["AmountDue"]:
            raise Invalid("The allocation amount must be positive and no more than the remaining credit "
                          "and the amount due")
        try:
            when = parse_date(raw.get("Date")) or self.clock.now()
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount, "Date": when,
                      "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]}}
        note["Allocations"] = [*note.get("Allocations", []), allocation]
        note["_allocated"] = note.get("_allocated", Decimal(0)) + amount
        note["RemainingCredit"] -= amount
        invoice["AmountCredited"] = invoice.get("AmountCredited", Decimal(0)) + amount
        invoice["AmountDue"] -= amount
        self._settle(invoice, "AmountDue")
        self._settle(note, "RemainingCredit")
        now = self.clock.tick(0.001)
        invoice["UpdatedDateUTC"] = note["UpdatedDateUTC"] = now
        self._event(tenant, "Invoices", invoice, "UPDATE")
        return {**allocation, "CreditNote": {"CreditNoteID": note["CreditNoteID"]}}

    # -- seed -----------------------------------------------------------------------------

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create objects given in Xero JSON shape: ``{"tenant_id"?, "Contacts": [...],
        "Items": [...], "Invoices": [...], "Payments": [...], "CreditNotes": [...]}``.

        Each list is saved in that order with Xero's own validation (so totals are computed);
        the answer lists the ids created per collection and any validation errors.
        """
        tenant = self.tenants.get(str(body.get("tenant_id") or DEFAULT_TENANT))
        if tenant is None:
            tenant = self.add_tenant(str(body["tenant_id"]), str(body.get("tenant_name", "Seeded Org")))
        created: dict[str, list[str]] = {}
        errors: list[str] = []
        async with self.lock:
            for collection in ("Contacts", "Items", "Invoices", "CreditNotes", "Payments"):
                for item in body.get(collection, []) or []:
                    try:
                        record = self._save(tenant, collection, dict(item), create_only=False)
                    except Invalid as exc:
                        errors.append(f"{collection}: {exc}")
                        continue
                    created.setdefault(collection, []).append(record[COLLECTIONS[collection][0]])
        return {"created": created, "errors": errors}

    def seed_now(self, body: dict[str, Any]) -> dict[str, Any]:
        """Synchronous seeding for code that owns the emulator object but not its loop."""
        created: dict[str, list[str]] = {}
        tenant = self.tenants[str(body.get("tenant_id") or DEFAULT_TENANT)]
        for collection in ("Contacts", "Items", "Invoices", "CreditNotes", "Payments"):
            for item in body.get(collection, []) or []:
                record = self._save(tenant, collection, dict(item), create_only=False)
                created.setdefault(collection, []).append(record[COLLECTIONS[collection][0]])
        return created

    # -- control: limits, tokens, webhooks -----------------------------------------------------

    async def _set_limits(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        try:
            for key, value in body.items():
                if not hasattr(self.limits, key):
                    raise KeyError(key)
                setattr(self.limits, key, int(value))
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad limit setting: {exc}"}, status=400)
        return web.json_response(vars(self.limits))

    async def _grant_tokens(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if body.get("refresh_token"):
            self.issue_refresh_token(str(body["refresh_token"]))
        if body.get("access_token"):
            self.issue_access_token(str(body["access_token"]))
        return web.json_response({"ok": True})

    def sign(self, body: bytes, key: str | None = None) -> str:
        digest = hmac.new((key or self.webhook_key).encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def webhook_body(self, events: list[dict[str, Any]]) -> bytes:
        payload = {"events": events, "firstEventSequence": 1 if events else 0,
                   "lastEventSequence": len(events), "entropy": uuid.uuid4().hex.upper()[:20]}
        return wire.dumps(payload).encode()

    async def _post_webhook(self, url: str, body: bytes, valid: bool) -> int:
        signature = self.sign(body) if valid else self.sign(body, key="not-the-webhook-key")
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, data=body, headers={
                    "x-xero-signature": signature, "Content-Type": "application/json"}) as response:
                await response.read()
                return response.status

    async def _send_webhooks(self, request: web.Request) -> web.Response:
        body = await request.json()
        events = body.get("events")
        if events is None:
            events, self.pending_events = self.pending_events, []
        payload = self.webhook_body(list(events))
        try:
            status = await self._post_webhook(str(body["url"]), payload, bool(body.get("valid", True)))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"error": f"delivery failed: {exc}"}, status=502)
        return web.json_response({"status": status, "events": len(events)})

    async def _intent(self, request: web.Request) -> web.Response:
        """Xero's intent-to-receive: one good and one bad signature, expecting 200 then 401."""
        body = await request.json()
        url = str(body["url"])
        try:
            good = await self._post_webhook(url, self.webhook_body([]), True)
            bad = await self._post_webhook(url, self.webhook_body([]), False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"error": f"delivery failed: {exc}"}, status=502)
        return web.json_response({"valid_status": good, "invalid_status": bad,
                                  "passed": good == 200 and bad == 401})
