"""Drift detection end to end: the four emulators, the real SDKs, and exactly the planted findings.

One of every finding kind is planted behind the hub's back after a clean sync:

* duplicate   — a QuickBooks customer created again by hand (same email);
* broken_link — a Xero invoice the hub wrote, voided by hand (a void, never read as a deletion;
                no resync undoes it: the owner voids or re-issues it);
* mismatch    — an invoice amount edited in QuickBooks;
* orphan      — a Xero contact entered by hand that matches nothing;
* missing     — a new Stripe refund whose Xero credit note write was lost (its outbox intent dropped);
* stale       — a Stripe email change taken into the hub while its pushes were dropped, seen after
                the hub clock moved past ``stale_sla_minutes``;
* totals      — several QuickBooks payments of one day each one cent short: every record is within
                the one-minor-unit tolerance, the day's sum is not.

The hub clock is a controlled one (``StateStore(clock=...)``); nothing sleeps.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub import cli
from state.crypto import Cipher
from state.store import StateStore
from sync.alerts import findings_alert, raise_alerts
from sync.config import load_config
from sync.diff import Differ, Tolerances
from sync.diff_balance import hub_balances
from sync.engine import SyncSummary
from sync.findings import KINDS, DiffResult
from sync.repair import RepairError, repair_finding
from sync.runtime import Hub
from tests.e2e.conftest import Company, start_company

ENTITIES = ["customer", "product", "invoice", "payment", "refund", "credit_note"]
SLA = timedelta(minutes=60)  # stale_sla_minutes in the generated config


class Clock:
    """The hub's clock, moved only on purpose."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Planted:
    duplicate_of: str = ""  # the linked QuickBooks customer id
    duplicate: str = ""  # the copy made by hand
    voided_xero_invoice: str = ""
    edited_qbo_invoice: str = ""
    edited_qbo_lines: list[dict[str, Any]] = field(default_factory=list)  # before the edit
    orphan_contact: str = ""
    missing_refund: str = ""  # canonical id
    stale_customer: str = ""  # canonical id
    stale_email: str = ""  # the new Stripe email
    short_payments: list[str] = field(default_factory=list)  # QuickBooks payment ids
    short_day: str = ""
    balances: int = 0  # customer balance findings the plants cause
    xero_balances: int = 0  # of which in Xero
    expected: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[Company, Clock]]:
    with clocked_company(tmp_path) as pair:
        yield pair


@contextmanager
def clocked_company(tmp_path: Path, *, customers: int = 30, invoices: int = 60) -> Iterator[tuple[Company, Clock]]:
    """A seeded company whose hub runs on a clock the test moves (starting where the seeded
    emulators' clocks stand); stopped afterwards. The fixture of every test that pins time."""
    company = start_company(tmp_path, customers=customers, invoices=invoices)
    clock = Clock(company.stripe.clock.now())
    try:
        # (the emulators' config sets Salesforce's email_field, so billing emails are written there)
        company.hub = rebuild_hub(company, clock)
        yield company, clock
    finally:
        company.hub.close()
        company.emus.stop()


def rebuild_hub(company: Company, clock: Clock) -> Hub:
    """The company's hub again, on a store whose clock the test controls."""
    company.hub.close()
    config = load_config(company.config_path)
    cipher = Cipher(config.encryption_key) if config.encryption_key else None
    store = StateStore(config.state_url, cipher=cipher, clock=clock)
    return Hub.from_config(config, store)


def triples(findings: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((f["kind"], f["entity"], f["system"]) for f in findings)


def qbo_money(value: Any) -> Decimal:
    return Decimal(str(value))


def clean_sync(company: Company) -> None:
    summary = company.hub.engine.sync()
    assert summary.errors == [] and summary.totals().dead == 0, summary.errors


def push_everything_but(company: Company, lost: set[tuple[str, str]]) -> None:
    """Push the pending writes, except the (canonical id, target) intents that are lost."""
    with company.hub.store.transaction() as tx:
        for item in tx.list_outbox("pending", limit=10_000):
            if (item.canonical_id, item.target) in lost or (item.canonical_id, "*") in lost:
                tx.drop_outbox(item.id)
    for name in company.hub.connectors:
        company.hub.engine.push(name, SyncSummary(), None)


def plant_everything(company: Company, clock: Clock) -> Planted:
    hub, planted = company.hub, Planted()
    stripe_api: Any = hub.connectors["stripe"].api  # type: ignore[attr-defined]
    # -- stale: an email change in Stripe, taken in while every push of it is lost
    with hub.store.transaction() as tx:
        stripe_links = {link.external_id: link.canonical_id for link in tx.links_in("stripe", "customer")}
    qbo_customers = sorted(company.qbo.table("Customer").values(), key=lambda c: int(c["Id"]))
    victim = sorted(company.stripe.table("customer").values(), key=lambda c: c["id"])[5]
    planted.stale_customer = stripe_links[victim["id"]]
    planted.stale_email = "accounts-" + victim["email"]
    stripe_api.call(lambda c: c.v1.customers.update(victim["id"], {"email": planted.stale_email}))
    # -- missing: a new Stripe refund; its Xero credit note is never written
    refunded = {r["payment_intent"] for r in company.stripe.table("refund").values()}
    intents = sorted(pid for pid, pi in company.stripe.table("payment_intent").items()
                     if pi.get("status") == "succeeded" and pid not in refunded)
    refund = stripe_api.call(lambda c: c.v1.refunds.create({"payment_intent": intents[0], "amount": 500}))
    summary = hub.engine.sync(systems=["stripe"])  # pull only; the pushes are decided below
    assert summary.errors == []
    with hub.store.transaction() as tx:
        planted.missing_refund = tx.canonical_for("stripe", "refund", refund.id) or ""
    assert planted.missing_refund
    push_everything_but(company, {(planted.stale_customer, "*"), (planted.missing_refund, "xero")})
    # -- duplicate: a QuickBooks customer created again by hand (not the stale one)
    qbo: Any = company.emus.quickbooks.emulator
    realm = company.qbo
    with hub.store.transaction() as tx:
        stale_qbo = tx.link_for(planted.stale_customer, "quickbooks", "customer")
    assert stale_qbo is not None
    original = next(c for c in qbo_customers if c["Id"] != stale_qbo.external_id)
    copy = qbo.save(realm, "Customer", {"DisplayName": original["DisplayName"] + " (2)",
                                        "PrimaryEmailAddr": original["PrimaryEmailAddr"]})
    planted.duplicate_of, planted.duplicate = original["Id"], copy["Id"]
    # -- mismatch: an invoice line edited in QuickBooks (+100.00)
    invoices = sorted(realm.table("Invoice").values(), key=lambda i: int(i["Id"]))
    edited = next(i for i in invoices[len(invoices) // 2:]
                  if i.get("CurrencyRef", {}).get("value", "USD") == "USD")
    planted.edited_qbo_invoice = edited["Id"]
    planted.edited_qbo_lines = [dict(line) for line in edited["Line"]]
    qbo.edit(realm, "Invoice", edited["Id"], {"Line": bumped(edited["Line"], Decimal("100"))})
    # -- totals: three USD payments of one day, each one cent short (within tolerance)
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payment in realm.table("Payment").values():
        if payment.get("CurrencyRef", {}).get("value", "USD") == "USD":
            by_day[payment["TxnDate"]].append(payment)
    planted.short_day = max(sorted(by_day), key=lambda d: len(by_day[d]))
    assert len(by_day[planted.short_day]) >= 3
    for payment in sorted(by_day[planted.short_day], key=lambda p: int(p["Id"]))[:3]:
        # one cent over, left unapplied: a cent short on an invoice would leave it owing (drift
        # of its own, an invoice mismatch on amount due), a cent unapplied leaves the invoices be
        amount = qbo_money(payment["TotalAmt"]) + Decimal("0.01")
        qbo.edit(realm, "Payment", payment["Id"], {"TotalAmt": str(amount)})
        planted.short_payments.append(payment["Id"])
    # -- broken_link: an authorised, unpaid Xero invoice voided by hand
    xero: Any = company.emus.xero.emulator
    victim_invoice = next(i for i in sorted(company.xero.table("Invoices").values(), key=lambda i: i["InvoiceID"])
                          if i["Status"] == "AUTHORISED" and not qbo_money(i.get("AmountPaid") or 0))
    xero.seed_now({"Invoices": [{"InvoiceID": victim_invoice["InvoiceID"], "Status": "VOIDED"}]})
    planted.voided_xero_invoice = victim_invoice["InvoiceID"]
    # -- orphan: a Xero contact entered by hand
    created = xero.seed_now({"Contacts": [{"Name": "Walk-in customer (entered by hand)",
                                           "EmailAddress": "walkin@example.org"}]})
    planted.orphan_contact = created["Contacts"][0]
    clock.advance(SLA + timedelta(minutes=1))  # the lost pushes are now past the SLA
    # each plant that moves what a customer owes is also that customer's balance (issue 18): the
    # edited invoice's and the cent-over payments' customers in QuickBooks, the voided one's in Xero
    qbo_owing = {realm.table("Payment")[p]["CustomerRef"]["value"] for p in planted.short_payments}
    qbo_owing.add(realm.table("Invoice")[planted.edited_qbo_invoice]["CustomerRef"]["value"])
    # (Xero's contact balance is compared where the hub's customer owes in one currency only)
    with hub.store.transaction() as tx:
        voided = tx.canonical_for("xero", "invoice", planted.voided_xero_invoice)
        stored = tx.get_entity(voided) if voided else None
        owing = hub_balances(tx).get(getattr(stored.entity() if stored else None, "customer_id", ""), {})
    xero_owing = 1 if sum(1 for v in owing.values() if v) == 1 else 0
    planted.balances, planted.xero_balances = len(qbo_owing) + xero_owing, xero_owing
    planted.expected = sorted([
        ("broken_link", "invoice", "xero"), ("duplicate", "customer", "quickbooks"),
        ("mismatch", "invoice", "quickbooks"), ("missing", "refund", "xero"), ("orphan", "customer", "xero"),
        ("stale", "customer", "quickbooks"), ("stale", "customer", "salesforce"), ("stale", "customer", "xero"),
        ("totals", "payment", "quickbooks"), *[("mismatch", "customer", "quickbooks")] * len(qbo_owing),
        *[("mismatch", "customer", "xero")] * xero_owing])
    return planted


def bumped(lines: list[dict[str, Any]], by: Decimal) -> list[dict[str, Any]]:
    """Invoice lines with the first sales line's amount changed (unit price follows)."""
    result = [dict(line) for line in lines]
    first = next(line for line in result if line.get("DetailType") == "SalesItemLineDetail")
    detail = dict(first["SalesItemLineDetail"])
    first["Amount"] = str(qbo_money(first["Amount"]) + by)
    detail["UnitPrice"] = str(qbo_money(first["Amount"]) / qbo_money(detail.get("Qty", 1)))
    first["SalesItemLineDetail"] = detail
    return result


def is_balance(finding: dict[str, Any]) -> bool:
    """A customer's open balance finding (one per customer whose documents a plant moved)."""
    return finding["entity"] == "customer" and "balance" in finding["fields"]


def by_kind(findings: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The findings by (kind, entity, system), balance findings left out (see ``is_balance``)."""
    result = {}
    for f in findings:
        if is_balance(f):
            continue
        key = (f["kind"], f["entity"], f["system"])
        assert key not in result, f"two findings {key}"
        result[key] = f
    return result


# --------------------------------------------------------------------------- the seeded scenario


def test_every_planted_problem_is_one_finding_and_a_clean_sync_reports_none(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    clean = company.hub.differ.run(ENTITIES)
    assert clean.findings == [] and clean.new == 0
    assert clean.compared["xero:refund"] == company.facts.refunds
    planted = plant_everything(company, clock)

    result = company.hub.differ.run(ENTITIES)
    assert triples(result.findings) == planted.expected, [(f["kind"], f["detail"]) for f in result.findings]
    assert result.new == len(planted.expected)
    found = by_kind(result.findings)
    assert found[("duplicate", "customer", "quickbooks")]["external_ids"] == sorted(
        [planted.duplicate_of, planted.duplicate])
    assert found[("broken_link", "invoice", "xero")]["external_ids"] == [planted.voided_xero_invoice]
    mismatch = found[("mismatch", "invoice", "quickbooks")]
    assert mismatch["external_ids"] == [planted.edited_qbo_invoice]
    total = mismatch["fields"]["total"]
    assert total["quickbooks"] - total["hub"] == 10_000  # +100.00 in minor units, never a float
    assert found[("orphan", "customer", "xero")]["external_ids"] == [planted.orphan_contact]
    assert found[("missing", "refund", "xero")]["canonical_id"] == planted.missing_refund
    for system in ("quickbooks", "salesforce", "xero"):  # every push of the change was lost
        stale = found[("stale", "customer", system)]
        assert stale["canonical_id"] == planted.stale_customer
        assert stale["fields"]["email"]["hub"] == planted.stale_email
        assert stale["fields"]["email"][system] != planted.stale_email
    totals = found[("totals", "payment", "quickbooks")]
    assert planted.short_day in totals["detail"] and totals["fields"]["total"]["quickbooks"] - (
        totals["fields"]["total"]["hub"]) == 3
    json.dumps(result.to_json())  # the report is plain JSON
    assert result.to_json()["summary"] == {k: sum(1 for t in planted.expected if t[0] == k) for k in KINDS}


def test_a_second_run_keeps_one_finding_per_problem_and_a_fix_resolves_it(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    planted = plant_everything(company, clock)
    first = company.hub.differ.run(ENTITIES)
    clock.advance(timedelta(hours=1))
    second = company.hub.differ.run(ENTITIES)
    assert second.new == 0 and second.resolved == 0
    assert sorted(f["id"] for f in second.findings) == sorted(f["id"] for f in first.findings)
    for f in second.findings:
        assert f["first_seen"] < f["last_seen"]
    # fix one problem at its place (the QuickBooks invoice gets its lines back): it resolves
    qbo: Any = company.emus.quickbooks.emulator
    qbo.edit(company.qbo, "Invoice", planted.edited_qbo_invoice, {"Line": planted.edited_qbo_lines})
    third = company.hub.differ.run(ENTITIES)
    # the invoice and its customer's balance (no cent-over payment is that customer's)
    assert third.resolved == 2 and third.new == 0
    assert ("mismatch", "invoice", "quickbooks") not in by_kind(third.findings)
    assert len(third.findings) == len(planted.expected) - 2
    with company.hub.store.transaction() as tx:
        fixed = [f for f in tx.list_findings(status="resolved")]
    assert triples([f.to_json() for f in fixed]) == [("mismatch", "customer", "quickbooks"),
                                                     ("mismatch", "invoice", "quickbooks")]
    # an acknowledged finding stays acknowledged while it is still seen
    orphan = by_kind(third.findings)[("orphan", "customer", "xero")]
    with company.hub.store.transaction() as tx:
        tx.ack_finding(orphan["id"])
    fourth = company.hub.differ.run(ENTITIES)
    assert by_kind(fourth.findings)[("orphan", "customer", "xero")]["status"] == "acknowledged"


# --------------------------------------------------------------------------- repair on request


def test_resync_repairs_what_the_hub_can_and_the_next_diff_is_clean(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    planted = plant_everything(company, clock)
    found = by_kind(company.hub.differ.run(ENTITIES).findings)
    qbo_customers_before = set(company.qbo.table("Customer"))
    xero_contacts_before = set(company.xero.table("Contacts"))

    # a dry run says what it would do and writes nothing
    mismatch = found[("mismatch", "invoice", "quickbooks")]
    before = company.stats()
    plan = repair_finding(company.hub, mismatch["id"], dry_run=True)
    assert plan.summary is None and plan.actions and company.stats() == before

    # missing, mismatch, stale: the canonical truth is pushed again, and the record compared again
    # at once: its finding resolves without waiting for the next diff (issue 21, item 2)
    pushed = [("missing", "refund", "xero"), ("mismatch", "invoice", "quickbooks"),
              ("stale", "customer", "quickbooks"), ("stale", "customer", "salesforce"),
              ("stale", "customer", "xero")]
    for key in pushed:
        done = repair_finding(company.hub, found[key]["id"])
        assert done.summary is not None and done.summary.totals().written == 1, (key, done.actions)
        assert done.recheck is not None and done.recheck.compared, (key, done.actions)
        with company.hub.store.transaction() as tx:
            assert tx.get_finding(found[key]["id"]).status == "resolved", (key, done.actions)
    edited = company.qbo.table("Invoice")[planted.edited_qbo_invoice]
    assert sum(qbo_money(line["Amount"]) for line in edited["Line"] if line.get("DetailType") ==
               "SalesItemLineDetail") == sum(qbo_money(line["Amount"]) for line in planted.edited_qbo_lines
                                             if line.get("DetailType") == "SalesItemLineDetail")
    stale_qbo = next(c for c in company.qbo.table("Customer").values()
                     if c.get("PrimaryEmailAddr", {}).get("Address") == planted.stale_email)
    assert stale_qbo["Id"] in qbo_customers_before  # updated in place, not created again
    assert any(cn.get("Reference") == f"refund:{planted.missing_refund}"
               for cn in company.xero.table("CreditNotes").values())

    # duplicate and orphan: link (or keep) the record the user picks; nothing is deleted
    with pytest.raises(RepairError, match="--keep"):
        repair_finding(company.hub, found[("duplicate", "customer", "quickbooks")]["id"])
    repair_finding(company.hub, found[("duplicate", "customer", "quickbooks")]["id"], keep=planted.duplicate_of)
    repair_finding(company.hub, found[("orphan", "customer", "xero")]["id"], keep=planted.orphan_contact)
    assert set(company.qbo.table("Customer")) == qbo_customers_before  # both copies still there
    assert company.qbo.table("Customer")[planted.duplicate]["Active"] is not False
    assert set(company.xero.table("Contacts")) == xero_contacts_before
    with company.hub.store.transaction() as tx:
        assert tx.canonical_for("quickbooks", "customer", planted.duplicate_of) is not None
        assert tx.canonical_for("quickbooks", "customer", planted.duplicate) is None

    # a totals finding names no single record: the fix is in the ledger (the short payments)
    with pytest.raises(RepairError, match="record findings"):
        repair_finding(company.hub, found[("totals", "payment", "quickbooks")]["id"])
    qbo: Any = company.emus.quickbooks.emulator
    for payment_id in planted.short_payments:
        payment = company.qbo.table("Payment")[payment_id]
        amount = qbo_money(payment["TotalAmt"]) - Decimal("0.01")
        qbo.edit(company.qbo, "Payment", payment_id, {"TotalAmt": str(amount)})

    after = company.hub.differ.run(ENTITIES)
    # everything repaired is resolved; the voided Xero invoice nobody repaired is still reported,
    # and so is its customer's balance in Xero
    left = [("broken_link", "invoice", "xero"), *[("mismatch", "customer", "xero")] * planted.xero_balances]
    assert triples(after.findings) == left, [
        (f["kind"], f["entity"], f["system"], f["detail"]) for f in after.findings]
    # the duplicate and the orphan were resolved by the repair, the pushed ones by its re-check
    assert after.resolved == len(planted.expected) - 2 - len(pushed) - len(left)
    clock.advance(timedelta(hours=2))
    again = company.hub.differ.run(ENTITIES)
    assert triples(again.findings) == left  # kept ones stay settled
    assert again.new == 0


def test_resync_of_an_invoice_voided_in_the_ledger_refuses_and_writes_nothing(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    planted = plant_everything(company, clock)
    found = by_kind(company.hub.differ.run(ENTITIES).findings)
    broken = found[("broken_link", "invoice", "xero")]
    assert broken["fields"] == {"status": {"hub": "live", "xero": "void"}}
    invoices_before = set(company.xero.table("Invoices"))
    before = company.stats()
    # a void is never undone and no second document is guessed: the owner decides (issue 18)
    with pytest.raises(RepairError, match="void it in Stripe too, or re-issue the invoice in Stripe"):
        repair_finding(company.hub, broken["id"])
    assert company.stats() == before and set(company.xero.table("Invoices")) == invoices_before
    assert company.xero.table("Invoices")[planted.voided_xero_invoice]["Status"] == "VOIDED"
    assert ("broken_link", "invoice", "xero") in by_kind(company.hub.differ.run(ENTITIES).findings)


def test_hub_resync_finding_on_the_command_line(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    planted = plant_everything(company, clock)
    found = by_kind(company.hub.differ.run(ENTITIES).findings)
    runner = CliRunner()
    config = ["--config", str(company.config_path)]
    stale = found[("stale", "customer", "xero")]

    dry = runner.invoke(cli, [*config, "resync", "--finding", stale["id"][:12], "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["dry_run"] is True
    done = runner.invoke(cli, [*config, "resync", "--finding", stale["id"][:12], "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["written"] == 1
    contact = next(c for c in company.xero.table("Contacts").values()
                   if c.get("EmailAddress") == planted.stale_email)
    assert contact["ContactStatus"] == "ACTIVE"

    refused = runner.invoke(cli, [*config, "resync", "--finding", found[("orphan", "customer", "xero")]["id"]])
    assert refused.exit_code == 2 and "--keep" in refused.output
    kept = runner.invoke(cli, [*config, "resync", "--finding", found[("duplicate", "customer", "quickbooks")]["id"],
                               "--keep", planted.duplicate_of])
    assert kept.exit_code == 0, kept.output
    assert planted.duplicate in company.qbo.table("Customer")

    after = by_kind(company.hub.differ.run(ENTITIES).findings)
    assert ("stale", "customer", "xero") not in after
    assert ("duplicate", "customer", "quickbooks") not in after
    assert ("stale", "customer", "quickbooks") in after  # only what was repaired is gone


# --------------------------------------------------------------------------- tolerances


def test_per_line_rounding_within_tolerance_is_no_finding_and_beyond_it_is(clocked: tuple[Company, Clock]) -> None:
    company, _clock = clocked
    clean_sync(company)
    qbo: Any = company.emus.quickbooks.emulator
    realm = company.qbo
    # an open one-line USD invoice: its tax tolerance is one minor unit (QuickBooks may round
    # tax per line; its total and balance follow its own tax, nothing else is excused)
    invoice = next(i for i in sorted(realm.table("Invoice").values(), key=lambda i: int(i["Id"]))
                   if i.get("CurrencyRef", {}).get("value", "USD") == "USD" and i["Balance"] == i["TotalAmt"]
                   and sum(1 for line in i["Line"] if line.get("DetailType") == "SalesItemLineDetail") == 1)
    tax = qbo_money((invoice.get("TxnTaxDetail") or {}).get("TotalTax") or 0)
    # the ledger's own rounding moves the day's sum too: a day tolerance is configured with it
    rounding = Tolerances(line_rounding_minor=1, totals_minor=1, stale_sla=SLA)
    differ = Differ(company.hub.store, company.hub.connectors, company.hub.routing, rounding)

    qbo.edit(realm, "Invoice", invoice["Id"], {"TxnTaxDetail": {"TotalTax": str(tax + Decimal("0.01"))}})
    within = differ.run(["invoice"])
    assert within.findings == []
    strict = Differ(company.hub.store, company.hub.connectors, company.hub.routing,
                    Tolerances(line_rounding_minor=0, totals_minor=1, stale_sla=SLA)).run(["invoice"])
    assert triples(strict.findings) == [("mismatch", "invoice", "quickbooks")]
    assert strict.findings[0]["external_ids"] == [invoice["Id"]]

    qbo.edit(realm, "Invoice", invoice["Id"], {"TxnTaxDetail": {"TotalTax": str(tax + Decimal("0.02"))}})
    beyond = differ.run(["invoice"])
    assert triples(beyond.findings) == [("mismatch", "invoice", "quickbooks")]  # the day's sum is explained
    total = beyond.findings[0]["fields"]["total"]
    assert total["quickbooks"] - total["hub"] == 2


# --------------------------------------------------------------------------- alerts


class Receiver:
    """A local alert webhook: records every POST body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_alert_webhook_gets_one_post_per_run_with_new_findings_and_none_otherwise(
        clocked: tuple[Company, Clock], receiver: Receiver) -> None:
    company, clock = clocked
    # (the plants move the clock past the sync SLA: that alert is not this test's)
    config = dataclasses.replace(company.hub.config, alerts={**company.hub.config.alerts, "sync_sla_minutes": 10_000.0,
                                                             "webhook_url": receiver.url})

    def alert(result: DiffResult, **alerts: Any) -> bool:
        cfg = dataclasses.replace(config, alerts={**config.alerts, **alerts})
        sent = raise_alerts(company.hub.store, cfg, clock(), extra=[findings_alert(result, cfg.alerts)])
        return [a.kind for a in sent] == ["findings"]

    clean_sync(company)
    assert alert(company.hub.differ.run(ENTITIES)) is False
    assert receiver.bodies == []  # nothing found, nothing posted

    planted = plant_everything(company, clock)
    first = company.hub.differ.run(ENTITIES)
    assert alert(first) is True
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["run_id"] == first.run_id and body["new"] == len(planted.expected)
    assert f"{len(planted.expected)} new finding" in body["text"] and "duplicate" in body["text"]

    clock.advance(timedelta(hours=1))
    assert alert(company.hub.differ.run(ENTITIES)) is False  # the same problems again
    assert len(receiver.bodies) == 1

    # a new problem opens one new finding: one more POST for that run
    xero: Any = company.emus.xero.emulator
    xero.seed_now({"Contacts": [{"Name": "Another walk-in", "EmailAddress": "walkin2@example.org"}]})
    third = company.hub.differ.run(ENTITIES)
    assert third.new == 1
    # a threshold above the run's new findings posts nothing; at the threshold, one POST
    assert alert(third, min_new_findings=2) is False and len(receiver.bodies) == 1
    assert alert(third) is True
    assert len(receiver.bodies) == 2 and receiver.bodies[1]["new"] == 1


def test_hub_diff_posts_the_alert_configured_in_the_config(clocked: tuple[Company, Clock], receiver: Receiver) -> None:
    company, clock = clocked
    company.config_path.write_text(company.config_path.read_text() + f'\n[alerts]\nwebhook_url = "{receiver.url}"\n')
    clean_sync(company)
    runner = CliRunner()
    config = ["--config", str(company.config_path)]
    clean = runner.invoke(cli, [*config, "diff", "--json"])
    assert clean.exit_code == 0, clean.output
    assert receiver.bodies == []
    plant_everything(company, clock)
    drifted = runner.invoke(cli, [*config, "diff", "--json"])
    assert drifted.exit_code == 1  # open findings
    report = json.loads(drifted.output)
    assert report["summary"]["duplicate"] == 1 and report["summary"]["orphan"] == 1
    assert len(receiver.bodies) == 1
    again = runner.invoke(cli, [*config, "diff", "--json"])
    assert again.exit_code == 1 and len(receiver.bodies) == 1


# --------------------------------------------------------------------------- reports


def test_drift_export_json_csv_and_a_self_contained_html(clocked: tuple[Company, Clock], tmp_path: Path) -> None:
    company, clock = clocked
    clean_sync(company)
    planted = plant_everything(company, clock)
    result = company.hub.differ.run(ENTITIES)
    runner = CliRunner()
    config = ["--config", str(company.config_path)]

    exported = runner.invoke(cli, [*config, "drift", "export", "--format", "json"])
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.output)
    assert set(report) == {"run_id", "started_at", "finished_at", "summary", "findings"}
    assert report["run_id"] == result.run_id
    assert datetime.fromisoformat(report["started_at"]) <= datetime.fromisoformat(report["finished_at"])
    assert set(report["summary"]) == set(KINDS)
    assert report["summary"] == {k: sum(1 for t in planted.expected if t[0] == k) for k in KINDS}
    contract = {"id", "fingerprint", "kind", "entity", "system", "canonical_id", "external_ids", "fields",
                "detail", "status", "first_seen", "last_seen", "about"}
    assert all(set(f) == contract for f in report["findings"])
    assert triples(report["findings"]) == planted.expected
    for f in report["findings"]:
        # the lost refund's write and the stale email's pushes were dropped on purpose: missing and
        # stale, acknowledged, naming who dropped them (sync/diff_dropped.py)
        dropped = f["kind"] in ("missing", "stale") and "dropped_by" in f["fields"]
        assert isinstance(f["external_ids"], list) and f["status"] == ("acknowledged" if dropped else "open")
        for values in f["fields"].values():
            assert "hub" in values or f["kind"] in ("duplicate", "orphan") or dropped

    as_csv = runner.invoke(cli, [*config, "drift", "export", "--format", "csv"])
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(rows) == len(planted.expected)
    assert sorted((r["kind"], r["entity"], r["system"]) for r in rows) == planted.expected
    assert {r["id"] for r in rows} == {f["id"] for f in report["findings"]}

    out = tmp_path / "drift.html"
    as_html = runner.invoke(cli, [*config, "drift", "export", "--format", "html", "-o", str(out)])
    assert as_html.exit_code == 0, as_html.output
    html = out.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    # links into each vendor's app are anchors a person follows; nothing is loaded from elsewhere
    assert not re.search(r"\bsrc\s*=|<link\b|@import|url\(", html, re.I), "the report must not load anything"
    assert all(m.startswith('<a href="https://') for m in re.findall(r'<a href="[^"]*"', html))
    assert html.count("<tr data-kind=") == len(planted.expected)
    for kind, _entity, _system in planted.expected:
        assert f'data-kind="{kind}"' in html
    assert "<svg" in html and "<rect" in html  # the chart of findings over time is inline
