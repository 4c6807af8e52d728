"""Peer conformance: Airbyte's airbyte-source-stripe (5.14.1, a declarative airbyte-cdk source,
API version 2022-11-15) checks, discovers and reads every stream of the Stripe emulator.

The same account as the tap-stripe test (``stripe_account.py``: billhub's writes and Stripe-side
activity). Airbyte ignores 400 and 403 answers by design (its error handler), so a refused
request would silently read a stream as empty: every request must be answered 2xx, and each
stream whose entity the emulator models is compared with the emulator's objects (complete, ids,
minor-unit amounts, currency, ``metadata.hub_id``, links). Every other stream reads an empty
list of the real shape. Every answer validates against Stripe's spec (2022-11-15 renderings with
presence relaxed, ``spec_api``), but the legacy usage-record summaries, gone from the current
spec (``empty_lists.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync.demo import STRIPE_KEY
from tests.connectors.stripe.spec_api import spec_api, validate
from tests.peers.airbyte import AirbyteRun, AirbyteSource
from tests.peers.stripe_account import StripeAccount, id_of
from tests.peers.venvs import PeerVenv

ENTRY = Path(__file__).with_name("run_airbyte_stripe.py")
EVENT_DAYS = 30

# stream -> the emulator's kind it lists (compared: complete and equal)
MODELLED = {
    "balance_transactions": "balance_transaction", "charges": "charge", "coupons": "coupon",
    "credit_notes": "credit_note", "customers": "customer", "disputes": "dispute",
    "invoice_items": "invoiceitem", "invoices": "invoice", "payment_intents": "payment_intent",
    "payouts": "payout", "prices": "price", "products": "product", "promotion_codes": "promotion_code",
    "refunds": "refund", "subscriptions": "subscription", "transfers": "transfer",
}
# read per parent, or derived: compared below one by one
DERIVED = ("events", "invoice_line_items", "payout_balance_transactions", "plans", "subscription_items",
           "customer_balance_transactions", "payment_methods")
# kinds the account has none of (the emulator lists them empty, empty_lists.py and accounts.py)
EMPTY = ("accounts", "application_fees", "application_fees_refunds", "authorizations", "bank_accounts",
         "cardholders", "cards", "checkout_sessions", "checkout_sessions_line_items", "early_fraud_warnings",
         "external_account_bank_accounts", "external_account_cards", "file_links", "files", "persons",
         "reviews", "setup_attempts", "setup_intents", "shipping_rates", "subscription_schedule", "top_ups",
         "transactions", "transfer_reversals", "usage_records")
NOT_IN_SPEC = ("/v1/subscription_items/{id}/usage_record_summaries",)  # legacy, pre-Basil only


def _source(peers: Callable[[str], PeerVenv], acct: StripeAccount, tmp_path: Path) -> AirbyteSource:
    venv = peers("airbyte-source-stripe")
    workdir = tmp_path / "airbyte-source-stripe"
    workdir.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "BILLHUB_STRIPE_EMULATOR": acct.base_url}
    return AirbyteSource(venv, ENTRY, env, workdir)


def test_airbyte_source_stripe_reads_every_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], stripe_account: StripeAccount, tmp_path: Path) -> None:
    acct = stripe_account
    source = _source(peers, acct, tmp_path)
    emu = acct.emulator
    emu.record_exchanges = True
    emu.exchanges.clear()
    config = {"client_secret": STRIPE_KEY, "account_id": emu.account_id, "start_date": acct.start_date(),
              "num_workers": 2}
    assert source.check(config) == "SUCCEEDED"
    catalog = source.discover(config)
    streams = {s["name"] for s in catalog["streams"]}
    assert streams == set(MODELLED) | set(DERIVED) | set(EMPTY), sorted(streams ^ (set(MODELLED) | set(DERIVED) | set(EMPTY)))
    run = source.read_all(config, catalog)
    print("airbyte-source-stripe records per stream:", {s: len(run.records.get(s, [])) for s in sorted(streams)})

    refused = [ex for ex in emu.exchanges if ex["status"] >= 400]
    assert [(ex["method"], ex["path"], ex["status"], ex["body"]) for ex in refused] == []
    assert run.errors == []
    assert {s: run.status.get(s) for s in streams} == {s: "COMPLETE" for s in streams}

    for stream in EMPTY:
        assert run.records.get(stream, []) == [], stream
    for stream, kind in MODELLED.items():
        assert set(run.by_id(stream)) == set(acct.live(kind)), stream
    assert run.by_id("customers") and run.by_id("invoices") and run.by_id("refunds") and run.by_id("credit_notes")
    _assert_values(run, acct)
    _assert_derived(run, acct)

    answered = [ex for ex in emu.exchanges if ex["template"] not in NOT_IN_SPEC]
    assert len(answered) < len(emu.exchanges)  # the usage-record summaries were listed, empty
    problems = validate(spec_api(older=True), answered)
    assert not problems, "\n".join(problems[:20])


def _same(record: dict[str, Any], stored: dict[str, Any], *fields: str) -> None:
    assert {f: record.get(f) for f in fields} == {f: stored.get(f) for f in fields}, record["id"]


def _assert_values(run: AirbyteRun, acct: StripeAccount) -> None:
    for cid, rec in run.by_id("customers").items():
        stored = acct.live("customer")[cid]
        _same(rec, stored, "email", "name", "metadata")
        if stored["metadata"].get("hub_id"):  # written by billhub: its own id for the customer
            assert rec["metadata"]["hub_id"] == acct.canonical("customer", cid)
    prices = run.by_id("prices")
    for pid, rec in prices.items():
        _same(rec, acct.live("price")[pid], "unit_amount", "currency", "product", "active", "type", "metadata")
    assert (prices[acct.ids["price"]]["unit_amount"], prices[acct.ids["price"]]["currency"],
            prices[acct.ids["price"]]["metadata"]) == (1250, "eur", {"hub_id": "hub-price-peer"})
    invoices = run.by_id("invoices")
    for iid, rec in invoices.items():
        stored = acct.live("invoice")[iid]
        _same(rec, stored, "customer", "currency", "total", "subtotal", "amount_due", "amount_paid", "status",
              "number", "metadata")
        parent_sub = ((stored.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        assert rec.get("subscription") == parent_sub, iid  # 2022-11-15's own field
    assert invoices[acct.ids["invoice"]]["metadata"]["hub_id"] == acct.canonical("invoice", acct.ids["invoice"])
    for sid, rec in run.by_id("subscriptions").items():
        _same(rec, acct.live("subscription")[sid], "customer", "status", "metadata")
    for rid, rec in run.by_id("refunds").items():
        stored = acct.live("refund")[rid]
        _same(rec, stored, "amount", "currency", "charge", "payment_intent", "status")
    for nid, rec in run.by_id("credit_notes").items():
        _same(rec, acct.live("credit_note")[nid], "amount", "currency", "invoice", "customer", "status")
    for cid, rec in run.by_id("charges").items():
        _same(rec, acct.live("charge")[cid], "amount", "amount_refunded", "currency", "customer",
              "payment_intent", "balance_transaction")
    for tid, rec in run.by_id("balance_transactions").items():
        stored = acct.live("balance_transaction")[tid]
        _same(rec, stored, "amount", "fee", "net", "currency", "type")
        assert id_of(rec.get("source")) == id_of(stored.get("source"))


def _assert_derived(run: AirbyteRun, acct: StripeAccount) -> None:
    emu = acct.emulator
    since = emu.now() - EVENT_DAYS * 86400
    assert set(run.by_id("events")) == {str(e["id"]) for e in emu.events if e["created"] >= since}
    recurring = {pid for pid, p in acct.live("price").items() if p.get("recurring")}
    plans = run.by_id("plans")
    assert set(plans) == recurring
    for pid, plan in plans.items():
        price = acct.live("price")[pid]
        assert (plan["amount"], plan["currency"], plan["interval"], plan["product"]) == \
            (price["unit_amount"], price["currency"], price["recurring"]["interval"], price["product"])
    lines = {(str(r.get("invoice_id") or r.get("invoice")), str(r["id"])): r
             for r in run.records.get("invoice_line_items", [])}
    stored_lines = {(iid, str(line["id"])): line for iid, inv in acct.live("invoice").items()
                    for line in inv.get("_lines", [])}
    assert set(lines) == set(stored_lines)
    for key, rec in lines.items():
        assert (rec["amount"], rec["currency"]) == (stored_lines[key]["amount"], stored_lines[key]["currency"])
    items = run.by_id("subscription_items")
    stored_items = {str(i["id"]): (sid, id_of(i["price"])) for sid, s in acct.live("subscription").items()
                    for i in s["items"]["data"]}
    assert {k: (r["subscription"], id_of(r["price"])) for k, r in items.items()} == stored_items
    (payout,) = acct.live("payout").values()
    assert {(str(r["payout"]), str(r["id"])) for r in run.records.get("payout_balance_transactions", [])} == \
        {(payout["id"], t["id"]) for t in emu.live("balance_transaction") if t.get("_payout") == payout["id"]}
    for stream, kind in (("customer_balance_transactions", "customer_balance_transaction"),
                         ("payment_methods", "payment_method")):
        held = {str(o["id"]) for o in emu.live(kind) if o.get("customer")}
        assert set(run.by_id(stream)) == held, stream
