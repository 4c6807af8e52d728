"""The cluster's schedule: the embedded scheduler's jobs (``Jobs.specs()``) on Procrastinate.

Every worker runs Procrastinate's periodic deferrer over the same table, and the database keeps
one job per (task, periodic id, tick): three workers deferring the 12:05:00 tick of the outbox
make one job. Its schedules are cron lines (with a seconds field), so an interval becomes a cron
step.

Per-connection work — each stream's sync and each connection's outbox push, thousands of them —
is not Procrastinate periodic tasks: its deferrer works out every periodic task's next tick with
croniter on each wake (a few hundred microseconds each, in every worker), so its cost grows with
connections x wakes. Instead one periodic task, ``defer_syncs``, runs every ``SWEEP_SECONDS``
once across the cluster and defers the work whose tick fell since the previous sweep, a tick
being plain arithmetic (``latest_tick``); each is deferred through Procrastinate's periodic-defer
query, so a tick is one job however many sweeps see it. A ``Stream``'s ticks are offset by a
stable hash of its id, so 200 connections' reads spread over the interval instead of all firing
on the minute.

A connection's outbox push is deferred at its tick only when the outbox holds writes due for it
(one query per sweep, ``state.job_queue.due_targets``): the outbox rows stay the source of truth,
and 10,000 idle connections cost no job. It takes the connection's lock, so it never runs beside
that connection's syncs (which push what they plan themselves).

The sweep reads the worker's current schedule (``ClusterWorker.schedule``), so a connection a
config reload added is swept by the next sweep that runs on a reloaded worker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Job

from state import job_queue
from sync.cluster.tasks import URGENT_PRIORITY, connection_lock, push_id, task_name, writes_due
from sync.scheduler import ALERT_LOOK_EVERY, Jobs, JobSpec

log = logging.getLogger("billhub.cluster")
STALLED_CHECK = "* * * * * */10"  # how often a worker looks for the jobs of dead workers
SWEEP_SECONDS = 5  # how often the cluster defers the stream syncs that came due
DEFER_BATCH = 500  # streams deferred per statement
# Deferrals made side by side when a batch fell back to one at a time: the worker's queue pool
# holds job_queue.POOL_MAX connections, and one stays free for its heartbeat and the next fetch.
DEFER_AT_ONCE = job_queue.POOL_MAX - 1
# Interval steps a cron line can hold evenly: divisors of a minute, an hour, a day.
_SECOND_STEPS = [s for s in range(1, 61) if 60 % s == 0]
_MINUTE_STEPS = [m * 60 for m in range(1, 61) if 60 % m == 0]
_HOUR_STEPS = [h * 3600 for h in range(1, 25) if 24 % h == 0]
STEPS = sorted(set(_SECOND_STEPS + _MINUTE_STEPS + _HOUR_STEPS))


@dataclass(frozen=True)
class Periodic:
    """One periodic task: which task, on what cron line, with which arguments and locks."""

    periodic_id: str
    task: str
    cron: str
    kwargs: dict[str, Any]
    lock: str | None  # None: may run beside another copy of itself
    queueing_lock: str


def every(seconds: float, offset: int = 0) -> str:
    """A cron line (seconds as the sixth field) ticking every ``seconds``, ``offset`` seconds
    into each step. An interval no cron step holds evenly is taken to the nearest that does."""
    step = min(STEPS, key=lambda s: (abs(s - seconds), s))
    if step != round(seconds):
        log.warning("interval %s s runs every %s s on the procrastinate engine (a cron step)", seconds, step)
    offset %= step
    sec = offset % 60
    if step < 60:
        return f"* * * * * {sec}-59/{step}"
    if step < 3600:
        minutes = step // 60
        return f"{(offset // 60) % minutes}-59/{minutes} * * * * {sec}"
    hours = step // 3600
    return f"{(offset // 60) % 60} {(offset // 3600) % hours}-23/{hours} * * * {sec}"


@dataclass(frozen=True)
class Stream:
    """One connection's swept work: a stream's sync (``entity``) or, with ``entity`` None, its
    outbox push; every ``interval`` seconds, ``offset`` seconds into it."""

    periodic_id: str  # the embedded job id, sync:<connection>:<entity>; outbox:<connection>
    connection: str
    entity: str | None
    interval: int
    offset: int

    @property
    def lock(self) -> str:
        return connection_lock(self.connection)  # its syncs and its push never run at once, on any worker

    @property
    def task(self) -> str:
        return task_name("sync_stream" if self.entity is not None else "push_connection")

    def kwargs(self, tick: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"connection": self.connection, "timestamp": tick}
        if self.entity is not None:
            kwargs["entity"] = self.entity
        return kwargs

    def latest_tick(self, now: float) -> int:
        """The newest tick at or before ``now`` (epoch seconds)."""
        return self.offset + math.floor((now - self.offset) / self.interval) * self.interval


def _stream(periodic_id: str, connection: str, entity: str | None, seconds: float) -> Stream:
    interval = max(1, round(seconds))
    return Stream(periodic_id, connection, entity, interval, zlib.crc32(periodic_id.encode()) % interval)


@dataclass(frozen=True)
class Schedule:
    periodics: list[Periodic]  # Procrastinate periodic tasks (a handful, whatever the connections)
    streams: list[Stream]  # stream syncs, deferred by the defer_syncs sweep
    outboxes: list[Stream]  # each connection's outbox push, deferred by the sweep when it has writes due


def schedule(jobs: Jobs) -> Schedule:
    """The cluster's schedule for ``jobs``' hub, with the locks of each job."""
    diff_crons = jobs.hub.config.schedules.get("diff") or {}
    periodics: list[Periodic] = []
    streams: list[Stream] = []
    outboxes: list[Stream] = []
    for spec in jobs.specs():
        if spec.kind == "sync":
            assert isinstance(spec.trigger, IntervalTrigger)
            _, connection, entity = spec.id.split(":", 2)
            streams.append(_stream(spec.id, connection, entity, spec.trigger.interval.total_seconds()))
        elif spec.kind == "outbox":
            # the embedded engine's one pass over every connection becomes one job per
            # connection, at the same interval (``connections`` names them, not the specs)
            assert isinstance(spec.trigger, IntervalTrigger)
            outboxes += [_stream(push_id(name), name, None, spec.trigger.interval.total_seconds())
                         for name in connections(jobs)]
        else:
            periodics.append(_periodic(spec, diff_crons))
    # No lock for the stalled-job check: a check that ran on a worker that died is itself a
    # stalled job, and with a lock it would hold back every later check — the one that should
    # put it back (found by the chaos run). Two checks at once are harmless.
    periodics.append(Periodic("retry_stalled", task_name("retry_stalled"), STALLED_CHECK, {},
                              None, "retry_stalled"))
    periodics.append(Periodic("defer_syncs", task_name("defer_syncs"), every(SWEEP_SECONDS), {},
                              "defer_syncs", "defer_syncs"))
    # The alert look: once across the cluster, not once per process (it reads every
    # connection's state, the newest dead letter, the outbox depth and the recent runs).
    periodics.append(Periodic("alerts", task_name("look_alerts"), every(ALERT_LOOK_EVERY.total_seconds()), {},
                              "alerts", "alerts"))
    return Schedule(periodics, streams, outboxes)


def connections(jobs: Jobs) -> list[str]:
    """The connections of ``jobs``' hub, in config order."""
    return list(jobs.hub.connectors)


def _periodic(spec: JobSpec, diff_crons: dict[str, Any]) -> Periodic:
    if spec.kind == "diff":
        entity = spec.id.split(":", 1)[1]
        return Periodic(spec.id, task_name("run_diff"), str(diff_crons[entity]), {"entity": entity},
                        spec.id, spec.id)
    assert isinstance(spec.trigger, IntervalTrigger)  # every other job is an interval job
    names = {"inbox": "process_inbox", "tokens": "refresh_tokens"}
    return Periodic(spec.id, task_name(names[spec.kind]), every(spec.trigger.interval.total_seconds()), {},
                    spec.id, spec.id)


def came_due(streams: Iterable[Stream], now: float, since: float) -> list[Stream]:
    """The streams whose latest tick lies in (``since``, ``now``]."""
    return [s for s in streams if s.latest_tick(now) > since]


async def defer_due(app: App, streams: Iterable[Stream], now: float, since: float) -> int:
    """Defer each stream whose latest tick lies in (``since``, ``now``]; how many were new.

    A tick already deferred (by another sweep, another worker) is not deferred again: the
    database keeps one job per (stream, tick). A stream whose previous job still waits is
    skipped (its queueing lock): the waiting one does everything since anyway.

    ``DEFER_BATCH`` streams per statement (``job_queue.defer_periodic_many``): one round trip
    per job, a sweep that found 10,000 pushes due took 15 s (``bench/cluster_sweep.py``)."""
    due = came_due(streams, now, since)
    deferred = 0
    for start in range(0, len(due), DEFER_BATCH):
        chunk = due[start:start + DEFER_BATCH]
        try:
            deferred += await job_queue.defer_periodic_many(app.connector, [_defer(app, s, now) for s in chunk])
        except UniqueViolation:  # one of them was deferred meanwhile (an inbox run's push): one by one
            deferred += await _defer_each(app, chunk, now)
    return deferred


def _job(app: App, stream: Stream, tick: int) -> Job:
    """``stream``'s job for ``tick``, with its locks: the one both ways of deferring it send."""
    return app.tasks[stream.task].configure(lock=stream.lock, queueing_lock=stream.periodic_id,
                                            task_kwargs=stream.kwargs(tick)).job


def _defer(app: App, stream: Stream, now: float) -> job_queue.PeriodicDefer:
    tick = stream.latest_tick(now)
    job = _job(app, stream, tick)
    assert job.queueing_lock is not None
    return job_queue.PeriodicDefer(job.queue, job.task_name, job.priority, job.lock, job.queueing_lock,
                                   stream.periodic_id, tick, dict(job.task_kwargs))


async def _defer_each(app: App, streams: list[Stream], now: float) -> int:
    """``streams`` one job at a time (``DEFER_AT_ONCE`` side by side), each refusal its own."""
    gate = asyncio.Semaphore(DEFER_AT_ONCE)

    async def defer(stream: Stream) -> bool:
        tick = stream.latest_tick(now)
        job = _job(app, stream, tick)
        async with gate:
            try:
                return bool(await app.job_manager.defer_periodic_job(job, periodic_id=stream.periodic_id,
                                                                     defer_timestamp=tick))
            except AlreadyEnqueued:
                return False

    return sum(await asyncio.gather(*(defer(s) for s in streams)))


def longest_interval(jobs: Jobs) -> float:
    """The longest interval among ``jobs``' interval jobs (seconds; at least a minute)."""
    intervals: list[float] = [s.trigger.interval.total_seconds() for s in jobs.specs()
                              if isinstance(s.trigger, IntervalTrigger)]
    return max([60.0, *intervals])


ScheduleOf = Callable[[], Schedule]  # the worker's schedule for its current config


async def defer_syncs(context: JobContext, timestamp: int | None = None) -> int:
    """The sweep (a periodic task, once per tick across the cluster): what came due since the
    sweep before this one. A sweep that waited covers its wait too."""
    now = time.time()
    since = (timestamp if timestamp is not None else now) - SWEEP_SECONDS - 1  # touching windows
    return await sweep(context.app, context.additional_context["schedule"](), context.additional_context["jobs"](),
                       now, since)


async def sweep(app: App, current: Schedule, jobs: Jobs, now: float, since: float) -> int:
    """Defer the stream syncs whose tick lies in (``since``, ``now``], and the outbox pushes
    whose tick does for the connections with writes due now; how many jobs were new."""
    deferred = await defer_due(app, current.streams, now, since)
    outboxes = came_due(current.outboxes, now, since)
    if outboxes:
        due = await jobs.blocking(writes_due, jobs)
        deferred += await defer_due(app, [s for s in outboxes if s.connection in due], now, since)
    return deferred


def register(app: App, periodics: list[Periodic]) -> None:
    """The sweep's task and each periodic task on ``app`` (after ``tasks.register``)."""
    app.task(name=task_name("defer_syncs"), pass_context=True, priority=URGENT_PRIORITY)(defer_syncs)
    for p in periodics:
        app.periodic(cron=p.cron, periodic_id=p.periodic_id, lock=p.lock, queueing_lock=p.queueing_lock,
                     task_kwargs=dict(p.kwargs))(app.tasks[p.task])


__all__ = ["Periodic", "STEPS", "SWEEP_SECONDS", "Schedule", "ScheduleOf", "Stream", "came_due", "connections",
           "defer_due", "defer_syncs", "every", "longest_interval", "register", "schedule", "sweep"]
