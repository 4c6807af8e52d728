"""Nothing read is taken for deleted, and a repair never double-posts (issue 23), end to end:
the emulators, the real SDKs, the hub's diff and ``hub resync --finding``.

* a QuickBooks invoice made unmappable behind the hub's back (an unknown currency code) is an
  ``unreadable`` finding, not ``broken_link``;
* a repair write of a record that may already be there looks it up by the hub's marker first,
  so even a forced re-push of that unmappable invoice leaves one invoice of its number;
* a genuinely deleted invoice is ``broken_link``; ``hub resync --finding`` writes exactly one
  invoice with that number again and the next diff is clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub import cli
from sync.engine import SyncSummary
from tests.e2e.conftest import Company
from tests.e2e.test_drift import by_kind, clean_sync, clocked_company


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    """A seeded company whose hub runs on a clock the test controls (as in test_drift)."""
    with clocked_company(tmp_path, customers=30, invoices=60) as (c, _clock):
        yield c


def qbo_invoices_numbered(company: Company, number: str) -> list[dict[str, Any]]:
    """Read back through the QuickBooks SDK the hub uses (a query by DocNumber)."""
    reader: Any = company.hub.connectors["quickbooks"]
    found = [r for page in reader.fetch_all("invoice") for r in page.records
             if r.data.get("DocNumber") == number]
    return [dict(r.data) for r in found]


def linked_qbo_invoices(company: Company) -> dict[str, str]:
    with company.hub.store.transaction() as tx:
        return {link.external_id: link.canonical_id for link in tx.links_in("quickbooks", "invoice")
                if not link.deleted}


def test_an_unmappable_invoice_is_unreadable_and_a_deleted_one_is_repaired_once(
        company: Company) -> None:
    clean_sync(company)
    qbo: Any = company.emus.quickbooks.emulator
    realm = company.qbo
    linked = linked_qbo_invoices(company)
    unpaid = [i for i in sorted(linked, key=int)  # QuickBooks refuses to delete a paid invoice
              if Decimal(str(realm.table("Invoice")[i]["Balance"])) == Decimal(str(realm.table("Invoice")[i]["TotalAmt"]))]
    garbled_id, deleted_id = unpaid[:2]
    garbled_number = realm.table("Invoice")[garbled_id]["DocNumber"]
    deleted_number = realm.table("Invoice")[deleted_id]["DocNumber"]

    # -- behind the hub's back: one invoice's currency becomes a code nobody knows
    qbo.edit(realm, "Invoice", garbled_id, {"CurrencyRef": {"value": "ZZZ"}})
    found = by_kind(company.hub.differ.run(["invoice"]).findings)
    unreadable = found[("unreadable", "invoice", "quickbooks")]
    assert unreadable["external_ids"] == [garbled_id]
    assert "ZZZ" in unreadable["detail"] and linked[garbled_id] in unreadable["detail"]
    assert ("broken_link", "invoice", "quickbooks") not in found
    assert ("missing", "invoice", "quickbooks") not in found

    # -- the old recommended repair (forget the link, re-push) now looks up by marker first
    with company.hub.store.transaction() as tx:
        tx.unlink(linked[garbled_id], "quickbooks", "invoice")
        assert company.hub.engine.repush(tx, linked[garbled_id], only="quickbooks", nonce="forced")
    summary = SyncSummary()
    company.hub.engine.push("quickbooks", summary, None, entities=["invoice"])
    assert summary.errors == [], summary.errors
    assert [i["Id"] for i in qbo_invoices_numbered(company, garbled_number)] == [garbled_id]
    assert realm.table("Invoice")[garbled_id]["CurrencyRef"]["value"] != "ZZZ"  # the hub's truth again

    # -- a genuinely deleted invoice: broken_link, repaired once on the command line
    qbo.remove(realm, "Invoice", deleted_id)
    found = by_kind(company.hub.differ.run(["invoice"]).findings)
    broken = found[("broken_link", "invoice", "quickbooks")]
    assert broken["external_ids"] == [deleted_id]
    done = CliRunner().invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                                    broken["id"], "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["written"] == 1
    again = qbo_invoices_numbered(company, deleted_number)
    assert len(again) == 1 and again[0]["Id"] != deleted_id
    after = company.hub.differ.run(["invoice"])
    assert after.findings == [], after.findings
