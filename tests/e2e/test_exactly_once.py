"""Exactly once under faults: every emulator injects 5xx, 429 bursts and apply-then-fail, and the
sync process is SIGKILLed three times mid-run. After recovery nothing is duplicated or missing
in any system, checked in each emulator's own state and by a diff that reports nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mapping.money import Money
from state.crypto import Cipher, generate_key
from state.store import StateStore
from sync.config import load_config
from sync.demo import QBO_REALM, seed_company, start_emulators
from sync.runtime import Hub

ROOT = Path(__file__).resolve().parents[2]
# The scale (about 3.5 minutes on 2 cores); smaller for a quick local run, e.g.
#   HUB_CHAOS_CUSTOMERS=150 HUB_CHAOS_INVOICES=450 pytest tests/e2e/test_exactly_once.py
CUSTOMERS = int(os.environ.get("HUB_CHAOS_CUSTOMERS", "1000"))
INVOICES = int(os.environ.get("HUB_CHAOS_INVOICES", "3000"))


def _done_writes(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE status = 'done'").fetchone()[0])
    except sqlite3.Error:
        return 0


def _sync_until_killed(config: Path, db: Path, kill_at: int, deadline: float) -> bool:
    """Run `hub sync` and SIGKILL it once it has completed ``kill_at`` writes. True if killed."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "hub.py"), "--config", str(config), "sync", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _done_writes(db) >= kill_at:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return True
            time.sleep(0.2)  # polling for progress, not timing anything
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def chaos_config(text: str) -> str:
    """The emulators' config with waits scaled down like their limits: QuickBooks' documented
    60 s after a throttle becomes 1 s, and each call gives up sooner (the outbox retries the
    write on the next pass, which is the retry that matters for exactly-once)."""
    for table in ("stripe", "quickbooks", "xero", "salesforce"):
        text = text.replace(f"[connections.{table}]\n",
                            f"[connections.{table}]\nmax_attempts = 4\nretry_base_seconds = 0.05\n")
    text = text.replace("[connections.quickbooks]\n", "[connections.quickbooks]\nretry_after_seconds = 1.0\n")
    return text.replace("[diff]", "[flows]\nmax_attempts = 30\nbackoff_seconds = 0.2\n\n[diff]")


def _minor(value: Any, currency: str) -> int:
    return Money.from_decimal(Decimal(str(value)), currency.upper()).minor


def test_faults_and_three_sigkills_leave_no_duplicate_and_nothing_missing(tmp_path: Path) -> None:
    emus = start_emulators(tmp_path)
    try:
        seed_company(emus, customers=CUSTOMERS, invoices=INVOICES)
        db = tmp_path / "hub.db"
        config = tmp_path / "hub.toml"
        config.write_text(chaos_config(emus.config_toml(f"sqlite:///{db}", generate_key())))
        for running in emus.all.values():
            running.emulator.set_faults(error_rate=0.05, burst_429=3, retry_after=1, apply_then_fail=25, seed=11)
        deadline = time.monotonic() + 900
        kills = 0
        expected_writes = 4 * (CUSTOMERS + INVOICES)  # roughly: every record to 3-4 targets
        for kill_at in (expected_writes // 50, expected_writes * 15 // 100, expected_writes * 35 // 100):
            kills += _sync_until_killed(config, db, kill_at, deadline)
        assert kills == 3, "the sync finished before all three kills: raise the workload"
        faults: Counter[str] = Counter()
        for running in emus.all.values():
            faults.update(running.emulator.stats.faults_injected)
            running.emulator.set_faults()  # the storm passes
        assert faults["5xx"] > 0 and faults["apply_then_fail"] > 0 and faults["429"] > 0

        # Recover as a process running after the killed processes' leases expired (their claimed
        # writes return to the queue): its clock is an hour ahead, instead of waiting an hour.
        loaded = load_config(config)
        later = StateStore(loaded.state_url, cipher=Cipher(loaded.encryption_key or ""),
                           clock=lambda: datetime.now(UTC) + timedelta(hours=1))
        hub = Hub.from_config(loaded, store=later)
        try:
            for _ in range(6):  # recover: passes until one changes nothing
                summary = hub.engine.sync()
                with hub.store.transaction() as tx:
                    depth = tx.outbox_depth()
                if summary.totals().written == 0 and not depth.get("pending") and not depth.get("in_flight"):
                    break
            assert depth.get("dead", 0) == 0, depth
            _assert_every_system_complete(emus)
            assert hub.differ.run(["customer", "invoice", "payment", "refund"]).findings == []
        finally:
            hub.close()
    finally:
        emus.stop()


def _assert_every_system_complete(emus: Any) -> None:
    stripe = emus.stripe.emulator
    live = {i: v for i, v in stripe.table("invoice").items() if v["status"] in ("open", "paid")}
    by_number = {v["number"]: v for v in live.values()}
    paid = [v for v in live.values() if v["status"] == "paid"]
    customers = [c for c in stripe.table("customer").values() if not c.get("_deleted")]
    # every seeded customer was made in Stripe (a billing customer) and every deal is won: all of
    # them belong in both ledgers (a CRM prospect's hub-made Stripe copy would not)
    billed = customers

    qbo = emus.quickbooks.emulator.realm(QBO_REALM)
    qbo_invoices = Counter(i["DocNumber"] for i in qbo.table("Invoice").values())
    assert not [n for n, c in qbo_invoices.items() if c > 1], "duplicate invoices in QuickBooks"
    assert set(by_number) <= set(qbo_invoices), "invoices missing from QuickBooks"
    emails = Counter(c.get("PrimaryEmailAddr", {}).get("Address") for c in qbo.table("Customer").values())
    assert len(qbo.table("Customer")) == len(billed) and max(emails.values()) == 1
    assert len(qbo.table("Payment")) == len(paid)

    tenant = emus.xero.emulator.tenant
    xero_invoices = Counter(i["InvoiceNumber"] for i in tenant.table("Invoices").values() if i.get("Type") == "ACCREC")
    assert not [n for n, c in xero_invoices.items() if c > 1], "duplicate invoices in Xero"
    assert set(by_number) <= set(xero_invoices)
    assert len(tenant.table("Contacts")) == len(billed)
    invoice_payments = [p for p in tenant.table("Payments").values()
                        if p.get("Status") != "DELETED" and p.get("Invoice")]  # refunds pay credit notes
    assert len(invoice_payments) == len(paid)
    assert max(Counter(p["Invoice"]["InvoiceID"] for p in invoice_payments).values()) == 1

    for number, invoice in by_number.items():
        qbo_inv = next(i for i in qbo.table("Invoice").values() if i["DocNumber"] == number)
        xero_inv = next(i for i in tenant.table("Invoices").values() if i.get("InvoiceNumber") == number)
        assert _minor(qbo_inv["TotalAmt"], invoice["currency"]) == invoice["total"]
        assert _minor(xero_inv["Total"], invoice["currency"]) == invoice["total"]

    sf = emus.salesforce.emulator
    billing = Counter(r.get("Hub_Id__c") for r in sf.records("Billing_Invoice__c"))
    assert len(billing) >= len(by_number) and max(billing.values()) == 1
    accounts = Counter(r.get("Hub_Id__c") for r in sf.records("Account") if r.get("Hub_Id__c"))
    assert max(accounts.values()) == 1


@pytest.fixture(autouse=True)
def _quiet_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
