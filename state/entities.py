"""Canonical entities: reads, the one upsert, natural keys, placeholders and history."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select

from mapping.keys import key_digest, natural_digests
from mapping.model import VOLATILE_FIELDS, Entity, canonical_json, changed_fields, to_data
from state import schema as t
from state.records import Outcome, StoredEntity, stored_row
from state.txbase import TxBase, select_all

_ENTITY_BY_ID = select_all(t.entities, "id = :id")
def _digest(data: dict[str, Any]) -> str:
    """``mapping.model.content_hash`` of the entity whose ``to_data`` is ``data`` (hashing the
    data already made instead of converting the entity a second time)."""
    hashable = {k: v for k, v in data.items() if k not in VOLATILE_FIELDS}
    return hashlib.sha256(canonical_json(hashable).encode("ascii")).hexdigest()


# Rows that exist are replaced by primary key: every entity column, both databases (the SQL
# tail of ``TxBase._insert_rows``).
_REPLACE_BY_ID_SQL = "ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{c.name} = excluded.{c.name}" for c in t.entities.c if c.name != "id")


class EntitiesMixin(TxBase):
    def get_entity(self, canonical_id: str) -> StoredEntity | None:
        if self._memo is not None and canonical_id in self._memo.entities:
            return self._memo.entities[canonical_id]
        row = self.conn.execute(_ENTITY_BY_ID, {"id": canonical_id}).first()
        found = stored_row(row) if row else None
        if self._memo is not None:
            self._memo.entities[canonical_id] = found
        return found

    def known_absent(self, canonical_id: str) -> bool:
        """True when this transaction has read that there is no hub record ``canonical_id``
        (``get_entity`` or ``prefetch_entities`` found none, and none was stored since): what
        names it, a link for one, need not be asked of the database."""
        memo = self._memo
        return memo is not None and canonical_id in memo.entities and memo.entities[canonical_id] is None

    def entities_of(self, entity_type: str, *, include_deleted: bool = False) -> Iterator[StoredEntity]:
        query = select(t.entities).where(t.entities.c.type == entity_type).order_by(t.entities.c.id)
        if not include_deleted:
            query = query.where(t.entities.c.deleted.is_(False))
        for row in self.conn.execute(query):
            yield stored_row(row)
    def prefetch_entities(self, canonical_ids: Iterable[str]) -> None:
        memo = self._memo
        if memo is None:
            return
        wanted = [c for c in dict.fromkeys(canonical_ids) if c not in memo.entities]
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            for c in chunk:
                memo.entities[c] = None
            for row in self.conn.execute(select(t.entities).where(self._among(t.entities.c.id, chunk))):
                memo.entities[row.id] = stored_row(row)

    def live_entity_ids(self, canonical_ids: Iterable[str]) -> set[str]:
        """Which of these hub records exist and are not deleted: ids only, one statement per 900
        (a re-sync asks this of every unchanged record, so no payload is read or decoded)."""
        wanted = list(dict.fromkeys(canonical_ids))
        live: set[str] = set()
        for start in range(0, len(wanted), 900):
            live.update(str(i) for i in self.conn.execute(select(t.entities.c.id).where(
                self._among(t.entities.c.id, wanted[start:start + 900]), t.entities.c.deleted.is_(False))).scalars())
        return live

    def upsert_entity(
        self, entity: Entity, source: str, *, run_id: str | None = None, deleted: bool = False
    ) -> Outcome:
        return self.upsert_entities([entity], source, run_id=run_id, deleted=deleted)[0]

    def upsert_entities(
        self, batch: Sequence[Entity], source: str, *, run_id: str | None = None, deleted: bool = False
    ) -> list[Outcome]:
        """Store canonical entities (a page at a time); returns added / changed / unchanged per
        entity, in order. An id repeated in the batch is applied in order, as successive calls
        would be.

        Unchanged content (same hash, same deletion) writes nothing, not even history. Each entity
        is converted once (``to_data``) and hashed from that; stored payloads are read only for the
        rows that change (their history names the changed fields). New rows, changed rows and
        history rows are each written with one statement for the page (``TxBase._insert_rows``).
        """
        if self._memo is not None:
            # Read again, not taken from the memo: another process may have written these since
            # the page was prefetched, and the version and history must follow from what is stored.
            for entity in batch:
                self._memo.entities.pop(entity.id, None)
        if not batch:
            return []
        prepared = [(entity, data, _digest(data)) for entity in batch for data in (to_data(entity),)]
        for entity, _data, digest in prepared:
            self._stored_digests[entity.id] = (entity, digest)
        ids = list(dict.fromkeys(entity.id for entity in batch))
        # id -> [content_hash, payload (None until read), version, deleted]
        state: dict[str, list[Any]] = {}
        for start in range(0, len(ids), 900):
            for row in self.conn.execute(select(
                    t.entities.c.id, t.entities.c.content_hash, t.entities.c.version, t.entities.c.deleted)
                    .where(self._among(t.entities.c.id, ids[start:start + 900]))):
                state[row.id] = [row.content_hash, None, row.version, bool(row.deleted)]
        existing = set(state)
        changing = list(dict.fromkeys(
            entity.id for entity, _data, digest in prepared
            if entity.id in existing and (state[entity.id][0], state[entity.id][3]) != (digest, deleted)))
        for start in range(0, len(changing), 900):
            for old in self.conn.execute(select(t.entities.c.id, t.entities.c.payload)
                                         .where(self._among(t.entities.c.id, changing[start:start + 900]))):
                state[old.id][1] = dict(old.payload)
        outcomes: list[Outcome] = []
        history: list[dict[str, Any]] = []
        written: dict[str, str] = {}  # id -> type, in first-written order
        for entity, data, digest in prepared:
            current = state.get(entity.id)
            if current is None:
                state[entity.id] = [digest, data, 1, deleted]
                history.append(self._history_row(entity.id, entity.type, source,
                                                 "deleted" if deleted else "added",
                                                 changed_fields(None, data), digest, run_id))
                outcomes.append("added")
                written[entity.id] = entity.type
                continue
            old_hash, old_data, version, was_deleted = current
            if old_hash == digest and was_deleted == deleted:
                outcomes.append("unchanged")
                continue
            state[entity.id] = [digest, data, version + 1, deleted]
            action = "deleted" if deleted and not was_deleted else "changed"
            history.append(self._history_row(entity.id, entity.type, source, action,
                                             changed_fields(old_data, data), digest, run_id))
            outcomes.append("changed")
            written[entity.id] = entity.type
        now = self.now
        rows = [{"id": cid, "type": etype, "payload": state[cid][1], "content_hash": state[cid][0],
                 "version": state[cid][2], "deleted": deleted, "source": source, "updated_at": now}
                for cid, etype in written.items()]
        # New rows by plain INSERT: one another process inserted meanwhile is a uniqueness error
        # (the transaction rolls back, as before), never silently overwritten. Rows known to exist are replaced by
        # primary key: INSERT … ON CONFLICT (id) DO UPDATE, one statement for both databases.
        self._insert_rows(t.entities, [r for r in rows if r["id"] not in existing])
        self._insert_rows(t.entities, [r for r in rows if r["id"] in existing], _REPLACE_BY_ID_SQL)
        self._insert_rows(t.history, history)
        self._index_natural_keys({cid: (etype, state[cid][1], deleted) for cid, etype in written.items()},
                                 new=set(written) - existing)
        return outcomes

    def known_digest(self, entity: Entity) -> str | None:
        """``content_hash(entity)`` when this very object was stored in this transaction (its
        hash is known from the store), else None."""
        known = self._stored_digests.get(entity.id)
        return known[1] if known is not None and known[0] is entity else None

    def _index_natural_keys(self, written: dict[str, tuple[str, dict[str, Any], bool]], *,
                            new: set[str]) -> None:
        """Keep ``natural_keys`` in step with entities just written: id -> (type, data, deleted);
        ``new`` ones (just inserted) have no keys to replace."""
        if not written:
            return
        ids = [cid for cid in written if cid not in new]
        for start in range(0, len(ids), 900):
            self.conn.execute(delete(t.natural_keys).where(
                self._among(t.natural_keys.c.entity_id, ids[start:start + 900])))
        rows = [{"entity_id": cid, "key": key, "entity_type": etype, "digest": digest}
                for cid, (etype, data, deleted) in written.items() if not deleted
                for key, digest in natural_digests(data, etype).items()]
        for start in range(0, len(rows), 5000):
            self._insert_rows(t.natural_keys, rows[start:start + 5000])

    def drop_natural_keys(self, entity_id: str) -> None:
        """An erased entity is never matched again by email, number or name."""
        self.conn.execute(delete(t.natural_keys).where(t.natural_keys.c.entity_id == entity_id))

    # ------------------------------------------------------------------ placeholders

    def note_placeholders(self, entity_id: str, placeholders: Mapping[str, tuple[str, str, str]]) -> None:
        """``entity_id`` names records not linked yet: placeholder id -> (connection, type,
        external id) of the record it stands for (idempotent)."""
        self.note_placeholders_many({entity_id: placeholders})

    def note_placeholders_many(self, holders: Mapping[str, Mapping[str, tuple[str, str, str]]]) -> None:
        """``note_placeholders`` for a page's records at once: entity id -> its placeholders."""
        self._insert_ignore_many(t.placeholder_refs, [
            {"placeholder_id": placeholder_id, "entity_id": entity_id, "connection": connection,
             "object_type": object_type, "external_id": external_id}
            for entity_id, placeholders in holders.items()
            for placeholder_id, (connection, object_type, external_id) in sorted(placeholders.items())])

    def placeholder_record(self, placeholder_id: str) -> tuple[str, str, str] | None:
        """(connection, type, external id) of the record a held placeholder stands for."""
        row = self.conn.execute(select(t.placeholder_refs.c.connection, t.placeholder_refs.c.object_type,
                                       t.placeholder_refs.c.external_id)
                                .where(t.placeholder_refs.c.placeholder_id == placeholder_id).limit(1)).first()
        return None if row is None else (row.connection, row.object_type, row.external_id)

    def take_placeholder_holders(self, placeholder_ids: Iterable[str]) -> dict[str, list[str]]:
        """The hub records holding each of these placeholders (which are now linked), and forget
        them, in one statement: DELETE … RETURNING hands back exactly the rows it removed, so a
        holder noted by another process between a read and a delete is never dropped unseen."""
        wanted = sorted(set(placeholder_ids))
        refs = t.placeholder_refs
        holders: dict[str, list[str]] = defaultdict(list)
        for start in range(0, len(wanted), 900):
            taken = self.conn.execute(delete(refs).where(self._among(refs.c.placeholder_id, wanted[start:start + 900]))
                                      .returning(refs.c.placeholder_id, refs.c.entity_id))
            for placeholder_id, entity_id in sorted(taken):
                holders[placeholder_id].append(entity_id)
        return dict(holders)

    def entities_with_key(self, entity_type: str, key: str, value: str | None) -> list[str]:
        """Ids of the live entities of a type whose natural ``key`` matches ``value`` (in its
        normal form), in id order."""
        return self.entities_with_keys(entity_type, key, [value]).get(value or "", [])

    def entities_with_keys(self, entity_type: str, key: str,
                           values: Iterable[str | None]) -> dict[str, list[str]]:
        """``entities_with_key`` for many values in one statement per 900: value -> ids in id
        order (a value nothing has is left out). A page of first contacts asks this once."""
        by_digest: dict[str, list[str]] = defaultdict(list)
        for value in dict.fromkeys(values):
            digest = key_digest(value)
            if digest is not None and value is not None:
                by_digest[digest].append(value)
        found: dict[str, list[str]] = {}
        digests = list(by_digest)
        nk = t.natural_keys
        for start in range(0, len(digests), 900):
            rows = self.conn.execute(select(nk.c.digest, nk.c.entity_id).where(
                nk.c.entity_type == entity_type, nk.c.key == key,
                self._among(nk.c.digest, digests[start:start + 900])).order_by(nk.c.entity_id))
            for digest, entity_id in rows:
                for value in by_digest[digest]:
                    found.setdefault(value, []).append(str(entity_id))
        return found

    def _history_row(self, canonical_id: str, entity_type: str, system: str, action: str,
                     changes: dict[str, Any], digest: str | None, run_id: str | None) -> dict[str, Any]:
        return {"canonical_id": canonical_id, "entity_type": entity_type, "system": system,
                "action": action, "changes": changes, "content_hash": digest, "run_id": run_id,
                "at": self.now}

    def add_history(self, canonical_id: str, entity_type: str, system: str, action: str,
                    changes: dict[str, Any], run_id: str | None = None) -> None:
        self.conn.execute(insert(t.history).values(
            **self._history_row(canonical_id, entity_type, system, action, changes, None, run_id)))

    def history_of(self, canonical_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.history).where(t.history.c.canonical_id == canonical_id).order_by(t.history.c.id))
        return [dict(r._mapping) for r in rows]

    def count_history(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.history)).scalar_one())
    def count_entities(self) -> dict[str, int]:
        rows = self.conn.execute(select(t.entities.c.type, func.count())
                                 .where(t.entities.c.deleted.is_(False)).group_by(t.entities.c.type))
        return {kind: int(n) for kind, n in rows}
