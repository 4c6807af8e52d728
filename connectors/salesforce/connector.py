"""The Salesforce connector: reads accounts, products, prices, deals and invoices; writes the
billing side back; keeps the org's daily API budget.

Entity types: customer (Account), product (Product2), price (PricebookEntry), deal
(Opportunity + OpportunityLineItems; ``won`` when Closed Won) and invoice (the custom invoice
object, default ``Billing_Invoice__c``). The hub's marker is the external-id field
``hub_id_field`` (default ``Hub_Id__c``) on every written object.

First contact (``learn``, the engine's ``MappingFacts`` call, and the first thing any read or
write does): one describe per sObject used, checked against what the streams need, and the org's
currencies (``orgfacts``); the SOQL is then built from what the org has. A single-currency org is
never sent ``CurrencyIsoCode`` and takes only records in its one currency: another currency is an
``InvalidError`` for that record (held or dead-lettered by the engine with the message), never sent.

API budget: usage comes from ``Sforce-Limit-Info`` on every answer. At or above ``budget_share``
of the daily allocation, ``fetch_changes`` (scheduled reads) raises ``QuotaExhausted`` and the
connection state is ``paused`` with the reason (what ``hub status`` shows); while paused, one
cheap ``limits`` call every ``budget_probe_seconds`` re-reads usage and resumes once it falls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from threading import Lock
from typing import Any

from simple_salesforce.api import Salesforce

from connectors.base import (
    Capabilities,
    ConnectionCheck,
    ConnectionHealth,
    DuplicateError,
    InvalidError,
    Outbound,
    Page,
    QuotaExhausted,
    Record,
    RetryableError,
    WriteResult,
)
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.salesforce.check import check_org
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.orgfacts import OrgFacts, learn_org
from connectors.salesforce.streams import (
    CURRENCY,
    Cursor,
    Stream,
    needed_fields,
    soql_string,
    streams,
    to_record,
)
from connectors.salesforce.writes import write_batch
from connectors.settings import ConnectionConfig
from mapping import salesforce as sfmap
from mapping.model import Customer, Deal, Entity, Invoice, Price, Product
from mapping.money import MoneyError
from mapping.refs import RefResolver
from state.store import StateStore

DELETED_RETENTION = timedelta(days=15)  # queryAll sees deletions only until the Recycle Bin purges


class SalesforceConnector:
    system = "salesforce"

    def __init__(self, config: ConnectionConfig, store: StateStore, *, policy: RetryPolicy | None = None,
                 limiter: RateLimiter | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.name = config.name
        self.settings = config.settings
        self.store = store
        self.policy = policy or RetryPolicy.from_config(config)
        self.limiter = limiter or RateLimiter(float(config["rate_per_second"]),
                                              concurrency=int(config["concurrency"]))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = SalesforceClient(self.name, self.settings, store, policy=self.policy,
                                       limiter=self.limiter, now=self.clock)
        self.streams: dict[str, Stream] = streams(self.settings)
        self.hub_field = str(config["hub_id_field"])
        self.overlap = timedelta(seconds=int(config["overlap_seconds"]))
        self.budget_share = float(config["budget_share"])
        self.probe_every = timedelta(seconds=int(config["budget_probe_seconds"]))
        self.email_field: str | None = config["email_field"]
        self.configured_currency: str | None = config["default_currency"]
        # Where a record names no currency: the config's, until a single-currency org says its own.
        self.currency = (self.configured_currency or "USD").upper()
        self.org: OrgFacts | None = None  # learnt on first contact
        self._learning = Lock()
        self.paused_reason: str | None = None
        self._last_probe: datetime | None = None

    def __repr__(self) -> str:
        return f"SalesforceConnector(name={self.name!r})"

    def entity_types(self) -> Sequence[str]:
        return tuple(self.streams)

    def _stream(self, entity_type: str) -> Stream:
        try:
            return self.streams[entity_type]
        except KeyError:
            raise InvalidError(f"Salesforce does not hold {entity_type!r}; it holds "
                               f"{', '.join(self.streams)}", system=self.name) from None

    # ------------------------------------------------------------------ first contact

    def learn(self) -> None:
        """Describe the org once per process (every sObject used) and build the SOQL from what
        it has; ``SalesforceSetupError`` names whatever billhub needs and the org lacks."""
        if self.org is not None:
            return
        with self._learning:
            if self.org is not None:
                return
            facts = learn_org(self.client, needed_fields(self.streams), hub_field=self.hub_field,
                              configured_currency=self.configured_currency)
            self.streams = streams(self.settings, multi_currency=facts.multi_currency)
            if facts.currency is not None:
                self.currency = facts.currency
            self.org = facts

    def _org(self) -> OrgFacts:
        self.learn()
        assert self.org is not None
        return self.org

    # ------------------------------------------------------------------ reads

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        self._stream(entity_type)
        self.learn()
        stream = self._stream(entity_type)
        for records, _done in self._query(stream, stream.select(), include_deleted=False, scheduled=False):
            yield Page(records)

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        self._stream(entity_type)
        self.check_budget()
        self.learn()
        stream = self._stream(entity_type)
        try:
            state = Cursor.decode(cursor)
        except ValueError:
            state = Cursor(None, {})  # unreadable cursor: start again (reads are at-least-once)
        if state.ts is None or state.ts < self.clock() - DELETED_RETENTION + self.overlap:
            # From scratch, or older than the Recycle Bin keeps: a full read of live records.
            state = Cursor(None, {})
            text, include_deleted = stream.select(), False
        else:
            text = stream.select(f"SystemModstamp >= {state.lower_bound(self.overlap)}")
            include_deleted = True
        emitted = False
        for records, done in self._query(stream, text, include_deleted=include_deleted, scheduled=True):
            fresh = [r for r in records if state.observe(r)]
            if not fresh and not done:
                continue
            emitted = True
            yield Page(fresh, cursor=state.encode(self.overlap))
        if not emitted:
            yield Page([], cursor=state.encode(self.overlap))

    def _query(self, stream: Stream, text: str, *, include_deleted: bool,
               scheduled: bool) -> Iterator[tuple[list[Record], bool]]:
        answer = self.client.call(lambda sf: sf.query(text, include_deleted=include_deleted))
        while True:
            if not isinstance(answer, dict) or not isinstance(answer.get("records"), list):
                raise RetryableError(f"unexpected answer to a {stream.sobject} query", system=self.name)
            try:
                records = [to_record(stream, row) for row in answer["records"]]
            except (ValueError, TypeError, sfmap.SalesforceMappingError) as exc:
                raise InvalidError(f"odd {stream.sobject} row from Salesforce: {exc}", system=self.name) from exc
            done = bool(answer.get("done", True)) or not answer.get("nextRecordsUrl")
            yield records, done
            if done:
                return
            if scheduled:
                self.check_budget()
            answer = self.client.call(partial(_query_more, str(answer["nextRecordsUrl"])))

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        self.learn()
        stream = self._stream(entity_type)
        text = stream.select(f"{self.hub_field} = {soql_string(hub_id)}", order=False)
        found = [r for page, _done in self._query(stream, text, include_deleted=False, scheduled=False)
                 for r in page]
        if len(found) > 1:
            raise DuplicateError(f"{len(found)} {stream.sobject} records carry {self.hub_field}={hub_id}",
                                 candidates=[r.external_id for r in found], system=self.name)
        return found[0] if found else None

    # ------------------------------------------------------------------ writes

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        stream = self._stream(entity_type)
        org = self._org()
        extra: dict[str, Any] = {}
        if entity_type == "price" and self.settings["pricebook_id"]:
            extra["Pricebook2Id"] = self.settings["pricebook_id"]
        refused: dict[int, WriteResult] = {}
        sendable: list[Outbound] = []
        for index, item in enumerate(batch):
            checked = self._in_org_currency(org, item)
            if isinstance(checked, WriteResult):
                refused[index] = checked
            else:
                sendable.append(checked)
        try:
            written = iter(write_batch(self.client, stream.sobject, self.hub_field, sendable, extra=extra)
                           if sendable else [])
        except QuotaExhausted as exc:
            self._pause(f"Salesforce refused calls: the daily API allocation is spent ({exc.message})")
            raise
        return [refused[i] if i in refused else next(written) for i in range(len(batch))]

    def _in_org_currency(self, org: OrgFacts, item: Outbound) -> Outbound | WriteResult:
        """A single-currency org has no ``CurrencyIsoCode``: the item without it when it is the
        org's currency, else a refusal (whatever built the payload, nothing is sent)."""
        code = item.payload.get(CURRENCY)
        if org.currency is None or code is None:
            return item
        if str(code).upper() != org.currency:
            return WriteResult(item.idempotency_key, external_id=item.external_id, error=InvalidError(
                f"{item.entity_type} {item.hub_id} is in {code}, but this Salesforce org has a single "
                f"currency ({org.currency}) and cannot hold {code} amounts; not sent", system=self.name))
        return replace(item, payload={k: v for k, v in item.payload.items() if k != CURRENCY})

    # ------------------------------------------------------------------ mapping

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        self.learn()  # (already done by the read that brought the record)
        data = record.data
        try:
            if record.entity_type == "customer":
                return sfmap.account_to_customer(data, refs, email_field=self.email_field,
                                                 default_currency=self.currency)
            if record.entity_type == "product":
                return sfmap.product2_to_product(data, refs)
            if record.entity_type == "price":
                return sfmap.pricebook_entry_to_price(data, refs, default_currency=self.currency)
            if record.entity_type == "deal":
                return sfmap.opportunity_to_deal(data, refs, default_currency=self.currency)
            if record.entity_type == "invoice":
                return sfmap.billing_invoice_to_invoice(data, refs, default_currency=self.currency)
        except (sfmap.SalesforceMappingError, MoneyError, KeyError) as exc:
            raise InvalidError(f"{record.entity_type} {record.external_id}: {exc}", system=self.name) from exc
        raise InvalidError(f"no Salesforce mapping for {record.entity_type!r}", system=self.name)

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        only = self._org().currency  # the engine learnt it before this transaction (MappingFacts)
        try:
            if isinstance(entity, Customer):
                return sfmap.customer_to_account(entity, refs, email_field=self.email_field, org_currency=only)
            if isinstance(entity, Product):
                return sfmap.product_to_product2(entity, refs)
            if isinstance(entity, Price):
                return sfmap.price_to_pricebook_entry(entity, refs, org_currency=only)
            if isinstance(entity, Deal):
                return sfmap.deal_to_opportunity(entity, refs, org_currency=only)
            if isinstance(entity, Invoice):
                return sfmap.invoice_to_billing_invoice(entity, refs, org_currency=only)
        except sfmap.SalesforceMappingError as exc:
            raise InvalidError(str(exc), system=self.name) from exc
        raise InvalidError(f"Salesforce does not take {entity.type!r}", system=self.name)

    def natural_keys(self, record: Record) -> dict[str, str]:
        data = record.data
        keys: dict[str, str] = {}
        if record.entity_type == "customer":
            email = data.get(self.email_field) if self.email_field else next(
                (c.get("Email") for c in data.get("Contacts") or [] if c.get("Email")), None)
            if email:
                keys["email"] = str(email)
        if record.entity_type == "product" and data.get("ProductCode"):
            keys["sku"] = str(data["ProductCode"])
        if record.entity_type == "invoice" and data.get("Invoice_Number__c"):
            keys["number"] = str(data["Invoice_Number__c"])
        if data.get("Name"):
            keys["name"] = str(data["Name"])
        if data.get(self.hub_field):  # first contact matches by the hub's marker first
            keys["hub_id"] = str(data[self.hub_field])
        return keys

    # ------------------------------------------------------------------ budget

    def _budget_reason(self) -> str | None:
        share = self.client.usage_share()
        if share is None or share < self.budget_share:
            return None
        return (f"API budget: {self.client.api_used}/{self.client.api_total} daily requests used "
                f"({share:.0%}), at or above the {self.budget_share:.0%} budget share; scheduled reads "
                "are paused until usage falls")

    def check_budget(self) -> None:
        """Raise ``QuotaExhausted`` (and mark the connection paused) while over budget."""
        reason = self._budget_reason()
        if reason is not None and self.paused_reason is not None:
            now = self.clock()
            if self._last_probe is None or now - self._last_probe >= self.probe_every:
                self._last_probe = now
                try:
                    self.client.call(lambda sf: sf.limits())  # one call: refreshes the usage reading
                except QuotaExhausted:
                    pass
                reason = self._budget_reason()
        if reason is None:
            self._resume()
            return
        self._pause(reason)
        raise QuotaExhausted(reason, system=self.name)

    def _pause(self, reason: str) -> None:
        if self.paused_reason != reason:
            with self.store.transaction() as tx:
                tx.set_connection_state(self.name, "paused", reason=reason, details=self._budget())
        if self.paused_reason is None:
            self._last_probe = self.clock()
        self.paused_reason = reason

    def _resume(self) -> None:
        if self.paused_reason is not None:
            with self.store.transaction() as tx:
                tx.set_connection_state(self.name, "ok", details=self._budget())
            self.paused_reason = None

    def _budget(self) -> dict[str, Any]:
        return {"api_used": self.client.api_used, "api_total": self.client.api_total,
                "budget_share": self.budget_share}

    def health(self) -> ConnectionHealth:
        reason = self.paused_reason or self._budget_reason()
        until = self._last_probe + self.probe_every if reason and self._last_probe else None
        return ConnectionHealth(paused_until=until, reason=reason, budget=self._budget())

    def capabilities(self) -> Capabilities:
        return Capabilities(credentials=self.client.tokens, retries=self.policy, facts=self, checker=self,
                            upserts_by_marker=True)

    def check(self) -> ConnectionCheck:
        return check_org(self.client, self.learn, lambda: None if self.org is None or self.org.multi_currency
                         else self.currency)

    def close(self) -> None:
        self.client.close()


def _query_more(next_url: str, sf: Salesforce) -> Any:
    return sf.query_more(next_url, identifier_is_url=True)


def build(config: ConnectionConfig, store: StateStore) -> SalesforceConnector:
    """The registry's entry point (``connectors.registry.build_connector``)."""
    return SalesforceConnector(config, store)
