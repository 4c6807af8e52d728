"""One Xero organisation for the peer-conformance tests, set up once a session: the company of
emulators and the hub as the end-to-end tests set it up (tests/e2e/conftest.py), and billhub
writing its Stripe customers, products, invoices, payments and refunds into Xero through its own
flows (``hub.engine.sync``), then Stripe's automatic payout of the USD balance, which billhub books
as a bank transfer out of the clearing account and a fee spend (the payouts flow, with the clearing
and payout bank accounts configured as tests/e2e/test_payouts.py does). The peers (tap-xero,
pyxero) only read it.

The peers read up to their wall clock, so the emulators' clocks start at the wall time (the e2e
company's do) and stay pinned; ``start_date`` is before the company's first object.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import stripe
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.emulation import RunningEmulator
from connectors.xero.emulator import XeroEmulator
from sync.config import load_config
from sync.demo import STRIPE_KEY, XERO_CLIENT, XERO_TENANT
from sync.runtime import Hub
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import canonical

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "xero" / "xero_accounting.yaml"
HISTORY_DAYS = 100  # before the seeded company's first object (95 days back)
# what the hub's writes carry in Xero: the marker field per collection, and the entity it marks
MARKERS = {"Contacts": ("ContactNumber", "customer"), "Items": ("PurchaseDescription", "product"),
           "Invoices": ("Reference", "invoice"), "Payments": ("Reference", "payment"),
           "CreditNotes": ("Reference", "refund"), "BankTransfers": ("Reference", "payout"),
           "BankTransactions": ("Reference", "payout")}
ID_FIELDS = {"Contacts": "ContactID", "Items": "ItemID", "Invoices": "InvoiceID", "Payments": "PaymentID",
             "CreditNotes": "CreditNoteID", "BankTransfers": "BankTransferID",
             "BankTransactions": "BankTransactionID"}
PAYOUT_ACCOUNTS = 'clearing_account_code = "090"\npayout_bank_account_code = "091"\n'



def amount(value: Any) -> Decimal:
    """A peer's amount (a JSON number it parsed, float or Decimal) as the exact decimal it wrote:
    Xero's amounts have at most 4 places, which a float's shortest repr keeps exactly."""
    return Decimal(str(value))


@dataclass(frozen=True)
class XeroOrg:
    company: Company

    @property
    def running(self) -> RunningEmulator:
        return self.company.emus.xero

    @property
    def emulator(self) -> XeroEmulator:
        emulator = self.running.emulator
        assert isinstance(emulator, XeroEmulator)
        return emulator

    @property
    def base_url(self) -> str:
        return str(self.running.base_url)

    @property
    def tenant_id(self) -> str:
        return XERO_TENANT

    @property
    def client(self) -> tuple[str, str]:
        return XERO_CLIENT

    def start_date(self) -> str:
        return (self.company.emus.now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def records(self, collection: str) -> dict[str, dict[str, Any]]:
        """The organisation's records of a collection by id, as the emulator holds them."""
        return {str(k): v for k, v in self.emulator.tenants[XERO_TENANT].table(collection).items()}

    def refresh_token(self) -> str:
        """A refresh token of its own for one peer (Xero rotates them on every refresh)."""
        token = "rt-peer-" + uuid.uuid4().hex
        self.running.on_loop(lambda: self.emulator.issue_refresh_token(token, [XERO_TENANT]))
        return token

    def hub_marker(self, collection: str, record: dict[str, Any]) -> tuple[str, str] | None:
        """(field, value the hub wrote there) for a record billhub wrote, else None."""
        field, entity = MARKERS[collection]
        external_id = str(record[ID_FIELDS[collection]])
        if collection == "Payments" and record.get("CreditNote"):
            # a refund's cash payment carries the refund's marker, as its credit note does
            entity, external_id = "refund", str(record["CreditNote"]["CreditNoteID"])
        with self.company.hub.store.transaction() as tx:
            hub_id = tx.canonical_for("xero", entity, external_id)
            if hub_id is None and entity == "refund":
                entity, hub_id = "credit_note", tx.canonical_for("xero", "credit_note", external_id)
        if hub_id is None and collection == "BankTransactions":
            # the payout's fee spend carries the marker of its transfer, the payout's own document
            hub_id = next((self.hub_marker("BankTransfers", t) or ("", ""))[1].removeprefix("payout:")
                          for t in self.records("BankTransfers").values()
                          if t.get("Reference") == record.get("Reference")) or None
        if hub_id is None:
            return None
        return field, ({"refund": "refund:", "payout": "payout:"}.get(entity, "") + hub_id)

    def change_customer_email(self, contact_id: str, email: str) -> None:
        """The Stripe customer of a Xero contact gets a new email (through Stripe's SDK), and
        billhub carries it to Xero."""
        with self.company.hub.store.transaction() as tx:
            hub_id = tx.canonical_for("xero", "customer", contact_id)
            assert hub_id is not None, contact_id
            link = tx.link_for(hub_id, "stripe", "customer")
        assert link is not None, hub_id
        client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": self.company.emus.stripe.base_url},
                                     max_network_retries=0)
        client.v1.customers.update(link.external_id, {"email": email})
        self.company.hub.engine.sync()

    def canonical(self, entity: str, external_id: str) -> str:
        return canonical(self.company, "xero", entity, external_id)


@functools.cache
def accounting_spec() -> OpenAPI:
    # the spec fails openapi-spec-validator itself (string defaults on booleans); responses are unaffected
    return OpenAPI.from_file_path(str(SPEC), config=Config(spec_validator_cls=None))


def spec_problems(captured: list[dict[str, Any]]) -> list[str]:
    """Every captured answer (XeroEmulator.captured) that xero_accounting.yaml refuses, described.
    /Organisations is checked as /Organisation, the one path the spec names for it."""
    problems = []
    for answer in captured:
        if answer["route"] in ("/connections", "/Connections"):
            continue  # the identity API (validated by tests/connectors/xero/test_spec_fidelity.py)
        path = answer["path"][:-1] if answer["path"].endswith("/Organisations") else answer["path"]
        request = MockRequest("https://api.xero.com", answer["method"].lower(), path,
                              args=dict(parse_qsl(answer["query"])))
        response = MockResponse(answer["body"], status_code=answer["status"],
                                content_type=answer["content_type"] or "application/json")
        try:
            accounting_spec().validate_response(request, response)
        except Exception as exc:  # each refusal is reported, whatever its kind
            problems.append(f"{answer['method']} {path}?{answer['query']} {answer['status']}: {exc} "
                            f"{getattr(exc, '__cause__', '')}")
    return problems


@pytest.fixture(scope="session")
def xero_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XeroOrg]:
    company = start_company(tmp_path_factory.mktemp("xero-peers"), customers=6, invoices=12)
    try:
        text = company.config_path.read_text(encoding="utf-8")
        anchor = 'rate_limit_per_minute = 6000.0\ntax_types'  # the [connections.xero] section's
        assert anchor in text
        company.config_path.write_text(text.replace(anchor, anchor.replace("tax_types", PAYOUT_ACCOUNTS + "tax_types"), 1),
                                       encoding="utf-8")
        company.hub.close()
        company.hub = Hub.from_config(load_config(company.config_path))
        company.hub.engine.sync()  # Stripe customers, products, invoices, payments, refunds -> Xero
        company.hub.engine.sync()
        answer = requests.post(company.emus.urls()["stripe"] + "/__emulator/payout",
                               json={"currency": "usd", "paid": True}, timeout=10)
        assert answer.status_code == 200, answer.text
        company.hub.engine.sync()  # the payout -> a bank transfer and a fee spend
        org = XeroOrg(company)
        for collection in ("Contacts", "Items", "Invoices", "Payments", "CreditNotes", "BankTransfers",
                           "BankTransactions"):
            assert org.records(collection), f"billhub wrote no {collection} to Xero"
        yield org
    finally:
        company.hub.close()
        company.emus.stop()
