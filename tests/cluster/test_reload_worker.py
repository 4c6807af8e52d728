"""A real ``hub run --engine procrastinate`` given a new connection by SIGHUP reads it without a
restart: its first read is deferred by the reload (the streams' interval here is an hour, so no
ordinary tick would come in the test's time)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.emulation import RunningEmulator, free_port
from connectors.stripe.emulator import StripeEmulator
from state.store import StateStore
from tests.conftest import fresh_pg_schema
from tests.daemon.test_daemon_process import Daemon, emulators, wait_for, write_config

pytestmark = pytest.mark.postgres
__all__ = ["emulators"]  # the fixture, shared with tests/daemon/test_daemon_process.py


@pytest.fixture
def hub_url(pg_url: str) -> Iterator[str]:
    with fresh_pg_schema(pg_url) as url:
        yield url


def without(text: str, connection: str) -> str:
    """The config text without ``[connections.<connection>]``'s table."""
    start = text.index(f"[connections.{connection}]")
    end = text.find("\n[", start + 1)
    return text[:start] + (text[end + 1:] if end != -1 else "")


def read_scopes(store: StateStore) -> set[str]:
    with store.transaction() as tx:
        return {str(r["scope"]) for r in tx.last_runs(limit=1000, kind="sync") if r["finished_at"] is not None}


def test_a_connection_added_by_sighup_is_read_without_a_restart(
        tmp_path: Path, hub_url: str, emulators: dict[str, RunningEmulator]) -> None:
    stripe_emu = emulators["stripe"].emulator
    assert isinstance(stripe_emu, StripeEmulator)
    stripe_emu.seed_objects({"customers": [{"name": "Customer 0", "email": "c0@example.com"}]})
    config = tmp_path / "hub.toml"
    write_config(config, hub_url, free_port(), {n: r.base_url for n, r in emulators.items()}, "whsec_x")
    full = config.read_text(encoding="utf-8")
    assert "sync_interval_seconds = 3600" in full  # no ordinary tick of the new stream in this test
    config.write_text(without(full, "xero"), encoding="utf-8")
    store = StateStore(hub_url)
    store.init()  # hub init, before the worker starts
    daemon = Daemon(config, tmp_path / "hub.log", "--engine", "procrastinate")
    try:
        wait_for("the first reads of stripe and quickbooks", lambda: {"stripe", "quickbooks"} <= read_scopes(store))
        assert "xero" not in read_scopes(store)
        config.write_text(full, encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("a read of xero, the connection the reload added", lambda: "xero" in read_scopes(store), timeout=45)
        assert daemon.proc.poll() is None
        daemon.sigterm()  # waits for the exit (at most 15 s); how long it took is not asserted
        assert daemon.proc.returncode == 0
    finally:
        daemon.kill()
        store.dispose()
    # (the job the reload stopped at a page boundary is handed on: procrastinate logs that retry)
    assert "config reloaded: connections: quickbooks, stripe, xero" in (tmp_path / "hub.log").read_text(encoding="utf-8")
