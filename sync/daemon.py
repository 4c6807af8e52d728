"""``hub run``: one process serving webhooks, the admin API, the console, health and metrics,
with the scheduler's jobs on the same event loop and blocking SDK calls in a bounded pool.

Webhooks are verified, stored in the inbox once and answered at once (Xero wants 200 within
5 s with an empty body, Intuit 200 within 3 s); the inbox worker processes them afterwards.
Bad input of any kind (malformed, unsigned, oversized, stale replay) is a 4xx and stores nothing.

The lead registers the command: ``from sync.daemon import run_command; cli.add_command(run_command)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from connectors.base import Connector, InboundEvent, WebhookRejected
from state.errors import StateError
from sync.config import Config, ConfigError, load_config
from sync.metrics import Metrics
from sync.runtime import Hub, open_store
from sync.scheduler import Jobs, build_scheduler

log = logging.getLogger("billhub.daemon")
WEBHOOK_SYSTEMS = ("stripe", "quickbooks", "xero")
STOP_GRACE_SECONDS = 7.0  # + server shutdown stays well inside the 10 s SIGTERM budget
FAILED_STATES = ("needs_reauth", "failed")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
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
    # Per-process key for session cookies and CSRF tokens: a restart signs everyone out.
    session_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def admin_token(self) -> str | None:
        token = self.config.admin.get("token") if self.config.admin else None
        return str(token) if token else None

    async def stop(self) -> bool:
        """Stop taking work, let the job in hand reach a page boundary; True when it did."""
        self.jobs.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        drained = await self.jobs.drain(STOP_GRACE_SECONDS)
        if not drained:
            log.error("jobs still running after the stop grace period")
        return drained


DAEMON = web.AppKey("daemon", Daemon)


def daemon_of(request: web.Request) -> Daemon:
    return request.app[DAEMON]


# --------------------------------------------------------------------------- middlewares


def _harden(headers: Any) -> None:
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised answers (404s, redirects) get the headers too
        _harden(exc.headers)
        raise
    _harden(response.headers)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack traces to clients; a database outage is a 503, not a 500."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StateError as exc:
        log.error("state error", extra={"path": request.path, "error": str(exc)})
        return web.json_response({"error": "the database is unavailable"}, status=503)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return web.json_response({"error": "internal error"}, status=500)


# --------------------------------------------------------------------------- health and metrics


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    problems: list[str] = []
    if daemon.jobs.stopping.is_set():
        problems.append("stopping")
    if not await daemon.jobs.blocking(daemon.hub.store.ping):
        problems.append("database unreachable")
    else:
        def states() -> dict[str, dict[str, Any]]:
            with daemon.hub.store.transaction() as tx:
                return tx.connection_states()
        for name, state in sorted((await daemon.jobs.blocking(states)).items()):
            if name in daemon.hub.connectors and state["status"] in FAILED_STATES:
                problems.append(f"{name}: {state['status']}")
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems}, status=status)


async def metrics(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    body = await daemon.jobs.blocking(daemon.metrics.render)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


# --------------------------------------------------------------------------- webhooks


def _verify(connector: Connector, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    if connector.system == "stripe":
        events: list[InboundEvent] = connector.verify_webhook(headers, body)  # type: ignore[attr-defined]
    else:
        events = connector.parse_webhook(body, headers)  # type: ignore[attr-defined]
    return events


def _store_events(daemon: Daemon, connection: str, events: Sequence[InboundEvent]) -> int:
    """Store each event once, in one transaction; returns how many were new."""
    with daemon.hub.store.transaction() as tx:
        return sum(tx.add_inbox(connection, e.event_id, dict(e.payload), e.event_type) for e in events)


def _reject(system: str, status: int, reason: str) -> web.Response:
    if system == "xero":
        return web.Response(status=status)  # Xero: status only, no body
    return web.json_response({"error": reason}, status=status)


async def webhook(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    system = request.match_info["system"]
    wanted = request.match_info.get("connection")
    if system not in WEBHOOK_SYSTEMS:
        return web.json_response({"error": f"no webhooks for {system!r}"}, status=404)
    candidates = [c for c in daemon.hub.connectors.values()
                  if c.system == system and (wanted is None or c.name == wanted)]
    if not candidates:
        return _reject(system, 404, f"no {system} connection {wanted or ''} is configured".replace("  ", " "))
    if len(candidates) > 1:
        names = ", ".join(sorted(c.name for c in candidates))
        return _reject(system, 404, f"several {system} connections ({names}): deliver to "
                                    f"/webhooks/{system}/CONNECTION")
    connector = candidates[0]
    if daemon.jobs.stopping.is_set():  # the vendor retries later; the next process takes it
        return web.Response(status=503, headers={"Retry-After": "5"})
    limit = int(daemon.config.server.get("max_body_bytes", 1_000_000))
    if request.content_length is not None and request.content_length > limit:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        return _reject(system, 413, f"body larger than {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        return _reject(system, 413, f"body larger than {limit} bytes")
    headers = {k: v for k, v in request.headers.items()}
    try:
        events = _verify(connector, headers, body)
    except WebhookRejected as exc:
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        log.info("webhook rejected", extra={"connection": connector.name, "reason": exc.reason})
        return _reject(system, exc.status if 400 <= exc.status < 500 else 400, exc.reason)
    except Exception as exc:  # a parser bug must still not answer 5xx to bad input
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        log.warning("webhook not understood", extra={"connection": connector.name, "error": type(exc).__name__})
        return _reject(system, 400, "the delivery could not be read")
    if any(not e.event_id or len(e.event_id) > 255 or "\x00" in e.event_id for e in events):
        # The inbox key is VARCHAR(255) and PostgreSQL text holds no NUL: refuse, do not 5xx.
        daemon.metrics.webhooks.labels(connector.name, "rejected").inc()
        return _reject(system, 400, "an event id is empty, longer than 255 characters or holds NUL")
    stored = await daemon.jobs.blocking(_store_events, daemon, connector.name, events) if events else 0
    daemon.metrics.webhooks.labels(connector.name, "stored" if stored else "duplicate" if events else "empty").inc(
        max(1, stored))
    if system == "xero":
        return web.Response(status=200)
    return web.json_response({"received": len(events), "stored": stored, "duplicate": len(events) - stored})


# --------------------------------------------------------------------------- the app


def create_app(config: Config, hub: Hub | None = None, *, start_scheduler: bool = True,
               clock: Callable[[], datetime] | None = None) -> web.Application:
    """The daemon's aiohttp app. With ``hub`` given (tests), the caller keeps ownership of it."""
    from sync import api, console

    owns_hub = hub is None
    hub = hub or Hub.from_config(config)
    clock = clock or hub.store.clock
    executor = ThreadPoolExecutor(max_workers=int(config.server.get("workers", 4)), thread_name_prefix="hub-io")
    paused: dict[str, str] = {}
    metrics_ = Metrics(hub.store, hub.connectors, clock, lambda: paused)
    jobs = Jobs(hub, executor, metrics_, clock=clock)
    jobs.paused = paused
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
    console.setup(app)

    async def on_startup(app: web.Application) -> None:
        if start_scheduler:
            daemon.scheduler = build_scheduler(jobs)
            daemon.scheduler.start()

    async def on_shutdown(app: web.Application) -> None:
        await daemon.stop()

    async def on_cleanup(app: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)
        if daemon.owns_hub:
            hub.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve(config: Config, host: str, port: int) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    app = create_app(config)
    daemon = app[DAEMON]
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening", extra={"url": f"http://{host}:{port}", "connections": sorted(daemon.hub.connectors),
                                 "admin_api": daemon.admin_token is not None})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new work; finishing the page in hand")
    drained = await daemon.stop()
    await runner.cleanup()
    log.info("stopped", extra={"clean": drained})
    return 0 if drained else 1


@click.command("run")
@click.option("--config", "config_path", envvar="HUB_CONFIG", default=None,
              help="Config file (default: the group's --config, $HUB_CONFIG, else hub.toml).")
@click.option("--host", default=None, help="Listen address (default: [server].host).")
@click.option("--port", type=int, default=None, help="Listen port (default: [server].port).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.pass_context
def run_command(ctx: click.Context, config_path: str | None, host: str | None, port: int | None,
                log_level: str) -> None:
    """Run the daemon: webhooks, schedules, admin API, console, /metrics (SIGTERM stops it)."""
    from sync.logs import configure_logging

    path = config_path or getattr(ctx.obj, "config_path", None)
    try:
        config = load_config(path)
        store = open_store(config)
        store.init()
        store.dispose()
    except ConfigError as exc:
        click.echo(f"error: config: {exc}", err=True)
        sys.exit(2)
    except StateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(config.secrets, level=getattr(logging, log_level.upper()))
    code = serve_forever(config, host, port)
    if code:
        # A vendor call outlived the grace period: leave now (its transaction rolls back; the
        # outbox lease and the inbox bring the work back after restart) rather than overrun 10 s.
        logging.shutdown()
        os._exit(code)


def serve_forever(config: Config, host: str | None = None, port: int | None = None) -> int:
    """Blocking: serve ``config`` until SIGTERM/SIGINT (``hub demo --serve`` uses this)."""
    return asyncio.run(serve(config, host or str(config.server.get("host", "127.0.0.1")),
                             port if port is not None else int(config.server.get("port", 8080))))


if __name__ == "__main__":
    # Run the importable module's command, not this ``__main__`` copy: the API and console look
    # the daemon up under ``sync.daemon.DAEMON``, which a second copy of this module would not share.
    from sync.daemon import run_command as command

    command()


__all__ = ["DAEMON", "Daemon", "create_app", "run_command", "serve", "serve_forever"]
