"""The console's Connections page (``/connections``): each connection's health and rate budget
in words (``sync/web/connection_health.py``: never "ok" beside a dead letter), its dead letters
and waiting writes, Connect / Reconnect through the daemon's OAuth flow (``sync/web/oauth.py``),
and a Run now for each of its scheduled reads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.oauth_connect import OAUTH_SYSTEMS
from state.console_reads import deferred_by_target, outbox_by_target
from sync.queries import gather_status
from sync.web.connection_health import budget_in_words, health_of
from sync.web.console import render
from sync.web.console_words import when
from sync.web.context import Daemon, daemon_of


def connections_data(daemon: Daemon) -> dict[str, Any]:
    status = gather_status(daemon.hub.store, daemon.config)
    with daemon.hub.store.transaction() as tx:
        depth, deferred = outbox_by_target(tx), deferred_by_target(tx)
    jobs: dict[str, list[str]] = {}
    for spec in daemon.jobs.specs():
        if spec.kind == "sync":
            jobs.setdefault(spec.id.split(":")[1], []).append(spec.id)
    rows = []
    for conn in status["connections"]:
        name, system = conn["name"], conn["system"]
        connector = daemon.hub.connectors.get(name)
        paused = daemon.jobs.paused_reason(name) if connector is not None else None
        health, problems = health_of(conn["status"], paused, depth.get(name, {}), deferred.get(name, 0))
        rows.append({"name": name, "system": system, "health": health, "problems": problems,
                     "state": conn["status"], "reason": conn["reason"] or "",
                     "paused_until": when(conn["paused_until"]) if conn["paused_until"] else "",
                     "dead": depth.get(name, {}).get("dead", 0), "pending": depth.get(name, {}).get("pending", 0),
                     "deferred": deferred.get(name, 0), "oauth": system in OAUTH_SYSTEMS,
                     "budget": budget_in_words(system, connector) if connector is not None else [],
                     "jobs": jobs.get(name, [])})
    return {"connections": rows}


async def connections_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    return render(request, "connections.html", **await daemon.jobs.blocking(connections_data, daemon))


def setup(app: web.Application) -> None:
    app.router.add_get("/connections", connections_page)


__all__ = ["connections_data", "setup"]
