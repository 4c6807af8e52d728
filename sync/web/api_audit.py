"""``GET /api/audit``: the audit log for scripts and log collectors, newest first, with the
console's filters (person, action or family, record, dates) and paging by ``offset``.

Kept apart from ``api.py`` (one module per job); it adds its operation to the one OpenAPI
document that ``api.py`` serves, so the document still lists every route.
"""

from __future__ import annotations

from aiohttp import web

from sync.audit import audit_filter
from sync.web.api import _limit, admin, reply
from sync.web.api_spec import OPENAPI, _limit_param, _listing, _op, _q
from sync.web.context import daemon_of
from sync.web.roles import needed_role

AUDIT_LIMIT = (100, 1000)  # ?limit= default and cap
PATH = "/api/audit"


def _offset(request: web.Request) -> int:
    raw = request.query.get("offset", "0")
    if not raw.isdecimal() or int(raw) > 10**9:
        raise ValueError("offset: a whole number from 0")
    return int(raw)


@admin
async def audit(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    q = request.query
    where = audit_filter(actor=q.get("actor"), action=q.get("action"), record=q.get("record"),
                         since=q.get("since"), until=q.get("until"))
    limit, offset = _limit(request, *AUDIT_LIMIT), _offset(request)

    def read() -> dict[str, object]:
        with daemon.hub.store.transaction() as tx:
            return {"entries": [e.to_json() for e in tx.list_audit(where, limit=limit, offset=offset)],
                    "total": tx.count_audit(where)}
    return reply(await daemon.jobs.blocking(read))


_DAY = {"type": "string", "format": "date",
        "description": "YYYY-MM-DD (UTC; as until, that whole day); an ISO date and time is taken too"}
_ENTRY = {"type": "object", "required": ["id", "at", "actor", "action", "target_kind", "target_id"]}
OPENAPI["paths"][PATH] = {"get": {
    **_op("The audit log, newest first: who did what, when, before/after and why", params=[
        _q("actor"), _q("action"), _q("record"),
        {"name": "since", "in": "query", "required": False, "schema": _DAY},
        {"name": "until", "in": "query", "required": False, "schema": _DAY},
        _limit_param(AUDIT_LIMIT),
        {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0,
                                                                        "maximum": 10**9, "default": 0}}],
        answer={**_listing("entries", _ENTRY), "required": ["entries", "total"]}),
    "x-role": needed_role("GET", PATH)}}


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, audit)


__all__ = ["setup"]
