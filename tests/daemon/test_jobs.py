"""Jobs on fake systems: the schedule, a stop at a page boundary and a restart that resumes from
the cursor and the outbox with nothing lost and nothing written twice, paused connections."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectors.base import Connector, Outbound, WriteResult
from connectors.fake.connector import FakeConnector, FakeSystem
from connectors.retry import RetryPolicy
from connectors.settings import ConnectionConfig
from mapping.model import Customer, to_data
from state.store import StateStore
from sync.alerts import findings_alert
from sync.logs import configure_logging
from sync.metrics import Metrics
from sync.runtime import Hub
from sync.scheduler import Jobs, build_scheduler
from tests.conftest import FrozenClock, make_store
from tests.daemon.conftest import build_config


class World:
    def __init__(self, store: StateStore, clock: FrozenClock) -> None:
        self.store = store
        self.clock = clock
        self.stripe = FakeSystem("stripe", page_size=10)
        self.ledger = FakeSystem("quickbooks", page_size=10)
        policy = RetryPolicy(sleep=lambda _s: None, max_attempts=2)
        connectors: dict[str, Connector] = {
            "stripe": FakeConnector(self.stripe, policy=policy, kind="stripe"),
            "quickbooks": FakeConnector(self.ledger, policy=policy, kind="quickbooks")}
        config = build_config(store.url, {n: ConnectionConfig(n, "fake", {}) for n in connectors},
                              schedules={"sync_interval_seconds": 60, "outbox_interval_seconds": 5,
                                         "diff": {"customer": "0 2 * * *", "invoice": "30 2 * * *"}})
        self.hub = Hub.from_config(config, store=store, connectors=connectors)
        self.executor = ThreadPoolExecutor(max_workers=2)

    def jobs(self) -> Jobs:
        paused: dict[str, str] = {}
        jobs = Jobs(self.hub, self.executor, Metrics(self.store, self.hub.connectors, self.clock, lambda: paused),
                    clock=self.clock)
        return jobs

    def customers(self, n: int) -> None:
        for i in range(n):
            data = to_data(Customer("x", name=f"Customer {i}", email=f"c{i}@example.com"))
            data.pop("id")
            self.stripe.put("customer", data)


@contextlib.contextmanager
def made_world(tmp_path: Path) -> Iterator[World]:
    """A World on a fresh SQLite store under ``tmp_path`` with a pinned clock (the daemon
    tests' fixture, shared by the lane and push tests)."""
    clock = FrozenClock()
    store = make_store(f"sqlite:///{tmp_path}/hub.db", clock)
    w = World(store, clock)
    yield w
    w.executor.shutdown(wait=True)
    store.dispose()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with made_world(tmp_path) as w:
        yield w


def test_schedule_has_a_job_per_stream_and_cron_diffs(world: World) -> None:
    specs = {s.id: s for s in world.jobs().specs()}
    assert {"sync:stripe:customer", "sync:stripe:invoice", "sync:quickbooks:customer", "outbox", "inbox",
            "tokens", "diff:customer", "diff:invoice"} <= set(specs)
    sync_trigger = specs["sync:stripe:customer"].trigger
    assert isinstance(sync_trigger, IntervalTrigger) and sync_trigger.interval.total_seconds() == 60
    outbox_trigger = specs["outbox"].trigger
    assert isinstance(outbox_trigger, IntervalTrigger) and outbox_trigger.interval.total_seconds() == 5
    assert isinstance(specs["diff:invoice"].trigger, CronTrigger)
    assert "hour='2'" in str(specs["diff:invoice"].trigger) and "minute='30'" in str(specs["diff:invoice"].trigger)


async def test_scheduler_registers_every_job(world: World) -> None:
    jobs = world.jobs()
    scheduler = build_scheduler(jobs)
    ids = {j.id for j in scheduler.get_jobs()}
    assert ids == {s.id for s in jobs.specs()}
    assert all(j.max_instances == 1 and j.coalesce for j in scheduler.get_jobs())


async def test_stop_ends_at_a_page_boundary_and_a_restart_resumes(world: World) -> None:
    world.customers(35)
    jobs = world.jobs()
    checkpoint = world.hub.engine.on_progress
    assert checkpoint is not None

    def sigterm_during_first_page(label: str, n: int) -> None:
        jobs.stop()  # SIGTERM arrives while the first page is in hand
        checkpoint(label, n)

    world.hub.engine.on_progress = sigterm_during_first_page
    outcome = await jobs.run_now("sync:stripe:customer")
    assert outcome["outcome"] == "stopped"
    with world.store.transaction() as tx:
        assert tx.get_cursor("stripe", "customer") == "10"  # the first page, committed with its cursor
        assert tx.count_entities() == {"customer": 10}
        assert tx.last_runs(1)[0]["status"] == "failed" and "stopping" in tx.last_runs(1)[0]["error"]
    assert (await jobs.run_now("outbox"))["outcome"] == "stopped"  # nothing new starts once stopping
    assert world.ledger.live("customer") == {}

    restarted = world.jobs()  # a new process: same store, same systems
    assert (await restarted.run_now("sync:stripe:customer"))["outcome"] == "ok"
    assert (await restarted.run_now("outbox"))["outcome"] == "ok"
    names = sorted(d["name"] for d in world.ledger.live("customer").values())
    assert names == sorted(f"Customer {i}" for i in range(35))  # complete, no duplicates
    assert (await restarted.run_now("outbox"))["outcome"] == "ok"
    assert len(world.ledger.live("customer")) == 35


async def test_paused_connection_is_skipped_and_shown(world: World) -> None:
    world.customers(3)
    jobs = world.jobs()
    with world.store.transaction() as tx:
        tx.set_connection_state("quickbooks", "needs_reauth", reason="refresh token refused")
    await jobs.run_now("sync:stripe:customer")
    calls_before = len(world.ledger.calls)
    assert (await jobs.run_now("sync:quickbooks:customer"))["outcome"] == "skipped"
    assert (await jobs.run_now("outbox"))["outcome"] == "ok"
    assert len(world.ledger.calls) == calls_before  # no call at all to a paused connection
    assert jobs.paused == {"quickbooks": "needs_reauth: refresh token refused"}
    with world.store.transaction() as tx:
        tx.set_connection_state("quickbooks", "ok")
    await jobs.run_now("outbox")
    assert len(world.ledger.live("customer")) == 3 and jobs.paused == {}


class _WaitsForTheOther(FakeConnector):
    """A ledger whose write answers only once the other ledger's write has begun."""

    def __init__(self, system: FakeSystem, started: threading.Event, other: threading.Event) -> None:
        super().__init__(system, policy=RetryPolicy(sleep=lambda _s: None, max_attempts=2), kind=system.name)
        self.started, self.other = started, other
        self.saw_the_other = False

    def upsert(self, entity_type: str, batch: Sequence[Outbound]) -> list[WriteResult]:
        self.started.set()
        # Pushed one after another, the other write cannot begin while this one waits: the wait
        # runs out and the flag stays False. (The timeout only bounds a failing run.)
        self.saw_the_other = self.saw_the_other or self.other.wait(timeout=20)
        return super().upsert(entity_type, batch)


@pytest.mark.postgres
async def test_on_postgresql_a_slow_ledger_does_not_hold_back_the_writes_to_another(pg_schema_url: str) -> None:
    clock = FrozenClock()
    store = make_store(pg_schema_url, clock)
    stripe = FakeSystem("stripe", page_size=10)
    qbo_started, xero_started = threading.Event(), threading.Event()
    qbo = _WaitsForTheOther(FakeSystem("quickbooks", page_size=10), qbo_started, xero_started)
    xero = _WaitsForTheOther(FakeSystem("xero", page_size=10), xero_started, qbo_started)
    connectors: dict[str, Connector] = {
        "stripe": FakeConnector(stripe, policy=RetryPolicy(sleep=lambda _s: None), kind="stripe"),
        "quickbooks": qbo, "xero": xero}
    config = build_config(store.url, {n: ConnectionConfig(n, "fake", {}) for n in connectors})
    hub = Hub.from_config(config, store=store, connectors=connectors)
    executor = ThreadPoolExecutor(max_workers=2)
    try:
        for i in range(3):
            stripe.put("customer", {"name": f"Customer {i}", "email": f"c{i}@example.com"})
        jobs = Jobs(hub, executor, Metrics(store, hub.connectors, clock, dict), clock=clock)
        assert (await jobs.run_now("sync:stripe:customer"))["outcome"] == "ok"
        assert (await jobs.run_now("outbox"))["outcome"] == "ok"
        assert qbo.saw_the_other and xero.saw_the_other
        assert len(qbo.remote.live("customer")) == 3 and len(xero.remote.live("customer")) == 3
    finally:
        executor.shutdown(wait=True)
        store.dispose()


async def test_a_job_that_did_work_logs_one_info_line_and_an_idle_one_and_the_scheduler_none(
        world: World) -> None:
    """Logs that say what the hub did (issue 21, item 6): a sync that read and wrote is one
    INFO line with its counts; the same job with nothing to do, and the scheduler library's own
    "Running job" chatter, say nothing at INFO."""
    stream = io.StringIO()
    handler = configure_logging([], stream=stream)
    try:
        logging.getLogger("apscheduler.executors.default").info('Running job "sync:stripe:customer"')
        world.customers(3)
        jobs = world.jobs()
        assert (await jobs.run_now("sync:stripe:customer"))["outcome"] == "ok"
        assert (await jobs.run_now("sync:stripe:customer"))["outcome"] == "ok"  # nothing new: idle
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    infos = [line for line in lines if line["level"] == "info"]
    assert [line["message"] for line in infos] == ["sync:stripe:customer: read 3, wrote 0"], lines
    assert infos[0]["job"] == "sync:stripe:customer" and infos[0]["outcome"] == "ok"
    assert not [line for line in lines if line.get("logger", "").startswith("apscheduler")]


def test_jobs_look_at_the_alert_conditions_twice_a_minute_and_at_a_diffs_findings_at_once(
        world: World) -> None:
    """The inbox job runs every few seconds; the alert conditions are read at most every 30 s
    of the pinned clock, and a diff's findings alert is never held back."""
    from sync.findings import DiffResult
    from tests.sync.test_alerts import Hook

    hook = Hook()
    try:
        world.hub.config = dataclasses.replace(world.hub.config, alerts={"webhook_url": hook.url})
        jobs = world.jobs()
        with world.store.transaction() as tx:
            tx.set_connection_state("stripe", "needs_reauth", reason="invalid_grant")
        jobs._alert()
        assert hook.kinds() == ["needs_reauth"]
        with world.store.transaction() as tx:
            tx.set_connection_state("quickbooks", "needs_reauth", reason="invalid_grant")
        world.clock.advance(seconds=10)
        jobs._alert()  # within 30 s: not looked at
        assert hook.kinds() == ["needs_reauth"]
        jobs._pending_alerts.append(findings_alert(DiffResult("run-9", world.clock(), new=2), {}))
        jobs._alert()  # a diff's findings go at once (and the conditions are read with them)
        assert sorted(hook.kinds()) == ["findings", "needs_reauth", "needs_reauth"]
        with world.store.transaction() as tx:
            tx.set_connection_state("stripe", "paused", reason="rate budget",
                                    paused_until=world.clock() + timedelta(hours=1))
        world.clock.advance(seconds=31)
        jobs._alert()
        assert hook.kinds()[-1] == "paused"
    finally:
        hook.close()
