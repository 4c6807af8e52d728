"""Reads: full fetch per entity type and incremental reads from the Events API.

Why the Events API: Stripe objects have no updated-at field, so "what changed" is only knowable
from events (kept 30 days). The cursor is ``{"t": created, "seen": [event ids]}``: the next read
asks for events created at or after ``t - overlap`` (events can become visible late) and skips the
ids it has already returned, so overlap never re-delivers what was read, and a pass with no
changes costs one request per stream. A cursor older than the retention falls back to a full
fetch, as does a cursor we cannot parse.

A first read is a full list, newest first, checkpointed per page: each page but the last carries
``{"resume": {"after": last id, "then": events cursor}}``, the events cursor taken before the
first page. A restart lists on ``starting_after`` the last stored object (no page read twice),
and its last page stores the events cursor, so the next read picks up every change made while
the list ran (objects created, updated or deleted then have events after it).

An event's object is rendered in the account's default API version when the event happened
(its ``api_version``), not in the version the hub pins (``client.STRIPE_VERSION``): an event of
another version has its object read again before it is mapped, never mapped as sent.

A key that may not read events (a restricted key without Events read: Stripe answers 403) gets
full reads instead, every pass, with a warning: changes arrive late but nothing is left unread;
deletions are then seen only by the diff.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from connectors.base import AuthError, InvalidError, Page, Record
from connectors.stripe.client import STRIPE_VERSION, StripeApi
from connectors.stripe.versions import answered_at, http_second, read_at, version_at

log = logging.getLogger(__name__)

EVENT_RETENTION_SECONDS = 30 * 24 * 3600
PAGE_LIMIT = 100


@dataclass(frozen=True)
class Stream:
    """How one canonical entity type is read from Stripe."""

    entity_type: str
    service: Callable[[stripe.StripeClient], Any]
    object_name: str
    path: str  # the list endpoint
    event_types: tuple[str, ...]
    deleted_events: tuple[str, ...] = ()
    list_params: Mapping[str, Any] = field(default_factory=dict)
    # Events carry the object without expansions; these streams re-read changed objects.
    retrieve_params: Mapping[str, Any] | None = None


STREAMS: dict[str, Stream] = {s.entity_type: s for s in (
    Stream("customer", lambda c: c.v1.customers, "customer", "/v1/customers",
           ("customer.created", "customer.updated", "customer.deleted"), ("customer.deleted",),
           # tax ids (VAT numbers) are includable only: listed and re-read with expand[]
           {"expand": ["data.tax_ids"]}, {"expand": ["tax_ids"]}),
    Stream("product", lambda c: c.v1.products, "product", "/v1/products",
           ("product.created", "product.updated", "product.deleted"), ("product.deleted",)),
    Stream("price", lambda c: c.v1.prices, "price", "/v1/prices",
           ("price.created", "price.updated", "price.deleted"), ("price.deleted",)),
    Stream("subscription", lambda c: c.v1.subscriptions, "subscription", "/v1/subscriptions",
           ("customer.subscription.created", "customer.subscription.updated",
            "customer.subscription.deleted", "customer.subscription.paused",
            "customer.subscription.resumed"), (), {"status": "all"}),
    Stream("invoice", lambda c: c.v1.invoices, "invoice", "/v1/invoices",
           ("invoice.created", "invoice.updated", "invoice.finalized", "invoice.paid",
            "invoice.voided", "invoice.marked_uncollectible", "invoice.deleted",
            "invoice.payment_succeeded", "invoice.payment_failed", "invoice.sent"),
           ("invoice.deleted",)),
    Stream("payment", lambda c: c.v1.payment_intents, "payment_intent", "/v1/payment_intents",
           ("payment_intent.succeeded", "payment_intent.created", "payment_intent.canceled",
            "payment_intent.payment_failed", "payment_intent.processing"), (),
           {"expand": ["data.latest_charge.balance_transaction"]},
           {"expand": ["latest_charge.balance_transaction"]}),
    Stream("refund", lambda c: c.v1.refunds, "refund", "/v1/refunds",
           ("refund.created", "refund.updated", "refund.failed"), (),
           {"expand": ["data.payment_intent"]}, {"expand": ["payment_intent"]}),
    Stream("credit_note", lambda c: c.v1.credit_notes, "credit_note", "/v1/credit_notes",
           ("credit_note.created", "credit_note.updated", "credit_note.voided")),
    # Re-read on every event (retrieve_params): the connector adds the fees of what it settles.
    Stream("payout", lambda c: c.v1.payouts, "payout", "/v1/payouts",
           ("payout.created", "payout.updated", "payout.paid", "payout.failed", "payout.canceled",
            "payout.reconciliation_completed"), (), {}, {}),
)}

ENTITY_BY_OBJECT = {s.object_name: s.entity_type for s in STREAMS.values()}


def to_plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (or dict) as plain JSON-able dicts and lists."""
    if isinstance(obj, stripe.StripeObject):
        plain: dict[str, Any] = obj.to_dict()
        return plain
    return dict(obj)


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def record_of(entity_type: str, data: Mapping[str, Any], *, deleted: bool = False,
              changed_at: int | None = None, current_at: int | None = None) -> Record:
    """``current_at``: the second (Stripe's clock) this state is known current at, the
    record's version (``connectors.stripe.versions``)."""
    return Record(entity_type, str(data["id"]), data,
                  updated_at=_ts(changed_at if changed_at is not None else data.get("created")),
                  deleted=deleted or bool(data.get("deleted")), version=version_at(current_at))


def encode_cursor(t: int, seen: Sequence[str]) -> str:
    return json.dumps({"t": t, "seen": list(seen)[-2000:]}, separators=(",", ":"))


def encode_resume(after: str, then: str) -> str:
    return json.dumps({"resume": {"after": after, "then": then}}, separators=(",", ":"))


def decode_resume(cursor: str) -> tuple[str, str] | None:
    """A first read's checkpoint: (the last object stored, the events cursor to end on)."""
    try:
        data = json.loads(cursor)
        resume = data["resume"] if isinstance(data, dict) else None
        return (str(resume["after"]), str(resume["then"])) if isinstance(resume, dict) else None
    except (ValueError, TypeError, KeyError):
        return None


def decode_cursor(cursor: str) -> tuple[int, set[str]] | None:
    try:
        data = json.loads(cursor)
        return int(data["t"]), {str(i) for i in data.get("seen", [])}
    except (ValueError, TypeError, KeyError):
        return None


class EventsUnreadable(Exception):
    """``GET /v1/events`` answered 403: the key lacks the Events read permission."""


@dataclass(frozen=True)
class ListPage:
    """One page of a list endpoint as plain JSON, with the answer's HTTP headers."""

    data: list[dict[str, Any]]
    has_more: bool
    headers: Mapping[str, str]
    round_trip: float = 0.0  # seconds from sending the request to its answer (retries included)


def _server_time(page: ListPage) -> int | None:
    """Stripe's clock when it answered (the HTTP Date header), or None when absent or unreadable."""
    return http_second(page.headers)


class StreamReader:
    """Full and incremental reads for one connection."""

    def __init__(self, api: StripeApi, *, overlap_seconds: int, clock: Callable[[], datetime],
                 enrich: Callable[[str, dict[str, Any]], dict[str, Any]],
                 page_limit: int = PAGE_LIMIT) -> None:
        self.api = api
        self.overlap = overlap_seconds
        self.clock = clock
        self.enrich = enrich  # adds what the list call cannot (tax rates, remaining lines)
        # told of each page of a full list before it is enriched (the connector loads invoice links)
        self.prepare_page: Callable[[str, Sequence[Mapping[str, Any]]], None] = lambda _type, _objects: None
        self.page_limit = page_limit
        # Stripe's clock when the last events read began (its first page's Date header): a read
        # lists newest first, so it holds every event created before then, not those created
        # while it paged on (at 10x a read of 60,000 events took minutes).
        self.server_time: int | None = None

    def list_page(self, path: str, params: dict[str, Any]) -> ListPage:
        """One page of any list endpoint as plain JSON (see ``_list``)."""
        return self._list(path, params)

    def _list(self, path: str, params: dict[str, Any]) -> ListPage:
        """A list page through the SDK's ``raw_request`` (same HTTP, auth, encoding and errors
        as the typed services), read as plain JSON: building StripeObjects for every listed
        object, only to turn them back into dicts, cost more than the request itself."""
        def send(client: stripe.StripeClient) -> ListPage:
            response = client.raw_request("get", path, **params)
            body = response.data
            if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
                raise InvalidError(f"Stripe sent an unexpected answer to GET {path}", system="stripe")
            return ListPage([dict(o) for o in body["data"]], bool(body.get("has_more")),
                            dict(response.headers or {}))
        began = time.monotonic()
        page: ListPage = self.api.call(send)
        return dataclasses.replace(page, round_trip=time.monotonic() - began)

    # -- full fetch ------------------------------------------------------------------------

    def fetch_all(self, entity_type: str, cursor: str | None = None, after: str | None = None) -> Iterator[Page]:
        """Every live object, newest first, ``page_limit`` per request (from ``starting_after``
        ``after``); ``cursor`` on the last page and, when given, a checkpoint on every other."""
        stream = STREAMS[entity_type]
        while True:
            params = {**stream.list_params, "limit": self.page_limit}
            if after:
                params["starting_after"] = after
            page = self._list(stream.path, params)
            items = page.data
            self.prepare_page(entity_type, items)
            listed_at = read_at(_server_time(page), page.round_trip)
            records = [record_of(entity_type, self.enrich(entity_type, o), current_at=listed_at) for o in items]
            last = not page.has_more or not items
            if last:
                yield Page(records, cursor=cursor)
                return
            after = str(items[-1]["id"])
            yield Page(records, cursor=encode_resume(after, cursor) if cursor is not None else None)

    def _events(self, stream: Stream, since: int | None) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_limit, "types": list(stream.event_types)}
            if since is not None:
                params["created"] = {"gte": since}
            if after:
                params["starting_after"] = after
            try:
                page = self._list("/v1/events", params)
            except AuthError as exc:
                if exc.status == 403 and after is None:
                    raise EventsUnreadable(str(exc)) from None
                raise
            if after is None:
                self.server_time = _server_time(page)
            events = page.data
            yield from events
            if not page.has_more or not events:
                return
            after = str(events[-1]["id"])

    def _starting_cursor(self, stream: Stream) -> str:
        """Cursor for "everything up to now": the newest events, remembered so they are skipped."""
        newest: int | None = None
        window: list[str] = []
        for event in self._events(stream, None):  # newest first: stop past the overlap window
            created = int(event["created"])
            newest = created if newest is None else newest
            if created < newest - self.overlap:
                break
            window.append(str(event["id"]))
        if newest is None:
            return encode_cursor(self.server_time or int(self.clock().timestamp()), [])
        return encode_cursor(newest, window)

    # -- incremental -------------------------------------------------------------------------

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        """What changed since ``cursor`` (see the module docstring), or everything when the key
        may not read events."""
        started = int(self.clock().timestamp())
        pages = self._changes(entity_type, cursor)
        try:
            first = next(pages, None)
        except EventsUnreadable as exc:
            log.warning("stripe %s: the API key may not read events (%s): reading the whole list "
                        "instead, on every pass; give the key the Events read permission "
                        "(rak_event_read) for incremental reads", entity_type, exc)
            # the events cursor of when this read began: once the key may read events, the next
            # read goes on from there
            yield from self.fetch_all(entity_type, cursor=encode_cursor(started, []))
            return
        if first is not None:
            yield first
            yield from pages

    def _changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        stream = STREAMS[entity_type]
        now = int(self.clock().timestamp())
        resume = decode_resume(cursor) if cursor else None
        if resume is not None:  # a first read was interrupted: go on after its last stored page
            after, then = resume
            state = decode_cursor(then)
            if state is not None and state[0] - self.overlap >= now - EVENT_RETENTION_SECONDS:
                pages = self.fetch_all(entity_type, cursor=then, after=after)
                try:
                    first = next(pages)
                except InvalidError:  # Stripe no longer lists the object it stopped after
                    log.warning("stripe %s: a first read cannot resume (its last object is gone); "
                                "reading from the start", entity_type)
                else:
                    yield first
                    yield from pages
                    return
            state = None  # or its events cursor aged out meanwhile: read again from the start
        else:
            state = decode_cursor(cursor) if cursor else None
            if cursor and state is None:
                log.warning("stripe %s: unreadable cursor, falling back to a full fetch", entity_type)
        if state is None or state[0] - self.overlap < now - EVENT_RETENTION_SECONDS:
            start = self._starting_cursor(stream)
            yield from self.fetch_all(entity_type, cursor=start)
            return
        t, seen = state
        newest, window, returned = t, [], set()
        batch: list[Record] = []
        for event in self._events(stream, t - self.overlap):
            created = int(event["created"])
            newest = max(newest, created)
            window.append((created, event["id"]))
            if event["id"] in seen:
                continue
            obj = event.get("data", {}).get("object") or {}
            obj_id = obj.get("id")
            if not obj_id or obj_id in returned:
                continue  # events are newest first: the first one seen is the latest state
            returned.add(obj_id)
            batch.append(self._record_from_event(stream, event, obj))
            if len(batch) >= self.page_limit:
                yield Page(batch)
                batch = []
        # Events created more than the overlap before this read began have all landed: move past
        # them even when nothing newer came, or every quiet pass would re-read the last burst.
        # Stripe's time (its Date header), never ours: a host clock running ahead would skip
        # events. When the read began, not when it ended: events created while a long read paged
        # on are newer than its first page and were never listed (10x lost 850 invoices so).
        if self.server_time is not None:
            newest = max(newest, self.server_time - self.overlap)
        new_seen = [eid for created, eid in window if created >= newest - self.overlap]
        yield Page(batch, cursor=encode_cursor(newest, new_seen))

    def _record_from_event(self, stream: Stream, event: Mapping[str, Any], obj: dict[str, Any]) -> Record:
        deleted = event["type"] in stream.deleted_events
        # read again: for the stream's expansions, or because the event's copy is in another API
        # version's shape (a deletion is taken as sent: its data is never mapped)
        current_at = int(event["created"])  # the event's copy: the state right after its change
        if not deleted and (stream.retrieve_params is not None or event.get("api_version") != STRIPE_VERSION):
            fresh, read = self._retrieve(stream, str(obj["id"]))
            obj, current_at = to_plain(fresh), read or current_at
        data = obj if deleted else self.enrich(stream.entity_type, obj)
        return record_of(stream.entity_type, data, deleted=deleted, changed_at=int(event["created"]),
                         current_at=current_at)

    def refetch(self, record: Record) -> Record:
        """A record read again with its stream's expansions, which event payloads never carry."""
        fresh, read = self._retrieve(STREAMS[record.entity_type], record.external_id)
        changed = int(record.updated_at.timestamp()) if record.updated_at else None
        return record_of(record.entity_type, self.enrich(record.entity_type, to_plain(fresh)), changed_at=changed,
                         current_at=read)

    def _retrieve(self, stream: Stream, object_id: str) -> tuple[Any, int | None]:
        """One object with its stream's expansions, and the second it is known current at."""
        began = time.monotonic()
        fresh = self.api.call(lambda c: stream.service(c).retrieve(object_id, params=dict(stream.retrieve_params or {})))
        return fresh, read_at(answered_at(fresh), time.monotonic() - began)

    def records_for_event(self, payload: Mapping[str, Any]) -> list[Record]:
        """Records carried by one webhook event (no API call; expansions are absent, and the object
        is in the event's ``api_version``: the connector reads every one again before mapping)."""
        data = payload.get("data")
        obj = data.get("object") if isinstance(data, Mapping) else None
        if not isinstance(obj, Mapping) or not obj.get("id"):
            return []
        entity_type = ENTITY_BY_OBJECT.get(str(obj.get("object")))
        if entity_type is None:
            return []
        stream = STREAMS[entity_type]
        deleted = payload.get("type") in stream.deleted_events
        created = payload.get("created")
        at = created if isinstance(created, int) else None
        return [record_of(entity_type, dict(obj), deleted=deleted, changed_at=at, current_at=at)]
