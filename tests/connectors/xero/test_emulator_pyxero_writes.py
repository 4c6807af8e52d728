"""pyxero (0.9.5), a client nobody here wrote, writes to the Xero emulator (issue 19): every body
it sends is XML, and each is saved as its JSON twin would be. Contacts (both address types, phone
types, contact persons; a fetched contact sent back whole with one field changed), an item with
sales details, an invoice, its payment, a credit note and its allocation (pyxero's
``<Allocation>…<AppliedAmount>``), an update by ``save`` and a refusal that pyxero reads as its
``XeroBadRequest`` with Xero's message. Before the XML reader every one of these was a 400 ("could
not be parsed as JSON"). The peer runs in its own venv (tests/peers/venvs.py) through
run_pyxero_writes.py; what it was answered is checked against what the emulator holds."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.emulation import RunningEmulator
from connectors.xero.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    XeroEmulator,
)
from tests.peers.venvs import peer_venv

RUNNER = Path(__file__).resolve().parents[2] / "peers" / "run_pyxero_writes.py"


@pytest.fixture(scope="module")
def wrote(running: RunningEmulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    venv = peer_venv("pyxero")
    body = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
            "refresh_token": DEFAULT_REFRESH_TOKEN}
    done = subprocess.run([str(venv.python), str(RUNNER)], input=json.dumps(body), capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path_factory.mktemp("pyxero")),
                               "BILLHUB_XERO_EMULATOR": running.base_url}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.fixture(scope="module")
def emu(running: RunningEmulator) -> XeroEmulator:
    emulator = running.emulator
    assert isinstance(emulator, XeroEmulator)
    return emulator


def test_every_xml_write_was_accepted(wrote: dict[str, Any], emu: XeroEmulator) -> None:
    refused = {step: answer for step, answer in wrote.items()
               if isinstance(answer, dict) and "error" in answer and step != "invoices.put refused"}
    assert not refused, refused
    put_calls = {k: v for k, v in emu.stats.calls.items() if k.startswith(("PUT", "POST"))}
    assert put_calls["PUT /api.xro/2.0/Contacts"] == 1 and put_calls["POST /api.xro/2.0/Contacts"] == 1


def test_contacts_saved_as_their_json_twins(wrote: dict[str, Any], emu: XeroEmulator) -> None:
    (created,) = wrote["contacts.put"]
    stored = emu.tenant.table("Contacts")[created["ContactID"]]
    assert (stored["Name"], stored["IsCustomer"]) == ("Py Co", True)
    assert stored["EmailAddress"] == "accounts@example.com"  # the edit pyxero's save sent
    assert [(a["AddressType"], a["AddressLine1"], a["City"]) for a in stored["Addresses"]] == [
        ("STREET", "", ""), ("POBOX", "PO Box 1", "Wellington")]
    assert [(p["PhoneType"], p["PhoneNumber"]) for p in stored["Phones"]] == [
        ("DEFAULT", ""), ("DDI", ""), ("FAX", ""), ("MOBILE", "021 555 0101")]
    assert stored["ContactPersons"] == [{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@example.com",
                                         "IncludeInEmails": True}]
    (item,) = wrote["items.put"]
    assert emu.tenant.table("Items")[item["ItemID"]]["SalesDetails"] == {"UnitPrice": Decimal("12.5"),
                                                                           "AccountCode": "200"}


def test_documents_payments_and_allocations(wrote: dict[str, Any], emu: XeroEmulator) -> None:
    (invoice,) = wrote["invoices.put"]
    stored = emu.tenant.table("Invoices")[invoice["InvoiceID"]]
    assert (stored["Date"], stored["DueDate"]) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    assert [(li["Quantity"], li["UnitAmount"], li["LineAmount"]) for li in stored["LineItems"]] == [
        (Decimal(2), Decimal("49.95"), Decimal("99.90"))]
    assert (stored["Total"], stored["AmountPaid"], stored["AmountCredited"], stored["AmountDue"]) == (
        Decimal("109.89"), Decimal("9.89"), Decimal("20.00"), Decimal("80.00"))
    assert stored["Reference"] == "py-1b"  # pyxero's save of one field
    (payment,) = wrote["payments.put"]
    assert emu.tenant.table("Payments")[payment["PaymentID"]]["Amount"] == Decimal("9.89")
    allocations = wrote["creditnotes.put_allocation"]["Allocations"]
    assert [a["Amount"] for a in allocations] == [20.0]
    (read,) = wrote["invoices.get"]
    assert [p["PaymentID"] for p in read["Payments"]] == [payment["PaymentID"]]
    assert [c["CreditNoteID"] for c in read["CreditNotes"]] == [wrote["creditnotes.put"][0]["CreditNoteID"]]
    assert wrote["invoices.put refused"] == {"error": 400, "problems": ["At least one line item must be specified"]}
