"""A page being ingested (``sync.ingest``): its inputs, and the records mapped and merged whose
entity writes are still to come, stored together with one ``Tx.upsert_entities``."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from connectors.base import Connector, Record
from mapping.model import Entity
from state.store import Tx
from sync.context import LinkResolver, Question
from sync.summary import StreamStats, SyncSummary


@dataclass(slots=True)
class Pending:
    """A record mapped and merged, its entity write still to come (``Ingest._flush``)."""

    record: Record
    stats: StreamStats
    canonical: str
    placeholder: str  # the id it maps to when not linked yet
    incoming: Entity
    merged: Entity
    dangling: dict[str, tuple[str, str, str]]  # placeholders it names: (connection, type, external id)
    first_sighting: bool
    seen_hash: str | None


@dataclass
class PageBatch:
    """The pending records of a page: one entity type, each hub record once."""

    items: list[Pending] = field(default_factory=list)
    canonicals: set[str] = field(default_factory=set)
    new: set[tuple[str, str]] = field(default_factory=set)  # (type, external id) linked by the batch

    def add(self, pending: Pending) -> None:
        self.items.append(pending)
        self.canonicals.add(pending.canonical)
        if pending.first_sighting:
            self.new.add((pending.record.entity_type, pending.record.external_id))

    def depends(self, pending: Pending, connection: str) -> bool:
        """Whether ``pending`` must wait for the batch to be stored: another entity type (what a
        stored record derives, a customer's billing state, is of another type, and a record of
        that type may be merged from it), the same hub record, or a reference to a record the
        batch links (mapped now it would name a placeholder)."""
        if not self.items:
            return False
        return (pending.record.entity_type != self.items[0].record.entity_type
                or pending.canonical in self.canonicals
                or any(c == connection and (t, e) in self.new for c, t, e in pending.dangling.values()))


@dataclass
class PageRun:
    """One ``Ingest.ingest`` call's transaction, inputs and what it has pending."""

    tx: Tx
    connector: Connector
    refs: LinkResolver
    summary: SyncSummary
    run_id: str | None
    retried: bool
    held: Mapping[tuple[str, str], str]  # (type, external id) -> the hold's finding fingerprint
    linked: dict[str, str]  # placeholder -> hub record, for the records linked here
    matches: Mapping[str, str]  # first contact: external id -> hub record or "ambiguous"
    # id(record) -> its entity as ``Ingest._prefetch`` mapped it, and the questions it asked
    premapped: dict[int, tuple[Entity, list[Question]]] = field(default_factory=dict)
    pending: PageBatch = field(default_factory=PageBatch)

    def release(self, record: Record) -> None:
        """It maps now (or is gone at its source): nothing held any more."""
        fp = self.held.get((record.entity_type, record.external_id))
        if fp is not None:
            self.tx.release_hold(self.connector.name, record.entity_type, record.external_id, fp)


def ids_by_type(records: Iterable[Record]) -> dict[str, list[str]]:
    """Entity type -> the external ids of ``records`` of that type, in order: what a page's
    one-statement-per-type reads (links, holds) are asked with."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_type[record.entity_type].append(record.external_id)
    return by_type


K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``limit``: what ingest remembers in memory
    for the push (first contacts, sightings) stays flat however many records a process reads
    before it pushes. Forgetting one is safe: its write goes as an update, only not minimal."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


__all__ = ["Bounded", "PageBatch", "PageRun", "Pending", "ids_by_type"]
