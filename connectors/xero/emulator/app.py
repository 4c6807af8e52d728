"""A stateful, tenant-scoped Xero emulator that ``xero-python`` talks to unchanged: the aiohttp
app, its routes, the bearer and tenant checks, rate limits, reads, batched writes and the
control surface. State and ledger rules live in the sibling modules.

Wire behaviour it reproduces (see shared/reference/api-facts.md §3, §5-§9):

* ``POST /connect/token`` (``oauth``, the shared grant server): refresh grant only, 30-minute
  access tokens, rotating refresh tokens with a 30-minute grace period for a used one.
* ``GET /connections`` and ``/Connections`` list the tenants the token may use; every
  accounting call needs a known ``xero-tenant-id``.
* ``/api.xro/2.0/{Contacts,Items,Invoices,Payments,CreditNotes,Currencies,TaxRates,Accounts}``:
  GET by id, ``where``, ``order``, ``page``/``pageSize`` (<= 1000), ``If-Modified-Since`` (ISO or
  RFC 1123) against ``UpdatedDateUTC``, ``includeArchived``; PUT (create) and POST (create or
  update) with up to 50 items; ``summarizeErrors=False`` answers 200 with per-item
  ``HasErrors``/``ValidationErrors``, otherwise any invalid item fails the whole request with
  Xero's 400 ``ValidationException`` and nothing is saved.
* Totals computed from lines, tax rates and ``LineAmountTypes``; payments reduce ``AmountDue``
  and mark an invoice PAID; credit-note allocations likewise, and deleting one
  (``DELETE CreditNotes/{id}/Allocations/{id}``) gives both back; a document with a payment or
  an allocation cannot be voided; contact names unique among active contacts; invoice numbers
  unique.
* ``Idempotency-Key`` replays the first answer for PUT/POST.
* Limits per tenant (60/min, 5,000/day, 5 concurrent) and app-wide (10,000/min), answered with
  429, ``Retry-After`` and ``X-Rate-Limit-Problem``; ``X-MinLimit-Remaining``,
  ``X-DayLimit-Remaining`` and ``X-AppMinLimit-Remaining`` on every API response.
* Webhooks signed ``x-xero-signature`` (``webhooks``), including the intent-to-receive check.

Extra control calls (besides the shared reset/seed/stats/faults/clock):

    POST /__emulator/limits   {"minute": 60, "day": 5000, "concurrent": 5, "app_minute": 10000}
    POST /__emulator/webhooks {"url": "...", "events": [...] | omitted = pending, "valid": true}
    POST /__emulator/intent   {"url": "..."} -> {"valid_status", "invalid_status", "passed"}
    POST /__emulator/tokens   {"refresh_token": "...", "access_token": "...",
                               "expire_access_tokens": true} (issue grants, expire access tokens)
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.emulation import Emulator, EmulatorClock
from connectors.xero import wire
from connectors.xero.emulator.banking import BankingMixin
from connectors.xero.emulator.contacts import ContactsMixin, contact_balances, zero_balances
from connectors.xero.emulator.documents import DocumentsMixin
from connectors.xero.emulator.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OAuthMixin
from connectors.xero.emulator.org_lists import ORG_LISTS, OrgListsMixin
from connectors.xero.emulator.payments import PaymentsMixin
from connectors.xero.emulator.store import API, COLLECTIONS, Tenant
from connectors.xero.emulator.validation import Invalid
from connectors.xero.emulator.webhooks import DEFAULT_WEBHOOK_KEY, WebhooksMixin
from connectors.xero.emulator.where import as_guid, filtered, get_path, order
from connectors.xero.emulator.xml_wire import as_xml_response, is_xml, read_body, wants_xml

MAX_BATCH = 50
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
PAGED = frozenset({"Contacts", "Invoices", "Payments", "CreditNotes", "BankTransactions"})
# Organisation.Version: the editions Xero names by country; any other country is GLOBAL.
VERSIONS = frozenset({"AU", "NZ", "GB", "US"})
WRITABLE = frozenset({"Contacts", "Items", "Invoices", "Payments", "CreditNotes", "BankTransfers",
                      "BankTransactions"})
NOT_FOUND = "The resource you're looking for cannot be found"


@dataclass
class Limits:
    minute: int = 60
    day: int = 5000
    concurrent: int = 5
    app_minute: int = 10000


class XeroEmulator(OrgListsMixin, BankingMixin, PaymentsMixin, DocumentsMixin, ContactsMixin, OAuthMixin,
                  WebhooksMixin, Emulator):
    system = "xero"

    def __init__(self, clock: EmulatorClock | None = None, *, limits: Limits | None = None,
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 webhook_key: str = DEFAULT_WEBHOOK_KEY, max_page_size: int = MAX_PAGE_SIZE) -> None:
        self.limits = limits or Limits()
        # Real Xero may cap pages below the pageSize asked for; tests set a low cap to prove
        # readers page by the ``pagination`` block, not by a short page.
        self.max_page_size = max_page_size
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_key = webhook_key
        super().__init__(clock)

    def reset_state(self) -> None:
        self.reset_ledger()
        self.reset_grants()  # after the ledger: the default grant covers every tenant
        self.app_minute_calls: deque[datetime] = deque()
        # Set to a list to record every API answer (the spec-validation test reads it).
        self.captured: list[dict[str, Any]] | None = getattr(self, "captured", None)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/connect/token", self._token)
        self.add_consent_routes(router)
        router.add_get("/connections", self._connections)
        router.add_get("/Connections", self._connections)
        router.add_get(API + "/{collection}", self._api)
        router.add_put(API + "/{collection}", self._api)
        router.add_post(API + "/{collection}", self._api)
        router.add_get(API + "/{collection}/{id}", self._api)
        router.add_post(API + "/{collection}/{id}", self._api)
        router.add_delete(API + "/{collection}/{id}", self._api)
        router.add_put(API + "/{collection}/{id}/Allocations", self._api)
        router.add_delete(API + "/{collection}/{id}/Allocations/{allocation_id}", self._api)
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
            suffix += "/Allocations/{AllocationID}" if "allocation_id" in request.match_info else ""
            return f"{request.method} {API}/{collection}{suffix}"
        return super().stat_key(request)

    # -- identity -------------------------------------------------------------------------

    def _bearer(self, request: web.Request) -> tuple[tuple[str, ...], web.Response | None]:
        """The tenant ids the request's bearer token may use, or the 401 to answer."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        check = self.oauth.check_access(token)
        if check.status == "expired":
            expired = self.oauth.access_tokens[token].expires_at
            return (), self._auth_error(401, "TokenExpired: token expired at "
                                        + expired.strftime("%m/%d/%Y %H:%M:%S"))
        if check.grant is None:
            return (), self._auth_error(401, "AuthenticationUnsuccessful")
        return check.grant.subject, None

    async def _connections(self, request: web.Request) -> web.Response:
        tenants, error = self._bearer(request)
        if error is not None:
            return error
        out = []
        for tid in tenants:
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

    def _quota_headers(self, response: web.StreamResponse, tenant: Tenant) -> None:
        response.headers["X-MinLimit-Remaining"] = str(max(0, self.limits.minute - len(tenant.minute_calls)))
        response.headers["X-DayLimit-Remaining"] = str(max(0, self.limits.day - len(tenant.day_calls)))
        response.headers["X-AppMinLimit-Remaining"] = str(
            max(0, self.limits.app_minute - len(self.app_minute_calls)))

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

    # -- the accounting API ---------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        tenants, error = self._bearer(request)
        if error is not None:
            return error
        tenant_id = request.headers.get("xero-tenant-id", "")
        tenant = self.tenants.get(tenant_id)
        if not tenant_id or tenant is None or tenant_id not in tenants:
            return self._auth_error(403, "AuthorizationUnsuccessful")
        limited = self._limit_check(tenant)
        if limited is not None:
            return limited
        tenant.in_flight += 1
        try:
            response = await self._dispatch(request, tenant)
        finally:
            tenant.in_flight -= 1
        if isinstance(response, web.Response) and wants_xml(request.headers.get("Accept", "")):
            response = as_xml_response(response, request.match_info["collection"])  # xml_wire.py
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
        # /Organisations too: the path pyxero and tap-xero read, which Xero serves (pyxero issue 17)
        if collection in ("Organisation", "Organisations") and request.method == "GET" \
                and "id" not in request.match_info:
            return self._envelope("Organisations", [self._organisation(tenant)])
        if collection in ORG_LISTS and request.method == "GET":  # org_lists.py
            return self._org_list(request, tenant, collection)
        if collection not in COLLECTIONS:
            return web.Response(status=404, text=NOT_FOUND)
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

    def _envelope(self, collection: str, items: list[dict[str, Any]], **extra: Any) -> web.Response:
        """Xero's response envelope around ``items`` (already in wire form)."""
        body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "billhub-emulator",
                                "DateTimeUTC": wire.ms_date(self.clock.now()), **extra, collection: items}
        return web.Response(text=wire.dumps(body), content_type="application/json")

    def _organisation(self, tenant: Tenant) -> dict[str, Any]:
        """The fields of Xero's Organisation a client reads to learn how to post (spec example's
        shape); the base currency is what every multi-currency rate is quoted against."""
        return {"OrganisationID": str(uuid.uuid5(uuid.NAMESPACE_URL, "org/" + tenant.tenant_id)),
                "Name": tenant.name, "LegalName": tenant.name, "PaysTax": True,
                "Version": tenant.country_code if tenant.country_code in VERSIONS else "GLOBAL",
                "OrganisationType": "COMPANY", "BaseCurrency": tenant.base_currency,
                "CountryCode": tenant.country_code, "IsDemoCompany": False, "OrganisationStatus": "ACTIVE",
                "FinancialYearEndDay": 31, "FinancialYearEndMonth": 12, "SalesTaxBasis": "ACCRUALS",
                "SalesTaxPeriod": "QUARTERLY", "DefaultSalesTax": "Tax Exclusive",
                "DefaultPurchasesTax": "Tax Exclusive", "OrganisationEntityType": "COMPANY",
                "Timezone": "UTC", "Edition": "BUSINESS", "Class": "PREMIUM",
                "Addresses": [], "Phones": [], "ExternalLinks": [], "PaymentTerms": {}}

    def _get(self, request: web.Request, tenant: Tenant, collection: str) -> web.StreamResponse:
        id_field, _ = COLLECTIONS[collection]
        table = tenant.table(collection)
        if "id" in request.match_info:
            ident = request.match_info["id"]
            guid = as_guid(ident)  # Xero reads a Guid dashed or not, in any case
            found = table.get(ident) or (table.get(str(guid)) if guid else None) or next(
                (v for v in table.values() if ident in (v.get("InvoiceNumber"), v.get("Code"),
                                                        v.get("ContactNumber"))), None)
            if found is None:
                return web.Response(status=404, text=NOT_FOUND)
            return self._envelope(collection, self._rendered(tenant, collection, [found], with_balances=True))
        query = request.query
        items = list(table.values())
        try:
            items = filtered(items, query.get("where"), request.headers.get("If-Modified-Since"),
                             keep_unstamped=False)
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
                # Guids match whatever their form (pyxero sends IDs undashed)
                guids = {as_guid(w) for w in wanted} - {None} if name.endswith("IDs") else set()
                items = [i for i in items if str(get_path(i, key)) in wanted
                         or (guids and as_guid(get_path(i, key)) in guids)]
        items = order(items, query.get("order", ""), id_field)
        extra: dict[str, Any] = {}
        if "page" in query and collection in PAGED:
            try:
                page = max(1, int(query["page"]))
                size = min(self.max_page_size, max(1, int(query.get("pageSize", DEFAULT_PAGE_SIZE))))
            except ValueError:
                return self._validation_400([], "page and pageSize must be integers")
            total = len(items)
            extra["pagination"] = {"page": page, "pageSize": size,
                                   "pageCount": -(-total // size) if total else 0, "itemCount": total}
            items = items[(page - 1) * size: page * size]
        # the spec's list example carries Balances; summaryOnly asks for the lightweight fields
        balances = query.get("summaryOnly", "").lower() != "true"
        return self._envelope(collection, self._rendered(tenant, collection, items, with_balances=balances), **extra)

    def _rendered(self, tenant: Tenant, collection: str, items: list[dict[str, Any]], *,
                  with_balances: bool) -> list[dict[str, Any]]:
        """Wire forms of ``items``; contacts with their ``Balances`` (derived, read only)."""
        rendered = [self.render(collection, i) for i in items]
        if collection == "Contacts" and with_balances and items:
            sums = contact_balances(tenant, self.clock.now().date())
            for item, out in zip(items, rendered, strict=True):
                out["Balances"] = sums.get(str(item["ContactID"])) or zero_balances()
        return rendered

    async def _delete(self, request: web.Request, tenant: Tenant, collection: str) -> web.StreamResponse:
        if "allocation_id" in request.match_info:
            return await self._delete_allocation(request, tenant, collection)
        if collection != "Items":
            return web.Response(status=405, text="Method not allowed")
        async with self.lock:
            item = tenant.table("Items").get(request.match_info["id"])
            if item is None or item.get("_deleted"):
                return web.Response(status=404, text=NOT_FOUND)
            item["_deleted"] = True
            item["UpdatedDateUTC"] = self.clock.tick(0.001)
        return web.Response(status=204)

    async def _delete_allocation(self, request: web.Request, tenant: Tenant, collection: str
                                 ) -> web.StreamResponse:
        """``DELETE CreditNotes/{id}/Allocations/{id}``: the spec answers the bare Allocation with
        ``IsDeleted`` true."""
        if collection != "CreditNotes":
            return web.Response(status=405, text="Method not allowed")
        async with self.lock:
            try:
                deleted = self._deallocation(tenant, request.match_info["id"], request.match_info["allocation_id"])
            except Invalid as exc:
                return self._validation_400([{"ValidationErrors": [{"Message": str(exc)}]}])
        if deleted is None:
            return web.Response(status=404, text=NOT_FOUND)
        return web.Response(text=wire.dumps(self.render("CreditNotes", deleted)), content_type="application/json")

    def _write(self, request: web.Request, tenant: Tenant, collection: str, raw: bytes) -> web.Response:
        try:
            if raw and is_xml(request.content_type, raw):  # xml_wire.py: Xero takes XML bodies too
                body: Any = read_body(raw, collection)
            else:
                body = wire.loads(raw) if raw else {}
        except ValueError as exc:
            return self._validation_400([], str(exc) if "XML" in str(exc)
                                        else "The request body could not be parsed as JSON")
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
        # store.replace): a copy of each table's mapping is then a snapshot to roll back to, at
        # a fraction of a deep copy's cost once the tenant holds tens of thousands of records.
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
        return self._envelope(collection, results)

    def _allocate(self, tenant: Tenant, credit_note_id: str, body: Any, summarize: bool) -> web.Response:
        note = tenant.table("CreditNotes").get(credit_note_id)
        if note is None:
            return web.Response(status=404, text=NOT_FOUND)
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
        return self._envelope("Allocations", [self.render("CreditNotes", r) for r in results])
