"""Per connection: its encrypted credentials (tokens) and its state (active, paused, why)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from state import schema as t
from state.crypto import Cipher
from state.errors import CredentialsError
from state.records import aware
from state.txbase import XACT_LOCK, TxBase


class ConnectionsMixin(TxBase):
    def _cipher(self) -> Cipher:
        if self.store.cipher is None:
            raise CredentialsError("no encryption key configured: set state.encryption_key")
        return self.store.cipher

    def save_credentials(self, connection: str, data: dict[str, Any]) -> None:
        """Encrypt and store a connection's tokens (commit before using a rotated token)."""
        token = self._cipher().encrypt(data)
        if not self._insert_ignore(t.credentials, {"connection": connection, "ciphertext": token,
                                                   "version": 1, "updated_at": self.now},
                                   ("connection",)):
            self.conn.execute(update(t.credentials).where(t.credentials.c.connection == connection)
                              .values(ciphertext=token, version=t.credentials.c.version + 1,
                                      updated_at=self.now))

    def load_credentials(self, connection: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """Decrypt a connection's tokens. ``for_update`` holds the connection's credentials lock
        until commit, so one refresh at a time runs per connection across processes.

        PostgreSQL: a transaction-scoped advisory lock, not ``SELECT ... FOR UPDATE`` — before
        the first refresh there is no row to lock, and two processes that both found none would
        both spend the configured refresh token (QuickBooks refuses the second: a lockout).
        The SELECT runs after the lock is granted, so under READ COMMITTED it sees the tokens
        the previous holder committed. SQLite: the transaction's BEGIN IMMEDIATE already
        serialises writers."""
        if for_update and self.store.is_postgres:
            self.conn.execute(XACT_LOCK, {"k": "credentials/" + connection})
        query = select(t.credentials.c.ciphertext).where(t.credentials.c.connection == connection)
        token = self.conn.execute(query).scalar()
        return self._cipher().decrypt(token) if token else None

    def delete_credentials(self, connection: str) -> bool:
        """Forget a connection's tokens (``hub disconnect``); False when there were none."""
        result = self.conn.execute(delete(t.credentials).where(t.credentials.c.connection == connection))
        return bool(result.rowcount)

    def rotate_credentials(self) -> int:
        """Re-encrypt every stored credential with the newest key; returns how many."""
        cipher = self._cipher()
        rows = list(self.conn.execute(select(t.credentials.c.connection, t.credentials.c.ciphertext)))
        for name, token in rows:
            self.conn.execute(update(t.credentials).where(t.credentials.c.connection == name)
                              .values(ciphertext=cipher.rotate(token), updated_at=self.now))
        return len(rows)

    def credential_ciphertexts(self) -> list[str]:
        """Every stored credential as stored (encrypted): to check a key opens them all."""
        return [str(c) for c in self.conn.execute(select(t.credentials.c.ciphertext)).scalars()]

    # ------------------------------------------------------------------ connection state

    def set_connection_state(self, connection: str, status: str, *, reason: str | None = None,
                             paused_until: datetime | None = None,
                             details: dict[str, Any] | None = None) -> None:
        values = {"status": status, "reason": reason, "paused_until": paused_until,
                  "details": details or {}, "updated_at": self.now}
        if not self._insert_ignore(t.connection_state, {"connection": connection, **values},
                                   ("connection",)):
            self.conn.execute(update(t.connection_state)
                              .where(t.connection_state.c.connection == connection).values(**values))

    def connection_state(self, connection: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.connection_state).where(
            t.connection_state.c.connection == connection)).first()
        if row is None:
            return None
        return {**row._mapping, "paused_until": aware(row.paused_until),
                "updated_at": aware(row.updated_at)}

    def connection_states(self) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(select(t.connection_state))
        return {r.connection: {**r._mapping, "paused_until": aware(r.paused_until)} for r in rows}
