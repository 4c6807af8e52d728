"""Token rotation under contention: three ``hub run`` processes on one PostgreSQL schema use the
same QuickBooks and Xero connections for 10 minutes of emulator time while every access token
is expired again and again. Every process meets the expiry at about the same moment (a 401),
and the credentials lock lets exactly one refresh while the others adopt its result.

QuickBooks refuses a used refresh token at once and Xero after a grace period, so a refresh made
from a stale refresh token would show up as ``invalid_grant`` in the emulators' OAuth stats and
lock the connection out (``needs_reauth``). Neither may happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.emulation import EmulatorClock, RunningEmulator, free_port
from connectors.quickbooks.emulator import DEFAULT_REALM, DEFAULT_REFRESH_TOKEN, QuickBooksEmulator
from connectors.xero.emulator import DEFAULT_REFRESH_TOKEN as XERO_REFRESH
from connectors.xero.emulator import DEFAULT_TENANT, XeroEmulator
from state.store import StateStore
from tests.conftest import TEST_KEY
from tests.scale.chaos import Daemon
from tests.scale.helpers import config_text, control, qbo_connection, wait_until, xero_connection

PROCESSES = 3
STEPS = 20  # 20 expiries, 30 s of emulator time apart: 10 minutes
STEP_SECONDS = 30


@pytest.fixture
def ledgers() -> Iterator[dict[str, RunningEmulator]]:
    now = datetime.now(UTC).replace(microsecond=0)
    running = {"quickbooks": RunningEmulator(QuickBooksEmulator(EmulatorClock(now))).start(),
               "xero": RunningEmulator(XeroEmulator(EmulatorClock(now))).start()}
    yield running
    for r in running.values():
        r.stop()


@pytest.mark.postgres
def test_three_processes_rotate_tokens_without_a_refused_refresh_or_a_lockout(
        tmp_path: Path, pg_schema_url: str, ledgers: dict[str, RunningEmulator]) -> None:
    qbo_url, xero_url = ledgers["quickbooks"].base_url, ledgers["xero"].base_url
    xero: XeroEmulator = ledgers["xero"].emulator  # type: ignore[assignment]
    config = tmp_path / "hub.toml"
    config.write_text(config_text(
        pg_schema_url, TEST_KEY,
        {"quickbooks": qbo_connection(qbo_url, DEFAULT_REALM, DEFAULT_REFRESH_TOKEN, max_attempts=3,
                                      retry_base_seconds=0.05, retry_after_seconds=1.0),
         "xero": xero_connection(xero_url, DEFAULT_TENANT, XERO_REFRESH, max_attempts=3, retry_base_seconds=0.05)},
        schedules={"sync_interval_seconds": 0.3, "outbox_interval_seconds": 5, "inbox_interval_seconds": 5,
                   "token_refresh_seconds": 1},
        server={"host": "127.0.0.1", "workers": 4}), encoding="utf-8")
    store = StateStore(pg_schema_url)
    store.init()  # once, before the processes start (each would otherwise migrate at the same time)
    daemons = [Daemon(config, free_port(), tmp_path / f"daemon{i}.log") for i in range(PROCESSES)]

    def xero_refreshes() -> int:
        return len(xero.oauth.grants) - 1  # every refresh issues one new grant

    def qbo_refreshes() -> int:
        return int(control(qbo_url, "oauth", method="GET")["refreshes"])

    def states() -> dict[str, str]:
        with store.transaction() as tx:
            return {name: str(s["status"]) for name, s in tx.connection_states().items()}

    try:
        for d in daemons:
            wait_until(f"process on port {d.port}", d.ready, 90)
        wait_until("the first refresh of both connections", lambda: qbo_refreshes() >= 1 and xero_refreshes() >= 1, 60)
        for step in range(STEPS):
            before = (qbo_refreshes(), xero_refreshes())
            control(qbo_url, "clock", {"advance_seconds": STEP_SECONDS})
            control(xero_url, "clock", {"advance_seconds": STEP_SECONDS})
            control(qbo_url, "oauth", {"expire_access_tokens": True})
            control(xero_url, "tokens", {"expire_access_tokens": True})
            wait_until(f"step {step}: both connections refreshed after the expiry",
                       lambda b=before: qbo_refreshes() > b[0] and xero_refreshes() > b[1], 60)  # type: ignore[misc]
            assert "needs_reauth" not in states().values(), states()
        qbo_stats = control(qbo_url, "oauth", method="GET")
        # Settle: every process has adopted the newest token (no refresh is still under way).
        wait_until("the last refresh to settle", lambda: qbo_refreshes() == qbo_stats["refreshes"], 5)
    finally:
        codes = [d.sigterm() for d in daemons]
        store.dispose()
    assert codes == [0] * PROCESSES, [d.log.read_text()[-2000:] for d in daemons]
    final = control(qbo_url, "oauth", method="GET")
    xero_refused = xero.oauth.counts["invalid_grant"]
    assert final["invalid_grant"] == 0 and xero_refused == 0, (final, xero_refused)
    # One refresh per expiry, not one per process: the others adopted the stored token.
    assert STEPS + 1 <= final["refreshes"] <= STEPS + 1 + PROCESSES, final
    assert STEPS + 1 <= xero_refreshes() <= STEPS + 1 + PROCESSES, xero_refreshes()
    assert final["active_refresh_tokens"] == 1  # exactly one usable grant left: nothing lost
    store = StateStore(pg_schema_url)
    try:
        with store.transaction() as tx:
            assert {n: s["status"] for n, s in tx.connection_states().items()
                    if n in ("quickbooks", "xero")} in ({}, {"quickbooks": "ok"}, {"xero": "ok"},
                                                        {"quickbooks": "ok", "xero": "ok"})
    finally:
        store.dispose()
