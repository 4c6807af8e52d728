"""SIGHUP reloads a running ``hub run`` process's config (issue 21, item 6): it used to kill the
daemon. A good file is applied without dropping the port (a new connection appears, its schedule
runs); a file with a problem is refused with one log line and the previous config keeps serving."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from connectors.emulation import EmulatorClock, RunningEmulator, free_port
from connectors.stripe.emulator import StripeEmulator
from connectors.xero.emulator import XeroEmulator
from state.audit import AuditFilter
from state.store import StateStore
from tests.daemon.test_daemon_process import Daemon, wait_for, write_config


@pytest.fixture
def two_emulators() -> Iterator[dict[str, RunningEmulator]]:
    now = datetime.now(UTC).replace(microsecond=0)
    running = {"stripe": RunningEmulator(StripeEmulator(EmulatorClock(now), rate_limit=100_000)).start(),
               "xero": RunningEmulator(XeroEmulator(EmulatorClock(now))).start()}
    yield running
    for r in running.values():
        r.stop()


def _without_section(text: str, header: str) -> str:
    """The config text with one [section] (up to the next header) left out."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == header
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _log_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for raw in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_sighup_applies_a_good_config_and_refuses_a_broken_one(
        tmp_path: Path, two_emulators: dict[str, RunningEmulator]) -> None:
    port = free_port()
    config, log = tmp_path / "hub.toml", tmp_path / "daemon.log"
    urls = {"stripe": two_emulators["stripe"].base_url, "xero": two_emulators["xero"].base_url,
            "quickbooks": "http://127.0.0.1:9"}
    write_config(config, tmp_path / "hub.db", port, urls, "whsec_reload")
    full = config.read_text(encoding="utf-8")
    # Start with Stripe alone (no ledgers), then add Xero by a reload.
    stripe_only = _without_section(_without_section(full, "[connections.xero]"), "[connections.quickbooks]")
    with_xero = _without_section(full, "[connections.quickbooks]")
    config.write_text(stripe_only, encoding="utf-8")
    base = f"http://127.0.0.1:{port}"

    def connections() -> list[str]:
        try:
            return sorted(requests.get(f"{base}/healthz", timeout=2).json()["connections"])
        except requests.RequestException:
            return []

    daemon = Daemon(config, log)
    try:
        wait_for("the daemon to serve Stripe", lambda: connections() == ["stripe"])
        config.write_text(with_xero, encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the reload to add Xero", lambda: connections() == ["stripe", "xero"])
        assert daemon.proc.poll() is None, "SIGHUP must never stop the daemon"
        # Xero's schedules fire at start like every other connection's: the emulator is called.
        wait_for("the new connection's schedule to call Xero",
                 lambda: sum(two_emulators["xero"].emulator.stats.calls.values()) > 0)
        reloaded = [e for e in _log_lines(log) if str(e.get("message", "")).startswith("config reloaded")]
        assert reloaded and "stripe, xero" in str(reloaded[-1]["message"])

        config.write_text(with_xero + "\n[connections.broken]\nsystem = \"nope\"\n", encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the refusal to be logged",
                 lambda: any(str(e.get("message", "")).startswith("config reload refused") for e in _log_lines(log)))
        refused = [e for e in _log_lines(log) if str(e.get("message", "")).startswith("config reload refused")]
        assert "broken" in str(refused[-1]["message"]) and "previous config" in str(refused[-1]["message"])
        assert daemon.proc.poll() is None
        assert connections() == ["stripe", "xero"]  # still serving what it had
        assert requests.get(f"{base}/readyz", timeout=2).status_code == 200
        assert daemon.sigterm() < 15 and daemon.proc.returncode == 0
        store = StateStore(f"sqlite:///{tmp_path / 'hub.db'}")
        with store.transaction() as tx:  # each reload is in the audit log, the refused one with why
            reloads = list(reversed(tx.list_audit(AuditFilter(action="config.reload"))))
        store.dispose()
        assert [(e.actor, e.after["reloaded"], e.after["connections"]) for e in reloads] == [
            ("signal:SIGHUP", True, ["stripe", "xero"]), ("signal:SIGHUP", False, ["stripe", "xero"])]
        assert reloads[0].before == {"connections": ["stripe"]} and "broken" in (reloads[1].reason or "")
    finally:
        daemon.kill()


def test_settings_a_running_process_keeps_are_named_restart_to_apply() -> None:
    from dataclasses import replace

    from sync.config import load_config
    from sync.web.reload import _restart_only_changes
    env = {"HUB_DATABASE_URL": "sqlite:///x.db", "HUB_ENCRYPTION_KEY": "k", "STRIPE_API_KEY": "sk",
           "QBO_CLIENT_ID": "i", "QBO_CLIENT_SECRET": "s", "XERO_CLIENT_ID": "i", "XERO_CLIENT_SECRET": "s"}
    old = load_config(Path(__file__).resolve().parents[2] / "deploy" / "hub.toml", env=env)
    new = replace(old, admin={**old.admin, "session_idle_minutes": 5.0}, server={**old.server, "port": 9090})
    assert _restart_only_changes(old, new) == ["[server] port", "[admin] session_idle_minutes"]
    assert _restart_only_changes(old, replace(old, schedules={"sync_interval_seconds": 60})) == []
