"""Peer conformance: Stitch's tap-xero (2.6.0) reads the Xero emulator completely and sees what
billhub wrote there.

The organisation (``xero_org.py``): the e2e company, billhub's Stripe customers, products,
invoices, payments and refunds written into Xero by its own flows, and a Stripe payout booked as
a bank transfer and a fee spend. The tap, in its own venv, gets
its tokens from the emulator's ``/connect/token`` (Basic client credentials, a rotating refresh
token it saves in its config), discovers, selects every stream and syncs. Every stream whose
collection the emulator models equals the emulator's records (ids, exact amounts, each
document's contact and invoice, the hub's markers); the streams of collections the organisation
never used are empty, never an error; every answer the tap received validates against
xero_accounting.yaml. A second run from the first one's state (the tap's bookmarks, sent back as
``If-Modified-Since``) reads what changed since: a customer whose email billhub carried from
Stripe to Xero, and no more than what Xero stamped at or after each bookmark.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.peers.singer_taps import SingerRun, SingerTap, TapFailed, select
from tests.peers.venvs import PeerVenv
from tests.peers.xero_org import XeroOrg, amount, spec_problems

ENTRY = Path(__file__).with_name("run_tap_xero.py")

# stream -> (the emulator's collection, its id field): read completely and compared
MODELLED = {"contacts": ("Contacts", "ContactID"), "invoices": ("Invoices", "InvoiceID"),
            "payments": ("Payments", "PaymentID"), "credit_notes": ("CreditNotes", "CreditNoteID"),
            "items": ("Items", "ItemID"), "accounts": ("Accounts", "AccountID"),
            "tax_rates": ("TaxRates", "TaxType"), "currencies": ("Currencies", "Code"),
            "bank_transfers": ("BankTransfers", "BankTransferID"),
            "bank_transactions": ("BankTransactions", "BankTransactionID"),
            "users": ("Users", "UserID"), "branding_themes": ("BrandingThemes", "BrandingThemeID")}
# collections the organisation never used: an empty list of the spec's shape
EMPTY = ("contact_groups", "journals", "linked_transactions", "manual_journals", "overpayments",
         "prepayments", "purchase_orders", "quotes", "repeating_invoices", "tracking_categories")


def _tap(peers: Callable[[str], PeerVenv], org: XeroOrg, tmp_path: Path) -> SingerTap:
    venv = peers("tap-xero")
    workdir = tmp_path / "tap-xero"
    workdir.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "BILLHUB_XERO_EMULATOR": org.base_url}
    return SingerTap(venv, ENTRY, env, workdir)


def _config(org: XeroOrg, refresh_token: str, tenant_id: str | None = None) -> dict[str, Any]:
    client_id, client_secret = org.client
    return {"client_id": client_id, "client_secret": client_secret, "tenant_id": tenant_id or org.tenant_id,
            "refresh_token": refresh_token, "start_date": org.start_date()}


def _by_id(run: SingerRun, stream: str, key: str) -> dict[str, dict[str, Any]]:
    records = run.records.get(stream, [])
    out = {str(r[key]): r for r in records}
    assert len(out) == len(records), f"{stream}: a record read twice"
    return out


def test_tap_xero_reads_every_modelled_stream_completely_and_equal_to_the_emulator(
        peers: Callable[[str], PeerVenv], xero_org: XeroOrg, tmp_path: Path) -> None:
    org = xero_org
    tap = _tap(peers, org, tmp_path)
    emu = org.emulator
    # Another organisation's id: the tap's access check (GET Currencies) stops on Xero's 403.
    with pytest.raises(TapFailed, match="HTTP-error-code: 403"):
        tap.discover(_config(org, org.refresh_token(), "00000000-0000-4000-8000-000000000000"))
    emu.captured = []
    token = org.refresh_token()
    catalog = tap.discover(_config(org, token))
    streams = {s["tap_stream_id"] for s in catalog["streams"]}
    assert streams == set(MODELLED) | set(EMPTY) | {"organisations"}, sorted(streams)
    # the tap saved the refresh token Xero rotated to, and syncs with it
    saved = json.loads((tap.workdir / "config.json").read_text(encoding="utf-8"))
    assert saved["refresh_token"] != token
    run = tap.sync(saved, select(catalog, streams))

    print("tap-xero records per stream:", {s: len(run.records.get(s, [])) for s in sorted(streams)})
    captured, emu.captured = list(emu.captured), None
    assert captured and [a for a in captured if a["status"] != 200] == []
    problems = spec_problems(captured)
    assert not problems, "\n".join(problems[:10])

    for stream, (collection, key) in MODELLED.items():
        read, stored = _by_id(run, stream, key), org.records(collection)
        if collection == "Items":
            stored = {k: v for k, v in stored.items() if not v.get("_deleted")}
        assert set(read) == set(stored), stream
    for stream in EMPTY:
        assert run.records.get(stream, []) == [] and stream in run.schemas, stream
    (organisation,) = run.records["organisations"]
    expected = org.emulator._organisation(org.emulator.tenants[org.tenant_id])
    assert (organisation["OrganisationID"], organisation["Name"], organisation["BaseCurrency"],
            organisation["CountryCode"]) == (expected["OrganisationID"], "Billhub Demo Org", "USD", "US")

    _assert_documents(run, org)
    _assert_banking(run, org)
    _assert_settings(run, org)
    _assert_incremental(tap, run, catalog, org)


def _assert_incremental(tap: SingerTap, run: SingerRun, catalog: dict[str, Any], org: XeroOrg) -> None:
    """A second sync from the first one's state reads what was stamped at or after each bookmark."""
    state = run.states[-1]
    contact_id = sorted(c for c, v in org.records("Contacts").items() if v.get("ContactNumber"))[0]
    org.change_customer_email(contact_id, "new-billing@peer.example")
    org.emulator.captured = []
    config = json.loads((tap.workdir / "config.json").read_text(encoding="utf-8"))  # the token it rotated to
    again = tap.sync(config, select(catalog, [s["tap_stream_id"] for s in catalog["streams"]]), state)
    captured, org.emulator.captured = list(org.emulator.captured), None
    assert captured and all(a["status"] == 200 for a in captured)
    print("tap-xero second run:", {s: len(r) for s, r in sorted(again.records.items()) if r})
    contacts = _by_id(again, "contacts", "ContactID")
    assert contacts[contact_id]["EmailAddress"] == "new-billing@peer.example"
    for stream, (collection, key) in MODELLED.items():
        bookmark = state["bookmarks"].get(stream, {})
        stamp = "CreatedDateUTC" if stream == "bank_transfers" else "UpdatedDateUTC"
        if stamp not in bookmark:  # a stream read whole every time (tax rates, currencies, themes)
            continue
        since = datetime.fromisoformat(bookmark[stamp].replace("Z", "+00:00"))
        expected = {k for k, v in org.records(collection).items() if v.get(stamp) and v[stamp] >= since}
        assert set(_by_id(again, stream, key)) == expected, stream
    assert len(again.records.get("invoices", [])) < len(run.records["invoices"])  # not read again whole


def _marker(org: XeroOrg, collection: str, record: dict[str, Any]) -> str | None:
    marked = org.hub_marker(collection, record)
    return None if marked is None else marked[1]


def _assert_documents(run: SingerRun, org: XeroOrg) -> None:
    contacts = _by_id(run, "contacts", "ContactID")
    for cid, contact in org.records("Contacts").items():
        rec = contacts[cid]
        assert (rec["Name"], rec.get("EmailAddress"), rec["ContactStatus"]) == \
            (contact["Name"], contact.get("EmailAddress"), contact["ContactStatus"]), cid
        assert rec.get("ContactNumber") == _marker(org, "Contacts", contact), cid
    # billhub's customers carry its marker; the one other contact is the payee of the fee spend
    assert [r["Name"] for r in contacts.values() if not r.get("ContactNumber")] == ["Stripe"]

    items = _by_id(run, "items", "ItemID")
    for iid, item in org.records("Items").items():
        assert (items[iid]["Code"], items[iid]["Name"], items[iid].get("PurchaseDescription")) == \
            (item["Code"], item["Name"], _marker(org, "Items", item)), iid

    invoices = _by_id(run, "invoices", "InvoiceID")
    for iid, inv in org.records("Invoices").items():
        rec = invoices[iid]
        assert (rec["InvoiceNumber"], rec["Type"], rec["Status"], rec["CurrencyCode"], rec["Contact"]["ContactID"],
                rec.get("Reference")) == (inv["InvoiceNumber"], inv["Type"], inv["Status"], inv["CurrencyCode"],
                                          inv["Contact"]["ContactID"], _marker(org, "Invoices", inv)), iid
        assert rec["Contact"]["ContactID"] in contacts
        for field in ("SubTotal", "TotalTax", "Total", "AmountDue", "AmountPaid"):
            assert amount(rec[field]) == inv[field], (iid, field)
        assert [(amount(li["LineAmount"]), li.get("TaxType")) for li in rec["LineItems"]] == \
            [(li["LineAmount"], li.get("TaxType")) for li in inv["LineItems"]], iid

    payments = _by_id(run, "payments", "PaymentID")
    for pid, pay in org.records("Payments").items():
        rec = payments[pid]
        assert (amount(rec["Amount"]), rec["PaymentType"], rec["Status"], rec.get("Reference")) == \
            (pay["Amount"], pay["PaymentType"], pay["Status"], _marker(org, "Payments", pay)), pid
        if pay.get("Invoice"):
            assert rec["Invoice"]["InvoiceID"] == pay["Invoice"]["InvoiceID"] and rec["Invoice"]["InvoiceID"] in invoices
        else:  # a refund's cash payment: the tap's schema keeps only the credit note's number
            assert rec["CreditNote"] == {"CreditNoteNumber": pay["CreditNote"]["CreditNoteNumber"]}, pid
    assert any(p.get("Invoice") for p in payments.values()) and any(p.get("CreditNote") for p in payments.values())

    notes = _by_id(run, "credit_notes", "CreditNoteID")
    for nid, note in org.records("CreditNotes").items():
        rec = notes[nid]
        assert (rec["Type"], rec["Status"], rec["Contact"]["ContactID"], rec.get("Reference")) == \
            (note["Type"], note["Status"], note["Contact"]["ContactID"], _marker(org, "CreditNotes", note)), nid
        assert (amount(rec["Total"]), amount(rec["RemainingCredit"])) == (note["Total"], note["RemainingCredit"]), nid
        assert [(a["Invoice"]["InvoiceID"], amount(a["Amount"])) for a in rec.get("Allocations") or []] == \
            [(a["Invoice"]["InvoiceID"], a["Amount"]) for a in note.get("Allocations") or []], nid


def _assert_banking(run: SingerRun, org: XeroOrg) -> None:
    """The payout: a transfer from the clearing account to the bank and a spend of its fees."""
    transfers = _by_id(run, "bank_transfers", "BankTransferID")
    for tid, transfer in org.records("BankTransfers").items():
        rec = transfers[tid]  # the tap's schema has no Reference (the hub's marker) for transfers
        assert (amount(rec["Amount"]), rec["FromBankAccount"]["Code"], rec["ToBankAccount"]["Code"],
                rec["FromBankTransactionID"], rec["ToBankTransactionID"]) == \
            (transfer["Amount"], "090", "091", transfer["FromBankTransactionID"], transfer["ToBankTransactionID"]), tid
        assert _marker(org, "BankTransfers", transfer)  # billhub's
    spends = _by_id(run, "bank_transactions", "BankTransactionID")
    for sid, spend in org.records("BankTransactions").items():
        rec = spends[sid]
        assert (rec["Type"], amount(rec["Total"]), rec["Contact"]["ContactID"], rec["BankAccount"]["Code"],
                rec.get("Reference")) == ("SPEND", spend["Total"], spend["Contact"]["ContactID"], "090",
                                          _marker(org, "BankTransactions", spend)), sid
    assert len(transfers) == len(spends) == 1


def _assert_settings(run: SingerRun, org: XeroOrg) -> None:
    rates = _by_id(run, "tax_rates", "TaxType")
    for code, rate in org.records("TaxRates").items():
        assert (rates[code]["Name"], amount(rates[code]["EffectiveRate"])) == (rate["Name"], rate["EffectiveRate"])
    accounts = _by_id(run, "accounts", "AccountID")
    assert {a["Code"]: a["Type"] for a in accounts.values()} == \
        {a["Code"]: a["Type"] for a in org.records("Accounts").values()}
    (user,) = run.records["users"]
    assert user["IsSubscriber"] is True
    (theme,) = run.records["branding_themes"]
    assert (theme["Name"], theme["SortOrder"]) == ("Standard", 0)
