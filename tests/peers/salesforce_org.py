"""One Salesforce org for the tap-salesforce peer test, set up once a module by billhub's own
flows: the e2e company (tests/e2e start_company: Stripe customers, invoices, refunds; Salesforce
accounts, contacts and open deals), billhub syncing it (Stripe -> Salesforce Accounts' billing
fields, Product2, PricebookEntry and Billing_Invoice__c rows), then a deal won in Salesforce with
two opportunity products that billhub bills in Stripe and writes back as invoices, and a
product and price billhub's Stripe writer made (``stripe_account.billhub_writes``).

What people do in Salesforce itself happens through the emulator's direct calls, as in the
Salesforce UI: an account's billing address, head count and industry are filled in and a contact is deleted (queryAll,
which the tap reads, still returns it, ``IsDeleted`` true).

The clock is pinned and moved on purpose between the two phases, so records carry two
different ``SystemModstamp`` values and an incremental read from a bookmark is a strict subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.salesforce.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    SalesforceEmulator,
    abort_connections,
)
from connectors.salesforce.emulator.wire import render
from connectors.salesforce.tls import server_context
from sync.demo import STRIPE_KEY
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import canonical
from tests.peers.stripe_account import HISTORY_DAYS, billhub_writes

PHASE_SECONDS = 2  # how far the pinned clock moves between phases (the SOQL bound must split them)


@dataclass
class OrgView:
    """What the tap is pointed at, and the emulator's own view of the records to compare with."""

    emulator: Any
    base_url: str
    cert: Path
    start: datetime  # the tap's start date: before the org's first record

    def config(self) -> dict[str, Any]:
        """The tap's config: the emulator's OAuth client and refresh token, the REST API, every
        field selected (Stitch's UI default)."""
        return {"refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET, "start_date": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "api_type": "REST", "select_fields_by_default": True}

    def rendered(self, sobject: str) -> dict[str, dict[str, Any]]:
        """Every record of the sObject, deleted ones too (queryAll), as the REST API renders it."""
        emu = self.emulator
        with emu.state_lock:
            obj = emu.schema[sobject]
            return {rid: render("61.0", obj, record) for rid, record in emu.tables[sobject].items()}


@dataclass
class SalesforceOrg(OrgView):
    company: Company
    ids: dict[str, str]  # Stripe ids of the deal's objects (stripe_account.billhub_writes)
    deleted_contact: str
    addressed_account: str
    phase_two: datetime  # when the second phase's writes were stamped

    @classmethod
    def of(cls, company: Company, ids: dict[str, str], deleted_contact: str, addressed_account: str,
           phase_two: datetime) -> SalesforceOrg:
        return cls(company.salesforce, str(company.emus.salesforce.base_url), company.emus.sf_cert,
                   company.emus.now - timedelta(days=HISTORY_DAYS), company, ids, deleted_contact,
                   addressed_account, phase_two)

    def links(self, entity: str) -> dict[str, str]:
        """billhub's links into Salesforce for an entity: Salesforce id -> hub id."""
        with self.company.hub.store.transaction() as tx:
            return {link.external_id: link.canonical_id for link in tx.links_in("salesforce", entity)}

    def link_of(self, hub_id: str, entity: str) -> str | None:
        with self.company.hub.store.transaction() as tx:
            link = tx.link_for(hub_id, "salesforce", entity)
        return None if link is None else str(link.external_id)

    def canonical(self, connection: str, entity: str, external_id: str) -> str:
        return canonical(self.company, connection, entity, external_id)

    def entity(self, hub_id: str) -> dict[str, Any]:
        with self.company.hub.store.transaction() as tx:
            found = tx.get_entity(hub_id)
        assert found is not None, hub_id
        return dict(found.data)

    def pay_open_invoice(self) -> str:
        """A card payment in Stripe of one open invoice billhub wrote to Salesforce, then billhub's
        sync: its Billing_Invoice__c row changes (paid). Returns that row's id."""
        invoices = self.links("invoice")
        stripe_emu = self.company.stripe
        with self.company.hub.store.transaction() as tx:
            by_hub = {hub: tx.link_for(hub, "stripe", "invoice") for hub in invoices.values()}
        row, stripe_id = next((sf_id, str(link.external_id)) for sf_id, hub in sorted(invoices.items())
                              if (link := by_hub[hub]) is not None
                              and stripe_emu.table("invoice")[link.external_id]["status"] == "open")
        client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": self.company.emus.stripe.base_url},
                                     max_network_retries=0)
        assert client.v1.invoices.pay(stripe_id, params={"payment_method": "pm_card_visa"}).status == "paid"
        self.company.hub.engine.sync()
        return row


def _second_phase(company: Company) -> tuple[dict[str, str], str, str]:
    """billhub's deal flow and its writes (stripe_account.billhub_writes), one more sync so the
    written product and price reach Salesforce, then a person's edits there."""
    ids = billhub_writes(company)
    company.hub.engine.sync()
    sf = company.salesforce
    contact = next(r["Id"] for r in sf.tables["Contact"].values() if r["Email"] == "billing@peerco.example")
    account = next(r["Id"] for r in sf.tables["Account"].values() if r["Name"] == "Peerco Ltd")
    sf.update("Account", account, {"BillingStreet": "1 Market St\nSuite 5", "BillingCity": "San Francisco",
                                   "BillingState": "CA", "BillingPostalCode": "94105", "NumberOfEmployees": 42,
                                   "Industry": "Technology"})
    sf.delete("Contact", contact)
    return ids, contact, account


def set_up_bare_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgView]:
    """A fresh single-currency EUR org without billhub's setup (no Hub_Id__c, no Billing_*__c, no
    invoice object), as a customer's org is before onboarding, holding what a sales team typed:
    an account with a contact, a product in the standard price book and a deal with its product."""
    ctx, cert = server_context(tmp_path_factory.mktemp("salesforce-bare"))
    now = datetime.now(UTC).replace(microsecond=0)
    emulator = SalesforceEmulator(EmulatorClock(now), multi_currency=False, currency="EUR", custom_schema=False)
    emulator.seed_records({
        "Account": [{"ref": "acme", "Name": "Acme SARL", "BillingCity": "Lyon", "BillingCountry": "FR"}],
        "Contact": [{"FirstName": "Anne", "LastName": "Martin", "Email": "anne@acme.example", "AccountId": "@acme"}],
        "Product2": [{"ref": "seat", "Name": "Seat", "IsActive": True}],
        "PricebookEntry": [{"ref": "seat_eur", "Product2Id": "@seat", "UnitPrice": "49.00", "IsActive": True}],
        "Opportunity": [{"Name": "Acme seats", "AccountId": "@acme", "StageName": "Prospecting",
                         "CloseDate": "2026-12-31", "line_items": [{"PricebookEntryId": "@seat_eur", "Quantity": 3}]}],
    })
    running = RunningEmulator(emulator, ssl_context=ctx).start()
    try:
        yield OrgView(emulator, running.base_url, cert, now - timedelta(days=1))
    finally:
        abort_connections(running)
        running.stop()


def set_up_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceOrg]:
    """The org, for a module-scoped fixture of the test (``yield from set_up_org(...)``)."""
    company = start_company(tmp_path_factory.mktemp("salesforce-peer"), customers=6, invoices=12)
    try:
        company.hub.engine.sync()  # phase one, stamped at the company's start
        clocks = [r.emulator.clock for r in company.emus.all.values()]
        for clock in clocks:
            clock.advance(PHASE_SECONDS)
        phase_two = company.salesforce.clock.now()
        ids, contact, account = _second_phase(company)
        yield SalesforceOrg.of(company, ids, contact, account, phase_two)
    finally:
        company.hub.close()
        company.emus.stop()
