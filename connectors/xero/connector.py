"""The Xero connector: one tenant connection, built from config by ``build``.

Entity types: customer (Contact), product (Item), invoice (ACCREC Invoice), payment (Payment on
an invoice), credit_note (ACCRECCREDIT CreditNote, allocated to its invoice) and refund (an
ACCRECCREDIT CreditNote with ``Reference = "refund:<hub id>"``, allocated to the invoice, or
paid out as a cash refund when the invoice has nothing left due) and payout (a BankTransfer with
its fee SPEND BankTransaction, ``mapping.xero_payouts``). Hub markers: mapping/xero.py.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
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
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from connectors.settings import ConnectionConfig
from connectors.xero.check import check_organisation
from connectors.xero.client import XeroClient
from connectors.xero.streams import STREAMS, Reader
from connectors.xero.webhooks import parse_webhook
from connectors.xero.writes import Writer
from mapping import xero as mapping
from mapping.model import Entity, Payout
from mapping.refs import RefResolver
from mapping.xero_payouts import FEE_KEY, PayoutAccounts, payout_from_xero, payout_to_xero
from state.store import StateStore


class XeroConnector(WebhookReceiver):
    system = "xero"

    def __init__(self, name: str, client: XeroClient, *, webhook_key: str | None = None,
                 page_size: int = 1000, batch_size: int = 50, overlap_seconds: int = 300,
                 sales_account: str = "200", payment_account: str = "090",
                 tax_types: Mapping[str, str] | None = None, payouts: PayoutAccounts | None = None) -> None:
        self.name = name
        self.client = client
        self.reader = Reader(client, page_size=page_size, overlap_seconds=overlap_seconds)
        self.writer = Writer(client, batch_size=batch_size, payment_account=payment_account)
        self._webhook_key = webhook_key or ""
        self.sales_account = sales_account
        self.payment_account = payment_account
        self.tax_types = dict(tax_types or mapping.DEFAULT_TAX_TYPES)
        # payments and refunds go through the clearing account that payouts empty (one account)
        self.payouts = payouts or PayoutAccounts(clearing=payment_account, bank=None, fees="404")
        self._tax_rates: dict[str, tuple[Decimal, ...]] | None = None  # read by ``learn``

    def __repr__(self) -> str:
        return f"XeroConnector(name={self.name!r})"

    def entity_types(self) -> Sequence[str]:
        return tuple(STREAMS)

    def fetch_all(self, entity_type: str) -> Iterator[Page]:
        pages = self.reader.fetch_all(entity_type)
        return self._with_fees(pages) if entity_type == "payout" else pages

    def fetch_changes(self, entity_type: str, cursor: str | None) -> Iterator[Page]:
        pages = self.reader.fetch_changes(entity_type, cursor)
        return self._with_fees(pages) if entity_type == "payout" else pages

    def _with_fees(self, pages: Iterator[Page]) -> Iterator[Page]:
        """Payouts (hub BankTransfers) each with its fee SPEND under ``FEE_KEY``, found by marker."""
        for page in pages:
            fees = self.writer.payouts.fees([r.data.get("Reference") for r in page.records])
            yield Page([dataclasses.replace(r, data={**r.data, FEE_KEY: fees[str(r.data.get("Reference"))]})
                        if str(r.data.get("Reference")) in fees else r for r in page.records], cursor=page.cursor)

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        return self.writer.upsert(entity_type, batch)

    def lookup(self, entity_type: str, hub_id: str) -> Record | None:
        return self.writer.find_marked(entity_type, [hub_id]).get(hub_id)

    def to_canonical(self, record: Record, refs: RefResolver) -> Entity:
        if record.entity_type == "payout":
            return payout_from_xero(record.data, refs.canonical_id("payout", record.external_id),
                                    self.writer.base_currency())
        return mapping.to_canonical(record.entity_type, record.external_id, record.data, refs)

    def from_canonical(self, entity: Entity, refs: RefResolver) -> dict[str, Any]:
        if isinstance(entity, Payout):
            return payout_to_xero(entity, self.payouts)
        return mapping.from_canonical(entity, refs, sales_account=self.sales_account,
                                      payment_account=self.payment_account, tax_types=self.tax_types,
                                      tax_rates=self._tax_rates)

    def natural_keys(self, record: Record) -> dict[str, str]:
        data = record.data
        keys = {"customer": {"name": data.get("Name"), "email": data.get("EmailAddress")},
                "product": {"sku": data.get("Code"), "name": data.get("Name")},
                "invoice": {"number": data.get("InvoiceNumber")},
                "credit_note": {"number": data.get("CreditNoteNumber")},
                "refund": {"number": data.get("CreditNoteNumber")},
                "payment": {}}.get(record.entity_type, {})
        found = {k: str(v) for k, v in keys.items() if v}
        hub_id = mapping.hub_id_of(record.entity_type, data)
        if hub_id:  # first contact matches by the hub's marker before any natural key
            found["hub_id"] = hub_id
        return found

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """Verify a delivery to ``/webhooks/xero`` (raises ``WebhookRejected``)."""
        return parse_webhook(body, headers, webhook_key=self._webhook_key, tenant_id=self.client.tenant_id)

    def learn(self) -> None:
        """What mapping needs from the organisation, read before any store transaction: its
        tax rates' components (GET TaxRates), once per process, and only when [tax_codes.xero]
        has a key for a line of several taxes ("5+7/..."), the one thing that needs them."""
        if self._tax_rates is None and any("+" in key.split("/")[0] for key in self.tax_types):
            body = self.client.call("get_tax_rates")
            self._tax_rates = {
                str(rate["TaxType"]): tuple(Decimal(str(c.get("Rate") or 0)) for c in rate.get("TaxComponents") or [])
                for rate in (body.get("TaxRates") or []) if isinstance(rate, Mapping) and rate.get("TaxType")
                and rate.get("Status", "ACTIVE") == "ACTIVE"}

    def capabilities(self) -> Capabilities:
        return Capabilities(webhooks=self, credentials=self.client.tokens, retries=self.client.policy,
                            currency=self, facts=self, checker=self)

    def check(self) -> ConnectionCheck:
        return check_organisation(self.client, {
            "sales_account_code": self.sales_account, "clearing_account_code": self.payouts.clearing,
            "payout_bank_account_code": self.payouts.bank, "fee_account_code": self.payouts.fees})

    def home_currency(self) -> str:
        return self.writer.base_currency()

    def health(self) -> ConnectionHealth:
        with self.client.store.transaction() as tx:
            state = tx.connection_state(self.name)
        paused = self.client.paused_until()
        reason = state.get("reason") if state and state.get("status") != "ok" else None
        return ConnectionHealth(paused_until=paused, reason=reason, budget=dict(self.client.budget))

    def close(self) -> None:
        self.client.close()


def build(config: ConnectionConfig, store: StateStore, *, sleep: Callable[[float], None] = time.sleep,
          monotonic: Callable[[], float] = time.monotonic,
          now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> XeroConnector:
    """The connector for a ``[connections.<name>]`` table with ``system = "xero"``.

    ``sleep``/``monotonic``/``now`` are injectable so tests pin time.
    """
    policy = RetryPolicy.from_config(config, sleep=sleep)
    limiter = RateLimiter(float(config["rate_limit_per_minute"]), per=60.0,
                          concurrency=int(config["concurrency"]), clock=monotonic, sleep=sleep)
    client = XeroClient(
        name=config.name, store=store, tenant_id=str(config["tenant_id"]),
        client_id=str(config["client_id"]), client_secret=str(config["client_secret"]),
        api_base=str(config["api_base"]), identity_base=str(config["identity_base"]),
        token_url=str(config["token_url"]), refresh_token=config["refresh_token"],
        timeout=float(config["timeout_seconds"]), policy=policy, limiter=limiter,
        refresh_skew_seconds=float(config["refresh_skew_seconds"]), now=now)
    # [tax_codes.xero], into which sync/config.py folded the deprecated tax_types; a connection
    # built by hand may still carry tax_types alone
    codes = config["tax_codes"] or config["tax_types"]
    return XeroConnector(
        config.name, client, webhook_key=config["webhook_key"],
        page_size=int(config["page_size"]), batch_size=int(config["batch_size"]),
        overlap_seconds=int(config["overlap_seconds"]),
        sales_account=str(config["sales_account_code"]),
        payment_account=str(config["clearing_account_code"] or config["payment_account_code"]),
        payouts=PayoutAccounts(clearing=str(config["clearing_account_code"] or config["payment_account_code"]),
                               bank=config["payout_bank_account_code"], fees=str(config["fee_account_code"]),
                               fee_tax_type=str(config["fee_tax_type"])),
        tax_types=codes if isinstance(codes, Mapping) and codes else None)
