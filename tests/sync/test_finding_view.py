"""A finding as finance reads it (issue 21, item 1): the ``about`` of the report JSON on a seeded
store — customer name, the document number people know, date, "99.00 USD", every system's value
side by side, deep links into each vendor's app, a duplicate's candidates, a detail without CLI
instructions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mapping.model import Customer, Invoice, InvoiceLine
from mapping.money import Money
from state.store import StateStore
from sync.finding_view import Place, neutral_detail, web_link
from sync.findings import findings_report
from tests.conftest import FrozenClock, make_store

PLACES = {"quickbooks": Place("quickbooks"), "xero": Place("xero"), "stripe": Place("stripe"),
          "salesforce": Place("salesforce", "https://acme.my.salesforce.com", {"customer": "Account"})}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    made = make_store(f"sqlite:///{tmp_path}/hub.db", FrozenClock())
    yield made
    made.dispose()


def seed(store: StateStore) -> dict[str, str]:
    """Acme Ltd with invoice 00000031-0002 (99.00 USD) in Stripe, QuickBooks (id 456) and Xero;
    QuickBooks says 199.00, Xero 90.00; QuickBooks also holds the customer twice."""
    total = Money(9900, "USD")
    with store.transaction() as tx:
        tx.upsert_entity(Customer("cus-acme", name="Acme Ltd", email="ap@acme.test"), "stripe")
        tx.upsert_entity(Invoice("inv-31", customer_id="cus-acme", number="00000031-0002", status="open",
                                 lines=(InvoiceLine("Plan", Decimal(1), total, total),), subtotal=total,
                                 total=total, amount_due=total, issued_at=datetime(2026, 3, 2, 9, tzinfo=UTC)),
                         "stripe")
        for system, ext in (("stripe", "in_1"), ("quickbooks", "456"), ("xero", "9a1b-guid")):
            tx.link("inv-31", system, "invoice", ext)
        tx.link("cus-acme", "quickbooks", "customer", "11")
        tx.link("cus-acme", "salesforce", "customer", "001xx0000001")
        qbo, _ = tx.upsert_finding(
            fingerprint="m-q", kind="mismatch", entity="invoice", system="quickbooks", canonical_id="inv-31",
            external_ids=["456"], fields={"total": {"hub": 9900, "quickbooks": 19900}},
            detail="quickbooks invoice 456 disagrees with the hub on total", run_id=None)
        xero, _ = tx.upsert_finding(
            fingerprint="m-x", kind="mismatch", entity="invoice", system="xero", canonical_id="inv-31",
            external_ids=["9a1b-guid"], fields={"total": {"hub": 9900, "xero": 9000}},
            detail="xero invoice 9a1b-guid disagrees with the hub on total", run_id=None)
        dup, _ = tx.upsert_finding(
            fingerprint="d-q", kind="duplicate", entity="customer", system="quickbooks", canonical_id="cus-acme",
            external_ids=["11", "1112"], detail="2 quickbooks customer records for one hub record (11, 1112); "
            "keep one with `hub resync --finding ID --keep EXTERNAL_ID`", run_id=None,
            fields={"candidates": {
                "11": {"name": "Acme Ltd", "email": "ap@acme.test", "created": "2026-01-04",
                       "balance": {"minor": 9900, "currency": "USD"}, "documents_count": 1,
                       "documents": [{"type": "invoice", "number": "00000031-0002", "external_id": "456",
                                      "date": "2026-03-02", "amount": {"minor": 9900, "currency": "USD"}}]},
                "1112": {"name": "Acme Ltd (2)", "email": "ap@acme.test", "created": "2026-03-20",
                         "balance": {"minor": 0, "currency": "USD"}}}})
    return {"qbo": qbo, "xero": xero, "dup": dup}


def test_a_mismatch_names_customer_document_date_amount_and_every_system(store: StateStore) -> None:
    ids = seed(store)
    report = findings_report(store, places=PLACES)
    about = next(f for f in report["findings"] if f["id"] == ids["qbo"])["about"]
    assert about["customer"] == "Acme Ltd"
    assert about["document"] == "00000031-0002"  # not QuickBooks' internal 456
    assert about["date"] == "2026-03-02"
    assert about["amount"] == {"minor": 9900, "currency": "USD"} and about["amount_text"] == "99.00 USD"
    assert about["links"] == {"quickbooks": "https://app.qbo.intuit.com/app/invoice?txnId=456",
                              "xero": "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID=9a1b-guid",
                              "stripe": "https://dashboard.stripe.com/invoices/in_1"}
    values = about["values"]
    assert values["systems"] == ["hub", "quickbooks", "stripe", "xero"]
    (total,) = values["rows"]
    assert total == {"field": "total", "values": {"hub": "99.00 USD", "quickbooks": "199.00 USD",
                                                  "stripe": "same as hub", "xero": "90.00 USD"}}
    assert about["action"]["kind"] == "resync"


def test_a_duplicate_shows_each_candidate_with_name_balance_created_and_documents(store: StateStore) -> None:
    ids = seed(store)
    report = findings_report(store, places=PLACES)
    about = next(f for f in report["findings"] if f["id"] == ids["dup"])["about"]
    assert about["customer"] == "Acme Ltd"
    assert about["links"]["salesforce"] == "https://acme.my.salesforce.com/lightning/r/Account/001xx0000001/view"
    first, second = about["candidates"]
    assert (first["external_id"], first["linked"], first["name"], first["balance_text"], first["created"]) == (
        "11", True, "Acme Ltd", "99.00 USD", "2026-01-04")
    assert first["documents"][0]["number"] == "00000031-0002" and first["documents"][0]["amount_text"] == "99.00 USD"
    assert first["link"] == "https://app.qbo.intuit.com/app/customerdetail?nameId=11"
    assert (second["external_id"], second["linked"], second["name"], second["balance_text"]) == (
        "1112", False, "Acme Ltd (2)", "0.00 USD")
    assert about["action"]["kind"] == "keep"
    assert "hub resync" not in about["said"] and about["said"].startswith("2 quickbooks customer records")
    assert about["values"]["rows"] == []  # candidates are not a value per system


def test_the_detail_loses_the_command_line_only() -> None:
    assert neutral_detail("invoice x should be in xero but is not (silent sync failure); "
                          "`hub resync --finding ID` writes it") == "invoice x should be in xero but is not (silent sync failure)"
    assert neutral_detail("held (`hub resync --finding ID --keep X`) for now") == "held for now"
    assert neutral_detail("nothing to do") == "nothing to do"


def test_links_for_each_vendor() -> None:
    assert web_link(Place("stripe"), "customer", "cus_1") == "https://dashboard.stripe.com/customers/cus_1"
    assert web_link(Place("xero"), "customer", "c-1") == "https://go.xero.com/Contacts/View/c-1"
    assert web_link(Place("xero"), "payout", "p-1") is None  # no page of its own: no made-up link
    assert web_link(Place("salesforce"), "customer", "001") is None  # no org address known


def test_a_day_total_names_its_day_and_the_unexplained_difference(store: StateStore) -> None:
    with store.transaction() as tx:
        tx.upsert_finding(fingerprint="t", kind="totals", entity="payment", system="quickbooks", canonical_id=None,
                          external_ids=[], fields={"total": {"hub": 123_400, "quickbooks": 123_403}}, run_id=None,
                          detail="payment totals for 2026-10-05 in USD differ: quickbooks 123403 vs 123400 "
                                 "(minor units, +3 unexplained by record findings)")
    (finding,) = findings_report(store, places=PLACES)["findings"]
    about = finding["about"]
    assert (about["date"], about["amount_text"], about["customer"], about["links"]) == ("2026-10-05", "0.03 USD",
                                                                                         None, {})
    assert about["values"]["rows"] == [{"field": "total", "values": {"hub": "1,234.00 USD",
                                                                     "quickbooks": "1,234.03 USD"}}]
    assert about["action"]["kind"] == "none"


def test_a_system_that_does_not_hold_a_field_is_not_said_to_agree(store: StateStore) -> None:
    ids = seed(store)
    with store.transaction() as tx:
        tx.link("inv-31", "salesforce", "invoice", "a0B000000000001")
        tx.upsert_finding(fingerprint="m-q", kind="mismatch", entity="invoice", system="quickbooks",
                          canonical_id="inv-31", external_ids=["456"], run_id=None,
                          fields={"tax": {"hub": 1650, "quickbooks": 1980}},
                          detail="quickbooks invoice 456 disagrees with the hub on tax")
    about = next(f for f in findings_report(store, places=PLACES)["findings"] if f["id"] == ids["qbo"])["about"]
    tax = next(r for r in about["values"]["rows"] if r["field"] == "tax")
    assert tax["values"] == {"hub": "16.50 USD", "quickbooks": "19.80 USD", "salesforce": "not held there",
                             "stripe": "same as hub", "xero": "same as hub"}
    total = next(r for r in about["values"]["rows"] if r["field"] == "total")  # Xero's own finding
    assert total["values"]["xero"] == "90.00 USD" and total["values"]["salesforce"] == "same as hub"
    assert about["said"] == "quickbooks invoice 00000031-0002 (id 456 there) disagrees with the hub on tax"
