"""Which role each route needs: one table, checked server-side by the console's guard and the
API's, so what a read-only user may do does not depend on which buttons a page shows.

A GET needs read-only unless listed (a GET that changes something, like starting an OAuth
connect, is listed). Every other method must be listed: one that is not needs admin — safe, and
the bootstrap admin's login keeps working — and tests/daemon/test_roles.py fails until the new
route gets its line here. ``None``: not a person's action (webhooks prove themselves by their
signature; login is how a person becomes known).
"""

from __future__ import annotations

from sync.users import Role, role_at_least
from sync.web.auth import Principal

PUBLIC = None
ROUTE_ROLES: dict[tuple[str, str], Role | None] = {
    # the daemon's own
    ("POST", "/webhooks/{system}"): PUBLIC,
    ("POST", "/webhooks/{system}/{connection}"): PUBLIC,
    # console
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): "read-only",
    ("POST", "/findings/{id}/{action}"): "operator",
    ("POST", "/findings/bulk"): "operator",
    ("POST", "/findings/bulk/keep/{step}"): "operator",
    ("POST", "/outbox/{id}/{action}"): "operator",
    ("POST", "/review/{connection}/approve"): "operator",
    ("GET", "/oauth/start/{connection}"): "admin",  # connects a vendor account
    ("GET", "/audit"): "read-only",
    ("GET", "/users"): "admin",  # people: sync/web/console_users.py
    ("POST", "/users"): "admin",
    ("POST", "/users/{name}/{action}"): "admin",
    # console: the daily pages (sync/web/console_daily.py and its modules)
    ("POST", "/jobs/{id}/run"): "operator",
    ("POST", "/records/{id}/{step}"): "operator",
    ("POST", "/records/{id}/diff"): "operator",
    ("POST", "/resync/range/{step}"): "operator",
    ("POST", "/resync/finding/{step}"): "operator",
    ("POST", "/diff"): "operator",
    # API
    ("POST", "/api/findings/{id}/ack"): "operator",
    ("POST", "/api/resync"): "operator",
    ("POST", "/api/outbox/{id}/retry"): "operator",
    ("POST", "/api/outbox/{id}/drop"): "operator",
    ("POST", "/api/usage"): "operator",
    ("POST", "/api/jobs/{id}/run"): "operator",
}
UNLISTED_WRITE: Role = "admin"
_READS = ("GET", "HEAD", "OPTIONS")


def needed_role(method: str, route: str) -> Role | None:
    """The role ``method route`` (the route's canonical path, e.g. "/findings/{id}/{action}") needs."""
    key = (method.upper(), route)
    if key in ROUTE_ROLES:
        return ROUTE_ROLES[key]
    if key[0] in _READS:
        return ROUTE_ROLES.get(("GET", route), "read-only")
    return UNLISTED_WRITE


def refusal(principal: Principal, method: str, route: str) -> str | None:
    """Why ``principal`` may not do this (a sentence for a 403), or None when they may."""
    needed = needed_role(method, route)
    if needed is None or role_at_least(principal.role, needed):
        return None
    return (f"forbidden: {method.upper()} {route} needs the {needed} role; you are {principal.name} "
            f"({principal.role}) — ask an admin (hub users role NAME --role {needed})")


__all__ = ["ROUTE_ROLES", "UNLISTED_WRITE", "needed_role", "refusal"]
