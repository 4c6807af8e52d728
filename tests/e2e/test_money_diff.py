"""The money-level diff end to end (issue 18, item 5): voids compared as voids, money defects
planted in the ledgers' stores behind the hub's back, and repairs that never un-void."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from click.testing import CliRunner

from hub import cli
from sync.repair import repair_finding, resync_since
from tests.e2e.conftest import Company
from tests.e2e.test_drift import ENTITIES, SLA, Clock, by_kind, clean_sync, clocked, triples
from tests.e2e.test_scenarios import canonical, qbo_invoice, xero_invoice

__all__ = ["clocked"]  # the fixture, shared with test_drift

INVOICES = ["invoice"]


def open_usd_invoice(company: Company) -> dict[str, Any]:
    """An open USD Stripe invoice with nothing paid, with a single line."""
    return next(v for _k, v in sorted(company.stripe.table("invoice").items())
                if v["status"] == "open" and v["currency"] == "usd" and v["amount_paid"] == 0)


def test_a_stripe_void_is_void_in_both_ledgers_and_no_drift_and_a_resync_never_unvoids_it(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    invoice = open_usd_invoice(company)
    company.stripe.transition(invoice["id"], "void")
    clean_sync(company)
    assert xero_invoice(company, invoice["number"])["Status"] == "VOIDED"
    assert Decimal(str(qbo_invoice(company, invoice["number"])["TotalAmt"])) == 0
    clock.advance(SLA + timedelta(minutes=1))
    # was: broken_link in Xero (a VOIDED invoice read as a deletion)
    assert company.hub.differ.run(ENTITIES).findings == []
    # hub resync --entity invoice --since: the void is pushed as a void (was an upsert that
    # brought the QuickBooks receivable back)
    summary = resync_since(company.hub, "invoice", datetime(2000, 1, 1))
    with company.hub.store.transaction() as tx:
        dead = [(i.target, i.entity_type, i.operation, i.last_error) for i in tx.list_outbox("dead", limit=100)]
    assert summary.errors == [] and summary.totals().dead == 0, dead
    qbo = qbo_invoice(company, invoice["number"])
    assert Decimal(str(qbo["TotalAmt"])) == 0 and str(qbo.get("PrivateNote", "")).startswith("Voided")
    assert xero_invoice(company, invoice["number"])["Status"] == "VOIDED"
    assert company.hub.differ.run(ENTITIES).findings == []


def test_money_planted_in_the_ledgers_is_found_repaired_with_one_write_and_voids_are_refused(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    qbo: Any = company.emus.quickbooks.emulator
    xero: Any = company.emus.xero.emulator
    invoices = sorted((v for v in company.stripe.table("invoice").values()
                       if v["status"] == "open" and v["currency"] == "usd" and v["amount_paid"] == 0),
                      key=lambda v: v["id"])
    taxed, voided_qbo, taxed_xero, voided_xero = invoices[:4]
    # QuickBooks: the tax changed by 5.00 (the ledger recomputes total and balance)
    q_taxed = qbo_invoice(company, taxed["number"])
    tax = Decimal(str((q_taxed.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    qbo.edit(company.qbo, "Invoice", q_taxed["Id"], {"TxnTaxDetail": {"TotalTax": str(tax + 5)}})
    # QuickBooks and Xero: an invoice voided by hand
    q_void = qbo_invoice(company, voided_qbo["number"])
    qbo.void(company.qbo, "Invoice", {"Id": q_void["Id"], "SyncToken": q_void["SyncToken"]})
    x_void = xero_invoice(company, voided_xero["number"])
    xero.seed_now({"Invoices": [{"InvoiceID": x_void["InvoiceID"], "Status": "VOIDED"}]})
    # Xero: a line's tax amount changed by 5.00
    x_taxed = xero_invoice(company, taxed_xero["number"])
    lines = [dict(line) for line in x_taxed["LineItems"]]
    lines[0]["TaxAmount"] = str(Decimal(str(lines[0].get("TaxAmount") or 0)) + 5)
    xero.seed_now({"Invoices": [{"InvoiceID": x_taxed["InvoiceID"], "LineItems": lines}]})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(INVOICES).findings
    assert triples(found) == [("broken_link", "invoice", "quickbooks"), ("broken_link", "invoice", "xero"),
                              ("mismatch", "invoice", "quickbooks"), ("mismatch", "invoice", "xero")], [
        (f["kind"], f["system"], f["fields"]) for f in found]
    kinds = by_kind(found)
    q_mismatch, x_mismatch = kinds[("mismatch", "invoice", "quickbooks")], kinds[("mismatch", "invoice", "xero")]
    assert q_mismatch["external_ids"] == [q_taxed["Id"]]
    assert q_mismatch["fields"]["tax"]["quickbooks"] - q_mismatch["fields"]["tax"]["hub"] == 500
    assert sorted(q_mismatch["fields"]) == ["amount_due", "tax", "total"]
    assert x_mismatch["fields"]["tax"]["xero"] - x_mismatch["fields"]["tax"]["hub"] == 500
    for system, ext in (("quickbooks", q_void["Id"]), ("xero", x_void["InvoiceID"])):
        broken = kinds[("broken_link", "invoice", system)]
        assert broken["external_ids"] == [ext] and broken["fields"]["status"][system] == "void"
        assert "void it in Stripe too, or re-issue the invoice in Stripe" in broken["detail"]

    # a void is refused on the command line (exit 2), nothing written, nothing un-voided
    runner = CliRunner()
    before = company.stats()
    for system in ("quickbooks", "xero"):
        refused = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                                      kinds[("broken_link", "invoice", system)]["id"]])
        assert refused.exit_code == 2 and "re-issue the invoice in Stripe" in refused.output, refused.output
    assert company.stats() == before
    assert Decimal(str(company.qbo.table("Invoice")[q_void["Id"]]["TotalAmt"])) == 0
    # the tax ones: one ledger write each
    for key in (("mismatch", "invoice", "quickbooks"), ("mismatch", "invoice", "xero")):
        done = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                                   kinds[key]["id"], "--json"])
        assert done.exit_code == 0 and json.loads(done.output)["written"] == 1, done.output
    after = company.hub.differ.run(INVOICES).findings
    assert triples(after) == [("broken_link", "invoice", "quickbooks"), ("broken_link", "invoice", "xero")]
    # the owner decides: voided in Stripe too, the findings resolve and nothing else is written
    for invoice in (voided_qbo, voided_xero):
        company.stripe.transition(invoice["id"], "void")
    clean_sync(company)
    clock.advance(SLA + timedelta(minutes=1))
    assert company.hub.differ.run(ENTITIES).findings == []
    assert canonical(company, "stripe", "invoice", voided_qbo["id"])


def test_a_payment_deleted_in_quickbooks_is_a_broken_payment_and_an_invoice_owing_again(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    qbo: Any = company.emus.quickbooks.emulator
    payment = next(p for _k, p in sorted(company.qbo.table("Payment").items(), key=lambda kv: int(kv[0]))
                   if p.get("CurrencyRef", {}).get("value", "USD") == "USD")
    invoice_id = str(payment["Line"][0]["LinkedTxn"][0]["TxnId"])
    qbo.remove(company.qbo, "Payment", payment["Id"])
    clock.advance(SLA + timedelta(minutes=1))
    found = by_kind(company.hub.differ.run(["invoice", "payment"]).findings)
    assert sorted(found) == [("broken_link", "payment", "quickbooks"), ("mismatch", "invoice", "quickbooks")]
    owing = found[("mismatch", "invoice", "quickbooks")]
    assert owing["external_ids"] == [invoice_id]
    assert sorted(owing["fields"]) == ["amount_due", "amount_paid", "status"]
    assert owing["fields"]["status"] == {"hub": "paid", "quickbooks": "open"}
    # the invoice is not the thing to push: the resync says so and writes nothing
    runner = CliRunner()
    refused = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding", owing["id"]])
    assert refused.exit_code == 2 and "payment" in refused.output
    done = repair_finding(company.hub, found[("broken_link", "payment", "quickbooks")]["id"])
    assert done.summary is not None and done.summary.totals().written == 1
    assert company.hub.differ.run(["invoice", "payment"]).findings == []
