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


# --------------------------------------------------------------------------- issue 18 item 5: more plants


def balance_of(found: list[dict[str, Any]], system: str) -> list[tuple[int, str]]:
    """(ledger minus hub, currency) of each customer balance finding of ``system``, sorted."""
    return sorted((f["fields"]["balance"][system] - f["fields"]["balance"]["hub"], f["fields"]["currency"][system])
                  for f in found if f["entity"] == "customer" and f["system"] == system and "balance" in f["fields"])


def test_a_discount_changed_in_each_ledger_is_a_discount_mismatch_and_the_customers_balance(
        clocked: tuple[Company, Clock]) -> None:
    from tests.e2e.test_coupons import discounted_invoice

    company, clock = clocked
    clean_sync(company)
    invoice = discounted_invoice(company, [50_000, 33_333, 34_667],
                                 {"amount_off": 10_000, "currency": "usd", "name": "100 off"}, vat=False)
    clean_sync(company)
    clock.advance(SLA + timedelta(minutes=1))
    assert company.hub.differ.run(ENTITIES).findings == []
    qbo: Any = company.emus.quickbooks.emulator
    xero: Any = company.emus.xero.emulator
    # QuickBooks: the discount line 100.00 -> 150.00 (DiscountLineDetail amount)
    q_doc = qbo_invoice(company, invoice["number"])
    lines = [dict(line) for line in q_doc["Line"] if line["DetailType"] != "SubTotalLineDetail"]
    for line in lines:
        if line["DetailType"] == "DiscountLineDetail":
            line["Amount"] = str(Decimal(str(line["Amount"])) + 50)
    qbo.edit(company.qbo, "Invoice", q_doc["Id"], {"Line": lines})
    # Xero: the first line's DiscountAmount 50.00 more
    x_doc = xero_invoice(company, invoice["number"])
    items = [dict(line) for line in x_doc["LineItems"]]
    items[0]["DiscountAmount"] = str(Decimal(str(items[0].get("DiscountAmount") or 0)) + 50)
    xero.seed_now({"Invoices": [{"InvoiceID": x_doc["InvoiceID"], "LineItems": items}]})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["customer", "invoice"]).findings
    assert triples(found) == [("mismatch", "customer", "quickbooks"), ("mismatch", "customer", "xero"),
                              ("mismatch", "invoice", "quickbooks"), ("mismatch", "invoice", "xero")], [
        (f["kind"], f["system"], f["fields"]) for f in found]
    for system, ext in (("quickbooks", q_doc["Id"]), ("xero", x_doc["InvoiceID"])):
        (mismatch,) = [f for f in found if f["entity"] == "invoice" and f["system"] == system]
        assert mismatch["external_ids"] == [ext] and "discount" in mismatch["detail"]
        assert sorted(mismatch["fields"]) == ["amount_due", "discount", "total"], mismatch["fields"]
        assert mismatch["fields"]["discount"] == {"hub": 10_000, system: 15_000}
        assert balance_of(found, system) == [(-5_000, "USD")]  # the customer owes 50.00 less there


def test_a_payment_applied_to_another_customers_invoice_in_quickbooks_is_found_on_both_and_their_balances(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    realm = company.qbo
    qbo: Any = company.emus.quickbooks.emulator

    def usd(doc: dict[str, Any]) -> bool:
        return bool(doc.get("CurrencyRef", {}).get("value", "USD") == "USD")

    open_invoices = sorted((i for i in realm.table("Invoice").values() if usd(i) and Decimal(str(i["Balance"])) > 0
                            and Decimal(str(i["Balance"])) == Decimal(str(i["TotalAmt"]))), key=lambda i: int(i["Id"]))
    payment, wrong = next(
        (p, i) for p in sorted(realm.table("Payment").values(), key=lambda p: int(p["Id"])) if usd(p)
        and len(p["Line"]) == 1 and Decimal(str(p.get("UnappliedAmt") or 0)) == 0
        for i in open_invoices if i["CustomerRef"]["value"] != p["CustomerRef"]["value"]
        and Decimal(str(i["Balance"])) > Decimal(str(p["TotalAmt"])))
    paid_id = str(payment["Line"][0]["LinkedTxn"][0]["TxnId"])
    # a person moves the payment to another customer's open invoice
    qbo.edit(realm, "Payment", payment["Id"], {
        "CustomerRef": wrong["CustomerRef"],
        "Line": [{"Amount": payment["TotalAmt"], "LinkedTxn": [{"TxnId": wrong["Id"], "TxnType": "Invoice"}]}]})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["customer", "invoice", "payment"]).findings
    assert triples(found) == [("mismatch", "customer", "quickbooks")] * 2 + [("mismatch", "invoice", "quickbooks")] * 2, [
        (f["kind"], f["entity"], f["fields"]) for f in found]
    amount = int(Decimal(str(payment["TotalAmt"])) * 100)
    invoices = {f["external_ids"][0]: f["fields"] for f in found if f["entity"] == "invoice"}
    assert sorted(invoices) == sorted([paid_id, wrong["Id"]])
    assert invoices[paid_id]["status"] == {"hub": "paid", "quickbooks": "open"}
    assert invoices[paid_id]["amount_due"]["quickbooks"] - invoices[paid_id]["amount_due"]["hub"] == amount
    assert invoices[wrong["Id"]]["amount_paid"]["quickbooks"] - invoices[wrong["Id"]]["amount_paid"]["hub"] == amount
    # the one whose invoice is paid owes it again, the other owes that much less
    assert balance_of(found, "quickbooks") == [(-amount, "USD"), (amount, "USD")]
    balances = {f["external_ids"][0] for f in found if f["entity"] == "customer"}
    assert balances == {payment["CustomerRef"]["value"], wrong["CustomerRef"]["value"]}
    # neither is the hub's to push: the resync refuses and points at the payment
    runner = CliRunner()
    for f in found:
        refused = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding", f["id"]])
        assert refused.exit_code == 2 and "payment" in refused.output, refused.output


def test_a_payment_deleted_in_xero_is_a_broken_payment_an_invoice_owing_and_the_balance_and_one_resync_repairs_it(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    xero: Any = company.emus.xero.emulator
    billed: dict[str, set[str]] = {}  # a contact billed in USD only: its balance is one currency's
    for doc in company.xero.table("Invoices").values():
        billed.setdefault(doc["Contact"]["ContactID"], set()).add(doc["CurrencyCode"])
    payment = next(p for _k, p in sorted(company.xero.table("Payments").items())
                   if p["Status"] == "AUTHORISED" and p.get("Invoice", {}).get("CurrencyCode") == "USD"
                   and billed[p["Invoice"]["Contact"]["ContactID"]] == {"USD"})
    invoice_id = payment["Invoice"]["InvoiceID"]
    xero.seed_now({"Payments": [{"PaymentID": payment["PaymentID"], "Status": "DELETED"}]})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(ENTITIES).findings
    assert triples(found) == [("broken_link", "payment", "xero"), ("mismatch", "customer", "xero"),
                              ("mismatch", "invoice", "xero")], [(f["kind"], f["entity"], f["fields"]) for f in found]
    kinds = by_kind(found)
    owing = kinds[("mismatch", "invoice", "xero")]
    assert owing["external_ids"] == [invoice_id]
    assert sorted(owing["fields"]) == ["amount_due", "amount_paid", "status"]
    assert owing["fields"]["status"] == {"hub": "paid", "xero": "open"}
    amount = int(payment["Amount"] * 100)
    assert balance_of(found, "xero") == [(amount, "USD")]
    runner = CliRunner()
    done = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                               kinds[("broken_link", "payment", "xero")]["id"], "--json"])
    assert done.exit_code == 0 and json.loads(done.output)["written"] == 1, done.output
    live = [p for p in company.xero.table("Payments").values()
            if p.get("Invoice", {}).get("InvoiceID") == invoice_id and p["Status"] == "AUTHORISED"]
    assert len(live) == 1 and live[0]["Amount"] == payment["Amount"]  # written once
    assert company.xero.table("Invoices")[invoice_id]["Status"] == "PAID"
    assert company.hub.differ.run(ENTITIES).findings == []


def test_a_credit_entered_by_hand_in_each_ledger_is_an_orphan_and_the_customers_balance(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    qbo: Any = company.emus.quickbooks.emulator
    xero: Any = company.emus.xero.emulator
    with company.hub.store.transaction() as tx:
        linked = {link.external_id for link in tx.links_in("quickbooks", "customer")}
        contacts = {link.external_id for link in tx.links_in("xero", "customer")}
    q_customer = next(c for _k, c in sorted(company.qbo.table("Customer").items(), key=lambda kv: int(kv[0]))
                      if c["Id"] in linked and c.get("CurrencyRef", {}).get("value") == "USD")
    owed_before = Decimal(str(q_customer.get("Balance") or 0))
    memo = qbo.save(company.qbo, "CreditMemo", {
        "CustomerRef": {"value": q_customer["Id"]}, "Line": [{
            "Amount": "25.00", "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}]})
    # a contact billed in USD only (Xero's balance is the raw sum of every currency's documents)
    billed: dict[str, set[str]] = {}
    for doc in company.xero.table("Invoices").values():
        billed.setdefault(doc["Contact"]["ContactID"], set()).add(doc["CurrencyCode"])
    x_contact = next(company.xero.table("Contacts")[cid] for cid in sorted(billed)
                     if cid in contacts and billed[cid] == {"USD"})
    (note,) = xero.seed_now({"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "CurrencyCode": "USD", "Contact": {"ContactID": x_contact["ContactID"]},
        "LineItems": [{"Description": "Goodwill", "Quantity": 1, "UnitAmount": "40.00", "AccountCode": "200",
                       "TaxType": "NONE"}]}]})["CreditNotes"]
    # the emulator keeps the balance as QuickBooks does: the memo's credit is the customer's
    assert Decimal(str(company.qbo.table("Customer")[q_customer["Id"]]["Balance"])) == owed_before - 25
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["customer", "credit_note"]).findings
    assert triples(found) == [("mismatch", "customer", "quickbooks"), ("mismatch", "customer", "xero"),
                              ("orphan", "credit_note", "quickbooks"), ("orphan", "credit_note", "xero")], [
        (f["kind"], f["entity"], f["system"], f["fields"]) for f in found]
    assert sorted(f["external_ids"][0] for f in found if f["kind"] == "orphan") == sorted([memo["Id"], note])
    assert balance_of(found, "quickbooks") == [(-2_500, "USD")]
    assert balance_of(found, "xero") == [(-4_000, "USD")]
    (q_balance,) = [f for f in found if f["entity"] == "customer" and f["system"] == "quickbooks"]
    assert q_balance["external_ids"] == [q_customer["Id"]] and "25.00 USD less owed in quickbooks" in q_balance["detail"]
