"""Several connections of one system: two QuickBooks companies (realms) and three Xero
organisations (tenants), each with its own credentials, cursors, rate budget and pause state.

The engine routes by *system*: every connection of a target system receives the entity. One Xero
organisation spending its daily call limit pauses that organisation only; the others keep
syncing, and ``hub status --json`` shows exactly that one paused.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.emulation import EmulatorClock, RunningEmulator
from connectors.quickbooks.emulator import QuickBooksEmulator
from connectors.stripe.emulator import StripeEmulator
from connectors.xero.emulator import XeroEmulator
from mapping.money import Money
from state.crypto import generate_key
from sync.config import load_config
from sync.runtime import Hub
from tests.scale.helpers import config_text, control, hub_cli, qbo_connection, xero_connection

REALMS = {"qbo_us": "9130350000000101", "qbo_uk": "9130350000000202"}
TENANTS = {"xero_a": "a1a1a1a1-0000-4000-8000-00000000000a", "xero_b": "b2b2b2b2-0000-4000-8000-00000000000b",
           "xero_c": "c3c3c3c3-0000-4000-8000-00000000000c"}
CUSTOMERS = 24
INVOICES = 40


@pytest.fixture
def emus() -> Iterator[dict[str, RunningEmulator]]:
    now = datetime.now(UTC).replace(microsecond=0)
    running = {"stripe": RunningEmulator(StripeEmulator(EmulatorClock(now), rate_limit=100_000)).start(),
               "quickbooks": RunningEmulator(QuickBooksEmulator(EmulatorClock(now))).start(),
               "xero": RunningEmulator(XeroEmulator(EmulatorClock(now))).start()}
    yield running
    for r in running.values():
        r.stop()


def _seed(emus: dict[str, RunningEmulator]) -> None:
    stripe: Any = emus["stripe"].emulator
    customers = stripe.seed_objects({"customers": [
        {"ref": f"c{i}", "name": f"Tenant Test {i:03d}", "email": f"t{i:03d}@example.com"}
        for i in range(CUSTOMERS)]})["refs"]
    stripe.seed_objects({"invoices": [
        {"customer": customers[f"c{i % CUSTOMERS}"], "currency": "usd", "status": "paid" if i % 3 else "open",
         "items": [{"amount": 1000 + 37 * i, "description": f"Service {i}"}]} for i in range(INVOICES)]})
    qbo = emus["quickbooks"].base_url
    for name, realm in REALMS.items():  # each company exists with its own grant
        control(qbo, "seed", {"realm": realm, "refresh_tokens": [f"RT-{name}"]})
    xero: XeroEmulator = emus["xero"].emulator  # type: ignore[assignment]
    for name, tenant in TENANTS.items():
        xero.add_tenant(tenant, f"Org {name}")
        xero.issue_refresh_token(f"rt-{name}", [tenant])  # a grant for that organisation only


def _write_config(path: Path, db: Path, emus: dict[str, RunningEmulator]) -> None:
    connections: dict[str, dict[str, Any]] = {"stripe": {
        "system": "stripe", "api_key": "sk_test_billhub_multi", "api_base": emus["stripe"].base_url,
        "rate_limit_per_second": 400.0}}
    for name, realm in REALMS.items():
        connections[name] = qbo_connection(emus["quickbooks"].base_url, realm, f"RT-{name}")
    for name, tenant in TENANTS.items():
        connections[name] = xero_connection(emus["xero"].base_url, tenant, f"rt-{name}", max_attempts=2,
                                            retry_base_seconds=0.05)
    path.write_text(config_text(f"sqlite:///{db}", generate_key(), connections), encoding="utf-8")


def _minor(value: Any) -> int:
    return Money.from_decimal(Decimal(str(value)), "USD").minor


def _stripe_truth(emus: dict[str, RunningEmulator]) -> tuple[set[str], dict[str, int]]:
    stripe: Any = emus["stripe"].emulator
    emails = {c["email"] for c in stripe.table("customer").values() if not c.get("_deleted")}
    totals = {i["number"]: int(i["total"]) for i in stripe.table("invoice").values()
              if i["status"] in ("open", "paid")}
    return emails, totals


def _assert_realm(emus: dict[str, RunningEmulator], realm: str, emails: set[str], totals: dict[str, int]) -> None:
    qbo: Any = emus["quickbooks"].emulator
    book = qbo.realm(realm)
    got = Counter(c.get("PrimaryEmailAddr", {}).get("Address") for c in book.table("Customer").values())
    assert set(got) == emails and max(got.values()) == 1, f"realm {realm}: customers {got}"
    numbers = Counter(i["DocNumber"] for i in book.table("Invoice").values())
    assert set(numbers) == set(totals) and max(numbers.values()) == 1, f"realm {realm}: invoices {numbers}"
    for invoice in book.table("Invoice").values():
        assert _minor(invoice["TotalAmt"]) == totals[invoice["DocNumber"]]


def _assert_tenant(emus: dict[str, RunningEmulator], tenant: str, emails: set[str], totals: dict[str, int]) -> None:
    xero: XeroEmulator = emus["xero"].emulator  # type: ignore[assignment]
    got = Counter(c.get("EmailAddress") for c in xero.live("Contacts", tenant))
    assert set(got) == emails and max(got.values()) == 1, f"tenant {tenant}: contacts {got}"
    invoices = [i for i in xero.live("Invoices", tenant) if i.get("Type") == "ACCREC"]
    numbers = Counter(i["InvoiceNumber"] for i in invoices)
    assert set(numbers) == set(totals) and max(numbers.values()) == 1, f"tenant {tenant}: invoices {numbers}"
    for invoice in invoices:
        assert _minor(invoice["Total"]) == totals[invoice["InvoiceNumber"]]


def test_every_company_and_organisation_gets_everything_once_and_one_pause_stays_local(
        tmp_path: Path, emus: dict[str, RunningEmulator]) -> None:
    _seed(emus)
    db, config = tmp_path / "hub.db", tmp_path / "hub.toml"
    _write_config(config, db, emus)
    hub = Hub.from_config(load_config(config))
    try:
        hub.store.init()
        assert sorted(hub.engine.connections_of("quickbooks")) == sorted(REALMS)
        assert sorted(hub.engine.connections_of("xero")) == sorted(TENANTS)
        first = hub.engine.sync()
        assert not first.paused and not first.errors, first.errors[:5]
        hub.engine.sync()  # a second pass settles anything that waited on a reference
        emails, totals = _stripe_truth(emus)
        assert len(emails) == CUSTOMERS and len(totals) > 0
        for realm in REALMS.values():
            _assert_realm(emus, realm, emails, totals)
        for tenant in TENANTS.values():
            _assert_tenant(emus, tenant, emails, totals)

        # Per connection: its own links, cursors and credentials (distinct rotated tokens).
        with hub.store.transaction() as tx:
            cursors = {(c["connection"], c["stream"]) for c in tx.cursors()}
            creds = {name: tx.load_credentials(name) or {} for name in [*REALMS, *TENANTS]}
            links = {name: {link.external_id for link in tx.links_in(name, "customer")} for name in [*REALMS, *TENANTS]}
        for name in [*REALMS, *TENANTS]:
            assert (name, "customer") in cursors and (name, "invoice") in cursors, name
            assert len(links[name]) == CUSTOMERS, name
        refresh_tokens = [c.get("refresh_token") for c in creds.values()]
        assert all(refresh_tokens) and len(set(refresh_tokens)) == len(refresh_tokens)
        access_tokens = [c.get("access_token") for c in creds.values()]
        assert len(set(access_tokens)) == len(access_tokens)
        qbo_oauth = control(emus["quickbooks"].base_url, "oauth", method="GET")
        assert qbo_oauth["refreshes"] == len(REALMS) and qbo_oauth["invalid_grant"] == 0
        xero_emu: XeroEmulator = emus["xero"].emulator  # type: ignore[assignment]
        assert xero_emu.oauth.counts["invalid_grant"] == 0
        # Each organisation's grant reaches only its own tenant: the tokens really are separate.
        for name, tenant in TENANTS.items():
            granted = xero_emu.oauth.access_tokens[creds[name]["access_token"]].subject
            assert granted == (tenant,), name

        # xero_b spends its daily limit (Xero counts per organisation); the others do not.
        b_tenant = xero_emu.tenants[TENANTS["xero_b"]]
        now = xero_emu.clock.now()
        b_tenant.day_calls.extend([now] * (xero_emu.limits.day - len(b_tenant.day_calls)))
        stripe: Any = emus["stripe"].emulator
        stripe.seed_objects({"customers": [{"name": "Late Arrival", "email": "late@example.com"}]})
        second = hub.engine.sync()
        assert set(second.paused) == {"xero_b"}, second.paused
        late = {"late@example.com"}
        for realm in REALMS.values():
            _assert_realm(emus, realm, emails | late, totals)
        for name in ("xero_a", "xero_c"):
            _assert_tenant(emus, TENANTS[name], emails | late, totals)
        assert "late@example.com" not in {c.get("EmailAddress") for c in xero_emu.live("Contacts", TENANTS["xero_b"])}
        # Rate budgets are per connection: only xero_b's reports its day spent.
        budgets = {name: hub.connectors[name].client.budget for name in TENANTS}  # type: ignore[attr-defined]
        assert budgets["xero_b"].get("day_remaining", 0) == 0
        assert budgets["xero_a"]["day_remaining"] > 0 and budgets["xero_c"]["day_remaining"] > 0
        with hub.store.transaction() as tx:
            waiting = [i for i in tx.list_outbox("pending", limit=10_000) if i.target == "xero_b"]
        assert waiting, "the paused organisation's write must wait in the outbox, not be lost"
    finally:
        hub.close()

    result = hub_cli(config, "status", "--json")
    assert result.returncode == 1, result.stderr  # xero_b is paused: status says so (issue 20, item 6)
    status = json.loads(result.stdout)
    assert [a for a in status["attention"] if a.startswith("xero_b paused")], status["attention"]
    states = {c["name"]: c["status"] for c in status["connections"]}
    assert states == {"stripe": "ok", "qbo_us": "ok", "qbo_uk": "ok", "xero_a": "ok", "xero_b": "paused",
                      "xero_c": "ok"}, states
    paused = next(c for c in status["connections"] if c["name"] == "xero_b")
    assert paused["paused_until"] and "daily" in (paused["reason"] or "")
