"""The console's pages for the daily jobs (issue 21, item 2), wired onto the daemon's app:
runs and jobs, connections, search, the record page, resync and diff on demand, and the flash
message every action leaves. Registered by ``sync/web/app.py`` after ``console.setup`` (these
modules use the console's rendering and form checks, so the console cannot import them)."""

from __future__ import annotations

from aiohttp import web

from sync.web import (
    console_connections,
    console_findings,
    console_jobs,
    console_keep,
    console_record,
    console_resync,
    console_search,
    flash,
)


def setup(app: web.Application) -> None:
    flash.setup(app)
    for pages in (console_jobs, console_connections, console_search, console_record, console_resync,
                  console_findings, console_keep):
        pages.setup(app)


__all__ = ["setup"]
