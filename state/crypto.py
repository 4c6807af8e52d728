"""Encryption at rest for credentials (Fernet), with key rotation.

The key comes from an environment variable named in config. Several comma-separated keys may be
given: the first encrypts, all decrypt (MultiFernet), which is how ``hub rotate-key`` moves
stored tokens to a new key without downtime.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from state.errors import CredentialsError


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Cipher:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise CredentialsError("no encryption key: set the variable named by state.encryption_key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in parts])
        except (ValueError, TypeError) as exc:
            raise CredentialsError(
                "the encryption key is not a valid Fernet key (32 url-safe base64 bytes); "
                "create one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from exc

    def encrypt(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise CredentialsError(
                "stored credentials cannot be decrypted with the configured key(s); "
                "add the previous key after the new one to rotate"
            ) from exc
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt with the first (newest) key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")
