"""``/healthz`` (the process answers), ``/readyz`` (it can work) and Prometheus ``/metrics``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sync.web.context import daemon_of

FAILED_STATES = ("needs_reauth", "failed")


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
