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


class UnusableDatabase(StateError):
    """The database at ``state.url`` is not one this billhub can use; nothing in it was changed.
    Each subclass says what to do."""


class EmptyDatabaseFile(UnusableDatabase):
    """An SQLite file of zero bytes existed before the hub opened it (likely a mistake)."""


class NotADatabase(UnusableDatabase):
    """The file is not an SQLite database, or it is damaged."""


class ForeignDatabase(UnusableDatabase):
    """The database holds another application's tables, not billhub's."""


class NewerSchema(UnusableDatabase):
    """The schema was written by a newer billhub (a migration this code does not know)."""


class MissingTables(UnusableDatabase):
    """The schema version is current but tables it needs are gone."""
