"""The console's audit page (``/audit``): who did what, filtered by person, action and date, a
page at a time, and exported as CSV or JSON with the same filters (``/audit.csv``,
``/audit.json``). Read-only users may see it: the log names people and actions, never secrets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from state.audit import AuditEntry, AuditFilter
from sync.audit import audit_csv, audit_filter, audit_json, changes
from sync.web.console import render
from sync.web.console_words import when
from sync.web.context import daemon_of

PAGE = 50
EXPORT_MAX = 100_000  # an export is one answer in memory: beyond this, use `hub audit export`
FILTERS = ("actor", "action", "since", "until", "record")


def _chosen(request: web.Request) -> dict[str, str]:
    return {k: request.query[k].strip() for k in FILTERS if request.query.get(k, "").strip()}


def _where(chosen: dict[str, str]) -> AuditFilter:
    try:
        return audit_filter(actor=chosen.get("actor"), action=chosen.get("action"), record=chosen.get("record"),
                            since=chosen.get("since"), until=chosen.get("until"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not raw.isdecimal() or int(raw) < 1:
        raise web.HTTPBadRequest(text="page: a whole number from 1")
    return int(raw)


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {**entry.to_json(), "when": when(entry.at, year=True), "changes": "; ".join(changes(entry))}


async def audit_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    chosen, page = _chosen(request), _page_number(request)
    where = _where(chosen)

    def read() -> tuple[list[AuditEntry], int]:
        with daemon.hub.store.transaction() as tx:
            return tx.list_audit(where, limit=PAGE, offset=(page - 1) * PAGE), tx.count_audit(where)
    entries, total = await daemon.jobs.blocking(read)
    pages = max(1, -(-total // PAGE))
    link = {n: "/audit?" + urlencode({**chosen, "page": n}) for n in (page - 1, page + 1) if 1 <= n <= pages}
    return render(request, "audit.html", entries=[_row(e) for e in entries], total=total, page=page, pages=pages,
                  chosen=chosen, prev_link=link.get(page - 1), next_link=link.get(page + 1),
                  export_query=urlencode(chosen))


async def audit_export(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    fmt = request.match_info["format"]
    where = _where(_chosen(request))

    def read() -> list[AuditEntry]:
        with daemon.hub.store.transaction() as tx:
            return tx.list_audit(where, limit=EXPORT_MAX)
    entries = await daemon.jobs.blocking(read)
    text, kind = (audit_csv(entries), "text/csv") if fmt == "csv" else (audit_json(entries), "application/json")
    return web.Response(text=text, content_type=kind, charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="billhub-audit.{fmt}"'})


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/audit.{format:csv|json}", audit_export)


__all__ = ["setup"]
