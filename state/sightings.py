"""Sightings: records a connection holds that matched no hub record when they were read.

A ledger read before the source system (a Xero organisation that already has the customers,
synced with ``hub sync --system xero`` first) finds nothing to link its records to. They are not
the ledger's to create in the hub, so they used to be skipped for good, and the source's records
read next were pushed as new: a second contact with the same email. A sighting remembers such a
record by its natural keys (digests only: no email or name is stored), and the planner links a
hub record to it instead of creating a copy (``sync.plan``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, select

from mapping.keys import MATCH_KEYS, key_digest
from state import schema as t
from state.txbase import TxBase


class SightingsMixin(TxBase):
    def note_sighting(self, connection: str, entity_type: str, external_id: str,
                      keys: Mapping[str, str | None]) -> None:
        """Remember an unmatched record by the keys it carries (replacing older ones): the hub's
        marker (``hub_id``), its natural keys, a payment's or refund's settlement key."""
        digests = {k: key_digest(keys.get(k)) for k in ("hub_id", *MATCH_KEYS)}
        rows = [{"connection": connection, "entity_type": entity_type, "external_id": external_id,
                 "key": k, "digest": d} for k, d in digests.items() if d]
        self.drop_sightings(connection, entity_type, [external_id])
        if rows:
            self.conn.execute(t.sightings.insert(), rows)
            self._sighted[(connection, entity_type)] = True

    def any_sightings(self, connection: str, entity_type: str) -> bool:
        key = (connection, entity_type)
        if key not in self._sighted:
            s = t.sightings
            self._sighted[key] = self.conn.execute(select(s.c.external_id).where(
                s.c.connection == connection, s.c.entity_type == entity_type).limit(1)).first() is not None
        return self._sighted[key]

    def sightings_matching(self, connection: str, entity_type: str,
                           digests: Mapping[str, str]) -> dict[str, list[str]]:
        """key -> the external ids sighted with that key's digest (one statement)."""
        if not digests or not self.any_sightings(connection, entity_type):
            return {}
        s = t.sightings
        rows = self.conn.execute(select(s.c.key, s.c.digest, s.c.external_id).where(
            s.c.connection == connection, s.c.entity_type == entity_type,
            s.c.digest.in_(list(digests.values()))).order_by(s.c.external_id))
        found: dict[str, list[str]] = {}
        for key, digest, external_id in rows:
            if digests.get(key) == digest:
                found.setdefault(str(key), []).append(str(external_id))
        return found

    def drop_sightings(self, connection: str, entity_type: str, external_ids: Iterable[str]) -> None:
        ids = list(external_ids)
        if ids:
            s = t.sightings
            self.conn.execute(delete(s).where(s.c.connection == connection, s.c.entity_type == entity_type,
                                              s.c.external_id.in_(ids)))
