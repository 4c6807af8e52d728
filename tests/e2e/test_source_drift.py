"""The diff against the system that owns a record, end to end through the real SDKs.

A record's owner (Stripe for an invoice, Salesforce for a customer's name) changes it and no event
reaches the hub: the diff reports it against the owner, naming the record, and blames no ledger
for the day's totals; ``hub resync --finding ID`` reads it in from the owner and every system that
holds it follows, once. A change still on its way (an event waiting in the inbox, a hub record
changed within the SLA) is lag, not drift. The hub clock is a controlled one; nothing sleeps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from click.testing import CliRunner

from hub import cli
from sync.repair import repair_finding
from tests.e2e.conftest import Company
from tests.e2e.test_drift import SLA, Clock, clean_sync, clocked, triples

__all__ = ["clocked"]  # the fixture, shared with test_drift


def open_invoice(company: Company) -> tuple[str, str]:
    """A finalised, unpaid USD Stripe invoice the hub wrote to both ledgers: (Stripe id, hub id)."""
    with company.hub.store.transaction() as tx:
        links = {link.external_id: link.canonical_id for link in tx.links_in("stripe", "invoice")}
        in_ledgers = {link.canonical_id for link in tx.links_in("quickbooks", "invoice")} & {
            link.canonical_id for link in tx.links_in("xero", "invoice")}
    invoice = next(i for i in sorted(company.stripe.table("invoice").values(), key=lambda i: i["id"])
                   if i["status"] == "open" and i["currency"] == "usd" and links.get(i["id"]) in in_ledgers)
    return invoice["id"], links[invoice["id"]]


def change_behind_the_hubs_back(company: Company, invoice_id: str, by_minor: int) -> int:
    """A Stripe invoice's first line changed in the emulator's store: no event is emitted."""
    invoice = company.stripe.table("invoice")[invoice_id]
    invoice["_lines"][0]["amount"] += by_minor
    company.stripe.recompute(invoice)
    return int(invoice["total"])


def ledger_totals(company: Company, canonical: str) -> tuple[int, int]:
    """(QuickBooks, Xero) totals of the hub invoice, in minor units."""
    with company.hub.store.transaction() as tx:
        qbo = tx.link_for(canonical, "quickbooks", "invoice")
        xero = tx.link_for(canonical, "xero", "invoice")
    assert qbo is not None and xero is not None
    minor = Decimal(100)
    return (int(Decimal(str(company.qbo.table("Invoice")[qbo.external_id]["TotalAmt"])) * minor),
            int(Decimal(str(company.xero.table("Invoices")[xero.external_id]["Total"])) * minor))


def test_a_stripe_amount_changed_without_an_event_is_a_finding_against_stripe_and_resync_repairs_it(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    invoice_id, canonical = open_invoice(company)
    old_total = ledger_totals(company, canonical)[0]
    new_total = change_behind_the_hubs_back(company, invoice_id, 10_000)
    assert new_total == old_total + 10_000
    qbo_invoices, xero_invoices = len(company.qbo.table("Invoice")), len(company.xero.table("Invoices"))

    # the hub record changed within the SLA (the clean sync just now): the change may be on its way
    assert company.hub.differ.run(["invoice"]).findings == []
    clock.advance(SLA + timedelta(minutes=1))

    result = company.hub.differ.run(["invoice"])
    assert triples(result.findings) == [("mismatch", "invoice", "stripe")], [f["detail"] for f in result.findings]
    (finding,) = result.findings
    assert finding["canonical_id"] == canonical and finding["external_ids"] == [invoice_id]
    assert finding["fields"]["total"] == {"hub": old_total, "stripe": new_total}
    assert invoice_id in finding["detail"] and "no event reached the hub" in finding["detail"]

    # a dry run writes nothing; the repair reads Stripe's invoice in and each ledger is updated once
    dry = repair_finding(company.hub, finding["id"], dry_run=True)
    assert dry.summary is None and "read stripe invoice" in dry.actions[0]
    assert ledger_totals(company, canonical) == (old_total, old_total)
    done = repair_finding(company.hub, finding["id"])
    assert done.summary is not None
    assert done.summary.stats("quickbooks", "invoice").written == 1
    assert done.summary.stats("xero", "invoice").written == 1
    assert ledger_totals(company, canonical) == (new_total, new_total)
    with company.hub.store.transaction() as tx:
        stored = tx.get_entity(canonical)
    assert stored is not None and stored.entity().total.minor == new_total  # type: ignore[attr-defined]
    # updated in place: no invoice posted twice, none voided
    assert (len(company.qbo.table("Invoice")), len(company.xero.table("Invoices"))) == (qbo_invoices, xero_invoices)
    assert company.stripe.table("invoice")[invoice_id]["status"] == "open"

    with company.hub.store.transaction() as tx:  # compared again by the repair: resolved at once
        assert tx.get_finding(finding["id"]).status == "resolved", done.actions
    after = company.hub.differ.run(["invoice"])
    assert after.findings == [] and after.resolved == 0
    assert company.hub.engine.sync().totals().written == 0  # nothing left to write


def test_a_salesforce_rename_without_the_hub_seeing_it_is_a_finding_against_salesforce(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    with company.hub.store.transaction() as tx:
        link = sorted(tx.links_in("salesforce", "customer"), key=lambda x: x.external_id)[3]
        stripe_link = tx.link_for(link.canonical_id, "stripe", "customer")
    assert stripe_link is not None
    later = SLA + timedelta(minutes=1)
    clock.advance(later)
    company.salesforce.clock.advance(later.total_seconds())  # Salesforce stamps the change at the hub's now
    # renamed in Salesforce (the owner of a customer's name); the hub does not poll meanwhile
    company.salesforce.update("Account", link.external_id, {"Name": "Renamed Behind The Hub Ltd"})
    # changed within the SLA by Salesforce's own stamp: the next poll may still bring it
    assert company.hub.differ.run(["customer"]).findings == []
    clock.advance(later)

    result = company.hub.differ.run(["customer"])
    assert triples(result.findings) == [("mismatch", "customer", "salesforce")], [
        f["detail"] for f in result.findings]
    (finding,) = result.findings
    assert finding["external_ids"] == [link.external_id] and finding["canonical_id"] == link.canonical_id
    assert finding["fields"]["name"]["salesforce"] == "renamed behind the hub ltd"  # the normalised view

    runner = CliRunner()
    done = runner.invoke(cli, ["--config", str(company.config_path), "resync", "--finding", finding["id"][:12],
                               "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["written"] >= 3  # Stripe and both ledgers take the new name
    assert company.stripe.table("customer")[stripe_link.external_id]["name"] == "Renamed Behind The Hub Ltd"
    after = company.hub.differ.run(["customer"])
    assert after.findings == [], [f["detail"] for f in after.findings]


def test_a_stripe_rename_of_a_name_salesforce_owns_is_reported_against_stripe(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    with company.hub.store.transaction() as tx:
        link = sorted(tx.links_in("stripe", "customer"), key=lambda x: x.external_id)[2]
        hub_name = tx.get_entity(link.canonical_id).entity().name  # type: ignore[union-attr, attr-defined]
    stripe_api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    stripe_api.call(lambda c: c.v1.customers.update(link.external_id, {"name": "Stripe's Own Name"}))
    company.hub.engine.sync(systems=["stripe"])  # taken in: the name is not Stripe's to change
    clock.advance(SLA + timedelta(minutes=1))

    result = company.hub.differ.run(["customer"])
    assert triples(result.findings) == [("mismatch", "customer", "stripe")], [f["detail"] for f in result.findings]
    (finding,) = result.findings
    assert finding["external_ids"] == [link.external_id]
    assert finding["fields"]["name"] == {"hub": hub_name.lower(), "stripe": "stripe's own name"}
    # the owner's value is the truth: the repair writes the hub's name back to Stripe
    done = repair_finding(company.hub, finding["id"])
    assert done.summary is not None and done.summary.totals().written == 1
    assert company.stripe.table("customer")[link.external_id]["name"] == hub_name
    assert company.hub.differ.run(["customer"]).findings == []


def test_a_change_whose_event_waits_in_the_inbox_is_lag_not_drift(clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    invoice_id, _canonical = open_invoice(company)
    change_behind_the_hubs_back(company, invoice_id, 2_500)
    event = {"id": "evt_on_its_way", "object": "event", "type": "invoice.updated",
             "data": {"object": {"id": invoice_id, "object": "invoice"}}}
    with company.hub.store.transaction() as tx:
        assert tx.add_inbox("stripe", "evt_on_its_way", event, "invoice.updated")
        # another connection's event naming the same id excuses nothing
        assert tx.add_inbox("quickbooks", "evt_elsewhere", {"ids": [invoice_id]}, "Invoice")
    clock.advance(SLA + timedelta(minutes=1))

    waiting = company.hub.differ.run(["invoice"])
    assert waiting.findings == [], [f["detail"] for f in waiting.findings]  # no ledger blamed for the day either

    # the event failed for good: the change will not come by itself, and it is reported
    with company.hub.store.transaction() as tx:
        item = next(i for i in tx.inbox_items("stripe") if i.event_id == "evt_on_its_way")
        tx.finish_inbox(item.id, error="gave up")
    failed = company.hub.differ.run(["invoice"])
    assert triples(failed.findings) == [("mismatch", "invoice", "stripe")]
    assert failed.findings[0]["external_ids"] == [invoice_id]
