"""Nothing the hub writes holds a secret in plain text.

An end-to-end run on the four emulators — first sync, drift planted, diff, ``hub drift export``
in every format, ``hub status --json``, and the daemon answering admin, console and webhook
requests with its JSON logs captured at debug level — then every byte the hub wrote is scanned
(the SQLite database and its write-ahead log, the exported reports, the logs, the CLI output) for
every secret and token in play: the config's secrets, the OAuth access and refresh tokens the
emulators issued, the admin token, the webhook signing secrets and the Stripe API key.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from connectors.stripe.emulator import sign_payload
from hub import cli
from sync.config import load_config
from sync.demo import STRIPE_KEY, STRIPE_WEBHOOK_SECRET, plant_drift
from sync.logs import configure_logging
from sync.web.app import create_app
from tests.e2e.conftest import Company, start_company

ADMIN_TOKEN = "adm_scan_5f1d9c2b7a4e4e0f8d6c3b2a19087f6e"
MIN_SECRET = 8  # shorter values would match by accident


def issued_tokens(company: Company) -> dict[str, str]:
    """Every OAuth token the emulators handed out (or accept), read from their state."""
    qbo: Any = company.emus.quickbooks.emulator
    xero: Any = company.emus.xero.emulator
    salesforce: Any = company.emus.salesforce.emulator
    tokens: dict[str, str] = {}
    tokens.update({t: "quickbooks refresh token" for t in qbo.oauth.refresh_tokens})
    tokens.update({t: "quickbooks access token" for t in qbo.oauth.access_tokens})
    tokens.update({t: "xero refresh token" for t in xero.oauth.refresh_tokens})
    tokens.update({t: "xero access token" for t in xero.oauth.access_tokens})
    tokens.update({t: "salesforce session" for t in salesforce.oauth.access_tokens})
    tokens.update({t: "salesforce refresh token" for t in salesforce.oauth.refresh_tokens})
    return tokens


def scan(haystacks: dict[str, bytes], secrets: dict[str, str]) -> list[str]:
    found = []
    for where, data in haystacks.items():
        for secret, what in secrets.items():
            forms = {secret.encode(), json.dumps(secret)[1:-1].encode()}
            if any(form in data for form in forms):
                found.append(f"{what} in {where}")
    return found


async def test_nothing_the_hub_writes_holds_a_secret(tmp_path: Path) -> None:
    company = start_company(tmp_path, customers=20, invoices=40)
    log_stream = io.StringIO()
    handler: logging.Handler | None = None
    root_level = logging.getLogger().level
    outputs: dict[str, bytes] = {}
    try:
        with company.config_path.open("a", encoding="utf-8") as fh:
            fh.write(f'\n[admin]\ntoken = "{ADMIN_TOKEN}"\n')
        config = load_config(company.config_path)
        handler = configure_logging(config.secrets, level=logging.DEBUG, stream=log_stream)

        first = company.hub.engine.sync()
        assert first.to_json()  # the first sync moved the company into the ledgers
        planted = plant_drift(company.emus)
        assert planted
        found = company.hub.differ.run(["customer", "invoice"])
        assert found.findings, "the planted drift is found (so the reports below are not empty)"

        runner = CliRunner()
        base = ["--config", str(company.config_path)]
        for fmt in ("json", "csv", "html"):
            target = tmp_path / f"drift.{fmt}"
            result = runner.invoke(cli, [*base, "drift", "export", "--format", fmt, "-o", str(target)])
            assert result.exit_code == 0, result.output
            outputs[f"drift export {fmt} (output)"] = result.output.encode()
            outputs[f"drift.{fmt}"] = target.read_bytes()
            assert target.stat().st_size > 200
        for args in (["status", "--json"], ["drift", "list", "--json"], ["outbox", "list", "--json"]):
            result = runner.invoke(cli, [*base, *args])
            assert result.exit_code in (0, 1), (args, result.output)
            outputs[" ".join(args)] = result.output.encode()

        app = create_app(config, company.hub, start_scheduler=False)
        async with TestClient(TestServer(app)) as client:
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for path in ("/api/status", "/api/findings", "/api/outbox", "/api/runs", "/api/jobs"):
                response = await client.get(path, headers=bearer)
                assert response.status == 200, path
                outputs[f"GET {path}"] = await response.read()
            assert (await client.get("/api/status", headers={"Authorization": "Bearer wrong"})).status == 403
            page = await client.get("/login")
            html = await page.text()
            csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            login = await client.post("/login", data={"token": ADMIN_TOKEN, "csrf": csrf})
            assert login.status == 200
            for path in ("/", "/findings", "/outbox"):
                outputs[f"console {path}"] = await (await client.get(path)).read()
            stripe: Any = company.stripe
            body = json.dumps(stripe.events[-1]).encode()
            hook = await client.post("/webhooks/stripe", data=body, headers={
                "Stripe-Signature": sign_payload(STRIPE_WEBHOOK_SECRET, body, int(stripe.clock.timestamp()))})
            assert hook.status == 200
            bad = await client.post("/webhooks/stripe", data=body, headers={
                "Stripe-Signature": f"t=1,v1={STRIPE_WEBHOOK_SECRET}"})
            assert bad.status == 400
            ran = await client.post("/api/jobs/inbox/run", headers=bearer)
            assert ran.status == 200
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(root_level)
        company.hub.close()
        tokens = issued_tokens(company)
        company.emus.stop()

    secrets = {s: "config secret" for s in config.secrets}
    secrets.update(tokens)
    secrets.update({ADMIN_TOKEN: "admin token", STRIPE_KEY: "Stripe API key",
                    STRIPE_WEBHOOK_SECRET: "Stripe webhook secret"})
    secrets = {s: what for s, what in secrets.items() if len(s) >= MIN_SECRET}
    assert any(what.endswith("access token") for what in secrets.values())  # the scan knows issued tokens
    assert any("refresh token" in what for what in secrets.values())

    logs = log_stream.getvalue()
    assert len(logs.splitlines()) > 20, "the logs were captured"
    haystacks = dict(outputs)
    haystacks["logs"] = logs.encode()
    for suffix in ("", "-wal", "-journal"):
        db_path = tmp_path / f"hub.db{suffix}"
        if db_path.exists():
            haystacks[db_path.name] = db_path.read_bytes()
    assert haystacks["hub.db"]
    leaks = scan(haystacks, secrets)
    assert leaks == [], leaks


def test_the_log_redactor_hides_tokens_it_was_never_told_about() -> None:
    """Found by the scan: requests-oauthlib logs ``Adding token {'access_token': …}`` at debug."""
    from sync.logs import REDACTED, Redactor

    redact = Redactor(["sk_test_configured"])
    lines = {
        "Adding token {'access_token': 'AT-rzQHFwD2tiPRnvu1P8jK3', 'token_type': 'Bearer'} to request.":
            "AT-rzQHFwD2tiPRnvu1P8jK3",
        "grant_type=refresh_token&refresh_token=RT-9f8e7d6c5b4a&client_id=x": "RT-9f8e7d6c5b4a",
        '{"refresh_token": "rt-0a1b2c3d4e", "expires_in": 1800}': "rt-0a1b2c3d4e",
        json.dumps({"message": json.dumps({"access_token": "00D!AQ4AQ.secret"})}): "00D!AQ4AQ.secret",
        "client_secret=billhub-test-secret": "billhub-test-secret",
        "Authorization: Bearer eyJhbGciOi.abc.def": "eyJhbGciOi.abc.def",
        "key sk_test_configured used": "sk_test_configured",
    }
    for line, secret in lines.items():
        cleaned = redact(line)
        assert secret not in cleaned and REDACTED in cleaned, cleaned
    assert redact("token_type=bearer; grant_type=refresh_token") == "token_type=bearer; grant_type=refresh_token"
