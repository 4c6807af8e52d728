"""Safe first contact (issue 20, item 5): a hub started fresh against four systems that already
agree links every record and writes nothing; one real difference is exactly one write.

The agreeing company is made the way a real one would be: one hub syncs Stripe into QuickBooks,
Xero and Salesforce, then its database is thrown away and a new hub (new database, the same
emulators, a refresh token a person would get by reconnecting) meets the systems for the first
time. Before this work the fresh hub's dry run planned a create for every record, and the sync
sent an update for every matched record and a second payment for each QuickBooks payment
(dead-lettered: "amount applied exceeds the open balance"), leaving orphan refunds in the diff.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from hub import cli
from state.audit import AuditFilter
from state.crypto import generate_key
from sync.audit import cli_actor
from sync.config import load_config
from sync.demo import QBO_REFRESH, XERO_REFRESH
from sync.flows import ENTITY_ORDER
from sync.runtime import Hub
from tests.e2e.conftest import Company, start_company

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# POSTs that change nothing: OAuth token refreshes, and QuickBooks' query endpoint (the
# connector reads by POSTing SQL); QuickBooks' /batch may carry writes, so its state is compared
READS_BY_POST = ("token", "/query", "/batch")


@pytest.fixture(scope="module")
def agreeing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    company = start_company(tmp_path_factory.mktemp("first-contact"), customers=12, invoices=24)
    try:
        first = company.hub.engine.sync()
        assert first.errors == [] and first.totals().dead == 0 and first.totals().written > 0
        assert company.hub.engine.sync().totals().written == 0  # settled: the systems agree
        company.hub.close()
        yield company
    finally:
        company.emus.stop()


def fresh_hub(company: Company, name: str, *, review: str | None = None) -> Hub:
    """A new hub with an empty database on the same emulators; the OAuth grants a person gets
    by reconnecting (the first hub's rotated refresh tokens died with its database)."""
    quickbooks: Any = company.emus.quickbooks
    xero: Any = company.emus.xero
    quickbooks.on_loop(lambda: quickbooks.emulator.oauth_control(refresh_tokens=[QBO_REFRESH]))
    xero.on_loop(lambda: xero.emulator.issue_refresh_token(XERO_REFRESH))
    config = company.config_path.with_name(f"{name}.toml")
    text = company.emus.config_toml(f"sqlite:///{config.with_suffix('.db')}", generate_key())
    if review:  # first_contact = "review" on that connection only
        table = f'[connections.{review}]\nsystem = "{review}"\n'
        assert table in text
        text = text.replace(table, f'{table}first_contact = "review"\n')
    config.write_text(text)
    hub = Hub.from_config(load_config(config))
    hub.store.init()
    return hub


def vendor_writes(company: Company) -> Counter[str]:
    return Counter({f"{name} {call}": n for name, running in company.emus.all.items()
                    for call, n in running.emulator.stats.calls.items()
                    if call.split()[0] in WRITES and not any(r in call for r in READS_BY_POST)})


def qbo_state(company: Company) -> str:
    return json.dumps(company.qbo.tables, sort_keys=True, default=str)


def test_a_fresh_hub_against_agreeing_systems_links_everything_and_writes_nothing(agreeing: Company) -> None:
    hub = fresh_hub(agreeing, "fresh")
    try:
        writes, books = vendor_writes(agreeing), qbo_state(agreeing)
        dry = hub.engine.sync(dry_run=True)
        assert dry.errors == [] and dry.planned == []
        rows = {(r["connection"], r["entity"]): r for r in dry.first_contact}
        assert sum(r["updated"] + r["created"] + r["held"] for r in rows.values()) == 0, rows
        # every entity type of every ledger is matched, payments and refunds included
        for ledger in ("quickbooks", "xero"):
            for entity in ("customer", "product", "invoice", "payment", "refund"):
                assert rows[(ledger, entity)]["linked"] > 0, (ledger, entity)
        assert rows[("quickbooks", "payment")]["linked"] == len(agreeing.qbo.table("Payment"))
        assert rows[("salesforce", "invoice")]["linked"] == len(agreeing.salesforce.tables["Billing_Invoice__c"])

        summary = hub.engine.sync()
        assert summary.errors == [] and summary.attention() == []  # exit 0, nothing dead
        assert summary.totals().written == 0 and summary.totals().dead == 0
        assert vendor_writes(agreeing) == writes  # not one write request to any vendor
        assert qbo_state(agreeing) == books
        with hub.store.transaction() as tx:
            assert tx.list_outbox("dead") == []
        result = hub.differ.run(list(ENTITY_ORDER))
        assert result.findings == []
    finally:
        hub.close()


def test_one_real_difference_is_exactly_one_write(agreeing: Company) -> None:
    customer = next(iter(agreeing.qbo.table("Customer").values()))
    renamed = f"{customer['DisplayName']} (typed in QuickBooks)"
    quickbooks: Any = agreeing.emus.quickbooks
    quickbooks.on_loop(lambda: customer.update(DisplayName=renamed))
    hub = fresh_hub(agreeing, "one-difference")
    try:
        dry = hub.engine.sync(dry_run=True)
        assert [(p["system"], p["entity"], p["operation"], p["external_id"]) for p in dry.planned] == [
            ("quickbooks", "customer", "update", customer["Id"])]
        rows = {(r["connection"], r["entity"]): r for r in dry.first_contact}
        assert rows[("quickbooks", "customer")]["updated"] == 1
        assert "differs in name" in " ".join(rows[("quickbooks", "customer")]["why"])

        writes = vendor_writes(agreeing)
        summary = hub.engine.sync()
        assert summary.errors == [] and summary.attention() == []
        assert summary.totals().written == 1
        assert vendor_writes(agreeing) - writes == Counter({"quickbooks POST /v3/company/{realm}/customer": 1})
        assert agreeing.qbo.table("Customer")[customer["Id"]]["DisplayName"] != renamed  # the hub's name again
        assert hub.differ.run(list(ENTITY_ORDER)).findings == []
    finally:
        hub.close()


def test_review_holds_every_write_until_approved(agreeing: Company) -> None:
    """first_contact = "review": planned, not sent, until `hub review approve`."""
    customer = list(agreeing.qbo.table("Customer").values())[1]
    quickbooks: Any = agreeing.emus.quickbooks
    quickbooks.on_loop(lambda: customer.update(DisplayName=f"{customer['DisplayName']} (edited)"))
    hub = fresh_hub(agreeing, "review", review="quickbooks")
    config = str(agreeing.config_path.with_name("review.toml"))
    try:
        assert hub.engine.review_connections == {"quickbooks"}
        dry = hub.engine.sync(dry_run=True)
        rows = {(r["connection"], r["entity"]): r for r in dry.first_contact}
        assert rows[("quickbooks", "customer")]["held"] == 1 and rows[("quickbooks", "customer")]["updated"] == 0
        assert "hub review approve" in " ".join(rows[("quickbooks", "customer")]["why"])

        writes = vendor_writes(agreeing)
        held = hub.engine.sync()
        assert held.waiting_review == {"quickbooks": 1} and held.totals().written == 0
        assert vendor_writes(agreeing) == writes  # nothing sent
        listed = CliRunner().invoke(cli, ["--config", config, "review", "--json"])
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.output)["connections"] == [
            {"connection": "quickbooks", "approved": False, "pending": {"customer update": 1}}]
        wrong = CliRunner().invoke(cli, ["--config", config, "review", "approve", "--connection", "xero"])
        assert wrong.exit_code == 2 and "not a connection with first_contact" in wrong.output

        approved = CliRunner().invoke(cli, ["--config", config, "review", "approve", "--connection", "quickbooks"])
        assert approved.exit_code == 0 and "approved quickbooks" in approved.output
        with hub.store.transaction() as tx:  # who approved, and what it let go, in the audit log
            (entry,) = tx.list_audit(AuditFilter(action="review.approve"))
        assert (entry.actor, entry.target_id) == (cli_actor(), "quickbooks")
        assert entry.after == {"approved": True, "pending": {"customer update": 1}}
        sent = hub.engine.sync()
        assert sent.waiting_review == {} and sent.totals().written == 1 and sent.attention() == []
        assert vendor_writes(agreeing) - writes == Counter({"quickbooks POST /v3/company/{realm}/customer": 1})
        assert hub.differ.run(list(ENTITY_ORDER)).findings == []
    finally:
        hub.close()


def test_dry_run_prints_the_table() -> None:
    """The table people read: per connection and entity, linked / updated / created / held."""
    from sync.summary import SyncSummary
    from sync.terminal import console, print_summary

    summary = SyncSummary(first_contact=[{"connection": "quickbooks", "entity": "payment", "linked": 3,
                                          "unchanged": 0, "updated": 1, "created": 0, "held": 0,
                                          "why": {"linked: matched": 3, "updated: differs in amount": 1}}])
    width = console.width
    console.width = 240  # one line a row, whatever the terminal running the tests
    try:
        with console.capture() as captured:
            print_summary(summary, False, "Dry run")
    finally:
        console.width = width
    text = captured.get()
    assert "quickbooks" in text and "payment" in text and "differs in amount" in text
