"""The Stripe emulator's state: objects by kind, events, webhook deliveries, list and search.

The base of the emulator's catalog and billing parts; it knows nothing about HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from connectors.emulation import EmulatorClock
from connectors.stripe.emulator.wire import (
    IdMinter,
    as_int,
    as_list,
    created_filter,
    invalid,
    missing,
    page_down,
    paginate,
    parse_search,
    search_matches,
    sign_payload,
)

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
Params = dict[str, Any]


class StripeStore:
    """Objects, events and deliveries, with Stripe's list/search semantics over them."""

    clock: EmulatorClock
    webhook_retry_delay: float = 0.05
    webhook_attempts: int = 3
    endpoint_secret: str | None = None  # a fixed whsec_ for every endpoint (demo config)
    exchanges: list[dict[str, Any]]

    # ------------------------------------------------------------------ state

    def reset_state(self) -> None:
        self.ids = IdMinter()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.kind_of: dict[str, str] = {}
        # Each kind's ids in creation order, and each id's place in it, so that a list page
        # starts below its ``starting_after`` instead of listing every object again.
        self.created_order: dict[str, list[str]] = {}
        self.order_position: dict[str, dict[str, int]] = {}
        self.events: list[dict[str, Any]] = []
        # ``created`` of each event, and whether they never went down (the clock can be set
        # back): while they are in order, an events list bisects to its ``created`` bound instead
        # of scanning every event ever emitted (the change feeds ask for the last minutes only).
        self.event_created: list[int] = []
        self.events_in_order = True
        self.event_position: dict[str, int] = {}  # id -> index in ``events`` (append-only)
        self.idempotency: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {}
        self.meter_events: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self._rate_window: tuple[int, int] = (0, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        # The delivery session outlives a reset (it holds no state of the account).
        self._sender: ClientSession | None = getattr(self, "_sender", None)
        self._sender_loop: asyncio.AbstractEventLoop | None = getattr(self, "_sender_loop", None)
        self._number_seq: dict[str, int] = {}
        self.exchanges = []

    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.objects.setdefault(kind, {})

    def _store(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        table = self.table(kind)
        if obj["id"] not in table:  # new (or back after a removal): the newest of its kind
            order = self.created_order.setdefault(kind, [])
            self.order_position.setdefault(kind, {})[obj["id"]] = len(order)
            order.append(obj["id"])
        table[obj["id"]] = obj
        self.kind_of[obj["id"]] = kind
        return obj

    def get(self, kind: str, obj_id: str, label: str | None = None) -> dict[str, Any]:
        obj = self.table(kind).get(obj_id)
        if obj is None or obj.get("_deleted"):
            raise missing(label or kind, obj_id)
        return obj

    def find(self, obj_id: str) -> dict[str, Any] | None:
        kind = self.kind_of.get(obj_id)
        return self.table(kind).get(obj_id) if kind else None

    def live(self, kind: str) -> list[dict[str, Any]]:
        """Objects of a kind, newest first (creation order), deleted ones left out."""
        return [o for o in reversed(self.table(kind).values()) if not o.get("_deleted")]

    def now(self) -> int:
        return self.clock.timestamp()

    def render(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The wire form: internal ``_`` keys dropped, invoice lines as a list envelope."""
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        if obj.get("object") == "invoice" and "_lines" in obj:
            lines = [self._wire_line(line) for line in obj["_lines"]]
            out["lines"] = {"object": "list", "data": lines[:10], "has_more": len(lines) > 10,
                            "url": f"/v1/invoices/{obj['id']}/lines"}
        if obj.get("object") == "credit_note":
            out["lines"] = {"object": "list", "data": copy.deepcopy(obj["_lines"]), "has_more": False,
                            "url": f"/v1/credit_notes/{obj['id']}/lines"}
        return out

    @staticmethod
    def _wire_line(line: Mapping[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in line.items() if not k.startswith("_")}

    def base(self, prefix: str, object_name: str, **fields: Any) -> dict[str, Any]:
        return {"id": fields.pop("id", None) or self.ids(prefix), "object": object_name,
                "created": self.now(), "livemode": False, **fields}

    # ------------------------------------------------------------------ events and webhooks

    # The account's default API version and the rendering of events in it (``versions``).
    account_version: str = API_VERSION

    def event_data(self, obj: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.render(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(dict(previous))
        return data

    def delivered_event(self, event: dict[str, Any], endpoint: Mapping[str, Any], obj: Mapping[str, Any],
                        previous: Mapping[str, Any] | None) -> dict[str, Any]:
        return event

    def emit(self, event_type: str, obj: Mapping[str, Any],
             previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = self.event_data(obj, previous)
        endpoints = [e for e in self.live("webhook_endpoint") if e["status"] == "enabled"
                     and ("*" in e["enabled_events"] or event_type in e["enabled_events"])]
        created = self.now()
        event = {"id": self.ids("evt"), "object": "event", "api_version": self.account_version,
                 "created": created, "data": data, "livemode": False,
                 "pending_webhooks": len(endpoints),
                 "request": {"id": None, "idempotency_key": None}, "type": event_type}
        if self.event_created and created < self.event_created[-1]:
            self.events_in_order = False
        self.event_position[str(event["id"])] = len(self.events)
        self.events.append(event)
        self.event_created.append(created)
        for endpoint in endpoints:
            self._schedule_delivery(endpoint, self.delivered_event(event, endpoint, obj, previous))
        return event

    def _schedule_delivery(self, endpoint: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # mutated from outside the server loop (direct test setup): no delivery
        task = loop.create_task(self._deliver(dict(endpoint), dict(event)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle_deliveries(self) -> int:
        """Wait for in-flight webhook deliveries (tests call this on the emulator's loop)."""
        pending = list(self._tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    def _delivery_session(self) -> ClientSession:
        """One client session (and its pool of kept-alive connections) for every delivery on
        this loop: a session and a new connection per delivery cost the emulator more than the
        delivery itself once thousands of events go to several endpoints."""
        loop = asyncio.get_running_loop()
        if self._sender is None or self._sender.closed or self._sender_loop is not loop:
            # Ten seconds to connect and to answer, but no limit on the wait for one of the pool's
            # connections: a seeded burst schedules tens of thousands of deliveries at once, and
            # with ``total=10`` that wait timed them out unsent (at 10x, 136,000 of 188,000 events
            # reached no process, three attempts each; real Stripe retries for three days).
            timeout = ClientTimeout(total=None, connect=None, sock_connect=10, sock_read=10)
            self._sender, self._sender_loop = ClientSession(timeout=timeout), loop
        return self._sender

    async def close_deliveries(self, _app: object = None) -> None:
        """Close the delivery session (on the server's cleanup, on its loop)."""
        if self._sender is not None and not self._sender.closed:
            await self._sender.close()
        self._sender = None

    async def _deliver(self, endpoint: dict[str, Any], event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        for attempt in range(1, self.webhook_attempts + 1):
            headers = {"Stripe-Signature": sign_payload(endpoint["_secret"], body, self.now()),
                       "Content-Type": "application/json; charset=utf-8",
                       "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
            status: int | None = None
            try:
                async with self._delivery_session().post(endpoint["url"], data=body, headers=headers) as resp:
                    status = resp.status
            except Exception as exc:  # the receiver is down: retried below
                log.info("webhook delivery to %s failed: %s", endpoint["url"], type(exc).__name__)
            self.deliveries.append({"endpoint": endpoint["id"], "event": event["id"],
                                    "type": event["type"], "attempt": attempt, "status": status})
            if status is not None and 200 <= status < 300:
                return
            await asyncio.sleep(self.webhook_retry_delay * 2 ** (attempt - 1))

    # ------------------------------------------------------------------ generic list/search

    def list_kind(self, kind: str, params: Params, url: str,
                  filters: tuple[str, ...] = (), exact: tuple[str, ...] = ()) -> dict[str, Any]:
        """``filters`` match case-blind (ids, statuses), ``exact`` ones as given (a customer's
        ``email``: "a case-sensitive filter", the spec says)."""
        check = created_filter(params)
        wanted = {name: str(params[name]).lower() for name in filters
                  if name in params and params[name] != "" and not isinstance(params[name], dict)}
        same = {name: str(params[name]) for name in exact if name in params and params[name] != ""}

        def listed(obj: Mapping[str, Any]) -> bool:
            return (not obj.get("_deleted") and check(obj)
                    and all(str(self._field(obj, n)).lower() == v for n, v in wanted.items())
                    and all(self._field(obj, n) == v for n, v in same.items()))
        if params.get("ending_before"):  # paging back (rare): the whole list, as Stripe orders it
            items = [o for o in self.live(kind) if listed(o)]
        else:
            items, params = self._page_down(kind, params, listed)
        envelope = paginate(items, params, url)
        envelope["data"] = [self.render(o) for o in envelope["data"]]
        return envelope

    @staticmethod
    def _field(obj: Mapping[str, Any], name: str) -> Any:
        """A filterable field; an invoice's subscription lives under ``parent`` in this API version,
        a promotion code's coupon under ``promotion``."""
        if name == "subscription" and obj.get("object") == "invoice":
            parent = obj.get("parent") or {}
            return (parent.get("subscription_details") or {}).get("subscription")
        if name == "coupon" and obj.get("object") == "promotion_code":
            return obj["promotion"]["coupon"]
        return obj.get(name)

    def _page_down(self, kind: str, params: Params,
                   listed: Callable[[Mapping[str, Any]], bool]) -> tuple[list[dict[str, Any]], Params]:
        """The listed objects newest first from below ``starting_after``, one past the page."""
        table, order = self.table(kind), self.created_order.get(kind, [])
        position = self.order_position.get(kind, {})
        upper = len(order)
        after = params.get("starting_after")
        if after:
            start = position.get(str(after), -1)
            obj = table.get(str(after)) if start >= 0 else None
            if obj is None or not listed(obj):
                raise missing("object", str(after), "starting_after")
            upper = start
            params = {k: v for k, v in params.items() if k != "starting_after"}

        def at(index: int) -> dict[str, Any] | None:
            obj = table.get(order[index])
            return obj if obj is not None and position[order[index]] == index else None  # not moved since
        return page_down(at, upper, 0, listed, params), params

    def search(self, kind: str, params: Params, url: str) -> dict[str, Any]:
        query = params.get("query")
        if not query:
            raise invalid("Missing required param: query.", "query", code="parameter_missing")
        clauses, joiner = parse_search(str(query))
        hits = [o for o in self.live(kind)
                if (seen := self.search_view(o)) is not None and search_matches(seen, clauses, joiner)]
        limit = as_int(params, "limit", 10) or 10
        offset = int(params.get("page") or 0)
        page = hits[offset:offset + limit]
        more = offset + limit < len(hits)
        return {"object": "search_result", "url": url, "has_more": more,
                "next_page": str(offset + limit) if more else None,
                "data": [self.render(o) for o in page]}

    def search_view(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The version of ``obj`` search finds it by (None: not yet); the realism part lags it."""
        return obj

    def _update(self, kind: str, obj: dict[str, Any], changes: Mapping[str, Any],
                event: str | None = None) -> dict[str, Any]:
        previous = {k: copy.deepcopy(obj.get(k)) for k, v in changes.items() if obj.get(k) != v}
        obj.update(changes)
        if previous:
            self.emit(event or f"{kind}.updated", obj, previous)
        return obj

    def delete_simple(self, kind: str, obj_id: str) -> dict[str, Any]:
        obj = self.get(kind, obj_id)
        obj["_deleted"] = True
        return {"id": obj_id, "object": obj["object"], "deleted": True}

    def intent_succeeded(self, pi: Mapping[str, Any]) -> None:
        """Called when a client's confirm made a PaymentIntent succeed (``collection`` settles
        the invoice it pays)."""

    def _tax_rates(self, ids: Any) -> list[dict[str, Any]]:
        return [self.get("tax_rate", str(i)) for i in as_list(ids)]

    def _product_name(self, price: Mapping[str, Any]) -> str:
        prod = self.table("product").get(price["product"])
        return str(prod["name"]) if prod else str(price["product"])

