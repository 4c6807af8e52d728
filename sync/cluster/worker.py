"""The Procrastinate worker that runs inside ``hub run --engine procrastinate``.

Each ``hub run`` still serves its HTTP surface (webhooks, admin API, console, health) and, in
place of the embedded scheduler, runs one Procrastinate worker on the same event loop. Workers
join by starting and leave by stopping (or dying): the queue is in PostgreSQL, so nothing else
needs to know. A worker takes one job at a time: engine work runs one pass at a time per
process (``sync/lane.py``), so a second job taken would only wait here while a free worker
elsewhere could have run it.

Leaving: SIGTERM stops the job in hand at a page boundary (``JobInterrupted``: retried at once
on another worker). Dying (SIGKILL, a lost host): the worker's heartbeat stops; after
``stalled_seconds`` any worker's ``retry_stalled`` task puts its job back in the queue.

A config reload (SIGHUP) replaces the process's ``Jobs``; the worker's schedule follows them
(``schedule()``, read by every sweep that runs here), and ``reloaded()`` defers a new
connection's first reads at once, as a start does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from procrastinate import App

from state import job_queue
from sync.cluster import periodic, tasks
from sync.scheduler import Jobs

log = logging.getLogger("billhub.cluster")
STALLED_SECONDS = 30.0  # no heartbeat for this long: the worker is gone, its job runs elsewhere
HEARTBEATS_PER_STALL = 3  # heartbeats a live worker sends within one stalled_seconds


def build_app(url: str, schedule: periodic.Schedule, longest: float) -> App:
    """A Procrastinate App on the hub's database with the cluster's tasks and ``schedule``.

    A worker that starts defers each periodic job's latest tick if it lies within the longest
    interval (``longest``): like the embedded scheduler's first run at start, a restart works at
    once, yet the tick is the same for every worker, so the database still keeps one job of it."""
    app = App(connector=job_queue.connector(url), periodic_defaults={"max_delay": longest})
    tasks.register(app)
    periodic.register(app, schedule.periodics)
    return app


def _unbound() -> Jobs:
    raise RuntimeError("the worker's jobs are bound when the daemon starts it (create_app)")


class ClusterWorker:
    """One worker of the cluster, started and stopped by the daemon."""

    def __init__(self, url: str, jobs_of: Callable[[], Jobs] | None = None, *,
                 stalled_seconds: float = STALLED_SECONDS, name: str | None = None, keep_jobs: bool = False) -> None:
        self.url = url
        self.jobs_of = jobs_of or _unbound
        self.stalled_seconds = stalled_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.keep_jobs = keep_jobs  # the tenants bench reads finished jobs; production deletes them
        self.app: App | None = None
        self._task: asyncio.Task[None] | None = None
        self._schedule: tuple[Jobs, periodic.Schedule] | None = None  # the schedule of which Jobs
        self._started: set[str] = set()  # the streams whose first reads this worker deferred

    def schedule(self) -> periodic.Schedule:
        """The schedule of the process's current ``Jobs`` (worked out again after a reload)."""
        jobs = self.jobs_of()
        if self._schedule is None or self._schedule[0] is not jobs:
            self._schedule = (jobs, periodic.schedule(jobs))
        return self._schedule[1]

    async def _defer_latest(self, streams: list[periodic.Stream], longest: float) -> int:
        """Each stream's latest tick within ``longest`` (one job per tick, however many workers
        do this together): the reads the embedded scheduler makes at start."""
        assert self.app is not None
        self._started |= {s.periodic_id for s in streams}
        now = time.time()
        return await periodic.defer_due(self.app, streams, now, now - longest)

    async def reloaded(self) -> int:
        """After a config reload: the streams of connections this worker did not schedule before
        read at once (the sweeps from now on include them); how many were deferred. The
        periodic tasks (inbox, tokens, diffs) stay those of the start: a changed diff cron
        applies at the next restart."""
        if self.app is None:
            return 0
        fresh = [s for s in self.schedule().streams if s.periodic_id not in self._started]
        return await self._defer_latest(fresh, periodic.longest_interval(self.jobs_of())) if fresh else 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        created = await loop.run_in_executor(None, job_queue.ensure_schema, self.url)
        if created:
            log.info("created the procrastinate job queue tables")
        schedule = self.schedule()
        longest = periodic.longest_interval(self.jobs_of())
        self.app = build_app(self.url, schedule, longest)
        await self.app.open_async()
        await self._defer_latest(schedule.streams, longest)
        options: dict[str, Any] = {
            "concurrency": 1, "name": self.name, "install_signal_handlers": False,
            "additional_context": {"jobs": self.jobs_of, "stalled_seconds": self.stalled_seconds,
                                   "schedule": self.schedule},
            "update_heartbeat_interval": self.stalled_seconds / HEARTBEATS_PER_STALL,
            "stalled_worker_timeout": self.stalled_seconds,
            "delete_jobs": "never" if self.keep_jobs else "successful",
        }
        self._task = asyncio.create_task(self.app.run_worker_async(**options), name="procrastinate-worker")
        log.info("procrastinate worker started", extra={"worker": self.name, "streams": len(schedule.streams),
                                                        "periodic_tasks": len(self.app.periodic_registry.periodic_tasks)})

    async def stop(self, grace: float) -> bool:
        """Stop taking jobs; the job in hand ends (Jobs.stop() makes it end at a page boundary)
        within ``grace`` seconds. True when the worker finished."""
        finished = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            done, _ = await asyncio.wait([self._task], timeout=grace)
            finished = bool(done)
        if self._task is not None and self._task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                self._task.result()
        if self.app is not None and finished:
            app, self.app, self._task = self.app, None, None  # a second stop() finds nothing to do
            await app.close_async()
        return finished


__all__ = ["ClusterWorker", "STALLED_SECONDS", "build_app"]
