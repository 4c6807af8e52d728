"""The cluster's schedule: the embedded scheduler's jobs (``Jobs.specs()``) as Procrastinate
periodic tasks.

Every worker runs Procrastinate's periodic deferrer over the same table, and the database
keeps one job per (task, periodic id, tick): three workers deferring the 12:05:00 tick of
``sync:stripe:customer`` make one job. Procrastinate's schedules are cron lines (with a seconds
field), so an interval becomes a cron step; a stream's ticks are offset by a stable hash of its
id, so 200 connections' syncs spread over the interval instead of all firing on the minute.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger
from procrastinate import App

from sync.cluster.tasks import task_name
from sync.scheduler import Jobs, JobSpec

log = logging.getLogger("billhub.cluster")
STALLED_CHECK = "* * * * * */10"  # how often a worker looks for the jobs of dead workers
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
    lock: str
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


def _stagger(job_id: str, seconds: float) -> int:
    return zlib.crc32(job_id.encode()) % max(1, int(seconds))


def schedule(jobs: Jobs) -> list[Periodic]:
    """The periodic tasks for ``jobs``' hub: one per embedded job, with its locks."""
    diff_crons = jobs.hub.config.schedules.get("diff") or {}
    out: list[Periodic] = []
    for spec in jobs.specs():
        out.append(_periodic(spec, diff_crons))
    out.append(Periodic("retry_stalled", task_name("retry_stalled"), STALLED_CHECK, {},
                        "retry_stalled", "retry_stalled"))
    return out


def _periodic(spec: JobSpec, diff_crons: dict[str, Any]) -> Periodic:
    if spec.kind == "diff":
        entity = spec.id.split(":", 1)[1]
        return Periodic(spec.id, task_name("run_diff"), str(diff_crons[entity]), {"entity": entity},
                        spec.id, spec.id)
    assert isinstance(spec.trigger, IntervalTrigger)  # every other job is an interval job
    seconds = spec.trigger.interval.total_seconds()
    if spec.kind == "sync":
        _, connection, entity = spec.id.split(":", 2)
        # one lock per connection: two of its streams never read (and push) at once
        return Periodic(spec.id, task_name("sync_stream"), every(seconds, _stagger(spec.id, seconds)),
                        {"connection": connection, "entity": entity}, f"connection:{connection}", spec.id)
    names = {"outbox": "push_outbox", "inbox": "process_inbox", "tokens": "refresh_tokens"}
    return Periodic(spec.id, task_name(names[spec.kind]), every(seconds), {}, spec.id, spec.id)


def longest_interval(jobs: Jobs) -> float:
    """The longest interval among ``jobs``' interval jobs (seconds; at least a minute)."""
    intervals: list[float] = [s.trigger.interval.total_seconds() for s in jobs.specs()
                              if isinstance(s.trigger, IntervalTrigger)]
    return max([60.0, *intervals])


def register(app: App, periodics: list[Periodic]) -> None:
    """Each periodic task on ``app`` (its tasks registered first: ``tasks.register``)."""
    for p in periodics:
        app.periodic(cron=p.cron, periodic_id=p.periodic_id, lock=p.lock, queueing_lock=p.queueing_lock,
                     task_kwargs=dict(p.kwargs))(app.tasks[p.task])


__all__ = ["Periodic", "STEPS", "every", "longest_interval", "register", "schedule"]
