"""The console's Connect / Reconnect: ``GET /oauth/start/{connection}`` (a logged-in operator)
sends the browser to the vendor's consent page, ``GET /oauth/callback/{connection}`` finishes
the flow as ``hub connect`` does (``sync/connect.py``: state checked, code exchanged, tokens
stored encrypted, the connection ok at once — its connector notices on its next refresh).

The callback carries no console session (the vendor's redirect is a cross-site navigation, and
the session cookie is SameSite=Strict), so it is authenticated by its ``state``: random, made
for one start by a logged-in operator, used once, forgotten after ``PENDING_SECONDS``. Register
``<public_url>/oauth/callback/<connection>`` as the app's redirect URI.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.oauth_connect import OAUTH_SYSTEMS, Authorization, ConnectError, authorization, exchange
from sync.connect import store_connection
from sync.web.auth import actor_of
from sync.web.context import daemon_of

PENDING_SECONDS = 600
MAX_PENDING = 50
PENDING: web.AppKey[dict[str, Pending]] = web.AppKey("oauth_pending", dict)


@dataclass(frozen=True)
class Pending:
    connection: str
    auth: Authorization
    started: datetime
    actor: str  # who started it (the callback carries no session): the audit log's connector


def callback_url(request: web.Request, connection: str) -> str:
    daemon = daemon_of(request)
    base = str(daemon.config.server.get("public_url") or "").rstrip("/") or f"{request.scheme}://{request.host}"
    return f"{base}/oauth/callback/{connection}"


def _connection(request: web.Request) -> Any:
    name = request.match_info["connection"]
    conn = daemon_of(request).config.connections.get(name)
    if conn is None or conn.system not in OAUTH_SYSTEMS:
        raise web.HTTPNotFound(text=f"no OAuth connection {name!r}")
    return conn


async def start(request: web.Request) -> web.StreamResponse:
    conn = _connection(request)
    daemon = daemon_of(request)
    pending = request.app[PENDING]
    now: datetime = daemon.clock()
    for state in [s for s, p in pending.items() if now - p.started > timedelta(seconds=PENDING_SECONDS)]:
        del pending[state]
    if len(pending) >= MAX_PENDING:
        raise web.HTTPTooManyRequests(text="too many connections being made at once: finish or wait")
    auth = authorization(conn.system, conn.settings, callback_url(request, conn.name))
    pending[auth.state] = Pending(conn.name, auth, now, actor_of(request))
    raise web.HTTPFound(auth.url)


def _page(title: str, text: str, status: int = 200) -> web.Response:
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f'<h1 id="oauth-result">{html.escape(title)}</h1><p>{html.escape(text)}</p>'
            '<p><a id="back" href="/">Back to the console</a></p></body></html>')
    return web.Response(text=body, status=status, content_type="text/html")


async def callback(request: web.Request) -> web.StreamResponse:
    conn = _connection(request)
    daemon = daemon_of(request)
    query = dict(request.query)
    found = request.app[PENDING].pop(query.get("state", ""), None)
    if found is None or found.connection != conn.name:
        return _page("Not connected", "This authorization was not started here or has expired: "
                                      "start again from the console.", 400)

    def finish() -> str:
        connected = exchange(conn.system, conn.settings, found.auth, query)
        store_connection(daemon.hub.store, conn, connected, daemon.clock(), actor=found.actor)
        return f"{connected.place_key} {connected.place}"
    try:
        place = await daemon.jobs.blocking(finish)
    except ConnectError as exc:
        return _page("Not connected", str(exc), 400)
    return _page(f"Connected {conn.name}", f"{conn.name} ({conn.system}, {place}) is connected; its work resumes.")


def setup(app: web.Application) -> None:
    app[PENDING] = {}
    app.router.add_get("/oauth/start/{connection}", start)
    app.router.add_get("/oauth/callback/{connection}", callback)


__all__ = ["callback_url", "setup"]
