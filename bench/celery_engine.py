"""The hub's jobs on Celery with Redis (bench only: issue 22 item 4 measures Celery beside the
Procrastinate engine; ``pip install -e '.[bench]'``, never in the default install).

    HUB_CONFIG=hub.toml celery -A bench.celery_engine worker --pool solo -Q urgent,routine
    HUB_CONFIG=hub.toml celery -A bench.celery_engine beat -S bench.celery_engine:HubScheduler  # exactly one

Broker: Redis (``HUB_CELERY_BROKER``, default db 7), not RabbitMQ, because the guarantees below
need a shared lock service anyway and Redis is one service for both; RabbitMQ would still need
Redis (or PostgreSQL) for the locks.

Each task is the Procrastinate task of ``sync.cluster.tasks`` (the same body, through the same
``Jobs._job`` of a worker's own Hub and Jobs, built as ``hub run`` builds them), called with a
stand-in for the one thing it reads of Procrastinate's context. What Procrastinate gives in the
database, Celery leaves to us, so here it is in Redis:

* once across the cluster: ``celery beat`` is one process (a single point: run exactly one; a
  second beat doubles every periodic job except the swept ones, which the tick keys dedupe).
  Beat runs the inbox, token, alert-look and diff jobs and, as the Procrastinate engine does, a
  sweep every ``SWEEP_SECONDS`` that sends the per-connection jobs that came due
  (``periodic.schedule``'s streams, and the outbox pushes of connections with writes due,
  ``state.job_queue.due_targets``). Each (job, tick) is sent once (``SET NX`` on a tick key) and
  a job still waiting gets no second copy (a queued key, deleted when it starts):
  Procrastinate's periodic-defer table and queueing lock.
* one connection's work never twice at once: a redis-py ``Lock`` per connection (taken by its
  syncs and its push, as ``periodic.Stream.lock``), one per inbox, tokens, alert look, diff
  entity, each with a timeout of ``LOCK_SECONDS``. A connection's job that finds its lock held
  is sent again ``RETRY_SECONDS`` later; a periodic job that finds its lock held is skipped (the
  holder does the work; the next tick runs again). Unlike Procrastinate's lock (a row, released
  when its job ends or is put back), the lock expires on its own: a job that outlives
  ``LOCK_SECONDS`` loses it. The hub's own advisory lock per stream
  (``StateStore.stream_lock``) and the outbox's claim still keep two reads of one stream, and
  two writes of one record, apart.
* a worker leaving (SIGTERM, warm shutdown): ``worker_shutting_down`` stops the Jobs, the job in
  hand ends at a page boundary (``JobInterrupted``) and is sent again for another worker.
  A worker dying (SIGKILL): ``acks_late``, so its message stays unacknowledged in Redis and is
  delivered again after ``VISIBILITY_SECONDS`` (Redis transport: redelivery is by timeout, not by
  noticing the death; a job running longer than that is delivered a second time while it runs,
  and the connection lock then holds the copy back). Its connection lock blocks the connection's
  syncs until the lock's timeout.
* the outbox stays the source of truth: every write goes through it as in both other engines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import redis
from apscheduler.triggers.interval import IntervalTrigger
from celery import Celery, signals
from celery.beat import Scheduler
from celery.schedules import crontab
from procrastinate import JobContext

from sync.cluster import periodic
from sync.cluster import tasks as cluster_tasks
from sync.config import load_config
from sync.logs import configure_logging
from sync.runtime import Hub
from sync.scheduler import ALERT_LOOK_EVERY, Jobs
from sync.web.app import build_work

log = logging.getLogger("billhub.celery")
BROKER = os.environ.get("HUB_CELERY_BROKER", "redis://127.0.0.1:6379/7")
PREFIX = "hub:"  # every key of ours in the broker's database
JOBS_KEY = PREFIX + "jobs"  # kind -> job bodies run (the bench's count; /metrics in hub run)
SWEPT_KEY = PREFIX + "swept"  # when the last sweep looked (the next covers from there)
LOCK_SECONDS = 300  # a lock outlives a crashed holder this long at most
RETRY_SECONDS = 2  # a sync whose connection is busy is tried again this much later
VISIBILITY_SECONDS = 120  # an unacknowledged message (its worker died) is delivered again after this
URGENT, ROUTINE = "urgent", "routine"  # queues: Redis has no priorities, a worker reads both in turn

app = Celery("billhub", broker=BROKER)
app.conf.update(
    task_acks_late=True,  # a message is acknowledged when its job ends: a killed worker's comes back
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # one job in hand per worker, as the Procrastinate worker
    task_ignore_result=True,
    task_default_queue=ROUTINE,
    broker_transport_options={"visibility_timeout": VISIBILITY_SECONDS},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,  # the hub's JSON logging (secrets masked), as in hub run
)


class _Context:
    """What ``sync.cluster.tasks`` reads of Procrastinate's ``JobContext``: the process's Jobs."""

    def __init__(self, jobs: Jobs) -> None:
        self.additional_context: dict[str, Any] = {"jobs": lambda: jobs}


@dataclass
class _Process:
    """One worker's (or beat's) hub, built once per process as ``hub run`` builds its own."""

    hub: Hub
    jobs: Jobs
    loop: asyncio.AbstractEventLoop
    redis: redis.Redis
    schedule: periodic.Schedule  # the Procrastinate engine's: streams and outbox pushes
    longest: float

    @property
    def context(self) -> JobContext:
        return cast(JobContext, _Context(self.jobs))


_process: _Process | None = None


def process() -> _Process:
    global _process
    if _process is None:
        config = load_config(os.environ.get("HUB_CONFIG"))
        configure_logging(config.secrets, level=logging.WARNING)
        hub = Hub.from_config(config)
        executor = ThreadPoolExecutor(max_workers=int(config.server.get("workers", 4)), thread_name_prefix="hub-io")
        _metrics, jobs = build_work(hub, executor, hub.store.clock)
        _process = _Process(hub, jobs, asyncio.new_event_loop(), redis.Redis.from_url(BROKER),
                            periodic.schedule(jobs), periodic.longest_interval(jobs))
    return _process


@signals.worker_init.connect
def _build_on_start(**_: Any) -> None:
    process()  # before the first job: a worker's first job does not wait on building the hub


@signals.worker_shutting_down.connect
def _stop_jobs(**_: Any) -> None:
    if _process is not None:
        _process.jobs.stop()  # the job in hand ends at its next page boundary: JobInterrupted


def _lock(p: _Process, name: str) -> Any:
    return p.redis.lock(PREFIX + "lock:" + name, timeout=LOCK_SECONDS, blocking=False)


def _release(lock: Any) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:  # it expired (the job outlived LOCK_SECONDS) or was taken over
        log.warning("lock expired before its job ended", extra={"lock": lock.name})


def _run(task: Any, kind: str, body: Callable[..., Awaitable[str]], **kwargs: Any) -> str:
    """The Procrastinate task ``body`` on this process's loop; interrupted (the worker is
    leaving): sent again at once for another worker."""
    p = process()
    try:
        return p.loop.run_until_complete(body(p.context, **kwargs))
    except cluster_tasks.JobInterrupted as exc:
        raise task.retry(countdown=0, max_retries=5, exc=exc) from exc
    finally:
        p.redis.hincrby(JOBS_KEY, kind, 1)


def _exclusive(task: Any, kind: str, lock_name: str, body: Callable[..., Awaitable[str]], **kwargs: Any) -> str:
    """A periodic job under its lock; skipped when another holds it."""
    lock = _lock(process(), lock_name)
    if not lock.acquire():
        return "locked"
    try:
        return _run(task, kind, body, **kwargs)
    finally:
        _release(lock)


def _per_connection(task: Any, stream_id: str, connection: str, kind: str, body: Callable[..., Awaitable[str]],
                    **kwargs: Any) -> str:
    """A swept job of one connection (a stream's sync, its outbox push) under the connection's
    lock; the lock held: sent again ``RETRY_SECONDS`` later, as Procrastinate keeps it waiting."""
    p = process()
    lock = _lock(p, f"connection:{connection}")  # periodic.Stream.lock: syncs and push alike
    if not lock.acquire():
        raise task.retry(countdown=RETRY_SECONDS)  # its queued key stays: no second copy waits
    try:
        p.redis.delete(f"{PREFIX}queued:{stream_id}")  # started: the next tick may queue one
        return _run(task, kind, body, connection=connection, **kwargs)
    finally:
        _release(lock)


# Named as the Procrastinate tasks are, so the sweep sends ``periodic.Stream.task`` as it stands.
@app.task(bind=True, name=cluster_tasks.task_name("sync_stream"), queue=ROUTINE, max_retries=None)
def sync_stream(self: Any, connection: str, entity: str, timestamp: int | None = None) -> str:
    return _per_connection(self, f"sync:{connection}:{entity}", connection, "sync", cluster_tasks.sync_stream,
                           entity=entity, timestamp=timestamp)


@app.task(bind=True, name=cluster_tasks.task_name("push_connection"), queue=URGENT, max_retries=None)
def push_connection(self: Any, connection: str, timestamp: int | None = None) -> str:
    return _per_connection(self, f"outbox:{connection}", connection, "outbox", cluster_tasks.push_connection,
                           timestamp=timestamp)


@app.task(bind=True, name=cluster_tasks.task_name("process_inbox"), queue=URGENT)
def process_inbox(self: Any) -> str:
    return _exclusive(self, "inbox", "inbox", cluster_tasks.process_inbox)


@app.task(bind=True, name=cluster_tasks.task_name("refresh_tokens"), queue=URGENT)
def refresh_tokens(self: Any) -> str:
    return _exclusive(self, "tokens", "tokens", cluster_tasks.refresh_tokens)


@app.task(bind=True, name=cluster_tasks.task_name("look_alerts"), queue=ROUTINE)
def look_alerts(self: Any) -> str:
    return _exclusive(self, "alerts", "alerts", cluster_tasks.look_alerts)


@app.task(bind=True, name=cluster_tasks.task_name("run_diff"), queue=ROUTINE)
def run_diff(self: Any, entity: str) -> str:
    return _exclusive(self, "diff", f"diff:{entity}", cluster_tasks.run_diff, entity=entity)


def send_due(p: _Process, now: float) -> int:
    """The Procrastinate sweep's work (``periodic.sweep``) on Celery: send each stream sync
    whose tick fell since the last sweep (any sweep, any process), and each outbox push whose
    tick did for a connection with writes due; how many were sent. A first sweep covers the
    longest interval back, as a starting Procrastinate worker does: every stream is read at
    once after a start."""
    previous = p.redis.getset(SWEPT_KEY, repr(now))
    since = float(previous) if previous is not None else now - p.longest
    due = periodic.came_due(p.schedule.streams, now, since)
    outboxes = periodic.came_due(p.schedule.outboxes, now, since)
    if outboxes:
        targets = cluster_tasks.writes_due(p.jobs)  # the Procrastinate sweep's question, asked the same way
        due += [s for s in outboxes if s.connection in targets]
    sent = 0
    for stream in due:
        tick = stream.latest_tick(now)
        # one message per (stream, tick) however many sweeps see it; none while one waits
        if not p.redis.set(f"{PREFIX}tick:{stream.periodic_id}:{tick}", 1, nx=True, ex=2 * stream.interval):
            continue
        if not p.redis.set(f"{PREFIX}queued:{stream.periodic_id}", tick, nx=True, ex=VISIBILITY_SECONDS):
            continue
        app.send_task(stream.task, kwargs=stream.kwargs(tick),
                      queue=ROUTINE if stream.entity is not None else URGENT)
        sent += 1
    return sent


@app.task(name="hub:sweep", queue=URGENT)
def sweep() -> int:
    return send_due(process(), time.time())


def beat_schedule(jobs: Jobs) -> dict[str, dict[str, Any]]:
    """Beat's entries for ``jobs``' schedule: the sweep, the alert look, and every job but the
    per-connection ones (stream syncs and outbox pushes: the sweep's), as in ``periodic.schedule``."""
    names = {"inbox": "process_inbox", "tokens": "refresh_tokens"}
    diff_crons = jobs.hub.config.schedules.get("diff") or {}
    entries: dict[str, dict[str, Any]] = {
        "sweep": {"task": "hub:sweep", "schedule": float(periodic.SWEEP_SECONDS)},
        "alerts": {"task": cluster_tasks.task_name("look_alerts"), "schedule": ALERT_LOOK_EVERY.total_seconds()}}
    for spec in jobs.specs():
        if spec.kind in ("sync", "outbox"):
            continue
        if spec.kind == "diff":
            entity = spec.id.split(":", 1)[1]
            minute, hour, day, month, weekday = str(diff_crons[entity]).split()
            entries[spec.id] = {"task": cluster_tasks.task_name("run_diff"), "kwargs": {"entity": entity},
                                "schedule": crontab(minute=minute, hour=hour, day_of_month=day,
                                                    month_of_year=month, day_of_week=weekday)}
            continue
        assert isinstance(spec.trigger, IntervalTrigger)
        entries[spec.id] = {"task": cluster_tasks.task_name(names[spec.kind]),
                            "schedule": spec.trigger.interval.total_seconds()}
    return entries


class HubScheduler(Scheduler):
    """Beat's schedule from the hub's config, in memory (``-S bench.celery_engine:HubScheduler``):
    a restarted beat starts its intervals afresh, as a restarted ``hub run`` does."""

    def setup_schedule(self) -> None:
        self.app.conf.beat_schedule = beat_schedule(process().jobs)
        super().setup_schedule()


__all__ = ["BROKER", "JOBS_KEY", "PREFIX", "HubScheduler", "app", "beat_schedule", "send_due"]
