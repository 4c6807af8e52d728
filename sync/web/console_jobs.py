"""The console's Runs and jobs page (``/runs``): the recent runs (what ran, on what, when, for
how long, what it counted, how it ended, its error) and the daemon's scheduled jobs (the
``Jobs.specs()`` the scheduler runs: when next, how the last one ended, why its connection is
paused), each with a "Run now" (``POST /jobs/{id}/run``, ``Jobs.run_now``) whose outcome comes
back as the page's flash message."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sync.scheduler import DaemonStopping
from sync.web.console import render
from sync.web.console_act import audit, done, posted
from sync.web.console_words import counts, duration, when
from sync.web.context import Daemon, daemon_of

RUNS_SHOWN = 50


def schedule_in_words(trigger: Any) -> str:
    """ "every 15 s", "every 5 min", "every day at 02:00 UTC", else the crontab ("cron 0 2 * * 1 UTC")."""
    if isinstance(trigger, IntervalTrigger):
        seconds = int(trigger.interval.total_seconds())
        return f"every {seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"every {seconds} s"
    if isinstance(trigger, CronTrigger):
        f = {field.name: str(field) for field in trigger.fields}
        if (f["day"], f["month"], f["day_of_week"]) == ("*", "*", "*") and f["hour"].isdigit() \
                and f["minute"].isdigit():
            return f"every day at {int(f['hour']):02d}:{int(f['minute']):02d} UTC"
        return f"cron {f['minute']} {f['hour']} {f['day']} {f['month']} {f['day_of_week']} UTC"
    return str(trigger)


def _job_connection(job_id: str) -> str | None:
    """The connection a job works on: ``sync:<connection>:<entity>`` only."""
    parts = job_id.split(":")
    return parts[1] if parts[0] == "sync" and len(parts) == 3 else None


def runs_data(daemon: Daemon) -> dict[str, Any]:
    with daemon.hub.store.transaction() as tx:
        runs = tx.last_runs(RUNS_SHOWN)
    rows = [{"kind": r["kind"], "scope": r["scope"] or "everything", "started": when(r["started_at"]),
             "took": duration(r["started_at"], r["finished_at"]), "counts": counts(r["counts"]),
             "status": r["status"], "error": r["error"] or ""} for r in runs]
    paused = {name: daemon.jobs.paused_reason(name) for name in daemon.hub.connectors}
    scheduler = daemon.scheduler
    jobs = []
    for spec in daemon.jobs.specs():
        job = scheduler.get_job(spec.id) if scheduler is not None and scheduler.running else None
        last = daemon.jobs.last.get(spec.id) or {}
        connection = _job_connection(spec.id)
        jobs.append({"id": spec.id, "kind": spec.kind, "every": schedule_in_words(spec.trigger),
                     "next": when(job.next_run_time) if job and job.next_run_time else
                     ("not scheduled in this process" if scheduler is None else "—"),
                     "outcome": last.get("outcome") or "not run yet", "detail": last.get("detail") or "",
                     "last": when(last.get("finished_at")), "paused": paused.get(connection or "") or ""})
    return {"runs": rows, "jobs": jobs}


async def runs_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    return render(request, "runs.html", **await daemon.jobs.blocking(runs_data, daemon))


async def run_now(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    job_id = request.match_info["id"]
    if job_id not in {s.id for s in daemon.jobs.specs()}:
        raise web.HTTPNotFound(text=f"no job {job_id!r}: see the Runs and jobs page")
    try:
        last = await daemon.jobs.run_now(job_id)
    except DaemonStopping as exc:
        return done(request, sid, form, f"{job_id} not run: {exc}", ok=False)
    outcome, detail = last.get("outcome"), last.get("detail") or ""
    await daemon.jobs.blocking(audit, daemon, request, "job.run_now", "job", job_id, after={"outcome": outcome})
    return done(request, sid, form, f"Ran {job_id}: {outcome}" + (f" — {detail}" if detail else ""),
                ok=outcome in ("ok", "skipped"))


def setup(app: web.Application) -> None:
    app.router.add_get("/runs", runs_page)
    app.router.add_post("/jobs/{id}/run", run_now)


__all__ = ["runs_data", "setup"]
