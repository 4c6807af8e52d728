"""``hub setup salesforce`` and ``hub setup webhooks`` (issue 20, item 3) against the emulators,
through the real SDKs (simple-salesforce's Tooling calls, stripe-python's webhook endpoints)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connectors.quickbooks.emulator.store import make_vat_company
from connectors.salesforce.errors import SalesforceSetupError
from connectors.stripe.webhooks import webhook_events
from hub import cli
from state.audit import AuditFilter
from state.crypto import generate_key
from sync.audit import cli_actor
from sync.config import load_config
from sync.demo import QBO_REALM, Emulators, start_emulators
from sync.runtime import Hub, open_store


@pytest.fixture(scope="module")
def emus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulators, Path]]:
    workdir = tmp_path_factory.mktemp("setup")
    running = start_emulators(workdir)
    sf: Any = running.salesforce.emulator
    running.salesforce.on_loop(lambda: sf.configure_org(custom_schema=False))  # a fresh org
    config = running.config_toml(f"sqlite:///{workdir}/hub.db", generate_key())
    # no webhook_secret in the config: the one `hub setup webhooks` stores is used
    config = "\n".join(line for line in config.splitlines() if not line.startswith("webhook_secret"))
    path = workdir / "hub.toml"
    path.write_text(config)
    assert _hub(path, "init").exit_code == 0
    yield running, path
    running.stop()


def _hub(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(path), *args])


def test_setup_salesforce_creates_the_schema_once_and_check_lists_what_is_missing(
        emus: tuple[Emulators, Path]) -> None:
    running, path = emus
    hub = Hub.from_config(load_config(path))
    try:
        fresh: Any = hub.connectors["salesforce"]
        with pytest.raises(SalesforceSetupError) as refused:
            fresh.learn()
        assert "`hub setup salesforce`" in str(refused.value) and "coming" not in str(refused.value)
    finally:
        hub.close()

    before = _hub(path, "setup", "salesforce", "--check", "--json")
    assert before.exit_code == 1, before.output
    missing = json.loads(before.stdout)["salesforce"]["missing"]
    assert missing[0] == "Billing_Invoice__c"
    for name in ("Account.Hub_Id__c", "Account.Billing_Status__c", "Account.Billing_Email__c",
                 "PricebookEntry.Billing_Interval__c", "Billing_Invoice__c.Amount_Credited__c",
                 "Billing_Invoice__c.Account__c", "Opportunity.Hub_Id__c", "Product2.Hub_Id__c"):
        assert name in missing
    created_nothing: Any = running.salesforce.emulator
    assert "Billing_Invoice__c" not in created_nothing.schema  # --check creates nothing

    done = _hub(path, "setup", "salesforce", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["salesforce"]
    assert report["created"] == missing and report["hidden"] == []
    fields = [n for n in missing if "." in n]
    assert report["granted"] == ["PermissionSet", "ObjectPermissions Billing_Invoice__c",
                                 *(f"FieldPermissions {n}" for n in fields), "PermissionSetAssignment"]
    org: Any = running.salesforce.emulator
    grants = {(r["SobjectType"], r["Field"], r["PermissionsRead"], r["PermissionsEdit"])
              for r in org.tables["FieldPermissions"].values()}
    assert grants == {(n.split(".")[0], n, True, True) for n in fields}
    assigned = list(org.tables["PermissionSetAssignment"].values())
    assert [a["AssigneeId"] for a in assigned] == [org.user_id]

    again = _hub(path, "setup", "salesforce", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["salesforce"]["created"] == []
    store = open_store(load_config(path))
    try:  # what it made in the org is in the audit log, once: the second run made nothing
        with store.transaction() as tx:
            (made,) = tx.list_audit(AuditFilter(action="setup.salesforce"))
    finally:
        store.dispose()
    assert made.actor == cli_actor() and made.after["created"] == json.loads(done.stdout)["salesforce"]["created"]
    assert json.loads(again.stdout)["salesforce"]["granted"] == []  # each grant made once
    check = _hub(path, "setup", "salesforce", "--check")
    assert check.exit_code == 0 and "0 missing" in check.stdout

    hub = Hub.from_config(load_config(path))
    try:
        connector: Any = hub.connectors["salesforce"]
        connector.learn()  # first contact now passes: every field there, the marker an External ID
        described = connector.client.call(lambda sf: sf.restful("sobjects/Account/describe"))
        marker = next(f for f in described["fields"] if f["name"] == "Hub_Id__c")
        assert marker["externalId"] and marker["unique"] and marker["type"] == "string"
        status = next(f for f in described["fields"] if f["name"] == "Billing_Status__c")
        assert [v["value"] for v in status["picklistValues"]] == ["none", "active", "past_due", "canceled"]
        sf_api: Any = connector.client.sdk()
        account = sf_api.Account.upsert("Hub_Id__c/cus-1", {"Name": "Acme", "Billing_Status__c": "active"})
        assert account == 201
        rows = connector.client.call(lambda sf: sf.query(
            "SELECT Id, Hub_Id__c FROM Account WHERE Hub_Id__c = 'cus-1'"))["records"]
        made = sf_api.Billing_Invoice__c.create({"Name": "INV-1", "Account__c": rows[0]["Id"],
                                                 "Amount__c": "12.50", "Status__c": "Open"})
        children = connector.client.call(lambda sf: sf.query(
            "SELECT Name, (SELECT Amount__c FROM Billing_Invoices__r) FROM Account"))["records"]
        assert made["success"] and Decimal(str(children[0]["Billing_Invoices__r"]["records"][0]["Amount__c"])) == Decimal("12.5")
    finally:
        hub.close()


def test_setup_webhooks_registers_stripe_once_and_stores_its_secret(emus: tuple[Emulators, Path]) -> None:
    running, path = emus
    stripe: Any = running.stripe.emulator
    done = _hub(path, "setup", "webhooks", "--url", "https://billhub.example.com/")
    assert done.exit_code == 0, done.output
    url = "https://billhub.example.com/webhooks/stripe"
    endpoints = list(stripe.objects.get("webhook_endpoint", {}).values())
    assert [e["url"] for e in endpoints] == [url]
    assert endpoints[0]["enabled_events"] == webhook_events()
    assert "invoice.paid" in webhook_events() and "payout.paid" in webhook_events()
    assert "signing secret stored" in done.stdout
    assert "https://billhub.example.com/webhooks/quickbooks" in done.stdout
    assert "webhook_verifier_token" in done.stdout and "webhook_key" in done.stdout
    assert "CONTACT, INVOICE" in done.stdout

    stripe.objects["webhook_endpoint"][endpoints[0]["id"]]["enabled_events"] = ["customer.created"]
    again = _hub(path, "setup", "webhooks", "--url", "https://billhub.example.com", "--connection", "stripe")
    assert again.exit_code == 0 and "updated" in again.stdout and "already stored" in again.stdout
    endpoints = list(stripe.objects["webhook_endpoint"].values())
    assert len(endpoints) == 1 and endpoints[0]["enabled_events"] == webhook_events()

    secret = endpoints[0]["_secret"]
    hub = Hub.from_config(load_config(path))
    try:
        with hub.store.transaction() as tx:  # both registrations are in the audit log; the secret is not
            made = list(reversed(tx.list_audit(AuditFilter(action="setup.webhooks"))))
        assert [(e.actor, e.target_id, e.after["action"], e.after["url"]) for e in made] == [
            (cli_actor(), "stripe", "created", url), (cli_actor(), "stripe", "updated", url)]
        assert secret not in str([e.to_json() for e in made])
        body = b'{"id": "evt_1", "object": "event", "type": "customer.created"}'
        t = 1_800_000_000
        signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        connector: Any = hub.connectors["stripe"]
        events = connector.verify_webhook({"Stripe-Signature": f"t={t},v1={signature}"}, body, now=t)
        assert [e.event_id for e in events] == ["evt_1"]
    finally:
        hub.close()


def test_mappings_lists_each_ledger_and_suggests_keys_saying_why(emus: tuple[Emulators, Path], tmp_path: Path) -> None:
    running, path = emus
    qbo_emulator: Any = running.quickbooks.emulator

    def vat_company() -> None:  # a UK company with a Stripe clearing account and a fee account
        realm = qbo_emulator.realm(QBO_REALM)
        make_vat_company(realm, "GB", "GBP")
        stamp = realm.table("Account")["1"]["MetaData"]
        realm.table("Account").update({
            "90": {"Id": "90", "Name": "Stripe clearing", "AccountType": "Bank", "Active": True,
                   "SyncToken": "0", "MetaData": stamp},
            "91": {"Id": "91", "Name": "Stripe fees", "AccountType": "Expense", "Active": True,
                   "SyncToken": "0", "MetaData": stamp}})

    running.quickbooks.on_loop(vat_company)
    out = tmp_path / "suggested.toml"
    done = _hub(path, "mappings", "--write", str(out))
    assert done.exit_code == 0, done.output
    assert "Stripe clearing" in done.stdout and "Business Bank Account" in done.stdout  # both charts listed
    assert "20.0% S" in done.stdout and "OUTPUT2" in done.stdout
    text = out.read_text()
    suggested = tomllib.loads(text)
    assert suggested["connections"]["quickbooks"] == {
        "clearing_account_id": "90", "payout_bank_account_id": "2", "fee_account_id": "91",
        "income_account_id": "1"}
    assert suggested["tax_codes"]["quickbooks"] == {"20": "20.0% S", "5": "5.0% R"}
    assert '# "0" = ""  # 4 codes at 0 %' in text  # several zero-rate codes: the user picks, by treatment
    # Xero's demo chart has no Stripe account: the clearing key is left for the user, with candidates
    assert suggested["connections"]["xero"] == {"payout_bank_account_code": "090", "fee_account_code": "404",
                                                "sales_account_code": "200"}
    assert "# clearing_account_code = \"\"  # not chosen: no BANK account is named stripe / clearing" in text
    assert "091 'Business Savings Account'" in text
    assert suggested["tax_codes"]["xero"] == {"10": "OUTPUT", "20": "OUTPUT2"}
    assert "'Stripe fees': type Expense, its name has \"stripe\"" in text  # each pick says why
    refused = _hub(path, "mappings", "--write", str(out))
    assert refused.exit_code == 2 and "exists" in refused.stderr
    # the same in each format (issue 21, item 5): JSON for scripts, CSV for a sheet, 80 columns
    ledgers = {d["connection"]: d for d in json.loads(_hub(path, "mappings", "--format", "json").stdout)["ledgers"]}
    assert {"key": "90", "name": "Stripe clearing", "type": "Bank"} in ledgers["quickbooks"]["accounts"]
    assert [t["rate"] for t in ledgers["quickbooks"]["tax_codes"] if t["code"] == "20.0% S"] == ["20"]
    assert 'fee_account_id = "91"' in ledgers["quickbooks"]["suggestion"]
    rows = list(csv.DictReader(io.StringIO(_hub(path, "mappings", "--format", "csv").stdout)))
    assert {"connection": "xero", "list": "tax_code", "key": "OUTPUT2"}.items() <= next(
        r for r in rows if r["key"] == "OUTPUT2").items()
    table = CliRunner().invoke(cli, ["--config", str(path), "mappings"], env={"COLUMNS": "80"}).stdout
    tables = table[:table.index(ledgers["quickbooks"]["suggestion"].splitlines()[0])]  # the config text is not a table
    assert "Stripe clearing" in tables and [line for line in tables.splitlines() if len(line) > 80] == []
