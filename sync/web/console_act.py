"""What every action of the console's daily pages does around its work: the posted form checked
(a session and its CSRF token), the audit entry (who, what, before/after, the reason typed), and
the answer — a one-shot flash message and a redirect back to the page the button was on."""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web

from sync.audit import record_action
from sync.web.auth import actor_of
from sync.web.console import _check_form
from sync.web.context import Daemon
from sync.web.flash import flash


async def posted(request: web.Request) -> tuple[str, Any]:
    """The session id and posted form of a logged-in user with a valid CSRF token (else 303/403)."""
    return await _check_form(request)


def back_to(form: Any, default: str) -> str:
    """The form's ``back`` (the page the button was on) when it is a path of this console."""
    back = str(form.get("back") or "")
    return back if back.startswith("/") and not back.startswith("//") and "\\" not in back else default


def done(request: web.Request, sid: str, form: Any, text: str, *, ok: bool = True, default: str = "/") -> NoReturn:
    """Flash ``text`` to the session and go back (303) to the page the action came from."""
    flash(request, sid, text, ok=ok)
    raise web.HTTPSeeOther(back_to(form, default))


def audit(daemon: Daemon, request: web.Request, action: str, target_kind: str, target_id: str, *,
          before: Any = None, after: Any = None, reason: str | None = None, record: str | None = None) -> None:
    """One audit entry for an action of this request's person (blocking: call it in the pool)."""
    with daemon.hub.store.transaction() as tx:
        record_action(tx, actor_of(request), action, target_kind, target_id, before=before, after=after,
                      reason=reason, record=record)


__all__ = ["audit", "back_to", "done", "posted"]
