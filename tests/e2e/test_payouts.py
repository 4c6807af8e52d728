"""Fees and a payout (issue 18): payments go into a Stripe clearing account, an automatic payout
leaves it as a transfer to the bank of exactly the payout and an expense of exactly the fees, so
the clearing account comes back to zero — in QuickBooks and in Xero, through the SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from sync.config import load_config
from sync.demo import QBO_REALM
from sync.runtime import Hub
from tests.e2e.conftest import Company, start_company
from tests.e2e.ledger_balances import customer_balances, hub_diff_is_clean

AMOUNTS = [10000, 20000, 30000]  # three paid USD invoices
FEES = [round(a * 29 / 1000) + 30 for a in AMOUNTS]  # the emulator's 2.9 % + 30c


@pytest.fixture
def books(tmp_path: Path) -> Iterator[Company]:
    company = start_company(tmp_path, customers=2, invoices=0)
    qbo: Any = company.emus.quickbooks.emulator
    realm = company.qbo
    ids = {}
    for name, kind in (("Stripe clearing", "Bank"), ("Operating bank", "Bank"), ("Stripe fees", "Expense")):
        ids[name] = qbo.save(realm, "Account", {"Name": name, "AccountType": kind, "CurrentBalance": 0})["Id"]
    text = company.config_path.read_text()
    text = text.replace('batch_per_minute = 600.0\n', 'batch_per_minute = 600.0\n'
                        f'clearing_account_id = "{ids["Stripe clearing"]}"\n'
                        f'payout_bank_account_id = "{ids["Operating bank"]}"\n'
                        f'fee_account_id = "{ids["Stripe fees"]}"\n', 1)
    text = text.replace('rate_limit_per_minute = 6000.0\ntax_types', 'rate_limit_per_minute = 6000.0\n'
                        'clearing_account_code = "090"\npayout_bank_account_code = "091"\ntax_types', 1)
    company.config_path.write_text(text)
    company.hub.close()
    company.hub = Hub.from_config(load_config(company.config_path))
    company.ids = ids  # type: ignore[attr-defined]
    yield company
    company.hub.close()
    company.emus.stop()


def _pay_and_pay_out(company: Company) -> dict[str, Any]:
    """Three paid invoices and the automatic payout of them: the payout, with ``_invoices`` the
    Stripe invoices it settles."""
    seeded = company.stripe.seed_objects({
        "customers": [{"ref": "c", "name": "Payout buyer", "email": "ap@payout.example"}],
        "invoices": [{"customer": "@c", "currency": "usd", "status": "paid",
                      "items": [{"amount": a, "description": "Licence"}]} for a in AMOUNTS]})
    assert "error" not in seeded
    answer = requests.post(company.emus.urls()["stripe"] + "/__emulator/payout", json={"paid": True}, timeout=10)
    assert answer.status_code == 200, answer.text
    payout: dict[str, Any] = answer.json()
    assert payout["automatic"] is True and payout["status"] == "paid"
    assert payout["amount"] == sum(AMOUNTS) - sum(FEES)
    return {**payout, "_invoices": seeded["created"]["invoices"]}


def _hub_docs(table: dict[str, dict[str, Any]], field: str, prefix: str) -> list[dict[str, Any]]:
    return [d for d in table.values() if str(d.get(field) or "").startswith(prefix)]


def test_fees_and_a_payout_reconcile_the_clearing_account_in_both_ledgers(books: Company) -> None:
    payout = _pay_and_pay_out(books)
    summary = books.hub.engine.sync()
    with books.hub.store.transaction() as tx:
        dead = [(r.entity_type, r.target, r.last_error) for r in tx.list_outbox(status="dead")]
    assert summary.errors == [] and summary.totals().dead == 0, dead
    net, fees = Decimal(payout["amount"]) / 100, Decimal(sum(FEES)) / 100
    ids: dict[str, str] = books.ids  # type: ignore[attr-defined]

    # QuickBooks: three payments into clearing, one Transfer of the payout, one Purchase of the fees
    realm = books.qbo
    payments = list(realm.table("Payment").values())
    assert len(payments) == 3 and {p["DepositToAccountRef"]["value"] for p in payments} == {ids["Stripe clearing"]}
    (transfer,) = realm.table("Transfer").values()
    assert transfer["FromAccountRef"]["value"] == ids["Stripe clearing"]
    assert transfer["ToAccountRef"]["value"] == ids["Operating bank"] and transfer["Amount"] == net
    (purchase,) = realm.table("Purchase").values()
    assert purchase["TotalAmt"] == fees and purchase["AccountRef"]["value"] == ids["Stripe clearing"]
    (line,) = purchase["Line"]
    assert line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == ids["Stripe fees"]
    assert purchase["PrivateNote"] == transfer["PrivateNote"]
    accounts = realm.table("Account")
    assert accounts[ids["Stripe clearing"]]["CurrentBalance"] == 0  # payments - fees - transfer
    assert accounts[ids["Operating bank"]]["CurrentBalance"] == net

    # Xero: three payments to 090 (clearing), a BankTransfer 090 -> 091, a SPEND of the fees
    tenant = books.xero
    xero_payments = [p for p in tenant.table("Payments").values() if p.get("Status") != "DELETED"]
    assert len(xero_payments) == 3 and {p["Account"]["Code"] for p in xero_payments} == {"090"}
    (bank_transfer,) = tenant.table("BankTransfers").values()
    assert (bank_transfer["FromBankAccount"]["Code"], bank_transfer["ToBankAccount"]["Code"]) == ("090", "091")
    assert bank_transfer["Amount"] == net
    (spend,) = tenant.table("BankTransactions").values()
    assert spend["Type"] == "SPEND" and spend["Total"] == fees and spend["BankAccount"]["Code"] == "090"
    assert spend["LineItems"][0]["AccountCode"] == "404" and spend["Contact"]["Name"] == "Stripe"
    clearing = sum(p["Amount"] for p in xero_payments) - spend["Total"] - bank_transfer["Amount"]
    assert clearing == 0

    # the three invoices paid: their customer owes nothing in either ledger
    numbers = {books.stripe.table("invoice")[i]["number"] for i in payout["_invoices"]}
    assert len(numbers) == 3 and {customer_balances(books, n) for n in numbers} == {(0, 0)}
    hub_diff_is_clean(books, also=["payout"])
    # idempotent: a second pass writes nothing
    again = books.hub.engine.sync()
    assert again.totals().written == 0
    assert len(realm.table("Transfer")) == len(realm.table("Purchase")) == 1
    assert len(tenant.table("BankTransfers")) == len(tenant.table("BankTransactions")) == 1


def test_a_missing_fee_document_is_a_diff_finding(books: Company) -> None:
    _pay_and_pay_out(books)
    books.hub.engine.sync()
    qbo: Any = books.emus.quickbooks.emulator
    (purchase,) = books.qbo.table("Purchase").values()
    qbo.remove(books.qbo, "Purchase", purchase["Id"])  # deleted behind the hub's back
    findings = books.hub.differ.run(["payout"]).findings
    assert [(f["kind"], f["system"]) for f in findings] == [("mismatch", "quickbooks")], findings


@pytest.mark.parametrize("prefix", ["/v3/company/", "/api.xro/2.0/BankTransactions"])
def test_a_failed_answer_after_the_fee_document_was_applied_books_it_once(books: Company, prefix: str) -> None:
    _pay_and_pay_out(books)
    system = "quickbooks" if prefix.startswith("/v3") else "xero"
    # the fee document is the payout's second write: everything before it lands, it is applied
    # and answered 500 (QuickBooks: the path names the realm, so the fault is for its Purchase)
    if system == "quickbooks":
        prefix += f"{QBO_REALM}/purchase"
    answer = requests.post(books.emus.urls()[system] + "/__emulator/faults",
                           json={"apply_then_fail": 1, "path_prefix": prefix}, timeout=10)
    assert answer.status_code == 200
    books.hub.engine.sync()
    books.hub.engine.sync()
    injected = requests.get(books.emus.urls()[system] + "/__emulator/stats", timeout=10).json()["faults_injected"]
    assert sum(injected.values()) == 1, injected  # the fault did strike the fee document
    if system == "quickbooks":
        assert len(books.qbo.table("Transfer")) == len(books.qbo.table("Purchase")) == 1
        assert books.qbo.table("Account")[books.ids["Stripe clearing"]]["CurrentBalance"] == 0  # type: ignore[attr-defined]
    else:
        assert len(books.xero.table("BankTransfers")) == len(books.xero.table("BankTransactions")) == 1
    hub_diff_is_clean(books, also=["payout"])
