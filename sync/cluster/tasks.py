"""The cluster's tasks: each runs one of the daemon's job bodies (``sync.scheduler.Jobs``).

A task only names the work; the body is the embedded daemon's, run through ``Jobs._job`` (the
process's engine lane, the outcome recorded for the console and the metrics). What makes it
safe to run anywhere in the cluster is Procrastinate's, per task:

* ``lock``: jobs that share it never run at once, on any worker — one per connection for its
  stream syncs and its outbox push, one for the inbox, one for the alert look, one per diff entity.
* ``queueing_lock``: while a job waits with it, another is refused — a slow cluster does not pile
  up copies of one stream's sync; the next tick finds the waiting one.
* a stopped job (the worker is leaving: SIGTERM) raises ``JobInterrupted`` and is retried at once
  by another worker; a killed worker's job is put back by ``retry_stalled`` (``worker.py``).
  Re-running any of them is harmless: reads resume from the committed cursors, and every write
  goes through the outbox (claimed, keyed, written once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException, UniqueViolation
from procrastinate.jobs import Status

from state.job_queue import due_targets
from sync.alerts import raise_alerts
from sync.engine import SyncSummary
from sync.scheduler import PUSH_BATCHES_PER_PASS, Jobs

log = logging.getLogger("billhub.cluster")
NAMESPACE = "hub"
# Procrastinate runs the highest priority first: a webhook's change and token refresh go before
# the routine reads (the embedded lane's URGENT / ROUTINE).
URGENT_PRIORITY, ROUTINE_PRIORITY = 20, 0


class JobInterrupted(Exception):
    """The worker is stopping: the job ended at a page boundary and should run elsewhere."""


# A job interrupted by its worker's stop goes straight to another worker, a few times at most.
HANDOVER = RetryStrategy(max_attempts=5, retry_exceptions={JobInterrupted})


class JobFailed(Exception):
    """The job body failed; its detail is in the message (the next tick runs it again)."""


JobsOf = Callable[[], Jobs]  # the process's current Jobs (a config reload replaces them)


def task_name(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def connection_lock(connection: str) -> str:
    """The lock every job of one connection holds: its stream syncs and its outbox push."""
    return f"connection:{connection}"


def push_id(connection: str) -> str:
    """A connection's push: its job id in ``Jobs.last`` and its queueing lock (one waits at most)."""
    return f"outbox:{connection}"


def writes_due(jobs: Jobs) -> set[str]:
    """The connections of ``jobs``' hub the outbox holds writes due for now (blocking)."""
    with jobs.hub.store.transaction() as tx:
        return due_targets(tx) & set(jobs.hub.connectors)


def _jobs(context: JobContext) -> Jobs:
    jobs_of: JobsOf = context.additional_context["jobs"]
    jobs = jobs_of()
    # The alert look is the cluster's periodic job (look_alerts), not every process's after each
    # job; a diff's findings alert still goes at once from the process that ran the diff. Set on
    # each job: a config reload brings new Jobs.
    jobs.looks_at_alerts = False
    return jobs


async def _run(context: JobContext, job_id: str, body: Callable[[Jobs], Callable[..., Any]], *args: Any) -> str:
    jobs = _jobs(context)
    # The scheduler's own job wrapper (the lane, the outcome record, the metrics, the alert
    # look), not a copy of it: a job runs the same in both engines.
    await jobs._job(job_id, body(jobs), *args)
    last = jobs.last[job_id]
    if last["outcome"] == "stopped":
        raise JobInterrupted(f"{job_id}: {last['detail']}")
    if last["outcome"] == "failed":
        raise JobFailed(f"{job_id}: {last['detail']}")
    return str(last["outcome"])


async def sync_stream(context: JobContext, connection: str, entity: str, timestamp: int | None = None) -> str:
    """One stream's incremental read (and the push of what it planned)."""
    return await _run(context, f"sync:{connection}:{entity}", lambda j: j.sync_stream, connection, entity)


async def push_connection(context: JobContext, connection: str, timestamp: int | None = None) -> str:
    """One connection's outbox push (the embedded engine's outbox pass, for this connection)."""
    return await _run(context, push_id(connection), lambda j: partial(push_one, j), connection)


def push_one(jobs: Jobs, connection: str) -> str:
    """Drain (a pass's worth of) ``connection``'s outbox, unless it is paused: what
    ``Jobs.push_outbox`` does for each connection, here for one."""
    if jobs.paused_reason(connection):
        return "skipped"
    summary = SyncSummary()
    jobs.hub.engine.push(connection, summary, None, max_batches=PUSH_BATCHES_PER_PASS)
    jobs._note(summary)  # the pause it met and the metrics, as the embedded pass notes them
    return f"wrote {summary.totals().written}, held {summary.totals().dead}"


async def look_alerts(context: JobContext, timestamp: int | None = None) -> str:
    """The alert look, once across the cluster (a periodic job): every process's jobs leave it
    to this one (``Jobs.looks_at_alerts``, set by ``_jobs``)."""
    return await _run(context, "alerts", lambda j: partial(look, j))


def look(jobs: Jobs) -> str:
    sent = raise_alerts(jobs.hub.store, jobs.hub.config, jobs.clock())
    return f"sent {len(sent)}" if sent else "empty"


async def process_inbox(context: JobContext, timestamp: int | None = None) -> str:
    """The inbox (one job for the cluster); then, when it found events, a push job for each
    connection with writes due, at once (not at its next tick): each runs on a free worker
    under its connection's lock, so a webhook's change reaches the ledgers without waiting."""
    outcome = await _run(context, "inbox", lambda j: j.process_inbox)
    jobs = _jobs(context)
    if jobs.last["inbox"]["detail"] != "empty":
        await defer_pushes(context.app, sorted(await jobs.blocking(writes_due, jobs)))
    return outcome


async def defer_pushes(app: App, connections: list[str]) -> int:
    """A push job for each of ``connections``, unless one already waits; how many were new."""
    task = app.tasks[task_name("push_connection")]
    deferred = 0
    for name in connections:
        try:
            await task.configure(lock=connection_lock(name), queueing_lock=push_id(name),
                                 task_kwargs={"connection": name}).defer_async()
            deferred += 1
        except AlreadyEnqueued:
            continue  # the waiting one pushes everything due when it runs
    return deferred


async def run_diff(context: JobContext, entity: str, timestamp: int | None = None) -> str:
    return await _run(context, f"diff:{entity}", lambda j: j.run_diff, entity)


async def refresh_tokens(context: JobContext, timestamp: int | None = None) -> str:
    return await _run(context, "tokens", lambda j: j.refresh_tokens)


async def retry_stalled(context: JobContext, timestamp: int | None = None) -> int:
    """Put back the jobs of workers that stopped sending heartbeats (killed, or cut off): they
    run again on a live worker. ``stalled_seconds`` is in the worker's additional context.

    A stalled job still holds its lock, so nothing else of its connection (or the outbox) runs
    until it is resolved. When a later tick of the same job already waits (its queueing lock
    refuses a second waiting copy), that one does the work: the stalled one ends ``aborted``."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(
        seconds_since_heartbeat=context.additional_context["stalled_seconds"]))
    for job in stalled:
        try:
            try:
                await manager.retry_job(job)
            except UniqueViolation:
                await manager.finish_job(job, Status.ABORTED, delete_job=False)
        except ConnectorException as exc:  # another check (or the job's end) got there first
            log.info("stalled job already resolved", extra={"job": job.call_string, "error": type(exc).__name__})
            continue
        log.warning("job of a stalled worker put back", extra={"job": job.call_string, "worker_id": job.worker_id})
    return len(stalled)


# name -> (body, priority): the per-kind defaults; locks are set where the job is deferred
TASKS: dict[str, tuple[Callable[..., Any], int]] = {
    "sync_stream": (sync_stream, ROUTINE_PRIORITY),
    "push_connection": (push_connection, URGENT_PRIORITY),
    "look_alerts": (look_alerts, ROUTINE_PRIORITY),
    "process_inbox": (process_inbox, URGENT_PRIORITY),
    "run_diff": (run_diff, ROUTINE_PRIORITY),
    "refresh_tokens": (refresh_tokens, URGENT_PRIORITY),
    "retry_stalled": (retry_stalled, URGENT_PRIORITY),
}


def register(app: App) -> None:
    """The cluster's tasks on ``app`` (one App per worker process, or per test worker)."""
    for name, (body, priority) in TASKS.items():
        app.task(name=task_name(name), pass_context=True, priority=priority, retry=HANDOVER)(body)


__all__ = ["JobFailed", "JobInterrupted", "NAMESPACE", "TASKS", "connection_lock", "defer_pushes", "push_id",
           "register", "task_name", "writes_due"]
