"""The QuickBooks Online connector: wires client, reads, writes, mapping and webhooks.

Entity types: customer, product, invoice, payment, credit_note, refund, payout (a Transfer with
its fee Purchase, ``mapping.quickbooks_payouts``). Hub marker:
``hub:<canonical id>`` in ``Customer.Notes`` / ``Item.PurchaseDesc`` / ``PrivateNote``
(see ``mapping.quickbooks``). Capabilities: webhooks, OAuth credentials (``auth.TokenManager``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    Capabilities,
    ConnectionCheck,
    ConnectionHealth,
    InboundEvent,
    Outbound,
    Page,
    Record,
    WebhookReceiver,
    WriteResult,
)
from connectors.quickbooks import webhooks
from connectors.quickbooks.auth import TokenManager
from connectors.quickbooks.batch import QueryBatch
from connectors.quickbooks.check import check_company
from connectors.quickbooks.client import QboClient, mount_timeouts
from connectors.quickbooks.company import CompanyCurrency
from connectors.quickbooks.company_tax import CompanyTax
from connectors.quickbooks.streams import Reader
from connectors.quickbooks.versions import SYNC_TOKENS
from connectors.quickbooks.writes import Writer
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.settings import ConnectionConfig
from mapping import quickbooks as mapping
from mapping import quickbooks_payouts as payouts
from mapping.model import CreditNote, Entity, Invoice, Payout, Refund
from mapping.refs import RefResolver
from state.store import StateStore

ENTITY_TYPES = tuple(mapping.ENTITY_NAMES)


class QuickBooksConnector(WebhookReceiver):
    system = "quickbooks"

    def __init__(self, config: ConnectionConfig, store: StateStore, *, policy: RetryPolicy | None = None,
                 now: Callable[[], datetime] | None = None, sleep: Callable[[float], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 after_token_save: Callable[[], None] | None = None) -> None:
        self.name = config.name
        self.config = config
        self.store = store
        self.now = now or (lambda: datetime.now(UTC))
        pause = sleep or time.sleep
        self.policy = policy or RetryPolicy.from_config(config, sleep=pause)
        timeout = float(config["timeout_seconds"])
        self.tokens = TokenManager(
            name=config.name, store=store, client_id=str(config["client_id"]),
            client_secret=str(config["client_secret"]), discovery_url=str(config["discovery_url"]),
            token_url=config["token_url"], initial_refresh_token=config["refresh_token"],
            mount=lambda session: mount_timeouts(session, timeout), now=self.now,
            skew_seconds=float(config["refresh_skew_seconds"]), after_save=after_token_save)
        per_minute = float(config["rate_limit_per_minute"])
        limiter = RateLimiter(per_minute, per=60.0, burst=min(per_minute, 50.0),
                              concurrency=int(config["concurrency"]), clock=monotonic, sleep=pause)
        batch_limiter = RateLimiter(float(config["batch_per_minute"]), per=60.0, clock=monotonic, sleep=pause)
        self.client = QboClient(
            realm_id=str(config["realm_id"]), api_base=str(config["api_base"]),
            minor_version=int(config["minor_version"]), tokens=self.tokens,
            client_id=str(config["client_id"]), policy=self.policy, limiter=limiter, timeout=timeout,
            retry_after=float(config["retry_after_seconds"]))
        # reads and writes share the realm's batch budget (40/min): one QueryBatch for both
        self.batch = QueryBatch(self.client, batch_limiter, max_items=int(config["batch_size"]))
        self.reader = Reader(self.client, page_size=int(config["page_size"]), now=self.now, batch=self.batch)
        self.company = CompanyCurrency(self.reader, config["home_currency"], system=self.system)
        self.company_tax = CompanyTax(self.reader, config["tax_codes"])
        self.writer = Writer(self.client, self.reader, batch_size=int(config["batch_size"]),
                             home_currency=self.company.home, batch=self.batch)
        # one clearing account for payments, refunds and payouts (the older key stands in for it)
        self.accounts = payouts.PayoutAccounts(
            clearing=config["clearing_account_id"] or config["deposit_account_id"],
            bank=config["payout_bank_account_id"], fees=config["fee_account_id"])

    def __repr__(self) -> str:
        return f"QuickBooksConnector(name={self.name!r}, realm_id={self.client.realm_id!r})"

    def entity_types(self) -> Sequence[str]:
        return ENTITY_TYPES

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        self.company.home()  # mapping what is read needs it: learnt before the first page
        return self.reader.fetch_all(entity_type)

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        self.company.home()
        return self.reader.fetch_changes(entity_type, cursor)

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        return self.writer.upsert(entity_type, batch)

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        return self.reader.lookup(entity_type, hub_id)

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        if record.entity_type == "payout":
            return payouts.payout_to_canonical(record.data, refs, self.company.home())
        return mapping.to_canonical(record.entity_type, record.data, refs, self.company.home())

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        if isinstance(entity, Payout):
            return payouts.payout_from_canonical(entity, self.accounts)
        # sales documents are coded by the company's tax model (read once, on the first of them)
        tax = self.company_tax.model() if isinstance(entity, (Invoice, CreditNote, Refund)) else None
        body = mapping.from_canonical(entity, refs, income_account_id=str(self.config["income_account_id"]),
                                      deposit_account_id=str(self.accounts.clearing), tax=tax)
        return payouts.deposit_to_clearing(entity, body, self.accounts.clearing)

    def natural_keys(self, record: Record) -> dict[str, str]:
        return mapping.natural_keys(record.entity_type, record.data)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """Verify ``intuit-signature`` and decode either payload format (raises WebhookRejected)."""
        return webhooks.parse(body, headers, self.config["webhook_verifier_token"],
                              realm_id=str(self.config["realm_id"]))

    def learn(self) -> None:
        """What mapping this company's records needs from it: its home currency and tax model,
        the queries not answered yet asked together (one ``/batch``, not one call each)."""
        queries = self.company.queries() + self.company_tax.queries()
        answers = dict(zip(queries, self.reader.query_many(queries), strict=True))
        self.company.home(answers)
        self.company_tax.model(answers)

    def capabilities(self) -> Capabilities:
        return Capabilities(webhooks=self, credentials=self.tokens, retries=self.policy, facts=self,
                            currency=self, checker=self, versions=SYNC_TOKENS)

    def check(self) -> ConnectionCheck:
        accounts = {"clearing_account_id": self.accounts.clearing, "payout_bank_account_id": self.accounts.bank,
                    "fee_account_id": self.accounts.fees, "income_account_id": self.config["income_account_id"]}
        return check_company(self.reader, self.company, self.client.realm_id, accounts)

    def home_currency(self) -> str:
        return self.company.home()

    def health(self) -> ConnectionHealth:
        reason = "needs re-authorisation: reconnect QuickBooks" if self.tokens.needs_reauth else None
        return ConnectionHealth(reason=reason, budget={"calls": self.client.calls,
                                                       "batch_calls": self.batch.calls,
                                                       "refreshes": self.tokens.refreshes})

    def close(self) -> None:
        self.client.close()


def build(config: ConnectionConfig, store: StateStore, **options: Any) -> QuickBooksConnector:
    """Registry entry point; ``options`` (policy, now, sleep, …) exist for tests."""
    return QuickBooksConnector(config, store, **options)
