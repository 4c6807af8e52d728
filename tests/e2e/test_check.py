"""``hub check`` (issue 20, item 2): each vendor called with the stored credentials, through the
real SDKs against the emulators; ``hub status`` never calls a connection "ok" nobody checked."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from hub import cli
from tests.e2e.conftest import Company


def _hub(company: Company, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(company.config_path), *args])


def _statuses(company: Company) -> dict[str, str]:
    done = _hub(company, "status", "--json")
    return {c["name"]: c["status"] for c in json.loads(done.stdout)["connections"]}


def test_check_reports_each_account_and_status_shows_only_checked_connections_ok(company: Company) -> None:
    assert set(_statuses(company).values()) == {"unchecked"}  # credentials nobody tried are not "ok"
    done = _hub(company, "check", "--json")
    assert done.exit_code == 0, done.output
    rows = {r["name"]: r for r in json.loads(done.stdout)["connections"]}
    assert sorted(rows) == ["quickbooks", "salesforce", "stripe", "xero"]
    for row in rows.values():
        assert row["ok"] and row["reachable"] and row["authorised"] and row["missing"] == [], row
    assert rows["stripe"]["account"].startswith("acct_") and rows["stripe"]["scopes"] == ["test mode secret key"]
    assert rows["quickbooks"]["base_currency"] == company.qbo.home_currency
    assert "(realm " in rows["quickbooks"]["account"]
    assert rows["quickbooks"]["scopes"] == ["com.intuit.quickbooks.accounting"]
    assert rows["xero"]["base_currency"] == company.xero.base_currency
    assert "(tenant " in rows["xero"]["account"] and "accounting.transactions" in " ".join(rows["xero"]["scopes"])
    assert rows["salesforce"]["details"]["daily_api_requests"]["max"] > 0
    assert set(_statuses(company).values()) == {"ok"}
    text = _hub(company, "check")
    assert text.exit_code == 0 and [line.split()[:2] for line in text.stdout.splitlines()
                                     if line.startswith("stripe ")] == [["stripe", "ok"]], text.stdout


def test_check_fails_for_refused_credentials_and_missing_setup(company: Company) -> None:
    qbo = company.emus.quickbooks
    emulator: Any = qbo.emulator
    qbo.on_loop(lambda: emulator.oauth_control(revoke_refresh_tokens=True, expire_access_tokens=True))
    config = company.config_path.read_text()
    assert config.count("[connections.xero]\n") == 1 and "fee_account_code" not in config
    company.config_path.write_text(config.replace("[connections.xero]\n", '[connections.xero]\nfee_account_code = "999"\n'))
    done = _hub(company, "check", "--json")
    assert done.exit_code == 1, done.output
    rows = {r["name"]: r for r in json.loads(done.stdout)["connections"]}
    assert not rows["quickbooks"]["authorised"] and rows["quickbooks"]["reachable"]
    assert "re-authorisation" in rows["quickbooks"]["problem"]
    assert rows["xero"]["authorised"] and not rows["xero"]["ok"]
    assert rows["xero"]["missing"] == ["account code 999 (fee_account_code): not in this organisation's chart of accounts"]
    assert rows["stripe"]["ok"] and rows["salesforce"]["ok"]
    statuses = _statuses(company)
    assert statuses["quickbooks"] == "needs_reauth" and statuses["xero"] == "needs_setup"
    assert _hub(company, "status").exit_code == 1


def test_a_made_up_stripe_key_is_not_authorised(company: Company) -> None:
    """(The emulator takes any test-mode key by default, so the made-up key is a live-mode one.)"""
    config = company.config_path.read_text()
    start = config.index('api_key = "', config.index("[connections.stripe]"))
    end = config.index('"', start + len('api_key = "'))
    company.config_path.write_text(config[:start] + 'api_key = "sk_live_madeup000000000000"' + config[end + 1:])
    done = _hub(company, "check", "--connection", "stripe", "--json")
    assert done.exit_code == 1, done.output
    (row,) = json.loads(done.stdout)["connections"]
    assert row["name"] == "stripe" and row["reachable"] and not row["authorised"]
    assert "sk_live_madeup000000000000" not in done.output  # never the key itself
    assert _statuses(company)["stripe"] == "unchecked"
    unknown = _hub(company, "check", "--connection", "nope")
    assert unknown.exit_code == 2 and "no connection 'nope'" in unknown.output
