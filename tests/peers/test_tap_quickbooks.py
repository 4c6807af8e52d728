"""Peer conformance: Stitch's tap-quickbooks (2.5.0; singer-python 6.1.1, requests-oauthlib
2.0.0, minor version 75) reads the QuickBooks emulator completely and sees what billhub wrote.

The company (``qbo_company.py``): the e2e company, everything in QuickBooks written by billhub's
flows (customers, items, invoices, card payments, refunds, a credit note booked as a CreditMemo
applied by a Payment). The tap, in its own venv, refreshes its token (client_secret_post) at
the emulator, discovers, selects every stream and syncs: its 29 query streams in one ``/batch``
of ``SELECT * ... WHERE Metadata.LastUpdatedTime >= start ORDER BY ...``, ``deleted_objects``
through one CDC call naming 24 entities, ``profit_loss_report`` by 29-day windows of
``/reports/ProfitAndLoss?summarize_column_by=Days``. Every stream of a modelled entity equals the
emulator's records (ids, amounts as exact decimals, references with their names, the hub's
markers, payment links); the 18 streams of entities the emulator does not model are empty, and
no answer the tap received is a fault (the tap drops a batch item's Fault silently).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.quickbooks.emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.peers.qbo_company import QboCompany, start_qbo_company
from tests.peers.singer_taps import SingerRun, SingerTap, TapFailed, select
from tests.peers.venvs import PeerVenv

ENTRY = Path(__file__).with_name("run_tap_quickbooks.py")
# stream -> the QBO entity the emulator models (read completely and compared)
MODELLED = {"accounts": "Account", "credit_memos": "CreditMemo", "customers": "Customer", "invoices": "Invoice",
            "items": "Item", "payments": "Payment", "purchases": "Purchase", "refund_receipts": "RefundReceipt",
            "tax_codes": "TaxCode", "tax_rates": "TaxRate", "transfers": "Transfer"}
EMPTY = ("bill_payments", "bills", "budgets", "classes", "customer_types", "departments", "deposits", "employees",
         "estimates", "journal_entries", "payment_methods", "purchase_orders", "sales_receipts", "tax_agencies",
         "terms", "time_activities", "vendor_credits", "vendors")
DERIVED = ("deleted_objects", "profit_loss_report")
TOKENS = ("RT-peer-discover", "RT-peer-sync")


@pytest.fixture(scope="module")
def qbo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QboCompany]:
    company = start_qbo_company(tmp_path_factory.mktemp("qbo-peers"))
    try:
        yield company
    finally:
        company.close()


def _config(qbo: QboCompany, refresh_token: str) -> dict[str, Any]:
    return {"start_date": qbo.start_date(), "user_agent": "billhub-peer-conformance", "realm_id": qbo.realm_id,
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "refresh_token": refresh_token}


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _ref(ref: Any) -> tuple[str | None, str | None] | None:
    return None if not ref else (ref.get("value"), ref.get("name"))


def test_tap_quickbooks_reads_every_modelled_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], qbo: QboCompany, tmp_path: Path) -> None:
    venv = peers("tap-quickbooks")
    workdir = tmp_path / "tap-quickbooks"
    workdir.mkdir()
    tap = SingerTap(venv, ENTRY, {"PATH": "/usr/bin:/bin", "HOME": str(workdir),
                                  "BILLHUB_QBO_EMULATOR": qbo.base_url}, workdir)
    requests.post(f"{qbo.base_url}/__emulator/seed", json={"refresh_tokens": list(TOKENS)},
                  timeout=10).raise_for_status()
    emu = qbo.emulator
    emu.record_exchanges = True
    emu.exchanges.clear()

    with pytest.raises(TapFailed, match="invalid_grant"):  # a refresh token Intuit never issued
        tap.discover(_config(qbo, "RT-never-issued"))
    catalog = tap.discover(_config(qbo, TOKENS[0]))
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(MODELLED) | set(EMPTY) | set(DERIVED), sorted(streams)
    run = tap.sync(_config(qbo, TOKENS[1]), select(catalog, streams))
    print("tap-quickbooks records per stream:", {s: len(run.records.get(s, [])) for s in sorted(streams)})

    _assert_faultless(emu.exchanges)
    for stream, entity in MODELLED.items():
        read = [str(r["Id"]) for r in run.records.get(stream, [])]
        assert sorted(read) == sorted(qbo.table(entity)) and len(read) == len(set(read)), stream
        assert stream in run.schemas
    for stream in EMPTY:
        assert run.records.get(stream, []) == [] and stream in run.schemas, stream
    assert run.records.get("deleted_objects", []) == []  # billhub deleted nothing in QuickBooks
    _assert_sales(run, qbo)
    _assert_money(run, qbo)
    _assert_profit_and_loss(run, qbo)


def _assert_faultless(exchanges: Any) -> None:
    """Every answer 200 and no batch item a Fault: the tap would drop one silently."""
    assert exchanges
    for ex in exchanges:
        assert ex["status"] == 200, ex
        body = json.loads(ex["body"])
        assert "Fault" not in body, ex
        for item in body.get("BatchItemResponse", []):
            assert "Fault" not in item, item
    paths = [ex["path"].rsplit("/", 1)[-1] for ex in exchanges]
    assert {"batch", "cdc", "ProfitAndLoss"} <= set(paths)


def _records(run: SingerRun, stream: str) -> dict[str, dict[str, Any]]:
    return {str(r["Id"]): r for r in run.records.get(stream, [])}


def _assert_sales(run: SingerRun, qbo: QboCompany) -> None:
    customers = _records(run, "customers")
    for cid, stored in qbo.table("Customer").items():
        rec = customers[cid]
        assert (rec["DisplayName"], _dec(rec["Balance"]), rec.get("Notes")) == \
            (stored["DisplayName"], stored["Balance"], stored.get("Notes")), cid
        assert f"hub:{qbo.hub_id('customer', cid)}" in rec["Notes"]  # billhub's marker
    owing = {cid for cid, c in qbo.table("Customer").items() if c["Balance"]}
    assert owing, "some customer owes something (open invoices)"

    items = _records(run, "items")
    assert {i: r["Name"] for i, r in items.items()} == {i: s["Name"] for i, s in qbo.table("Item").items()}

    invoices = _records(run, "invoices")
    for iid, stored in qbo.table("Invoice").items():
        rec = invoices[iid]
        assert (_dec(rec["TotalAmt"]), _dec(rec["Balance"]), rec["DocNumber"], rec["PrivateNote"], rec["TxnDate"][:10]) == \
            (stored["TotalAmt"], stored["Balance"], stored["DocNumber"], stored["PrivateNote"], stored["TxnDate"]), iid
        assert _ref(rec["CustomerRef"]) == _ref(stored["CustomerRef"]) and rec["CustomerRef"]["name"]
        assert _ref(rec["CurrencyRef"]) == _ref(stored["CurrencyRef"])
        assert f"hub:{qbo.hub_id('invoice', iid)}" in rec["PrivateNote"]
        assert rec.get("LinkedTxn") == stored.get("LinkedTxn"), iid
        lines = [(_dec(line["Amount"]), _ref((line.get("SalesItemLineDetail") or {}).get("ItemRef")))
                 for line in rec["Line"]]
        assert lines == [(line["Amount"], _ref((line.get("SalesItemLineDetail") or {}).get("ItemRef")))
                         for line in stored["Line"]], iid
    paid = [i for i in invoices.values() if any(t["TxnType"] == "Payment" for t in i.get("LinkedTxn") or [])]
    assert paid and all(_dec(i["Balance"]) < _dec(i["TotalAmt"]) for i in paid)  # type: ignore[operator]

    (memo_id,) = qbo.table("CreditMemo")
    memo = _records(run, "credit_memos")[memo_id]
    stored_memo = qbo.table("CreditMemo")[memo_id]
    assert (_dec(memo["TotalAmt"]), _ref(memo["CustomerRef"]), memo["PrivateNote"]) == \
        (stored_memo["TotalAmt"], _ref(stored_memo["CustomerRef"]), stored_memo["PrivateNote"]) == \
        (Decimal("5.00"), _ref(qbo.table("Invoice")[qbo.credited_invoice]["CustomerRef"]), stored_memo["PrivateNote"])
    # applied: a Payment of no money linking the memo and the invoice, listed on both
    (application,) = [p for p in _records(run, "payments").values() if _dec(p["TotalAmt"]) == 0]
    # the tap's credit_memos schema has no LinkedTxn (its transformer drops it); the memo is used up
    assert _dec(memo["RemainingCredit"]) == 0 and "LinkedTxn" not in run.schemas["credit_memos"]["properties"]
    assert stored_memo["LinkedTxn"] == [{"TxnId": application["Id"], "TxnType": "Payment"}]
    assert {"TxnId": application["Id"], "TxnType": "Payment"} in invoices[qbo.credited_invoice]["LinkedTxn"]


def _assert_money(run: SingerRun, qbo: QboCompany) -> None:
    payments = _records(run, "payments")
    for pid, stored in qbo.table("Payment").items():
        rec = payments[pid]
        assert (_dec(rec["TotalAmt"]), _dec(rec.get("UnappliedAmt")), _ref(rec["CustomerRef"]), rec.get("PrivateNote")) \
            == (stored["TotalAmt"], stored.get("UnappliedAmt"), _ref(stored["CustomerRef"]), stored.get("PrivateNote"))
        assert [(_dec(line["Amount"]), line["LinkedTxn"]) for line in rec["Line"]] == \
            [(line["Amount"], line["LinkedTxn"]) for line in stored["Line"]], pid
        if _dec(rec["TotalAmt"]):  # a card payment billhub booked (not the credit application)
            assert f"hub:{qbo.hub_id('payment', pid)}" in rec["PrivateNote"]
    refunds = _records(run, "refund_receipts")
    for rid, stored in qbo.table("RefundReceipt").items():
        assert (_dec(refunds[rid]["TotalAmt"]), _ref(refunds[rid]["CustomerRef"]), refunds[rid]["PrivateNote"]) == \
            (stored["TotalAmt"], _ref(stored["CustomerRef"]), stored["PrivateNote"]), rid
        assert f"hub:{qbo.hub_id('refund', rid)}" in refunds[rid]["PrivateNote"]
    accounts = _records(run, "accounts")
    assert {a: r["Name"] for a, r in accounts.items()} == {a: s["Name"] for a, s in qbo.table("Account").items()}
    codes = _records(run, "tax_codes")
    assert {c: r["Name"] for c, r in codes.items()} == {c: s["Name"] for c, s in qbo.table("TaxCode").items()}


def _assert_profit_and_loss(run: SingerRun, qbo: QboCompany) -> None:
    """One record a day from the start date to today, each day's income the day's invoices less
    its credit memos and refund receipts in the home currency, worked out here from the
    documents (not from the emulator's report code)."""
    income: dict[str, Decimal] = {}
    for entity, sign in (("Invoice", 1), ("CreditMemo", -1), ("RefundReceipt", -1)):
        for doc in qbo.table(entity).values():
            rate = Decimal(str(doc.get("ExchangeRate") or 1))
            net = sum((Decimal(str(line["Amount"])) * rate).quantize(Decimal("0.01")) for line in doc["Line"]
                      if line["DetailType"] == "SalesItemLineDetail")
            income[doc["TxnDate"]] = income.get(doc["TxnDate"], Decimal(0)) + sign * net
    days = {r["ReportDate"][:10]: r for r in run.records.get("profit_loss_report", [])}
    first = date.fromisoformat(qbo.start_date()[:10])
    assert min(days) == first.isoformat() and len(days) == len(run.records["profit_loss_report"])
    in_range = {d: v for d, v in income.items() if d >= first.isoformat()}
    assert in_range, "some document falls inside the report's range"
    for day, record in days.items():
        assert record["AccountingMethod"] == "Accrual"
        reported = record["Details"].get("Total Income", "")
        assert (Decimal(reported) if reported else None) == in_range.get(day), day
        if reported:
            assert record["Details"]["Net Income"] == reported  # no expenses booked
