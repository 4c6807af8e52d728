"""The cluster's queue as ``sync/cluster`` configures Procrastinate, on the real PostgreSQL: a
periodic tick deferred by three workers runs once (and a waiting job is not piled up), and two
workers never run one connection's jobs at once while they do run two connections side by side."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from procrastinate import App
from procrastinate.periodic import PeriodicDeferrer

from state import job_queue
from sync.cluster import periodic, tasks
from sync.cluster.worker import build_app
from tests.cluster.conftest import RecordingJobs

pytestmark = pytest.mark.postgres
TICK = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC).timestamp()  # a pinned tick, not the wall clock


def queue_only(url: str) -> App:
    """An App with the cluster's tasks and no schedule: its worker runs what is queued, and its
    own periodic deferrer (which follows the wall clock) has nothing to defer."""
    app = App(connector=job_queue.connector(url))
    tasks.register(app)
    periodic.register(app, [])  # the sweep's task (a deferred sweep job would find its body)
    return app


NOTHING_TO_SWEEP = periodic.Schedule([], [], [])  # a sweep job run here defers nothing more


def context(jobs: RecordingJobs, stalled_seconds: float = 30.0) -> dict[str, Any]:
    """A worker's additional context (``ClusterWorker.start``'s), with nothing to sweep."""
    return {"jobs": jobs.as_jobs, "stalled_seconds": stalled_seconds, "schedule": lambda: NOTHING_TO_SWEEP}


async def run_until_empty(app: App, jobs: RecordingJobs) -> None:
    await app.run_worker_async(wait=False, concurrency=1, install_signal_handlers=False,
                               additional_context=context(jobs))


def job_rows(url: str) -> list[tuple[str, str, Any]]:
    with psycopg.connect(job_queue.conninfo(url)) as conn:
        rows = conn.execute("SELECT task_name, status::text, args FROM procrastinate_jobs ORDER BY id").fetchall()
    return [(str(name), str(status), args) for name, status, args in rows]


async def test_a_tick_deferred_by_three_workers_runs_once(queue_url: str) -> None:
    jobs = RecordingJobs({"stripe_a": ["customer", "invoice"], "xero_a": ["customer"]}, sync_every=300)
    schedule = periodic.schedule(jobs.as_jobs())
    apps = [build_app(queue_url, schedule, 3600) for _ in range(3)]
    for app in apps:
        await app.open_async()
    try:
        deferrers = [PeriodicDeferrer(app.periodic_registry, max_delay=3600) for app in apps]
        for app, deferrer in zip(apps, deferrers, strict=True):
            # every worker defers the same ticks, as each one's loop (and start-up sweep) does
            await deferrer.defer_jobs(deferrer.get_previous_tasks(at=TICK))
            assert await periodic.defer_due(app, schedule.streams, TICK, TICK - 300) == (3 if app is apps[0] else 0)
        # The next tick comes while the first is still waiting: its queueing lock refuses it.
        for app, deferrer in zip(apps, deferrers, strict=True):
            await deferrer.defer_jobs(deferrer.get_previous_tasks(at=TICK + 300))
            assert await periodic.defer_due(app, schedule.streams, TICK + 300, TICK) == 0
        runner = queue_only(queue_url)
        await runner.open_async()
        try:
            await run_until_empty(runner, jobs)
        finally:
            await runner.close_async()
    finally:
        for app in apps:
            await app.close_async()
    assert sorted(jobs.calls) == ["sync:stripe_a:customer", "sync:stripe_a:invoice", "sync:xero_a:customer"]
    assert jobs.looks_at_alerts is False  # the process's jobs leave the alert look to the periodic job
    rows = job_rows(queue_url)
    syncs = [r for r in rows if r[0] == tasks.task_name("sync_stream")]
    assert len(syncs) == 3 and all(status == "succeeded" for _, status, _ in syncs)
    # the stalled-job check, the sweep and the alert look are scheduled too, each once across
    # the three workers; the outbox is no periodic task any more (the sweep defers its pushes)
    names = [r[0] for r in rows]
    for task in ("retry_stalled", "defer_syncs", "look_alerts"):
        assert names.count(tasks.task_name(task)) == 1, task
    assert tasks.task_name("push_connection") not in names and "hub:push_outbox" not in names
    assert all(status == "succeeded" for _, status, _ in rows)


async def test_two_workers_never_run_one_connections_jobs_at_once(queue_url: str) -> None:
    """A connection's stream syncs and its outbox push take one lock: never two at once."""
    jobs = RecordingJobs({"qbo_a": ["customer", "invoice"], "qbo_b": ["customer"]})
    # The first of qbo_a's jobs and qbo_b's meet at a barrier: it passes only if two workers run
    # side by side. Without the per-connection lock the second worker, taking the oldest job,
    # would take qbo_a's second stream and run it beside the first.
    together = threading.Barrier(2, timeout=20)
    jobs.hold["sync:qbo_a:customer"] = together.wait
    jobs.hold["sync:qbo_b:customer"] = together.wait
    planned = periodic.schedule(jobs.as_jobs())
    streams = {s.periodic_id: s for s in planned.streams + planned.outboxes}
    app = queue_only(queue_url)
    await app.open_async()
    try:
        for job_id in ("sync:qbo_a:customer", "outbox:qbo_a", "sync:qbo_a:invoice", "sync:qbo_b:customer"):
            s = streams[job_id]
            await app.tasks[s.task].configure(lock=s.lock, queueing_lock=s.periodic_id,
                                              task_kwargs=s.kwargs(0)).defer_async()
        workers = [queue_only(queue_url) for _ in range(2)]
        for worker in workers:
            await worker.open_async()
        try:
            await asyncio.gather(*(run_until_empty(w, jobs) for w in workers))
        finally:
            for worker in workers:
                await worker.close_async()
    finally:
        await app.close_async()
    assert sorted(jobs.calls) == ["outbox:qbo_a", "sync:qbo_a:customer", "sync:qbo_a:invoice", "sync:qbo_b:customer"]
    # under one lock the more urgent job first (the push), then the syncs in their order
    assert jobs.calls.index("outbox:qbo_a") < jobs.calls.index("sync:qbo_a:customer") \
        < jobs.calls.index("sync:qbo_a:invoice")
    assert not together.broken  # the two connections did run at once, on two workers
    assert jobs.most_at_once == {"qbo_a": 1, "qbo_b": 1}
    assert all(status == "succeeded" for _, status, _ in job_rows(queue_url))


async def test_a_dead_workers_jobs_come_back_even_its_own_stalled_check(queue_url: str) -> None:
    """A worker died holding the stalled-job check itself and a connection's sync: the next
    check still runs (the check has no lock), puts both back, and the sync then runs."""
    jobs = RecordingJobs({"xero_a": ["customer"]})
    stream = periodic.schedule(jobs.as_jobs()).streams[0]
    app = queue_only(queue_url)
    await app.open_async()
    try:
        check = next(p for p in periodic.schedule(jobs.as_jobs()).periodics if p.periodic_id == "retry_stalled")
        sync = app.tasks[tasks.task_name("sync_stream")]
        await sync.configure(lock=stream.lock, queueing_lock=stream.periodic_id,
                             task_kwargs={"connection": "xero_a", "entity": "customer"}).defer_async()
        await app.tasks[check.task].configure(lock=check.lock, queueing_lock=None).defer_async()
        dead = await app.job_manager.register_worker()
        taken = [await app.job_manager.fetch_job(queues=None, worker_id=dead) for _ in range(2)]
        assert {j.task_name for j in taken if j} == {sync.name, check.task}
        await app.job_manager.prune_stalled_workers(0)  # the worker is gone; its jobs stay "doing"
        assert await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=0) != []
        # the next tick's check, deferred while the dead one still holds "doing"
        await app.tasks[check.task].configure(lock=check.lock, queueing_lock=check.queueing_lock).defer_async()
        await app.run_worker_async(wait=False, concurrency=1, install_signal_handlers=False,
                                   additional_context=context(jobs, stalled_seconds=0.0))
    finally:
        await app.close_async()
    assert jobs.calls == ["sync:xero_a:customer"]  # put back and run, once
    assert {status for _, status, _ in job_rows(queue_url)} == {"succeeded"}


async def test_a_job_its_worker_stopped_runs_again_at_once(queue_url: str) -> None:
    """A job that ended at a page boundary because its worker is stopping (the body's outcome
    "stopped") is retried straight away — on another worker, or here the same one — not left
    for the next tick; a job whose body failed is not retried (the next tick runs it)."""
    jobs = RecordingJobs({"stripe_a": ["customer", "invoice"]})
    stops = ["sync:stripe_a:customer"]  # its first run is stopped, once
    run_body = jobs._job

    async def stopping_once(job_id: str, fn: Any, *args: Any) -> None:
        await run_body(job_id, fn, *args)
        if job_id in stops:
            stops.remove(job_id)
            jobs.last[job_id] = {"outcome": "stopped", "detail": "stopped at a page boundary"}
        elif job_id == "sync:stripe_a:invoice":
            jobs.last[job_id] = {"outcome": "failed", "detail": "RetryableError: 503"}

    jobs._job = stopping_once  # type: ignore[method-assign]
    app = queue_only(queue_url)
    await app.open_async()
    try:
        sync = app.tasks[tasks.task_name("sync_stream")]
        for entity in ("customer", "invoice"):
            await sync.configure(lock="connection:stripe_a",
                                 task_kwargs={"connection": "stripe_a", "entity": entity}).defer_async()
        await run_until_empty(app, jobs)
    finally:
        await app.close_async()
    # the stopped job went again before the connection's next job (it keeps its place in line)
    assert jobs.calls == ["sync:stripe_a:customer", "sync:stripe_a:customer", "sync:stripe_a:invoice"]
    assert sorted(status for _, status, _ in job_rows(queue_url)) == ["failed", "succeeded"]
