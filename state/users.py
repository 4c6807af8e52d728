"""Named people (``users``): their role and the digests of their secrets, never the secrets.

``sync.users`` makes the digests (SHA-256 of a random token, scrypt of a password) and decides
who may log in; this is only its reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from state import schema as t
from state.errors import NotFound, StateError
from state.records import aware
from state.txbase import TxBase


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    disabled: bool
    token_hash: str | None
    password_hash: str | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """What may be shown: no digest (even a digest helps a guesser)."""
        return {"name": self.name, "role": self.role, "disabled": self.disabled,
                "token": self.token_hash is not None, "password": self.password_hash is not None,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def _user(row: Any) -> User:
    created, updated = aware(row.created_at), aware(row.updated_at)
    assert created is not None and updated is not None  # NOT NULL
    return User(row.name, row.role, bool(row.disabled), row.token_hash, row.password_hash, created, updated)


class UsersMixin(TxBase):
    def add_user(self, name: str, role: str, *, token_hash: str | None, password_hash: str | None) -> User:
        if self.get_user(name) is not None:
            raise StateError(f"a user named {name!r} exists already (see `hub users list`)")
        now = self.now
        self.conn.execute(insert(t.users).values(name=name, role=role, token_hash=token_hash,
                                                 password_hash=password_hash, disabled=False,
                                                 created_at=now, updated_at=now))
        found = self.get_user(name)
        assert found is not None
        return found

    def get_user(self, name: str) -> User | None:
        row = self.conn.execute(select(t.users).where(t.users.c.name == name)).first()
        return None if row is None else _user(row)

    def user_by_token_hash(self, token_hash: str) -> User | None:
        row = self.conn.execute(select(t.users).where(t.users.c.token_hash == token_hash)).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        return [_user(row) for row in self.conn.execute(select(t.users).order_by(t.users.c.name))]

    def has_enabled_users(self) -> bool:
        return self.conn.execute(select(t.users.c.name).where(t.users.c.disabled.is_(False)).limit(1)).first() \
            is not None

    def change_user(self, name: str, **values: Any) -> User:
        """Set ``role``, ``token_hash``, ``password_hash`` or ``disabled``; the user as it now is."""
        allowed = {"role", "token_hash", "password_hash", "disabled"}
        if not values or set(values) - allowed:
            raise ValueError(f"change_user sets only {', '.join(sorted(allowed))}")
        result = self.conn.execute(update(t.users).where(t.users.c.name == name).values(**values,
                                                                                    updated_at=self.now))
        if not result.rowcount:
            raise NotFound(f"no user {name!r} (see `hub users list`)")
        found = self.get_user(name)
        assert found is not None
        return found


__all__ = ["User", "UsersMixin"]
