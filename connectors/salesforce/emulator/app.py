"""A stateful Salesforce REST emulator that ``simple-salesforce`` talks to unchanged.

Serve it over TLS (``connectors.salesforce.tls.server_context``): the SDK only builds
``https://`` URLs. Wire behaviour follows the REST API docs (api-facts.md §4, §9.4):

* ``/services/oauth2/token`` (``oauth``: the shared grant server under Salesforce's policy);
* ``/services/data/vXX.X/``: ``sobjects`` (``sobjects``, ``describe``), ``query`` /
  ``queryAll`` (``query``), ``composite/sobjects`` (``composite``), ``limits`` (here), ``tooling/sobjects/CustomObject``
  and ``CustomField`` (``tooling``);
* errors as ``[{message, errorCode, fields}]``; ``INVALID_SESSION_ID`` 401 once a session
  expires on the emulator clock; ``Sforce-Limit-Info: api-usage=n/m`` on every response and 403
  ``REQUEST_LIMIT_EXCEEDED`` once the rolling 24-hour allocation is spent.

Control surface: the shared ``/__emulator/`` routes (reset, seed, stats, faults, clock) plus
``POST /__emulator/salesforce`` with any of ``{"allocation": n, "api_used": n,
"expire_sessions": true, "revoke_refresh_tokens": true, "session_ttl_seconds": n,
"page_size": n, "rotate_refresh_tokens": bool, "org": {"multi_currency": bool, "currency": "EUR",
"custom_schema": bool}}`` (``org`` empties the org: see ``configure_org``). ``seed`` takes lists of
field dicts per sObject (see ``OrgStore.seed``). ``received`` lists every REST request's method,
path, SOQL and body.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from aiohttp import web

from connectors.emulation import CONTROL, Emulator, EmulatorClock, RunningEmulator
from connectors.salesforce.emulator.composite import CompositeMixin
from connectors.salesforce.emulator.oauth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    OAUTH_CONTROL_KEYS,
    OAuthMixin,
)
from connectors.salesforce.emulator.query import QueryMixin
from connectors.salesforce.emulator.schema import build_schema
from connectors.salesforce.emulator.sobjects import SObjectsMixin
from connectors.salesforce.emulator.tooling import ToolingMixin, permission_objects
from connectors.salesforce.emulator.wire import SfError, json_response, not_found, record_url
from mapping import exact_json

RECEIVED_KEPT = 1000  # the newest REST requests ``received`` keeps (bodies whole: a bound on memory)


class OrgKind(NamedTuple):
    multi_currency: bool
    currency: str
    custom_schema: bool


class SalesforceEmulator(QueryMixin, SObjectsMixin, CompositeMixin, ToolingMixin, OAuthMixin, Emulator):
    system = "salesforce"

    def __init__(self, clock: EmulatorClock | None = None, *, hub_id_field: str = "Hub_Id__c",
                 invoice_object: str = "Billing_Invoice__c", allocation: int = 15000,
                 session_ttl_seconds: int = 7200, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET,
                 refresh_token: str = DEFAULT_REFRESH_TOKEN, multi_currency: bool = True,
                 currency: str = "USD", custom_schema: bool = True) -> None:
        self.hub_id_field = hub_id_field
        self.invoice_object = invoice_object
        # The kind of org a reset restores (configure_org changes it until then).
        self.default_org = OrgKind(multi_currency, currency.upper(), custom_schema)
        self.default_allocation = allocation
        self.default_ttl = session_ttl_seconds
        self.clients = {client_id: client_secret}
        self.initial_refresh_token = refresh_token
        self.state_lock = threading.RLock()
        super().__init__(clock)
        self.app.middlewares.append(self._salesforce_middleware)
        self.app.on_response_prepare.append(self._limit_header)

    def reset_state(self) -> None:
        with self.state_lock:
            self.reset_grants()
            self.allocation = self.default_allocation
            self.usage: deque[datetime] = deque()  # when each API call of the last 24 hours came
            self.received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_KEPT)
            self.configure_org(**self.default_org._asdict())

    def configure_org(self, *, multi_currency: bool = True, currency: str = "USD",
                      custom_schema: bool = True) -> None:
        """Make this a different kind of org, emptied: single-currency (``multi_currency``
        False: no ``CurrencyIsoCode`` anywhere, every amount in ``currency``, the org's
        ``DefaultCurrencyIsoCode``) and/or without billhub's custom fields and invoice object
        (``custom_schema`` False, as a fresh org is). Also ``{"org": {...}}`` on the control call."""
        with self.state_lock:
            self.org_kind = OrgKind(multi_currency, currency.upper(), custom_schema)
            self.org_currency = self.org_kind.currency
            self.schema = build_schema(self.hub_id_field, self.invoice_object, multi_currency=multi_currency,
                                       currency=self.org_currency, custom_schema=custom_schema)
            self.schema.update(permission_objects())
            self.by_lower = {name.lower(): obj for name, obj in self.schema.items()}
            self.reset_query()
            self.reset_org()

    # ------------------------------------------------------------------ API allocation

    def api_used(self) -> int:
        horizon = self.clock.now() - timedelta(hours=24)
        while self.usage and self.usage[0] <= horizon:
            self.usage.popleft()
        return len(self.usage)

    def set_api_used(self, used: int) -> None:
        with self.state_lock:
            self.usage = deque([self.clock.now()] * used)

    def limits(self) -> dict[str, dict[str, int]]:
        """``GET limits`` as the REST API answers it ("List Org Limits"): each limit's ``Max`` and
        ``Remaining`` as integers. The daily API requests are the live rolling allocation; data
        storage counts 2 KB a record (Salesforce's size for most records) against a Developer
        Edition's 5 MB; the rest are a Developer Edition's allocations, none of them used (the
        emulator serves no Bulk API, Apex, streaming or email)."""
        records = sum(len(table) for table in self.tables.values())
        used_mb = -(-records * 2 // 1024)  # whole MB, rounded up
        fixed = {"ConcurrentAsyncGetReportInstances": 200, "ConcurrentSyncReportRuns": 20,
                 "DailyAsyncApexExecutions": 250000, "DailyBulkApiBatches": 15000,
                 "DailyBulkV2QueryFileStorageMB": 976562, "DailyBulkV2QueryJobs": 10000,
                 "DailyDurableGenericStreamingApiEvents": 10000, "DailyDurableStreamingApiEvents": 10000,
                 "DailyGenericStreamingApiEvents": 10000, "DailyStandardVolumePlatformEvents": 10000,
                 "DailyStreamingApiEvents": 10000, "DailyWorkflowEmails": 390, "FileStorageMB": 20,
                 "HourlyAsyncReportRuns": 1200, "HourlyDashboardRefreshes": 200, "HourlySyncReportRuns": 500,
                 "HourlyTimeBasedWorkflow": 50, "MassEmail": 10, "SingleEmail": 15}
        body = {name: {"Max": value, "Remaining": value} for name, value in fixed.items()}
        body["DailyApiRequests"] = {"Max": self.allocation, "Remaining": max(0, self.allocation - self.api_used())}
        body["DataStorageMB"] = {"Max": 5, "Remaining": 5 - used_mb}
        return dict(sorted(body.items()))

    # ------------------------------------------------------------------ HTTP plumbing

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        return json_response([{"message": message, "errorCode": code, "fields": []}], status)

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        return json_response([{"message": "Too many requests; slow down",
                               "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}], 429,
                             headers={"Retry-After": str(int(retry_after))})

    def stat_key(self, request: web.Request) -> str:
        """Fold ids and external-id values out of paths: ``GET sobjects/Account/{id}``."""
        path = request.path
        if not path.startswith("/services/data/"):
            return f"{request.method} {path}"
        parts = [p for p in path.split("/")[4:] if p]
        if len(parts) >= 2 and parts[0] in ("query", "queryAll"):
            parts[1] = "{locator}"
        if parts[:1] == ["sobjects"] and len(parts) == 3 and parts[2] not in ("describe", "updated", "deleted"):
            parts[2] = "{id}"
        if parts[:1] == ["sobjects"] and len(parts) == 4:
            parts[3] = "{value}"
        return f"{request.method} {'/'.join(parts)}"

    @web.middleware
    async def _salesforce_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The session check and the API allocation, for REST calls only (not OAuth, not control)."""
        if not request.path.startswith("/services/data/v"):
            return await handler(request)  # type: ignore[no-any-return]
        with self.state_lock:
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
            if not self.oauth.check_access(token).ok:
                return json_response([{"message": "Session expired or invalid",
                                       "errorCode": "INVALID_SESSION_ID"}], 401)
            if self.api_used() >= self.allocation:
                return json_response([{"message": "TotalRequests Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
            self.usage.append(self.clock.now())
        return await handler(request)  # type: ignore[no-any-return]

    async def _limit_header(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/services/data/"):
            with self.state_lock:
                response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used()}/{self.allocation}"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/services/oauth2/token", self._token)
        router.add_post(CONTROL + "salesforce", self._control)
        router.add_route("*", "/services/data/v{version}/{rest:.*}", self._dispatch)

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        with self.state_lock:
            if "allocation" in body:
                self.allocation = int(body["allocation"])
            if "api_used" in body:
                self.set_api_used(int(body["api_used"]))
            if "page_size" in body:
                self.page_size = int(body["page_size"])
            self.oauth_control(**{key: body[key] for key in OAUTH_CONTROL_KEYS if key in body})
            if "org" in body:
                self.configure_org(**{**self.org_kind._asdict(), **body["org"]})
            return web.json_response({"allocation": self.allocation, "api_used": self.api_used(),
                                      "sessions": self.live_sessions(), "page_size": self.page_size,
                                      "org": self.org_kind._asdict()})

    # ------------------------------------------------------------------ the REST API

    def _body(self, text: str) -> Any:
        if not text.strip():
            return {}
        try:
            return exact_json.loads(text)
        except ValueError:
            raise SfError(400, "JSON_PARSER_ERROR", "Unexpected character in request body") from None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        parts = [p for p in request.match_info["rest"].split("/") if p]
        try:
            text = await request.text() if request.can_read_body else ""
            with self.state_lock:  # what reached the org, for tests to inspect (SOQL, bodies)
                self.received.append({"method": request.method, "path": request.path,
                                      "soql": request.query.get("q"), "body": text})
            body = self._body(text) if request.method in ("POST", "PATCH", "PUT") else {}
            with self.state_lock:
                return self._route(request, version, parts, body)
        except SfError as exc:
            if exc.status == 300:
                return json_response([record_url(version, *u.split("/", 1)) for u in exc.fields], 300)
            return json_response(exc.rest_body(), exc.status)

    def _route(self, request: web.Request, version: str, parts: list[str], body: Any) -> web.StreamResponse:
        method = request.method
        head = parts[0] if parts else ""
        if head in ("query", "queryAll"):
            return self._query(request, version, parts, head == "queryAll")
        if head == "limits" and method == "GET":
            return json_response(self.limits())
        if parts[:2] == ["composite", "sobjects"]:
            return self._collection(request, version, parts[2:], body)
        if head == "sobjects":
            return self._sobjects(request, version, parts[1:], body)
        if head == "tooling":
            return self._tooling(request, parts[1:], body)
        raise not_found()


def abort_connections(running: RunningEmulator) -> None:
    """Abort the server side of every open connection before ``running.stop()``.

    Clients such as urllib3 close TLS sockets without a close_notify; asyncio then waits up to
    30 s for one before closing the server transport, so stopping the loop earlier leaves those
    transports unclosed (a ResourceWarning, fatal under ``-W error``). Call this first.
    """

    async def _abort() -> None:
        runner = running._runner
        server = runner.server if runner is not None else None
        for handler in list(server.connections if server is not None else []):
            if handler.transport is not None:
                handler.transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    running.call(_abort())
