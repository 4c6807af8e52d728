"""More of the money-level diff end to end (issue 18, item 5): what the hub prescribes beyond a
document's amounts — the Account's billing status in Salesforce, a foreign payment's exchange
rate in each ledger, a payout's fees — planted in a system's store behind the hub's back, found,
and repaired with exactly one write."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import requests
from click.testing import CliRunner

from connectors.stripe.emulator.money import FX_TO_USD
from hub import cli
from mapping.model import decimal_str
from sync.engine import SyncSummary
from sync.repair import repair_finding
from tests.e2e.conftest import Company
from tests.e2e.test_drift import SLA, Clock, clean_sync, clocked, rebuild_hub, triples
from tests.e2e.test_payouts import FEES, _pay_and_pay_out, books

__all__ = ["books", "clocked"]  # the fixtures, shared with test_drift and test_payouts


def resync(company: Company, finding_id: str) -> dict[str, Any]:
    done = CliRunner().invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                                    finding_id, "--json"])
    assert done.exit_code == 0, done.output
    result: dict[str, Any] = json.loads(done.output)
    return result


def test_a_billing_status_changed_by_hand_in_salesforce_is_a_mismatch_and_one_write_restores_it(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    sf: Any = company.salesforce
    account = next(a for a in sorted(sf.records("Account"), key=lambda a: a["Id"])
                   if a.get("Hub_Id__c") and a.get("Billing_Status__c") == "active")
    sf.update("Account", account["Id"], {"Billing_Status__c": "canceled"})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["customer"]).findings
    # was: nothing (the diff compared a customer's name, email and balance only)
    assert triples(found) == [("mismatch", "customer", "salesforce")], found
    (finding,) = found
    assert finding["external_ids"] == [account["Id"]] and finding["canonical_id"] == account["Hub_Id__c"]
    assert finding["fields"] == {"billing_status": {"hub": "active", "salesforce": "canceled"}}

    assert resync(company, finding["id"])["written"] == 1
    restored = next(a for a in sf.records("Account") if a["Id"] == account["Id"])
    assert restored["Billing_Status__c"] == "active"
    assert company.hub.differ.run(["customer"]).findings == []


def _paid_eur_invoice(company: Company) -> str:
    """A paid EUR Stripe invoice (Stripe settles in USD, the ledgers' home currency): its number."""
    seeded = company.stripe.seed_objects({
        "customers": [{"ref": "eu", "name": "Lyon Logistique", "email": "ap@lyon.example"}],
        "invoices": [{"customer": "@eu", "currency": "eur", "status": "paid",
                      "items": [{"amount": 123_457, "description": "Annual licence"}]}]})
    assert "error" not in seeded, seeded
    (stripe_id,) = seeded["created"]["invoices"]
    return str(company.stripe.table("invoice")[stripe_id]["number"])


def _payments_of(company: Company, number: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The invoice's live payment in QuickBooks and in Xero."""
    (q_inv,) = [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number]
    (q_pay,) = [p for p in company.qbo.table("Payment").values()
                if any(t.get("TxnId") == q_inv["Id"] for line in p["Line"] for t in line.get("LinkedTxn", []))]
    (x_inv,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
    (x_pay,) = [p for p in company.xero.table("Payments").values()
                if p.get("Invoice", {}).get("InvoiceID") == x_inv["InvoiceID"] and p["Status"] != "DELETED"]
    return dict(q_pay), dict(x_pay)


def test_a_payments_exchange_rate_inverted_by_hand_is_a_rate_mismatch_in_each_ledger(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    number = _paid_eur_invoice(company)
    clean_sync(company)
    q_pay, x_pay = _payments_of(company, number)
    q_rate, x_rate = Decimal(str(q_pay["ExchangeRate"])), Decimal(str(x_pay["CurrencyRate"]))
    assert q_rate == FX_TO_USD["eur"] and x_rate == (1 / FX_TO_USD["eur"]).quantize(Decimal("0.000001"))
    qbo: Any = company.emus.quickbooks.emulator
    qbo.edit(company.qbo, "Payment", q_pay["Id"], {"ExchangeRate": str(x_rate)})  # inverted
    # Xero's API cannot edit a payment: changed in its store, as a conversion or a bad import might
    company.xero.table("Payments")[x_pay["PaymentID"]]["CurrencyRate"] = q_rate
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["payment"]).findings
    # was: nothing (a payment was compared on its amount and currency only)
    assert triples(found) == [("mismatch", "payment", "quickbooks"), ("mismatch", "payment", "xero")], found
    kinds = {f["system"]: f for f in found}
    assert kinds["quickbooks"]["external_ids"] == [q_pay["Id"]]
    assert kinds["quickbooks"]["fields"] == {"exchange_rate": {"hub": decimal_str(q_rate),
                                                               "quickbooks": decimal_str(x_rate)}}
    assert kinds["xero"]["external_ids"] == [x_pay["PaymentID"]]
    assert kinds["xero"]["fields"] == {"exchange_rate": {"hub": decimal_str(x_rate), "xero": decimal_str(q_rate)}}

    payments = len(company.qbo.table("Payment"))
    assert resync(company, kinds["quickbooks"]["id"])["written"] == 1
    q_after, _ = _payments_of(company, number)
    assert Decimal(str(q_after["ExchangeRate"])) == q_rate and q_after["Id"] == q_pay["Id"]
    assert len(company.qbo.table("Payment")) == payments  # rewritten, not posted twice

    # Xero cannot edit a payment, only delete it: the resync replaces it — the wrong one deleted,
    # the payment created again at the hub's rate — as one write
    assert resync(company, kinds["xero"]["id"])["written"] == 1
    _, x_after = _payments_of(company, number)  # the one live payment
    assert x_after["PaymentID"] != x_pay["PaymentID"] and Decimal(str(x_after["CurrencyRate"])) == x_rate
    assert company.xero.table("Payments")[x_pay["PaymentID"]]["Status"] == "DELETED"
    assert company.hub.differ.run(["payment"]).findings == []


def test_no_rate_is_compared_where_the_ledger_uses_its_own_day_rate(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    company.xero.base_currency = "GBP"  # Stripe settled in USD: no GBP rate the hub knows
    number = _paid_eur_invoice(company)
    clean_sync(company)
    _, x_pay = _payments_of(company, number)
    company.xero.table("Payments")[x_pay["PaymentID"]]["CurrencyRate"] = Decimal(str(x_pay["CurrencyRate"])) * 2
    clock.advance(SLA + timedelta(minutes=1))
    assert company.hub.differ.run(["payment"]).findings == []


def test_a_fee_document_edited_by_hand_is_a_payout_mismatch_the_day_totals_do_not_report_again(
        books: Company) -> None:
    payout = _pay_and_pay_out(books)
    clean_sync(books)
    qbo: Any = books.emus.quickbooks.emulator
    (purchase,) = books.qbo.table("Purchase").values()
    line = dict(purchase["Line"][0])
    line["Amount"] = Decimal(str(line["Amount"])) + 5
    qbo.edit(books.qbo, "Purchase", purchase["Id"], {"Line": [line]})
    assert Decimal(str(books.qbo.table("Purchase")[purchase["Id"]]["TotalAmt"])) == Decimal(sum(FEES)) / 100 + 5
    (spend,) = books.xero.table("BankTransactions").values()
    lines = [dict(item) for item in spend["LineItems"]]
    lines[0]["UnitAmount"] = Decimal(str(lines[0]["UnitAmount"])) - 3
    lines[0]["LineAmount"] = lines[0]["UnitAmount"]
    # edited in Xero's store (its lines and totals), as a bookkeeper's change in the UI leaves it
    books.xero.table("BankTransactions")[spend["BankTransactionID"]].update(
        {"LineItems": lines, "SubTotal": lines[0]["UnitAmount"], "Total": lines[0]["UnitAmount"]})
    assert books.xero.table("BankTransactions")[spend["BankTransactionID"]]["Total"] == Decimal(sum(FEES)) / 100 - 3

    found = sorted(books.hub.differ.run(["payout"]).findings, key=lambda f: f["system"])
    # one record finding each: the day's fee totals are explained by them, not reported again
    assert [(f["kind"], f["system"], f["fields"]) for f in found] == [
        ("mismatch", "quickbooks", {"fee_total": {"hub": sum(FEES), "quickbooks": sum(FEES) + 500}}),
        ("mismatch", "xero", {"fee_total": {"hub": sum(FEES), "xero": sum(FEES) - 300}})], found
    for finding in found:
        assert resync(books, finding["id"])["written"] == 1
    (after,) = books.qbo.table("Purchase").values()
    assert Decimal(str(after["TotalAmt"])) == Decimal(sum(FEES)) / 100 and after["Id"] == purchase["Id"]
    (spent,) = books.xero.table("BankTransactions").values()
    assert spent["Total"] == Decimal(sum(FEES)) / 100 and spent["BankTransactionID"] == spend["BankTransactionID"]
    (transfer,) = books.qbo.table("Transfer").values()
    assert transfer["Amount"] == Decimal(payout["amount"]) / 100
    assert len(books.xero.table("BankTransfers")) == 1
    assert books.hub.differ.run(["payout"]).findings == []


def test_a_payout_a_cent_short_in_a_ledger_is_in_the_day_totals_of_payouts(books: Company) -> None:
    payout = _pay_and_pay_out(books)
    clean_sync(books)
    qbo: Any = books.emus.quickbooks.emulator
    (transfer,) = books.qbo.table("Transfer").values()
    # a cent is within a record's per-line rounding tolerance, not within the day's (exact)
    qbo.edit(books.qbo, "Transfer", transfer["Id"], {"Amount": Decimal(payout["amount"] - 1) / 100})

    found = books.hub.differ.run(["payout"]).findings
    # was: nothing (payouts had no day totals)
    assert [(f["kind"], f["system"], f["fields"]) for f in found] == [
        ("totals", "quickbooks", {"total": {"hub": payout["amount"], "quickbooks": payout["amount"] - 1}})], found
    assert found[0]["detail"].startswith("payout totals for ")


def test_a_crash_between_deleting_and_re_creating_a_xero_payment_pays_once_and_the_next_passes_finish(
        clocked: tuple[Company, Clock]) -> None:
    """The replacement of a Xero payment is two writes (delete, create) behind one outbox item.
    Each is applied and its answer lost (a crash right after it): the invoice is never paid twice,
    and the next passes of the same item finish the job — the payment at the hub's rate, once."""
    company, clock = clocked
    number = _paid_eur_invoice(company)
    clean_sync(company)
    _, x_pay = _payments_of(company, number)
    hub_rate = Decimal(str(x_pay["CurrencyRate"]))
    company.xero.table("Payments")[x_pay["PaymentID"]]["CurrencyRate"] = FX_TO_USD["eur"]  # planted
    clock.advance(SLA + timedelta(minutes=1))
    (finding,) = [f for f in company.hub.differ.run(["payment"]).findings if f["system"] == "xero"]
    # one try per call, so a lost answer ends the pass as a crash would (no retry within it)
    text = company.config_path.read_text().replace('system = "xero"', 'system = "xero"\nmax_attempts = 1', 1)
    company.config_path.write_text(text)
    company.hub = rebuild_hub(company, clock)
    faults = requests.post(company.emus.urls()["xero"] + "/__emulator/faults",
                           json={"apply_then_fail": 2, "path_prefix": "/api.xro/2.0/Payments"}, timeout=10)
    assert faults.status_code == 200

    def live() -> list[dict[str, Any]]:
        (invoice,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
        return [p for p in company.xero.table("Payments").values()
                if p.get("Invoice", {}).get("InvoiceID") == invoice["InvoiceID"] and p["Status"] != "DELETED"]

    def waiting() -> list[Any]:
        with company.hub.store.transaction() as tx:
            return [i for i in tx.list_outbox("pending") if i.target == "xero" and i.entity_type == "payment"]

    repair_finding(company.hub, finding["id"])  # the delete lands, its answer is lost
    assert company.xero.table("Payments")[x_pay["PaymentID"]]["Status"] == "DELETED" and live() == []
    (item,) = waiting()  # the outbox still holds the whole replacement
    assert item.operation == "replace" and item.external_id == x_pay["PaymentID"]

    clock.advance(timedelta(hours=1))
    company.hub.engine.push("xero", SyncSummary(), None, entities=["payment"])  # the create lands, answer lost
    (made,) = live()
    assert Decimal(str(made["CurrencyRate"])) == hub_rate and len(waiting()) == 1

    clock.advance(timedelta(hours=1))
    summary = SyncSummary()
    company.hub.engine.push("xero", summary, None, entities=["payment"])  # finds it: nothing written twice
    assert waiting() == [] and summary.totals().written == 1
    assert [p["PaymentID"] for p in live()] == [made["PaymentID"]]  # paid once
    injected = requests.get(company.emus.urls()["xero"] + "/__emulator/stats", timeout=10).json()["faults_injected"]
    assert sum(injected.values()) == 2, injected  # both steps did lose their answers
    with company.hub.store.transaction() as tx:
        link = tx.link_for(finding["canonical_id"], "xero", "payment")
    assert link is not None and link.external_id == made["PaymentID"]
    (invoice,) = [i for i in company.xero.table("Invoices").values() if i.get("InvoiceNumber") == number]
    assert invoice["Status"] == "PAID" and invoice["AmountDue"] == 0
    assert company.hub.differ.run(["invoice", "payment"]).findings == []
