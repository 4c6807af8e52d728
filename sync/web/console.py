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

from state.errors import NotFound
from sync.findings import KINDS, findings_report
from sync.queries import gather_status
from sync.repair import RepairError
from sync.review import approve, approved, pending_counts
from sync.scheduler import DaemonStopping
from sync.web.api import client_address, outbox_item_id, outbox_json, resync_blocking, token_matches
from sync.web.console_data import money_figures
from sync.web.context import daemon_of

SESSION = "hub_session"
PRELOGIN = "hub_login"
_ENV = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates" / "console")),
                   autoescape=select_autoescape(["html"]))
STATIC = Path(__file__).parent / "static"


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
                                              kinds=KINDS, **context)
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
    """Console off without a token; pages need a session."""
    path = request.path
    # /oauth/callback/: the vendor's redirect carries no (SameSite=Strict) session; its one-time
    # state, made by a logged-in operator's /oauth/start, authenticates it (sync/web/oauth.py)
    if path.startswith(("/api/", "/webhooks/", "/static/", "/oauth/callback/")) \
            or path in ("/healthz", "/readyz", "/metrics", "/favicon.ico"):
        return await handler(request)
    if _daemon(request).admin_token is None:
        return render(request, "off.html", http_status=403)
    if path not in ("/login", "/logout") and session_id(request) is None:
        raise web.HTTPSeeOther("/login")
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
    if not token_matches(daemon.admin_token, str(form.get("token", ""))):
        daemon.throttle.fail(client)
        return await login_form(request, "Wrong token.", 401)
    sid = daemon.sessions.open()
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
    for conn in status["connections"]:
        at = last_success.get(conn["name"])
        conn["last_sync"] = at
        conn["lag_seconds"] = int((now - at).total_seconds()) if at else None
        conn["skipped"] = daemon.jobs.paused.get(conn["name"])
        connector = daemon.hub.connectors.get(conn["name"])
        conn["budget"] = {}
        if connector is not None:
            try:
                conn["budget"] = connector.health().budget
            except Exception:  # a failing health probe must not break the page
                conn["budget"] = {}
    with daemon.hub.store.transaction() as tx:
        money = money_figures(tx, now)
        in_review = sorted(daemon.hub.engine.review_connections)
        done = approved(tx)
        counts = pending_counts(tx, in_review)
    review = [{"connection": name, "approved": name in done, "pending": counts.get(name, {})} for name in in_review]
    return {"status": status, "money": money, "now": now, "review": review}


async def overview(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    return render(request, "overview.html", **await daemon.jobs.blocking(overview_data, daemon))


async def findings(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    filters = {k: (request.query.get(k) or None) for k in ("kind", "system", "status", "entity")}
    report = await daemon.jobs.blocking(findings_report, daemon.hub.store, **filters)
    return render(request, "findings.html", report=report, filters=filters,
                  systems=sorted(daemon.hub.connectors))


def _finding_data(daemon: Any, finding_id: str) -> dict[str, Any]:
    with daemon.hub.store.transaction() as tx:
        finding = tx.get_finding(finding_id).to_json()
        history = tx.history_of(finding["canonical_id"]) if finding.get("canonical_id") else []
    systems = sorted({s for vals in finding["fields"].values() for s in vals})
    return {"finding": finding, "history": history, "systems": systems}


async def finding(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    try:
        data = await daemon.jobs.blocking(_finding_data, daemon, request.match_info["id"])
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return render(request, "finding.html", **data)


async def finding_action(request: web.Request) -> web.StreamResponse:
    _, form = await _check_form(request)
    daemon = _daemon(request)
    finding_id, action = request.match_info["id"], request.match_info["action"]
    try:
        found = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    finding_id = found["finding"]["id"]  # the full id (a prefix may have been given): safe in Location
    if action == "ack":
        def ack() -> None:
            with daemon.hub.store.transaction() as tx:
                tx.ack_finding(finding_id)
        await daemon.jobs.blocking(ack)
        raise web.HTTPSeeOther(f"/findings/{finding_id}")
    body = {"finding": finding_id, "keep": str(form.get("keep") or "") or None, "dry_run": action == "preview"}
    try:
        plan = await daemon.jobs.exclusive(resync_blocking, daemon.hub, body)
    except (RepairError, DaemonStopping) as exc:
        data = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
        return render(request, "finding.html", http_status=409, error=str(exc), **data)
    if action == "preview":
        data = await daemon.jobs.blocking(_finding_data, daemon, finding_id)
        return render(request, "finding.html", preview=plan, keep=body["keep"], **data)
    raise web.HTTPSeeOther(f"/findings/{finding_id}")


def _record_data(daemon: Any, canonical_id: str) -> dict[str, Any] | None:
    with daemon.hub.store.transaction() as tx:
        stored = tx.get_entity(canonical_id)
        if stored is None:
            return None
        return {"record": stored, "links": tx.links_of(canonical_id), "history": tx.history_of(canonical_id)}


async def record(request: web.Request) -> web.Response:
    daemon = _daemon(request)
    data = await daemon.jobs.blocking(_record_data, daemon, request.match_info["id"])
    if data is None:
        raise web.HTTPNotFound(text="no such hub record")
    return render(request, "record.html", **data)


async def outbox(request: web.Request) -> web.Response:
    daemon = _daemon(request)

    def read() -> dict[str, Any]:
        with daemon.hub.store.transaction() as tx:
            return {"depth": tx.outbox_depth(), "dead": [outbox_json(i) for i in tx.list_outbox("dead", 1000)],
                    "pending": [outbox_json(i) for i in tx.list_outbox("pending", 200)]}
    return render(request, "outbox.html", **await daemon.jobs.blocking(read))


async def outbox_action(request: web.Request) -> web.StreamResponse:
    await _check_form(request)
    daemon = _daemon(request)
    action = request.match_info["action"]
    try:
        item_id = outbox_item_id(request.match_info["id"])
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None

    def write() -> None:
        with daemon.hub.store.transaction() as tx:
            (tx.retry_outbox if action == "retry" else tx.drop_outbox)(item_id)
    try:
        await daemon.jobs.blocking(write)
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    raise web.HTTPSeeOther("/outbox")


async def review_approve(request: web.Request) -> web.StreamResponse:
    """The console's "Approve" of a connection whose writes first_contact = "review" holds (the
    same approval as ``hub review approve``): its held writes go with the next pass."""
    await _check_form(request)
    daemon = _daemon(request)
    name = request.match_info["connection"]
    if name not in daemon.hub.engine.review_connections:
        raise web.HTTPNotFound(text=f'{name}: not a connection with first_contact = "review"')
    await daemon.jobs.blocking(approve, daemon.hub.store, [name])
    raise web.HTTPSeeOther("/")


def setup(app: web.Application) -> None:
    app.middlewares.append(console_guard)
    r = app.router
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/", overview)
    r.add_get("/findings", findings)
    r.add_get("/findings/{id}", finding)
    r.add_post("/findings/{id}/{action:ack|preview|resync}", finding_action)
    r.add_get("/records/{id}", record)
    r.add_get("/outbox", outbox)
    r.add_post("/outbox/{id}/{action:retry|drop}", outbox_action)
    r.add_post("/review/{connection}/approve", review_approve)
    r.add_static("/static/", STATIC)


__all__ = ["csrf_token", "session_id", "setup"]
