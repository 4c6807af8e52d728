"""Peer conformance: pyxero (0.9.5), the Python Xero client, reads the Xero emulator and sees what
billhub wrote there.

The organisation is ``xero_org.py``'s (billhub's Stripe customers, products, invoices, payments and
refunds written by its own flows, a Stripe payout booked as a bank transfer and a fee spend). pyxero, in its own venv (``run_pyxero.py``), refreshes an
expired token with its OAuth2 credentials at the emulator's ``/connect/token``, finds the tenant
through ``/connections``, reads every collection it has a manager for, one invoice and one payment
by id, and filters the way its README documents (``Status``, ``Contact_ContactID`` -> ``Guid()``,
``IDs`` undashed, ``Name__startswith``, ``since`` -> ``If-Modified-Since``, ``page``). What it
read equals what the emulator holds (ids, exact amounts, each document's contact and invoice, the
hub's markers); collections the organisation never used are empty lists, the accounting
Employees endpoints (removed by Xero on 28 April 2026) 404; every answer validates against
xero_accounting.yaml. pyxero writes XML; this peer only reads.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.peers.venvs import PeerVenv
from tests.peers.xero_org import XeroOrg, amount, spec_problems

ENTRY = Path(__file__).with_name("run_pyxero.py")
RUN_TIMEOUT_SECONDS = 120

# manager -> (the emulator's collection, its id field)
MODELLED = {"contacts": ("Contacts", "ContactID"), "invoices": ("Invoices", "InvoiceID"),
            "payments": ("Payments", "PaymentID"), "creditnotes": ("CreditNotes", "CreditNoteID"),
            "items": ("Items", "ItemID"), "accounts": ("Accounts", "AccountID"),
            "taxrates": ("TaxRates", "TaxType"), "currencies": ("Currencies", "Code"),
            "banktransactions": ("BankTransactions", "BankTransactionID"),
            "banktransfers": ("BankTransfers", "BankTransferID"),
            "brandingthemes": ("BrandingThemes", "BrandingThemeID"), "users": ("Users", "UserID")}
EMPTY = ("batchpayments", "contactgroups", "expenseclaims", "journals", "manualjournals", "overpayments",
         "prepayments", "purchaseorders", "quotes", "receipts", "repeatinginvoices", "trackingcategories")
GONE = ("employees",)  # removed from the accounting API: 404 as any unknown path


def _pyxero(venv: PeerVenv, org: XeroOrg, asked: dict[str, Any], workdir: Path) -> dict[str, Any]:
    client_id, client_secret = org.client
    body = {"client_id": client_id, "client_secret": client_secret, "refresh_token": org.refresh_token(), **asked}
    done = subprocess.run([str(venv.python), str(ENTRY)], input=json.dumps(body), capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "BILLHUB_XERO_EMULATOR": org.base_url},
                          timeout=RUN_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, f"pyxero run exited {done.returncode}:\n{done.stderr[-6000:]}"
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _ids(records: Any, key: str) -> set[str]:
    assert isinstance(records, list), records  # an error answer is a dict
    return {str(r[key]) for r in records}


def test_pyxero_reads_what_billhub_wrote_and_an_empty_organisation_elsewhere(
        peers: Callable[[str], PeerVenv], xero_org: XeroOrg, tmp_path: Path) -> None:
    org = xero_org
    venv = peers("pyxero")
    invoices, contacts = org.records("Invoices"), org.records("Contacts")
    one_invoice = sorted(invoices)[0]
    customer = invoices[one_invoice]["Contact"]["ContactID"]
    two_contacts = sorted(contacts)[:2]
    prefix = contacts[two_contacts[0]]["Name"].split()[0]
    since = org.company.emus.now - timedelta(days=1)
    asked = {"all": [*MODELLED, "organisations", *EMPTY, *GONE],
             "get": {"invoices": one_invoice, "payments": sorted(org.records("Payments"))[0]},
             "filter": {"paid": ["invoices", {"Status": "PAID"}],
                        "of_contact": ["invoices", {"Contact_ContactID": customer}],
                        "marked": ["invoices", {"Reference": invoices[one_invoice]["Reference"]}],
                        "ids": ["contacts", {"IDs": two_contacts}],
                        "name_startswith": ["contacts", {"Name__startswith": prefix}],
                        "since": ["contacts", {"since": since.isoformat()}],
                        "page": ["invoices", {"page": 1}]}}
    emu = org.emulator
    emu.captured = []
    out = _pyxero(venv, org, asked, tmp_path)
    captured, emu.captured = list(emu.captured), None

    print("pyxero records per collection:", {k: len(v) if isinstance(v, list) else v for k, v in out["all"].items()})
    assert out["token_rotated"] is True and out["tenant_id"] == org.tenant_id
    assert [t["tenantId"] for t in out["tenants"]] == [org.tenant_id]
    read = out["all"]
    for manager, (collection, key) in MODELLED.items():
        stored = {k for k, v in org.records(collection).items() if not v.get("_deleted")}
        assert _ids(read[manager], key) == stored, manager
    for manager in EMPTY:
        assert read[manager] == [], manager
    for manager in GONE:
        assert read[manager]["error"] == 404, manager
    (organisation,) = read["organisations"]
    expected = org.emulator._organisation(org.emulator.tenants[org.tenant_id])
    assert (organisation["OrganisationID"], organisation["Name"], organisation["BaseCurrency"],
            organisation["CountryCode"]) == (expected["OrganisationID"], "Billhub Demo Org", "USD", "US")

    _assert_what_billhub_wrote(read, org)
    _assert_single_reads_and_filters(out, org, one_invoice, customer, two_contacts, prefix)

    assert not [a for a in captured if a["status"] != 200 and not a["path"].endswith("/Employees")]
    problems = spec_problems([a for a in captured if a["status"] == 200])
    assert not problems, "\n".join(problems[:10])


def _marker(org: XeroOrg, collection: str, record: dict[str, Any]) -> str | None:
    marked = org.hub_marker(collection, record)
    return None if marked is None else marked[1]


def _assert_what_billhub_wrote(read: dict[str, Any], org: XeroOrg) -> None:
    contacts = {c["ContactID"]: c for c in read["contacts"]}
    for cid, contact in org.records("Contacts").items():
        assert (contacts[cid]["Name"], contacts[cid].get("EmailAddress"), contacts[cid].get("ContactNumber")) == \
            (contact["Name"], contact.get("EmailAddress"), _marker(org, "Contacts", contact)), cid
    invoices = {i["InvoiceID"]: i for i in read["invoices"]}
    for iid, inv in org.records("Invoices").items():
        rec = invoices[iid]
        assert (rec["InvoiceNumber"], rec["Status"], rec["CurrencyCode"], rec["Contact"]["ContactID"],
                rec.get("Reference")) == (inv["InvoiceNumber"], inv["Status"], inv["CurrencyCode"],
                                          inv["Contact"]["ContactID"], _marker(org, "Invoices", inv)), iid
        for field in ("SubTotal", "TotalTax", "Total", "AmountDue", "AmountPaid"):
            assert amount(rec[field]) == inv[field], (iid, field)
    payments = {p["PaymentID"]: p for p in read["payments"]}
    for pid, pay in org.records("Payments").items():
        rec = payments[pid]
        assert (amount(rec["Amount"]), rec["PaymentType"], rec.get("Reference")) == \
            (pay["Amount"], pay["PaymentType"], _marker(org, "Payments", pay)), pid
        target = "Invoice" if pay.get("Invoice") else "CreditNote"
        assert rec[target][target + "ID"] == pay[target][target + "ID"], pid
    notes = {n["CreditNoteID"]: n for n in read["creditnotes"]}
    for nid, note in org.records("CreditNotes").items():
        assert (amount(notes[nid]["Total"]), notes[nid]["Contact"]["ContactID"], notes[nid].get("Reference")) == \
            (note["Total"], note["Contact"]["ContactID"], _marker(org, "CreditNotes", note)), nid
    items = {i["ItemID"]: i for i in read["items"]}
    for iid, item in org.records("Items").items():
        assert (items[iid]["Code"], items[iid].get("PurchaseDescription")) == \
            (item["Code"], _marker(org, "Items", item)), iid
    (transfer,) = org.records("BankTransfers").values()
    (read_transfer,) = read["banktransfers"]
    assert (amount(read_transfer["Amount"]), read_transfer["FromBankAccount"]["Code"],
            read_transfer["ToBankAccount"]["Code"], read_transfer["Reference"]) == \
        (transfer["Amount"], "090", "091", _marker(org, "BankTransfers", transfer))
    (spend,) = org.records("BankTransactions").values()
    (read_spend,) = read["banktransactions"]
    assert (read_spend["Type"], amount(read_spend["Total"]), read_spend["Contact"]["ContactID"],
            read_spend["Reference"]) == ("SPEND", spend["Total"], spend["Contact"]["ContactID"],
                                         _marker(org, "BankTransactions", spend))
    rates = {r["TaxType"]: amount(r["EffectiveRate"]) for r in read["taxrates"]}
    assert rates == {code: r["EffectiveRate"] for code, r in org.records("TaxRates").items()}


def _assert_single_reads_and_filters(out: dict[str, Any], org: XeroOrg, one_invoice: str, customer: str,
                                     two_contacts: list[str], prefix: str) -> None:
    invoices, contacts = org.records("Invoices"), org.records("Contacts")
    (got,) = out["get"]["invoices"]
    stored = invoices[one_invoice]
    assert got["InvoiceID"] == one_invoice and amount(got["Total"]) == stored["Total"]
    assert [(amount(li["LineAmount"]), li.get("Description")) for li in got["LineItems"]] == \
        [(li["LineAmount"], li.get("Description")) for li in stored["LineItems"]]
    (payment,) = out["get"]["payments"]
    assert payment["PaymentID"] == sorted(org.records("Payments"))[0]

    found = out["filter"]
    assert _ids(found["paid"], "InvoiceID") == {k for k, v in invoices.items() if v["Status"] == "PAID"}
    assert _ids(found["of_contact"], "InvoiceID") == \
        {k for k, v in invoices.items() if v["Contact"]["ContactID"] == customer}
    assert _ids(found["marked"], "InvoiceID") == {one_invoice}
    assert _ids(found["ids"], "ContactID") == set(two_contacts)
    assert _ids(found["name_startswith"], "ContactID") == \
        {k for k, v in contacts.items() if v["Name"].startswith(prefix)}
    assert _ids(found["since"], "ContactID") == set(contacts)  # all written after the bound
    assert _ids(found["page"], "InvoiceID") == set(invoices)  # one page of 100 holds the twelve
