"""The console's people page (``/users``, admins only): who may log in and with what role; add
a user, change a role, disable, reset. A new or reset user's API token is shown once, on the
page that answers the form (never in a redirect or a flash message, which would keep it), and the
hub keeps only its digest. Each change is in the audit log, by the admin who made it
(``sync.users`` writes the entries).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from state.errors import NotFound
from sync.users import ROLES, UserError, add_user, disable_user, reset_user, set_role
from sync.web.auth import actor_of
from sync.web.console import render
from sync.web.console_act import done, posted
from sync.web.console_words import when
from sync.web.context import daemon_of


def _listed(daemon: Any) -> list[dict[str, Any]]:
    with daemon.hub.store.transaction() as tx:
        return [{**u.to_json(), "since": when(u.created_at, year=True)} for u in tx.list_users()]


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    daemon = daemon_of(request)
    return render(request, "users.html", http_status=status, users=await daemon.jobs.blocking(_listed, daemon),
                  roles=ROLES, **extra)


async def users_page(request: web.Request) -> web.Response:
    return await _page(request)


async def user_add(request: web.Request) -> web.Response:
    _sid, form = await posted(request)
    daemon = daemon_of(request)
    name, role = str(form.get("name") or "").strip(), str(form.get("role") or "")
    password = str(form.get("password") or "") or None
    try:
        token = await daemon.jobs.blocking(lambda: add_user(daemon.hub.store, name, role, actor_of(request),
                                                            password=password))
    except UserError as exc:
        return await _page(request, 400, error=str(exc))
    return await _page(request, new_token={"name": name, "token": token})


async def user_action(request: web.Request) -> web.StreamResponse:
    sid, form = await posted(request)
    daemon = daemon_of(request)
    name, action, actor = request.match_info["name"], request.match_info["action"], actor_of(request)
    store = daemon.hub.store
    try:
        if action == "reset":
            token = await daemon.jobs.blocking(lambda: reset_user(store, name, actor))
            return await _page(request, new_token={"name": name, "token": token})
        if action == "disable":
            await daemon.jobs.blocking(lambda: disable_user(store, name, actor,
                                                            reason=str(form.get("reason") or "") or None))
            done(request, sid, form, f"{name} is disabled: their token and sessions no longer work.", default="/users")
        await daemon.jobs.blocking(lambda: set_role(store, name, str(form.get("role") or ""), actor))
        done(request, sid, form, f"{name} is now {form.get('role')}.", default="/users")
    except (UserError, NotFound) as exc:
        return await _page(request, 400 if isinstance(exc, UserError) else 404, error=str(exc))


def setup(app: web.Application) -> None:
    app.router.add_get("/users", users_page)
    app.router.add_post("/users", user_add)
    app.router.add_post("/users/{name}/{action:disable|reset|role}", user_action)


__all__ = ["setup"]
