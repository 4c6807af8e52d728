"""Links: which external record in which system is which canonical record (the crosswalk),
and the page-at-a-time prefetch of them into the transaction's memo."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import and_, delete, select, text, update

from state import schema as t
from state.errors import LinkConflict
from state.records import Link, link_row
from state.txbase import TxBase, insert_ignoring, select_all

_LINK_BY_EXTERNAL = select_all(t.links, "system = :system AND object_type = :object_type "
                                     "AND external_id = :external_id")
_LINK_BY_CANONICAL = select_all(t.links, "canonical_id = :canonical_id AND system = :system "
                                      "AND object_type = :object_type")
# First contacts are serialised per (entity type, bucket of a key): a bounded number of advisory
# locks per transaction (PostgreSQL's lock table holds max_locks_per_transaction x connections),
# at the price of two first contacts whose keys share a bucket taking turns.
FIRST_CONTACT_BUCKETS = 512
# Taken in the order of the lock keys themselves (the subquery's ORDER BY is evaluated before the
# locks are: no two transactions wait for each other in a cycle); the key carries the schema, as
# ``state.txbase``'s advisory locks do.
_LOCK_FIRST_CONTACTS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtextextended(current_schema() || '/' || n, 0) AS k "
    "FROM unnest(CAST(:names AS text[])) AS n ORDER BY 1) AS sorted_keys")


@dataclass(frozen=True, slots=True)
class LinkWrite:
    """One link of ``Tx.link_many``: what ingesting a record links (``Tx.link``'s arguments)."""

    canonical_id: str
    system: str
    object_type: str
    external_id: str
    remote_version: str | None = None
    seen_hash: str | None = None
    payload_hash: str | None = None


@cache
def _insert_new_links(dialect: str) -> Any:
    """New links, ON CONFLICT DO NOTHING, RETURNING the external ids inserted: many rows go as
    one multi-row INSERT (SQLAlchemy's insertmanyvalues), and only the rows not returned (taken
    by another transaction since this one looked) need reading back. Built once per dialect."""
    return insert_ignoring(dialect, t.links, ()).returning(t.links.c.external_id)


class LinksMixin(TxBase):
    def prefetch_links(self, system: str, object_type: str, external_ids: Iterable[str], *,
                       lock: bool = False) -> None:
        """Remember the links (or their absence) of these external records, and of the
        canonical records they link to. ``lock`` (PostgreSQL): hold their rows until the
        transaction ends (``FOR UPDATE``, in one order), so what this transaction decides from
        them (the version held, ``sync.ingest``) is not decided at once by another."""
        memo = self._memo
        if memo is None:
            return
        locking = lock and self.store.is_postgres
        wanted = [e for e in dict.fromkeys(external_ids)
                  if locking or (system, object_type, e) not in memo.by_external]
        for start in range(0, len(wanted), 900):
            chunk = sorted(wanted[start:start + 900]) if locking else wanted[start:start + 900]
            for e in chunk:
                memo.by_external[(system, object_type, e)] = None
            query = select(t.links).where(t.links.c.system == system, t.links.c.object_type == object_type,
                                          self._among(t.links.c.external_id, chunk))
            if locking:
                query = query.order_by(t.links.c.external_id).with_for_update()
            for row in self.conn.execute(query):
                memo.keep(link_row(row))

    def lock_first_contacts(self, keys: Iterable[tuple[str, str]]) -> None:
        """PostgreSQL: hold, until the transaction ends, the first-contact locks of these
        (entity type, key) pairs — a key is what a first contact matches by or creates (an
        external record's placeholder id, a marker, a normalised email or name). Two
        transactions meeting a new record by one key (the Stripe customer and the Salesforce
        account of one company read at once, or one record by the inbox and a change feed) then
        take turns: on READ COMMITTED the second's later reads see what the first committed, so
        it links to the first's hub record instead of making a second. The memo's links are
        forgotten: read before the wait, they may be stale. SQLite has one writer: nothing to do."""
        if not self.store.is_postgres:
            return
        names = sorted({f"first-contact/{entity_type}/{zlib.crc32(key.encode()) % FIRST_CONTACT_BUCKETS}"
                        for entity_type, key in keys})
        if not names:
            return
        self.conn.execute(_LOCK_FIRST_CONTACTS, {"names": names})
        self._forget_links()

    def held_versions(self, system: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(type, external id) -> the remote version the hub holds of each live linked record of
        ``system`` that has one (the inbox answers older events from it)."""
        by_type: dict[str, list[str]] = {}
        for object_type, external_id in dict.fromkeys(keys):
            by_type.setdefault(object_type, []).append(external_id)
        held: dict[tuple[str, str], str] = {}
        for object_type, ids in by_type.items():
            for start in range(0, len(ids), 900):
                for external_id, version in self.conn.execute(
                        select(t.links.c.external_id, t.links.c.remote_version).where(
                            t.links.c.system == system, t.links.c.object_type == object_type,
                            self._among(t.links.c.external_id, ids[start:start + 900]), t.links.c.deleted.is_(False),
                            t.links.c.remote_version.is_not(None))):
                    held[(object_type, str(external_id))] = str(version)
        return held

    def prefetch_links_of(self, canonical_ids: Iterable[str], object_type: str, systems: Sequence[str]) -> None:
        """Remember the links (or their absence) of these canonical records in ``systems``."""
        memo = self._memo
        if memo is None or not systems:
            return
        wanted = [c for c in dict.fromkeys(canonical_ids)
                  if any((c, s, object_type) not in memo.by_canonical for s in systems)]
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            for c in chunk:
                for s in systems:
                    memo.by_canonical.setdefault((c, s, object_type), None)
            for row in self.conn.execute(select(t.links).where(
                    self._among(t.links.c.canonical_id, chunk), t.links.c.system.in_(list(systems)),
                    t.links.c.object_type == object_type)):
                memo.keep(link_row(row))

    def _forget_links(self) -> None:
        if self._memo is not None:
            self._memo.by_external.clear()
            self._memo.by_canonical.clear()
    def link(
        self,
        canonical_id: str,
        system: str,
        object_type: str,
        external_id: str,
        *,
        remote_version: str | None = None,
        seen_hash: str | None = None,
        pushed_hash: str | None = None,
        payload_hash: str | None = None,
        replace: bool = False,
    ) -> None:
        """Link a canonical entity to an external record (idempotent).

        Raises ``LinkConflict`` when the external record is linked to another canonical entity,
        or (unless ``replace``) when this canonical entity already links to another record in
        the same system.
        """
        current = self._link_by_external(system, object_type, external_id)
        if current is not None and current.canonical_id != canonical_id:
            raise LinkConflict(system, object_type, external_id, current.canonical_id)
        changes: dict[str, Any] = {"updated_at": self.now, "deleted": False}
        if remote_version is not None:
            changes["remote_version"] = remote_version
        if seen_hash is not None:
            changes["last_seen_hash"] = seen_hash
        if pushed_hash is not None:
            changes["last_pushed_hash"] = pushed_hash
        if payload_hash is not None:
            changes["last_payload_hash"] = payload_hash
        # the WHERE clauses, built when a statement needs them (building them cost more than the
        # INSERT of a new link on a first load)
        def key() -> Any:
            return and_(t.links.c.system == system, t.links.c.object_type == object_type,
                        t.links.c.external_id == external_id)

        def mine() -> Any:
            return and_(t.links.c.canonical_id == canonical_id, t.links.c.system == system,
                        t.links.c.object_type == object_type)

        other = None if current is not None else self.link_for(canonical_id, system, object_type)
        if other is not None and other.external_id == external_id:
            current, other = other, None  # made by another process since this transaction looked
        if current is not None:
            self.conn.execute(update(t.links).where(key()).values(**changes))
            self._drop_link(current)
            return
        if other is not None:
            if not replace:
                raise LinkConflict(system, object_type, other.external_id, canonical_id)
            self.conn.execute(delete(t.links).where(mine()))
            self._drop_link(other)
        values = {"canonical_id": canonical_id, "system": system, "object_type": object_type,
                  "external_id": external_id, "created_at": self.now, **changes}
        inserted = self._insert_ignore(t.links, values, ())
        if self._memo is not None:
            self._memo.by_external.pop((system, object_type, external_id), None)
            self._memo.by_canonical.pop((canonical_id, system, object_type), None)
        if not inserted:
            winner = self.conn.execute(select(t.links.c.canonical_id).where(key())).scalar()
            if winner == canonical_id:
                # Another process made this very link since this transaction looked (a webhook
                # and a change feed can carry one record at once): it is the same link.
                self.conn.execute(update(t.links).where(key()).values(**changes))
                return
            # Lost a race with another process: report who won, as a domain error.
            if winner is None:
                winner = self.conn.execute(select(t.links.c.external_id).where(mine())).scalar()
            raise LinkConflict(system, object_type, external_id, str(winner))

    def link_many(self, writes: Sequence[LinkWrite]) -> list[LinkConflict | None]:
        """``link`` of each write (never ``replace``), with ``link``'s outcome per write: None,
        or the ``LinkConflict`` it would raise. The new links (neither end linked yet, as the
        memo knows: a page's links are prefetched) go in one statement, where ``link`` made an
        INSERT … RETURNING each (on a first load, most of a page's statements); existing links
        are updated, and conflicts found, one by one as ``link`` does. The writes of a page name
        distinct external and hub records; writes that do not are linked one by one, in order."""
        if (len({(w.system, w.object_type, w.external_id) for w in writes}) < len(writes)
                or len({(w.canonical_id, w.system, w.object_type) for w in writes}) < len(writes)):
            return [self._link_one(w) for w in writes]
        outcomes: list[LinkConflict | None] = [None] * len(writes)
        new: list[int] = []
        for i, w in enumerate(writes):
            if (self._link_by_external(w.system, w.object_type, w.external_id) is None
                    and self.link_for(w.canonical_id, w.system, w.object_type) is None):
                new.append(i)
            else:
                outcomes[i] = self._link_one(w)
        if new:
            lost = self._insert_links([writes[i] for i in new])
            for i in new:
                if writes[i].external_id in lost:
                    # linked since by another transaction: ``link`` as it goes when its own
                    # INSERT finds the row taken (the memo still says "no link"): who won decides
                    outcomes[i] = self._link_one(writes[i])
        return outcomes

    def _insert_links(self, writes: Sequence[LinkWrite]) -> set[str]:
        """Insert new links (one system and type each call site, but any mix works); keep the
        inserted ones in the memo; return the external ids not inserted (a unique rule hit)."""
        now = self.now
        rows = [{"canonical_id": w.canonical_id, "system": w.system, "object_type": w.object_type,
                 "external_id": w.external_id, "created_at": now, "updated_at": now, "deleted": False,
                 "remote_version": w.remote_version, "last_seen_hash": w.seen_hash,
                 "last_payload_hash": w.payload_hash, "last_pushed_hash": None} for w in writes]
        inserted = {str(e) for e in self.conn.execute(_insert_new_links(self.conn.dialect.name), rows).scalars()}
        memo = self._memo
        lost: set[str] = set()
        for w in writes:
            if w.external_id not in inserted:
                lost.add(w.external_id)
            elif memo is not None:  # read back by the plan and the next pages' questions
                memo.keep(Link(w.canonical_id, w.system, w.object_type, w.external_id, None,
                               w.seen_hash, w.remote_version, False, w.payload_hash))
        return lost

    def _link_one(self, w: LinkWrite) -> LinkConflict | None:
        """``link`` of one write, its conflict returned."""
        try:
            self.link(w.canonical_id, w.system, w.object_type, w.external_id,
                      remote_version=w.remote_version, seen_hash=w.seen_hash, payload_hash=w.payload_hash)
        except LinkConflict as exc:
            return exc
        return None

    def _link_by_external(self, system: str, object_type: str, external_id: str) -> Link | None:
        return self._link_where("by_external", _LINK_BY_EXTERNAL, {
            "system": system, "object_type": object_type, "external_id": external_id})

    def _link_where(self, index: str, query: Any, params: dict[str, str]) -> Link | None:
        """The link with these values of a unique key (in the order of the memo's ``index``),
        answered from and kept in the memo while ``remembering``."""
        key = tuple(params.values())
        remembered: dict[Any, Link | None] | None = getattr(self._memo, index) if self._memo else None
        if remembered is not None and key in remembered:
            return remembered[key]
        row = self.conn.execute(query, params).first()
        found = link_row(row) if row else None
        if remembered is not None:
            remembered[key] = found
        return found

    def _drop_link(self, link: Link) -> None:
        if self._memo is not None:
            self._memo.by_external.pop((link.system, link.object_type, link.external_id), None)
            self._memo.by_canonical.pop((link.canonical_id, link.system, link.object_type), None)

    def unlink(self, canonical_id: str, system: str, object_type: str) -> None:
        self._forget_links()
        self.conn.execute(delete(t.links).where(
            t.links.c.canonical_id == canonical_id, t.links.c.system == system,
            t.links.c.object_type == object_type))

    def mark_link_deleted(self, system: str, object_type: str, external_id: str) -> None:
        self._forget_links()
        self.conn.execute(update(t.links).where(
            t.links.c.system == system, t.links.c.object_type == object_type,
            t.links.c.external_id == external_id).values(deleted=True, updated_at=self.now))

    def link_by_external(self, system: str, object_type: str, external_id: str) -> Link | None:
        """The link of this external record (from the memo while ``remembering``)."""
        return self._link_by_external(system, object_type, external_id)

    def canonical_for(self, system: str, object_type: str, external_id: str) -> str | None:
        link = self._link_by_external(system, object_type, external_id)
        return str(link.canonical_id) if link else None

    def link_for(self, canonical_id: str, system: str, object_type: str) -> Link | None:
        return self._link_where("by_canonical", _LINK_BY_CANONICAL, {
            "canonical_id": canonical_id, "system": system, "object_type": object_type})

    def links_of(self, canonical_id: str) -> list[Link]:
        rows = self.conn.execute(select(t.links).where(t.links.c.canonical_id == canonical_id)
                                 .order_by(t.links.c.system))
        return [link_row(r) for r in rows]

    def links_in(self, system: str, object_type: str) -> Iterator[Link]:
        rows = self.conn.execute(select(t.links).where(
            t.links.c.system == system, t.links.c.object_type == object_type)
            .order_by(t.links.c.external_id))
        for row in rows:
            yield link_row(row)
