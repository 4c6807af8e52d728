"""``hub connect`` / ``hub disconnect`` (issue 20, item 1) end to end: the real CLI in a subprocess
waits on its local redirect listener while the test plays the browser — requests follows the
printed authorize URL to the emulator's consent page, posts its "Allow" form, and the emulator's
302 lands on the listener. Then the hub syncs with the tokens it stored."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from click.testing import CliRunner, Result

from hub import cli
from state.audit import AuditFilter
from state.crypto import generate_key
from sync.audit import cli_actor
from sync.config import load_config
from sync.demo import QBO_REALM, XERO_TENANT, Emulators, start_emulators
from sync.runtime import open_store

HUB = [sys.executable, "-c", "from hub import main; main()"]


@pytest.fixture(scope="module")
def emus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    running = start_emulators(tmp_path_factory.mktemp("connect-emulators"))
    yield running
    running.stop()


@pytest.fixture
def config_path(emus: Emulators, tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(emus.config_toml(f"sqlite:///{tmp_path}/hub.db", generate_key()))
    assert _hub(path, "init").exit_code == 0
    return path


def _hub(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(path), *args])


class _Form(HTMLParser):
    """The consent page's form: its action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action") or ""
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"] or ""] = a.get("value") or ""


class Connecting:
    """``hub connect ... --no-browser --port 0`` running; ``url`` is the authorize URL it printed."""

    def __init__(self, path: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*HUB, "connect", *args, "--no-browser", "--port", "0", "--timeout", "60",
                                      "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        self.printed: list[str] = []
        for line in self.proc.stdout:
            self.printed.append(line)
            if line.startswith(("http://", "https://")):
                self.url = line.strip()
                break
        else:
            raise AssertionError("no URL printed: " + "".join(self.printed) + self.proc.stderr.read())  # type: ignore[union-attr]
        self.params = {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.printed) + out, err


def _consent(url: str, verify: str | bool, decision: str = "allow") -> requests.Response:
    """What a person's browser does: open the consent page, click the button."""
    page = requests.get(url, verify=verify, timeout=30)
    assert page.status_code == 200 and 'id="allow"' in page.text, page.text
    form = _Form()
    form.feed(page.text)
    return requests.post(urljoin(url, form.action), data={**form.fields, "decision": decision}, verify=verify,
                         timeout=30)


def _stored(path: Path, connection: str) -> dict[str, Any] | None:
    store = open_store(load_config(path))
    try:
        with store.transaction() as tx:
            return tx.load_credentials(connection)
    finally:
        store.dispose()


def _status(path: Path) -> dict[str, dict[str, Any]]:
    done = _hub(path, "status", "--json")
    return {c["name"]: c for c in json.loads(done.stdout)["connections"]}


def _without(path: Path, section: str, *keys: str) -> None:
    """Drop keys from one [connections.x] table (a connection made with hub connect only)."""
    text = path.read_text()
    start = text.index(f"[connections.{section}]")
    end = text.find("\n[", start + 1)
    block = text[start:end]
    for key in keys:
        block = re.sub(rf"^{key} = .*\n", "", block, flags=re.M)
    path.write_text(text[:start] + block + text[end:])


def test_quickbooks_revoked_grant_reconnected_and_synced(emus: Emulators, config_path: Path) -> None:
    qbo: Any = emus.quickbooks.emulator
    emus.quickbooks.on_loop(lambda: qbo.oauth_control(revoke_refresh_tokens=True, expire_access_tokens=True))
    assert _hub(config_path, "check", "--connection", "quickbooks").exit_code == 1
    assert _status(config_path)["quickbooks"]["status"] == "needs_reauth"
    _without(config_path, "quickbooks", "realm_id")  # the callback's realmId replaces it

    run = Connecting(config_path, "quickbooks")
    assert urlsplit(run.url).path == "/connect/oauth2" and run.params["scope"] == "com.intuit.quickbooks.accounting"
    assert run.params["response_type"] == "code" and len(run.params["state"]) >= 32
    assert run.params["redirect_uri"].startswith("http://127.0.0.1:") and "code_challenge" not in run.params
    landed = _consent(run.url, True)
    assert landed.status_code == 200 and "received the authorization" in landed.text
    code, out, err = run.finish()
    assert code == 0, out + err
    assert f"connected quickbooks (quickbooks, realm_id {QBO_REALM})" in out
    stored = _stored(config_path, "quickbooks")
    assert stored is not None and stored["realm_id"] == QBO_REALM
    assert qbo.oauth.refresh_tokens[stored["refresh_token"]] == "active"  # issued by the code exchange
    for token in (stored["refresh_token"], stored["access_token"]):
        assert token not in out + err  # never printed or logged
    status = _status(config_path)["quickbooks"]
    assert status["status"] == "ok" and status["reason"] == "connected"

    done = _hub(config_path, "sync")
    assert done.exit_code == 0, done.output
    assert _status(config_path)["quickbooks"]["status"] == "ok"
    assert _hub(config_path, "check", "--connection", "quickbooks").exit_code == 0


def test_xero_connect_with_pkce_picks_the_one_tenant(emus: Emulators, config_path: Path) -> None:
    _without(config_path, "xero", "tenant_id", "refresh_token")  # nothing by hand
    run = Connecting(config_path, "xero")
    assert urlsplit(run.url).path == "/identity/connect/authorize"
    assert run.params["code_challenge_method"] == "S256" and len(run.params["code_challenge"]) == 43
    assert "offline_access" in run.params["scope"].split()
    _consent(run.url, True)
    code, out, err = run.finish()
    assert code == 0, out + err
    stored = _stored(config_path, "xero")
    assert stored is not None and stored["tenant_id"] == XERO_TENANT
    assert stored["refresh_token"] not in out + err
    check = _hub(config_path, "check", "--connection", "xero", "--json")
    assert check.exit_code == 0, check.output
    assert f"(tenant {XERO_TENANT})" in json.loads(check.stdout)["connections"][0]["account"]


def test_salesforce_connect_stores_the_instance_url(emus: Emulators, config_path: Path) -> None:
    _without(config_path, "salesforce", "instance_url", "refresh_token")
    run = Connecting(config_path, "salesforce")
    assert urlsplit(run.url).path == "/services/oauth2/authorize" and run.params["code_challenge_method"] == "S256"
    _consent(run.url, str(emus.sf_cert))
    code, out, err = run.finish()
    assert code == 0, out + err
    stored = _stored(config_path, "salesforce")
    assert stored is not None and stored["instance_url"] == emus.urls()["salesforce"]
    # the integration user (hub setup salesforce assigns its permission set to it) comes along
    assert stored["identity"].startswith(emus.urls()["salesforce"] + "/id/")
    assert _hub(config_path, "check", "--connection", "salesforce").exit_code == 0


def test_a_callback_with_another_state_is_refused(emus: Emulators, config_path: Path) -> None:
    run = Connecting(config_path, "quickbooks")
    forged = requests.get(run.params["redirect_uri"], params={"code": "stolen", "state": "not-the-one",
                                                              "realmId": "1"}, timeout=30)
    assert forged.status_code == 200
    code, out, err = run.finish()
    assert code == 1 and "state does not match" in err
    assert _stored(config_path, "quickbooks") is None
    assert _status(config_path)["quickbooks"]["status"] != "ok"


def test_a_denied_consent_fails_and_stores_nothing(emus: Emulators, config_path: Path) -> None:
    run = Connecting(config_path, "xero")
    landed = _consent(run.url, True, decision="deny")
    assert "not granted" in landed.text
    code, _, err = run.finish()
    assert code == 1 and "access_denied" in err
    assert _stored(config_path, "xero") is None


def test_disconnect_revokes_the_grant_and_deletes_the_tokens(emus: Emulators, config_path: Path) -> None:
    qbo: Any = emus.quickbooks.emulator
    run = Connecting(config_path, "quickbooks")
    _consent(run.url, True)
    assert run.finish()[0] == 0
    stored = _stored(config_path, "quickbooks")
    assert stored is not None
    done = _hub(config_path, "disconnect", "quickbooks")
    assert done.exit_code == 0 and "grant revoked, tokens deleted" in done.output, done.output
    assert qbo.oauth.refresh_tokens[stored["refresh_token"]] == "revoked"
    assert _stored(config_path, "quickbooks") is None
    assert _status(config_path)["quickbooks"]["status"] == "needs_reauth"
    # the refresh token still in the config does not quietly reconnect it
    assert _hub(config_path, "check", "--connection", "quickbooks").exit_code == 1
    store = open_store(load_config(config_path))
    try:  # both are in the audit log, by the person at the terminal, without a token
        with store.transaction() as tx:
            entries = list(reversed(tx.list_audit(AuditFilter(target_kind="connection"))))
    finally:
        store.dispose()
    assert [(e.action, e.actor, e.target_id) for e in entries] == [
        ("connection.connect", cli_actor(), "quickbooks"), ("connection.disconnect", cli_actor(), "quickbooks")]
    assert entries[0].after == {"system": "quickbooks", "realm_id": QBO_REALM}
    assert entries[1].after["had_tokens"] is True and stored["refresh_token"] not in str(entries[1].to_json())


def test_the_code_exchange_checks_redirect_uri_verifier_and_one_time_use(emus: Emulators) -> None:
    """The emulator's token endpoint as RFC 6749 §4.1.3 / RFC 7636 have it (Xero's, with PKCE)."""
    xero = emus.urls()["xero"]
    client = ("billhub-test-client", "billhub-test-secret")
    redirect = "http://127.0.0.1:9/callback"

    def code(challenge: str) -> str:
        answer = requests.post(xero + "/identity/connect/authorize", allow_redirects=False, timeout=30, data={
            "client_id": client[0], "response_type": "code", "redirect_uri": redirect, "scope": "offline_access",
            "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256", "decision": "allow"})
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == ["s1"]
        return query["code"][0]

    from connectors.oauth_connect import pkce_pair
    verifier, challenge = pkce_pair()

    def redeem(c: str, **form: str) -> requests.Response:
        return requests.post(xero + "/connect/token", auth=client, timeout=30, data={
            "grant_type": "authorization_code", "code": c, "redirect_uri": redirect, "code_verifier": verifier,
            **form})

    first = code(challenge)
    assert redeem(first, redirect_uri="http://127.0.0.1:9/other").json()["error"] == "invalid_grant"
    assert redeem(first, code_verifier=pkce_pair()[0]).json()["error"] == "invalid_grant"
    ok = redeem(first)
    assert ok.status_code == 200 and ok.json()["refresh_token"]
    again = redeem(first)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # a replayed code revokes what it gave (RFC 6749 §4.1.2)
    refreshed = requests.post(xero + "/connect/token", auth=client, timeout=30,
                              data={"grant_type": "refresh_token", "refresh_token": ok.json()["refresh_token"]})
    assert refreshed.status_code == 400
    unknown = requests.get(xero + "/identity/connect/authorize", timeout=30, allow_redirects=False,
                           params={"client_id": "nobody", "response_type": "code", "redirect_uri": redirect})
    assert unknown.status_code == 400 and "Location" not in unknown.headers  # never redirected


def test_xero_consent_for_several_organisations_needs_a_tenant(emus: Emulators, config_path: Path) -> None:
    xero: Any = emus.xero.emulator
    second = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
    emus.xero.on_loop(lambda: xero.add_tenant(second, "Second Org Ltd"))
    try:
        _without(config_path, "xero", "tenant_id")
        run = Connecting(config_path, "xero")
        _consent(run.url, True)
        code, _, err = run.finish()
        assert code == 1 and "2 Xero organisations" in err and second in err and XERO_TENANT in err
        assert "--tenant" in err and _stored(config_path, "xero") is None
        run = Connecting(config_path, "xero", "--tenant", second)
        _consent(run.url, True)
        code, out, err = run.finish()
        assert code == 0, out + err
        stored = _stored(config_path, "xero")
        assert stored is not None and stored["tenant_id"] == second
    finally:
        emus.xero.on_loop(lambda: xero.tenants.pop(second))


def test_a_connection_without_its_place_says_to_connect(config_path: Path) -> None:
    _without(config_path, "quickbooks", "realm_id")
    done = _hub(config_path, "check")
    assert done.exit_code == 2
    assert "connections.quickbooks.realm_id: not set and quickbooks is not connected: run `hub connect " \
           "quickbooks` (or set realm_id)" in done.output


def test_connect_names_what_it_cannot_connect(config_path: Path) -> None:
    stripe = _hub(config_path, "connect", "stripe", "--no-browser")
    assert stripe.exit_code == 2 and "uses an API key, not OAuth" in stripe.output
    wrong = _hub(config_path, "connect", "xero", "--connection", "quickbooks", "--no-browser")
    assert wrong.exit_code == 2 and "is a quickbooks connection, not xero" in wrong.output
    nothing = _hub(config_path, "disconnect", "nope")
    assert nothing.exit_code == 2 and "neither a connection nor one of" in nothing.output
