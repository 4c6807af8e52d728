"""Never guess (issue 23), end to end through the official Stripe SDK and the emulators: each odd
record below is held with a finding and nothing of it is written to a ledger.

* a Stripe invoice whose currency is null (set behind the API: Stripe itself always names one)
  is held as an ``unreadable`` record — never written as USD;
* a negative-total invoice is not written to QuickBooks or Xero as an invoice (they have none):
  it is posted as a credit note;
* an amount beyond ``[flows] max_amount_minor`` is held with a finding naming the bound and key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Company
from tests.e2e.test_drift import clean_sync, clocked_company


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    with clocked_company(tmp_path, customers=8, invoices=8) as (c, _clock):
        yield c


def stripe_invoice(company: Company, amount: int, currency: str = "usd") -> str:
    """A finalized Stripe invoice of one item, made through the official SDK."""
    api: Any = company.hub.connectors["stripe"].api  # type: ignore[attr-defined]
    customer = sorted(company.stripe.table("customer").values(), key=lambda c: c["id"])[1]["id"]
    invoice = api.call(lambda c: c.v1.invoices.create(params={
        "customer": customer, "currency": currency, "collection_method": "send_invoice",
        "days_until_due": 30, "pending_invoice_items_behavior": "exclude"}))
    api.call(lambda c: c.v1.invoice_items.create(params={
        "customer": customer, "invoice": invoice.id, "amount": amount, "currency": currency,
        "description": "Odd one"}))
    api.call(lambda c: c.v1.invoices.finalize_invoice(invoice.id))
    return str(invoice.id)


def ledger_numbers(company: Company) -> tuple[list[str], list[str]]:
    qbo = [str(i.get("DocNumber")) for i in company.qbo.table("Invoice").values()]
    xero = [str(i.get("InvoiceNumber")) for i in company.emus.xero.emulator.live("Invoices")]  # type: ignore[attr-defined]
    return qbo, xero


def held_writes(company: Company, canonical: str) -> dict[str, str]:
    """target -> the dead letter's reason, for the writes of one hub record."""
    with company.hub.store.transaction() as tx:
        return {i.target: i.last_error or "" for i in tx.list_outbox("dead", limit=10_000)
                if i.canonical_id == canonical}


def held_findings(company: Company, canonical: str) -> dict[str, str]:
    with company.hub.store.transaction() as tx:
        return {f.system: f.detail for f in tx.list_findings(kind="missing", status="open")
                if f.canonical_id == canonical}


def test_a_null_currency_is_held_never_written_as_usd(company: Company) -> None:
    clean_sync(company)
    invoice_id = stripe_invoice(company, 4200)
    number = company.stripe.table("invoice")[invoice_id]["number"]
    stored = company.stripe.table("invoice")[invoice_id]
    stored["currency"] = None  # what the odd record carried, read through the change feed
    company.stripe.emit("invoice.updated", stored, {"currency": "usd"})

    summary = company.hub.engine.sync()

    assert any("held" in e for e in summary.errors), summary.errors
    with company.hub.store.transaction() as tx:
        assert tx.canonical_for("stripe", "invoice", invoice_id) is None
        [held] = tx.holds_of("stripe", "invoice")
        found = [f for f in tx.list_findings(kind="unreadable") if f.external_ids == [invoice_id]]
    assert held.external_id == invoice_id and "no currency" in held.reason
    assert len(found) == 1 and found[0].status == "open"
    qbo, xero = ledger_numbers(company)
    assert number not in qbo and number not in xero


def test_a_negative_invoice_is_never_an_invoice_in_the_ledgers_but_a_credit_note(company: Company) -> None:
    """Neither ledger has a negative invoice: it is posted as a credit note (issue 18, README
    "Posting model"), never held and never written as an invoice."""
    clean_sync(company)
    invoice_id = stripe_invoice(company, -8700)
    number = company.stripe.table("invoice")[invoice_id]["number"]

    company.hub.engine.sync()

    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "invoice", invoice_id)
    assert canonical is not None
    qbo, xero = ledger_numbers(company)
    assert number not in qbo and number not in xero
    assert held_writes(company, canonical) == {} and held_findings(company, canonical) == {}
    memos = [m for m in company.qbo.table("CreditMemo").values() if m.get("DocNumber") == number]
    notes = [n for n in company.xero.table("CreditNotes").values() if n.get("CreditNoteNumber") == number]
    assert [str(m["TotalAmt"]) for m in memos] == ["87.00"] and [str(n["Total"]) for n in notes] == ["87.00"]


def test_an_amount_beyond_the_sanity_bound_is_held(company: Company) -> None:
    clean_sync(company)
    company.hub.engine.ctx.max_amount_minor = 10**9  # [flows] max_amount_minor, lowered for the test
    invoice_id = stripe_invoice(company, 10**9 + 1)
    number = company.stripe.table("invoice")[invoice_id]["number"]

    company.hub.engine.sync()

    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "invoice", invoice_id)
    assert canonical is not None
    qbo, xero = ledger_numbers(company)
    assert number not in qbo and number not in xero
    reasons = held_writes(company, canonical)
    assert set(reasons) == {"quickbooks", "xero", "salesforce"}  # the bound holds every write
    for reason in reasons.values():
        assert "1,000,000,000" in reason and "max_amount_minor" in reason


def test_the_default_bound_holds_ten_to_the_eighteenth(company: Company) -> None:
    clean_sync(company)
    invoice_id = stripe_invoice(company, 10**18)
    number = company.stripe.table("invoice")[invoice_id]["number"]
    company.hub.engine.sync()
    qbo, xero = ledger_numbers(company)
    assert number not in qbo and number not in xero
    with company.hub.store.transaction() as tx:
        canonical = tx.canonical_for("stripe", "invoice", invoice_id)
    assert canonical is not None
    assert set(held_writes(company, canonical)) == {"quickbooks", "xero", "salesforce"}
