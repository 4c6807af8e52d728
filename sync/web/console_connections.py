"""The console's Connections page (``/connections``): each connection's health counted from
everything that can make it unwell — its stored state (paused, needs_reauth, failed), why the
daemon's jobs skip it now (``Jobs.paused_reason``), its dead letters and its waiting writes — so a
connection with dead letters is never shown "ok"; Connect / Reconnect through the daemon's OAuth
flow (``sync/web/oauth.py``); and its rate budget in words, from the limits its rate limiters
declare (``connectors/ratelimit.py``) and what the vendor last said was left."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.oauth_connect import OAUTH_SYSTEMS
from connectors.ratelimit import RateLimiter
from state.console_reads import deferred_by_target, outbox_by_target
from sync.queries import gather_status
from sync.web.console import render
from sync.web.console_words import when
from sync.web.context import Daemon, daemon_of

SYSTEM_NAMES = {"stripe": "Stripe", "quickbooks": "QuickBooks", "xero": "Xero", "salesforce": "Salesforce"}
# What the vendors' own budget figures (ConnectionHealth.budget) mean, in words.
BUDGET_WORDS = {"minute_remaining": "{} calls left this minute (Xero says)",
                "day_remaining": "{} calls left today (Xero says)",
                "app_minute_remaining": "{} calls left this minute for the whole app (Xero says)",
                "calls": "{} calls made since the daemon started",
                "batch_calls": "{} batch calls made since the daemon started",
                "refreshes": "{} token refreshes since the daemon started"}


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def limiters_of(connector: Any) -> list[tuple[str, RateLimiter]]:
    """The rate limiters a connector holds (on itself or one object down: its client, its API),
    each with what it limits ("calls", "batch calls"), from the attribute holding it."""
    found: dict[int, tuple[str, RateLimiter]] = {}
    for holder in [connector, *_parts(connector)]:
        for name, value in _fields(holder).items():
            if isinstance(value, RateLimiter) and id(value) not in found:
                what = name.replace("limiter", "").strip("_").replace("_", " ")
                found[id(value)] = (f"{what} calls" if what else "calls", value)
    return list(found.values())


def _fields(obj: Any) -> dict[str, Any]:
    try:
        return dict(vars(obj))
    except TypeError:  # no __dict__ (slots, builtins): nothing to look at
        return {}


def _parts(connector: Any) -> list[Any]:
    return [v for v in _fields(connector).values()
            if not isinstance(v, str | int | float | bool | dict | list | tuple | set | RateLimiter) and v is not None]


def limiter_in_words(what: str, limiter: RateLimiter) -> str:
    """ "60 calls a minute, 5 at once; 12 used in the last minute" (what the limiter declares
    and counted; it enforces 90% of the rate so no vendor window is ever exceeded)."""
    per = {1.0: "a second", 60.0: "a minute", 3600.0: "an hour"}.get(limiter.per, f"every {_number(limiter.per)} s")
    said = f"{_number(limiter.rate)} {what} {per}"
    if limiter.concurrency:
        said += f", {limiter.concurrency} at once"
    return f"{said}; {limiter.used_recently():,} used in the last minute"


def budget_in_words(system: str, connector: Any) -> list[str]:
    lines = [f"{SYSTEM_NAMES.get(system, system)}: {limiter_in_words(what, limiter)}"
             for what, limiter in limiters_of(connector)]
    try:
        budget = connector.health().budget
    except Exception:  # a failing health probe must not break the page: say what is known
        budget = {}
    for key, value in sorted(budget.items()):
        if isinstance(value, int) and not isinstance(value, bool):
            lines.append(BUDGET_WORDS.get(key, key.replace("_", " ") + ": {}").format(f"{value:,}"))
    return lines or ["no rate limit declared"]


def health_of(state: str, paused: str | None, depth: dict[str, int], deferred: int) -> tuple[str, list[str]]:
    """(health, the problems in words): "ok" only with nothing wrong — no dead letter, no pause."""
    problems = []
    if state not in ("ok", "unchecked"):
        problems.append({"needs_reauth": "needs re-authorisation: reconnect it",
                         "needs_setup": "setup missing: see hub check"}.get(state, state))
    if paused and not (state == "needs_reauth" and paused.startswith("needs_reauth")):
        problems.append(f"paused: {paused}")
    dead = depth.get("dead", 0)
    if dead:
        problems.append(f"{dead:,} dead letter{'s' if dead != 1 else ''} (writes that gave up): see the Outbox")
    if deferred:
        problems.append(f"{deferred:,} write{'s' if deferred != 1 else ''} waiting to be tried again")
    if problems:
        return ("needs_reauth" if state == "needs_reauth" or (paused or "").startswith("needs_reauth")
                else "dead_letters" if dead and state in ("ok", "unchecked") and not paused else "attention",
                problems)
    return state, []


def connections_data(daemon: Daemon) -> dict[str, Any]:
    status = gather_status(daemon.hub.store, daemon.config)
    with daemon.hub.store.transaction() as tx:
        depth, deferred = outbox_by_target(tx), deferred_by_target(tx)
    jobs: dict[str, list[str]] = {}
    for spec in daemon.jobs.specs():
        if spec.kind == "sync":
            jobs.setdefault(spec.id.split(":")[1], []).append(spec.id)
    rows = []
    for conn in status["connections"]:
        name, system = conn["name"], conn["system"]
        connector = daemon.hub.connectors.get(name)
        paused = daemon.jobs.paused_reason(name) if connector is not None else None
        health, problems = health_of(conn["status"], paused, depth.get(name, {}), deferred.get(name, 0))
        rows.append({"name": name, "system": system, "health": health, "problems": problems,
                     "state": conn["status"], "reason": conn["reason"] or "",
                     "paused_until": when(conn["paused_until"]) if conn["paused_until"] else "",
                     "dead": depth.get(name, {}).get("dead", 0), "pending": depth.get(name, {}).get("pending", 0),
                     "deferred": deferred.get(name, 0), "oauth": system in OAUTH_SYSTEMS,
                     "budget": budget_in_words(system, connector) if connector is not None else [],
                     "jobs": jobs.get(name, [])})
    return {"connections": rows}


async def connections_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    return render(request, "connections.html", **await daemon.jobs.blocking(connections_data, daemon))


def setup(app: web.Application) -> None:
    app.router.add_get("/connections", connections_page)


__all__ = ["budget_in_words", "connections_data", "health_of", "limiter_in_words", "limiters_of", "setup"]
