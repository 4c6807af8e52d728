"""Who is asking: the person behind a console session or an API bearer token, and their role.

The console's login and the API's ``admin`` guard resolve a ``Principal`` and keep it on the
request (``request[PRINCIPAL]``); ``actor_of(request)`` is the name the audit log gives them
("console:alice", "api:alice"; the configured ``[admin] token`` is the bootstrap admin "admin").
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from state.users import User
from sync.users import BOOTSTRAP, Role, check_role, user_for_login, user_for_token
from sync.web.context import Daemon
from sync.web.guards import token_matches


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def bootstrap(self) -> bool:
        return self.name == BOOTSTRAP


PRINCIPAL = web.RequestKey("principal", Principal)
BOOTSTRAP_ADMIN = Principal(BOOTSTRAP, "admin")


def _principal(user: User | None) -> Principal | None:
    return None if user is None else Principal(user.name, check_role(user.role))


def people_known(daemon: Daemon) -> bool:
    """Whether anyone can sign in: the [admin] token is set, or an enabled user exists. Without
    either the console and the API are off. (Blocking: run in the daemon's executor.)"""
    if daemon.admin_token is not None:
        return True
    with daemon.hub.store.transaction() as tx:
        return tx.has_enabled_users()


def principal_for_bearer(daemon: Daemon, token: str) -> Principal | None:
    """The person an API bearer token is: the [admin] token is the bootstrap admin, a user's own
    token is that user (enabled only). (Blocking.)"""
    if token_matches(daemon.admin_token, token):
        return BOOTSTRAP_ADMIN
    return _principal(user_for_token(daemon.hub.store, token))


def principal_for_login(daemon: Daemon, name: str, secret: str) -> Principal | None:
    """The console's login: no name (or "admin") and the [admin] token is the bootstrap admin; a
    user name with that user's password or API token is that user. (Blocking.)"""
    if name in ("", BOOTSTRAP):
        return BOOTSTRAP_ADMIN if token_matches(daemon.admin_token, secret) else None
    return _principal(user_for_login(daemon.hub.store, name, secret))


def principal_for_session(daemon: Daemon, name: str) -> Principal | None:
    """A session's person as they are now: a user disabled (or the [admin] token removed by a
    reload) since they logged in is nobody. (Blocking.)"""
    if name == BOOTSTRAP:
        return BOOTSTRAP_ADMIN if daemon.admin_token is not None else None
    with daemon.hub.store.transaction() as tx:
        user = tx.get_user(name)
    return None if user is None or user.disabled else _principal(user)


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def actor_of(request: web.Request) -> str:
    """The audit log's actor for this request: "<channel>:<user name>", the channel being
    "api" under /api/ and "console" elsewhere. A request no guard has let through has no
    person; it is named "anonymous" rather than guessed."""
    principal = principal_of(request)
    channel = "api" if request.path.startswith("/api/") else "console"
    return f"{channel}:{principal.name if principal else 'anonymous'}"


__all__ = ["BOOTSTRAP_ADMIN", "PRINCIPAL", "Principal", "actor_of", "principal_of"]
