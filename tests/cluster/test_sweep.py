"""The cluster's sweep on the real PostgreSQL: each connection's outbox push is a job of its own,
deferred only when the outbox holds writes due for it (once across three sweeps), a connection a
config reload added is swept without a restart, and a worker that joins takes the work the
busy one cannot while the connection lock keeps the busy connection's next job waiting."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from procrastinate.exceptions import UniqueViolation

from state import job_queue
from state.job_queue import due_targets
from state.store import StateStore
from sync.cluster import periodic, tasks
from sync.cluster.worker import ClusterWorker
from tests.cluster.conftest import RecordingJobs
from tests.cluster.test_queue import context, job_rows, queue_only, run_until_empty
from tests.conftest import fresh_pg_schema

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC).timestamp()  # a pinned sweep time, not the wall clock


@pytest.fixture
def hub_queue(pg_url: str) -> Iterator[tuple[str, StateStore]]:
    """The hub's tables (``hub init``) and then the queue's (the first worker), in one schema."""
    with fresh_pg_schema(pg_url) as url:
        store = StateStore(url)
        store.init()
        assert job_queue.ensure_schema(url) is True
        try:
            yield url, store
        finally:
            store.dispose()


def write_for(store: StateStore, target: str, key: str, retry_in: timedelta | None = None) -> None:
    """One pending write to ``target`` (due now, or put back for ``retry_in``)."""
    with store.transaction() as tx:
        assert tx.enqueue(f"canon-{key}", "customer", target, "create", key, "digest")
    if retry_in is not None:
        with store.transaction() as tx:
            [item] = tx.claim_outbox(10, target=target)
            tx.fail_outbox(item.id, "503", tx.now + retry_in)


async def test_a_push_is_deferred_per_connection_with_writes_due_once_across_three_sweeps(
        hub_queue: tuple[str, StateStore]) -> None:
    queue_url, store = hub_queue
    jobs = RecordingJobs({"qbo_a": ["customer"], "qbo_b": ["customer"], "xero_a": ["customer"]}, store=store)
    write_for(store, "qbo_a", "k1")
    write_for(store, "qbo_a", "k2")
    write_for(store, "qbo_b", "k3", retry_in=timedelta(hours=1))  # not due: its push waits for it
    with store.transaction() as tx:
        assert due_targets(tx) == {"qbo_a"}
    planned = periodic.schedule(jobs.as_jobs())
    assert [s.periodic_id for s in planned.outboxes] == ["outbox:qbo_a", "outbox:qbo_b", "outbox:xero_a"]
    assert {s.lock for s in planned.outboxes} == {"connection:qbo_a", "connection:qbo_b", "connection:xero_a"}
    no_syncs = periodic.Schedule([], [], planned.outboxes)
    apps = [queue_only(queue_url) for _ in range(3)]
    for app in apps:
        await app.open_async()
    try:
        # a window of one outbox interval: every connection's push tick falls in it
        made = [await periodic.sweep(app, no_syncs, jobs.as_jobs(), NOW, NOW - 15) for app in apps]
        assert made == [1, 0, 0]  # one job, however many sweeps see the tick
        # the next interval's tick while the first push still waits: refused (queueing lock)
        assert await periodic.sweep(apps[0], no_syncs, jobs.as_jobs(), NOW + 15, NOW) == 0
        await run_until_empty(apps[1], jobs)
    finally:
        for app in apps:
            await app.close_async()
    assert jobs.calls == ["outbox:qbo_a"]
    assert [(name, status) for name, status, _ in job_rows(queue_url)] == [
        (tasks.task_name("push_connection"), "succeeded")]
    assert jobs.last["outbox:qbo_a"]["detail"] == "wrote 0, held 0"


async def test_an_inbox_run_that_found_events_pushes_each_connection_with_writes_due_at_once(
        hub_queue: tuple[str, StateStore]) -> None:
    """After the inbox job, a push job per connection with writes due (each under its own
    connection's lock, on any worker), not at its next tick; an empty inbox defers none."""
    queue_url, store = hub_queue
    jobs = RecordingJobs({"qbo_a": ["customer"], "xero_a": ["customer"], "sf_a": ["customer"]}, store=store)
    write_for(store, "qbo_a", "k1")
    write_for(store, "xero_a", "k2")
    write_for(store, "gone", "k3")  # a target no longer configured: nobody's push
    app = queue_only(queue_url)
    await app.open_async()
    try:
        inbox = app.tasks[tasks.task_name("process_inbox")].configure(lock="inbox")
        jobs.inbox_says = "processed 2, failed 0"
        await inbox.defer_async()
        await run_until_empty(app, jobs)
        assert jobs.calls == ["inbox", "outbox:qbo_a", "outbox:xero_a"]
        jobs.inbox_says = "empty"  # the writes are still due (the stand-in's push writes nothing)
        await inbox.defer_async()
        await run_until_empty(app, jobs)
    finally:
        await app.close_async()
    assert jobs.calls == ["inbox", "outbox:qbo_a", "outbox:xero_a", "inbox"]
    with psycopg.connect(job_queue.conninfo(queue_url)) as conn:
        pushes = conn.execute("SELECT lock, queueing_lock, status::text FROM procrastinate_jobs WHERE task_name = %s "
                              "ORDER BY id", (tasks.task_name("push_connection"),)).fetchall()
    assert pushes == [("connection:qbo_a", "outbox:qbo_a", "succeeded"), ("connection:xero_a", "outbox:xero_a", "succeeded")]


async def test_a_connection_added_by_a_reload_is_swept_without_a_restart(queue_url: str) -> None:
    """The worker's schedule follows the process's current Jobs (a reload replaces them): the
    new connection's first read is deferred at once by ``reloaded()``, and later sweeps on this
    worker include its stream; a removed connection drops out of them."""
    current = [RecordingJobs({"qbo_a": ["customer"]})]
    worker = ClusterWorker(queue_url, lambda: current[0].as_jobs())
    app = queue_only(queue_url)
    await app.open_async()
    worker.app = app  # the App start() opens; its worker loop (wall-clock ticks) is not run here
    try:
        assert [s.periodic_id for s in worker.schedule().streams] == ["sync:qbo_a:customer"]
        assert await worker._defer_latest(worker.schedule().streams, 300) == 1  # what start() does
        current[0] = RecordingJobs({"qbo_a": ["customer"], "xero_b": ["customer"]})  # the reload
        assert [s.periodic_id for s in worker.schedule().streams] == ["sync:qbo_a:customer", "sync:xero_b:customer"]
        assert await worker.reloaded() == 1  # xero_b's first read; qbo_a's tick is deferred already
        assert await worker.reloaded() == 0  # a second reload without a change defers nothing
        await run_until_empty(app, current[0])
        assert sorted(current[0].calls) == ["sync:qbo_a:customer", "sync:xero_b:customer"]
        later = NOW + 10 * 300
        syncs = periodic.Schedule([], worker.schedule().streams, [])  # no writes anywhere to push
        swept = await periodic.sweep(app, syncs, current[0].as_jobs(), later, later - 300)
        assert swept == 2  # both connections' next ticks
        current[0] = RecordingJobs({"xero_b": ["customer"]})  # qbo_a removed by another reload
        assert [s.connection for s in worker.schedule().streams] == ["xero_b"]
    finally:
        worker.app = None
        await app.close_async()


async def test_a_worker_that_joins_takes_what_the_busy_one_cannot(queue_url: str) -> None:
    """Worker A is inside qbo_a's push; B joins: it runs qbo_b's sync at once and leaves
    qbo_a's sync alone (the connection's lock is held), which A runs after the push, once."""
    jobs = RecordingJobs({"qbo_a": ["customer"], "qbo_b": ["customer"]})
    release = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        inside.set()
        assert release.wait(20)

    jobs.hold["outbox:qbo_a"] = hold
    planned = periodic.schedule(jobs.as_jobs())
    work = {s.periodic_id: s for s in planned.streams + planned.outboxes}
    first, joining = queue_only(queue_url), queue_only(queue_url)
    for app in (first, joining):
        await app.open_async()
    try:
        for job_id in ("outbox:qbo_a", "sync:qbo_a:customer", "sync:qbo_b:customer"):
            s = work[job_id]
            await first.tasks[s.task].configure(lock=s.lock, queueing_lock=s.periodic_id,
                                                task_kwargs=s.kwargs(0)).defer_async()
        a = asyncio.create_task(run_until_empty(first, jobs))
        assert await asyncio.to_thread(inside.wait, 20)
        # B joins while A is busy: it finds qbo_b's sync and nothing else it may take
        await joining.run_worker_async(wait=False, concurrency=1, install_signal_handlers=False,
                                       additional_context=context(jobs))
        assert jobs.calls == ["outbox:qbo_a", "sync:qbo_b:customer"]
        release.set()
        await a
    finally:
        release.set()
        for app in (first, joining):
            await app.close_async()
    assert jobs.calls == ["outbox:qbo_a", "sync:qbo_b:customer", "sync:qbo_a:customer"]
    assert jobs.most_at_once == {"qbo_a": 1, "qbo_b": 1}
    assert {status for _, status, _ in job_rows(queue_url)} == {"succeeded"}


async def test_a_batch_that_meets_a_job_deferred_meanwhile_goes_one_by_one(
        queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch statement refused whole (a job with one of its queueing locks was deferred
    between its check and its insert, e.g. by an inbox run's push): the streams go one at a
    time, the one already waiting is refused alone and the others are deferred."""
    jobs = RecordingJobs({"qbo_a": ["customer"], "qbo_b": ["customer"], "xero_a": ["customer"]})
    streams = periodic.schedule(jobs.as_jobs()).streams
    app = queue_only(queue_url)
    await app.open_async()
    try:
        first = streams[0]
        await app.tasks[first.task].configure(lock=first.lock, queueing_lock=first.periodic_id,
                                              task_kwargs=first.kwargs(0)).defer_async()
        batches: list[int] = []

        async def raced(connector: object, rows: list[job_queue.PeriodicDefer]) -> int:
            batches.append(len(rows))
            raise UniqueViolation(constraint_name="procrastinate_jobs_queueing_lock_idx_v1", queueing_lock=None)

        monkeypatch.setattr(job_queue, "defer_periodic_many", raced)
        assert await periodic.defer_due(app, streams, NOW, NOW - 300) == 2  # the other two
        assert batches == [3]
    finally:
        await app.close_async()
    assert sorted(args["connection"] for _, _, args in job_rows(queue_url)) == ["qbo_a", "qbo_b", "xero_a"]
