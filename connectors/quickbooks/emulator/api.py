"""The accounting API's handlers under ``/v3/company/{realm}``: read, write (with ``requestid``
replays and ``?operation=delete|void``), ``/query``, ``/cdc``, ``/batch`` (<= 30 items, per-item
faults), ``/exchangerate`` and ``/reports/{name}`` (``reports``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from connectors.quickbooks.emulator.query import cdc, run_query
from connectors.quickbooks.emulator.records import RecordsMixin
from connectors.quickbooks.emulator.reports import report
from connectors.quickbooks.emulator.store import Realm
from connectors.quickbooks.emulator.transactions import latest_rate
from connectors.quickbooks.emulator.wire import (
    BUSINESS_RULE,
    BY_NAME,
    ENTITIES,
    REQUIRED,
    UNMODELLED,
    Fault,
    fault_json,
    json_response,
    qbo_time,
)
from mapping.exact_json import dumps, loads

# Intuit's limits page: a RECOMMENDED maximum of 30 payloads (its batch page says 10); what real
# QBO answers past it is not documented: the 6000 Fault below is ours (billhub never sends more)
MAX_BATCH = 30


class APIMixin(RecordsMixin):
    lock: asyncio.Lock
    # injected item faults (``POST /__emulator/batch_faults``): [{"match", "code", "count"}], the
    # next ``count`` batch items whose query holds ``match`` answer that Fault inside the 200
    item_faults: list[dict[str, Any]]

    def add_api_routes(self, router: web.UrlDispatcher) -> None:
        base = "/v3/company/{realm}"
        router.add_post(base + "/query", self._query)
        router.add_get(base + "/query", self._query)
        router.add_get(base + "/cdc", self._cdc)
        router.add_post(base + "/batch", self._batch)
        router.add_get(base + "/exchangerate", self._exchange_rate)
        router.add_get(base + "/reports/{report}", self._report)
        router.add_get(base + "/{entity}/{id}", self._read)
        router.add_post(base + "/{entity}", self._write_route)

    @staticmethod
    def _entity(request: web.Request) -> str:
        segment = request.match_info.get("entity", "").lower()
        if segment not in ENTITIES:
            raise Fault(4000, "Unsupported Operation", f"Operation {segment} is not supported", status=400)
        return ENTITIES[segment]

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
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
            return json_response(reply, status)
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
        return json_response(reply, status)

    async def _read(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        try:
            segment = request.match_info.get("entity", "").lower()
            # an entity of QuickBooks the company holds none of: no such object, as Intuit answers
            entity = UNMODELLED[segment] if segment in UNMODELLED else self._entity(request)
            obj = realm.tables.get(entity, {}).get(request.match_info["id"])
            if obj is None:
                raise Fault(610, "Object Not Found",
                            f"Object Not Found : Something you're trying to use has been made inactive. "
                            f"{entity} Id={request.match_info['id']}")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return json_response({entity: obj, "time": qbo_time(self.clock.now())})

    async def _exchange_rate(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        currency = request.query.get("sourcecurrencycode", "").upper()
        on = request.query.get("asofdate") or self.clock.now().date().isoformat()
        row = latest_rate(realm, currency, on)
        if row is None:
            return fault_json(Fault(610, "Object Not Found", f"No exchange rate for {currency} on {on}"),
                              self.clock.now())
        return json_response({"ExchangeRate": row, "time": qbo_time(self.clock.now())})

    async def _report(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        try:
            body = report(realm, request.match_info["report"], request.query, self.clock.now())
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return json_response(body)

    async def _query(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        text = request.query.get("query") if request.method == "GET" else await request.text()
        try:
            result = run_query(realm, text or "")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        return json_response({**result, "time": qbo_time(self.clock.now())})

    async def _cdc(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        now = self.clock.now()
        try:
            body = cdc(realm, request.query.get("changedSince", ""), request.query.get("entities", ""), now)
        except Fault as fault:
            return fault_json(fault, now)
        return json_response(body)

    async def _batch(self, request: web.Request) -> web.Response:
        realm = self.realm(request.match_info["realm"])
        try:
            body = await self._body(request)
            items = body.get("BatchItemRequest")
            if not isinstance(items, list) or not items:
                raise Fault(2020, REQUIRED, "BatchItemRequest is missing")
            if len(items) > MAX_BATCH:
                raise Fault(6000, BUSINESS_RULE, f"Batch size {len(items)} exceeds the maximum of 30 items")
        except Fault as fault:
            return fault_json(fault, self.clock.now())
        out = []
        async with self.lock:
            for item in items:
                out.append(self._batch_item(realm, item))
        return json_response({"BatchItemResponse": out, "time": qbo_time(self.clock.now())})

    def _batch_item(self, realm: Realm, item: Mapping[str, Any]) -> dict[str, Any]:
        bid = item.get("bId")
        try:
            if "Query" in item:
                self._injected_item_fault(str(item["Query"]))
                return {"bId": bid, **run_query(realm, str(item["Query"]))}
            names = [k for k in item if k in BY_NAME.values()]
            if len(names) != 1:
                raise Fault(2010, "Request has invalid or unsupported property", "one entity per batch item")
            entity = names[0]
            operation = str(item.get("operation", "create"))
            body = dict(item[entity])
            if operation == "create":
                body.pop("Id", None)
            elif operation == "update" and not body.get("Id"):
                raise Fault(2020, REQUIRED, "Required parameter Id is missing in the request")
            obj = self._one(realm, entity, body, operation if operation in ("delete", "void") else "", "")
            return {"bId": bid, entity: obj}
        except Fault as fault:
            return {"bId": bid, "Fault": fault.body()}

    def _injected_item_fault(self, query: str) -> None:
        for rule in self.item_faults:
            if rule["count"] > 0 and rule["match"] in query:
                rule["count"] -= 1
                code = int(rule["code"])
                message = ("An application error has occurred while processing your request" if code >= 10000
                           else "Injected fault")
                raise Fault(code, message, f"injected fault on a batch item ({rule['match']!r})")
