"""No silent drops (issue 23): a source record that fails to map is held with an ``unreadable``
finding and tried again on every sync until it maps or the finding is acknowledged. End to end:
the emulators, the official Stripe SDK, ``hub sync`` and ``hub drift ack``.

The unmappable record is a Stripe invoice in currency ``zzz`` (the emulator takes any code; the
hub's money module knows ISO 4217 only). The fix is made behind the API (Stripe lets nobody
change an invoice's currency): the stored invoice becomes ``usd`` and an ``invoice.updated``
event carries it to the hub's change feed, as a corrected record would arrive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub import cli
from state.store import Finding
from tests.e2e.conftest import Company
from tests.e2e.test_drift import clean_sync, clocked_company


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    with clocked_company(tmp_path, customers=8, invoices=8) as (c, _clock):
        yield c


def hub_cli(company: Company, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(company.config_path), *args])


def unmappable_invoice(company: Company, amount: int = 2900) -> str:
    """A finalized Stripe invoice in currency ``zzz``, made through the official SDK."""
    api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    customer = sorted(company.stripe.table("customer").values(), key=lambda c: c["id"])[2]["id"]
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer, "currency": "zzz", "collection_method": "send_invoice", "days_until_due": 30,
        "pending_invoice_items_behavior": "exclude"}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer, "invoice": invoice.id, "amount": amount, "currency": "zzz",
        "description": "Consulting, held"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    return str(invoice.id)


def fix_currency(company: Company, invoice_id: str) -> None:
    """The invoice corrected at its source: ``usd``, and an ``invoice.updated`` event for it."""
    emulator: Any = company.stripe
    stored = emulator.table("invoice")[invoice_id]
    stored["currency"] = "usd"
    for line in stored.get("_lines", []):
        line["currency"] = "usd"
    emulator.emit("invoice.updated", stored, {"currency": "zzz"})


def unreadable(company: Company, external_id: str) -> list[Finding]:
    with company.hub.store.transaction() as tx:
        return [f for f in tx.list_findings(kind="unreadable") if f.external_ids == [external_id]]


def holds(company: Company) -> list[Any]:
    with company.hub.store.transaction() as tx:
        return tx.holds_of("stripe", "invoice")


def qbo_invoices_numbered(company: Company, number: str) -> list[dict[str, Any]]:
    return [i for i in company.qbo.table("Invoice").values() if i.get("DocNumber") == number]


def test_an_unmappable_invoice_is_held_until_it_maps_then_reaches_the_ledgers(company: Company) -> None:
    clean_sync(company)
    invoice_id = unmappable_invoice(company)
    number = company.stripe.table("invoice")[invoice_id]["number"]

    first = hub_cli(company, "sync")
    assert first.exit_code == 1, first.output
    assert "1 record held (unreadable findings" in first.output
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "open" and finding.system == "stripe" and finding.entity == "invoice"
    assert "zzz" in finding.detail.lower() and "held" in finding.detail
    [held] = holds(company)
    assert held.external_id == invoice_id and held.attempts == 1 and "zzz" in held.reason.lower()
    assert held.payload["id"] == invoice_id and held.payload["currency"] == "zzz"
    with company.hub.store.transaction() as tx:
        assert tx.canonical_for("stripe", "invoice", invoice_id) is None

    # the next sync is no silent exit 0: still held, tried again, the finding still open
    second = hub_cli(company, "sync", "--json")
    assert second.exit_code == 1, second.output
    report = json.loads(second.stdout)
    assert any("1 record held (unreadable findings" in e for e in report["errors"])
    [held] = holds(company)
    assert held.attempts == 2
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "open"
    # a diff that sees the same record speaks of the same finding, and does not close it
    company.hub.differ.run(["invoice"])
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "open"

    # fixed at the source: the next sync ingests it, it reaches the ledgers, nothing stays held
    fix_currency(company, invoice_id)
    third = hub_cli(company, "sync")
    assert third.exit_code == 0, third.output
    assert holds(company) == []
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "resolved"
    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "invoice", invoice_id)
        assert canonical is not None
        assert tx.link_for(canonical, "quickbooks", "invoice") is not None
    [written] = qbo_invoices_numbered(company, number)
    assert str(written["TotalAmt"]) in ("29", "29.0", "29.00")


def test_a_held_invoice_fixed_while_the_diff_reads_it_fine_is_still_ingested(company: Company) -> None:
    clean_sync(company)
    invoice_id = unmappable_invoice(company)
    assert hub_cli(company, "sync").exit_code == 1
    fix_currency(company, invoice_id)
    # the diff now maps it and sees no problem: the hold keeps the finding open regardless
    company.hub.differ.run(["invoice"])
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "open"
    assert [h.external_id for h in holds(company)] == [invoice_id]
    assert hub_cli(company, "sync").exit_code == 0
    assert holds(company) == [] and unreadable(company, invoice_id)[0].status == "resolved"
    with company.hub.store.transaction() as tx:
        assert tx.canonical_for("stripe", "invoice", invoice_id) is not None


def test_acknowledging_the_finding_lets_the_held_record_go(company: Company) -> None:
    clean_sync(company)
    invoice_id = unmappable_invoice(company)
    assert hub_cli(company, "sync").exit_code == 1
    [finding] = unreadable(company, invoice_id)
    acked = hub_cli(company, "drift", "ack", finding.id[:8])
    assert acked.exit_code == 0, acked.output
    assert holds(company) == []
    after = hub_cli(company, "sync")
    assert after.exit_code == 0, after.output
    assert "records held" not in after.output and "record held" not in after.output
    assert holds(company) == []
    [finding] = unreadable(company, invoice_id)
    assert finding.status == "acknowledged"


def test_erasing_a_customer_scrubs_the_records_held_for_it(company: Company) -> None:
    """A held record is the raw vendor record: ``hub forget-customer`` scrubs it as it scrubs
    webhook bodies, and the hold stays (nothing stored is lost but the personal data)."""
    from sync.privacy import forget_customer

    clean_sync(company)
    invoice_id = unmappable_invoice(company)
    company.hub.engine.sync()
    stripe_customer = company.stripe.table("invoice")[invoice_id]["customer"]
    email = company.stripe.table("customer")[stripe_customer]["email"]
    with company.hub.store.transaction() as tx:
        (held,) = tx.holds_of("stripe", "invoice")
        assert email in json.dumps(held.payload)  # the case: the raw invoice names its customer
        canonical = tx.canonical_for("stripe", "customer", stripe_customer)
        assert canonical is not None
        erasure = forget_customer(tx, canonical)
    assert erasure.held_rows == 1
    with company.hub.store.transaction() as tx:
        (held,) = tx.holds_of("stripe", "invoice")
    assert email not in json.dumps(held.payload) and held.external_id == invoice_id
