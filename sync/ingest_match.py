"""First contact for a page (``sync.ingest``): each record not linked yet matched to a hub
record by the hub's marker, then natural keys, then a settlement key; exactly one candidate is
linked, several are a ``duplicate`` finding and nothing is written for them. A marker no hub
record has is adopted as the new record's id. (Split from ``sync/ingest.py`` by job: the page's
matching, asked once for the page before any of it is stored.)"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

from connectors.base import Connector, Record
from mapping.keys import MATCH_KEYS, normalise_key
from state.store import Tx
from sync.context import LinkResolver, SyncContext
from sync.first_contact import match_keys


class FirstContacts:
    """``Ingest``'s first-contact matching (a mixin: the context and the hub records first
    contact found ambiguous, which the push creates nowhere, are ``Ingest``'s)."""

    ctx: SyncContext
    ambiguous: set[tuple[str, str, str]]

    def _match_unlinked(self, tx: Tx, connector: Connector, records: Sequence[Record],
                        run_id: str | None) -> dict[str, str]:
        """First contact for a page: external id -> canonical id, or "ambiguous".

        Two records of one system claiming the same hub record are both held: that is a
        duplicate in the system, and linking either would be a guess.
        """
        matches: dict[str, str] = {}
        claims: dict[tuple[str, str], list[str]] = defaultdict(list)
        unlinked = [r for r in records
                    if not r.deleted and not tx.canonical_for(connector.name, r.entity_type, r.external_id)]
        refs = LinkResolver(tx, connector.name)
        keys = {id(r): match_keys(connector, r, refs) for r in unlinked}
        tx.prefetch_entities(k["hub_id"] for k in keys.values() if k.get("hub_id"))
        known: dict[tuple[str, str], dict[str, list[str]]] = {}  # (type, key) -> value -> ids
        for entity_type in {r.entity_type for r in unlinked}:
            for key in MATCH_KEYS:
                values = [normalise_key(keys[id(r)].get(key)) for r in unlinked if r.entity_type == entity_type]
                if any(values):
                    known[(entity_type, key)] = tx.entities_with_keys(entity_type, key, values)
        for record in unlinked:
            match = self._first_contact(tx, connector, record, keys[id(record)], known, run_id)
            if match is None:
                match = self._adopted_marker(tx, connector, record, keys[id(record)])
            if match is None:
                continue
            matches[record.external_id] = match
            if match != "ambiguous":
                claims[(record.entity_type, match)].append(record.external_id)
        for (entity_type, canonical), claimants in claims.items():
            existing = tx.link_for(canonical, connector.name, entity_type)
            if existing is not None and not existing.deleted:
                claimants = [existing.external_id, *claimants]
            if len(claimants) < 2:
                continue
            for external_id in claimants:
                matches[external_id] = "ambiguous"
            self.ambiguous.add((connector.name, entity_type, canonical))
            self.ctx.finding(tx, "duplicate", entity_type, connector.name, canonical, claimants,
                          f"{len(claimants)} {connector.name} {entity_type} records match one hub record; "
                          "keep one with `hub resync --finding ID --keep EXTERNAL_ID`", run_id)
        return matches

    def _adopted_marker(self, tx: Tx, connector: Connector, record: Record, keys: Mapping[str, str]) -> str | None:
        """The hub id a source record's marker names when no hub record has it (a hub that wrote
        it, then lost or replaced its database): the new hub record takes that id, so the
        markers every other system holds for it still name it, whichever system is read first,
        and nothing is re-marked. Only a well-formed hub id (a UUID) is taken."""
        marker = keys.get("hub_id")
        if not marker or not self.ctx.routing.is_source(record.entity_type, connector.system):
            return None
        try:
            if str(uuid.UUID(marker)) != marker:
                return None
        except ValueError:
            return None
        return marker if tx.get_entity(marker) is None else None

    def _first_contact(self, tx: Tx, connector: Connector, record: Record, keys: Mapping[str, str],
                       known: Mapping[tuple[str, str], Mapping[str, list[str]]], run_id: str | None) -> str | None:
        """Match an unlinked record to canonical records: marker, then natural keys (``known``:
        the page's key lookups, asked once for the page before any of it is stored)."""
        marker = keys.get("hub_id")
        if marker:
            stored = tx.get_entity(marker)
            if stored is not None and stored.type == record.entity_type:
                return marker
        for key in MATCH_KEYS:
            value = normalise_key(keys.get(key))
            if not value:
                continue
            candidates = known.get((record.entity_type, key), {}).get(value, [])
            if len(candidates) == 1:
                return candidates[0]
            if len(candidates) > 1:
                self.ambiguous.update((connector.name, record.entity_type, c) for c in candidates)
                self.ctx.finding(tx, "duplicate", record.entity_type, connector.name, None,
                              [record.external_id],
                              f"{connector.name} {record.entity_type} {record.external_id} matches "
                              f"{len(candidates)} hub records by {key} {value!r}; link the right one "
                              "with `hub resync --finding ID --keep EXTERNAL_ID`", run_id,
                              fields={key: {"hub": value}})
                return "ambiguous"
        return None


__all__ = ["FirstContacts"]
