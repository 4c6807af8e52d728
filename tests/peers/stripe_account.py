"""One Stripe account for the peer-conformance tests, set up once a session: a company of
emulators and the hub (tests/e2e), billhub writing to Stripe through its own flows, then
Stripe-side activity through the official SDK. The peers only read it.

The peers read the wall clock (their date windows end at "now"), so the emulators' clocks start
at the wall time, as the e2e company's do, and stay pinned; ``START`` is before the company's
first object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
import stripe

from connectors.base import Outbound
from mapping.model import Money, Price, Product
from mapping.stripe_params import price_from_canonical, product_from_canonical
from sync.demo import STRIPE_KEY
from tests.connectors.stripe.helpers import Refs
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import canonical

HISTORY_DAYS = 100  # the peers' start date: before the seeded company's first object (95 days back)


def id_of(value: Any) -> str | None:
    """An id, whether the field holds it or the object (expanded)."""
    if isinstance(value, dict):
        return str(value["id"])
    return None if value is None else str(value)


@dataclass(frozen=True)
class StripeAccount:
    company: Company
    ids: dict[str, str]  # the Stripe ids of what billhub wrote (deal customer, subscription ...)

    @property
    def emulator(self) -> Any:
        return self.company.stripe

    @property
    def base_url(self) -> str:
        return str(self.company.emus.stripe.base_url)

    @property
    def start(self) -> int:
        return int((self.company.emus.now - timedelta(days=HISTORY_DAYS)).timestamp())

    def start_date(self) -> str:
        return (self.company.emus.now - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def live(self, kind: str, since: int | None = None) -> dict[str, dict[str, Any]]:
        """The emulator's objects of a kind created since ``since`` (default: the start date)."""
        bound = self.start if since is None else since
        return {str(o["id"]): o for o in self.emulator.live(kind) if int(o.get("created") or 0) >= bound}

    def canonical(self, entity: str, external_id: str) -> str:
        return canonical(self.company, "stripe", entity, external_id)


@pytest.fixture(scope="session")
def stripe_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeAccount]:
    company = start_company(tmp_path_factory.mktemp("stripe-peers"), customers=6, invoices=12)
    http = stripe.RequestsClient(timeout=10)
    try:
        raw = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url},
                                  max_network_retries=0, http_client=http)
        ids = billhub_writes(company)
        stripe_side(company, raw, ids)
        yield StripeAccount(company, ids)
    finally:
        http.close()  # type: ignore[no-untyped-call]  # stripe: RequestsClient.close is unannotated
        company.hub.close()
        company.emus.stop()


def billhub_writes(company: Company) -> dict[str, str]:
    """Billhub writes to Stripe through its flows: Salesforce accounts become Stripe customers, a
    won deal a customer, a subscription and a one-off invoice; its Stripe writer a product and a
    price. Returns the Stripe ids of the deal's objects and of the written product and price."""
    company.hub.engine.sync()
    stripe_emu, sf = company.stripe, company.salesforce
    prices = stripe_emu.table("price")
    monthly = next(pid for pid, p in prices.items() if p.get("recurring") and p["currency"] == "usd"
                   and stripe_emu.table("product")[p["product"]]["name"] == "Pro plan")
    one_off = next(pid for pid, p in prices.items() if not p.get("recurring") and p["currency"] == "usd"
                   and stripe_emu.table("product")[p["product"]]["name"] == "Onboarding package")
    entries = {r.get("Hub_Id__c"): r for r in sf.records("PricebookEntry")}
    lines = [{"PricebookEntryId": entries[canonical(company, "stripe", "price", pid)]["Id"], "Quantity": q}
             for pid, q in ((monthly, 2), (one_off, 1))]
    account = sf.insert("Account", {"Name": "Peerco Ltd", "BillingCountry": "US"})
    sf.insert("Contact", {"LastName": "Billing", "Email": "billing@peerco.example", "AccountId": account})
    ids = sf.seed_records({"Opportunity": [{"Name": "Peerco Pro", "AccountId": account, "StageName": "Negotiation",
                                            "CloseDate": "2026-11-30", "line_items": lines}]})
    sf.update("Opportunity", ids["ids"]["Opportunity"][0], {"StageName": "Closed Won"})
    company.hub.engine.sync()  # deal -> Stripe customer, subscription, one-off invoice
    company.hub.engine.sync()
    deal_customer = next(cid for cid, c in stripe_emu.table("customer").items()
                         if c.get("email") == "billing@peerco.example")
    (sub,) = [s for s in stripe_emu.table("subscription").values() if s["customer"] == deal_customer]
    (one_off_invoice,) = [i for i in stripe_emu.table("invoice").values() if i["customer"] == deal_customer
                          and not (i.get("parent") or {}).get("subscription_details")]
    # billhub's Stripe writer: a product and a recurring price of it, marked with their hub ids
    connector = company.hub.connectors["stripe"]
    refs = Refs()
    product = Product("hub-product-peer", name="Peer add-on", description="Seats for peers")
    (written_product,) = connector.upsert("product", [Outbound(
        "product", product.id, product_from_canonical(product, refs), idempotency_key="peer-product")])
    refs.link("product", product.id, str(written_product.external_id))
    price = Price("hub-price-peer", product_id=product.id, unit_amount=Money(1250, "EUR"),
                  recurring_interval="year", nickname="Peer yearly")
    (written_price,) = connector.upsert("price", [Outbound(
        "price", price.id, price_from_canonical(price, refs), idempotency_key="peer-price")])
    return {"customer": deal_customer, "subscription": str(sub["id"]), "invoice": str(one_off_invoice["id"]),
            "product": str(written_product.external_id), "price": str(written_price.external_id)}


def stripe_side(company: Company, raw: stripe.StripeClient, ids: dict[str, str]) -> None:
    """What happens in Stripe itself: the deal's invoice paid by card, part of it refunded, a credit
    note on an older paid invoice, a coupon, and an automatic payout of the balance."""
    paid = raw.v1.invoices.pay(ids["invoice"], params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid"
    charge = next(c for c in company.stripe.live("charge") if c["customer"] == ids["customer"]
                  and c["amount"] == paid.amount_paid)
    raw.v1.refunds.create(params={"charge": charge["id"], "amount": 1500})
    older = next(i for i in company.stripe.live("invoice")
                 if i["status"] == "paid" and i["id"] != ids["invoice"] and i["amount_paid"] > 1000)
    raw.v1.credit_notes.create(params={"invoice": older["id"], "out_of_band_amount": 500, "lines": [
        {"type": "custom_line_item", "unit_amount": 500, "quantity": 1, "description": "Goodwill"}]})
    raw.v1.coupons.create(params={"percent_off": 15, "duration": "once", "name": "Peer welcome"})
    url = f"{company.emus.stripe.base_url}/__emulator/payout"
    requests.post(url, json={"currency": "usd", "paid": True}, timeout=10).raise_for_status()


