"""A stateful, realm-scoped QuickBooks Online emulator that python-quickbooks and intuit-oauth
talk to unchanged: the aiohttp app, its routes, the bearer check, the realm throttles, fault
injection and the control surface. State and ledger rules live in the sibling modules.

Wire behaviour reproduced (see shared/reference/api-facts.md §2, §5-§9):

* ``/v3/company/{realm}/{entity}`` (``api``, ``records``): create, read, full and sparse update
  with ``SyncToken`` (stale -> 5010), ``?operation=delete`` for transactions, ``?operation=void``
  (and ``?operation=update&include=void`` for payments), ``Active=false`` for names;
  ``DisplayName`` unique across customers, ``Name`` across items (6240, ``names``); faults as
  ``Fault.Error[{Message, Detail, code}]`` (610 not found, 2020 required, 2500 bad reference,
  6000 business rule).
* Multicurrency (``transactions``): home currency, ``CurrencyRef`` + ``ExchangeRate``,
  ``HomeTotalAmt``/``HomeBalance``.
* ``/query`` (the query language in ``qbql``), ``/cdc`` (30-day look-back, <= 1,000 objects,
  deletions as ``status: "Deleted"``; both in ``query``), ``/batch`` (<= 30 items, run one after
  another, per-item faults; a batch of queries only is counted in stats as ``QUERY_BATCH``, a read).
  Intuit's 2017 blog "batch operations important": items run serially but a later item does NOT
  see an earlier one's write in the same request; here it does (billhub's batches hold
  independent records; two items with one DisplayName is where the two could differ). A batch counts once against 500/min (Intuit, 2016: "500 requests per minute per
  realmId, including batch requests") and once against 40 batches/min; Intuit's 120/min per
  realm across apps is not modelled (one app).
* ``requestid``: a repeated id returns the original response and changes nothing.
* OAuth (``oauth``): discovery document, token endpoint with rotating refresh tokens (a used one
  gets ``invalid_grant``), client credentials by Basic or in the form body, access tokens that
  expire (401 / 3200).
* Throttles per realm (500/min, 10 concurrent, 40 batch/min; adjustable) answered with the XML
  429 body real QBO sends.
* Webhooks signed with ``intuit-signature`` in the legacy and CloudEvents formats (``webhooks``).

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
    POST /__emulator/batch_faults {"match": "STARTPOSITION 3", "code": 10000, "count": 1}
                              the next ``count`` batch query items holding ``match`` answer
                              that Fault (inside the 200, the other items answered as usual)
    POST /__emulator/webhook  {"url": ..., "format": "legacy" | "cloudevents",
                               "events": [{"name": "Customer", "id": "1", "operation": "Update"}],
                               "bad_signature": false} -> {"status": 200, "body": "..."}

The clock follows the wall clock unless one is given (tests pin it with ``EmulatorClock``), and
writes take its time as it is: several may share a second, as on Intuit's servers. Throttle
windows run on wall time (``time.monotonic``): a pinned clock would never let a minute pass.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL, Emulator, EmulatorClock, Handler, WallClock
from connectors.quickbooks.emulator.api import APIMixin
from connectors.quickbooks.emulator.oauth import OAuthMixin, grant_server
from connectors.quickbooks.emulator.store import Realm, Throttle, set_preferences
from connectors.quickbooks.emulator.webhooks import DEFAULT_VERIFIER_TOKEN, WebhooksMixin
from connectors.quickbooks.emulator.wire import (
    DEFAULT_REALM,
    Fault,
    auth_fault,
    fault_json,
    json_response,
    throttled,
)

SEED_ORDER = ["Account", "Customer", "Item", "Invoice", "CreditMemo", "RefundReceipt", "Payment"]
QUERIES_ONLY = web.RequestKey("qbo_queries_only", bool)  # a /batch of Query items only
QUERY_BATCH = "POST /v3/company/{realm}/batch (query)"  # its stat key


class QuickBooksEmulator(APIMixin, OAuthMixin, WebhooksMixin, Emulator):
    system = "quickbooks"

    def __init__(self, clock: EmulatorClock | None = None, *, require_auth: bool = True) -> None:
        self.require_auth = require_auth
        # with record_exchanges, the newest /v3 answers (path, status, body text): what a peer
        # test inspects, e.g. batch items answered with a Fault inside a 200
        self.record_exchanges = False
        self.exchanges: deque[dict[str, Any]] = deque(maxlen=2000)
        # Intuit's clock is the wall clock: records stamped when written, several in one second
        super().__init__(clock or WallClock())
        self.app.middlewares.insert(0, self._mark_query_batches)

    # ------------------------------------------------------------------ setup

    def reset_state(self) -> None:
        self.realms: dict[str, Realm] = {}
        self.oauth = grant_server(self.clock)
        self.throttle = Throttle()
        self.item_faults = []
        self.verifier_token = DEFAULT_VERIFIER_TOKEN
        self.realm(DEFAULT_REALM)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.add_oauth_routes(router, CONTROL)
        router.add_post(CONTROL + "edit", self._edit)
        router.add_post(CONTROL + "throttle", self._throttle_control)
        router.add_post(CONTROL + "batch_faults", self._batch_faults_control)
        router.add_post(CONTROL + "webhook", self._send_webhook)
        self.add_api_routes(router)

    def stat_key(self, request: web.Request) -> str:
        entity = request.match_info.get("entity")
        if entity:
            return f"{request.method} /v3/company/{{realm}}/{entity}"
        if request.get(QUERIES_ONLY):
            return QUERY_BATCH
        return super().stat_key(request)

    @web.middleware
    async def _mark_query_batches(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A ``/batch`` whose items are all queries reads and changes nothing: counted as
        ``QUERY_BATCH`` (a read, so counts by route tell reads from writes) and never hit by
        apply-then-fail. Only bookkeeping: the answer is the batch's as ever."""
        if request.method == "POST" and request.path.startswith("/v3/") and request.path.endswith("/batch"):
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                body = None
            items = body.get("BatchItemRequest") if isinstance(body, dict) else None
            request[QUERIES_ONLY] = bool(items) and isinstance(items, list) and all(
                isinstance(item, dict) and "Query" in item for item in items)
        return await handler(request)

    # ------------------------------------------------------------------ wire shapes

    def error_response(self, status: int, message: str) -> web.StreamResponse:
        return fault_json(Fault(10000, "An application error has occurred while processing your request",
                                message, status=status), self.clock.now())

    def rate_limit_response(self, retry_after: float) -> web.StreamResponse:
        return throttled(self.throttle.format, self.clock.now())

    # ------------------------------------------------------------------ middleware

    def faults_apply(self, request: web.Request) -> bool:
        """Faults hit the accounting API only, never the OAuth endpoints."""
        return request.path.startswith("/v3/") and self.faults.applies(request.path)

    def is_write(self, request: web.Request) -> bool:
        """QBO reads (``/query``, a batch of queries) are POSTs too: only real writes count for
        apply-then-fail."""
        return request.method == "POST" and not request.path.endswith("/query") and not request.get(QUERIES_ONLY)

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
            response = await handler(request)
        finally:
            realm.in_flight -= 1
        if self.record_exchanges:
            text = response.text if isinstance(response, web.Response) else None
            self.exchanges.append({"method": request.method, "path": request.path, "query": dict(request.query),
                                   "status": response.status, "body": text})
        return response

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        check = self.oauth.check_access(token)
        if check.status == "unknown":
            return auth_fault("Token invalid", self.clock.now())
        if check.status == "expired":
            return auth_fault("Token expired", self.clock.now())
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

    # ------------------------------------------------------------------ control: throttle, seed, edit

    async def _throttle_control(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        for key, value in body.items():
            if not hasattr(self.throttle, key):
                return web.json_response({"error": f"unknown throttle setting {key}"}, status=400)
            setattr(self.throttle, key, value)
        return web.json_response({"ok": True})

    async def _batch_faults_control(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            rule = {"match": str(body["match"]), "code": int(body.get("code", 10000)), "count": int(body.get("count", 1))}
        except (KeyError, TypeError, ValueError):
            return web.json_response({"error": "want {match, code?, count?}"}, status=400)
        self.item_faults.append(rule)
        return web.json_response({"ok": True})

    async def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        realm = self.realm(str(body.get("realm", DEFAULT_REALM)))
        if "home_currency" in body:
            realm.home_currency = str(body["home_currency"]).upper()
            set_preferences(realm)
        if "webhook_verifier_token" in body:
            self.verifier_token = str(body["webhook_verifier_token"])
        self.oauth_control(refresh_tokens=body.get("refresh_tokens"), access_tokens=body.get("access_tokens"))
        out: dict[str, Any] = {"realm": realm.realm_id}
        for rate in body.get("ExchangeRate", []):
            self.put_exchange_rate(realm, rate)
        async with self.lock:
            for entity in SEED_ORDER:
                ids = []
                for obj in body.get(entity, []):
                    saved = self.save(realm, entity, dict(obj))
                    ids.append(saved["Id"])
                if ids:
                    out[entity] = ids
        return out

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
        return json_response({body["entity"]: result})
