"""A connection's health and rate budget in words, for the console's Connections page and its
overview: health counts everything that can make a connection unwell — its stored state (paused,
needs_reauth, failed), why the daemon's jobs skip it now (``Jobs.paused_reason``), its dead letters
and its writes waiting to be tried again — so a connection with dead letters is never "ok"; the
budget is what its rate limiters declare (``connectors/ratelimit.py``) and counted in the last
minute, and what the vendor last said was left. Nothing here is invented."""

from __future__ import annotations

from typing import Any

from connectors.ratelimit import RateLimiter
from sync.web.record_words import SYSTEM_NAMES  # how a person names each system

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


__all__ = ["budget_in_words", "health_of", "limiter_in_words", "limiters_of"]
