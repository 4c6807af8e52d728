"""One-shot feedback after a console action ("Ran sync:stripe:customer: read 3, wrote 0"): kept
per session in this process's memory (as the sessions are), shown once by ``base.html`` on the
next page the session renders, then forgotten."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

MAX_WAITING = 1000  # sessions holding an unread message; the oldest is dropped past it


@dataclass(frozen=True)
class Flash:
    text: str
    ok: bool = True  # False: the action failed or was refused (shown as an error)


FLASHES: web.AppKey[dict[str, Flash]] = web.AppKey("console_flashes", dict)


def setup(app: web.Application) -> None:
    app[FLASHES] = {}


def flash(request: web.Request, sid: str, text: str, *, ok: bool = True) -> None:
    """Keep ``text`` for the session's next page (replacing an unread one)."""
    waiting = request.app[FLASHES]
    waiting.pop(sid, None)
    if len(waiting) >= MAX_WAITING:
        waiting.pop(next(iter(waiting)))
    waiting[sid] = Flash(text, ok)


def take_flash(request: web.Request, sid: str | None) -> Flash | None:
    """The session's waiting message, once (None on an app without flashes: e.g. the login page)."""
    waiting = request.app.get(FLASHES)
    return waiting.pop(sid, None) if waiting is not None and sid else None


__all__ = ["FLASHES", "Flash", "flash", "setup", "take_flash"]
