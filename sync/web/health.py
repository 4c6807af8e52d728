"""``/healthz`` (the process answers; each connection's health in detail), ``/readyz`` (this
process can take webhooks and work) and Prometheus ``/metrics``.

Readiness is the process's own: not stopping, its database reachable. One vendor needing
re-authorisation is not a reason for an orchestrator to pull the pod — that would stop every
other connection's webhooks too — so it is reported (``/healthz``, ``degraded`` in ``/readyz``,
the metrics, alerts), never a 503."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sync.web.context import daemon_of

FAILED_STATES = ("needs_reauth", "failed")


async def _connection_health(daemon: Any) -> dict[str, str]:
    """Each configured connection's stored status ("ok" without a stored state)."""
    def states() -> dict[str, dict[str, Any]]:
        with daemon.hub.store.transaction() as tx:
            found: dict[str, dict[str, Any]] = tx.connection_states()
        return found
    stored = await daemon.jobs.blocking(states)
    return {name: str((stored.get(name) or {}).get("status") or "ok") for name in sorted(daemon.hub.connectors)}


async def healthz(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    try:
        connections = await _connection_health(daemon)
    except Exception:  # the process answers even when its database does not (readyz says so)
        connections = {}
    return web.json_response({"status": "ok", "connections": connections})


async def readyz(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    problems: list[str] = []
    degraded: list[str] = []
    if daemon.jobs.stopping.is_set():
        problems.append("stopping")
    if not await daemon.jobs.blocking(daemon.hub.store.ping):
        problems.append("database unreachable")
    else:
        degraded = [f"{name}: {status}" for name, status in (await _connection_health(daemon)).items()
                    if status in FAILED_STATES]
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems, "degraded": degraded}, status=status)


async def metrics(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    body = await daemon.jobs.blocking(daemon.metrics.render)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
