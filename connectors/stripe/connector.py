"""The Stripe connector: the ``Connector`` protocol over the official SDK.

Entity types: customer, product, price, subscription, invoice, payment (PaymentIntent with its
latest charge's balance transaction), refund, credit_note, payout (with the fees of the balance
transactions it settles). Writes: customer, product, price,
subscription, invoice, plus ``record_usage`` for meter events. The hub's marker is
``metadata.hub_id`` on every object the hub writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from connectors.base import (
    Answered,
    Capabilities,
    ConnectionCheck,
    ConnectionHealth,
    ConnectorError,
    EventRefetcher,
    HeldVersions,
    InboundEvent,
    InvalidError,
    Outbound,
    Page,
    Record,
    WebhookReceiver,
    WriteResult,
)
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.stripe import webhooks
from connectors.stripe.check import check_account
from connectors.stripe.client import StripeApi
from connectors.stripe.invoice_links import InvoiceLinks
from connectors.stripe.streams import STREAMS, StreamReader, record_of, to_plain
from connectors.stripe.versions import VERSIONS
from connectors.stripe.writes import StripeWriter, UsageEvent
from mapping import stripe as mapping
from mapping.keys import normalise_key
from mapping.model import Entity
from mapping.refs import RefResolver

if TYPE_CHECKING:
    from connectors.settings import ConnectionConfig
    from state.store import StateStore

# Objects read again side by side for a batch of webhook events (each thread keeps its own HTTP
# session; the rate limiter still paces them): one after another, a 500-event inbox claim under
# retries and latency spikes spent most of its time waiting on single reads.
REFETCH_THREADS = 4

SEARCHABLE = {"customer": "customers", "product": "products", "price": "prices",
              "subscription": "subscriptions", "invoice": "invoices"}
# How far back a lookup lists what was created when search does not find it: Stripe's search is
# not read-after-write ("searchable in under 1 minute", later during an outage), its lists are.
RECENT_SECONDS = 3600


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class StripeConnector(WebhookReceiver, EventRefetcher):
    system = "stripe"

    def __init__(self, name: str, api: StripeApi, *, webhook_secret: str | None = None,
                 overlap_seconds: int = 60, clock: Callable[[], datetime] | None = None,
                 page_limit: int = 100, key_prefix: str = "sk_test_", store: StateStore | None = None) -> None:
        self.name = name
        self.store = store  # where `hub setup webhooks` keeps the signing secret
        self.api = api
        self.key_prefix = key_prefix  # "sk_live_", "rk_test_", ...: what kind of key (never the key)
        self._webhook_secret = webhook_secret or ""
        self.clock = clock or (lambda: datetime.now(UTC))
        self._tax_rates: dict[str, dict[str, Any]] = {}
        self.reader = StreamReader(api, overlap_seconds=overlap_seconds, clock=self.clock,
                                   enrich=self._enrich, page_limit=page_limit)
        self._links = InvoiceLinks(self.reader.list_page, overlap_seconds=overlap_seconds)
        self.reader.prepare_page = self._links.prepare_page  # a full list loads every link at once
        self.writer = StripeWriter(api, self.lookup, system=name)
        self._refetchers: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"StripeConnector(name={self.name!r}, base={self.api.base!r})"

    # -- reads -------------------------------------------------------------------------------------

    def entity_types(self) -> Sequence[str]:
        return tuple(STREAMS)

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        self._check_type(entity_type)
        self._links.new_read()  # invoice payments made since the last read are listed (once)
        return self.reader.fetch_all(entity_type)

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        self._check_type(entity_type)
        self._links.new_read()  # invoice payments made since the last read are listed (once)
        return self.reader.fetch_changes(entity_type, cursor)

    def _check_type(self, entity_type: str) -> None:
        if entity_type not in STREAMS:
            raise ConnectorError(f"unknown Stripe entity type {entity_type!r}; expected one of "
                                 f"{', '.join(STREAMS)}", system=self.name)

    def _enrich(self, entity_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Complete an invoice as expand[] would: every line, and tax rates as objects; a payout
        with the fees of what it settles; a credit note with every line (Stripe embeds the
        first 10, the rest are paged from /v1/credit_notes/{id}/lines)."""
        if entity_type == "payout" and data.get("id"):
            return self._with_settled(data)
        if entity_type in ("payment", "refund") and data.get("id"):  # their invoice (invoice_links)
            return self._links.annotate(entity_type, data)
        if entity_type == "credit_note" and data.get("id"):
            return self._all_lines(data, self._note_lines_page)
        if entity_type != "invoice" or not data.get("id"):
            return data
        data = self._all_lines(data, self._lines_page)
        line_taxes = [t for line in (data.get("lines") or {}).get("data", []) for t in line.get("taxes") or []]
        for tax in [*(data.get("total_taxes") or []), *line_taxes]:
            details = tax.get("tax_rate_details") or {}
            rate = details.get("tax_rate")
            if isinstance(rate, str):
                details["tax_rate"] = self._tax_rate(rate)
        return data

    def _with_settled(self, payout: dict[str, Any]) -> dict[str, Any]:
        """A payout with the sums of the balance transactions it settles (``SETTLED_KEY``):
        ``GET /v1/balance_transactions?payout=`` lists them and the payout's own transaction,
        which is left out. Stripe lists them for automatic payouts only (a manual payout is not
        tied to transactions), so a manual one is left as it is and the mapping holds it."""
        if not payout.get("automatic"):
            return payout
        fee = gross = count = 0
        after: str | None = None
        while True:
            params: dict[str, Any] = {"payout": payout["id"], "limit": 100}
            if after:
                params["starting_after"] = after
            page = self.reader.list_page("/v1/balance_transactions", params)
            for txn in page.data:
                if txn.get("type") == "payout" or txn.get("source") == payout["id"]:
                    continue
                fee += int(txn.get("fee") or 0)
                gross += int(txn.get("amount") or 0)
                count += 1
            if not page.has_more or not page.data:
                break
            after = str(page.data[-1]["id"])
        return {**payout, mapping.SETTLED_KEY: {"fee": fee, "gross": gross, "count": count}}

    def _lines_page(self, invoice_id: str, params: dict[str, Any]) -> Any:
        return self.api.call(lambda c: c.v1.invoices.line_items.list(invoice_id, params=cast(Any, params)))

    def _note_lines_page(self, note_id: str, params: dict[str, Any]) -> Any:
        return self.api.call(lambda c: c.v1.credit_notes.line_items.list(note_id, params=cast(Any, params)))

    @staticmethod
    def _all_lines(data: dict[str, Any], page_of: Callable[[str, dict[str, Any]], Any]) -> dict[str, Any]:
        """``data`` with the lines its embedded list left out (``has_more``) read page by page."""
        lines = data.get("lines") or {}
        if not lines.get("has_more") or not lines.get("data"):
            return data
        collected = list(lines["data"])
        while True:
            page = page_of(str(data["id"]), {"limit": 100, "starting_after": collected[-1]["id"]})
            collected += [to_plain(x) for x in page.data]
            if not page.has_more or not page.data:
                break
        return {**data, "lines": {**lines, "data": collected, "has_more": False}}

    def _tax_rate(self, rate_id: str) -> dict[str, Any]:
        if rate_id not in self._tax_rates:  # percentages are immutable: cache forever
            self._tax_rates[rate_id] = to_plain(self.api.call(lambda c: c.v1.tax_rates.retrieve(rate_id)))
        return self._tax_rates[rate_id]

    # -- writes -----------------------------------------------------------------------------------

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        return self.writer.upsert(entity_type, batch)

    def record_usage(self, events: Sequence[UsageEvent]) -> list[WriteResult]:
        return self.writer.record_usage(events)

    def lookup(self, entity_type: str, hub_id: str, scope: Mapping[str, Any] | None = None) -> Record | None:
        """The object carrying the hub's marker, by search; and, as search lags writes, among
        those created in the last ``RECENT_SECONDS`` (a list, which is read-after-write
        consistent), narrowed by ``scope`` (list filters the write's payload gives, such as its
        customer). Exactly-once does not rest on this alone: a retried create also reuses its
        idempotency key, which Stripe answers with the stored object for at least 24 hours."""
        resource = SEARCHABLE.get(entity_type)
        if resource is None:
            return None  # Stripe creates these itself; they carry no hub marker
        query = f"metadata['hub_id']:{_quote(hub_id)}"
        if entity_type == "price":
            query += " AND active:'true'"
        result = self.api.call(lambda c: getattr(c.v1, resource).search(params={"query": query, "limit": 10}))
        for obj in result.data:
            data = to_plain(obj)
            if not data.get("deleted"):
                return record_of(entity_type, self._enrich(entity_type, data))
        return self._recent(entity_type, hub_id, scope or {})

    def _recent(self, entity_type: str, hub_id: str, scope: Mapping[str, Any]) -> Record | None:
        stream = STREAMS[entity_type]
        since = int(self.clock().timestamp()) - RECENT_SECONDS
        params: dict[str, Any] = {**stream.list_params, **scope, "limit": 100, "created": {"gte": since}}
        if entity_type == "price":
            params["active"] = "true"
        while True:
            page = self.reader.list_page(stream.path, params)
            for data in page.data:
                if (data.get("metadata") or {}).get("hub_id") == hub_id and not data.get("deleted"):
                    return record_of(entity_type, self._enrich(entity_type, data))
            if not page.has_more or not page.data:
                return None
            params["starting_after"] = str(page.data[-1]["id"])

    # -- webhooks ---------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: int | None = None) -> list[InboundEvent]:
        """Verify ``Stripe-Signature`` (``now``: the unix time the tolerance is judged at)."""
        moment = int(self.clock().timestamp()) if now is None else now
        return webhooks.verify(headers, body, self._webhook_secret or self._stored_secret(), moment)

    def _stored_secret(self) -> str:
        """The signing secret ``hub setup webhooks`` stored (encrypted) when the config names
        none; read at each delivery, so a running daemon needs no restart after setup."""
        if self.store is None or self.store.cipher is None:
            return ""
        with self.store.transaction() as tx:
            stored = tx.load_credentials(webhooks.secret_key(self.name))
        return str((stored or {}).get("webhook_secret") or "")

    def capabilities(self) -> Capabilities:
        return Capabilities(webhooks=self, refetch=self, retries=self.api.policy, checker=self, versions=VERSIONS)

    def check(self) -> ConnectionCheck:
        return check_account(self.api, self.key_prefix)

    def records_for_event(self, payload: Mapping[str, Any]) -> list[Record]:
        """Records for a verified event: the object as it is now, read again (with the stream's
        expansions, in the pinned API version), not the event's snapshot, which is in the API
        version the account had when the event happened. Stripe does not deliver events in order and
        several processes work the inbox, so an older snapshot (``invoice.created``, a draft)
        can be handled after a newer one (``invoice.paid``) and would turn the hub's record
        back; and a refund's payload names its payment intent only (no customer, no invoice).
        A deletion is taken as sent; an object gone since (404) is taken from the payload. A failed
        read fails the event, which the inbox tries again."""
        (got,) = self.records_for_events([payload])
        if isinstance(got, Exception):
            raise got
        assert not isinstance(got, Answered)  # only with the hub's held versions
        return got

    def records_for_events(self, payloads: Sequence[Mapping[str, Any]], held: HeldVersions | None = None,
                           ) -> list[list[Record] | Answered | Exception]:
        """``records_for_event`` for a batch of events, in their order: each object read once
        however many of the events name it (created, finalized, paid …), a few reads side by
        side. An event whose object could not be read gets the error instead of records.

        With ``held`` (the versions the hub holds): an event created provably before the state
        the hub holds of its object (``connectors.stripe.versions``) is ``Answered`` and its
        object not read for it — the stale snapshots the read again exists to keep out are
        exactly these. Any other event (newer, within the clocks' margin, or an object the hub
        does not hold with a version) is read again, as before."""
        self._links.new_read()
        per_event = [self.reader.records_for_event(p) for p in payloads]
        answered = self._answered(per_event, held) if held is not None else {}
        latest: dict[tuple[str, str], Record] = {}
        naming: dict[tuple[str, str], str] = {}  # the event the latest copy came from
        for n, (payload, records) in enumerate(zip(payloads, per_event, strict=True)):
            if n in answered:
                continue
            for record in records:
                key = (record.entity_type, record.external_id)
                if not record.deleted and (key not in latest or _stamp(record) >= _stamp(latest[key])):
                    latest[key] = record  # the newest event's time stays the record's
                    naming[key] = str(payload.get("id") or "")

        def read(record: Record) -> Record | Exception:
            try:
                return self._current(record, naming[(record.entity_type, record.external_id)])
            except Exception as exc:  # the events naming it fail, and the inbox tries them again
                return exc
        if self._refetchers is None:
            self._refetchers = ThreadPoolExecutor(REFETCH_THREADS, thread_name_prefix=f"{self.name}-refetch")
        current = dict(zip(latest, self._refetchers.map(read, latest.values()), strict=True))
        results: list[list[Record] | Answered | Exception] = []
        for n, records in enumerate(per_event):
            if n in answered:
                results.append(answered[n])
                continue
            now = [r if r.deleted else current[(r.entity_type, r.external_id)] for r in records]
            error = next((x for x in now if isinstance(x, Exception)), None)
            results.append(error if error is not None else [x for x in now if isinstance(x, Record)])
        return results

    def _answered(self, per_event: Sequence[Sequence[Record]], held: HeldVersions) -> dict[int, Answered]:
        """The events (by position) whose every object the hub holds at a provably later state."""
        keys = list(dict.fromkeys((r.entity_type, r.external_id) for records in per_event for r in records
                                  if not r.deleted))
        versions = held(keys) if keys else {}
        answered: dict[int, Answered] = {}
        for n, records in enumerate(per_event):
            stored = [versions.get((r.entity_type, r.external_id)) for r in records]
            if records and all(not r.deleted and r.version and v and VERSIONS.precedes(r.version, v)
                               for r, v in zip(records, stored, strict=True)):
                answered[n] = Answered(records[0].entity_type, held=str(min(v for v in stored if v)))
        return answered

    def _current(self, record: Record, event_id: str) -> Record:
        if record.deleted:
            return record
        try:
            return self.reader.refetch(record)
        except InvalidError as exc:
            if exc.status == 404:
                # Gone (or never there): the event's copy is all there is, and storing it would be
                # a guess. Said so, and the hub writes nothing of it.
                object_name = STREAMS[record.entity_type].object_name
                return dataclasses.replace(record, gone=(
                    f"stripe event {event_id} names {object_name} {record.external_id}, which stripe "
                    "answers 404 (no such object)"))
            raise

    # -- mapping ------------------------------------------------------------------------------------

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        return mapping.to_canonical(record.entity_type, record.data, refs)

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        return mapping.from_canonical(entity, refs)

    def natural_keys(self, record: Record) -> dict[str, str]:
        keys: dict[str, str] = {}
        for name in ("email", "number", "name"):
            value = normalise_key(record.data.get(name)) if isinstance(record.data.get(name), str) else None
            if value:
                keys[name] = value
        hub_id = (record.data.get("metadata") or {}).get("hub_id")
        if hub_id:
            keys["hub_id"] = str(hub_id)
        return keys

    def health(self) -> ConnectionHealth:
        return ConnectionHealth(budget={"rate_limit_waited_seconds": round(self.api.limiter.waited, 3)})

    def close(self) -> None:
        if self._refetchers is not None:
            self._refetchers.shutdown(wait=True)
            self._refetchers = None
        self.api.close()


def _stamp(record: Record) -> datetime:
    return record.updated_at or datetime.min.replace(tzinfo=UTC)


def build(config: ConnectionConfig, store: StateStore | None = None, *,
          sleep: Callable[[float], None] | None = None,
          clock: Callable[[], datetime] | None = None) -> StripeConnector:
    """The connector for a ``[connections.NAME]`` table with ``system = "stripe"``."""
    policy = RetryPolicy.from_config(config)
    limiter = RateLimiter(float(config["rate_limit_per_second"]))
    if sleep is not None:
        policy.sleep = sleep
        limiter.sleep = sleep
    api = StripeApi(str(config["api_key"]), str(config["api_base"]),
                    timeout=float(config["timeout_seconds"]), policy=policy, limiter=limiter,
                    name=config.name)
    return StripeConnector(config.name, api, webhook_secret=config["webhook_secret"],
                           overlap_seconds=int(config["events_overlap_seconds"]), clock=clock,
                           page_limit=int(config["page_limit"]), key_prefix=str(config["api_key"])[:8],
                           store=store)
