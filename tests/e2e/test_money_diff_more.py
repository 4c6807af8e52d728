"""More of the money-level diff end to end (issue 18, item 5): what the hub prescribes beyond a
document's amounts — the Account's billing status in Salesforce, a foreign payment's exchange
rate in each ledger, a payout's fees — planted in a system's store behind the hub's back, found,
and repaired with exactly one write."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from click.testing import CliRunner

from hub import cli
from tests.e2e.conftest import Company
from tests.e2e.test_drift import SLA, Clock, clean_sync, clocked, triples

__all__ = ["clocked"]  # the fixture, shared with test_drift


def resync(company: Company, finding_id: str) -> dict[str, Any]:
    done = CliRunner().invoke(cli, ["--config", str(company.config_path), "resync", "--finding",
                                    finding_id, "--json"])
    assert done.exit_code == 0, done.output
    result: dict[str, Any] = json.loads(done.output)
    return result


def test_a_billing_status_changed_by_hand_in_salesforce_is_a_mismatch_and_one_write_restores_it(
        clocked: tuple[Company, Clock]) -> None:
    company, clock = clocked
    clean_sync(company)
    sf: Any = company.salesforce
    account = next(a for a in sorted(sf.records("Account"), key=lambda a: a["Id"])
                   if a.get("Hub_Id__c") and a.get("Billing_Status__c") == "active")
    sf.update("Account", account["Id"], {"Billing_Status__c": "canceled"})
    clock.advance(SLA + timedelta(minutes=1))

    found = company.hub.differ.run(["customer"]).findings
    # was: nothing (the diff compared a customer's name, email and balance only)
    assert triples(found) == [("mismatch", "customer", "salesforce")], found
    (finding,) = found
    assert finding["external_ids"] == [account["Id"]] and finding["canonical_id"] == account["Hub_Id__c"]
    assert finding["fields"] == {"billing_status": {"hub": "active", "salesforce": "canceled"}}

    assert resync(company, finding["id"])["written"] == 1
    restored = next(a for a in sf.records("Account") if a["Id"] == account["Id"])
    assert restored["Billing_Status__c"] == "active"
    assert company.hub.differ.run(["customer"]).findings == []
