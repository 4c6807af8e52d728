"""Peer conformance: Stitch's tap-stripe (3.3.0, stripe-python 5.5.0, API version 2022-11-15)
reads the Stripe emulator completely and sees what billhub wrote there.

The account (``stripe_account.py``): a company of emulators and the hub as the end-to-end tests
set it up; billhub writes to Stripe through its own flows (Salesforce accounts and a won deal ->
Stripe customers, a subscription and a one-off invoice; a product and a price through its Stripe
writer), and Stripe-side activity happens through the official SDK (a card payment, a refund, a
credit note, a coupon) and the emulator's payout sweep. Then the tap, in its own venv, discovers, selects
every stream and syncs. Every stream whose entity the emulator models is read completely and
equals the emulator's objects (ids, minor-unit amounts, currencies, ``metadata.hub_id``, links);
the streams of entities the account has none of (transfers, their reversals, disputes) answer
like an empty account. Every response the tap received, errors included, validates against
Stripe's OpenAPI spec with the fidelity test's validator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.demo import STRIPE_KEY
from tests.connectors.stripe.spec_api import spec_api, validate
from tests.peers.singer_taps import SingerRun, SingerTap, TapFailed, select
from tests.peers.stripe_account import StripeAccount, id_of
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


def _tap(peers: Callable[[str], PeerVenv], acct: StripeAccount, tmp_path: Path) -> SingerTap:
    venv = peers("tap-stripe")
    workdir = tmp_path / "tap-stripe"
    workdir.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir),
           "BILLHUB_STRIPE_EMULATOR": acct.base_url}
    return SingerTap(venv, ENTRY, env, workdir)


def _config(acct: StripeAccount, account_id: str) -> dict[str, Any]:
    return {"client_secret": STRIPE_KEY, "account_id": account_id, "start_date": acct.start_date()}


def test_tap_stripe_reads_every_modelled_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], stripe_account: StripeAccount, tmp_path: Path) -> None:
    acct = stripe_account
    tap = _tap(peers, acct, tmp_path)
    emu = acct.emulator
    emu.record_exchanges = True
    emu.exchanges.clear()

    # A key for another account: the tap stops at its connection check, Stripe's 403 in hand.
    with pytest.raises(TapFailed, match="does not have access to account"):
        tap.discover(_config(acct, "acct_1SomeoneElse00001"))
    catalog = tap.discover(_config(acct, emu.account_id))
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(MODELLED) | set(EMPTY), sorted(streams)
    assert emu.clock.now() <= datetime.now(UTC)  # the tap's windows end at its wall clock
    run = tap.sync(_config(acct, emu.account_id), select(catalog, streams))

    counts = {s: (len(run.created(s)), len(run.records.get(s, [])) - len(run.created(s))) for s in sorted(streams)}
    print("tap-stripe records per stream (list reads, event updates):", counts)
    _assert_catalogue(run, acct)
    _assert_billing(run, acct)
    _assert_money(run, acct)
    _assert_events(run, acct)
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
    _assert_charge_refunds(run, acct)  # last: it may end the test as a known gap


def _assert_charge_refunds(run: SingerRun, acct: StripeAccount) -> None:
    """``expand[]=data.refunds`` (2022-11-15 stopped including them): each charge record has its
    refunds, the ones the emulator holds for the charge."""
    refunds = acct.emulator.live("refund")
    read = {cid: sorted(id_of(r) or "" for r in rec.get("refunds") or []) for cid, rec in run.by_id("charges").items()}
    expected = {cid: sorted(r["id"] for r in refunds if r["charge"] == cid) for cid in read}
    if read != expected and not any(read.values()):
        pytest.xfail("KNOWN GAP (issue 24, item 3, not this test's): expand[]=data.refunds on charges "
                     "is not honoured, so no charge record has its refunds")
    assert read == expected and any(read.values())


def _assert_catalogue(run: SingerRun, acct: StripeAccount) -> None:
    ids = acct.ids
    customers = run.by_id("customers")
    stored = acct.live("customer")
    assert set(customers) == set(stored)
    for cid, rec in customers.items():
        assert (rec["email"], rec["name"], rec.get("metadata") or {}) == \
            (stored[cid]["email"], stored[cid]["name"], stored[cid]["metadata"]), cid
    hub_made = [cid for cid, c in stored.items() if c["metadata"].get("hub_id")]
    assert ids["customer"] in hub_made
    for cid in hub_made:  # what billhub wrote: its own id for the customer
        assert customers[cid]["metadata"]["hub_id"] == acct.canonical("customer", cid)

    products = run.by_id("products")
    assert set(products) == set(acct.live("product"))
    assert products[ids["product"]]["name"] == "Peer add-on"
    assert products[ids["product"]]["metadata"] == {"hub_id": "hub-product-peer"}

    plans = run.by_id("plans")
    recurring = {pid: p for pid, p in acct.live("price").items() if p.get("recurring")}
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
    stored_coupons = acct.live("coupon")
    assert set(coupons) == set(stored_coupons) and len(coupons) == 1
    assert [(c["percent_off"], c["duration"]) for c in coupons.values()] == [(15.0, "once")]


def _assert_billing(run: SingerRun, acct: StripeAccount) -> None:
    ids = acct.ids
    emu = acct.emulator
    subs = run.by_id("subscriptions")
    stored_subs = acct.live("subscription")
    assert set(subs) == set(stored_subs) and ids["subscription"] in subs
    items = run.by_id("subscription_items")
    expected_items: dict[str, tuple[str, str | None, int]] = {}
    for sid, sub in stored_subs.items():
        for item in sub["items"]["data"]:
            expected_items[str(item["id"])] = (sid, id_of(item["price"]), int(item["quantity"]))
        assert subs[sid]["customer"] == sub["customer"] and subs[sid]["status"] == sub["status"]
        assert subs[sid]["items"] == [str(i["id"]) for i in sub["items"]["data"]]
        assert (subs[sid].get("metadata") or {}) == sub["metadata"]
    assert {k: (r["subscription"], id_of(r["price"]), r["quantity"]) for k, r in items.items()} == expected_items
    deal_sub = subs[ids["subscription"]]
    assert deal_sub["metadata"]["hub_id"] == acct.canonical("subscription", ids["subscription"])
    # 2022-11-15 shapes the tap reads (h4's API-version rendering): a single-item subscription's
    # ``plan`` and ``quantity``, and each item's ``plan`` beside its ``price``
    (deal_item,) = [r for r in items.values() if r["subscription"] == ids["subscription"]]
    assert deal_sub["plan"]["id"] == id_of(deal_item["price"]) and deal_sub["quantity"] == 2
    assert deal_item["plan"]["id"] == id_of(deal_item["price"]) and deal_item["plan"]["interval"] == "month"

    invoices = run.by_id("invoices")
    stored_invoices = acct.live("invoice")
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
    assert invoices[ids["invoice"]]["metadata"]["hub_id"] == acct.canonical("invoice", ids["invoice"])
    assert any(rec.get("subscription") == ids["subscription"] for rec in invoices.values())

    lines = list(run.by_id("invoice_line_items", "invoice", "id").values())
    expected_lines = {(iid, str(line["id"])): line for iid, inv in stored_invoices.items()
                      for line in inv.get("_lines", [])}
    assert {(r["invoice"], r["id"]) for r in run.records.get("invoice_line_items", [])} == set(expected_lines)
    item_ids = set(run.by_id("invoice_items"))
    assert item_ids == set(acct.live("invoiceitem"))
    for rec in lines:
        line = expected_lines[(rec["invoice"], rec["id"])]
        assert (rec["amount"], rec["currency"]) == (line["amount"], line["currency"])
        pricing = (line.get("pricing") or {}).get("price_details") or {}
        assert id_of(rec.get("price")) == pricing.get("price")
        # 2022-11-15: ``type`` and the line's own links instead of ``parent``
        assert rec["type"] in ("subscription", "invoiceitem")
        if rec["type"] == "subscription":
            assert rec["subscription"] == invoices[rec["invoice"]]["subscription"]
            assert rec["plan"]["id"] == id_of(rec["price"])
        else:
            assert rec["invoice_item"] in item_ids
    assert emu.table("invoice")  # the company has invoices at all


def _assert_money(run: SingerRun, acct: StripeAccount) -> None:
    charges = run.by_id("charges")
    stored = acct.live("charge")
    assert set(charges) == set(stored)
    for cid, ch in stored.items():
        rec = charges[cid]
        assert (rec["amount"], rec["amount_refunded"], rec["currency"], rec["customer"], rec["payment_intent"],
                rec["balance_transaction"]) == (ch["amount"], ch["amount_refunded"], ch["currency"], ch["customer"],
                                                ch["payment_intent"], ch["balance_transaction"]), cid
    assert any(rec["amount_refunded"] == 1500 for rec in charges.values())

    intents = run.by_id("payment_intents")
    stored_pis = acct.live("payment_intent")
    assert set(intents) == set(stored_pis)
    for pid, pi in stored_pis.items():
        assert (intents[pid]["amount"], intents[pid]["currency"], intents[pid]["customer"], intents[pid]["status"],
                intents[pid]["latest_charge"]) == (pi["amount"], pi["currency"], pi["customer"], pi["status"],
                                                   pi["latest_charge"]), pid

    txns = run.by_id("balance_transactions")
    stored_txns = acct.live("balance_transaction", acct.start - 600)
    assert set(txns) == set(stored_txns)
    for tid, txn in stored_txns.items():
        assert (txns[tid]["amount"], txns[tid]["fee"], txns[tid]["net"], txns[tid]["currency"],
                txns[tid]["type"], id_of(txns[tid].get("source"))) == \
            (txn["amount"], txn["fee"], txn["net"], txn["currency"], txn["type"], id_of(txn.get("source"))), tid

    payouts = run.by_id("payouts")
    stored_payouts = acct.live("payout")
    assert set(payouts) == set(stored_payouts) and len(payouts) == 1
    (payout,) = stored_payouts.values()
    rec = payouts[str(payout["id"])]
    assert (rec["amount"], rec["currency"], rec["status"], rec["automatic"]) == \
        (payout["amount"], payout["currency"], "paid", True)
    # payout_transactions: what ``GET /v1/balance_transactions?payout=`` lists for the automatic
    # payout, its own transaction among them; the rest add up to what it paid out
    joined = {(r["payout_id"], r["id"]) for r in run.created("payout_transactions")}
    assert joined == {(payout["id"], t["id"]) for t in acct.emulator.live("balance_transaction")
                      if t.get("_payout") == payout["id"]}
    assert sum(stored_txns[t]["net"] for _, t in joined if stored_txns[t]["type"] != "payout") == payout["amount"]


def _assert_events(run: SingerRun, acct: StripeAccount) -> None:
    emu = acct.emulator
    since = emu.now() - EVENT_DAYS * 86400
    expected = {str(e["id"]): e["type"] for e in emu.events if e["created"] >= since}
    read = {str(r["id"]): r["type"] for r in run.records.get("events", [])}
    assert read == expected and expected
    # The event feed also brought each object's latest change to its stream (the tap's updates).
    updated = [r for r in run.records.get("invoices", []) if "updated_by_event_type" in r]
    assert updated and all(r["id"] in run.by_id("invoices") for r in updated)

