"""``hub run``: one process serving webhooks, the admin API, the console, health and metrics,
with the scheduler's jobs on the same event loop and blocking SDK calls in a bounded pool.

The HTTP surface lives in ``sync/web/``; this module runs it and stops it on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click
from aiohttp import web

from state.errors import StateError
from sync.config import Config, ConfigError, load_config
from sync.runtime import open_store
from sync.terminal import fail
from sync.web.app import create_app
from sync.web.context import DAEMON
from sync.web.guards import weak_token_problem

log = logging.getLogger("billhub.daemon")


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
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Listen port (default: [server].port).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.pass_context
def run_command(ctx: click.Context, config_path: str | None, host: str | None, port: int | None,
                log_level: str) -> None:
    """Run the daemon: webhooks, schedules, admin API, console, /metrics (SIGTERM stops it)."""
    from sync.logs import configure_logging

    path = config_path or getattr(ctx.obj, "config_path", None)
    try:
        config = load_config(path)
        weak = weak_token_problem(str(config.admin["token"]) if config.admin.get("token") else None)
        if weak:  # before anything is opened: a guessable token must never be served
            fail(weak)
        store = open_store(config)
        store.init()
        with store.transaction() as tx:  # runs a killed process left "running" (see state/runs.py)
            tx.abort_abandoned_runs()
        store.dispose()
    except ConfigError as exc:
        fail(f"config: {exc}")
    except StateError as exc:
        fail(str(exc))
    configure_logging(config.secrets, level=getattr(logging, log_level.upper()))
    try:
        code = serve_forever(config, host, port)
    except (OSError, OverflowError) as exc:  # the address is taken, or [server].port is out of range
        fail(f"cannot listen on {host or config.server.get('host', '127.0.0.1')}:"
             f"{port if port is not None else config.server.get('port', 8080)}: {exc}")
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
    run_command()


__all__ = ["run_command", "serve", "serve_forever"]
