"""A real ``hub run`` process on the emulators: schedules fire at start, SIGTERM mid-sync ends at
a page boundary within 10 s, a restart resumes from the cursors and the outbox, a Stripe webhook
is delivered and processed, and every ledger ends complete with no duplicates. A busy port is
refused before any vendor call; a vendor call that hangs does not hold SIGTERM past the budget."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.emulation import EmulatorClock, RunningEmulator, free_port
from connectors.quickbooks.emulator import DEFAULT_REALM, QuickBooksEmulator
from connectors.stripe.emulator import StripeEmulator
from connectors.xero.emulator import XeroEmulator
from state.store import StateStore
from tests.conftest import TEST_KEY
from tests.connectors.quickbooks.conftest import qbo_config
from tests.connectors.stripe.conftest import API_KEY
from tests.connectors.stripe.conftest import make_config as stripe_config
from tests.connectors.xero.conftest import xero_config
from tests.daemon.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 450  # more than one engine batch (200) of pushes, so a stop lands between batches


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # strings, numbers and booleans are valid TOML in JSON form


def write_config(path: Path, db: Path | str, port: int, urls: dict[str, str], stripe_secret: str,
                 server_extra: str = "") -> None:
    """``db``: an SQLite file, or a database URL (the cluster tests' PostgreSQL schema)."""
    sections = {"stripe": stripe_config(urls["stripe"], webhook_secret=stripe_secret),
                "quickbooks": qbo_config(urls["quickbooks"]), "xero": xero_config(urls["xero"])}
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    lines = [f'[state]\nurl = "{url}"\nencryption_key = "{TEST_KEY}"\n',
             f'[server]\nhost = "127.0.0.1"\nport = {port}\nworkers = 4\n{server_extra}',
             f'[admin]\ntoken = "{ADMIN_TOKEN}"\n',
             "[schedules]\nsync_interval_seconds = 3600\noutbox_interval_seconds = 1\ninbox_interval_seconds = 1\n"]
    for name, conn in sections.items():
        keys = importlib.import_module(f"connectors.{conn.system}.settings").KEYS
        # ``tax_codes`` is the ledger's [tax_codes.<system>] table, put there by the config loader
        body = "\n".join(f"{k} = {_toml_value(v)}" for k, v in conn.settings.items()
                         if k in keys and k != "tax_codes" and v is not None)
        lines.append(f'[connections.{name}]\nsystem = "{conn.system}"\n{body}\n')
    path.write_text("\n".join(lines), encoding="utf-8")


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a condition (not a timing assumption): fail with ``what`` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, config: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.out = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sync.daemon", "--config", str(config), *args],
                                     cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})

    def sigterm(self) -> float:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)
        self.out.close()
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.out.closed:
            self.out.close()


@pytest.fixture
def emulators() -> Iterator[dict[str, RunningEmulator]]:
    now = datetime.now(UTC).replace(microsecond=0)
    running = {"stripe": RunningEmulator(StripeEmulator(EmulatorClock(now), rate_limit=100_000)).start(),
               "quickbooks": RunningEmulator(QuickBooksEmulator(EmulatorClock(now))).start(),
               "xero": RunningEmulator(XeroEmulator(EmulatorClock(now))).start()}
    yield running
    for r in running.values():
        r.stop()


def test_sigterm_mid_sync_then_restart_completes_without_duplicates(
        tmp_path: Path, emulators: dict[str, RunningEmulator]) -> None:
    stripe_emu, qbo_emu, xero_emu = (emulators[n].emulator for n in ("stripe", "quickbooks", "xero"))
    assert isinstance(stripe_emu, StripeEmulator) and isinstance(qbo_emu, QuickBooksEmulator)
    assert isinstance(xero_emu, XeroEmulator)
    port = free_port()
    stripe_url = emulators["stripe"].base_url
    stripe_auth = {"Authorization": f"Bearer {API_KEY}"}
    endpoint = requests.post(f"{stripe_url}/v1/webhook_endpoints", headers=stripe_auth, timeout=10, data={
        "url": f"http://127.0.0.1:{port}/webhooks/stripe", "enabled_events[]": "*"}).json()
    stripe_emu.seed_objects({"customers": [{"name": f"Customer {i:03d}", "email": f"c{i}@example.com"}
                                           for i in range(CUSTOMERS)]})
    db = tmp_path / "hub.db"
    config = tmp_path / "hub.toml"
    write_config(config, db, port, {n: r.base_url for n, r in emulators.items()}, endpoint["secret"])
    # Slow QuickBooks batch writes so the SIGTERM lands while customers are being pushed.
    requests.post(f"{emulators['quickbooks'].base_url}/__emulator/faults", timeout=10,
                  json={"latency_ms": 700, "path_prefix": f"/v3/company/{DEFAULT_REALM}/batch"}).raise_for_status()
    store = StateStore(f"sqlite:///{db}")

    def outbox() -> dict[str, int]:
        try:
            with store.transaction() as tx:
                return tx.outbox_depth()
        except Exception:  # the daemon has not created the schema yet
            return {}

    def qbo_names() -> list[str]:
        return [str(c["DisplayName"]) for c in qbo_emu.realm(DEFAULT_REALM).table("Customer").values()]

    def xero_names() -> list[str]:
        return [str(c["Name"]) for c in xero_emu.live("Contacts")]

    first = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for("the first QuickBooks batch", lambda: 0 < len(qbo_names()) < CUSTOMERS)
        elapsed = first.sigterm()
        assert first.proc.returncode == 0, (tmp_path / "daemon.log").read_text()
        assert elapsed < 10
        interrupted = len(qbo_names())
        assert interrupted < CUSTOMERS  # really mid-sync: customers were still to be written
        logs = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()
                if line.startswith("{")]
        assert any(e["message"] == "stopped" and e.get("clean") is True for e in logs)
        assert ADMIN_TOKEN not in (tmp_path / "daemon.log").read_text()
    finally:
        first.kill()

    requests.post(f"{emulators['quickbooks'].base_url}/__emulator/faults", json={}, timeout=10).raise_for_status()
    second = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for("every customer in both ledgers", lambda: len(qbo_names()) == CUSTOMERS
                 and len(xero_names()) == CUSTOMERS and not outbox().get("pending") and not outbox().get("in_flight"))
        # A new Stripe customer arrives by webhook while the daemon runs.
        requests.post(f"{stripe_url}/v1/customers", headers=stripe_auth, timeout=10,
                      data={"name": "Webhook Arrival", "email": "late@example.com"}).raise_for_status()
        wait_for("the webhook's customer in both ledgers",
                 lambda: "Webhook Arrival" in qbo_names() and "Webhook Arrival" in xero_names())
        status = requests.get(f"http://127.0.0.1:{port}/api/status", timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert sorted(c["name"] for c in status["connections"]) == ["quickbooks", "stripe", "xero"], status
        assert status["paused"] == {}
        assert second.sigterm() < 10 and second.proc.returncode == 0
    finally:
        second.kill()
        store.dispose()
    with StateStore(f"sqlite:///{db}").transaction() as tx:
        assert tx.count_inbox("processed") >= 1 and tx.count_inbox("failed") == 0
    expected = sorted([f"Customer {i:03d}" for i in range(CUSTOMERS)] + ["Webhook Arrival"])
    assert sorted(qbo_names()) == expected  # complete, and nothing written twice
    assert sorted(xero_names()) == expected


def vendor_calls(emulators: dict[str, RunningEmulator]) -> int:
    """Requests the emulators answered (their control surface is not counted)."""
    return sum(sum(r.emulator.stats.calls.values()) for r in emulators.values())


def test_busy_port_is_refused_before_any_vendor_call(tmp_path: Path,
                                                     emulators: dict[str, RunningEmulator]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "hub.toml"
        write_config(config, tmp_path / "hub.db", port, {n: r.base_url for n, r in emulators.items()}, "whsec_x")
        daemon = Daemon(config, tmp_path / "daemon.log")
        try:
            wait_for("hub run to give up on the busy port", lambda: daemon.proc.poll() is not None, timeout=30)
        finally:
            daemon.kill()
    out = (tmp_path / "daemon.log").read_text()
    assert daemon.proc.returncode == 2, out
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "Traceback" not in out
    assert vendor_calls(emulators) == 0, {n: dict(r.emulator.stats.calls) for n, r in emulators.items()}


def test_sigterm_with_a_hung_vendor_call_exits_within_the_budget(
        tmp_path: Path, emulators: dict[str, RunningEmulator]) -> None:
    budget = 2
    stripe = emulators["stripe"].emulator
    assert isinstance(stripe, StripeEmulator)
    stripe.seed_objects({"customers": [{"name": "Hung", "email": "hung@example.com"}]})
    # Every Stripe API call takes 8 s (the SDK waits 10): the first read is in flight for longer
    # than the budget plus the margin below.
    stripe.set_faults(latency_ms=8000, path_prefix="/v1/")
    config = tmp_path / "hub.toml"
    db = tmp_path / "hub.db"
    write_config(config, db, free_port(), {n: r.base_url for n, r in emulators.items()}, "whsec_x",
                 server_extra=f"shutdown_seconds = {budget}\n")
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for("a Stripe call in flight", lambda: stripe.stats.in_flight > 0 or daemon.proc.poll() is not None)
        assert daemon.proc.poll() is None, (tmp_path / "daemon.log").read_text()
        daemon.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + budget + 3
        while daemon.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = daemon.proc.poll() is not None
        assert stripe.stats.in_flight > 0  # the call really was still hanging when it left
    finally:
        daemon.kill()
    out = (tmp_path / "daemon.log").read_text()
    assert gone, f"still running {budget + 3} s after SIGTERM:\n{out}"
    assert daemon.proc.returncode not in (0, None), out
    logs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    left = [e for e in logs if e["message"].startswith("shutdown budget")]
    assert left and "sync:stripe:customer" in left[0]["jobs"], out
    with StateStore(f"sqlite:///{db}").transaction() as tx:  # nothing of the hung read committed
        assert tx.get_cursor("stripe", "customer") is None
