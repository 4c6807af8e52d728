"""A real ``hub run --engine procrastinate`` worker SIGKILLed while it writes to QuickBooks: a
second worker, started after, gets the job back (the dead worker's heartbeat stopped), and every
customer reaches both ledgers exactly once — the outbox, not the queue, keeps the writes single."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from connectors.emulation import RunningEmulator, free_port
from connectors.quickbooks.emulator import DEFAULT_REALM, QuickBooksEmulator
from connectors.stripe.emulator import StripeEmulator
from connectors.xero.emulator import XeroEmulator
from state import job_queue
from state.store import StateStore
from tests.conftest import fresh_pg_schema
from tests.daemon.test_daemon_process import Daemon, emulators, wait_for, write_config

pytestmark = pytest.mark.postgres
CUSTOMERS = 30
__all__ = ["emulators"]  # the fixture, shared with tests/daemon/test_daemon_process.py


@pytest.fixture
def hub_url(pg_url: str) -> Iterator[str]:
    with fresh_pg_schema(pg_url) as url:
        yield url


def doing(url: str) -> list[tuple[int, str]]:
    try:
        with psycopg.connect(job_queue.conninfo(url)) as conn:
            rows = conn.execute("SELECT id, task_name FROM procrastinate_jobs WHERE status = 'doing'").fetchall()
    except psycopg.errors.UndefinedTable:  # the worker has not created the queue yet
        return []
    return [(int(i), str(n)) for i, n in rows]


def test_a_killed_workers_job_is_retried_by_another_and_written_once(
        tmp_path: Path, hub_url: str, emulators: dict[str, RunningEmulator]) -> None:
    stripe_emu, qbo_emu, xero_emu = (emulators[n].emulator for n in ("stripe", "quickbooks", "xero"))
    assert isinstance(stripe_emu, StripeEmulator) and isinstance(qbo_emu, QuickBooksEmulator)
    assert isinstance(xero_emu, XeroEmulator)
    stripe_emu.seed_objects({"customers": [{"name": f"Customer {i:02d}", "email": f"c{i}@example.com"}
                                           for i in range(CUSTOMERS)]})
    config = tmp_path / "hub.toml"
    write_config(config, hub_url, free_port(), {n: r.base_url for n, r in emulators.items()}, "whsec_x")
    # a write claimed by the killed worker comes back after 2 s (not the default 5 minutes)
    config.write_text(config.read_text() + "\n[flows]\nlease_seconds = 2.0\n", encoding="utf-8")
    qbo_url = emulators["quickbooks"].base_url
    # Slow QuickBooks writes, so the kill lands while one is in flight (it completes at the
    # emulator after its client is gone: the hub does not know it was made).
    requests.post(f"{qbo_url}/__emulator/faults", timeout=10,
                  json={"latency_ms": 1500, "path_prefix": f"/v3/company/{DEFAULT_REALM}/batch"}).raise_for_status()
    cluster = ("--engine", "procrastinate", "--stalled-seconds", "2")
    keep = {"HUB_CLUSTER_KEEP_JOBS": "1"}  # finished jobs stay in the table for the checks below
    first = Daemon(config, tmp_path / "first.log", *cluster, env=keep)
    try:
        # QuickBooks reads go through /batch too (counted apart, as queries): wait for a write
        # batch, so the kill lands while writes are in flight, not a read
        writes = "POST /v3/company/{realm}/batch"
        wait_for("a QuickBooks write in flight", lambda: (qbo_emu.stats.in_flight > 0 and qbo_emu.stats.calls[writes] > 0)
                 or first.proc.poll() is not None)
        assert first.proc.poll() is None, (tmp_path / "first.log").read_text()
        held = doing(hub_url)
        first.proc.kill()  # SIGKILL: no page boundary, no goodbye
        first.proc.wait(10)
    finally:
        first.kill()
    assert held, "the killed worker held no job"
    requests.post(f"{qbo_url}/__emulator/faults", json={}, timeout=10).raise_for_status()

    store = StateStore(hub_url)

    def settled() -> bool:
        with store.transaction() as tx:
            depth = tx.outbox_depth()
        qbo = qbo_emu.realm(DEFAULT_REALM).table("Customer")
        return len(qbo) >= CUSTOMERS and len(xero_emu.live("Contacts")) >= CUSTOMERS \
            and not depth.get("pending") and not depth.get("in_flight")

    def states() -> dict[int, str]:
        with psycopg.connect(job_queue.conninfo(hub_url)) as conn:
            rows = conn.execute("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)",
                                ([i for i, _ in held],)).fetchall()
        return {int(i): str(s) for i, s in rows}

    second = Daemon(config, tmp_path / "second.log", *cluster, env=keep)
    try:
        wait_for("every customer in both ledgers", settled, timeout=45)
        # "again" means to its end: put back, it is "todo" until its connection's lock is free
        # (the connection's push, more urgent, may go first), then it runs
        wait_for("the dead worker's job to run again", lambda: set(states().values()) <= {"succeeded", "aborted"},
                 timeout=30)
        assert second.sigterm() < 10
    finally:
        second.kill()
        store.dispose()
    # The dead worker's job ran again to the end, or (a later tick of it waiting already) was
    # closed for that one to do the work; either way nothing of it is left holding its lock.
    assert set(states().values()) <= {"succeeded", "aborted"}, states()
    expected = [f"Customer {i:02d}" for i in range(CUSTOMERS)]
    assert sorted(str(c["DisplayName"]) for c in qbo_emu.realm(DEFAULT_REALM).table("Customer").values()) == expected
    assert sorted(str(c["Name"]) for c in xero_emu.live("Contacts")) == expected
