"""``hub run``: one process serving webhooks, the admin API, the console, health and metrics,
with the scheduler's jobs on the same event loop and blocking SDK calls in a bounded pool.

The HTTP surface lives in ``sync/web/``; this module runs it, stops it on SIGTERM and reloads its
config on SIGHUP (``sync/web/reload.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from typing import Any

import click
from aiohttp import web

from state.errors import StateError
from sync.cluster.worker import STALLED_SECONDS, ClusterWorker
from sync.config import Config, ConfigError, load_config
from sync.runtime import open_store
from sync.terminal import fail
from sync.web.app import create_app
from sync.web.context import DAEMON
from sync.web.guards import weak_token_problem
from sync.web.reload import Reloader

log = logging.getLogger("billhub.daemon")


# Of the shutdown budget, what is kept back from waiting on jobs for closing the server and
# leaving the process (at most 2 s; a short budget keeps 40 % of itself).
CLOSE_RESERVE_SECONDS = 2.0
EXIT_MARGIN_SECONDS = 0.3  # interpreter teardown after the last wait


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address ``host`` names, before anything else is opened: a
    busy port must be refused before a job is scheduled or a vendor called. Raises OSError."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one free port for every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _hard_exit(budget: float) -> None:
    """The budget's last word, from a timer thread: whatever still waits (a cleanup stuck behind
    a hung call), the process leaves; open transactions roll back."""
    log.error("shutdown budget exceeded while closing; exiting now", extra={"budget_seconds": budget})
    logging.shutdown()
    os._exit(1)


async def serve(config: Config, host: str, port: int, cluster: ClusterWorker | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (1 when work was left in flight).
    With ``cluster`` the jobs come from the Procrastinate queue, not the embedded scheduler."""
    sockets = listen(host, port)  # first: nothing has started yet if this fails
    budget = float(config.server.get("shutdown_seconds", 10.0))
    try:
        app = create_app(config, cluster=cluster)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    daemon = app[DAEMON]
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    # Sites before setup() would be refused by aiohttp; the sockets already hold the port, so
    # connections wait in the backlog while on_startup starts the jobs.
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    bound = sockets[0].getsockname()
    log.info("listening", extra={"url": f"http://{host}:{bound[1]}", "connections": sorted(daemon.hub.connectors),
                                 "admin_api": daemon.admin_token is not None})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(daemon, config.path)
    reloads: set[asyncio.Task[Any]] = set()  # held until done (the loop keeps only weak references)

    def on_hangup() -> None:
        task = loop.create_task(reloader.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)  # reload the config; never a reason to exit
    await stop.wait()
    deadline = loop.time() + budget
    watchdog = threading.Timer(max(0.0, budget - EXIT_MARGIN_SECONDS), _hard_exit, args=(budget,))
    watchdog.daemon = True
    watchdog.start()
    log.info("stopping: no new work; finishing the page in hand", extra={"budget_seconds": budget})
    drained = await daemon.stop(grace=budget - min(CLOSE_RESERVE_SECONDS, 0.4 * budget))
    if not drained:
        # A blocking call cannot be interrupted: stop waiting for it. Its transaction is never
        # committed; the outbox lease and the inbox bring that work back after a restart.
        log.error("shutdown budget reached: leaving work in flight uncommitted",
                  extra={"budget_seconds": budget, "jobs": daemon.jobs.in_flight(),
                         "resumes": "outbox writes when their lease expires, inbox events, reads from "
                                    "the last committed cursor"})
        return 1
    try:
        await asyncio.wait_for(runner.cleanup(), timeout=max(0.1, deadline - loop.time() - EXIT_MARGIN_SECONDS))
    except TimeoutError:
        log.error("shutdown budget reached while closing the server", extra={"budget_seconds": budget})
        return 1
    watchdog.cancel()
    log.info("stopped", extra={"clean": True})
    return 0


@click.command("run")
@click.option("--config", "config_path", envvar="HUB_CONFIG", default=None,
              help="Config file (default: the group's --config, $HUB_CONFIG, else hub.toml).")
@click.option("--host", default=None, help="Listen address (default: [server].host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Listen port (default: [server].port).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.option("--engine", type=click.Choice(["embedded", "procrastinate"]), envvar="HUB_ENGINE", default="embedded",
              show_default=True, help="Who runs the jobs: this process's own scheduler (one process), or a "
                                      "worker of the Procrastinate queue in PostgreSQL (any number of processes "
                                      "on any machines; see README, Running several workers).")
@click.option("--stalled-seconds", type=click.FloatRange(1, 3600), default=STALLED_SECONDS, show_default=True,
              envvar="HUB_STALLED_SECONDS",
              help="procrastinate: a worker silent this long is gone; its job runs on another.")
@click.pass_context
def run_command(ctx: click.Context, config_path: str | None, host: str | None, port: int | None,
                log_level: str, engine: str, stalled_seconds: float) -> None:
    """Run the daemon: webhooks, schedules, admin API, console, /metrics (SIGTERM stops it, SIGHUP
    reloads the config)."""
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
    cluster = None
    if engine == "procrastinate":
        if not config.state_url.startswith("postgresql"):
            fail("--engine procrastinate needs PostgreSQL: set [state] url to a postgresql+psycopg:// URL, "
                 "or run the embedded engine (one process)")
        # the jobs are the app's (bound at start): see create_app
        cluster = ClusterWorker(config.state_url, stalled_seconds=stalled_seconds,
                                keep_jobs=os.environ.get("HUB_CLUSTER_KEEP_JOBS") == "1")
    try:
        code = serve_forever(config, host, port, cluster=cluster)
    except (OSError, OverflowError) as exc:  # the address is taken, or [server].port is out of range
        fail(f"cannot listen on {host or config.server.get('host', '127.0.0.1')}:"
             f"{port if port is not None else config.server.get('port', 8080)}: {exc}")
    if code:
        # A vendor call outlived the shutdown budget: leave now (its transaction rolls back; the
        # outbox lease and the inbox bring the work back after restart) rather than wait for it.
        logging.shutdown()
        os._exit(code)


def serve_forever(config: Config, host: str | None = None, port: int | None = None,
                  cluster: ClusterWorker | None = None) -> int:
    """Blocking: serve ``config`` until SIGTERM/SIGINT (``hub demo --serve`` uses this)."""
    return asyncio.run(serve(config, host or str(config.server.get("host", "127.0.0.1")),
                             port if port is not None else int(config.server.get("port", 8080)), cluster))


if __name__ == "__main__":
    run_command()


__all__ = ["run_command", "serve", "serve_forever"]
