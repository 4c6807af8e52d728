"""The reference translator a mapper is handed: a system's ids <-> canonical ids.

Mappers are pure; the engine gives them one of these per connection (``sync.engine.LinkResolver``).
"""

from __future__ import annotations

from typing import Protocol


class RefResolver(Protocol):
    """Translates references between a system's ids and canonical ids for one connection."""

    def canonical_id(self, entity_type: str, external_id: str) -> str:
        """The linked canonical id, or the deterministic id a first sighting will get."""
        ...

    def external_id(self, entity_type: str, canonical_id: str) -> str | None:
        """The linked external id in this connection, if any."""
        ...
