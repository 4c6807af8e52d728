"""Token rotation under crashes and concurrency; daily and minute rate limits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from connectors.base import AuthError, QuotaExhausted
from connectors.emulation import RunningEmulator
from connectors.xero.connector import XeroConnector
from connectors.xero.emulator import XeroEmulator
from state.store import StateStore
from tests.connectors.xero.conftest import Sleeps, make_connector


class Crash(Exception):
    pass


def test_fifty_refreshes_with_crashes_are_never_refused(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    connector = make_connector(xero_emulator, hub_store, sleeps)
    for n in range(50):
        emu.clock.advance(1800)  # the access token has expired
        if n % 10 == 3:
            # crash after the new token arrived, before it was committed: the process dies
            connector.client.tokens.after_receive = _raise_crash
            with pytest.raises(Crash):
                connector.fetch_all("customer").__next__()
            connector.close()
            connector = make_connector(xero_emulator, hub_store, sleeps)  # a fresh process
        elif n % 10 == 7:
            # crash after commit, before first use: the next process uses the stored token
            connector.client.tokens.refresh_credentials()
            connector.close()
            connector = make_connector(xero_emulator, hub_store, sleeps)
        pages = list(connector.fetch_all("customer"))
        assert pages and pages[0].records == []
    connector.close()
    assert emu.oauth.counts["invalid_grant"] == 0
    with hub_store.transaction() as tx:
        stored = tx.load_credentials("xero")
        assert tx.connection_state("xero") is None
    assert stored is not None and stored["refresh_token"] in emu.oauth.grants


def _raise_crash() -> None:
    raise Crash("process killed")


def test_concurrent_callers_refresh_once(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    connector = make_connector(xero_emulator, hub_store, sleeps)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            list(connector.fetch_all("customer"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    connector.close()
    assert not errors
    assert connector.client.tokens.refreshes == 1
    assert emu.stats.calls.get("POST /connect/token") == 1


def test_refused_refresh_marks_connection_needs_reauth(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    connector = make_connector(xero_emulator, hub_store, sleeps, refresh_token="rt-revoked")
    with pytest.raises(AuthError) as info:
        list(connector.fetch_all("customer"))
    connector.close()
    assert info.value.needs_reauth
    assert "rt-revoked" not in str(info.value)
    with hub_store.transaction() as tx:
        state = tx.connection_state("xero")
    assert state is not None and state["status"] == "needs_reauth"
    assert connector.health().reason and "re-authorise" not in str(connector.client.tokens)


def test_refresh_token_is_stored_encrypted(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    connector = make_connector(xero_emulator, hub_store, sleeps)
    list(connector.fetch_all("customer"))
    connector.close()
    with hub_store.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT ciphertext FROM credentials").scalar()
    with hub_store.transaction() as tx:
        token = (tx.load_credentials("xero") or {})["refresh_token"]
    assert token.startswith("rt-") and token not in str(raw)
    assert token not in repr(connector) and token not in repr(connector.client.tokens)


def test_daily_limit_pauses_the_connection_without_sleeping(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    emu.limits.day = 3
    connector = make_connector(xero_emulator, hub_store, sleeps)
    for _ in range(3):
        list(connector.fetch_all("customer"))
        emu.clock.advance(120)
    with pytest.raises(QuotaExhausted) as info:
        list(connector.fetch_all("customer"))
    assert sleeps.waits == []  # nothing slept, not even briefly
    until = info.value.until
    assert until is not None and until - emu.clock.now() > timedelta(hours=23)
    health = connector.health()
    assert health.paused_until == until
    with hub_store.transaction() as tx:
        state = tx.connection_state("xero")
    assert state is not None and state["status"] == "paused"
    calls = emu.stats.to_json()["total"]
    with pytest.raises(QuotaExhausted):  # paused: not even a request is sent
        list(connector.fetch_all("customer"))
    assert emu.stats.to_json()["total"] == calls
    emu.clock.advance(86400)
    assert connector.health().paused_until is None
    assert list(connector.fetch_all("customer"))
    connector.close()


def test_minute_limit_is_waited_out(
        xero_emulator: RunningEmulator, emu: XeroEmulator, hub_store: StateStore, sleeps: Sleeps) -> None:
    emu.limits.minute = 2
    connector = make_connector(xero_emulator, hub_store, sleeps)

    def advancing_sleep(seconds: float) -> None:
        sleeps.waits.append(seconds)
        emu.clock.advance(seconds)

    connector.client.policy.sleep = advancing_sleep
    for _ in range(3):
        list(connector.fetch_all("customer"))
    connector.close()
    assert sleeps.waits and sleeps.waits[0] == 60.0  # Retry-After from the emulator
    assert any(r["status"] == 429 for r in emu.stats.requests)
    assert connector.client.budget["minute_remaining"] >= 0
    assert connector.client.budget["day_remaining"] == 5000 - 3


def test_sdk_urllib3_retries_are_disabled(connector: XeroConnector) -> None:
    assert connector.client.api_client.rest_client.pool_manager.connection_pool_kw["retries"] is False
