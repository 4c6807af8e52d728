"""Domain errors of the state store. Driver exceptions never escape the store raw."""

from __future__ import annotations


class StateError(Exception):
    """Base of all state-store errors."""


class LinkConflict(StateError):
    """An external record is already linked to a different canonical entity."""

    def __init__(self, system: str, object_type: str, external_id: str, existing: str) -> None:
        super().__init__(
            f"{system} {object_type} {external_id} is already linked to canonical {existing}"
        )
        self.system = system
        self.object_type = object_type
        self.external_id = external_id
        self.existing = existing


class NotFound(StateError):
    """A row the caller named does not exist."""


class DatabaseUnavailable(StateError):
    """The database cannot be reached or opened."""


class CredentialsError(StateError):
    """Stored credentials cannot be decrypted (wrong or rotated-away key) or are missing."""


class CorruptRow(StateError):
    """A stored value cannot be read back (e.g. JSON damaged by hand outside the hub)."""
