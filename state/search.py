"""Finding hub records by what a person knows of them: a name, an email, a document number, or
any system's id (the external ids in ``links``, the hub's own id).

Built for a store of 100,000s of records: every exact question is an indexed lookup — an id in
any system through the links' unique (system, object_type, external_id) index, one for each
connection and type named; an email, number or name through ``natural_keys`` (entity_type, key,
digest: the digest of the value's normal form, so the index holds no email); the hub id by its
primary key (a range). Only a part of a name, email or number — asked when nothing matched
exactly — is a scan, done in SQL over the JSON fields of the searched types with a LIMIT:
nothing is loaded into Python to be filtered there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, or_, select

from mapping.keys import NATURAL_KEYS, key_digest
from state import schema as t
from state.txbase import TxBase

SEARCHED_TYPES = ("customer", "invoice", "credit_note", "product", "deal")  # what people look up by name/number
TEXT_FIELDS = ("name", "email", "number")
MAX_RESULTS = 50


@dataclass(frozen=True)
class Hit:
    canonical_id: str
    entity_type: str
    matched: str  # how it matched, in words: "stripe id", "email", "name contains"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.casefold()}%"


def search_records(tx: TxBase, query: str, *, systems: list[str], object_types: list[str],
                   limit: int = MAX_RESULTS) -> list[Hit]:
    """Records matching ``query``: exact ids and keys first, then parts of names, emails and
    numbers; at most ``limit``, each record once."""
    q = query.strip()
    if not q:
        return []
    hits: dict[str, Hit] = {}

    def add(rows: Any, matched: str) -> None:
        for canonical_id, entity_type, *how in rows:
            if len(hits) < limit and str(canonical_id) not in hits:
                hits[str(canonical_id)] = Hit(str(canonical_id), str(entity_type), how[0] if how else matched)

    e, links, nk = t.entities, t.links, t.natural_keys
    # the hub's own id, whole or its first characters (as the console and CLI show it): a range
    # of the primary key (a LIKE would not use it on PostgreSQL), narrowed by the whole prefix
    head = q.lower().split("-")[0]
    if len(q) >= 8 and len(head) >= 8 and all(c in "0123456789abcdef-" for c in q.lower()):
        prefix = q.lower()
        after = head[:-1] + "0123456789abcdefg"["0123456789abcdef".index(head[-1]) + 1]
        add(tx.conn.execute(select(e.c.id, e.c.type).where(
            e.c.id >= head, e.c.id < after, e.c.id.startswith(prefix, autoescape=True)).limit(limit)), "hub id")
    # an id in any system: one indexed probe per (connection, type)
    if systems and object_types:
        add(tx.conn.execute(select(links.c.canonical_id, links.c.object_type, links.c.system).where(
            links.c.system.in_(systems), links.c.object_type.in_(object_types), links.c.external_id == q)
            .limit(limit)), "id")
        hits.update({k: Hit(h.canonical_id, h.entity_type, f"{h.matched} id") for k, h in hits.items()
                     if h.matched in systems})
    # an email, number or name exactly (case and spacing aside): the natural keys' index
    digest = key_digest(q)
    if digest is not None:
        for key in NATURAL_KEYS:
            add(tx.conn.execute(select(nk.c.entity_id, nk.c.entity_type).where(
                nk.c.entity_type.in_(list(SEARCHED_TYPES)), nk.c.key == key, nk.c.digest == digest)
                .limit(limit)), key)
    # a part of a name, email or number: one SQL scan of the searched types, bounded — only when
    # nothing matched exactly (an email or id typed whole finds its record in milliseconds)
    if not hits and len(q) >= 2:
        pattern = _like_pattern(q)
        fields = [func.lower(cast(e.c.payload[f].as_string(), String)).like(pattern, escape="\\") for f in TEXT_FIELDS]
        where = [e.c.type.in_(list(SEARCHED_TYPES)), e.c.deleted.is_(False)]
        if tx.conn.dialect.name == "postgresql" and q.isascii() and not set(q) & {'"', "\\"}:
            # the stored JSON's text holds the value as typed (ASCII needs no escape in JSON): a
            # LIKE over it first spares parsing the JSON of every row (PostgreSQL's json type
            # re-parses for each ->>; SQLite's json_extract is cheaper than the lower() of the
            # whole text); the fields' own test below keeps the matches exact
            where.append(func.lower(cast(e.c.payload, String)).like(pattern, escape="\\"))
        add(tx.conn.execute(select(e.c.id, e.c.type).where(*where, or_(*fields))
                            .order_by(e.c.type, e.c.id).limit(limit)), "name, email or number contains")
    return list(hits.values())


__all__ = ["MAX_RESULTS", "SEARCHED_TYPES", "Hit", "search_records"]
