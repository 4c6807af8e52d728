"""The console's findings list (issue 21, items 1-2): what a finance operator works through every
day — filtered (kind, system, entity, status, and customer or document text), 50 a page with
counts, each row naming the customer, the document number, date and amount; and bulk actions on
the rows ticked: acknowledge with a comment, and resync (a dry run of every one first, then run).

Keep is a bulk action only with a choice made per finding (``sync/web/console_keep.py``): which
record of a duplicate to keep is decided on each candidate's name, balance, created date and
documents, and no rule ("the oldest", "the one the hub linked") is right often enough to decide
for a page of findings at once. Duplicates and orphans ticked for a bulk resync are left out of
it, with the reason ("Keep…" is their button).

Each action leaves one flash message ("3 findings acknowledged") and one audit entry per finding
(``sync.finding_actions.acknowledge``; a resync through ``resync_blocking`` with the actor).
Registered by ``sync/web/console_daily.py`` after ``console.setup``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from state.errors import NotFound
from state.records import Finding
from sync.finding_actions import acknowledge
from sync.finding_view import abouts, places_of
from sync.findings import KINDS
from sync.repair import RepairError
from sync.scheduler import DaemonStopping
from sync.web.api import resync_blocking
from sync.web.auth import actor_of
from sync.web.console import render
from sync.web.console_act import done, posted
from sync.web.context import daemon_of

PER_PAGE = 50
FILTERS = ("kind", "system", "entity", "status")
STATUSES = ("open", "acknowledged", "resolved")
MAX_BULK = 500  # ids in one bulk action: a page is 50; a hand-made post of more is refused


@dataclass
class Listing:
    """One page of the filtered findings, with the counts of everything the filters match."""

    filters: dict[str, str | None]
    text: str
    page: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * PER_PAGE + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * PER_PAGE)

    def url(self, page: int | None = None) -> str:
        """This listing's address (its filters kept), at ``page``."""
        query = {k: v for k, v in self.filters.items() if v}
        if self.text:
            query["q"] = self.text
        if (page or self.page) > 1:
            query["page"] = str(page or self.page)
        return "/findings" + (f"?{urlencode(query)}" if query else "")


def _matches(finding: Finding, about: dict[str, Any], text: str) -> bool:
    """The customer/document search: customer, document, the ids and the detail, any case."""
    words = [about.get("customer"), about.get("document"), finding.id, finding.canonical_id, finding.detail,
             *finding.external_ids, *(c.get("name") or "" for c in about.get("candidates") or []),
             *(c.get("email") or "" for c in about.get("candidates") or [])]
    return any(text in str(w).lower() for w in words if w)


def listing(daemon: Any, query: Any) -> Listing:
    """The filtered findings, newest first, one page of them with their ``about`` (blocking)."""
    filters = {k: (str(query.get(k) or "").strip() or None) for k in FILTERS}
    if filters["kind"] not in (None, *KINDS):
        raise ValueError(f"kind: one of {', '.join(KINDS)}")
    if filters["status"] not in (None, *STATUSES):
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    try:
        page = max(1, int(query.get("page") or 1))
    except ValueError:
        raise ValueError("page: a whole number from 1") from None
    text = str(query.get("q") or "").strip()
    result = Listing(filters, text, page)
    places = places_of(daemon.hub.config.connections, daemon.hub.store)
    with daemon.hub.store.transaction() as tx:
        found = list(reversed(tx.list_findings(**filters)))
        about: dict[str, dict[str, Any]] = {}
        if text:  # the search reads every match's customer and document: only when asked
            about = abouts(tx, found, places)
            found = [f for f in found if _matches(f, about[f.id], text.lower())]
        result.total = len(found)
        result.page = min(page, result.pages)
        for f in found:
            result.by_status[f.status] = result.by_status.get(f.status, 0) + 1
        shown = found[(result.page - 1) * PER_PAGE:result.page * PER_PAGE]
        if not text:
            about = abouts(tx, shown, places)
        result.rows = [{**f.to_json(), "about": about[f.id]} for f in shown]
    return result


async def findings(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    try:
        page = await daemon.jobs.blocking(listing, daemon, request.query)
    except ValueError as exc:
        return render(request, "findings.html", http_status=400, error=str(exc), page=None,
                      statuses=STATUSES, systems=sorted(daemon.hub.connectors), filters={}, text="")
    return render(request, "findings.html", page=page, filters=page.filters, text=page.text, statuses=STATUSES,
                  systems=sorted(daemon.hub.connectors))


# --------------------------------------------------------------------------- bulk


def chosen_ids(form: Any) -> list[str]:
    ids = list(dict.fromkeys(str(v) for v in form.getall("id", []) if str(v).strip()))
    if len(ids) > MAX_BULK:
        raise web.HTTPBadRequest(text=f"at most {MAX_BULK} findings in one action")
    return ids


def plural(n: int, what: str = "finding") -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _acknowledge_all(daemon: Any, ids: list[str], actor: str, comment: str) -> tuple[int, list[str]]:
    """Acknowledge each (one transaction each, so one missing id spoils nothing): (done, problems)."""
    count, problems = 0, []
    for finding_id in ids:
        try:
            with daemon.hub.store.transaction() as tx:
                before = tx.get_finding(finding_id).status
                if before == "open":
                    acknowledge(tx, finding_id, actor=actor, comment=comment)
                    count += 1
                else:
                    problems.append(f"{finding_id[:8]} is {before}")
        except NotFound as exc:
            problems.append(str(exc))
    return count, problems


def _kinds_of(daemon: Any, ids: list[str]) -> dict[str, Finding]:
    found: dict[str, Finding] = {}
    with daemon.hub.store.transaction() as tx:
        for finding_id in ids:
            try:
                found[finding_id] = tx.get_finding(finding_id)
            except NotFound:
                continue
    return found


async def bulk(request: web.Request) -> web.StreamResponse:
    """``action``: ``ack`` (with ``comment``), ``preview`` (dry-run resync of each, shown with a
    Run button) or ``resync`` (runs the previewed ones)."""
    sid, form = await posted(request)
    daemon = daemon_of(request)
    action, ids = str(form.get("action") or ""), chosen_ids(form)
    back = "/findings"
    if not ids:
        done(request, sid, form, "No findings ticked: tick the rows to act on first.", ok=False, default=back)
    actor = actor_of(request)
    if action == "ack":
        comment = str(form.get("comment") or "").strip()
        if not comment:
            done(request, sid, form, "Say why in the comment: an acknowledgement is kept in the audit log with it.",
                 ok=False, default=back)
        count, problems = await daemon.jobs.blocking(_acknowledge_all, daemon, ids, actor, comment)
        text = f"{plural(count)} acknowledged" + (f"; not changed: {'; '.join(problems)}" if problems else "")
        done(request, sid, form, text, ok=count > 0 or not problems, default=back)
    if action not in ("preview", "resync"):
        raise web.HTTPBadRequest(text="action: ack, preview or resync")
    found = await daemon.jobs.blocking(_kinds_of, daemon, ids)
    plans: list[dict[str, Any]] = []
    ran, refused = 0, 0
    for finding_id in ids:
        finding = found.get(finding_id)
        row: dict[str, Any] = {"id": finding_id, "finding": finding.to_json() if finding else None}
        if finding is None:
            row["error"] = "no such finding"
        elif finding.kind in ("duplicate", "orphan"):
            row["error"] = "choose the record to keep on its own page, or tick it and press Keep… (decided per finding)"
        elif finding.status == "resolved":
            row["error"] = "already resolved"
        else:
            body = {"finding": finding.id, "dry_run": action == "preview"}
            try:
                row["plan"] = await daemon.jobs.exclusive(resync_blocking, daemon.hub, body,
                                                          actor=None if action == "preview" else actor)
                ran += action == "resync"
            except (RepairError, DaemonStopping, ValueError) as exc:
                row["error"] = str(exc)
        refused += "error" in row
        plans.append(row)
    if action == "resync":
        text = f"{plural(ran)} resynced" + (f", {refused} left as they were (see each one's page)" if refused else "")
        done(request, sid, form, text, ok=ran > 0, default=back)
    return render(request, "findings_bulk.html", plans=plans, back=str(form.get("back") or back),
                  ready=[p["id"] for p in plans if "plan" in p])


def setup(app: web.Application) -> None:
    app.router.add_get("/findings", findings)
    app.router.add_post("/findings/bulk", bulk)


__all__ = ["MAX_BULK", "PER_PAGE", "Listing", "chosen_ids", "listing", "plural", "setup"]
