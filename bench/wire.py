"""What the benches see on the wire: an aiohttp middleware put in front of each emulator.

``start_emulators`` builds the four emulators as ``sync.demo.start_emulators`` does, but inserts a
``WireLog`` middleware as the outermost one before each app starts, so it sees every request
(also the ones the emulator answers 429): route, status, items sent in a write batch, items
returned in a read page, and how many requests were in flight at once. ``latency`` adds a
network-like delay to every request (the emulators answer in microseconds and one at a time,
so without it no two requests would ever overlap).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from connectors.emulation import CONTROL, Emulator
from connectors.xero.emulator import Limits
from sync.demo import Emulators
from sync.demo import start_emulators as demo_start_emulators

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Call:
    at: float  # time.monotonic() when the request arrived
    method: str
    route: str  # the emulator's stat key, e.g. "GET /v1/customers"
    path: str
    query: str
    status: int
    sent: int | None  # records in a write body
    returned: int | None  # records in a read page
    requested: int | None  # page size asked for
    entity: str  # the object type, when it can be told
    body: str  # query text (QuickBooks POST /query), else ""


class WireLog:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.system = emulator.system
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.latency = 0.0  # seconds added to every request, as a network round trip would
        self.on_write: Callable[[str, str], None] | None = None  # (system, body) of answered writes

    def clear(self) -> None:
        self.calls = []
        self.max_in_flight = self.in_flight

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL):
            return await handler(request)
        arrived = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await handler(request)
        finally:
            self.in_flight -= 1
        # Read the body only after the handler: reading it first would leave ``can_read_body``
        # False, and emulators that check it would see an empty body. (aiohttp caches a body the
        # handler has read, so this returns it either way.)
        raw = await request.read() if request.body_exists else b""
        body_text = raw.decode("utf-8", "replace") if raw else ""
        if self.on_write is not None and request.method in WRITES and response.status < 300:
            self.on_write(self.system, body_text)
        sent = _count_sent(self.system, request, raw) if request.method in WRITES else None
        returned = _count_returned(self.system, request, response)
        self.calls.append(Call(arrived, request.method, self.emulator.stat_key(request), request.path,
                               request.query_string, response.status, sent, returned,
                               _requested(self.system, request, body_text),
                               _entity(self.system, request, body_text),
                               body_text if "/query" in request.path else ""))
        return response


def _json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _segment(request: web.Request) -> str:
    return request.path.rstrip("/").rsplit("/", 1)[-1]


def _count_sent(system: str, request: web.Request, raw: bytes) -> int | None:
    body = _json(raw)
    if system == "quickbooks" and isinstance(body, dict) and "BatchItemRequest" in body:
        return len(body["BatchItemRequest"])
    if system == "xero" and isinstance(body, dict):
        items = body.get(_segment(request))
        return len(items) if isinstance(items, list) else 1
    if system == "salesforce" and isinstance(body, dict) and isinstance(body.get("records"), list):
        return len(body["records"])
    return 1


def _count_returned(system: str, request: web.Request, response: web.StreamResponse) -> int | None:
    if request.method != "GET" and not request.path.endswith("/query") or response.status >= 400:
        return None
    raw = getattr(response, "body", None)
    body = _json(raw if isinstance(raw, bytes) else None)
    if not isinstance(body, dict):
        return None
    if system == "stripe":
        data = body.get("data")
        return len(data) if body.get("object") in ("list", "search_result") and isinstance(data, list) else None
    if system == "quickbooks":
        if "QueryResponse" in body:
            return sum(len(v) for v in body["QueryResponse"].values() if isinstance(v, list))
        if "CDCResponse" in body:
            return sum(len(v) for part in body["CDCResponse"] for q in part.get("QueryResponse", [])
                       for v in q.values() if isinstance(v, list))
        return None
    if system == "xero":
        items = body.get(_segment(request))
        return len(items) if isinstance(items, list) else None
    if system == "salesforce":
        records = body.get("records")
        return len(records) if isinstance(records, list) else None
    return None


def _requested(system: str, request: web.Request, body: str) -> int | None:
    query = request.query
    try:
        if system == "stripe" and "limit" in query:
            return int(query["limit"])
        if system == "xero" and "pageSize" in query:
            return int(query["pageSize"])
        if system == "quickbooks":
            found = re.search(r"MAXRESULTS\s+(\d+)", body or query.get("query", ""), re.I)
            return int(found.group(1)) if found else None
        if system == "salesforce" and request.method == "GET" and "query" in request.path:
            options = request.headers.get("Sforce-Query-Options", "")
            found = re.search(r"batchSize=(\d+)", options)
            return int(found.group(1)) if found else 2000
    except ValueError:
        return None
    return None


def _entity(system: str, request: web.Request, body: str) -> str:
    if system == "stripe":
        if request.path.endswith("/events"):
            types = [v for k, v in request.query.items() if k.startswith("types")]
            return f"events:{types[0].split('.')[0]}" if types else "events"
        return request.path.split("/")[2] if request.path.count("/") >= 2 else request.path
    if system == "quickbooks":
        found = re.search(r"\bFROM\s+(\w+)", body or request.query.get("query", ""), re.I)
        if found:
            return found.group(1)
        items = (_json(body.encode()) or {}).get("BatchItemRequest") if body.startswith("{") else None
        if items:
            return next((k for k in items[0] if k not in ("bId", "operation", "optionsData")), "batch")
        return request.query.get("entities", _segment(request))
    if system == "salesforce":
        names = re.findall(r"\bFROM\s+(\w+)", request.query.get("q", ""), re.I)
        if names:
            return str(names[-1])
        parts = request.path.split("/sobjects/")
        return parts[1].split("/")[0] if len(parts) > 1 else _segment(request)
    return _segment(request) if "/api.xro/" in request.path else request.path


def start_emulators(workdir: Path, *, scaled_limits: bool = True, now: datetime | None = None,
                    stripe_rate: float | None = None, qbo_limits: tuple[int, int] | None = None,
                    xero_limits: Limits | None = None) -> tuple[Emulators, dict[str, WireLog]]:
    """``sync.demo.start_emulators`` with a ``WireLog`` in front of each emulator."""
    logs: dict[str, WireLog] = {}

    def prepare(emulator: Emulator) -> None:
        logs[emulator.system] = WireLog(emulator)
        emulator.app.middlewares.insert(0, logs[emulator.system].middleware)

    emus = demo_start_emulators(workdir, scaled_limits=scaled_limits, now=now, stripe_rate=stripe_rate,
                                qbo_limits=qbo_limits, xero_limits=xero_limits, prepare=prepare)
    return emus, logs
