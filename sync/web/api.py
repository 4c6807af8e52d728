"""The admin API under ``/api/``: bearer token from ``[admin] token`` (constant-time compare).

No token configured means the API is off: every route answers 404 saying how to turn it on.
``GET /api/openapi.json`` describes it (public: it holds no data).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any

from aiohttp import web

from mapping import exact_json
from mapping.model import ENTITY_TYPES
from state.errors import NotFound
from state.queues import OUTBOX_ID_MAX  # the database's integer (as `hub outbox retry` takes)
from sync.audit import record_action
from sync.engine import SyncSummary
from sync.finding_actions import acknowledge
from sync.finding_view import places_of
from sync.findings import KINDS, finding_json, findings_report
from sync.outbox_actions import drop_write, retry_write
from sync.queries import gather_status
from sync.repair import RepairError, repair_finding, resync_since
from sync.resync_audit import audit_finding_resync, audit_range_resync, audit_record_resync
from sync.scheduler import DaemonStopping
from sync.usage import UsageConflict, parse_usage, store_usage
from sync.web.api_spec import OPENAPI, OUTBOX_LIMIT, OUTBOX_STATUSES, RUNS_LIMIT
from sync.web.auth import PRINCIPAL, actor_of, people_known, principal_for_bearer
from sync.web.context import Daemon, daemon_of
from sync.web.guards import token_matches
from sync.web.roles import refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(data: Any, status: int = 200) -> web.Response:
    text = exact_json.dumps(data, default=exact_json.readable, allow_float=True, sort_keys=True)
    return web.Response(text=text, status=status, content_type="application/json")


def problem(status: int, message: str, **headers: str) -> web.Response:
    response = reply({"error": message}, status)
    response.headers.update(headers)
    return response


def client_address(request: web.Request) -> str:
    """The key failed tokens are counted under: the peer address (behind a proxy, the proxy's)."""
    return request.remote or "unknown"


def too_many(wait: int) -> web.Response:
    return problem(429, f"too many wrong tokens from this address: try again in {wait} s",
                   **{"Retry-After": str(wait)})


async def _off(daemon: Daemon) -> web.Response | None:
    """The 404 of an API that is off (no [admin] token and no enabled user), or None when it is on."""
    if daemon.admin_token is not None or await daemon.jobs.blocking(people_known, daemon):
        return None
    return problem(404, "the admin API is off: set [admin] token in the config (e.g. "
                        "token = \"${HUB_ADMIN_TOKEN}\") and restart, or add a user (hub users add)")


def admin(handler: Handler) -> Handler:
    """Require ``Authorization: Bearer <token>`` — the [admin] token (the bootstrap admin) or a
    user's own (``hub users add``) — and the role the route needs (``sync.web.roles``); map
    domain errors to 4xx."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        daemon = daemon_of(request)
        # Whether the API is off is asked only when no one is let in: a person found by their
        # token proves someone can sign in, so a request costs one user lookup, not two.
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            off = await _off(daemon)  # (a Response is a mapping, empty and so falsy: no `or`)
            return off if off is not None else problem(401, "missing bearer token",
                                                       **{"WWW-Authenticate": 'Bearer realm="billhub"'})
        client = client_address(request)
        wait = daemon.throttle.retry_after(client)
        if wait is not None:
            off = await _off(daemon)
            return off if off is not None else too_many(wait)
        principal = await daemon.jobs.blocking(principal_for_bearer, daemon, given.strip())
        if principal is None:
            if (off := await _off(daemon)) is not None:
                return off
            daemon.throttle.fail(client)
            return problem(403, "wrong token")
        request[PRINCIPAL] = principal
        resource = request.match_info.route.resource
        refused = refusal(principal, request.method, resource.canonical if resource is not None else request.path)
        if refused:
            return problem(403, refused)
        try:
            _known_query(request)
            return await handler(request)
        except NotFound as exc:
            return problem(404, str(exc))
        except RepairError as exc:
            return problem(409, str(exc))
        except DaemonStopping:
            return problem(503, "the daemon is stopping", **{"Retry-After": "5"})
        except LookupError as exc:
            return problem(404, str(exc.args[0]) if exc.args else "not found")
        except ValueError as exc:
            return problem(400, str(exc))

    return wrapper


def _known_query(request: web.Request) -> None:
    """Refuse query parameters the operation does not document (400): a misspelt filter
    (``?stauts=dead``) would otherwise be ignored and answer everything; and values with a NUL."""
    route = request.match_info.route.resource
    op = OPENAPI["paths"].get(route.canonical if route is not None else "", {}).get(request.method.lower(), {})
    known = {p["name"] for p in op.get("parameters", ()) if p["in"] == "query"}
    unknown = sorted(set(request.query) - known)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise ValueError(f"unknown query parameter {', '.join(map(repr, unknown))}: {takes}")
    for name, value in request.query.items():  # PostgreSQL text holds no NUL (a DataError, 503)
        if "\x00" in value:
            raise ValueError(f"{name}: holds a NUL character")


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=exact_json.loads)  # numbers with a fraction exact, never float
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _limit(request: web.Request, default: int, maximum: int) -> int:
    """``?limit=``: a positive integer (PostgreSQL refuses a negative LIMIT), at most ``maximum``."""
    raw = request.query.get("limit", str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("limit: a positive integer") from None
    if value < 1:
        raise ValueError("limit: a positive integer")
    return min(value, maximum)


def outbox_item_id(raw: str) -> int:
    """An outbox item id from a path: an integer the database can hold, else ValueError (400)."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= OUTBOX_ID_MAX:
        raise ValueError(f"outbox item ids are integers from 1 to {OUTBOX_ID_MAX}")
    return value


def _choice(request: web.Request, name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = request.query.get(name)  # given empty is not a choice either: leave it out for all
    if value is not None and value not in allowed:
        raise ValueError(f"{name}: one of {', '.join(allowed)}")
    return value


# --------------------------------------------------------------------------- handlers


@admin
async def status(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    data = await daemon.jobs.blocking(gather_status, daemon.hub.store, daemon.config)
    data["paused"] = dict(daemon.jobs.paused)
    data["jobs"] = daemon.jobs.last
    return reply(data)


@admin
async def runs(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    limit = _limit(request, *RUNS_LIMIT)
    kind = request.query.get("kind") or None

    def read() -> list[dict[str, Any]]:
        with daemon.hub.store.transaction() as tx:
            return tx.last_runs(limit, kind)
    return reply({"runs": await daemon.jobs.blocking(read)})


@admin
async def findings(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    filters = {"kind": _choice(request, "kind", KINDS), "system": request.query.get("system") or None,
               "status": _choice(request, "status", ("open", "acknowledged", "resolved")),
               "entity": _choice(request, "entity", list(ENTITY_TYPES))}
    places = await daemon.jobs.blocking(places_of, daemon.hub.config.connections, daemon.hub.store)
    return reply(await daemon.jobs.blocking(findings_report, daemon.hub.store, **filters, places=places))


@admin
async def finding(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    finding_id = request.match_info["id"]

    def read() -> dict[str, Any]:
        places = places_of(daemon.hub.config.connections, daemon.hub.store)  # before: it reads the store
        with daemon.hub.store.transaction() as tx:
            found = finding_json(tx, finding_id, places)
            found["history"] = tx.history_of(found["canonical_id"]) if found.get("canonical_id") else []
            return found
    return reply(await daemon.jobs.blocking(read))


@admin
async def ack(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    finding_id = request.match_info["id"]

    body = await _body(request)
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ValueError("comment: a string (why it is acknowledged)")
    actor = actor_of(request)

    def write() -> dict[str, Any]:
        with daemon.hub.store.transaction() as tx:
            return acknowledge(tx, finding_id, actor=actor, comment=comment).to_json()
    return reply(await daemon.jobs.blocking(write))


RESYNC_TEXT = ("finding", "keep", "connection", "entity", "external_id", "since", "reason")


def _resync_body(body: dict[str, Any]) -> None:
    """What the document says a resync body is: its fields, when given, non-empty strings and
    ``dry_run`` a boolean (a string "false" must not mean true)."""
    for name in RESYNC_TEXT:
        if name in body and (not isinstance(body[name], str) or not body[name]):
            raise ValueError(f"{name}: a non-empty string")
    if "dry_run" in body and not isinstance(body["dry_run"], bool):
        raise ValueError("dry_run: true or false")


def resync_blocking(hub: Any, body: dict[str, Any], *, actor: str | None = None) -> dict[str, Any]:
    """``hub resync`` over the API: a finding, one record, or an entity since a date. With an
    ``actor``, a resync that ran (not a dry run) is written to the audit log with the body's
    ``reason`` (``sync.resync_audit``); callers that record it themselves pass none."""
    _resync_body(body)
    dry_run = bool(body.get("dry_run", False))
    reason = str(body["reason"]) if body.get("reason") else None
    audited = actor is not None and not dry_run
    if body.get("finding"):
        keep = body.get("keep") or None
        plan = repair_finding(hub, str(body["finding"]), keep=keep, dry_run=dry_run)
        if audited and actor:
            audit_finding_resync(hub.store, actor, plan, keep=keep, reason=reason)
        return plan.to_json()
    if body.get("connection") and body.get("entity") and body.get("external_id"):
        connection, entity, external_id = str(body["connection"]), str(body["entity"]), str(body["external_id"])
        if entity not in ENTITY_TYPES:
            raise ValueError(f"entity: one of {', '.join(ENTITY_TYPES)}")
        if connection not in hub.connectors:
            raise LookupError(f"no connection {connection!r}")
        if dry_run:
            return {"dry_run": True, "actions": [f"re-read {connection} {entity} {external_id} and push it "
                                                 "to its targets"]}
        summary: SyncSummary = hub.engine.resync_record(connection, entity, external_id)
        if audited and actor:
            audit_record_resync(hub.store, actor, connection, entity, external_id, summary, reason=reason)
        return {"dry_run": False, **summary.to_json()}
    if body.get("entity") and body.get("since"):
        entity = str(body["entity"])
        if entity not in ENTITY_TYPES:
            raise ValueError(f"entity: one of {', '.join(ENTITY_TYPES)}")
        since = datetime.fromisoformat(str(body["since"]))
        ranged = resync_since(hub, entity, since, dry_run=dry_run)
        if audited and actor:
            audit_range_resync(hub.store, actor, entity, since, ranged, reason=reason)
        return {"dry_run": dry_run, **ranged.to_json()}
    raise ValueError("say what to resync: {finding[, keep]}, {connection, entity, external_id} or "
                     "{entity, since: YYYY-MM-DD}; add dry_run: true to preview")


@admin
async def resync(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    body = await _body(request)
    return reply(await daemon.jobs.exclusive(resync_blocking, daemon.hub, body, actor=actor_of(request)))


def outbox_json(item: Any) -> dict[str, Any]:
    return {k: getattr(item, k) for k in item.__slots__}


@admin
async def outbox(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    chosen = _choice(request, "status", OUTBOX_STATUSES)
    limit = _limit(request, *OUTBOX_LIMIT)

    def read() -> dict[str, Any]:
        with daemon.hub.store.transaction() as tx:
            return {"depth": tx.outbox_depth(),
                    "items": [outbox_json(i) for i in tx.list_outbox(chosen, limit=limit)]}
    return reply(await daemon.jobs.blocking(read))


def _outbox_action(action: str) -> Handler:
    @admin
    async def handler(request: web.Request) -> web.Response:
        daemon = daemon_of(request)
        item_id = outbox_item_id(request.match_info["id"])

        reason = str((await _body(request)).get("reason") or "").strip()
        actor = actor_of(request)

        def write() -> None:
            with daemon.hub.store.transaction() as tx:
                if action == "drop":  # a write given up on says why (sync/outbox_actions.py)
                    drop_write(tx, item_id, actor=actor, reason=reason, reason_needed=(
                        'say why the write is dropped: a JSON body {"reason": "..."}; it is kept '
                        "in the audit log and on the finding"))
                else:
                    retry_write(tx, item_id, actor=actor, reason=reason or None)
        await daemon.jobs.blocking(write)
        return reply({"id": item_id, "status": "pending" if action == "retry" else "dropped"})
    return handler


@admin
async def usage(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    event = parse_usage(await _body(request))
    try:
        accepted, _duplicates = await daemon.jobs.blocking(lambda: store_usage(daemon.hub.store, [event]))
    except UsageConflict as exc:  # the id is an idempotency key: reused with other content is an error
        return reply(exc.to_json(), 409)
    stored = accepted == 1
    return reply({"event_id": event["event_id"], "stored": stored, "duplicate": not stored},
                 202 if stored else 200)


@admin
async def jobs(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    scheduler = daemon.scheduler
    listed = []
    for spec in daemon.jobs.specs():
        job = scheduler.get_job(spec.id) if scheduler is not None and scheduler.running else None
        listed.append({"id": spec.id, "kind": spec.kind, "trigger": str(spec.trigger),
                       "next_run": job.next_run_time if job else None, "last": daemon.jobs.last.get(spec.id)})
    return reply({"jobs": listed, "paused": daemon.jobs.paused})


@admin
async def run_job(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    job_id, actor = request.match_info["id"], actor_of(request)
    last = await daemon.jobs.run_now(job_id)

    def audit() -> None:  # the console's action name (sync/web/console_jobs.py)
        with daemon.hub.store.transaction() as tx:
            record_action(tx, actor, "job.run_now", "job", job_id,
                          after={"outcome": last.get("outcome"), "detail": last.get("detail")})
    await daemon.jobs.blocking(audit)
    return reply(last)


async def openapi(request: web.Request) -> web.Response:
    return reply(OPENAPI)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/api/status", status)
    r.add_get("/api/runs", runs)
    r.add_get("/api/findings", findings)
    r.add_get("/api/findings/{id}", finding)
    r.add_post("/api/findings/{id}/ack", ack)
    r.add_post("/api/resync", resync)
    r.add_get("/api/outbox", outbox)
    r.add_post("/api/outbox/{id}/retry", _outbox_action("retry"))
    r.add_post("/api/outbox/{id}/drop", _outbox_action("drop"))
    r.add_post("/api/usage", usage)
    r.add_get("/api/jobs", jobs)
    r.add_post("/api/jobs/{id}/run", run_job)


__all__ = ["OPENAPI", "admin", "client_address", "outbox_item_id", "reply", "resync_blocking", "setup", "token_matches", "too_many"]
