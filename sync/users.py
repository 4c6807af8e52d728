"""Named people: roles, their secrets' digests, and who a presented secret belongs to.

Each user has a generated API token (``bh_`` + 43 random characters), kept as its SHA-256 only:
a 256-bit random token cannot be guessed, so a slow hash would add nothing but latency, and the
digest finds its user. A password, when set, is kept as scrypt (per-user salt, n=2**14, r=8) and
compared in constant time. Either logs a user into the console (name + password or token); the
token is the API's bearer. The configured ``[admin] token`` stays the bootstrap admin, named
"admin" (so no user may take that name).

Roles, each including the one before: read-only (look), operator (act on findings, the outbox,
resyncs, runs, reviews), admin (also people and connections).

Every change to a user is written to the audit log by the function that makes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Literal, cast, get_args

from state.errors import NotFound
from state.store import StateStore
from state.users import User
from sync.audit import record_action

Role = Literal["read-only", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
BOOTSTRAP = "admin"  # the name the configured [admin] token acts under
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PASSWORD_MIN = 12
TOKEN_PREFIX = "bh_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class UserError(ValueError):
    """A user command that cannot be done as asked (the message says what to do)."""


def role_at_least(role: str, needed: Role) -> bool:
    return role in ROLES and ROLES.index(cast(Role, role)) >= ROLES.index(needed)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    return cast(Role, role)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$<salt>$<key>`` (base64): the salt is per user, the parameters travel with it."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(key).decode()}"


def password_matches(password: str, stored: str | None) -> bool:
    """Constant-time check of a password against its scrypt digest (False for none stored)."""
    if not stored:
        hash_password(password)  # the same work as a real check: timing does not tell who has one
        return False
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=base64.b64decode(salt),
                               n=int(n), r=int(r), p=int(p), dklen=len(base64.b64decode(key)))
    except ValueError:
        return False
    return hmac.compare_digest(given, base64.b64decode(key))


def _name(name: str) -> str:
    if not NAME.match(name):
        raise UserError(f"user name {name!r}: lower-case letters, digits, '.', '_' or '-', at most 64")
    if name == BOOTSTRAP:
        raise UserError(f"{BOOTSTRAP!r} is the configured [admin] token's name; choose another")
    return name


def _password(password: str | None) -> str | None:
    if password is not None and len(password) < PASSWORD_MIN:
        raise UserError(f"a password needs at least {PASSWORD_MIN} characters")
    return password


def _state(user: User) -> dict[str, object]:
    """A user as the audit log keeps it: no digest."""
    return {"role": user.role, "disabled": user.disabled, "password": user.password_hash is not None}


def add_user(store: StateStore, name: str, role: str, actor: str, *, password: str | None = None) -> str:
    """Create a user; their new API token, to be shown once (only its digest is kept)."""
    name, chosen, password = _name(name), check_role(role), _password(password)
    token = new_token()
    with store.transaction() as tx:
        user = tx.add_user(name, chosen, token_hash=token_digest(token),
                           password_hash=hash_password(password) if password else None)
        record_action(tx, actor, "user.add", "user", name, after=_state(user))
    return token


def reset_user(store: StateStore, name: str, actor: str, *, password: str | None = None) -> str:
    """A new API token (the old one stops working) and, if given, a new password; enables a
    disabled user. The token, to be shown once."""
    password = _password(password)
    token = new_token()
    with store.transaction() as tx:
        before = _existing(tx.get_user(name), name)
        values: dict[str, object] = {"token_hash": token_digest(token), "disabled": False}
        if password:
            values["password_hash"] = hash_password(password)
        after = tx.change_user(name, **values)
        record_action(tx, actor, "user.reset", "user", name, before=_state(before), after=_state(after))
    return token


def disable_user(store: StateStore, name: str, actor: str, *, reason: str | None = None) -> None:
    """The user can no longer log in or call the API (their sessions end at their next request)."""
    with store.transaction() as tx:
        before = _existing(tx.get_user(name), name)
        after = tx.change_user(name, disabled=True)
        record_action(tx, actor, "user.disable", "user", name, before=_state(before), after=_state(after),
                      reason=reason)


def set_role(store: StateStore, name: str, role: str, actor: str) -> None:
    chosen = check_role(role)
    with store.transaction() as tx:
        before = _existing(tx.get_user(name), name)
        after = tx.change_user(name, role=chosen)
        record_action(tx, actor, "user.role", "user", name, before=_state(before), after=_state(after))


def _existing(user: User | None, name: str) -> User:
    if user is None:
        raise NotFound(f"no user {name!r} (see `hub users list`)")
    return user


def user_for_token(store: StateStore, token: str) -> User | None:
    """The enabled user whose API token this is, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with store.transaction() as tx:
        user = tx.user_by_token_hash(token_digest(token))
    return user if user is not None and not user.disabled else None


def user_for_login(store: StateStore, name: str, secret: str) -> User | None:
    """The enabled user ``name`` when ``secret`` is their password or their API token, else None."""
    with store.transaction() as tx:
        user = tx.get_user(name)
    if user is None or user.disabled:
        password_matches(secret, None)  # the same work either way
        return None
    by_token = user.token_hash is not None and hmac.compare_digest(token_digest(secret), user.token_hash)
    by_password = password_matches(secret, user.password_hash)
    return user if by_token or by_password else None


__all__ = ["BOOTSTRAP", "ROLES", "Role", "UserError", "add_user", "check_role", "disable_user", "hash_password",
           "new_token", "password_matches", "reset_user", "role_at_least", "set_role", "token_digest",
           "user_for_login", "user_for_token"]
