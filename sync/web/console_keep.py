"""Bulk keep (issue 21, item 2): settle several duplicate or orphan findings at once, each with
the record the operator chose for it — never by a rule. The findings ticked in the list come to
a page that shows each one's candidate records side by side (name, email, open balance, created
date, documents, which one the hub links) with a radio choice per finding and none chosen; a
finding without a choice is refused (400 naming it). "Preview" shows each keep's dry-run plan;
"Run" applies them as previewed.

Each keep goes through the single finding's path (``resync_blocking`` -> ``repair_finding(hub,
id, keep=X)``), so it is audited as that one is ("resync.finding" with ``keep`` in its after,
``sync/resync_audit.py``). Findings of another kind, resolved or gone are left out with the
reason. One flash message says what was settled ("2 duplicates settled: kept …").
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from state.errors import NotFound
from state.records import Finding
from sync.finding_view import abouts, places_of
from sync.repair import RepairError
from sync.scheduler import DaemonStopping
from sync.web.api import resync_blocking
from sync.web.auth import actor_of
from sync.web.console import render
from sync.web.console_act import back_to, done, posted
from sync.web.console_findings import chosen_ids, plural
from sync.web.context import daemon_of

KEEPABLE = ("duplicate", "orphan")


def selection(daemon: Any, ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ticked findings (blocking): (keepable ones with their ``about``, the others with why)."""
    places = places_of(daemon.hub.config.connections, daemon.hub.store)
    keepable: list[dict[str, Any]] = []
    left_out: list[dict[str, Any]] = []
    with daemon.hub.store.transaction() as tx:
        found: dict[str, Finding] = {}
        for finding_id in ids:
            try:
                found[finding_id] = tx.get_finding(finding_id)
            except NotFound:
                continue
        about = abouts(tx, list({f.id: f for f in found.values()}.values()), places)  # all read at once
        for finding_id in ids:
            if finding_id not in found:
                left_out.append({"id": finding_id, "finding": None, "reason": "no such finding"})
                continue
            finding = {**found[finding_id].to_json(), "about": about[found[finding_id].id]}
            if finding["kind"] not in KEEPABLE:
                left_out.append({"id": finding["id"], "finding": finding,
                                 "reason": f"a {finding['kind']} has no record to choose; resync or acknowledge it"})
            elif finding["status"] == "resolved":
                left_out.append({"id": finding["id"], "finding": finding, "reason": "already resolved"})
            else:
                keepable.append(finding)
    return keepable, left_out


def _choices(form: Any, keepable: list[dict[str, Any]]) -> tuple[dict[str, str], str | None]:
    """Each finding's chosen record (form field ``keep:<finding id>``), and the first problem:
    a finding with no choice, or one not among its candidates."""
    choices: dict[str, str] = {}
    problem = None
    for finding in keepable:
        keep = str(form.get(f"keep:{finding['id']}") or "").strip()
        what = f"finding {finding['id'][:8]} ({finding['kind']} {finding['entity']} in {finding['system']})"
        if not keep:
            problem = problem or f"Choose the record to keep for {what}: nothing is kept by default."
        elif keep not in finding["external_ids"]:
            problem = problem or f"{keep} is not one of the records of {what}."
        else:
            choices[finding["id"]] = keep
    return choices, problem


def _kept_words(finding: dict[str, Any], keep: str) -> str:
    """"Acme Ltd (quickbooks 58)": the kept candidate as people know it."""
    candidate: dict[str, Any] = next((c for c in finding["about"].get("candidates") or [] if c["external_id"] == keep), {})
    name = candidate.get("name") or candidate.get("number")
    return f"{name} ({finding['system']} {keep})" if name else f"{finding['system']} {keep}"


def _settled(findings: list[dict[str, Any]]) -> str:
    kinds = {f["kind"] for f in findings}
    return plural(len(findings), kinds.pop() if len(kinds) == 1 else "finding")


async def keep(request: web.Request) -> web.StreamResponse:
    """``choose``: the page of choices; ``preview``: each keep's dry run; ``run``: apply them."""
    sid, form = await posted(request)
    daemon = daemon_of(request)
    step, ids = request.match_info["step"], chosen_ids(form)
    back = back_to(form, "/findings")
    if not ids:
        done(request, sid, form, "No findings ticked: tick the duplicates and orphans to keep first.", ok=False,
             default="/findings")
    keepable, left_out = await daemon.jobs.blocking(selection, daemon, ids)
    page: dict[str, Any] = {"keepable": keepable, "left_out": left_out, "back": back, "reason": str(form.get("reason") or "")}
    if step == "choose" or not keepable:
        return render(request, "findings_keep.html", choices={}, plans={}, **page)
    choices, problem = _choices(form, keepable)
    if problem:
        return render(request, "findings_keep.html", http_status=400, error=problem, choices=choices, plans={}, **page)
    run = step == "run"
    reason = str(form.get("reason") or "").strip()
    actor = actor_of(request) if run else None  # a run is audited by resync_blocking, as a single keep is
    plans: dict[str, dict[str, Any]] = {}
    for finding in keepable:
        body = {"finding": finding["id"], "keep": choices[finding["id"]], "dry_run": not run,
                **({"reason": reason} if reason else {})}
        try:
            plans[finding["id"]] = await daemon.jobs.exclusive(resync_blocking, daemon.hub, body, actor=actor)
        except (RepairError, DaemonStopping, NotFound) as exc:
            plans[finding["id"]] = {"error": str(exc)}
    if not run:
        return render(request, "findings_keep.html", choices=choices, plans=plans,
                      ready=all("error" not in p for p in plans.values()), **page)
    settled = [f for f in keepable if "error" not in plans[f["id"]]]
    failed = [f"{f['id'][:8]}: {plans[f['id']]['error']}" for f in keepable if "error" in plans[f["id"]]]
    text = (f"{_settled(settled)} settled: kept " + ", ".join(_kept_words(f, choices[f["id"]]) for f in settled)
            if settled else "Nothing kept")
    if failed:
        text += f"; not settled: {'; '.join(failed)}"
    done(request, sid, form, text, ok=not failed, default="/findings")


def setup(app: web.Application) -> None:
    # four segments: /findings/{id}/{action} (console.py) must not take these
    app.router.add_post("/findings/bulk/keep/{step:choose|preview|run}", keep)


__all__ = ["KEEPABLE", "selection", "setup"]
