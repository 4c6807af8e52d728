"""The daemon's aiohttp app: routes, middlewares, and the jobs it starts and stops."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from aiohttp import web

from sync.cluster.worker import ClusterWorker
from sync.config import Config
from sync.metrics import Metrics
from sync.runtime import Hub
from sync.scheduler import Jobs, build_scheduler
from sync.web import api, api_audit, console, console_audit, console_daily, console_users, oauth
from sync.web.context import DAEMON, Daemon
from sync.web.health import healthz, metrics, readyz
from sync.web.middleware import errors, security_headers
from sync.web.webhooks import webhook


def build_work(hub: Hub, executor: ThreadPoolExecutor, clock: Callable[[], datetime]) -> tuple[Metrics, Jobs]:
    """The daemon's work over ``hub``: its jobs and the metrics they feed (built at start and
    again on each config reload)."""
    paused: dict[str, str] = {}
    metrics_ = Metrics(hub.store, hub.connectors, clock, lambda: paused)
    jobs = Jobs(hub, executor, metrics_, clock=clock)
    jobs.paused = paused
    return metrics_, jobs


def create_app(config: Config, hub: Hub | None = None, *, start_scheduler: bool = True,
               clock: Callable[[], datetime] | None = None, cluster: ClusterWorker | None = None) -> web.Application:
    """The daemon's aiohttp app. With ``hub`` given (tests), the caller keeps ownership of it.
    With ``cluster``, its Procrastinate worker runs the jobs in place of the embedded scheduler."""
    owns_hub = hub is None
    hub = hub or Hub.from_config(config)
    clock = clock or hub.store.clock
    executor = ThreadPoolExecutor(max_workers=int(config.server.get("workers", 4)), thread_name_prefix="hub-io")
    metrics_, jobs = build_work(hub, executor, clock)
    daemon = Daemon(config, hub, executor, metrics_, jobs, clock, owns_hub=owns_hub)
    app = web.Application(client_max_size=int(config.server.get("max_body_bytes", 1_000_000)),
                          middlewares=[security_headers, errors])
    app[DAEMON] = daemon
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/webhooks/{system}", webhook)
    app.router.add_post("/webhooks/{system}/{connection}", webhook)
    api.setup(app)
    api_audit.setup(app)  # GET /api/audit (issue 21, item 3)
    console.setup(app)
    console_daily.setup(app)  # the daily pages (runs, connections, search, records, resync)
    console_audit.setup(app)  # /audit: who did what (issue 21, item 3)
    console_users.setup(app)  # /users: people and their roles (admins)
    oauth.setup(app)

    async def on_startup(app: web.Application) -> None:
        if cluster is not None:
            cluster.jobs_of = lambda: daemon.jobs  # a config reload's new Jobs take the next job
            daemon.cluster = cluster
            await cluster.start()
        elif start_scheduler:
            daemon.scheduler = build_scheduler(jobs)
            daemon.scheduler.start()

    async def on_shutdown(app: web.Application) -> None:
        await daemon.stop()

    async def on_cleanup(app: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)
        if daemon.owns_hub:
            daemon.hub.close()  # the hub in use now: a config reload may have replaced the first

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
