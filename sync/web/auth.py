"""Who is asking: the person behind a console session or an API bearer token, and their role.

The console's login and the API's ``admin`` guard resolve a ``Principal`` and keep it on the
request (``request[PRINCIPAL]``); ``actor_of(request)`` is the name the audit log gives them
("console:alice", "api:alice"; the configured ``[admin] token`` is the bootstrap admin "admin").
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sync.users import BOOTSTRAP, Role


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def bootstrap(self) -> bool:
        return self.name == BOOTSTRAP


PRINCIPAL = web.RequestKey("principal", Principal)
BOOTSTRAP_ADMIN = Principal(BOOTSTRAP, "admin")


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
