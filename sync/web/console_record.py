"""The console's record page (``/records/{id}``) and its actions.

The page says the record as a person reads it (``sync/web/record_words.py``: money formatted,
dates readable, no Python reprs), its ids in every system with links into each vendor's own web
app (``sync.finding_view.web_link``, the one deep-link function), its open findings, and its
history across systems in words (entity history, outbox writes, links, the audit log).

Actions: "Resync this record" — a preview first (what would be read and where it would go), then
the resync (``resync_blocking``: re-read from the system it comes from and push wherever it
belongs); "Diff this record now" (``sync.diff_record``: compared in every system, its own
findings upserted or resolved, no other record's touched). Each ends with a flash message and an
audit entry.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from state.console_reads import links_of_record, writes_of_record
from sync.audit import audit_for_record
from sync.diff_record import diff_record
from sync.finding_view import places_of, web_link
from sync.repair import RepairError
from sync.scheduler import DaemonStopping
from sync.web.api import resync_blocking
from sync.web.auth import actor_of
from sync.web.console import render
from sync.web.console_act import audit, done, posted
from sync.web.console_words import counts, when
from sync.web.context import Daemon, daemon_of
from sync.web.record_words import lines_of, say, system_name, timeline

HIDDEN_FIELDS = frozenset({"id", "lines"})  # the id is in the title; lines get their own list
REFERENCES = {"customer_id": "customer", "invoice_id": "invoice", "product_id": "product", "price_id": "price",
              "subscription_id": "subscription", "deal_id": "deal", "credit_note_id": "credit note",
              "payment_id": "payment"}


def title_of(data: dict[str, Any], fallback: str) -> str:
    return str(data.get("name") or data.get("number") or data.get("email") or fallback)


def resync_source(daemon: Daemon, stored: Any, links: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(connection, external id) the record is re-read from: the connection that last changed it,
    else a linked connection that is a source of its type; None for a record no system holds."""
    live = {str(lk["system"]): str(lk["external_id"]) for lk in links if not lk["deleted"]}
    if stored.source in live and stored.source in daemon.hub.connectors:
        return stored.source, live[stored.source]
    for name, external_id in live.items():
        connector = daemon.hub.connectors.get(name)
        if connector is not None and daemon.hub.routing.is_source(stored.type, connector.system):
            return name, external_id
    return None


def record_data(daemon: Daemon, canonical_id: str) -> dict[str, Any] | None:
    systems = {name: conn.system for name, conn in daemon.config.connections.items()}
    with daemon.hub.store.transaction() as tx:
        stored = tx.get_entity(canonical_id)
        if stored is None:
            return None
        history = tx.history_of(canonical_id)
        writes = writes_of_record(tx, canonical_id)
        links = links_of_record(tx, canonical_id)
        actions = audit_for_record(tx, canonical_id)
        findings = tx.findings_of_records([stored.id])  # unresolved, read by id (not every one of its type)
        refs = {}
        for name, kind in REFERENCES.items():
            ref = stored.data.get(name)
            target = tx.get_entity(str(ref)) if isinstance(ref, str) and ref else None
            if target is not None:
                refs[name] = {"id": target.id, "text": f"{kind} {title_of(target.data, target.id[:8])}"}
    places = places_of(daemon.config.connections, daemon.hub.store)
    ids = [{"system": system_name(str(lk["system"]), systems), "connection": lk["system"],
            "external_id": lk["external_id"], "deleted": lk["deleted"], "since": when(lk["created_at"]),
            "url": web_link(places.get(str(lk["system"])), str(lk["object_type"]), str(lk["external_id"]))}
           for lk in links]
    fields = [{"name": name.replace("_", " "), "value": say(value), "ref": refs.get(name)}
              for name, value in sorted(stored.data.items()) if name not in HIDDEN_FIELDS]
    source = resync_source(daemon, stored, links)
    return {"record": stored, "title": title_of(stored.data, stored.id), "noun": stored.type.replace("_", " "),
            "source": system_name(stored.source or "hub", systems), "updated": when(stored.updated_at, year=True),
            "ids": ids, "fields": fields, "lines": lines_of(stored.data.get("lines")), "findings": findings,
            "events": timeline(stored.type, history, writes, links, actions, systems),
            "resync_from": ({"connection": source[0], "external_id": source[1],
                             "system": system_name(source[0], systems)} if source else None),
            "targets": [i["system"] for i in ids if source is None or i["connection"] != source[0]]}


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    daemon = daemon_of(request)
    data = await daemon.jobs.blocking(record_data, daemon, request.match_info["id"])
    if data is None:
        raise web.HTTPNotFound(text="no such hub record: search for it from the console's Search box")
    return render(request, "record.html", http_status=status, **data, **extra)


async def record_page(request: web.Request) -> web.Response:
    return await _page(request)


async def record_resync(request: web.Request) -> web.StreamResponse:
    """Preview (``/resync``) or run (``/resync/run``) the resync of this record."""
    sid, form = await posted(request)
    daemon = daemon_of(request)
    canonical_id, run = request.match_info["id"], request.match_info["step"] == "run"
    data = await daemon.jobs.blocking(record_data, daemon, canonical_id)
    if data is None:
        raise web.HTTPNotFound(text="no such hub record")
    back = f"/records/{data['record'].id}"
    source = data["resync_from"]
    if source is None:
        done(request, sid, form, f"This {data['noun']} is held by no system it can be read from: nothing to "
             "resync. Diff it to see where it is missing.", ok=False, default=back)
    if not run:
        return await _page(request, preview=[
            f"read {source['system']} {data['noun']} {source['external_id']} again and take it into the hub",
            "push it to " + (", ".join(data["targets"]) or "the systems that should hold it")
            + " (each write looks up the record there first: nothing is created twice)"])
    body = {"connection": source["connection"], "entity": data["record"].type, "external_id": source["external_id"]}
    reason = str(form.get("reason") or "").strip()
    try:  # audited by resync_blocking (action "resync.record", with the reason typed)
        answer = await daemon.jobs.exclusive(resync_blocking, daemon.hub, {**body, **({"reason": reason} if reason else {})},
                                             actor=actor_of(request))
    except (LookupError, RepairError, DaemonStopping) as exc:
        done(request, sid, form, f"Not resynced: {exc}", ok=False, default=back)
    attention = "; ".join(answer.get("attention") or [])
    done(request, sid, form, f"Resynced this {data['noun']} from {source['system']}: {counts(answer['totals'])}"
         + (f" — needs attention: {attention}" if attention else ""), ok=not attention, default=back)


async def record_diff(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    canonical_id = request.match_info["id"]
    try:
        found = await daemon.jobs.exclusive(diff_record, daemon.hub, canonical_id)
    except (LookupError, DaemonStopping) as exc:
        done(request, sid, form, f"Not compared: {exc}", ok=False, default=f"/records/{canonical_id}")
    await daemon.jobs.blocking(audit, daemon, request, "diff.record", "record", found.canonical_id,
                               after={"new": found.result.new, "resolved": found.result.resolved,
                                      "errors": found.result.errors})
    done(request, sid, form, f"Diffed this record: {found.in_words()}", ok=found.compared,
         default=f"/records/{found.canonical_id}")


def setup(app: web.Application) -> None:
    app.router.add_get("/records/{id}", record_page)
    app.router.add_post("/records/{id}/{step:resync|run}", record_resync)
    app.router.add_post("/records/{id}/diff", record_diff)


__all__ = ["record_data", "setup"]
