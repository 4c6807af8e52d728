"""Failures never pass silently (issue 20, item 6) and a re-authorised connection resumes at
once (item 1): exit codes as the README promises, through the real CLI against a company of
emulators.

- ``hub sync`` exits 1 while a connection needs re-authorisation, and says so;
- a new refresh token from the vendor's consent (here: put in the config) un-pauses the
  connection on the next ``hub sync``, which then exits 0 — the refused token is never presented
  again, and no token call is made while nothing new was given;
- ``hub status`` exits 1 for a connection needing re-authorisation, a dead letter or an open
  finding, and 0 once they are dealt with; ``hub diff`` no longer exits 1 for findings a person
  acknowledged.
"""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from hub import cli
from sync.demo import QBO_REFRESH
from sync.summary import SyncSummary
from tests.e2e.conftest import Company


def _hub(company: Company, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(company.config_path), *args])


def _status(company: Company) -> tuple[int, dict[str, Any]]:
    done = _hub(company, "status", "--json")
    return done.exit_code, json.loads(done.stdout)


def test_needs_reauth_fails_the_commands_and_a_new_refresh_token_resumes_at_once(company: Company) -> None:
    first = _hub(company, "sync")
    assert first.exit_code == 0, first.output
    code, status = _status(company)
    assert code == 0 and status["attention"] == [], status["attention"]

    qbo = company.emus.quickbooks
    emulator: Any = qbo.emulator
    qbo.on_loop(lambda: emulator.oauth_control(revoke_refresh_tokens=True, expire_access_tokens=True))
    refused = _hub(company, "sync")
    assert refused.exit_code == 1, refused.output
    said = " ".join(refused.stderr.split())  # the terminal wraps long lines
    assert "needs attention: quickbooks paused:" in said and "needs re-authorisation" in said, said
    code, status = _status(company)
    assert code == 1 and [a for a in status["attention"] if a.startswith("quickbooks needs_reauth")]
    calls = emulator.oauth_stats()["token_calls"]
    still = _hub(company, "sync")  # nothing new given: still paused, and the refused token not presented
    assert still.exit_code == 1 and emulator.oauth_stats()["token_calls"] == calls

    # A person re-authorised: the vendor issued a new refresh token, now in the config.
    qbo.on_loop(lambda: emulator.oauth_control(refresh_tokens=["RT-after-consent"]))
    text = company.config_path.read_text()
    assert text.count(f'"{QBO_REFRESH}"') == 1
    company.config_path.write_text(text.replace(f'"{QBO_REFRESH}"', '"RT-after-consent"'))
    resumed = _hub(company, "sync", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["paused"] == {}
    code, status = _status(company)
    assert code == 0, status["attention"]
    assert {c["name"]: c["status"] for c in status["connections"]}["quickbooks"] == "ok"


def test_status_fails_for_a_dead_letter_and_diff_not_for_acknowledged_findings(company: Company) -> None:
    assert _hub(company, "sync").exit_code == 0
    store = company.hub.store
    with store.transaction() as tx:
        customer = next(iter(tx.entities_of("customer")))
        assert tx.enqueue(customer.id, "customer", "xero", "update", "attention-test-key", "digest")
        item = [i for i in tx.list_outbox("pending") if i.idempotency_key == "attention-test-key"][0]
        tx.dead_outbox(item.id, "400 validation error")
    code, status = _status(company)
    assert code == 1 and "1 dead letters (hub outbox list)" in status["attention"]
    assert _hub(company, "outbox", "drop", str(item.id), "--reason", "a test's made-up write").exit_code == 0
    code, status = _status(company)
    assert code == 0, status["attention"]

    # A finding: open fails status and diff; acknowledged, neither.
    xero: Any = company.emus.xero.emulator
    xero.seed_now({"Contacts": [{"Name": "Walk-in customer (entered by hand)", "EmailAddress": "walkin@example.org"}]})
    found = _hub(company, "diff", "--entity", "customer", "--json")
    assert found.exit_code == 1, found.output
    findings = [f for f in json.loads(found.stdout)["findings"] if f["status"] == "open"]
    assert findings, found.output
    code, status = _status(company)
    assert code == 1 and status["findings"]["open"] == len(findings)
    for finding in findings:
        assert _hub(company, "drift", "ack", finding["id"]).exit_code == 0
    again = _hub(company, "diff", "--entity", "customer", "--json")
    assert again.exit_code == 0, again.output
    assert {f["status"] for f in json.loads(again.stdout)["findings"]} == {"acknowledged"}
    code, status = _status(company)
    assert code == 0 and status["findings"] == {"open": 0, "acknowledged": len(findings)}


def test_a_pass_needs_attention_for_errors_dead_letters_and_pauses() -> None:
    summary = SyncSummary()
    assert summary.attention() == []
    summary.stats("xero", "invoice").dead = 2
    summary.paused["quickbooks"] = "needs_reauth: invalid_grant"
    summary.errors.append("stripe customer: boom")
    assert summary.attention() == ["1 error", "2 writes dead-lettered (hub outbox list)",
                                   "quickbooks paused: needs_reauth: invalid_grant"]
    assert summary.to_json()["attention"] == summary.attention()
