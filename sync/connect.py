"""``hub connect`` / ``hub disconnect``: a person grants billhub access to QuickBooks, Xero or
Salesforce through the vendor's consent page, and the tokens land encrypted in the state store.

The tokens are stored as the same credentials ``connectors.oauth.TokenRotation`` reads (so the
next refresh rotates them), with the realm / tenant / instance consented to beside them
(``connectors.registry`` lets that stored place win over the config's), and a connection that
needed re-authorisation is marked ok ("connected") in the same transaction: its work resumes at
once (a running daemon notices on its next refresh). Nothing here prints or logs a token.

The local redirect listener (``listen``) is an aiohttp server on 127.0.0.1 that takes exactly
one callback at ``/callback``; the daemon's ``/oauth/callback/<connection>`` finishes the same way
(``sync/web/oauth.py``).
"""

from __future__ import annotations

import asyncio
import logging
import webbrowser
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.oauth import fingerprint
from connectors.oauth_connect import (
    OAUTH_SYSTEMS,
    Authorization,
    Connected,
    ConnectError,
    authorization,
    exchange,
    revoke,
)
from connectors.settings import ConnectionConfig
from state.store import StateStore
from sync.audit import record_action
from sync.config import Config

log = logging.getLogger("billhub.connect")
DEFAULT_PORT = 8765


def pick_connection(config: Config, what: str, connection: str | None = None) -> ConnectionConfig:
    """The OAuth connection ``what`` names: a connection, or a system with one connection of it
    (several: ``--connection`` chooses)."""
    names = config.connections
    if connection:
        if connection not in names:
            raise LookupError(f"no connection {connection!r}; configured: {', '.join(sorted(names)) or 'none'}")
        chosen = names[connection]
        if what not in (connection, chosen.system):
            raise LookupError(f"connection {connection!r} is a {chosen.system} connection, not {what}")
    elif what in names:
        chosen = names[what]
    else:
        of_system = sorted(n for n, c in names.items() if c.system == what)
        if len(of_system) != 1:
            if what not in OAUTH_SYSTEMS:
                raise LookupError(f"{what!r} is neither a connection nor one of {', '.join(OAUTH_SYSTEMS)}")
            raise LookupError(f"no {what} connection is configured" if not of_system else
                              f"{len(of_system)} {what} connections ({', '.join(of_system)}): "
                              "choose one with --connection")
        chosen = names[of_system[0]]
    if chosen.system not in OAUTH_SYSTEMS:
        raise LookupError(f"{chosen.name} is a {chosen.system} connection: it uses an API key, not OAuth; "
                          f"only {', '.join(OAUTH_SYSTEMS)} connect")
    return chosen


def store_connection(store: StateStore, conn: ConnectionConfig, connected: Connected,
                     now: datetime, *, actor: str) -> None:
    """The tokens (encrypted) and the place, the connection ok, and who connected it (the audit
    log: the place, never a token) — one transaction."""
    creds: dict[str, Any] = {
        **connected.extra, connected.place_key: connected.place, "access_token": connected.access_token,
        "refresh_token": connected.refresh_token,
        "expires_at": (now + timedelta(seconds=connected.expires_in)).isoformat(),
        # descends from the configured token as far as TokenRotation is concerned: a refresh token
        # still in the config (maybe the refused one) must not win over the consent just given
        "seed": fingerprint(conn["refresh_token"]), "connected_at": now.isoformat()}
    with store.transaction() as tx:
        tx.load_credentials(conn.name, for_update=True)  # the credentials lock: no refresh mid-write
        tx.save_credentials(conn.name, creds)
        tx.set_connection_state(conn.name, "ok", reason="connected",
                                details={"system": conn.system, connected.place_key: connected.place,
                                         "connected_at": now.isoformat()})
        record_action(tx, actor, "connection.connect", "connection", conn.name,
                      after={"system": conn.system, connected.place_key: connected.place})
    log.info("connection %s connected (%s %s)", conn.name, connected.place_key, connected.place)


def disconnect(store: StateStore, conn: ConnectionConfig, *, actor: str) -> tuple[bool, str | None]:
    """Revoke the stored grant at the vendor and forget the tokens, recording who did (the audit
    log). (had tokens, revoke problem)."""
    with store.transaction() as tx:
        creds = tx.load_credentials(conn.name) or {}
    problem = None
    if creds.get("refresh_token"):
        try:
            revoke(conn.system, conn.settings, str(creds["refresh_token"]))
        except (ConnectError, OSError) as exc:  # still forget them: the person asked to disconnect
            problem = str(exc)
    with store.transaction() as tx:
        had = tx.delete_credentials(conn.name)
        # refused_seed: a refresh token still in the config must not quietly reconnect it
        tx.set_connection_state(conn.name, "needs_reauth", reason=f"disconnected: run hub connect {conn.name}",
                                details={"system": conn.system, "alert": False,
                                         "refused_seed": fingerprint(conn["refresh_token"])})
        record_action(tx, actor, "connection.disconnect", "connection", conn.name,
                      after={"system": conn.system, "had_tokens": had, "revoke_problem": problem})
    return had, problem


async def _wait_for_callback(port: int, on_ready: Callable[[str], None], timeout: float) -> dict[str, str]:
    """Serve 127.0.0.1:``port``/callback until one callback arrives; its query parameters."""
    arrived: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        if not arrived.done():
            arrived.set_result(dict(request.query))
        ok = "code" in request.query and not request.query.get("error")
        text = ("billhub received the authorization: return to the terminal." if ok
                else "billhub: the authorization was not granted; see the terminal.")
        return web.Response(text=f"<!doctype html><title>billhub</title><p>{text}</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/callback", callback)
    runner = web.AppRunner(app, access_log=None)  # the query holds the code: never logged
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConnectError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another --port "
                           "(and register its redirect URI with the app)") from None
    try:
        bound = int(runner.addresses[0][1])  # the port chosen when --port 0
        on_ready(f"http://127.0.0.1:{bound}/callback")
        return await asyncio.wait_for(arrived, timeout)
    except TimeoutError:
        raise ConnectError(f"no callback within {int(timeout)} s: start again") from None
    finally:
        await runner.cleanup()


def connect(conn: ConnectionConfig, store: StateStore, *, port: int = DEFAULT_PORT, browser: bool = True,
            tenant: str | None = None, timeout: float = 300.0, now: Callable[[], datetime],
            say: Callable[[str], None] = print, actor: str) -> Connected:
    """The whole flow for one connection through the local listener; raises ConnectError."""
    pending: dict[str, Authorization] = {}

    def ready(redirect_uri: str) -> None:
        auth = authorization(conn.system, conn.settings, redirect_uri)
        pending["auth"] = auth
        say(f"Open this URL to connect {conn.name} ({conn.system}); it redirects to {redirect_uri}:")
        say(auth.url)
        if browser:
            webbrowser.open(auth.url)

    callback = asyncio.run(_wait_for_callback(port, ready, timeout))
    connected = exchange(conn.system, conn.settings, pending["auth"], callback, tenant=tenant)
    store_connection(store, conn, connected, now(), actor=actor)
    return connected


__all__ = ["DEFAULT_PORT", "connect", "disconnect", "pick_connection", "store_connection"]
