"""The console's Resync page (``/resync``): resync a range (an entity changed since a date,
``sync.repair.resync_since``) or a finding (``repair_finding``, which re-checks the record after),
each previewed as a dry run first; and "Diff now" for one entity (the scheduled diff, run now:
findings it no longer sees are resolved). Each action ends with a flash and an audit entry."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from state.errors import NotFound
from sync.config import ENTITY_TYPES
from sync.repair import RepairError
from sync.scheduler import DaemonStopping
from sync.web.api import resync_blocking
from sync.web.auth import actor_of
from sync.web.console import render
from sync.web.console_act import audit, done, posted
from sync.web.console_words import counts
from sync.web.context import daemon_of
from sync.web.record_words import say

PLANNED_SHOWN = 50


def _entity(form: Any) -> str:
    entity = str(form.get("entity") or "")
    if entity not in ENTITY_TYPES:
        raise web.HTTPBadRequest(text=f"entity: one of {', '.join(ENTITY_TYPES)}")
    return entity


def _reason(form: Any) -> dict[str, str]:
    """The reason typed beside a Run button, for the audit log (none: no key)."""
    reason = str(form.get("reason") or "").strip()
    return {"reason": reason} if reason else {}


def _since(form: Any) -> str:
    raw = str(form.get("since") or "").strip()
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise web.HTTPBadRequest(text=f"since: a date as YYYY-MM-DD (not {raw[:40]!r})") from None


async def resync_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    return render(request, "resync.html", http_status=status, entities=ENTITY_TYPES, **extra)


async def resync_range(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    entity, since = _entity(form), _since(form)
    run = request.match_info["step"] == "run"
    body: dict[str, Any] = {"entity": entity, "since": since, "dry_run": not run, **_reason(form)}
    try:  # a run is audited by resync_blocking ("resync.range", with the reason typed)
        answer = await daemon.jobs.exclusive(resync_blocking, daemon.hub, body, actor=actor_of(request))
    except (LookupError, ValueError, RepairError, DaemonStopping) as exc:
        done(request, sid, form, f"Not resynced: {exc}", ok=False, default="/resync")
    if not run:
        planned = [say(p) for p in answer.get("planned", [])[:PLANNED_SHOWN]]
        return await resync_page(request, range_preview={
            "entity": entity, "since": since, "totals": counts(answer["totals"]), "planned": planned,
            "more": max(0, len(answer.get("planned", [])) - PLANNED_SHOWN)}, entity=entity, since=since)
    attention = "; ".join(answer.get("attention") or [])
    done(request, sid, form, f"Resynced {entity.replace('_', ' ')}s changed since {since}: "
         f"{counts(answer['totals'])}" + (f" — needs attention: {attention}" if attention else ""),
         ok=not attention, default="/runs")


async def resync_finding(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    finding_id = str(form.get("finding") or "").strip()
    if not finding_id:
        raise web.HTTPBadRequest(text="finding: the id (or its first characters) of the finding to resync")
    run = request.match_info["step"] == "run"
    keep = str(form.get("keep") or "").strip() or None
    body: dict[str, Any] = {"finding": finding_id, "dry_run": not run, **({"keep": keep} if keep else {}), **_reason(form)}
    try:  # a run is audited by resync_blocking ("resync.finding", with the reason typed)
        plan = await daemon.jobs.exclusive(resync_blocking, daemon.hub, body, actor=actor_of(request))
    except (NotFound, RepairError, DaemonStopping) as exc:
        done(request, sid, form, f"Not resynced: {exc}", ok=False, default="/resync")
    full_id = plan["finding"]["id"]
    if not run:
        return await resync_page(request, finding_preview={"id": full_id, "actions": plan["actions"],
                                                           "keep": keep, "finding": plan["finding"]})
    done(request, sid, form, f"Resynced finding {full_id[:8]}: {'; '.join(plan['actions'])}",
         default=f"/findings/{full_id}")


async def diff_entity(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    entity = _entity(form)
    try:
        said = await daemon.jobs.exclusive(daemon.jobs.run_diff, entity)
    except DaemonStopping as exc:
        done(request, sid, form, f"Not compared: {exc}", ok=False, default="/resync")
    await daemon.jobs.blocking(audit, daemon, request, "diff.entity", "entity", entity, after={"said": said})
    done(request, sid, form, f"Diffed {entity.replace('_', ' ')}s in every system: {said}", default="/resync")


def setup(app: web.Application) -> None:
    app.router.add_get("/resync", resync_page)
    app.router.add_post("/resync/range/{step:preview|run}", resync_range)
    app.router.add_post("/resync/finding/{step:preview|run}", resync_finding)
    app.router.add_post("/diff", diff_entity)


__all__ = ["setup"]
