"""What every handler of the daemon's app reaches: the running ``Daemon`` and its parts."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sync.cluster.worker import ClusterWorker
from sync.config import Config
from sync.metrics import Metrics
from sync.runtime import Hub
from sync.scheduler import Jobs
from sync.web.guards import Sessions, Throttle, sessions_for, throttle_for

log = logging.getLogger("billhub.daemon")
STOP_GRACE_SECONDS = 7.0  # + server shutdown stays inside the default 10 s [server].shutdown_seconds
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Daemon:
    config: Config
    hub: Hub
    executor: ThreadPoolExecutor
    metrics: Metrics
    jobs: Jobs
    clock: Callable[[], datetime]
    owns_hub: bool = False
    scheduler: AsyncIOScheduler | None = None
    cluster: ClusterWorker | None = None  # hub run --engine procrastinate: in place of the scheduler
    # Per-process key for session cookies and CSRF tokens, and the session table itself: both
    # live in this process's memory, so a restart signs everyone out.
    session_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sessions: Sessions = field(init=False)
    throttle: Throttle = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = sessions_for(self.config, self.clock)
        self.throttle = throttle_for(self.config, self.clock)

    @property
    def admin_token(self) -> str | None:
        token = self.config.admin.get("token") if self.config.admin else None
        return str(token) if token else None

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop taking work, let the job in hand reach a page boundary (waiting at most
        ``grace`` seconds); True when it did."""
        self.jobs.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.cluster is not None:  # the job in hand ends at a page boundary and is handed over
            await self.cluster.stop(grace)
        drained = await self.jobs.drain(grace)
        if not drained:
            log.error("jobs still running after the stop grace period")
        return drained


DAEMON = web.AppKey("daemon", Daemon)


def daemon_of(request: web.Request) -> Daemon:
    return request.app[DAEMON]
