"""Peer conformance: Stitch's tap-stripe (3.3.0, stripe-python 5.5.0, API version 2022-11-15)
reads the Stripe emulator completely and sees what billhub wrote there.

A company of emulators and the hub is set up as the end-to-end tests do (tests/e2e); billhub
writes to Stripe through its own flows (Salesforce accounts and a won deal -> Stripe customers,
a subscription and a one-off invoice; a product and a price through its Stripe writer), and
Stripe-side activity happens through the official SDK (a card payment, a refund, a credit note,
a coupon) and the emulator's payout sweep. Then the tap, in its own venv, discovers, selects
every stream and syncs. Every stream whose entity the emulator models is read completely and
equals the emulator's objects (ids, minor-unit amounts, currencies, ``metadata.hub_id``, links);
the streams of entities the account has none of (transfers, their reversals, disputes) answer
like an empty account. Every response the tap received, errors included, validates against
Stripe's OpenAPI spec with the fidelity test's validator.

The tap reads the wall clock (its date windows end at "now"), so the emulators' clocks start at
the wall time (as the e2e company's do) and stay pinned; the tap's ``start_date`` is before the
company's first object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from connectors.base import Outbound
from mapping.model import Money, Price, Product
from mapping.stripe import price_from_canonical, product_from_canonical
from sync.demo import STRIPE_KEY
from tests.connectors.stripe.helpers import Refs
from tests.connectors.stripe.spec_api import spec_api, validate
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import canonical
from tests.peers.singer_taps import SingerRun, SingerTap, TapFailed, select
from tests.peers.venvs import PeerVenv

ENTRY = Path(__file__).with_name("run_tap_stripe.py")
TAP_VERSION = "2022-11-15"  # tap_stripe.configure_stripe_client pins stripe.api_version
EVENT_DAYS = 30  # Stripe (and the emulator) keep events 30 days; the tap reads no further back

# Streams whose entity the emulator models (read completely and compared) and streams of
# entities this account has none of (an empty list of the real shape, never an error).
MODELLED = ("balance_transactions", "charges", "coupons", "customers", "events", "invoice_items",
            "invoice_line_items", "invoices", "payment_intents", "payout_transactions", "payouts",
            "plans", "products", "subscription_items", "subscriptions")
EMPTY = ("disputes", "transfer_reversals", "transfers")


def _id(value: Any) -> str | None:
    """An id, whether the field holds it or the object (expanded)."""
    if isinstance(value, dict):
        return str(value["id"])
    return None if value is None else str(value)


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    c = start_company(tmp_path, customers=6, invoices=12)
    yield c
    c.hub.close()
    c.emus.stop()


@pytest.fixture
def raw(company: Company) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient(timeout=10)
    yield stripe.StripeClient(STRIPE_KEY, base_addresses={"api": company.emus.stripe.base_url},
                              max_network_retries=0, http_client=http)
    http.close()  # type: ignore[no-untyped-call]  # stripe: RequestsClient.close is unannotated


def _billhub_writes(company: Company) -> dict[str, str]:
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


def _stripe_side(company: Company, raw: stripe.StripeClient, ids: dict[str, str]) -> None:
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


def _tap(peers: Callable[[str], PeerVenv], company: Company, tmp_path: Path) -> SingerTap:
    venv = peers("tap-stripe")
    workdir = tmp_path / "tap-stripe"
    workdir.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir),
           "BILLHUB_STRIPE_EMULATOR": company.emus.stripe.base_url}
    return SingerTap(venv, ENTRY, env, workdir)


def _config(company: Company, account_id: str) -> dict[str, Any]:
    start = company.emus.now - timedelta(days=100)
    return {"client_secret": STRIPE_KEY, "account_id": account_id,
            "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_tap_stripe_reads_every_modelled_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], company: Company, raw: stripe.StripeClient,
        tmp_path: Path) -> None:
    tap = _tap(peers, company, tmp_path)  # first: a missing peer skips before any setup work
    ids = _billhub_writes(company)
    _stripe_side(company, raw, ids)
    emu = company.stripe
    emu.record_exchanges = True
    emu.exchanges.clear()

    # A key for another account: the tap stops at its connection check, Stripe's 403 in hand.
    with pytest.raises(TapFailed, match="does not have access to account"):
        tap.discover(_config(company, "acct_1SomeoneElse00001"))
    catalog = tap.discover(_config(company, emu.account_id))
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(MODELLED) | set(EMPTY), sorted(streams)
    assert emu.clock.now() <= datetime.now(UTC)  # the tap's windows end at its wall clock
    try:
        run = tap.sync(_config(company, emu.account_id), select(catalog, streams))
    except TapFailed as exc:
        if "This property cannot be expanded (data.plan.tiers)" in str(exc):
            # KNOWN GAP, not this test's: the emulator checks ``expand[]`` against the current
            # spec, where ``plan`` is gone from subscriptions, items, invoice items and lines,
            # but in 2022-11-15 (the tap's version) they have it and ``plan.tiers`` expands.
            pytest.xfail("expand[] is checked against the current version only (issue 24: the strict "
                         "expansion check must follow the request's API version)")
        raise

    counts = {s: (len(run.created(s)), len(run.records.get(s, [])) - len(run.created(s))) for s in sorted(streams)}
    print("tap-stripe records per stream (list reads, event updates):", counts)
    _assert_catalogue(run, company, ids)
    _assert_billing(run, company, ids)
    _assert_money(run, company)
    _assert_events(run, company)
    for stream in EMPTY:
        assert run.records.get(stream, []) == [] and stream in run.schemas, stream
    empty_lists = [ex for ex in emu.exchanges if ex["template"] in ("/v1/transfers", "/v1/disputes")]
    assert empty_lists and all(ex["status"] == 200 and ex["body"]["data"] == [] and ex["body"]["object"] == "list"
                               for ex in empty_lists)

    exchanges = list(emu.exchanges)
    assert any(ex["status"] == 403 for ex in exchanges)  # the refused account, validated too
    assert [ex for ex in exchanges if ex["status"] >= 400] == [ex for ex in exchanges if ex["status"] == 403]
    # Every answer the tap received: errors against the spec as it is, the 2022-11-15 renderings
    # against it with only presence relaxed (spec_api(older=True)).
    errors = [ex for ex in exchanges if ex["status"] >= 400]
    problems = validate(spec_api(), errors) + validate(spec_api(older=True),
                                                       [ex for ex in exchanges if ex["status"] < 400])
    assert not problems, "\n".join(problems[:20])
    _assert_charge_refunds(run, company)  # last: it may end the test as a known gap


def _assert_charge_refunds(run: SingerRun, company: Company) -> None:
    """``expand[]=data.refunds`` (2022-11-15 stopped including them): each charge record has its
    refunds, the ones the emulator holds for the charge."""
    refunds = company.stripe.live("refund")
    read = {cid: sorted(_id(r) or "" for r in rec.get("refunds") or []) for cid, rec in run.by_id("charges").items()}
    expected = {cid: sorted(r["id"] for r in refunds if r["charge"] == cid) for cid in read}
    if read != expected and not any(read.values()):
        pytest.xfail("KNOWN GAP (issue 24, item 3, not this test's): expand[]=data.refunds on charges "
                     "is not honoured, so no charge record has its refunds")
    assert read == expected and any(read.values())


def _live(company: Company, kind: str, since: int) -> dict[str, dict[str, Any]]:
    return {str(o["id"]): o for o in company.stripe.live(kind) if int(o.get("created") or 0) >= since}


def _start(company: Company) -> int:
    return int((company.emus.now - timedelta(days=100)).timestamp())


def _assert_catalogue(run: SingerRun, company: Company, ids: dict[str, str]) -> None:
    start = _start(company)
    customers = run.by_id("customers")
    stored = _live(company, "customer", start)
    assert set(customers) == set(stored)
    for cid, rec in customers.items():
        assert (rec["email"], rec["name"], rec.get("metadata") or {}) == \
            (stored[cid]["email"], stored[cid]["name"], stored[cid]["metadata"]), cid
    hub_made = [cid for cid, c in stored.items() if c["metadata"].get("hub_id")]
    assert ids["customer"] in hub_made
    for cid in hub_made:  # what billhub wrote: its own id for the customer
        assert customers[cid]["metadata"]["hub_id"] == canonical(company, "stripe", "customer", cid)

    products = run.by_id("products")
    assert set(products) == set(_live(company, "product", start))
    assert products[ids["product"]]["name"] == "Peer add-on"
    assert products[ids["product"]]["metadata"] == {"hub_id": "hub-product-peer"}

    plans = run.by_id("plans")
    recurring = {pid: p for pid, p in _live(company, "price", start).items() if p.get("recurring")}
    assert set(plans) == set(recurring) and ids["price"] in plans
    for pid, plan in plans.items():
        price = recurring[pid]
        assert plan["object"] == "plan"
        assert (plan["amount"], plan["currency"], plan["interval"], plan["interval_count"], plan["product"],
                plan["active"], plan.get("nickname")) == \
            (price["unit_amount"], price["currency"], price["recurring"]["interval"],
             price["recurring"]["interval_count"], price["product"], price["active"], price["nickname"]), pid
    assert (plans[ids["price"]]["amount"], plans[ids["price"]]["currency"], plans[ids["price"]]["interval"]) == \
        (1250, "eur", "year")
    assert plans[ids["price"]]["metadata"] == {"hub_id": "hub-price-peer"}

    coupons = run.by_id("coupons")
    stored_coupons = _live(company, "coupon", start)
    assert set(coupons) == set(stored_coupons) and len(coupons) == 1
    assert [(c["percent_off"], c["duration"]) for c in coupons.values()] == [(15.0, "once")]


def _assert_billing(run: SingerRun, company: Company, ids: dict[str, str]) -> None:
    start, emu = _start(company), company.stripe
    subs = run.by_id("subscriptions")
    stored_subs = _live(company, "subscription", start)
    assert set(subs) == set(stored_subs) and ids["subscription"] in subs
    items = run.by_id("subscription_items")
    expected_items: dict[str, tuple[str, str | None, int]] = {}
    for sid, sub in stored_subs.items():
        for item in sub["items"]["data"]:
            expected_items[str(item["id"])] = (sid, _id(item["price"]), int(item["quantity"]))
        assert subs[sid]["customer"] == sub["customer"] and subs[sid]["status"] == sub["status"]
        assert subs[sid]["items"] == [str(i["id"]) for i in sub["items"]["data"]]
        assert (subs[sid].get("metadata") or {}) == sub["metadata"]
    assert {k: (r["subscription"], _id(r["price"]), r["quantity"]) for k, r in items.items()} == expected_items
    deal_sub = subs[ids["subscription"]]
    assert deal_sub["metadata"]["hub_id"] == canonical(company, "stripe", "subscription", ids["subscription"])
    # 2022-11-15 shapes the tap reads (h4's API-version rendering): a single-item subscription's
    # ``plan`` and ``quantity``, and each item's ``plan`` beside its ``price``
    (deal_item,) = [r for r in items.values() if r["subscription"] == ids["subscription"]]
    assert deal_sub["plan"]["id"] == _id(deal_item["price"]) and deal_sub["quantity"] == 2
    assert deal_item["plan"]["id"] == _id(deal_item["price"]) and deal_item["plan"]["interval"] == "month"

    invoices = run.by_id("invoices")
    stored_invoices = _live(company, "invoice", start)
    assert set(invoices) == set(stored_invoices)
    charges, intents = run.by_id("charges"), run.by_id("payment_intents")
    for iid, inv in stored_invoices.items():
        rec = invoices[iid]
        assert (rec["customer"], rec["currency"], rec["total"], rec["amount_due"], rec["amount_paid"],
                rec["status"], rec.get("number"), rec.get("metadata") or {}) == \
            (inv["customer"], inv["currency"], inv["total"], inv["amount_due"], inv["amount_paid"],
             inv["status"], inv.get("number"), inv["metadata"]), iid
        assert all(isinstance(rec[k], int) for k in ("total", "amount_due", "amount_paid", "subtotal"))
        # 2022-11-15: the subscription and the payment on the invoice itself
        parent_sub = ((inv.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        assert rec.get("subscription") == parent_sub, iid
        if inv["status"] == "paid" and inv["amount_paid"] > 0 and not inv.get("amount_paid_off_stripe"):
            assert rec["paid"] is True and rec["charge"] in charges and rec["payment_intent"] in intents, iid
            assert charges[rec["charge"]]["payment_intent"] == rec["payment_intent"]
            assert intents[rec["payment_intent"]]["invoice"] == iid
            assert charges[rec["charge"]]["amount"] == rec["amount_paid"]
    assert invoices[ids["invoice"]]["metadata"]["hub_id"] == canonical(company, "stripe", "invoice", ids["invoice"])
    assert any(rec.get("subscription") == ids["subscription"] for rec in invoices.values())

    lines = list(run.by_id("invoice_line_items", "invoice", "id").values())
    expected_lines = {(iid, str(line["id"])): line for iid, inv in stored_invoices.items()
                      for line in inv.get("_lines", [])}
    assert {(r["invoice"], r["id"]) for r in run.records.get("invoice_line_items", [])} == set(expected_lines)
    item_ids = set(run.by_id("invoice_items"))
    assert item_ids == set(_live(company, "invoiceitem", start))
    for rec in lines:
        line = expected_lines[(rec["invoice"], rec["id"])]
        assert (rec["amount"], rec["currency"]) == (line["amount"], line["currency"])
        pricing = (line.get("pricing") or {}).get("price_details") or {}
        assert _id(rec.get("price")) == pricing.get("price")
        # 2022-11-15: ``type`` and the line's own links instead of ``parent``
        assert rec["type"] in ("subscription", "invoiceitem")
        if rec["type"] == "subscription":
            assert rec["subscription"] == invoices[rec["invoice"]]["subscription"]
            assert rec["plan"]["id"] == _id(rec["price"])
        else:
            assert rec["invoice_item"] in item_ids
    assert emu.table("invoice")  # the company has invoices at all


def _assert_money(run: SingerRun, company: Company) -> None:
    start = _start(company)
    charges = run.by_id("charges")
    stored = _live(company, "charge", start)
    assert set(charges) == set(stored)
    for cid, ch in stored.items():
        rec = charges[cid]
        assert (rec["amount"], rec["amount_refunded"], rec["currency"], rec["customer"], rec["payment_intent"],
                rec["balance_transaction"]) == (ch["amount"], ch["amount_refunded"], ch["currency"], ch["customer"],
                                                ch["payment_intent"], ch["balance_transaction"]), cid
    assert any(rec["amount_refunded"] == 1500 for rec in charges.values())

    intents = run.by_id("payment_intents")
    stored_pis = _live(company, "payment_intent", start)
    assert set(intents) == set(stored_pis)
    for pid, pi in stored_pis.items():
        assert (intents[pid]["amount"], intents[pid]["currency"], intents[pid]["customer"], intents[pid]["status"],
                intents[pid]["latest_charge"]) == (pi["amount"], pi["currency"], pi["customer"], pi["status"],
                                                   pi["latest_charge"]), pid

    txns = run.by_id("balance_transactions")
    stored_txns = _live(company, "balance_transaction", start - 600)
    assert set(txns) == set(stored_txns)
    for tid, txn in stored_txns.items():
        assert (txns[tid]["amount"], txns[tid]["fee"], txns[tid]["net"], txns[tid]["currency"],
                txns[tid]["type"], _id(txns[tid].get("source"))) == \
            (txn["amount"], txn["fee"], txn["net"], txn["currency"], txn["type"], _id(txn.get("source"))), tid

    payouts = run.by_id("payouts")
    stored_payouts = _live(company, "payout", start)
    assert set(payouts) == set(stored_payouts) and len(payouts) == 1
    (payout,) = stored_payouts.values()
    rec = payouts[str(payout["id"])]
    assert (rec["amount"], rec["currency"], rec["status"], rec["automatic"]) == \
        (payout["amount"], payout["currency"], "paid", True)
    # payout_transactions: what ``GET /v1/balance_transactions?payout=`` lists for the automatic
    # payout, its own transaction among them; the rest add up to what it paid out
    joined = {(r["payout_id"], r["id"]) for r in run.created("payout_transactions")}
    assert joined == {(payout["id"], t["id"]) for t in company.stripe.live("balance_transaction")
                      if t.get("_payout") == payout["id"]}
    assert sum(stored_txns[t]["net"] for _, t in joined if stored_txns[t]["type"] != "payout") == payout["amount"]


def _assert_events(run: SingerRun, company: Company) -> None:
    emu = company.stripe
    since = emu.now() - EVENT_DAYS * 86400
    expected = {str(e["id"]): e["type"] for e in emu.events if e["created"] >= since}
    read = {str(r["id"]): r["type"] for r in run.records.get("events", [])}
    assert read == expected and expected
    # The event feed also brought each object's latest change to its stream (the tap's updates).
    updated = [r for r in run.records.get("invoices", []) if "updated_by_event_type" in r]
    assert updated and all(r["id"] in run.by_id("invoices") for r in updated)

