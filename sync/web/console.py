"""The operator console at ``/``: server-rendered Jinja2 pages, a little JavaScript from
``/static/`` (the CSP forbids inline script), login by the admin token.

Sessions: the cookie holds a random session id and its HMAC under a per-process key — never the
token. ``HttpOnly; SameSite=Strict`` (``Secure`` when the public URL is https). The id must also be
live in the daemon's session table (``sync/web/guards.py``): logout removes it, and it expires
when idle and at an absolute age; the table is in memory, so a restart signs everyone out. Every
form carries a CSRF token derived from the session id (the login form: from a pre-login nonce
cookie). Wrong tokens count against the client's address with the API's (429 past the limit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from state.console_reads import deferred_by_target, outbox_by_target
from state.errors import NotFound
from sync.chart_data import ChartRequestError
from sync.finding_actions import acknowledge
from sync.finding_view import neutral_detail, places_of
from sync.findings import KINDS, finding_json
from sync.outbox_actions import REASON_NEEDED, drop_write, retry_write
from sync.queries import gather_status
from sync.repair import RepairError
from sync.review import approve, approved, pending_counts
from sync.scheduler import DaemonStopping
from sync.web.api import client_address, outbox_item_id, outbox_json, resync_blocking, token_matches
from sync.web.auth import (
    PRINCIPAL,
    actor_of,
    people_known,
    principal_for_login,
    principal_for_session,
    principal_of,
)
from sync.web.connection_health import budget_in_words, health_of
from sync.web.console_charts import charts_context, overview_svgs
from sync.web.console_data import money_figures
from sync.web.console_words import lag, when
from sync.web.context import daemon_of
from sync.web.flash import flash, take_flash
from sync.web.roles import refusal

SESSION = "hub_session"
PRELOGIN = "hub_login"
_ENV = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates" / "console")),
                   autoescape=select_autoescape(["html"]))
STATIC = Path(__file__).parent / "static"
_ENV.filters["neutral"] = neutral_detail  # a text without the command line's instructions in it
_ENV.filters["lag"] = lag  # seconds since a good sync, in words ("3 h 5 min")
_ENV.filters["when"] = when  # a moment in words ("12 Mar 2026 10:04"): the one way the pages say times


def _daemon(request: web.Request) -> Any:
    return daemon_of(request)


def _sign(key: bytes, purpose: str, value: str) -> str:
    # surrogatepass: a cookie holding invalid UTF-8 must fail the check, not raise.
    return hmac.new(key, f"{purpose}:{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def session_id(request: web.Request) -> str | None:
    raw = request.cookies.get(SESSION, "")
    sid, _, sig = raw.partition(".")
    if not sid or not sig:
        return None
    daemon = _daemon(request)
    if not token_matches(_sign(daemon.session_key, "session", sid), sig):
        return None
    return sid if daemon.sessions.touch(sid) else None


def csrf_token(request: web.Request, sid: str) -> str:
    return _sign(_daemon(request).session_key, "csrf", sid)


def _cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    secure = str(_daemon(request).config.server.get("public_url") or "").startswith("https://")
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=secure, path="/")


def render(request: web.Request, template: str, http_status: int = 200, **context: Any) -> web.Response:
    sid = session_id(request)
    html = _ENV.get_template(template).render(csrf=csrf_token(request, sid) if sid else "", logged_in=bool(sid),
                                              kinds=KINDS, flash=take_flash(request, sid),
                                              user=principal_of(request), **context)
    return web.Response(text=html, status=http_status, content_type="text/html")


async def _check_form(request: web.Request) -> tuple[str, Any]:
    """The posted form of a logged-in user with a valid CSRF token (else 403)."""
    sid = session_id(request)
    if sid is None:
        raise web.HTTPSeeOther("/login")
    form = await request.post()
    if not token_matches(csrf_token(request, sid), str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="invalid or missing CSRF token: reload the page and try again")
    return sid, form


@web.middleware
async def console_guard(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Console off without a token or a user; pages need a session, whose person (looked up on
    every request: a disabled user is signed out) must have the route's role (``sync.web.roles``)."""
    path = request.path
    # /oauth/callback/: the vendor's redirect carries no (SameSite=Strict) session; its one-time
    # state, made by a logged-in operator's /oauth/start, authenticates it (sync/web/oauth.py)
    if path.startswith(("/api/", "/webhooks/", "/static/", "/oauth/callback/")) \
            or path in ("/healthz", "/readyz", "/metrics", "/favicon.ico"):
        return await handler(request)
    daemon = _daemon(request)
    sid = session_id(request) if path not in ("/login", "/logout") else None
    name = daemon.sessions.user(sid) if sid else None
    principal = await daemon.jobs.blocking(principal_for_session, daemon, name) if name else None
    if principal is None:
        # only when no one is signed in: is anyone able to sign in at all? (a lookup of its own)
        if daemon.admin_token is None and not await daemon.jobs.blocking(people_known, daemon):
            return render(request, "off.html", http_status=403)
        if path in ("/login", "/logout"):
            return await handler(request)
        if sid:
            daemon.sessions.close(sid)
        raise web.HTTPSeeOther("/login")
    request[PRINCIPAL] = principal
    resource = request.match_info.route.resource
    refused = refusal(principal, request.method, resource.canonical if resource is not None else path)
    if refused:
        raise web.HTTPForbidden(text=refused)
    return await handler(request)


# --------------------------------------------------------------------------- login


async def login_form(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # Reuse the browser's nonce: a second tab (or a favicon fetch redirected here) must not
    # invalidate the form already on screen.
    nonce = request.cookies.get(PRELOGIN) or secrets.token_urlsafe(24)
    response = render(request, "login.html", http_status=status, error=error,
                      login_csrf=_sign(_daemon(request).session_key, "login", nonce))
    _cookie(request, response, PRELOGIN, nonce)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    daemon = _daemon(request)
    form = await request.post()
    nonce = request.cookies.get(PRELOGIN, "")
    if not nonce or not token_matches(_sign(daemon.session_key, "login", nonce), str(form.get("csrf", ""))):
        return await login_form(request, "The form expired: try again.", 403)
    client = client_address(request)
    wait = daemon.throttle.retry_after(client)
    if wait is not None:
        response = await login_form(request, f"Too many wrong tokens: try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    # A user name and their password or token; no name: the [admin] token (the bootstrap admin).
    name = str(form.get("user", "")).strip()
    principal = await daemon.jobs.blocking(principal_for_login, daemon, name, str(form.get("token", "")))
    if principal is None:
        daemon.throttle.fail(client)
        return await login_form(request, "Wrong user name or password." if name else "Wrong token.", 401)
    sid = daemon.sessions.open(principal.name)
    response = web.HTTPSeeOther("/")
    _cookie(request, response, SESSION, f"{sid}.{_sign(daemon.session_key, 'session', sid)}")
    response.del_cookie(PRELOGIN, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    sid, _ = await _check_form(request)
    _daemon(request).sessions.close(sid)  # the old cookie, replayed, no longer signs anyone in
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION, path="/")
    raise response


# --------------------------------------------------------------------------- pages


def overview_data(daemon: Any) -> dict[str, Any]:
    status = gather_status(daemon.hub.store, daemon.config)
    now: datetime = daemon.clock()
    last_success: dict[str, datetime] = {}
    for c in status["cursors"]:
        if c["last_success"] is not None:
            prev = last_success.get(c["connection"])
            last_success[c["connection"]] = max(prev, c["last_success"]) if prev else c["last_success"]
    with daemon.hub.store.transaction() as tx:
        depth, deferred = outbox_by_target(tx), deferred_by_target(tx)
    for conn in status["connections"]:
        at = last_success.get(conn["name"])
        conn["last_sync"] = at
        conn["lag_seconds"] = int((now - at).total_seconds()) if at else None
        conn["skipped"] = daemon.jobs.paused.get(conn["name"])
        # health counts dead letters and pauses too: never "ok" beside a dead letter
        conn["health"], conn["problems"] = health_of(conn["status"], conn["skipped"], depth.get(conn["name"], {}),
                                                     deferred.get(conn["name"], 0))
        connector = daemon.hub.connectors.get(conn["name"])
        # the vendor's budget figures too (its health probe, which may fail, is read there once)
        conn["budget_words"] = budget_in_words(conn["system"], connector) if connector is not None else []
    with daemon.hub.store.transaction() as tx:
        money = money_figures(tx, now)
        by_kind = tx.unresolved_findings_by_kind()  # open and acknowledged apart
        charts = overview_svgs(tx, now)
        in_review = sorted(daemon.hub.engine.review_connections)
        done = approved(tx)
        counts = pending_counts(tx, in_review)
    review = [{"connection": name, "approved": name in done, "pending": counts.get(name, {})} for name in in_review]
    return {"status": status, "money": money, "now": now, "review": review, "charts": charts,
            "findings_by_kind": by_kind}


async def charts(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    try:
        data = await daemon.jobs.blocking(charts_context, daemon, request.query)
    except ChartRequestError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return render(request, "charts.html", **data)


async def overview(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    return render(request, "overview.html", **await daemon.jobs.blocking(overview_data, daemon))


def _finding_data(daemon: Any, finding_id: str) -> dict[str, Any]:
    """The finding with its ``about`` (who, what, each system's value, candidates, links)."""
    places = places_of(daemon.hub.config.connections, daemon.hub.store)
    with daemon.hub.store.transaction() as tx:
        finding = finding_json(tx, finding_id, places)
        history = tx.history_of(finding["canonical_id"]) if finding.get("canonical_id") else []
    return {"finding": finding, "history": history}


async def finding(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    try:
        data = await daemon.jobs.blocking(_finding_data, daemon, request.match_info["id"])
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return render(request, "finding.html", **data)


async def finding_action(request: web.Request) -> web.StreamResponse:
    sid, form = await _check_form(request)
    daemon = _daemon(request)
    finding_id, action = request.match_info["id"], request.match_info["action"]
    try:
        found = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    finding_id = found["finding"]["id"]  # the full id (a prefix may have been given): safe in Location
    if action == "ack":
        actor, comment = actor_of(request), str(form.get("comment") or "")

        def ack() -> None:
            with daemon.hub.store.transaction() as tx:
                acknowledge(tx, finding_id, actor=actor, comment=comment)
        await daemon.jobs.blocking(ack)
        flash(request, sid, "Finding acknowledged" + (f": {comment}" if comment.strip() else ""))
        raise web.HTTPSeeOther(f"/findings/{finding_id}")
    body = {"finding": finding_id, "keep": str(form.get("keep") or "") or None, "dry_run": action == "preview",
            "reason": str(form.get("reason") or "").strip() or None}
    try:
        plan = await daemon.jobs.exclusive(resync_blocking, daemon.hub, {k: v for k, v in body.items() if v is not None},
                                           actor=actor_of(request))
    except (RepairError, DaemonStopping) as exc:
        data = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
        return render(request, "finding.html", http_status=409, error=str(exc), **data)
    if action == "preview":
        data = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
        return render(request, "finding.html", preview=plan, keep=body["keep"], **data)
    flash(request, sid, "Resync done: " + ("; ".join(plan.get("actions") or []) or "nothing to write"))
    raise web.HTTPSeeOther(f"/findings/{finding_id}")


async def outbox(request: web.Request) -> web.Response:
    daemon = _daemon(request)

    def read() -> dict[str, Any]:
        with daemon.hub.store.transaction() as tx:
            return {"depth": tx.outbox_depth(), "dead": [outbox_json(i) for i in tx.list_outbox("dead", 1000)],
                    "pending": [outbox_json(i) for i in tx.list_outbox("pending", 200)]}
    return render(request, "outbox.html", **await daemon.jobs.blocking(read))


async def outbox_action(request: web.Request) -> web.StreamResponse:
    _sid, form = await _check_form(request)
    daemon = _daemon(request)
    action = request.match_info["action"]
    try:
        item_id = outbox_item_id(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    reason = str(form.get("reason") or "").strip()
    actor = actor_of(request)

    def write() -> None:
        with daemon.hub.store.transaction() as tx:
            if action == "retry":
                retry_write(tx, item_id, actor=actor, reason=reason or None)
            else:
                # a write given up on says why: drop_write checks it, after the item exists
                drop_write(tx, item_id, actor=actor, reason=reason,
                           reason_needed=REASON_NEEDED.replace(" (--reason TEXT)", ""))
    try:
        await daemon.jobs.blocking(write)
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    flash(request, _sid, f"Write {item_id} queued to be tried again" if action == "retry" else
          f"Write {item_id} dropped: {reason} (the diff keeps the gap in sight)")
    raise web.HTTPSeeOther("/outbox")


async def review_approve(request: web.Request) -> web.StreamResponse:
    """The console's "Approve" of a connection whose writes first_contact = "review" holds (the
    same approval as ``hub review approve``): its held writes go with the next pass."""
    sid, _ = await _check_form(request)
    daemon = _daemon(request)
    name = request.match_info["connection"]
    if name not in daemon.hub.engine.review_connections:
        raise web.HTTPNotFound(text=f'{name}: not a connection with first_contact = "review"')
    await daemon.jobs.blocking(lambda: approve(daemon.hub.store, [name], actor=actor_of(request)))
    flash(request, sid, f"Approved {name}: its held writes go with the next pass")
    raise web.HTTPSeeOther("/")


def setup(app: web.Application) -> None:
    app.middlewares.append(console_guard)
    r = app.router
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/", overview)
    r.add_get("/findings/{id}", finding)
    r.add_post("/findings/{id}/{action:ack|preview|resync}", finding_action)
    r.add_get("/outbox", outbox)
    r.add_get("/charts", charts)
    r.add_post("/outbox/{id}/{action:retry|drop}", outbox_action)
    r.add_post("/review/{connection}/approve", review_approve)
    r.add_static("/static/", STATIC)


__all__ = ["csrf_token", "session_id", "setup"]
